//! What the planner sees: a slim, owned snapshot of the plan, the nodes, this plan's
//! NodeUpgrades, other plans' claims and the pods of nodes being evicted, taken at one instant.
//!
//! Every field is plain data so tests can build any cluster without an API server.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use kubelift_crds::{KubeletUpgradeSpec, KubeletUpgradeStatus, NodeUpgradeSpec, NodeUpgradeStatus};

/// Label that marks a control-plane node (upgraded first).
pub const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";
/// Label naming a node's zone (used by `ZoneRoundRobin`).
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Everything one planning pass needs.
#[derive(Clone, Debug)]
pub struct PlanInput {
    /// The plan being reconciled.
    pub plan: PlanView,
    /// Every node in the cluster (the planner applies the selector and the exclude label).
    pub nodes: Vec<NodeView>,
    /// This plan's NodeUpgrades.
    pub node_upgrades: Vec<NodeUpgradeView>,
    /// Nodes with a non-terminal NodeUpgrade of another plan, and that plan's name.
    pub claims: BTreeMap<String, String>,
    /// Pods on the nodes the planner asked about (see [`super::Plan::pods_needed`]).
    pub pods: BTreeMap<String, Vec<PodView>>,
    /// The last eviction refused on a node (by a disruption budget), kept by the reconciler.
    pub blocked_evictions: BTreeMap<String, BlockedEviction>,
    /// The node the operator itself runs on; upgraded last.
    pub operator_node: Option<String>,
    /// The API server's version (`gitVersion`), for the skew check.
    pub api_server_version: Option<String>,
    /// The instant of this pass (the clock seam).
    pub now: Timestamp,
}

/// The plan's identity, spec, previous status and control annotations.
#[derive(Clone, Debug)]
pub struct PlanView {
    /// Name of the `KubeletUpgrade`.
    pub name: String,
    /// `metadata.generation`.
    pub generation: i64,
    /// The desired rollout.
    pub spec: KubeletUpgradeSpec,
    /// The status written by the previous pass.
    pub status: KubeletUpgradeStatus,
    /// Value of `kubelift.dev/retry`.
    pub retry: Option<String>,
    /// The `kubelift.dev/retry` value already acted upon.
    pub retry_handled: Option<String>,
    /// Value of `kubelift.dev/resume`.
    pub resume: Option<String>,
    /// The plan is being deleted.
    pub deleting: bool,
    /// The plan carries the operator's finalizer.
    pub has_finalizer: bool,
}

/// The fields of a Node the planner needs, and nothing more.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeView {
    /// Node name.
    pub name: String,
    /// Node labels.
    pub labels: BTreeMap<String, String>,
    /// The Ready condition is `True`.
    pub ready: bool,
    /// `spec.unschedulable`.
    pub unschedulable: bool,
    /// Value of the `kubelift.dev/cordoned-by` annotation.
    pub cordoned_by: Option<String>,
    /// `status.nodeInfo.kubeletVersion`.
    pub kubelet_version: String,
}

impl NodeView {
    /// Whether the node carries the control-plane role label.
    #[must_use]
    pub fn is_control_plane(&self) -> bool {
        self.labels.contains_key(CONTROL_PLANE_LABEL)
    }

    /// The node's zone (empty when unlabelled).
    #[must_use]
    pub fn zone(&self) -> &str {
        self.labels.get(ZONE_LABEL).map_or("", String::as_str)
    }
}

/// One of this plan's NodeUpgrades: the operator's spec, the helper's status, and the
/// operator's own bookkeeping annotations.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeUpgradeView {
    /// Object name.
    pub name: String,
    /// `metadata.generation`.
    pub generation: i64,
    /// When the object was created.
    pub created: Option<Timestamp>,
    /// When the operator last changed the stage (annotation).
    pub stage_since: Option<Timestamp>,
    /// When evictions began on the node (annotation).
    pub evicting_since: Option<Timestamp>,
    /// The object is being deleted.
    pub deleting: bool,
    /// The operator's work order.
    pub spec: NodeUpgradeSpec,
    /// The helper's report.
    pub status: Option<NodeUpgradeStatus>,
}

/// The fields of a Pod the eviction policy needs.
#[allow(
    clippy::struct_excessive_bools,
    reason = "each flag is an independent fact about the pod"
)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodView {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Labels (matched against `drain.podSelector`).
    pub labels: BTreeMap<String, String>,
    /// Owned by a DaemonSet.
    pub daemon_set: bool,
    /// A static pod's mirror.
    pub mirror: bool,
    /// Already being deleted.
    pub terminating: bool,
    /// Finished (`Succeeded` or `Failed`): nothing to evict.
    pub finished: bool,
}

/// An eviction the API server refused because of a disruption budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockedEviction {
    /// `namespace/name` of the pod.
    pub pod: String,
    /// `namespace/name` of the budget, when the refusal named it.
    pub budget: Option<String>,
}

/// Pods named by `namespace/name`.
pub type PodSet = BTreeSet<String>;
