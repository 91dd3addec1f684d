//! `KubeletUpgrade`: the user's plan for rolling one kubelet version out to a set of nodes.
//!
//! The spec is the user's (or GitOps's); the status is written only by the operator.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{BinaryArtifact, ContainersSpec, DrainSpec, FailurePolicy, VerifySpec};
use crate::rules;

/// A plan to upgrade the kubelet of the selected nodes to one version, node by node, without
/// restarting the containers running on them.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[allow(
    clippy::duplicated_attributes,
    reason = "each printcolumn(...) repeats type_, which clippy mistakes for a repeated attribute"
)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "kubelift.dev",
    version = "v1alpha1",
    kind = "KubeletUpgrade",
    plural = "kubeletupgrades",
    shortname = "ku",
    category = "kubelift",
    status = "KubeletUpgradeStatus",
    doc = "A plan to upgrade the kubelet of selected nodes without restarting their containers.",
    printcolumn(
        name = "Version",
        type_ = "string",
        json_path = ".spec.version",
        description = "Target kubelet version"
    ),
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Where the rollout stands"
    ),
    printcolumn(
        name = "Upgraded",
        type_ = "string",
        json_path = ".status.progress",
        description = "Nodes upgraded out of nodes targeted"
    ),
    printcolumn(
        name = "Failed",
        type_ = "integer",
        json_path = ".status.failed",
        description = "Nodes failed or rolled back"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.message",
        priority = 1,
        description = "What blocks progress, if anything"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KubeletUpgradeSpec {
    /// Target kubelet version, e.g. `v1.32.1`.
    #[schemars(transform = rules::version)]
    pub version: String,
    /// Allow a target older than a node's current kubelet.
    #[serde(default)]
    pub allow_downgrade: bool,
    /// The kubelet binary to install.
    pub binary: BinarySource,
    /// Nodes to upgrade (empty: every node). Nodes labelled `kubelift.dev/exclude=true` are
    /// never touched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<LabelSelector>,
    /// Order and pace of the rollout.
    #[serde(default)]
    pub rollout: RolloutSpec,
    /// What may happen to running containers.
    #[serde(default)]
    pub containers: ContainersSpec,
    /// How pods are evicted when the container policy evicts.
    #[serde(default)]
    pub drain: DrainSpec,
    /// How each node's upgrade is verified.
    #[serde(default)]
    pub verify: VerifySpec,
    /// When the plan halts, and whether failed nodes are rolled back.
    #[serde(default)]
    pub failure_policy: FailurePolicy,
    /// Start no new node while true; nodes in flight finish.
    #[serde(default)]
    pub paused: bool,
    /// Start nodes only inside this maintenance window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<MaintenanceWindow>,
    /// Delete the plan this many seconds after it completes (unset: keep it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::non_negative)]
    pub ttl_seconds_after_finished: Option<i64>,
}

/// The kubelet binary of a plan, with optional per-architecture overrides.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = rules::one_source)]
pub struct BinarySource {
    /// URL to download the kubelet binary from: `https://`, or `http://` to a loopback address.
    /// Exactly one of `url` and `path` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::url)]
    pub url: Option<String>,
    /// Absolute path of the kubelet binary on each node's own filesystem.
    /// Exactly one of `url` and `path` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::path)]
    pub path: Option<String>,
    /// SHA-256 digest of the binary, 64 lowercase hexadecimal characters.
    #[schemars(transform = rules::sha256)]
    pub sha256: String,
    /// Binaries for other CPU architectures, keyed by the node label `kubernetes.io/arch`
    /// (e.g. `arm64`); nodes of any other architecture use the binary above.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(transform = rules::architectures)]
    pub architectures: BTreeMap<String, BinaryArtifact>,
}

impl BinarySource {
    /// The artifact a node of architecture `arch` installs.
    #[must_use]
    pub fn for_arch(&self, arch: Option<&str>) -> BinaryArtifact {
        let chosen = arch.and_then(|arch| self.architectures.get(arch));
        chosen.cloned().unwrap_or_else(|| BinaryArtifact {
            url: self.url.clone(),
            path: self.path.clone(),
            sha256: self.sha256.clone(),
        })
    }
}

/// Order in which nodes are upgraded.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RolloutOrder {
    /// By node name.
    #[default]
    Name,
    /// One node from each zone (`topology.kubernetes.io/zone`) in turn, zones by name.
    ZoneRoundRobin,
}

/// Order and pace of a rollout.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Most nodes unavailable at once: a number, or a percentage of targeted nodes rounded down
    /// (at least 1). Nodes in flight and targeted nodes that are NotReady count.
    #[serde(default = "default_max_unavailable")]
    #[schemars(transform = rules::max_unavailable)]
    pub max_unavailable: IntOrString,
    /// Nodes upgraded alone, one after another, before any batch starts.
    #[serde(default = "default_canary")]
    #[schemars(transform = rules::non_negative)]
    pub canary: i32,
    /// Wait for approval (annotation `kubelift.dev/resume=<generation>`) after the canaries.
    #[serde(default)]
    pub pause_after_canary: bool,
    /// Node order: `Name` or `ZoneRoundRobin`; the node running the operator always goes last.
    #[serde(default)]
    pub order: RolloutOrder,
    /// Seconds to wait after a node succeeds before its slot counts as free.
    #[serde(default = "default_soak")]
    #[schemars(transform = rules::non_negative)]
    pub soak_seconds: i64,
    /// Prepare every targeted node and report what would restart; execute nothing.
    #[serde(default)]
    pub dry_run: bool,
}

impl Default for RolloutSpec {
    fn default() -> Self {
        Self {
            max_unavailable: default_max_unavailable(),
            canary: default_canary(),
            pause_after_canary: false,
            order: RolloutOrder::default(),
            soak_seconds: default_soak(),
            dry_run: false,
        }
    }
}

/// A day of the week, as used by maintenance windows.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs, reason = "the day names document themselves")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// Times at which new nodes may start; nodes in flight finish outside the window.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = rules::window)]
pub struct MaintenanceWindow {
    /// Days on which the window opens (empty: every day).
    #[serde(default)]
    #[schemars(transform = rules::days)]
    pub days: Vec<Weekday>,
    /// Opening time, `HH:MM`, in `timeZone`.
    #[schemars(transform = rules::clock)]
    pub start: String,
    /// Closing time, `HH:MM`, in `timeZone`; before `start` means the window spans midnight.
    #[schemars(transform = rules::clock)]
    pub end: String,
    /// IANA time-zone name, e.g. `Europe/Berlin`.
    #[serde(default = "default_time_zone")]
    #[schemars(transform = rules::time_zone)]
    pub time_zone: String,
}

/// Where a plan stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[allow(
    missing_docs,
    reason = "each phase is documented in the design and the README"
)]
pub enum PlanPhase {
    #[default]
    Pending,
    Progressing,
    Paused,
    WaitingForWindow,
    WaitingForApproval,
    Halted,
    Complete,
    Invalid,
    Deleting,
}

/// What the operator observed and decided; written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeletUpgradeStatus {
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the rollout stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<PlanPhase>,
    /// `Valid`, `Progressing`, `Complete` and `Degraded`, keyed by type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Nodes the plan targets.
    #[serde(default)]
    pub targeted: i32,
    /// Nodes now running the target version (including those that already did).
    #[serde(default)]
    pub upgraded: i32,
    /// Nodes set aside: excluded, NotReady at their turn, or skipped on drain timeout.
    #[serde(default)]
    pub skipped: i32,
    /// Nodes being prepared, evicted, swapped or verified.
    #[serde(default)]
    pub in_progress: i32,
    /// Nodes failed or rolled back.
    #[serde(default)]
    pub failed: i32,
    /// Nodes held: a container would restart under the policy, or an eviction is blocked.
    #[serde(default)]
    pub blocked: i32,
    /// `upgraded/targeted`, preformatted for the UPGRADED column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Containers the helpers predict would restart on the nodes not yet upgraded.
    #[serde(default)]
    pub predicted_restarts: i32,
    /// What blocks progress, if anything: a PDB and pod, a node, a policy, a window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the first node started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the plan reached `Complete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
}

fn default_max_unavailable() -> IntOrString {
    IntOrString::Int(1)
}

fn default_canary() -> i32 {
    1
}

fn default_soak() -> i64 {
    30
}

fn default_time_zone() -> String {
    "UTC".to_owned()
}
