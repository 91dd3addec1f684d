//! The cluster controllers a sandbox needs beside the API server: Deployments make `ReplicaSets`,
//! `ReplicaSets` and `DaemonSets` make Pods, and a round-robin scheduler binds pending pods to
//! schedulable Ready nodes, so that an evicted pod comes back on another node. Minimal on
//! purpose: no rolling-update strategy (old `ReplicaSets` are scaled to zero at once), no
//! affinity, no taints beyond `spec.unschedulable`.
//!
//! Each pass reads everything, decides per kind with a pure function, then writes; passes run on
//! any watch event of the kinds involved and every few seconds.

mod decide;
mod scheduler;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::Value;
use tokio::sync::Notify;

pub use decide::{Cluster, Write, plan};
pub use scheduler::RoundRobin;

/// Failures of one controller pass.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Listing a kind failed.
    #[error("failed to list {kind}")]
    List {
        /// The kind.
        kind: &'static str,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A write failed.
    #[error("failed to {what}")]
    Write {
        /// What was written.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// The running controllers; they stop on drop.
#[derive(Debug)]
pub struct ClusterControllers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for ClusterControllers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts the controllers and the scheduler against `client`.
#[must_use]
pub fn spawn(client: kube::Client) -> ClusterControllers {
    let wake = Arc::new(Notify::new());
    let mut tasks = vec![
        watch_kind::<Deployment>(&client, &wake),
        watch_kind::<ReplicaSet>(&client, &wake),
        watch_kind::<DaemonSet>(&client, &wake),
        watch_kind::<Pod>(&client, &wake),
        watch_kind::<Node>(&client, &wake),
    ];
    tasks.push(tokio::spawn(reconcile_loop(client, wake)));
    ClusterControllers { tasks }
}

fn watch_kind<K>(client: &kube::Client, wake: &Arc<Notify>) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + 'static,
    K: serde::de::DeserializeOwned,
{
    let api: Api<K> = Api::all(client.clone());
    let wake = wake.clone();
    tokio::spawn(async move {
        let mut events =
            kube::runtime::watcher(api, kube::runtime::watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            if event.is_ok() {
                wake.notify_one();
            }
        }
    })
}

async fn reconcile_loop(client: kube::Client, wake: Arc<Notify>) {
    let mut scheduler = RoundRobin::default();
    loop {
        if let Err(error) = Box::pin(pass(&client, &mut scheduler)).await {
            tracing::warn!(error = %error, "cluster controller pass failed");
        }
        let _woken = tokio::time::timeout(Duration::from_secs(3), wake.notified()).await;
    }
}

/// One pass: read everything, plan, write.
pub async fn pass(client: &kube::Client, scheduler: &mut RoundRobin) -> Result<(), ClusterError> {
    let cluster = read(client).await?;
    let mut writes = plan(&cluster);
    writes.extend(scheduler.bind(&cluster.pods, &cluster.nodes));
    for write in writes {
        apply(client, write).await?;
    }
    Ok(())
}

async fn list<K>(client: &kube::Client, kind: &'static str) -> Result<Vec<K>, ClusterError>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    let api: Api<K> = Api::all(client.clone());
    let listed = api.list(&ListParams::default()).await;
    Ok(listed
        .map_err(|source| ClusterError::List { kind, source })?
        .items)
}

async fn read(client: &kube::Client) -> Result<Cluster, ClusterError> {
    Ok(Cluster {
        deployments: list(client, "deployments").await?,
        replica_sets: list(client, "replicasets").await?,
        daemon_sets: list(client, "daemonsets").await?,
        pods: list(client, "pods").await?,
        nodes: list(client, "nodes").await?,
    })
}

fn failed(what: String) -> impl FnOnce(kube::Error) -> ClusterError {
    move |source| ClusterError::Write { what, source }
}

async fn apply(client: &kube::Client, write: Write) -> Result<(), ClusterError> {
    tracing::debug!(?write, "cluster write");
    match write {
        Write::CreateReplicaSet { namespace, object } => {
            create::<ReplicaSet>(client, &namespace, object, "create a replicaset").await
        }
        Write::ScaleReplicaSet {
            namespace,
            name,
            replicas,
        } => {
            let api: Api<ReplicaSet> = Api::namespaced(client.clone(), &namespace);
            let patch = serde_json::json!({"spec": {"replicas": replicas}});
            let done = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await;
            done.map(|_| ())
                .map_err(failed(format!("scale replicaset {namespace}/{name}")))
        }
        Write::CreatePod { namespace, object } => {
            create::<Pod>(client, &namespace, object, "create a pod").await
        }
        Write::DeletePod { namespace, name } => {
            let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
            match api.delete(&name, &DeleteParams::default()).await {
                Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
                done => done
                    .map(|_| ())
                    .map_err(failed(format!("delete pod {namespace}/{name}"))),
            }
        }
        Write::BindPod {
            namespace,
            name,
            node,
        } => {
            let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
            let patch = serde_json::json!({"spec": {"nodeName": node}});
            let done = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await;
            tracing::info!(pod = %name, %namespace, %node, "pod bound");
            done.map(|_| ())
                .map_err(failed(format!("bind pod {namespace}/{name} to {node}")))
        }
    }
}

async fn create<K>(
    client: &kube::Client,
    namespace: &str,
    object: Value,
    what: &str,
) -> Result<(), ClusterError>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    K: Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let typed: K = serde_json::from_value(object).map_err(|e| ClusterError::Write {
        what: what.to_owned(),
        source: kube::Error::SerdeError(e),
    })?;
    match api.create(&PostParams::default(), &typed).await {
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        done => done
            .map(|_| ())
            .map_err(failed(format!("{what} in {namespace}"))),
    }
}
