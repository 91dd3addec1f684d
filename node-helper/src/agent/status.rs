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

/// Whether nothing is pending for the helper (terminal, or held), so no heartbeat is due.
#[must_use]
pub fn is_settled(upgrade: &NodeUpgrade) -> bool {
    finished_attempt(upgrade) || upgrade.spec.stage == kubelift_crds::Stage::Hold
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
