//! The agent's two kinds of work on a `NodeUpgrade`: Prepare (predict and pre-stage, then
//! `Prepared`) and Execute (the engine, with its progress reported as phases, heartbeats while it
//! runs, and the finalizer held until a terminal phase).

use kube::ResourceExt;
use kubelift_crds::{NodePhase, NodeUpgrade, NodeUpgradeStatus};
use tokio::sync::mpsc;

use super::{Agent, api, prepare, status};
use crate::engine::{Engine, Outcome, WorkOrder, error_chain};
use crate::journal::Journal;

impl Agent {
    /// Runs Prepare and reports `Prepared` (or `Failed` with the reason).
    pub(super) async fn prepare(&self, upgrade: NodeUpgrade) {
        let mut base = upgrade.status.clone().unwrap_or_default();
        base.observed_generation = upgrade.metadata.generation;
        base.observed_attempt = upgrade.spec.attempt;
        base.last_heartbeat_time = Some(api::now());
        base.phase = Some(NodePhase::Preparing);
        let upgrade = self.apply(&upgrade, &base).await.unwrap_or(upgrade);
        let ctx = self.engine.context();
        let outcome = prepare::prepare(ctx, self.engine.cluster(), &upgrade).await;
        let status = match outcome {
            Ok(found) => prepare::prepared_status(&base, &upgrade, &found),
            Err(failure) => failed(&base, failure.reason, failure.message),
        };
        self.transition(&upgrade, &status).await;
    }

    /// Runs (or resumes) the attempt and reports each step.
    pub(super) async fn execute(&self, upgrade: NodeUpgrade) {
        let order = match WorkOrder::from_object(&upgrade) {
            Ok(order) => order,
            Err(error) => {
                let base = upgrade.status.clone().unwrap_or_default();
                let status = failed(&base, "InvalidWorkOrder", error_chain(&error));
                self.transition(&upgrade, &status).await;
                return;
            }
        };
        let mut upgrade = match self.writer.hold(&upgrade).await {
            Ok(held) => held,
            Err(error) => return tracing::warn!(error = %error_chain(&error), "failed to hold"),
        };
        let (progress, mut updates) = mpsc::unbounded_channel();
        let engine = self.engine.with_progress(progress);
        let run = engine.execute(&order);
        let mut run = std::pin::pin!(run);
        let mut ticker = tokio::time::interval(self.heartbeat);
        let outcome = loop {
            tokio::select! {
                outcome = &mut run => break outcome,
                Some(journal) = updates.recv() => upgrade = self.report(upgrade, &journal).await,
                _ = ticker.tick() => self.beat(&upgrade).await,
            }
        };
        while let Ok(journal) = updates.try_recv() {
            upgrade = self.report(upgrade, &journal).await;
        }
        self.conclude(upgrade, outcome).await;
    }

    /// Writes the status for a journal update, with an Event when the phase changed.
    async fn report(&self, upgrade: NodeUpgrade, journal: &Journal) -> NodeUpgrade {
        let base = upgrade.status.clone().unwrap_or_default();
        let status = status::from_journal(&base, &upgrade, journal);
        self.transition(&upgrade, &status).await.unwrap_or(upgrade)
    }

    /// Ends Execute: a terminal phase releases the finalizer; a changed prediction goes back to
    /// `Prepared` with reason `PredictionChanged`.
    async fn conclude(
        &self,
        upgrade: NodeUpgrade,
        outcome: Result<Outcome, crate::engine::EngineError>,
    ) {
        match outcome {
            Ok(Outcome::Finished(journal)) if journal.step.is_terminal() => {
                let latest = self
                    .writer
                    .api()
                    .get(&upgrade.name_any())
                    .await
                    .unwrap_or(upgrade);
                self.release(&latest).await;
            }
            Ok(Outcome::Finished(_)) => {}
            Ok(Outcome::PredictionChanged {
                containers,
                predicted,
            }) => {
                let mut status = upgrade.status.clone().unwrap_or_default();
                status.phase = Some(NodePhase::Prepared);
                prepare::record_prediction(&mut status, &predicted);
                status.reason = Some(status::PREDICTION_CHANGED.to_owned());
                status.message = Some(format!(
                    "verdicts got worse since Prepare: {}",
                    containers.join(", ")
                ));
                let upgrade = self.transition(&upgrade, &status).await.unwrap_or(upgrade);
                self.release(&upgrade).await;
            }
            Err(error) => tracing::error!(error = %error_chain(&error), "execute stopped"),
        }
    }

    /// Applies `status`; publishes an Event when the phase or reason changed.
    async fn transition(
        &self,
        upgrade: &NodeUpgrade,
        status: &NodeUpgradeStatus,
    ) -> Option<NodeUpgrade> {
        let before = upgrade.status.as_ref();
        let changed = before.map(|s| (s.phase, s.reason.clone()))
            != Some((status.phase, status.reason.clone()));
        let updated = self.apply(upgrade, status).await;
        if changed && let Some(phase) = status.phase {
            let warning = matches!(phase, NodePhase::Failed | NodePhase::RolledBack);
            let reason = status
                .reason
                .clone()
                .unwrap_or_else(|| format!("{phase:?}"));
            let note = status
                .message
                .clone()
                .unwrap_or_else(|| format!("phase {phase:?}"));
            self.writer
                .event(updated.as_ref().unwrap_or(upgrade), warning, &reason, note)
                .await;
            tracing::info!(phase = ?phase, reason = status.reason.as_deref(), "phase changed");
        }
        updated
    }

    async fn apply(
        &self,
        upgrade: &NodeUpgrade,
        status: &NodeUpgradeStatus,
    ) -> Option<NodeUpgrade> {
        match self.writer.apply_status(upgrade, status).await {
            Ok(updated) => Some(updated),
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "failed to write status");
                None
            }
        }
    }
}

fn failed(base: &NodeUpgradeStatus, reason: &str, message: String) -> NodeUpgradeStatus {
    let mut status = base.clone();
    status.phase = Some(NodePhase::Failed);
    status.reason = Some(reason.to_owned());
    status.message = Some(message);
    status.completion_time = Some(api::now());
    status
}

impl Engine {
    /// The same engine, reporting its progress to `progress`.
    #[must_use]
    pub fn with_progress(&self, progress: mpsc::UnboundedSender<Journal>) -> Engine {
        let mut engine = self.clone();
        engine.set_progress(progress);
        engine
    }
}
