//! What the planner decides: actions for the reconciler to apply, in order, and the status the
//! plan should show afterwards.

use std::time::Duration;

use kubelift_crds::{KubeletUpgradeStatus, NodeUpgradeSpec};

/// The outcome of one planning pass.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Changes to make, in order; the reconciler stops at the first that fails.
    pub actions: Vec<Action>,
    /// The status the plan should show.
    pub status: KubeletUpgradeStatus,
    /// Events worth recording (transitions only).
    pub events: Vec<PlannedEvent>,
    /// Nodes whose pods the planner must see before it can decide; the reconciler lists them
    /// and plans again.
    pub pods_needed: Vec<String>,
    /// When to look again even if nothing changes (soak ending, window opening, timeouts).
    pub requeue_after: Option<Duration>,
}

/// One change to the cluster.
#[allow(
    clippy::large_enum_variant,
    reason = "a pass holds a handful of actions; boxing buys nothing"
)]
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Keep the operator's finalizer on the plan.
    AddFinalizer,
    /// Drop the finalizer: cleanup is done.
    RemoveFinalizer,
    /// Create or update a NodeUpgrade's spec (server-side apply).
    ApplyNodeUpgrade(NodeUpgradeOrder),
    /// Delete a NodeUpgrade.
    DeleteNodeUpgrade {
        /// Object name.
        name: String,
    },
    /// Mark the node unschedulable and annotate it `kubelift.dev/cordoned-by=<plan>`.
    Cordon {
        /// Node name.
        node: String,
    },
    /// Make the node schedulable again and drop the mark (only nodes carrying our mark).
    Uncordon {
        /// Node name.
        node: String,
    },
    /// Post an Eviction for a pod.
    Evict {
        /// Node the pod runs on.
        node: String,
        /// Namespace of the pod.
        namespace: String,
        /// Name of the pod.
        pod: String,
    },
    /// Delete a pod outright (drain timeout with `onTimeout: DeletePod`).
    DeletePod {
        /// Node the pod runs on.
        node: String,
        /// Namespace of the pod.
        namespace: String,
        /// Name of the pod.
        pod: String,
    },
    /// Record that the `kubelift.dev/retry` value was acted upon.
    MarkRetryHandled {
        /// The value handled.
        value: String,
    },
    /// Delete the plan itself (`ttlSecondsAfterFinished` expired).
    DeletePlan,
}

/// The full desired state of one NodeUpgrade written by the operator.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeUpgradeOrder {
    /// Object name.
    pub name: String,
    /// The spec to apply.
    pub spec: NodeUpgradeSpec,
    /// When the stage last changed, kept as an annotation.
    pub stage_since: jiff::Timestamp,
    /// When evictions began, kept as an annotation.
    pub evicting_since: Option<jiff::Timestamp>,
}

/// Severity of an Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Expected progress.
    Normal,
    /// Something a person should look at.
    Warning,
}

/// An Event to publish on the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedEvent {
    /// Normal or Warning.
    pub kind: EventKind,
    /// PascalCase reason, one of [`crate::reasons`].
    pub reason: &'static str,
    /// What happened, for a person.
    pub note: String,
}
