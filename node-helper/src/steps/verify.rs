//! Verify: the kubelet is healthy, its on-disk binary and the Node report the expected version,
//! the Node is Ready, and every container predicted `Preserved` keeps its ID and restart count for
//! the settle period. Every restart seen (predicted or not) is recorded with the container IDs
//! before and after. Used for the new kubelet and, after a rollback, for the previous one.

use std::collections::BTreeMap;
use std::time::Duration;

use kubelift_crds::Verdict;
use tokio::time::Instant;

use crate::cluster::ClusterView;
use crate::context::NodeContext;
use crate::cri::{self, CriClient, CriError, RuntimeContainer};
use crate::journal::Restart;
use crate::kubelet;
use crate::snapshot::SnapshotBody;

/// Errors of verification.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The kubelet did not become healthy at the expected version in time.
    #[error(
        "failed to see kubelet {version} healthy and its Node Ready within {timeout:?}: {last}"
    )]
    NotReady {
        /// Expected version.
        version: String,
        /// How long was waited.
        timeout: Duration,
        /// The last thing missing.
        last: String,
    },
    /// Containers predicted `Preserved` restarted.
    #[error("failed to preserve {count} container(s): {details}")]
    UnexpectedRestarts {
        /// How many.
        count: usize,
        /// Each as `namespace/pod/container id-before -> id-after`.
        details: String,
    },
    /// The runtime could not be read.
    #[error("failed to read containers during verification")]
    Cri(#[from] CriError),
}

impl VerifyError {
    /// `PascalCase` reason for status, Events and metrics.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotReady { .. } => "KubeletNotReady",
            Self::UnexpectedRestarts { .. } => "UnexpectedRestarts",
            Self::Cri(_) => "RuntimeUnavailable",
        }
    }
}

/// How often the kubelet's own health endpoint (on loopback) is probed while it restarts: cheap,
/// and the end of the restart is seen within this much rather than within a poll interval.
const HEALTH_PROBE: Duration = Duration::from_millis(25);

/// Waits until the kubelet is healthy, reports `version` on disk and (when observed) on the Node,
/// and the Node is Ready: the health endpoint probed every [`HEALTH_PROBE`], the Node watched.
pub async fn wait_ready(
    ctx: &NodeContext,
    cluster: &ClusterView,
    version: &str,
    timeout: Duration,
) -> Result<(), VerifyError> {
    let deadline = Instant::now() + timeout;
    loop {
        let gap = match local_gap(ctx, version).await {
            Some(gap) => gap,
            None => match node_gap(ctx, cluster, version, deadline).await {
                Some(gap) => gap,
                None if local_gap(ctx, version).await.is_none() => return Ok(()),
                None => "the kubelet stopped answering once the Node was Ready".to_owned(),
            },
        };

        if Instant::now() >= deadline {
            return Err(VerifyError::NotReady {
                version: version.to_owned(),
                timeout,
                last: gap,
            });
        }
        tracing::debug!(%gap, "waiting for the kubelet");
        tokio::time::sleep(HEALTH_PROBE.min(ctx.poll_interval)).await;
    }
}

/// What keeps the kubelet on this node from counting as ready: its health, then the version of
/// the binary on disk; `None` when nothing does.
async fn local_gap(ctx: &NodeContext, version: &str) -> Option<String> {
    if !kubelet::healthy(&ctx.http, &ctx.health_url).await {
        return Some(format!("{} is not healthy", ctx.health_url));
    }
    match kubelet::binary_version(&ctx.paths.kubelet).await {
        Ok(on_disk) if on_disk == version => None,
        Ok(on_disk) => Some(format!("the kubelet on disk reports {on_disk}")),
        Err(error) => Some(error.to_string()),
    }
}

/// Waits (by watch, until `deadline`) for the Node to report `version` and be Ready; what it
/// reports instead when it does not.
async fn node_gap(
    ctx: &NodeContext,
    cluster: &ClusterView,
    version: &str,
    deadline: Instant,
) -> Option<String> {
    let limit = deadline.saturating_duration_since(Instant::now());
    let ready = Box::pin(cluster.await_node_ready(&ctx.node_name, version, limit));
    match ready.await {
        Ok(true) => return None,
        Ok(false) => {}
        Err(error) => return Some(error.to_string()),
    }

    match cluster.node_state(&ctx.node_name).await {
        Ok(Some(node)) if node.kubelet_version != version => {
            Some(format!("the Node reports kubelet {}", node.kubelet_version))
        }
        Ok(Some(node)) if !node.ready => Some("the Node is not Ready".to_owned()),
        Ok(_) => None,
        Err(error) => Some(error.to_string()),
    }
}

/// Watches the snapshot's containers for `settle`, returning every restart seen; fails when the
/// restarts of containers predicted `Preserved` exceed `max_unexpected`.
pub async fn settle(
    ctx: &NodeContext,
    cri: &mut CriClient,
    snapshot: &SnapshotBody,
    settle: Duration,
    max_unexpected: usize,
) -> Result<Vec<Restart>, VerifyError> {
    let deadline = Instant::now() + settle;
    let mut seen = BTreeMap::new();
    loop {
        for restart in restarts_since(snapshot, &cri.running_containers().await?) {
            seen.insert(
                (restart.pod_uid.clone(), restart.container_name.clone()),
                restart,
            );
        }
        let restarts: Vec<Restart> = seen.values().cloned().collect();
        let unexpected: Vec<&Restart> = restarts.iter().filter(|r| r.unexpected).collect();
        if unexpected.len() > max_unexpected {
            return Err(VerifyError::UnexpectedRestarts {
                count: unexpected.len(),
                details: describe(&unexpected),
            });
        }
        if Instant::now() >= deadline {
            return Ok(restarts);
        }
        tokio::time::sleep(ctx.poll_interval.min(deadline - Instant::now())).await;
    }
}

/// Compares the running containers with the snapshot: a container whose ID or restart count
/// changed, or that no longer runs, restarted.
#[must_use]
pub fn restarts_since(snapshot: &SnapshotBody, running: &[RuntimeContainer]) -> Vec<Restart> {
    let now = cri::by_key(running);
    snapshot
        .containers
        .iter()
        .filter_map(|before| {
            let before_c = &before.container;
            let after = now.get(&before_c.key());
            let unchanged = after
                .is_some_and(|a| a.id == before_c.id && a.restart_count == before_c.restart_count);
            (!unchanged).then(|| Restart {
                pod_namespace: before_c.pod_namespace.clone(),
                pod_name: before_c.pod_name.clone(),
                pod_uid: before_c.pod_uid.clone(),
                container_name: before_c.container_name.clone(),
                id_before: before_c.id.clone(),
                id_after: after.map(|a| a.id.clone()).unwrap_or_default(),
                restart_count_before: before_c.restart_count,
                restart_count_after: after.map_or(before_c.restart_count, |a| a.restart_count),
                unexpected: before.verdict == Verdict::Preserved,
            })
        })
        .collect()
}

fn describe(restarts: &[&Restart]) -> String {
    let each: Vec<String> = restarts
        .iter()
        .map(|r| {
            let after = if r.id_after.is_empty() {
                "gone"
            } else {
                r.id_after.as_str()
            };
            format!(
                "{}/{}/{} {} -> {}",
                r.pod_namespace, r.pod_name, r.container_name, r.id_before, after
            )
        })
        .collect();
    each.join(", ")
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::snapshot::SnapshotContainer;

    fn container(name: &str, id: &str, restarts: u32) -> RuntimeContainer {
        RuntimeContainer {
            id: id.into(),
            pod_uid: "uid-1".into(),
            pod_namespace: "shop".into(),
            pod_name: "web-0".into(),
            container_name: name.into(),
            hash: "1".into(),
            hash_without_resources: None,
            restart_count: restarts,
            started_at: 0,
        }
    }

    fn snapshot() -> SnapshotBody {
        let entry = |name, id, verdict| SnapshotContainer {
            container: container(name, id, 0),
            verdict,
        };
        SnapshotBody {
            node: "node-a".into(),
            upgrade_uid: "u".into(),
            attempt: 1,
            kubelet_version_before: "v1.31.0".into(),
            kubelet_version_after: "v1.32.0".into(),
            taken_at: Timestamp::UNIX_EPOCH,
            containers: vec![
                entry("app", "a1", Verdict::Preserved),
                entry("job", "j1", Verdict::WillRestart),
                entry("web", "w1", Verdict::Preserved),
            ],
        }
    }

    #[test]
    fn recreated_and_vanished_containers_are_restarts_with_both_ids() {
        let now = [container("app", "a2", 1), container("job", "j1", 0)];
        let restarts = restarts_since(&snapshot(), &now);
        let seen: Vec<(&str, &str, &str, bool)> = restarts
            .iter()
            .map(|r| {
                (
                    r.container_name.as_str(),
                    r.id_before.as_str(),
                    r.id_after.as_str(),
                    r.unexpected,
                )
            })
            .collect();
        assert_eq!(seen, [("app", "a1", "a2", true), ("web", "w1", "", true)]);
    }

    #[test]
    fn a_bumped_restart_count_with_the_same_id_is_a_restart() {
        let now = [
            container("app", "a1", 1),
            container("job", "j1", 0),
            container("web", "w1", 0),
        ];
        let restarts = restarts_since(&snapshot(), &now);
        assert_eq!(restarts.len(), 1);
        assert_eq!(
            (
                restarts[0].restart_count_before,
                restarts[0].restart_count_after
            ),
            (0, 1)
        );
    }
}
