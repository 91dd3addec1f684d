//! A scripted stand-in for the node helpers, for operator tests: it watches every `NodeUpgrade` and
//! answers as a cooperative helper would — `Prepared` for `Prepare`, then `Installing` and, after
//! holding the node for a while, `Succeeded` (or `RolledBack`) for `Execute` — writing status by
//! server-side apply under the helpers' field manager, and reporting the new kubelet version on
//! the Node.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use kubelift_crds::constants::NODE_HELPER_MANAGER;
use kubelift_crds::{ContainerVerdict, NodePhase, NodeUpgrade, Stage};
use serde_json::json;
use tokio::task::JoinHandle;

/// How the scripted helpers behave.
#[derive(Clone, Debug, Default)]
pub struct Script {
    /// How long a node stays `Installing` before it finishes.
    pub hold: Duration,
    /// Nodes whose upgrade fails and rolls back.
    pub failing: BTreeSet<String>,
    /// Containers predicted to restart, by node.
    pub restarting: BTreeMap<String, Vec<ContainerVerdict>>,
}

/// The running scripted helpers; dropped or stopped, they stop answering.
pub struct ScriptedHelpers {
    task: JoinHandle<()>,
}

impl ScriptedHelpers {
    /// Start answering every `NodeUpgrade` in the cluster behind `client`.
    #[must_use]
    pub fn start(client: Client, script: Script) -> Self {
        let script = Arc::new(script);
        let task = tokio::spawn(async move {
            let api = Api::<NodeUpgrade>::all(client.clone());
            let events = watcher(api, watcher::Config::default())
                .default_backoff()
                .applied_objects();
            let mut events = std::pin::pin!(events);
            while let Some(Ok(nu)) = events.next().await {
                answer(&client, &script, &nu).await;
            }
        });
        ScriptedHelpers { task }
    }

    /// Stop answering.
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for ScriptedHelpers {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(client: &Client, script: &Arc<Script>, nu: &NodeUpgrade) {
    let generation = nu.metadata.generation.unwrap_or(1);
    let status = nu
        .status
        .as_ref()
        .filter(|s| s.observed_generation == Some(generation));
    let phase = status.and_then(|s| s.phase);
    let node = nu.spec.node_name.clone();
    match (nu.spec.stage, phase) {
        (Stage::Prepare, None | Some(NodePhase::Pending)) => {
            let restarting = script.restarting.get(&node).cloned().unwrap_or_default();
            report(client, nu, NodePhase::Prepared, &restarting).await;
        }
        (Stage::Execute, None | Some(NodePhase::Prepared)) => {
            report(client, nu, NodePhase::Installing, &[]).await;
            let (client, script, nu) = (client.clone(), script.clone(), nu.clone());
            tokio::spawn(async move {
                tokio::time::sleep(script.hold).await;
                let failing = script.failing.contains(&nu.spec.node_name);
                let end = if failing {
                    NodePhase::RolledBack
                } else {
                    NodePhase::Succeeded
                };
                if !failing {
                    set_kubelet_version(&client, &nu.spec.node_name, &nu.spec.version).await;
                }
                report(&client, &nu, end, &[]).await;
            });
        }
        _ => {}
    }
}

async fn report(
    client: &Client,
    nu: &NodeUpgrade,
    phase: NodePhase,
    restarting: &[ContainerVerdict],
) {
    let now = Time(Timestamp::now());
    let restarts = i32::try_from(restarting.len()).unwrap_or(i32::MAX);
    let status = json!({
        "observedGeneration": nu.metadata.generation,
        "observedAttempt": nu.spec.attempt,
        "phase": phase,
        "fromVersion": "v1.31.4",
        "toVersion": nu.spec.version,
        "prediction": {"preserved": 2, "willRestart": restarts, "unknown": 0},
        "containers": restarting,
        "lastHeartbeatTime": now,
        "completionTime": phase.is_terminal().then_some(&now),
        "reason": (phase == NodePhase::RolledBack).then_some("VerifyFailed"),
    });
    let object =
        json!({"apiVersion": "kubelift.dev/v1alpha1", "kind": "NodeUpgrade", "status": status});
    let api = Api::<NodeUpgrade>::all(client.clone());
    let params = PatchParams::apply(NODE_HELPER_MANAGER).force();
    if let Err(error) = api
        .patch_status(&nu.name_any(), &params, &Patch::Apply(object))
        .await
    {
        tracing::warn!(%error, "scripted helper failed to report");
    }
}

async fn set_kubelet_version(client: &Client, node: &str, version: &str) {
    let patch = json!({"status": {"nodeInfo": {"kubeletVersion": version}}});
    let api = Api::<Node>::all(client.clone());
    if let Err(error) = api
        .patch_status(node, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        tracing::warn!(%error, "scripted helper failed to update the node");
    }
}
