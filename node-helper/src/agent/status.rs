//! Pure status decisions: what a `NodeUpgrade`'s status says about the work left, and the status
//! an attempt's journal translates to.

use kubelift_crds::{NodePhase, NodeUpgrade, NodeUpgradeStatus, ObservedRestart};

use crate::journal::{Journal, Step};

/// Whether Prepare must run: the status does not describe this generation and attempt yet, or
/// describes it as neither prepared nor failed.
#[must_use]
pub fn needs_prepare(upgrade: &NodeUpgrade) -> bool {
    let Some(status) = &upgrade.status else {
        return true;
    };
    let current = status.observed_generation == upgrade.metadata.generation
        && status.observed_attempt == upgrade.spec.attempt;
    !current || !matches!(status.phase, Some(NodePhase::Prepared | NodePhase::Failed))
}

/// Whether the status reports a terminal phase for the current attempt.
#[must_use]
pub fn finished_attempt(upgrade: &NodeUpgrade) -> bool {
    upgrade.status.as_ref().is_some_and(|s| {
        s.observed_attempt == upgrade.spec.attempt && s.phase.is_some_and(NodePhase::is_terminal)
    })
}

/// Whether the helper went back to `Prepared` for this generation (`PredictionChanged`) and waits
/// for the operator to decide again (a new generation).
#[must_use]
pub fn awaiting_operator(upgrade: &NodeUpgrade) -> bool {
    upgrade.status.as_ref().is_some_and(|s| {
        s.phase == Some(NodePhase::Prepared)
            && s.reason.as_deref() == Some(PREDICTION_CHANGED)
            && s.observed_generation == upgrade.metadata.generation
    })
}

/// Reason reported when verdicts got worse between Prepare and Snapshot.
pub const PREDICTION_CHANGED: &str = "PredictionChanged";

/// Whether nothing is pending for the helper (terminal, or held), so no heartbeat is due.
#[must_use]
pub fn is_settled(upgrade: &NodeUpgrade) -> bool {
    finished_attempt(upgrade)
        || awaiting_operator(upgrade)
        || upgrade.spec.stage == kubelift_crds::Stage::Hold
}

/// The phase to report while `step` is the last completed one.
#[must_use]
pub fn phase(step: Step) -> NodePhase {
    match step {
        Step::Started => NodePhase::Snapshotting,
        Step::Snapshotted => NodePhase::Staging,
        Step::Staged | Step::RollingBack => NodePhase::Installing,
        Step::Installed | Step::Restored => NodePhase::Restarting,
        Step::Restarted | Step::RestartedPrevious => NodePhase::Verifying,
        Step::Succeeded => NodePhase::Succeeded,
        Step::Failed => NodePhase::Failed,
        Step::RolledBack => NodePhase::RolledBack,
    }
}

/// The status for an attempt in the state `journal` records, on top of `base`.
#[must_use]
pub fn from_journal(
    base: &NodeUpgradeStatus,
    upgrade: &NodeUpgrade,
    journal: &Journal,
) -> NodeUpgradeStatus {
    let mut status = base.clone();
    status.observed_generation = upgrade.metadata.generation;
    status.observed_attempt = upgrade.spec.attempt;
    status.phase = Some(phase(journal.step));
    if !journal.from_version.is_empty() {
        status.from_version = Some(journal.from_version.clone());
    }
    status.to_version = Some(journal.to_version.clone());
    status.restarts = journal.restarts.iter().map(observed).collect();
    status.restart_count = i32::try_from(journal.restarts.len()).unwrap_or(i32::MAX);
    status.execute_start_time = status
        .execute_start_time
        .or_else(|| Some(super::api::now()));
    status.last_heartbeat_time = Some(super::api::now());
    let failure = journal.failure.as_ref();
    status.reason = failure.map(|f| f.reason.clone());
    status.message = failure.map(|f| describe_failure(journal.step, &f.message));
    if journal.step.is_terminal() {
        status.completion_time = Some(super::api::now());
        if journal.step == Step::Succeeded {
            status.message = Some(format!("kubelet {} verified", journal.to_version));
        }
    }
    status
}

fn describe_failure(step: Step, message: &str) -> String {
    if step.is_terminal() {
        message.to_owned()
    } else {
        format!("rolling back: {message}")
    }
}

fn observed(restart: &crate::journal::Restart) -> ObservedRestart {
    ObservedRestart {
        pod_namespace: restart.pod_namespace.clone(),
        pod_name: restart.pod_name.clone(),
        container: restart.container_name.clone(),
        container_id_before: restart.id_before.clone(),
        container_id_after: restart.id_after.clone(),
        unexpected: restart.unexpected,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

    use kubelift_crds::{BinaryArtifact, NodeUpgradeSpec, Stage};

    use super::*;

    fn upgrade(generation: i64, attempt: i32, status: Option<NodeUpgradeStatus>) -> NodeUpgrade {
        let spec = NodeUpgradeSpec {
            node_name: "node-a".into(),
            plan: "plan".into(),
            version: "v1.32.0".into(),
            binary: BinaryArtifact::default(),
            stage: Stage::Prepare,
            hold_reason: None,
            attempt,
            containers: kubelift_crds::ContainersSpec::default(),
            verify: kubelift_crds::VerifySpec::default(),
            rollback: true,
        };
        let mut upgrade = NodeUpgrade::new("plan-node-a", spec);
        upgrade.metadata.generation = Some(generation);
        upgrade.status = status;
        upgrade
    }

    fn status(generation: i64, attempt: i32, phase: NodePhase) -> NodeUpgradeStatus {
        NodeUpgradeStatus {
            observed_generation: Some(generation),
            observed_attempt: attempt,
            phase: Some(phase),
            ..NodeUpgradeStatus::default()
        }
    }

    #[test]
    fn prepare_runs_for_a_new_generation_or_attempt_but_not_twice() {
        assert!(needs_prepare(&upgrade(1, 1, None)));
        assert!(!needs_prepare(&upgrade(
            1,
            1,
            Some(status(1, 1, NodePhase::Prepared))
        )));
        assert!(needs_prepare(&upgrade(
            2,
            1,
            Some(status(1, 1, NodePhase::Prepared))
        )));
        assert!(needs_prepare(&upgrade(
            1,
            2,
            Some(status(1, 1, NodePhase::Failed))
        )));
        assert!(needs_prepare(&upgrade(
            1,
            1,
            Some(status(1, 1, NodePhase::Preparing))
        )));
    }

    #[test]
    fn a_changed_prediction_waits_for_the_operators_next_generation() {
        let mut held = status(3, 1, NodePhase::Prepared);
        held.reason = Some(PREDICTION_CHANGED.into());
        assert!(awaiting_operator(&upgrade(3, 1, Some(held.clone()))));
        assert!(!awaiting_operator(&upgrade(4, 1, Some(held))));
    }

    #[test]
    fn only_a_terminal_phase_of_the_current_attempt_counts_as_finished() {
        assert!(finished_attempt(&upgrade(
            1,
            2,
            Some(status(1, 2, NodePhase::RolledBack))
        )));
        assert!(!finished_attempt(&upgrade(
            1,
            3,
            Some(status(1, 2, NodePhase::Failed))
        )));
        assert!(!finished_attempt(&upgrade(
            1,
            2,
            Some(status(1, 2, NodePhase::Verifying))
        )));
    }

    #[test]
    fn rollback_steps_report_the_phases_of_the_swap_they_undo() {
        assert_eq!(phase(Step::Started), NodePhase::Snapshotting);
        assert_eq!(phase(Step::RollingBack), NodePhase::Installing);
        assert_eq!(phase(Step::RestartedPrevious), NodePhase::Verifying);
        assert_eq!(phase(Step::RolledBack), NodePhase::RolledBack);
    }
}
