//! The plan's status: counts, progress, phase, conditions and the one-line message, built from a
//! pass's summary. Conditions keep their transition time until their status really changes, so
//! re-writing an unchanged status is a no-op.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kubelift_crds::{KubeletUpgradeStatus, PlanPhase};

use super::input::PlanInput;
use super::output::{EventKind, PlannedEvent};
use crate::reasons;

/// What a pass found, before it becomes a status.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Where the plan stands.
    pub phase: PlanPhase,
    /// Nodes the plan targets.
    pub targeted: i32,
    /// Nodes at the target version.
    pub upgraded: i32,
    /// Nodes set aside.
    pub skipped: i32,
    /// Nodes in flight.
    pub in_progress: i32,
    /// Nodes failed or rolled back.
    pub failed: i32,
    /// Nodes held or with a blocked eviction.
    pub blocked: i32,
    /// Containers predicted to restart on nodes not yet upgraded.
    pub predicted_restarts: i32,
    /// What blocks progress.
    pub message: Option<String>,
    /// Why the plan is degraded (failed or held nodes), if it is.
    pub degraded: Option<String>,
    /// Whether any node has been started.
    pub started: bool,
}

/// The status for an invalid plan: phase `Invalid`, `Valid=False` naming every problem.
#[must_use]
pub fn invalid(
    input: &PlanInput,
    problems: &[String],
) -> (KubeletUpgradeStatus, Vec<PlannedEvent>) {
    let message = format!("invalid spec: {}", problems.join("; "));
    let summary = Summary {
        phase: PlanPhase::Invalid,
        message: Some(message.clone()),
        ..Summary::default()
    };
    let mut status = build(input, &summary);
    status.conditions = conditions(input, &summary, Some(&message));

    let previous = &input.plan.status;
    let changed = previous.phase != Some(PlanPhase::Invalid) || previous.message != status.message;
    let events = changed
        .then_some(PlannedEvent {
            kind: EventKind::Warning,
            reason: reasons::INVALID_SPEC,
            note: message,
        })
        .into_iter()
        .collect();
    (status, events)
}

/// The status for a valid plan after a pass.
#[must_use]
pub fn build(input: &PlanInput, summary: &Summary) -> KubeletUpgradeStatus {
    let previous = &input.plan.status;
    let complete = summary.phase == PlanPhase::Complete;
    let now = Time(input.now);
    KubeletUpgradeStatus {
        observed_generation: Some(input.plan.generation),
        phase: Some(summary.phase),
        conditions: conditions(input, summary, None),
        targeted: summary.targeted,
        upgraded: summary.upgraded,
        skipped: summary.skipped,
        in_progress: summary.in_progress,
        failed: summary.failed,
        blocked: summary.blocked,
        progress: Some(format!("{}/{}", summary.upgraded, summary.targeted)),
        predicted_restarts: summary.predicted_restarts,
        message: summary.message.clone(),
        start_time: previous
            .start_time
            .clone()
            .or_else(|| summary.started.then(|| now.clone())),
        completion_time: complete.then(|| previous.completion_time.clone().unwrap_or(now)),
    }
}

/// The Event for a phase transition, if the phase changed.
#[must_use]
pub fn transition_event(input: &PlanInput, summary: &Summary) -> Option<PlannedEvent> {
    let previous = input.plan.status.phase;
    if previous == Some(summary.phase) {
        return None;
    }
    let detail = summary.message.clone().unwrap_or_default();
    let (kind, reason, note) = match summary.phase {
        PlanPhase::Pending | PlanPhase::Invalid => return None,
        PlanPhase::Progressing if matches!(previous, None | Some(PlanPhase::Pending)) => (
            EventKind::Normal,
            reasons::ROLLOUT_STARTED,
            "rollout started".to_owned(),
        ),
        PlanPhase::Progressing => (
            EventKind::Normal,
            reasons::ROLLOUT_RESUMED,
            "rollout resumed".to_owned(),
        ),
        PlanPhase::Complete => (
            EventKind::Normal,
            reasons::ROLLOUT_COMPLETE,
            complete_note(summary),
        ),
        PlanPhase::Halted => (EventKind::Warning, reasons::ROLLOUT_HALTED, detail),
        PlanPhase::Paused => (EventKind::Normal, reasons::ROLLOUT_PAUSED, detail),
        PlanPhase::WaitingForWindow => (EventKind::Normal, reasons::WAITING_FOR_WINDOW, detail),
        PlanPhase::WaitingForApproval => (EventKind::Normal, reasons::WAITING_FOR_APPROVAL, detail),
        PlanPhase::Deleting => (EventKind::Normal, reasons::DELETING, detail),
    };
    Some(PlannedEvent { kind, reason, note })
}

fn complete_note(summary: &Summary) -> String {
    format!(
        "{}/{} nodes upgraded, {} skipped, {} failed, {} held",
        summary.upgraded, summary.targeted, summary.skipped, summary.failed, summary.blocked
    )
}

fn conditions(input: &PlanInput, summary: &Summary, invalid: Option<&str>) -> Vec<Condition> {
    let phase = format!("{:?}", summary.phase);
    let progressing = summary.phase == PlanPhase::Progressing;
    let complete = summary.phase == PlanPhase::Complete;
    let all_upgraded = summary.upgraded == summary.targeted;
    let message = summary.message.clone().unwrap_or_default();
    vec![
        match invalid {
            Some(problems) => condition(input, "Valid", false, "InvalidSpec", problems),
            None => condition(input, "Valid", true, "SpecValid", "the spec is valid"),
        },
        condition(input, "Progressing", progressing, &phase, &message),
        condition(
            input,
            "Complete",
            complete,
            if complete && all_upgraded {
                "AllNodesUpgraded"
            } else {
                &phase
            },
            &if complete {
                complete_note(summary)
            } else {
                String::new()
            },
        ),
        match &summary.degraded {
            Some(why) => condition(input, "Degraded", true, "NodesFailedOrHeld", why),
            None => condition(input, "Degraded", false, "NoFailures", ""),
        },
    ]
}

fn condition(
    input: &PlanInput,
    kind: &str,
    status: bool,
    reason: &str,
    message: &str,
) -> Condition {
    let status = if status { "True" } else { "False" }.to_owned();
    let previous = input
        .plan
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == kind);
    let last_transition_time = previous
        .filter(|c| c.status == status)
        .map_or_else(|| Time(input.now), |c| c.last_transition_time.clone());
    Condition {
        type_: kind.to_owned(),
        status,
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation: Some(input.plan.generation),
        last_transition_time,
    }
}
