//! Spec fragments that a `KubeletUpgrade` declares and each of its `NodeUpgrade`s carries, so a
//! helper acts on exactly the policy the plan had when the operator handed the node over.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::rules;

/// Where one kubelet binary comes from, and the digest it must have.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = rules::one_source)]
pub struct BinaryArtifact {
    /// URL to download the kubelet binary from: `https://`, or `http://` to a loopback address.
    /// Exactly one of `url` and `path` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::url)]
    pub url: Option<String>,
    /// Absolute path of the kubelet binary on the node's own filesystem.
    /// Exactly one of `url` and `path` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::path)]
    pub path: Option<String>,
    /// SHA-256 digest of the binary, 64 lowercase hexadecimal characters.
    #[schemars(transform = rules::sha256)]
    pub sha256: String,
}

/// What may happen to the containers running on a node while its kubelet is swapped.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ContainerPolicy {
    /// Keep every container running; hold a node where any container would restart.
    #[default]
    Preserve,
    /// Evict only the pods with a container predicted to restart, honouring disruption budgets.
    EvictIfRestart,
    /// Drain the node the classic way: evict every pod but DaemonSet and static pods.
    Drain,
}

/// Container handling during the swap.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainersSpec {
    /// What may happen to running containers: `Preserve`, `EvictIfRestart` or `Drain`.
    #[serde(default)]
    pub policy: ContainerPolicy,
    /// The nodes run a kubelet built to honour kubelift's snapshot: it skips hash-triggered
    /// restarts of the containers the snapshot lists, so predicted restarts do not block.
    #[serde(default)]
    pub snapshot_aware_kubelet: bool,
    /// Treat predicted restarts of DaemonSet pods as blocking under every policy.
    #[serde(default)]
    pub protect_daemon_sets: bool,
}

/// What to do with an eviction still blocked when the drain timeout expires.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DrainTimeoutAction {
    /// Fail the node; it counts against the failure budget.
    #[default]
    Fail,
    /// Leave the node as it is, report it skipped, and move on.
    Skip,
    /// Delete the blocked pods, bypassing their disruption budgets.
    DeletePod,
}

/// How pods are evicted from a node.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrainSpec {
    /// Seconds to wait for all evictions of one node before `onTimeout` applies.
    #[serde(default = "default_drain_timeout")]
    #[schemars(transform = rules::positive)]
    pub timeout_seconds: i64,
    /// What to do when evictions are still blocked at the timeout: `Fail`, `Skip` or `DeletePod`.
    #[serde(default)]
    pub on_timeout: DrainTimeoutAction,
    /// Only pods matching this selector are evicted; other pods stay (empty: every pod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
}

impl Default for DrainSpec {
    fn default() -> Self {
        Self {
            timeout_seconds: default_drain_timeout(),
            on_timeout: DrainTimeoutAction::default(),
            pod_selector: None,
        }
    }
}

/// How a node's upgrade is judged.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifySpec {
    /// Seconds a helper may take to report its prediction before the node fails with
    /// `HelperUnavailable`.
    #[serde(default = "default_prepare_timeout")]
    #[schemars(transform = rules::positive)]
    pub prepare_timeout_seconds: i64,
    /// Seconds the new kubelet may take to become healthy and its Node Ready.
    #[serde(default = "default_ready_timeout")]
    #[schemars(transform = rules::positive)]
    pub ready_timeout_seconds: i64,
    /// Seconds the helper keeps watching for restarts after the kubelet is healthy.
    #[serde(default = "default_settle")]
    #[schemars(transform = rules::non_negative)]
    pub settle_seconds: i64,
    /// Restarts of containers predicted `Preserved` that are tolerated on one node.
    #[serde(default)]
    #[schemars(transform = rules::non_negative)]
    pub max_unexpected_restarts: i32,
}

impl Default for VerifySpec {
    fn default() -> Self {
        Self {
            prepare_timeout_seconds: default_prepare_timeout(),
            ready_timeout_seconds: default_ready_timeout(),
            settle_seconds: default_settle(),
            max_unexpected_restarts: 0,
        }
    }
}

/// When the plan stops and what a failed node does.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailurePolicy {
    /// Failed or rolled-back nodes tolerated; the plan halts once more have failed.
    #[serde(default)]
    #[schemars(transform = rules::non_negative)]
    pub max_failed_nodes: i32,
    /// Restore the previous kubelet on a node whose upgrade fails.
    #[serde(default = "default_true")]
    pub rollback: bool,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        Self {
            max_failed_nodes: 0,
            rollback: true,
        }
    }
}

fn default_drain_timeout() -> i64 {
    600
}

fn default_prepare_timeout() -> i64 {
    300
}

fn default_ready_timeout() -> i64 {
    300
}

fn default_settle() -> i64 {
    10
}

pub(crate) fn default_true() -> bool {
    true
}
