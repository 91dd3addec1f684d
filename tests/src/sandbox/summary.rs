//! What a rollout did, per container: the container IDs and restart counts of every pod before
//! the plan was applied, compared with the pods afterwards, next to the verdict each node's
//! helper predicted (its `NodeUpgrade` lists every container that is not `Preserved`).

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Node, Pod};
use kubelift_crds::NodeUpgrade;
use serde::Serialize;

/// One container as seen in a pod's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    /// The container ID.
    pub id: String,
    /// The restart count.
    pub restart_count: i32,
}

/// One pod as seen before the rollout.
#[derive(Debug, Clone)]
pub struct PodRecord {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
    /// The node it runs on.
    pub node: String,
    /// Containers by name.
    pub containers: BTreeMap<String, ContainerState>,
}

impl PodRecord {
    /// Reads a pod (its containers as far as its status reports them).
    #[must_use]
    pub fn from_pod(pod: &Pod) -> Self {
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        let containers = statuses
            .into_iter()
            .flatten()
            .map(|s| {
                let id = s.container_id.clone().unwrap_or_default();
                let state = ContainerState {
                    id,
                    restart_count: s.restart_count,
                };
                (s.name.clone(), state)
            })
            .collect();
        Self {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            node: pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default(),
            containers,
        }
    }
}

/// One container's fate, as `--json` writes it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerEntry {
    /// `namespace/name` of the pod.
    pub pod: String,
    /// The container's name.
    pub container: String,
    /// The node it ran on before the rollout.
    pub node: String,
    /// What the node's helper predicted (`Preserved`, `WillRestart`, `Unknown`), or
    /// `NotPredicted` when the node was never prepared.
    pub predicted: String,
    /// Whether it was recreated (new container ID or higher restart count) in a surviving pod.
    pub restarted: bool,
    /// Whether its pod was evicted (deleted) during the rollout.
    pub evicted: bool,
    /// Container ID before.
    pub container_id_before: String,
    /// Container ID after (`null` when the pod is gone).
    pub container_id_after: Option<String>,
}

/// The rollout's summary, as printed and as `--json` writes it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// The plan's name.
    pub plan: String,
    /// The version the nodes started at.
    pub from: String,
    /// The target version.
    pub to: String,
    /// The container policy.
    pub policy: String,
    /// The plan's final phase.
    pub phase: String,
    /// The plan's status message, if any.
    pub message: Option<String>,
    /// Whether the plan completed.
    pub completed: bool,
    /// Nodes in the sandbox.
    pub nodes: usize,
    /// Nodes whose `NodeUpgrade` succeeded.
    pub nodes_upgraded: usize,
    /// Each node's reported kubelet version afterwards.
    pub node_versions: BTreeMap<String, String>,
    /// Containers running before the rollout.
    pub containers: usize,
    /// Containers that still run untouched (same ID, same restart count).
    pub containers_preserved: usize,
    /// Containers predicted to restart (`WillRestart` or `Unknown`).
    pub restarts_predicted: usize,
    /// Containers recreated in surviving pods.
    pub restarts_observed: usize,
    /// Containers predicted `Preserved` that were recreated anyway.
    pub unexpected_restarts: usize,
    /// Evictions the API server accepted while the plan ran; a replacement pod scheduled onto
    /// a node not yet upgraded may be evicted again, so this can exceed the pods that ran before.
    pub pods_evicted: usize,
    /// Pods that ran before the rollout and were evicted (gone afterwards).
    pub original_pods_evicted: usize,
    /// Wall time from applying the plan to its end, in seconds.
    pub duration_seconds: f64,
    /// One entry per container.
    pub entries: Vec<ContainerEntry>,
}

impl Summary {
    /// Whether the sandbox succeeded: the rollout completed, every node now runs the target
    /// (a plan that skipped every node also reads `Complete`), and no container predicted
    /// `Preserved` restarted.
    #[must_use]
    pub fn success(&self) -> bool {
        self.completed && self.nodes_upgraded == self.nodes && self.unexpected_restarts == 0
    }
}

/// The plan-level facts the summary reports.
#[derive(Debug, Clone)]
pub struct PlanOutcome {
    /// The plan's name.
    pub plan: String,
    /// From version.
    pub from: String,
    /// To version.
    pub to: String,
    /// Policy.
    pub policy: String,
    /// Final phase.
    pub phase: String,
    /// Status message.
    pub message: Option<String>,
    /// Whether the phase is `Complete`.
    pub completed: bool,
    /// Wall time in seconds.
    pub duration_seconds: f64,
    /// Evictions the API server accepted while the plan ran.
    pub evictions: usize,
}

/// Builds the summary from the pods before, the pods, Nodes and `NodeUpgrade`s afterwards.
#[must_use]
pub fn summarize(
    outcome: PlanOutcome,
    before: &[PodRecord],
    after: &[Pod],
    nodes: &[Node],
    upgrades: &[NodeUpgrade],
) -> Summary {
    let after: HashMap<String, PodRecord> = after
        .iter()
        .map(PodRecord::from_pod)
        .map(|p| (p.uid.clone(), p))
        .collect();
    let verdicts = Verdicts::new(upgrades);
    let entries: Vec<ContainerEntry> = before
        .iter()
        .flat_map(|pod| entries_of(pod, after.get(&pod.uid), &verdicts))
        .collect();
    let preserved = |e: &&ContainerEntry| e.predicted == "Preserved";
    let restarting = |e: &&ContainerEntry| e.predicted == "WillRestart" || e.predicted == "Unknown";
    Summary {
        plan: outcome.plan,
        from: outcome.from,
        to: outcome.to,
        policy: outcome.policy,
        phase: outcome.phase,
        message: outcome.message,
        completed: outcome.completed,
        nodes: nodes.len(),
        nodes_upgraded: upgrades.iter().filter(|u| succeeded(u)).count(),
        node_versions: node_versions(nodes),
        containers: entries.len(),
        containers_preserved: entries
            .iter()
            .filter(|e| !e.restarted && !e.evicted)
            .count(),
        restarts_predicted: entries.iter().filter(restarting).count(),
        restarts_observed: entries.iter().filter(|e| e.restarted).count(),
        unexpected_restarts: entries
            .iter()
            .filter(preserved)
            .filter(|e| e.restarted)
            .count(),
        pods_evicted: outcome.evictions,
        original_pods_evicted: before
            .iter()
            .filter(|p| !after.contains_key(&p.uid))
            .count(),
        duration_seconds: outcome.duration_seconds,
        entries,
    }
}

fn entries_of(
    pod: &PodRecord,
    after: Option<&PodRecord>,
    verdicts: &Verdicts,
) -> Vec<ContainerEntry> {
    pod.containers
        .iter()
        .map(|(name, state)| {
            let now = after.and_then(|p| p.containers.get(name));
            let restarted =
                now.is_some_and(|n| n.id != state.id || n.restart_count > state.restart_count);
            ContainerEntry {
                pod: format!("{}/{}", pod.namespace, pod.name),
                container: name.clone(),
                node: pod.node.clone(),
                predicted: verdicts.of(pod, name),
                restarted,
                evicted: after.is_none(),
                container_id_before: state.id.clone(),
                container_id_after: now.map(|n| n.id.clone()),
            }
        })
        .collect()
}

/// The helpers' predictions: the nodes that reported one, and every non-`Preserved` entry.
struct Verdicts {
    predicted_nodes: std::collections::HashSet<String>,
    listed: HashMap<(String, String), String>,
}

impl Verdicts {
    fn new(upgrades: &[NodeUpgrade]) -> Self {
        let mut predicted_nodes = std::collections::HashSet::new();
        let mut listed = HashMap::new();
        for upgrade in upgrades {
            let Some(status) = &upgrade.status else {
                continue;
            };
            if status.prediction.is_some() {
                predicted_nodes.insert(upgrade.spec.node_name.clone());
            }
            for entry in &status.containers {
                let key = (entry.pod_uid.clone(), entry.container.clone());
                listed.insert(key, format!("{:?}", entry.verdict));
            }
        }
        Self {
            predicted_nodes,
            listed,
        }
    }

    fn of(&self, pod: &PodRecord, container: &str) -> String {
        if let Some(verdict) = self.listed.get(&(pod.uid.clone(), container.to_owned())) {
            return verdict.clone();
        }
        if self.predicted_nodes.contains(&pod.node) {
            "Preserved".to_owned()
        } else {
            "NotPredicted".to_owned()
        }
    }
}

fn succeeded(upgrade: &NodeUpgrade) -> bool {
    let phase = upgrade.status.as_ref().and_then(|s| s.phase);
    phase == Some(kubelift_crds::NodePhase::Succeeded)
}

fn node_versions(nodes: &[Node]) -> BTreeMap<String, String> {
    nodes
        .iter()
        .map(|node| {
            let info = node.status.as_ref().and_then(|s| s.node_info.as_ref());
            let version = info.map(|i| i.kubelet_version.clone()).unwrap_or_default();
            (node.metadata.name.clone().unwrap_or_default(), version)
        })
        .collect()
}

/// The summary as the sandbox prints it.
#[must_use]
pub fn render(summary: &Summary) -> String {
    let mut text = format!(
        "\nkubelift sandbox: {} -> {} under {} on {} node{}\n",
        summary.from,
        summary.to,
        summary.policy,
        summary.nodes,
        if summary.nodes == 1 { "" } else { "s" }
    );
    let line = |label: &str, value: String| format!("  {label:<34}{value}\n");
    text.push_str(&line("plan phase", summary.phase.clone()));
    if let Some(message) = &summary.message {
        text.push_str(&line("message", message.clone()));
    }
    text.push_str(&line(
        "nodes upgraded",
        format!("{}/{}", summary.nodes_upgraded, summary.nodes),
    ));
    text.push_str(&line(
        "containers preserved",
        format!("{}/{}", summary.containers_preserved, summary.containers),
    ));
    let restarts = format!(
        "{} predicted, {} observed",
        summary.restarts_predicted, summary.restarts_observed
    );
    text.push_str(&line("containers restarted", restarts));
    text.push_str(&line(
        "unexpected restarts (Preserved)",
        summary.unexpected_restarts.to_string(),
    ));
    let replacements = summary
        .pods_evicted
        .saturating_sub(summary.original_pods_evicted);
    let evicted = match replacements {
        0 => summary.pods_evicted.to_string(),
        again => format!(
            "{} ({again} replacement pods evicted again)",
            summary.pods_evicted
        ),
    };
    text.push_str(&line("pods evicted", evicted));
    text.push_str(&line(
        "duration",
        format!("{:.1} s", summary.duration_seconds),
    ));
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;
    use kubelift_crds::Verdict;

    fn pod(uid: &str, node: &str, id: &str, restarts: i32) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("pod-{uid}"), "namespace": "shop", "uid": uid},
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": "app:1"}]},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "app", "image": "app:1", "imageID": "", "ready": true,
                "restartCount": restarts, "containerID": id,
            }]},
        }))
        .unwrap()
    }

    fn prepared(node: &str, listed: &[(&str, Verdict)]) -> NodeUpgrade {
        let mut upgrade: NodeUpgrade = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("plan-{node}")},
            "spec": {
                "nodeName": node, "plan": "plan", "version": "v1.32.1", "stage": "Execute",
                "binary": {"url": "http://127.0.0.1/k", "sha256": "0".repeat(64)},
            },
        }))
        .unwrap();
        let containers = listed
            .iter()
            .map(|(uid, verdict)| kubelift_crds::ContainerVerdict {
                pod_namespace: "shop".into(),
                pod_name: format!("pod-{uid}"),
                pod_uid: (*uid).into(),
                container: "app".into(),
                verdict: *verdict,
                stored_hash: None,
                current_hash: None,
                target_hash: None,
                not_evictable: false,
            })
            .collect();
        upgrade.status = Some(kubelift_crds::NodeUpgradeStatus {
            phase: Some(kubelift_crds::NodePhase::Succeeded),
            prediction: Some(kubelift_crds::PredictionCounts::default()),
            containers,
            ..Default::default()
        });
        upgrade
    }

    fn outcome() -> PlanOutcome {
        PlanOutcome {
            plan: "plan".into(),
            from: "v1.31.4".into(),
            to: "v1.32.1".into(),
            policy: "Preserve".into(),
            phase: "Complete".into(),
            message: None,
            completed: true,
            duration_seconds: 1.0,
            evictions: 1,
        }
    }

    #[test]
    fn a_preserved_container_that_restarted_fails_the_sandbox() {
        let before = [PodRecord::from_pod(&pod("a", "n1", "c1", 0))];
        let after = [pod("a", "n1", "c2", 1)];
        let summary = summarize(outcome(), &before, &after, &[], &[prepared("n1", &[])]);

        assert_eq!(summary.entries[0].predicted, "Preserved");
        assert!(summary.entries[0].restarted);
        assert_eq!(summary.unexpected_restarts, 1);
        assert!(!summary.success());
    }

    #[test]
    fn a_predicted_restart_and_an_eviction_do_not_fail_the_sandbox() {
        let before = [
            PodRecord::from_pod(&pod("a", "n1", "c1", 0)),
            PodRecord::from_pod(&pod("b", "n1", "c3", 0)),
        ];
        let after = [pod("a", "n1", "c2", 1)];
        let upgrade = prepared(
            "n1",
            &[("a", Verdict::WillRestart), ("b", Verdict::WillRestart)],
        );
        let node = Node {
            metadata: kube::api::ObjectMeta {
                name: Some("n1".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let summary = summarize(outcome(), &before, &after, &[node], &[upgrade]);

        assert_eq!(summary.restarts_predicted, 2);
        assert_eq!(summary.restarts_observed, 1);
        assert_eq!(summary.pods_evicted, 1);
        assert_eq!(summary.original_pods_evicted, 1);
        assert_eq!(summary.containers_preserved, 0);
        assert!(summary.success());
    }
}
