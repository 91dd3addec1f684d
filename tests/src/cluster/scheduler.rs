//! A round-robin scheduler: each pending pod (no `spec.nodeName`, not being deleted) goes to the
//! next schedulable Ready node in name order, the cursor carried across passes.

use k8s_openapi::api::core::v1::{Node, Pod};

use super::decide::Write;

/// The scheduler's cursor.
#[derive(Debug, Clone, Default)]
pub struct RoundRobin {
    next: usize,
}

fn is_schedulable(node: &Node) -> bool {
    let unschedulable = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    let ready = conditions
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    ready && !unschedulable
}

fn is_pending(pod: &Pod) -> bool {
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or_default();
    node.is_empty() && pod.metadata.deletion_timestamp.is_none()
}

impl RoundRobin {
    /// Bindings for every pending pod (none when no node can take pods).
    pub fn bind(&mut self, pods: &[Pod], nodes: &[Node]) -> Vec<Write> {
        let mut candidates: Vec<&str> = nodes
            .iter()
            .filter(|n| is_schedulable(n))
            .filter_map(|n| n.metadata.name.as_deref())
            .collect();
        candidates.sort_unstable();
        if candidates.is_empty() {
            return Vec::new();
        }
        let mut pending: Vec<&Pod> = pods.iter().filter(|p| is_pending(p)).collect();
        pending.sort_by_key(|p| {
            (
                p.metadata.creation_timestamp.clone(),
                p.metadata.name.clone(),
            )
        });
        pending
            .into_iter()
            .map(|pod| {
                let node = candidates[self.next % candidates.len()];
                self.next = self.next.wrapping_add(1);
                Write::BindPod {
                    namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                    name: pod.metadata.name.clone().unwrap_or_default(),
                    node: node.to_owned(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

    use serde_json::json;

    use super::*;

    fn node(name: &str, ready: bool, unschedulable: bool) -> Node {
        let status = if ready { "True" } else { "False" };
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"unschedulable": unschedulable},
            "status": {"conditions": [{"type": "Ready", "status": status}]},
        }))
        .unwrap()
    }

    fn pending(name: &str) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"containers": []}}),
        )
        .unwrap()
    }

    fn targets(writes: &[Write]) -> Vec<&str> {
        writes
            .iter()
            .map(|w| match w {
                Write::BindPod { node, .. } => node.as_str(),
                _ => "",
            })
            .collect()
    }

    #[test]
    fn pending_pods_go_round_robin_over_schedulable_ready_nodes() {
        let nodes = [
            node("b", true, false),
            node("a", true, false),
            node("c", true, true),
            node("d", false, false),
        ];
        let pods = [pending("p1"), pending("p2"), pending("p3")];
        let mut scheduler = RoundRobin::default();
        assert_eq!(targets(&scheduler.bind(&pods, &nodes)), ["a", "b", "a"]);
        assert_eq!(
            targets(&scheduler.bind(&pods[..1], &nodes)),
            ["b"],
            "the cursor carries over"
        );
    }

    #[test]
    fn nothing_is_bound_when_no_node_takes_pods() {
        let nodes = [node("a", true, true)];
        assert!(
            RoundRobin::default()
                .bind(&[pending("p1")], &nodes)
                .is_empty()
        );
    }
}
