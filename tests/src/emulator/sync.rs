//! The pod sync: make the node's CRI runtime run the pods bound to the node, and apply the
//! kubelet's rule on the way. Per spec container, [`decide`] compares the hash this kubelet
//! version computes from the served container JSON with the hash stored on the running container:
//! equal keeps it; different kills it and creates a new one with restart count + 1, unless this
//! kubelet is snapshot-aware and the snapshot lists the container. Pods being deleted have their
//! containers stopped and are then removed from the API; sandboxes of vanished pods are removed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use k8s_cri::v1 as api;
use kubelet_hash::{ContainerKind, HashOptions};

use super::cri::{self, CriClient, CriError, NewContainer};
use super::health::Health;
use super::pods::{self, ContainerReport, NodePod, PodError, SpecContainer};
use super::{EmulatorConfig, keys, snapshot};

/// Failures of one sync.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A CRI call failed.
    #[error(transparent)]
    Cri(#[from] CriError),
    /// A pod read or write failed.
    #[error(transparent)]
    Pods(#[from] PodError),
    /// The hash of a container could not be computed.
    #[error("failed to hash container {container} of pod {pod}")]
    Hash {
        /// `namespace/name`.
        pod: String,
        /// Container name.
        container: String,
        /// The cause.
        #[source]
        source: kubelet_hash::HashError,
    },
}

/// What to do with one spec container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Keep the running container.
    Keep,
    /// Create a container with this restart count (none runs).
    Create { restart_count: u32 },
    /// Kill the running container (hash changed) and create one with this restart count.
    Replace { restart_count: u32 },
}

/// The kubelet's rule for one container: `latest` is its newest runtime container, if any.
pub(crate) fn decide(
    computed_hash: &str,
    latest: Option<&api::Container>,
    protected: bool,
) -> Action {
    let Some(latest) = latest else {
        return Action::Create { restart_count: 0 };
    };
    let restart_count = restart_count_of(latest) + 1;
    if latest.state() != api::ContainerState::ContainerRunning {
        return Action::Create { restart_count };
    }
    let stored = latest
        .annotations
        .get(keys::CONTAINER_HASH)
        .map(String::as_str);
    if same_hash(stored, computed_hash) || protected {
        Action::Keep
    } else {
        Action::Replace { restart_count }
    }
}

/// Hashes compare as the kubelet parses them: base-16 numbers, missing or invalid reading as 0.
fn same_hash(stored: Option<&str>, computed: &str) -> bool {
    let parse = |text: &str| u64::from_str_radix(text, 16).unwrap_or(0);
    stored.map_or(0, parse) == parse(computed)
}

fn restart_count_of(container: &api::Container) -> u32 {
    let annotation = container.annotations.get(keys::RESTART_COUNT);
    annotation.and_then(|count| count.parse().ok()).unwrap_or(0)
}

fn label<'c>(labels: &'c HashMap<String, String>, key: &str) -> &'c str {
    labels.get(key).map_or("", String::as_str)
}

/// Runs the sync every `sync_interval`, forever; health turns good after the first success.
pub(crate) async fn sync_loop(
    client: kube::Client,
    config: Arc<EmulatorConfig>,
    runtime: CriClient,
    health: Health,
) {
    let sync = Sync {
        client,
        config,
        runtime,
    };
    let mut ticks = tokio::time::interval(sync.config.sync_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match Box::pin(sync.once(health.allowed())).await {
            Ok(()) => health.mark_synced(),
            Err(error) => {
                let node = &sync.config.node_name;
                tracing::warn!(%node, %error, "failed to sync pods");
            }
        }
    }
}

/// The clients and settings one sync works with.
struct Sync {
    client: kube::Client,
    config: Arc<EmulatorConfig>,
    runtime: CriClient,
}

/// What the runtime holds, read once per sync.
struct Observed {
    containers: Vec<api::Container>,
    sandboxes: Vec<api::PodSandbox>,
}

impl Observed {
    fn containers_of(&self, uid: &str) -> impl Iterator<Item = &api::Container> {
        self.containers
            .iter()
            .filter(move |c| label(&c.labels, keys::POD_UID) == uid)
    }

    fn sandboxes_of(&self, uid: &str) -> impl Iterator<Item = &api::PodSandbox> {
        self.sandboxes
            .iter()
            .filter(move |s| label(&s.labels, keys::POD_UID) == uid)
    }
}

impl Sync {
    async fn once(&self, ready: bool) -> Result<(), SyncError> {
        let pods = pods::list_node_pods(&self.client, &self.config.node_name).await?;
        let observed = Observed {
            containers: cri::list_containers(&self.runtime).await?,
            sandboxes: cri::list_sandboxes(&self.runtime).await?,
        };
        let protected = self.protected_ids();

        for pod in &pods {
            let synced = if pod.terminating {
                self.terminate(pod, &observed).await
            } else {
                Box::pin(self.sync_pod(pod, &observed, &protected, ready)).await
            };
            if let Err(error) = synced {
                tracing::warn!(pod = %pod.pod, error = %error, "failed to sync pod");
            }
        }

        self.remove_orphans(&pods, &observed).await
    }

    fn protected_ids(&self) -> BTreeSet<String> {
        if self.config.snapshot_aware {
            snapshot::snapshot_container_ids(&self.config.snapshot_path())
        } else {
            BTreeSet::new()
        }
    }

    async fn sync_pod(
        &self,
        pod: &NodePod,
        observed: &Observed,
        protected: &BTreeSet<String>,
        ready: bool,
    ) -> Result<(), SyncError> {
        let sandbox = self.ensure_sandbox(pod, observed).await?;
        let mut reports = Vec::with_capacity(pod.containers.len());
        for spec in &pod.containers {
            reports.push(
                Box::pin(self.sync_container(pod, &sandbox, spec, observed, protected)).await?,
            );
        }

        if !pods::status_is_current(pod, &reports, ready) {
            let status = pods::running_status(pod, &reports, ready);
            pods::write_status(&self.client, &pod.pod, &status).await?;
        }
        Ok(())
    }

    async fn ensure_sandbox(
        &self,
        pod: &NodePod,
        observed: &Observed,
    ) -> Result<(String, api::PodSandboxConfig), SyncError> {
        let mut sandboxes: Vec<_> = observed.sandboxes_of(&pod.pod.uid).collect();
        sandboxes.sort_by_key(|s| s.created_at);
        let attempt = u32::try_from(sandboxes.len()).unwrap_or(u32::MAX);
        let ready = sandboxes
            .iter()
            .rev()
            .find(|s| s.state() == api::PodSandboxState::SandboxReady);
        if let Some(sandbox) = ready {
            let attempt = sandbox.metadata.as_ref().map_or(0, |m| m.attempt);
            return Ok((sandbox.id.clone(), cri::sandbox_config(&pod.pod, attempt)));
        }
        let config = cri::sandbox_config(&pod.pod, attempt);
        let id = cri::run_sandbox(&self.runtime, config.clone()).await?;
        tracing::info!(pod = %pod.pod, sandbox = %id, "pod sandbox started");
        Ok((id, config))
    }

    async fn sync_container(
        &self,
        pod: &NodePod,
        sandbox: &(String, api::PodSandboxConfig),
        spec: &SpecContainer,
        observed: &Observed,
        protected: &BTreeSet<String>,
    ) -> Result<ContainerReport, SyncError> {
        let hash = kubelet_hash::hash(&spec.json, &self.config.version, &HashOptions::default())
            .map_err(|source| SyncError::Hash {
                pod: pod.pod.to_string(),
                container: spec.name.clone(),
                source,
            })?;
        let mut existing: Vec<_> = observed
            .containers_of(&pod.pod.uid)
            .filter(|c| label(&c.labels, keys::CONTAINER_NAME) == spec.name)
            .collect();
        existing.sort_by_key(|c| (restart_count_of(c), c.created_at));
        let latest = existing.last().copied();
        if spec.kind == ContainerKind::Init {
            return Ok(report(
                spec,
                latest.map(|c| (c.id.clone(), restart_count_of(c), c.created_at)),
            ));
        }

        let action = decide(
            &hash,
            latest,
            latest.is_some_and(|c| protected.contains(&c.id)),
        );
        let (id, restart_count, started) = match (action, latest) {
            (Action::Keep, Some(running)) => (
                running.id.clone(),
                restart_count_of(running),
                running.created_at,
            ),
            (Action::Replace { restart_count }, Some(running)) => {
                self.replace(pod, sandbox, spec, &hash, running, restart_count)
                    .await?
            }
            (Action::Create { restart_count }, _) => {
                self.create(pod, sandbox, spec, &hash, restart_count)
                    .await?
            }
            (Action::Keep | Action::Replace { .. }, None) => {
                self.create(pod, sandbox, spec, &hash, 0).await?
            }
        };

        self.remove_exited(&existing, &id).await?;
        Ok(report(spec, Some((id, restart_count, started))))
    }

    /// Kills a running container whose hash changed and creates its next attempt.
    async fn replace(
        &self,
        pod: &NodePod,
        sandbox: &(String, api::PodSandboxConfig),
        spec: &SpecContainer,
        hash: &str,
        running: &api::Container,
        restart_count: u32,
    ) -> Result<(String, u32, i64), SyncError> {
        let stored = label(&running.annotations, keys::CONTAINER_HASH);
        let (pod_ref, name) = (&pod.pod, &spec.name);
        tracing::info!(pod = %pod_ref, %name, stored, computed = hash, "hash changed: recreating");
        cri::kill(&self.runtime, &running.id, pod.grace_seconds.min(30)).await?;
        self.create(pod, sandbox, spec, hash, restart_count).await
    }

    async fn create(
        &self,
        pod: &NodePod,
        sandbox: &(String, api::PodSandboxConfig),
        spec: &SpecContainer,
        hash: &str,
        restart_count: u32,
    ) -> Result<(String, u32, i64), SyncError> {
        let mut labels = pod.pod.labels();
        labels.insert(keys::CONTAINER_NAME.to_owned(), spec.name.clone());
        let annotations = HashMap::from([
            (keys::CONTAINER_HASH.to_owned(), hash.to_owned()),
            (keys::RESTART_COUNT.to_owned(), restart_count.to_string()),
            (
                keys::TERMINATION_MESSAGE_PATH.to_owned(),
                spec.termination_message_path.clone(),
            ),
            (
                keys::TERMINATION_MESSAGE_POLICY.to_owned(),
                spec.termination_message_policy.clone(),
            ),
            (
                keys::TERMINATION_GRACE_PERIOD.to_owned(),
                pod.grace_seconds.to_string(),
            ),
        ]);
        let container = NewContainer {
            name: spec.name.clone(),
            runtime_image: self.config.runtime_image.clone(),
            labels,
            annotations,
            attempt: restart_count,
        };
        let id = cri::create_and_start(&self.runtime, &sandbox.0, &sandbox.1, container).await?;
        let (pod_ref, container) = (&pod.pod, &spec.name);
        tracing::info!(pod = %pod_ref, %container, %id, restart_count, hash, "container started");
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        Ok((id, restart_count, now))
    }

    /// Removes the exited containers of one spec container, keeping `current`.
    async fn remove_exited(
        &self,
        existing: &[&api::Container],
        current: &str,
    ) -> Result<(), SyncError> {
        let exited = existing
            .iter()
            .filter(|c| c.id != current && c.state() != api::ContainerState::ContainerRunning);
        for container in exited {
            cri::kill(&self.runtime, &container.id, 0).await?;
        }
        Ok(())
    }

    /// Completes a graceful deletion: stop the containers, remove the sandboxes, delete the pod.
    async fn terminate(&self, pod: &NodePod, observed: &Observed) -> Result<(), SyncError> {
        for container in observed.containers_of(&pod.pod.uid) {
            cri::kill(&self.runtime, &container.id, pod.grace_seconds.min(30)).await?;
        }
        for sandbox in observed.sandboxes_of(&pod.pod.uid) {
            cri::remove_sandbox(&self.runtime, &sandbox.id).await?;
        }
        pods::finish_deletion(&self.client, &pod.pod).await?;
        tracing::info!(pod = %pod.pod, "pod terminated");
        Ok(())
    }

    /// Removes the sandboxes (and containers) of pods no longer bound to this node.
    async fn remove_orphans(&self, pods: &[NodePod], observed: &Observed) -> Result<(), SyncError> {
        let known: BTreeSet<&str> = pods.iter().map(|p| p.pod.uid.as_str()).collect();
        let orphans = observed
            .sandboxes
            .iter()
            .filter(|s| !known.contains(label(&s.labels, keys::POD_UID)));
        for sandbox in orphans {
            let pod = label(&sandbox.labels, keys::POD_NAME);
            tracing::info!(sandbox = %sandbox.id, pod, "removing orphaned sandbox");
            cri::remove_sandbox(&self.runtime, &sandbox.id).await?;
        }
        Ok(())
    }
}

fn report(spec: &SpecContainer, running: Option<(String, u32, i64)>) -> ContainerReport {
    let (container_id, restart_count, started_at_nanos) = running.unwrap_or_default();
    ContainerReport {
        kind: spec.kind,
        name: spec.name.clone(),
        image: spec.image.clone(),
        container_id,
        restart_count,
        started_at_nanos,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(hash: &str, restart_count: u32) -> api::Container {
        api::Container {
            id: "c1".to_owned(),
            state: api::ContainerState::ContainerRunning.into(),
            annotations: HashMap::from([
                (keys::CONTAINER_HASH.to_owned(), hash.to_owned()),
                (keys::RESTART_COUNT.to_owned(), restart_count.to_string()),
            ]),
            ..Default::default()
        }
    }

    #[test]
    fn a_missing_container_is_created_with_restart_count_zero() {
        assert_eq!(
            decide("8e45cbd0", None, false),
            Action::Create { restart_count: 0 }
        );
    }

    #[test]
    fn a_running_container_with_the_same_hash_is_kept() {
        assert_eq!(
            decide("311670a", Some(&running("0311670a", 2)), false),
            Action::Keep
        );
    }

    #[test]
    fn a_running_container_with_another_hash_is_recreated_with_one_more_restart() {
        let action = decide("8e45cbd0", Some(&running("311670a", 2)), false);
        assert_eq!(action, Action::Replace { restart_count: 3 });
    }

    #[test]
    fn a_container_listed_in_the_snapshot_is_kept_despite_another_hash() {
        assert_eq!(
            decide("8e45cbd0", Some(&running("311670a", 0)), true),
            Action::Keep
        );
    }

    #[test]
    fn a_missing_hash_annotation_counts_as_changed() {
        let mut container = running("", 0);
        container.annotations.remove(keys::CONTAINER_HASH);
        assert_eq!(
            decide("1", Some(&container), false),
            Action::Replace { restart_count: 1 }
        );
    }

    #[test]
    fn an_exited_container_is_replaced_by_a_new_attempt() {
        let mut container = running("1", 4);
        container.state = api::ContainerState::ContainerExited.into();
        assert_eq!(
            decide("1", Some(&container), false),
            Action::Create { restart_count: 5 }
        );
    }
}
