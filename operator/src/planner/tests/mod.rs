//! Planner tests: a small simulated cluster (`World`) that applies the planner's actions the way
//! the reconciler and the API server would, scripted helpers, and a frozen clock.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "tests fail loudly on broken fixtures"
)]

mod properties;
mod scenarios;

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kubelift_crds::{
    ContainerVerdict, KubeletUpgradeSpec, KubeletUpgradeStatus, NodePhase, NodeUpgradeStatus,
    PredictionCounts, Stage, Verdict,
};

use super::{Action, NodeUpgradeView, NodeView, Plan, PlanInput, PlanView, PodView, plan};

pub const FROM: &str = "v1.31.4";
pub const TARGET: &str = "v1.32.1";

pub fn spec() -> KubeletUpgradeSpec {
    serde_json::from_value(serde_json::json!({
        "version": TARGET,
        "binary": { "url": "https://example.com/kubelet", "sha256": "a".repeat(64) },
        "rollout": { "soakSeconds": 0 }
    }))
    .unwrap()
}

pub fn node(name: &str) -> NodeView {
    NodeView {
        name: name.to_owned(),
        ready: true,
        kubelet_version: FROM.to_owned(),
        ..NodeView::default()
    }
}

/// How a scripted helper treats a node.
#[derive(Clone, Debug, Default)]
pub struct Script {
    pub fail: bool,
    pub restarting: Vec<ContainerVerdict>,
}

pub fn restarting(namespace: &str, pod: &str, not_evictable: bool) -> ContainerVerdict {
    ContainerVerdict {
        pod_namespace: namespace.to_owned(),
        pod_name: pod.to_owned(),
        pod_uid: format!("uid-{pod}"),
        container: "app".to_owned(),
        verdict: Verdict::WillRestart,
        stored_hash: None,
        current_hash: None,
        target_hash: None,
        not_evictable,
    }
}

/// A simulated cluster with one plan.
pub struct World {
    pub plan: PlanView,
    pub nodes: BTreeMap<String, NodeView>,
    pub nus: BTreeMap<String, NodeUpgradeView>,
    pub pods: BTreeMap<String, Vec<PodView>>,
    pub claims: BTreeMap<String, String>,
    pub scripts: BTreeMap<String, Script>,
    pub operator_node: Option<String>,
    pub now: Timestamp,
    /// Every action applied, in order.
    pub log: Vec<Action>,
    pub last: Plan,
}

impl World {
    pub fn new(spec: KubeletUpgradeSpec, nodes: Vec<NodeView>) -> Self {
        World {
            plan: PlanView {
                name: "patch".to_owned(),
                generation: 1,
                spec,
                status: KubeletUpgradeStatus::default(),
                retry: None,
                retry_handled: None,
                resume: None,
                deleting: false,
                has_finalizer: false,
            },
            nodes: nodes.into_iter().map(|n| (n.name.clone(), n)).collect(),
            nus: BTreeMap::new(),
            pods: BTreeMap::new(),
            claims: BTreeMap::new(),
            scripts: BTreeMap::new(),
            operator_node: None,
            now: "2026-03-02T10:00:00Z".parse().unwrap(),
            log: Vec::new(),
            last: Plan::default(),
        }
    }

    pub fn input(&self) -> PlanInput {
        PlanInput {
            plan: self.plan.clone(),
            nodes: self.nodes.values().cloned().collect(),
            node_upgrades: self.nus.values().cloned().collect(),
            claims: self.claims.clone(),
            pods: self.pods.clone(),
            blocked_evictions: BTreeMap::new(),
            operator_node: self.operator_node.clone(),
            api_server_version: Some("v1.33.0".to_owned()),
            now: self.now,
        }
    }

    /// One reconcile: plan (twice when pods are needed), apply the actions, store the status.
    pub fn reconcile(&mut self) -> Plan {
        let mut planned = plan(&self.input());
        if !planned.pods_needed.is_empty() {
            for node in &planned.pods_needed {
                self.pods.entry(node.clone()).or_default();
            }
            planned = plan(&self.input());
        }
        for action in planned.actions.clone() {
            self.apply(action);
        }
        self.plan.status = planned.status.clone();
        self.last = planned.clone();
        planned
    }

    fn apply(&mut self, action: Action) {
        self.log.push(action.clone());
        match action {
            Action::AddFinalizer => self.plan.has_finalizer = true,
            Action::RemoveFinalizer => self.plan.has_finalizer = false,
            Action::ApplyNodeUpgrade(order) => {
                let entry = self
                    .nus
                    .entry(order.name.clone())
                    .or_insert_with(|| NodeUpgradeView {
                        name: order.name.clone(),
                        generation: 0,
                        created: Some(self.now),
                        stage_since: None,
                        evicting_since: None,
                        deleting: false,
                        spec: order.spec.clone(),
                        status: None,
                    });
                if entry.generation == 0 || entry.spec != order.spec {
                    entry.generation += 1;
                }
                entry.spec = order.spec;
                entry.stage_since = Some(order.stage_since);
                entry.evicting_since = order.evicting_since.or(entry.evicting_since);
            }
            Action::DeleteNodeUpgrade { name } => {
                self.nus.remove(&name);
            }
            Action::Cordon { node } => {
                let node = self.nodes.get_mut(&node).unwrap();
                assert!(
                    !node.unschedulable,
                    "cordoned an already unschedulable node"
                );
                node.unschedulable = true;
                node.cordoned_by = Some(self.plan.name.clone());
            }
            Action::Uncordon { node } => {
                let node = self.nodes.get_mut(&node).unwrap();
                assert_eq!(
                    node.cordoned_by.as_deref(),
                    Some("patch"),
                    "uncordoned a foreign cordon"
                );
                node.unschedulable = false;
                node.cordoned_by = None;
            }
            Action::Evict {
                node,
                namespace,
                pod,
            }
            | Action::DeletePod {
                node,
                namespace,
                pod,
            } => {
                let pods = self.pods.entry(node).or_default();
                pods.retain(|p| !(p.namespace == namespace && p.name == pod));
            }
            Action::MarkRetryHandled { value } => self.plan.retry_handled = Some(value),
            Action::DeletePlan => self.plan.deleting = true,
        }
    }

    /// The scripted helper of `node` takes one step on its NodeUpgrade.
    pub fn helper_step(&mut self, node: &str) {
        let script = self.scripts.get(node).cloned().unwrap_or_default();
        let now = self.now;
        let target = self.nodes.get(node).map(|n| n.kubelet_version.clone());
        let Some(nu) = self.nus.values_mut().find(|nu| nu.spec.node_name == node) else {
            return;
        };
        let phase = nu
            .status
            .as_ref()
            .filter(|s| s.observed_generation == Some(nu.generation))
            .and_then(|s| s.phase);
        let next = match (nu.spec.stage, phase) {
            (Stage::Prepare, None | Some(NodePhase::Pending | NodePhase::Preparing)) => {
                NodePhase::Prepared
            }
            (Stage::Execute, None | Some(NodePhase::Prepared)) => NodePhase::Installing,
            (Stage::Execute, Some(NodePhase::Installing)) if script.fail => NodePhase::RolledBack,
            (Stage::Execute, Some(NodePhase::Installing)) => NodePhase::Succeeded,
            _ => return,
        };
        let restarts = i32::try_from(script.restarting.len()).unwrap();
        nu.status = Some(NodeUpgradeStatus {
            observed_generation: Some(nu.generation),
            observed_attempt: nu.spec.attempt,
            phase: Some(next),
            from_version: target,
            prediction: Some(PredictionCounts {
                preserved: 3,
                will_restart: restarts,
                unknown: 0,
            }),
            containers: script.restarting.clone(),
            completion_time: next.is_terminal().then_some(Time(now)),
            last_heartbeat_time: Some(Time(now)),
            reason: (next == NodePhase::RolledBack).then(|| "VerifyFailed".to_owned()),
            ..NodeUpgradeStatus::default()
        });
        if next == NodePhase::Succeeded {
            let version = nu.spec.version.clone();
            self.nodes.get_mut(node).unwrap().kubelet_version = version;
        }
    }

    pub fn helpers_step(&mut self) {
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for name in names {
            self.helper_step(&name);
        }
    }

    pub fn advance(&mut self, seconds: i64) {
        self.now = self
            .now
            .saturating_add(SignedDuration::from_secs(seconds))
            .unwrap();
    }

    /// Reconcile and let every helper step until nothing changes (bounded).
    pub fn run(&mut self, rounds: usize) {
        for _ in 0..rounds {
            self.reconcile();
            self.helpers_step();
            self.advance(1);
        }
        self.reconcile();
    }

    pub fn nu(&self, node: &str) -> Option<&NodeUpgradeView> {
        self.nus.values().find(|nu| nu.spec.node_name == node)
    }

    pub fn created_order(&self) -> Vec<String> {
        let mut seen = Vec::new();
        for action in &self.log {
            if let Action::ApplyNodeUpgrade(order) = action
                && !seen.contains(&order.spec.node_name)
            {
                seen.push(order.spec.node_name.clone());
            }
        }
        seen
    }

    /// Nodes made unavailable by the plan (cordoned by it, or executing) plus NotReady targeted
    /// ones.
    pub fn unavailable(&self) -> usize {
        self.nodes
            .values()
            .filter(|n| {
                n.labels
                    .get("kubelift.dev/exclude")
                    .is_none_or(|v| v != "true")
            })
            .filter(|n| {
                let executing = self.nu(&n.name).is_some_and(|nu| {
                    nu.spec.stage == Stage::Execute
                        && !nu
                            .status
                            .as_ref()
                            .and_then(|s| s.phase)
                            .is_some_and(NodePhase::is_terminal)
                });
                n.cordoned_by.as_deref() == Some("patch") || executing || !n.ready
            })
            .count()
    }
}

pub fn nodes(count: usize) -> Vec<NodeView> {
    (0..count).map(|i| node(&format!("node-{i:02}"))).collect()
}

pub fn max_unavailable(value: i32) -> IntOrString {
    IntOrString::Int(value)
}
