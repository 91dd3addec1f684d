//! Where each targeted node stands, read from the node and its NodeUpgrade alone: the first step
//! of every pass, before any decision.

use jiff::{SignedDuration, Timestamp};
use kubelift_crds::{NodePhase, NodeUpgradeStatus, Stage};

use super::input::{NodeUpgradeView, NodeView, PlanInput};
use super::preflight;
use crate::reasons;

/// Helper reason for a node sent back to `Prepared` at Snapshot.
const PREDICTION_CHANGED: &str = "PredictionChanged";

/// Where one node stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// Runs the target version; nothing to do.
    Upgraded,
    /// Needs upgrading and has no NodeUpgrade yet.
    Candidate,
    /// Another plan has a non-terminal NodeUpgrade on the node.
    Claimed(String),
    /// Runs a newer kubelet and the plan does not allow downgrades.
    Downgrade(String),
    /// The helper has not reported on the current spec yet; fails at the deadline.
    Preparing(Timestamp),
    /// The helper did not report within `prepareTimeoutSeconds`.
    HelperTimedOut,
    /// The helper reported its prediction; the operator decides.
    Prepared,
    /// Swapping, restarting or verifying (or about to).
    Executing,
    /// The helper's prediction got worse at Snapshot; decide again.
    Redecide,
    /// Succeeded; its slot frees at this instant.
    Soaking(Timestamp),
    /// Finished, one way or another.
    Done(Outcome),
}

/// How a node finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Upgraded by this plan.
    Succeeded,
    /// Failed or rolled back (counts against the failure budget), with the reason.
    Failed(String),
    /// Held by policy, with the reason.
    Held(String),
    /// Set aside on drain timeout, with the reason.
    Skipped(String),
    /// Prepared by a dry run.
    DryRun,
}

impl Observed {
    /// Whether the node holds a rollout slot (it is, or may soon be, unavailable because of us).
    #[must_use]
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            Self::Preparing(_)
                | Self::Prepared
                | Self::Executing
                | Self::Redecide
                | Self::Soaking(_)
        )
    }
}

/// Observe one targeted node.
#[must_use]
pub fn observe(input: &PlanInput, node: &NodeView, nu: Option<&NodeUpgradeView>) -> Observed {
    let spec = &input.plan.spec;
    let Some(nu) = nu else {
        return without_work_order(input, node);
    };
    if nu.deleting {
        return Observed::Executing;
    }

    let report = nu
        .status
        .as_ref()
        .filter(|s| s.observed_generation == Some(nu.generation));
    let phase = report.and_then(|s| s.phase);
    match nu.spec.stage {
        Stage::Hold => Observed::Done(held(nu.spec.hold_reason.as_deref().unwrap_or_default())),
        Stage::Prepare => match phase {
            Some(NodePhase::Failed | NodePhase::RolledBack) => Observed::Done(failed(report)),
            Some(NodePhase::Prepared) if spec.rollout.dry_run => Observed::Done(Outcome::DryRun),
            Some(NodePhase::Prepared) => Observed::Prepared,
            _ => preparing(input, nu),
        },
        Stage::Execute => match phase {
            Some(NodePhase::Succeeded) => soaking(input, report),
            Some(NodePhase::Failed | NodePhase::RolledBack) => Observed::Done(failed(report)),
            Some(NodePhase::Prepared)
                if report.and_then(|s| s.reason.as_deref()) == Some(PREDICTION_CHANGED) =>
            {
                Observed::Redecide
            }
            _ => Observed::Executing,
        },
    }
}

/// Whether a node runs the plan's target version.
#[must_use]
pub fn at_target(input: &PlanInput, node: &NodeView) -> bool {
    let bare = |v: &str| v.trim().trim_start_matches('v').to_owned();
    bare(&node.kubelet_version) == bare(&input.plan.spec.version)
}

fn without_work_order(input: &PlanInput, node: &NodeView) -> Observed {
    if at_target(input, node) {
        return Observed::Upgraded;
    }
    if let Some(other) = input.claims.get(&node.name) {
        return Observed::Claimed(other.clone());
    }
    if preflight::forbidden_downgrade(&input.plan.spec, &node.kubelet_version) {
        return Observed::Downgrade(node.kubelet_version.clone());
    }
    Observed::Candidate
}

fn preparing(input: &PlanInput, nu: &NodeUpgradeView) -> Observed {
    let heartbeat = nu
        .status
        .as_ref()
        .and_then(|s| s.last_heartbeat_time.as_ref())
        .map(|t| t.0);
    let since = [nu.stage_since, nu.created, heartbeat]
        .into_iter()
        .flatten()
        .max();
    let timeout = SignedDuration::from_secs(input.plan.spec.verify.prepare_timeout_seconds);
    let deadline = since
        .unwrap_or(input.now)
        .saturating_add(timeout)
        .unwrap_or(input.now);
    if input.now >= deadline {
        Observed::HelperTimedOut
    } else {
        Observed::Preparing(deadline)
    }
}

fn soaking(input: &PlanInput, report: Option<&NodeUpgradeStatus>) -> Observed {
    let finished = report.and_then(|s| {
        s.completion_time
            .as_ref()
            .or(s.last_heartbeat_time.as_ref())
    });
    let Some(finished) = finished else {
        return Observed::Done(Outcome::Succeeded);
    };
    let soak = SignedDuration::from_secs(input.plan.spec.rollout.soak_seconds);
    let until: Timestamp = finished.0.saturating_add(soak).unwrap_or(finished.0);
    if input.now < until {
        Observed::Soaking(until)
    } else {
        Observed::Done(Outcome::Succeeded)
    }
}

fn failed(report: Option<&NodeUpgradeStatus>) -> Outcome {
    let reason = report
        .and_then(|s| s.reason.clone())
        .unwrap_or_else(|| "Failed".to_owned());
    let message = report
        .and_then(|s| s.message.as_deref())
        .unwrap_or_default();
    if message.is_empty() {
        Outcome::Failed(reason)
    } else {
        Outcome::Failed(format!("{reason}: {message}"))
    }
}

fn held(reason: &str) -> Outcome {
    let code = reason.split(':').next().unwrap_or_default();
    match code {
        reasons::HOLD_HELPER_UNAVAILABLE | reasons::HOLD_DRAIN_TIMEOUT => {
            Outcome::Failed(reason.to_owned())
        }
        reasons::HOLD_DRAIN_SKIPPED => Outcome::Skipped(reason.to_owned()),
        _ => Outcome::Held(reason.to_owned()),
    }
}

/// The reason a failure is counted under in metrics: the PascalCase code before any colon.
#[must_use]
pub fn reason_code(reason: &str) -> &str {
    reason.split(':').next().unwrap_or(reason).trim()
}

/// Timestamp helper for tests and callers: `now` plus whole seconds.
#[must_use]
pub fn after(now: Timestamp, seconds: i64) -> Timestamp {
    now.saturating_add(SignedDuration::from_secs(seconds))
        .unwrap_or(now)
}
