//! Every Event reason and hold reason the operator writes, once, so that alerts and tests can
//! match on them.

/// The spec failed validation or a preflight check.
pub const INVALID_SPEC: &str = "InvalidSpec";
/// The first node started.
pub const ROLLOUT_STARTED: &str = "RolloutStarted";
/// Nodes started again after a pause, a window or an approval gate.
pub const ROLLOUT_RESUMED: &str = "RolloutResumed";
/// Every targeted node is done.
pub const ROLLOUT_COMPLETE: &str = "RolloutComplete";
/// The failure budget is exhausted; nothing new starts.
pub const ROLLOUT_HALTED: &str = "RolloutHalted";
/// `spec.paused` stops new nodes.
pub const ROLLOUT_PAUSED: &str = "RolloutPaused";
/// The maintenance window is closed.
pub const WAITING_FOR_WINDOW: &str = "WaitingForWindow";
/// The canaries are done; the plan waits for `kubelift.dev/resume`.
pub const WAITING_FOR_APPROVAL: &str = "WaitingForApproval";
/// The plan is being deleted and cleans up.
pub const DELETING: &str = "Deleting";
/// A NodeUpgrade was created for a node.
pub const NODE_STARTED: &str = "NodeStarted";
/// A node was held (see its hold reason).
pub const NODE_HELD: &str = "NodeHeld";
/// One or more nodes failed or rolled back.
pub const NODE_FAILED: &str = "NodeFailed";
/// A failed node gets another attempt.
pub const NODE_RETRIED: &str = "NodeRetried";
/// A node's evictions did not finish in time.
pub const DRAIN_TIMED_OUT: &str = "DrainTimedOut";
/// The API server refused an eviction because of a disruption budget.
pub const EVICTION_BLOCKED: &str = "EvictionBlocked";
/// The plan was deleted after `ttlSecondsAfterFinished`.
pub const EXPIRED: &str = "Expired";

/// Hold reason: a container would restart under the container policy.
pub const HOLD_CONTAINERS_WOULD_RESTART: &str = "ContainersWouldRestart";
/// Hold reason (counts as failed): the helper did not report in time.
pub const HOLD_HELPER_UNAVAILABLE: &str = "HelperUnavailable";
/// Hold reason (counts as failed): evictions still blocked at the drain timeout.
pub const HOLD_DRAIN_TIMEOUT: &str = "DrainTimeout";
/// Hold reason (counts as skipped): evictions still blocked at the drain timeout, `Skip`.
pub const HOLD_DRAIN_SKIPPED: &str = "DrainSkipped";
