//! `NodeUpgrade`: one node's work order from the operator (spec) and that node's helper's report
//! (status). One exists per node per plan, named `<plan>-<node>` and owned by the plan.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{BinaryArtifact, ContainersSpec, VerifySpec};
use crate::rules;

/// The upgrade of one node's kubelet, as part of a `KubeletUpgrade`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[allow(
    clippy::duplicated_attributes,
    reason = "each printcolumn(...) repeats type_, which clippy mistakes for a repeated attribute"
)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "kubelift.dev",
    version = "v1alpha1",
    kind = "NodeUpgrade",
    plural = "nodeupgrades",
    shortname = "nu",
    category = "kubelift",
    status = "NodeUpgradeStatus",
    selectable = ".spec.nodeName",
    doc = "The upgrade of one node's kubelet: the operator's work order and the helper's report.",
    printcolumn(
        name = "Node",
        type_ = "string",
        json_path = ".spec.nodeName",
        description = "Node being upgraded"
    ),
    printcolumn(
        name = "Stage",
        type_ = "string",
        json_path = ".spec.stage",
        description = "What the operator asks: Prepare, Execute or Hold"
    ),
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "What the helper reports"
    ),
    printcolumn(
        name = "From",
        type_ = "string",
        json_path = ".status.fromVersion",
        description = "Kubelet version before the upgrade"
    ),
    printcolumn(
        name = "To",
        type_ = "string",
        json_path = ".spec.version",
        description = "Target kubelet version"
    ),
    printcolumn(
        name = "Restarts",
        type_ = "integer",
        json_path = ".status.restartCount",
        description = "Containers that restarted during the upgrade"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.reason",
        priority = 1,
        description = "Why the node is held, failed or rolled back"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct NodeUpgradeSpec {
    /// The node to upgrade.
    #[schemars(transform = rules::object_name)]
    pub node_name: String,
    /// Name of the `KubeletUpgrade` this node belongs to.
    #[schemars(transform = rules::object_name)]
    pub plan: String,
    /// Target kubelet version, e.g. `v1.32.1`.
    #[schemars(transform = rules::version)]
    pub version: String,
    /// The kubelet binary for this node's architecture.
    pub binary: BinaryArtifact,
    /// What the operator asks of the helper: `Prepare`, `Execute` or `Hold`.
    #[serde(default)]
    pub stage: Stage,
    /// Why the node is held, when `stage` is `Hold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_reason: Option<String>,
    /// Attempt number, bumped to retry a failed node; the helper's journal is keyed by it.
    #[serde(default)]
    #[schemars(transform = rules::non_negative)]
    pub attempt: i32,
    /// Container policy copied from the plan.
    #[serde(default)]
    pub containers: ContainersSpec,
    /// Verification settings copied from the plan.
    #[serde(default)]
    pub verify: VerifySpec,
    /// Restore the previous kubelet if the upgrade fails.
    #[serde(default = "crate::common::default_true")]
    pub rollback: bool,
}

/// What the operator asks of a node's helper.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Stage {
    /// Predict, pre-stage the artifact, and report; touch nothing.
    #[default]
    Prepare,
    /// Snapshot, swap, restart and verify.
    Execute,
    /// Do nothing; `holdReason` says why.
    Hold,
}

/// Where a node's upgrade stands, as its helper reports it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[allow(
    missing_docs,
    reason = "each phase is documented in the design and the README"
)]
pub enum NodePhase {
    #[default]
    Pending,
    Preparing,
    Prepared,
    Snapshotting,
    Staging,
    Installing,
    Restarting,
    Verifying,
    Succeeded,
    Failed,
    RolledBack,
}

impl NodePhase {
    /// Whether the helper is done with this attempt.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::RolledBack)
    }

    /// Whether the node may be mid-swap (its kubelet unavailable or about to be).
    #[must_use]
    pub fn is_executing(self) -> bool {
        matches!(
            self,
            Self::Snapshotting
                | Self::Staging
                | Self::Installing
                | Self::Restarting
                | Self::Verifying
        )
    }
}

/// A helper's prediction for one container.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Verdict {
    /// Both kubelets compute the stored hash: the container keeps running.
    Preserved,
    /// The model reproduces the stored hash and the target kubelet computes another one.
    WillRestart,
    /// The model does not reproduce the stored hash; treated as `WillRestart`.
    Unknown,
}

/// Counts of containers by verdict on one node.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PredictionCounts {
    /// Containers both kubelets hash alike.
    #[serde(default)]
    pub preserved: i32,
    /// Containers the target kubelet would restart.
    #[serde(default)]
    pub will_restart: i32,
    /// Containers whose stored hash the model does not reproduce.
    #[serde(default)]
    pub unknown: i32,
}

/// One container that would not be preserved, with the evidence.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerVerdict {
    /// Namespace of the container's pod.
    pub pod_namespace: String,
    /// Name of the container's pod.
    pub pod_name: String,
    /// UID of the container's pod.
    pub pod_uid: String,
    /// Name of the container in its pod.
    pub container: String,
    /// The prediction.
    pub verdict: Verdict,
    /// Hash stored on the running container by the current kubelet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_hash: Option<String>,
    /// Hash the model computes for the current kubelet version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_hash: Option<String>,
    /// Hash the model computes for the target kubelet version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_hash: Option<String>,
    /// The pod is a DaemonSet or static (mirror) pod, which is never evicted.
    #[serde(default)]
    pub not_evictable: bool,
}

/// A container that restarted during the upgrade.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedRestart {
    /// Namespace of the container's pod.
    pub pod_namespace: String,
    /// Name of the container's pod.
    pub pod_name: String,
    /// Name of the container in its pod.
    pub container: String,
    /// Container ID before the upgrade.
    pub container_id_before: String,
    /// Container ID after the upgrade (empty when the container is gone).
    #[serde(default)]
    pub container_id_after: String,
    /// Whether the container had been predicted `Preserved`.
    #[serde(default)]
    pub unexpected: bool,
}

/// What a node's helper observed and did; written only by that helper.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeUpgradeStatus {
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The attempt this status describes.
    #[serde(default)]
    pub observed_attempt: i32,
    /// Where the node's upgrade stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<NodePhase>,
    /// Kubelet version found on the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_version: Option<String>,
    /// Kubelet version installed (or to be installed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_version: Option<String>,
    /// Containers by predicted verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<PredictionCounts>,
    /// The containers not predicted `Preserved`, with evidence (capped; see `truncated`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerVerdict>,
    /// `containers` was cut to its cap.
    #[serde(default)]
    pub truncated: bool,
    /// Containers that restarted during the upgrade.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restarts: Vec<ObservedRestart>,
    /// Number of containers that restarted during the upgrade.
    #[serde(default)]
    pub restart_count: i32,
    /// Warnings a person should act on (e.g. the kubelet is owned by the package manager).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Last time the helper reported it was alive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_time: Option<Time>,
    /// When the helper reported `Prepared`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepared_time: Option<Time>,
    /// When the helper started executing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execute_start_time: Option<Time>,
    /// When the helper reached a terminal phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Machine-readable reason for the phase (PascalCase), e.g. `PredictionChanged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What happened, for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
