//! Execute: drives one `NodeUpgrade` attempt through its steps — snapshot, stage, install,
//! restart, verify, and on failure restore, restart, re-verify — recording each completed step in
//! the journal before the next begins. Started again after a crash, it resumes at the step after
//! the last recorded one; every step is idempotent, so a step cut short is simply run again.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kubelift_crds::{BinaryArtifact, ContainerVerdict, NodeUpgrade};
use tokio::sync::mpsc::UnboundedSender;

use crate::cluster::ClusterView;
use crate::context::NodeContext;
use crate::cri::CriClient;
use crate::journal::{
    Failure, JOURNAL_FORMAT, Journal, JournalError, JournalStore, OrderSettings, Step,
};
use crate::kubelet;
use crate::metrics::Metrics;
use crate::prediction::Predicted;
use crate::snapshot;
use crate::steps::snapshot::SnapshotOutcome;
use crate::steps::{install, restart, stage, verify};

/// Errors that stop the engine itself (as opposed to failing the attempt, which is recorded).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The journal could not be read or written.
    #[error("failed to keep the journal")]
    Journal(#[from] JournalError),
    /// The `NodeUpgrade` lacks what an attempt needs.
    #[error("failed to read the work order: {0}")]
    Order(String),
}

/// One `NodeUpgrade` attempt as the engine needs it.
#[derive(Debug, Clone)]
pub struct WorkOrder {
    /// `NodeUpgrade` UID.
    pub uid: String,
    /// `NodeUpgrade` name.
    pub name: String,
    /// Attempt number.
    pub attempt: u32,
    /// Target kubelet version.
    pub version: String,
    /// Settings copied into the journal.
    pub settings: OrderSettings,
    /// The verdicts reported at Prepare (non-`Preserved` only), when there was a Prepare.
    pub prepared: Option<Vec<ContainerVerdict>>,
}

impl WorkOrder {
    /// Reads a work order from a `NodeUpgrade` object.
    pub fn from_object(upgrade: &NodeUpgrade) -> Result<Self, EngineError> {
        let uid = upgrade
            .metadata
            .uid
            .clone()
            .ok_or_else(|| order("metadata.uid is missing"))?;
        let name = upgrade.metadata.name.clone().unwrap_or_default();
        let spec = &upgrade.spec;
        let attempt = u32::try_from(spec.attempt).map_err(|_| order("spec.attempt is negative"))?;
        let prepared = upgrade.status.as_ref().map(|s| s.containers.clone());
        let settings = OrderSettings {
            binary: spec.binary.clone(),
            ready_timeout_seconds: spec.verify.ready_timeout_seconds,
            settle_seconds: spec.verify.settle_seconds,
            max_unexpected_restarts: spec.verify.max_unexpected_restarts,
            rollback: spec.rollback,
        };
        Ok(Self {
            uid,
            name,
            attempt,
            version: spec.version.clone(),
            settings,
            prepared,
        })
    }
}

fn order(message: &str) -> EngineError {
    EngineError::Order(message.to_owned())
}

/// How an attempt ended for now.
#[derive(Debug)]
pub enum Outcome {
    /// The attempt reached a terminal step; the journal says which.
    Finished(Box<Journal>),
    /// Verdicts got worse since Prepare: the attempt goes back to `Prepared`.
    PredictionChanged {
        /// The containers whose verdict got worse.
        containers: Vec<String>,
        /// The new prediction.
        predicted: Vec<Predicted>,
    },
}

/// The step engine of one node.
#[derive(Debug, Clone)]
pub struct Engine {
    ctx: NodeContext,
    cluster: ClusterView,
    store: JournalStore,
    metrics: Arc<Metrics>,
    progress: Option<UnboundedSender<Journal>>,
}

/// What a failed step reports.
struct StepFailure {
    reason: &'static str,
    message: String,
}

impl StepFailure {
    fn new(reason: &'static str, error: &(dyn std::error::Error + 'static)) -> Self {
        Self {
            reason,
            message: error_chain(error),
        }
    }
}

/// An error with its sources, as one line. A request the API server refused ends the line with
/// the server's own message, code and reason (kube's display of it repeats the message and dumps
/// the whole `Status`).
#[must_use]
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        if !text.is_empty() {
            text.push_str(": ");
        }
        if let Some(kube::Error::Api(status)) = cause.downcast_ref::<kube::Error>() {
            let (message, code, reason) = (&status.message, status.code, &status.reason);
            let _ = write!(text, "{message} (HTTP {code} {reason})");
            break;
        }
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

enum StepResult {
    Advance(Step),
    Changed(Vec<String>, Vec<Predicted>),
}

impl Engine {
    /// An engine for this node; `progress` receives the journal after every recorded step.
    #[must_use]
    pub fn new(
        ctx: NodeContext,
        cluster: ClusterView,
        metrics: Arc<Metrics>,
        progress: Option<UnboundedSender<Journal>>,
    ) -> Self {
        let store = JournalStore::new(&ctx.paths.journal_dir());
        Self {
            ctx,
            cluster,
            store,
            metrics,
            progress,
        }
    }

    /// The journal store.
    #[must_use]
    pub fn store(&self) -> &JournalStore {
        &self.store
    }

    /// The node context.
    #[must_use]
    pub fn context(&self) -> &NodeContext {
        &self.ctx
    }

    /// Where pods and the Node's state come from.
    #[must_use]
    pub fn cluster(&self) -> &ClusterView {
        &self.cluster
    }

    /// Sends the journal after every recorded step to `progress`.
    pub fn set_progress(&mut self, progress: UnboundedSender<Journal>) {
        self.progress = Some(progress);
    }

    /// Runs (or resumes) the attempt of `order` until it ends.
    pub async fn execute(&self, order: &WorkOrder) -> Result<Outcome, EngineError> {
        self.remove_stale_temps();

        let journal = match self.store.load(&order.uid, order.attempt)? {
            Some(journal) => journal,
            None => self.begin(order).await?,
        };
        self.drive(journal, order.prepared.as_deref()).await
    }

    /// Finishes an attempt whose `NodeUpgrade` is gone: an unfinished install is rolled back.
    pub async fn abandon(&self, mut journal: Journal) -> Result<Journal, EngineError> {
        if journal.step.is_terminal() {
            return Ok(journal);
        }
        let failure = StepFailure {
            reason: "NodeUpgradeDeleted",
            message: "the NodeUpgrade was deleted before the attempt finished".to_owned(),
        };
        self.fail(&mut journal, failure).await;
        self.store.save(&journal)?;
        match self.drive(journal, None).await? {
            Outcome::Finished(journal) => Ok(*journal),
            Outcome::PredictionChanged { .. } => Err(order("abandoned attempt cannot re-predict")),
        }
    }

    /// Removes what a helper killed mid-write left beside the journal, the kubelet and the
    /// snapshot (their atomic writes' temporary files).
    fn remove_stale_temps(&self) {
        let paths = &self.ctx.paths;
        let snapshot_dir = paths.snapshot.parent().map(Path::to_path_buf);
        let dirs = [
            Some(paths.journal_dir()),
            Some(paths.kubelet_dir()),
            snapshot_dir,
        ];
        for dir in dirs.into_iter().flatten() {
            let removed = crate::fsutil::remove_stale_temps(&dir);
            if removed > 0 {
                tracing::info!(dir = %dir.display(), removed, "removed stale temporary files");
            }
        }
    }

    /// Records the attempt's starting point: the versions and digests every later step relies on.
    async fn begin(&self, order: &WorkOrder) -> Result<Journal, EngineError> {
        let mut journal = self.new_journal(order);
        if let Err(failure) = self.inspect_node(order, &mut journal).await {
            journal.failure = Some(Failure {
                reason: failure.reason.into(),
                message: failure.message,
            });
            self.metrics.failed(failure.reason);
            journal.advance(Step::Failed);
        }
        self.store.save(&journal)?;
        self.publish(&journal);
        Ok(journal)
    }

    fn new_journal(&self, order: &WorkOrder) -> Journal {
        let mut journal = Journal {
            format_version: JOURNAL_FORMAT,
            uid: order.uid.clone(),
            attempt: order.attempt,
            name: order.name.clone(),
            node: self.ctx.node_name.clone(),
            step: Step::Started,
            from_version: String::new(),
            to_version: order.version.clone(),
            original_sha256: String::new(),
            target_sha256: order.settings.binary.sha256.to_ascii_lowercase(),
            order: order.settings.clone(),
            backup: None,
            failure: None,
            restarts: Vec::new(),
            history: Vec::new(),
        };
        journal.advance(Step::Started);
        journal
    }

    /// Reads the kubelet's version and digest, refusing an unsafe path or a node whose on-disk
    /// kubelet disagrees with the Node's report.
    async fn inspect_node(
        &self,
        order: &WorkOrder,
        journal: &mut Journal,
    ) -> Result<(), StepFailure> {
        let kubelet = &self.ctx.paths.kubelet;
        install::check_kubelet_path(kubelet).map_err(|e| StepFailure::new(e.reason(), &e))?;
        let on_disk = kubelet::binary_version(kubelet)
            .await
            .map_err(|e| StepFailure::new("KubeletVersionUnknown", &e))?;
        let node = self.cluster.node_state(&self.ctx.node_name).await;
        let node = node.map_err(|e| StepFailure::new("ApiUnavailable", &e))?;
        if let Some(node) = node.filter(|n| n.kubelet_version != on_disk) {
            return Err(StepFailure {
                reason: "VersionMismatch",
                message: format!(
                    "the kubelet on disk reports {on_disk} but the Node reports {}",
                    node.kubelet_version
                ),
            });
        }
        journal.from_version = on_disk;
        journal.original_sha256 = stage::file_sha256(kubelet)
            .await
            .map_err(|e| StepFailure::new("KubeletUnreadable", &e))?;
        tracing::info!(from = %journal.from_version, to = %order.version, "attempt started");
        Ok(())
    }

    /// Runs steps until the attempt is terminal or goes back to `Prepared`.
    async fn drive(
        &self,
        mut journal: Journal,
        prepared: Option<&[ContainerVerdict]>,
    ) -> Result<Outcome, EngineError> {
        while !journal.step.is_terminal() {
            self.publish(&journal);
            let started = Instant::now();
            let done = journal.step;
            match self.run_step(&mut journal, prepared).await {
                Ok(StepResult::Advance(next)) => {
                    self.metrics
                        .step_done(&format!("{next:?}"), started.elapsed().as_secs_f64());
                    journal.advance(next);
                }
                Ok(StepResult::Changed(containers, predicted)) => {
                    return Ok(Outcome::PredictionChanged {
                        containers,
                        predicted,
                    });
                }
                Err(failure) => {
                    let (reason, message) = (failure.reason, &failure.message);
                    tracing::warn!(step = ?done, reason, %message, "step failed");
                    self.fail(&mut journal, failure).await;
                }
            }
            self.store.save(&journal)?;
        }
        self.finish(&journal);
        Ok(Outcome::Finished(Box::new(journal)))
    }

    /// Runs the step after `journal.step`.
    async fn run_step(
        &self,
        journal: &mut Journal,
        prepared: Option<&[ContainerVerdict]>,
    ) -> Result<StepResult, StepFailure> {
        let advance = |step| Ok(StepResult::Advance(step));
        match journal.step {
            Step::Started => self.snapshot(journal, prepared).await,
            Step::Snapshotted => self.stage(journal).await.and(advance(Step::Staged)),
            Step::Staged => self.install(journal).await.and(advance(Step::Installed)),
            Step::Installed => self.restart().await.and(advance(Step::Restarted)),
            Step::Restarted => self.verify(journal).await.and(advance(Step::Succeeded)),
            Step::RollingBack => self.restore(journal).await.and(advance(Step::Restored)),
            Step::Restored => self.restart().await.and(advance(Step::RestartedPrevious)),
            Step::RestartedPrevious => self
                .verify_previous(journal)
                .await
                .and(advance(Step::RolledBack)),
            Step::Succeeded | Step::Failed | Step::RolledBack => advance(journal.step),
        }
    }

    async fn snapshot(
        &self,
        journal: &Journal,
        prepared: Option<&[ContainerVerdict]>,
    ) -> Result<StepResult, StepFailure> {
        let outcome = crate::steps::snapshot::take(&self.ctx, &self.cluster, journal, prepared)
            .await
            .map_err(|e| StepFailure::new(e.reason(), &e))?;
        Ok(match outcome {
            SnapshotOutcome::Written(_) => StepResult::Advance(Step::Snapshotted),
            SnapshotOutcome::PredictionChanged(worse, predicted) => {
                StepResult::Changed(worse, predicted)
            }
        })
    }

    async fn stage(&self, journal: &Journal) -> Result<(), StepFailure> {
        stage::stage(&self.ctx, &journal.order.binary, &journal.to_version)
            .await
            .map(drop)
            .map_err(|e| StepFailure::new(e.reason(), &e))
    }

    async fn install(&self, journal: &mut Journal) -> Result<(), StepFailure> {
        let backup = install::install(
            &self.ctx,
            &journal.from_version,
            &journal.original_sha256,
            &journal.target_sha256,
        )
        .await
        .map_err(|e| StepFailure::new(e.reason(), &e))?;
        journal.backup = Some(backup);
        Ok(())
    }

    async fn restart(&self) -> Result<(), StepFailure> {
        restart::restart_kubelet(&self.ctx)
            .await
            .map_err(|e| StepFailure::new("RestartFailed", &e))
    }

    async fn verify(&self, journal: &mut Journal) -> Result<(), StepFailure> {
        let fail = |e: verify::VerifyError| StepFailure::new(e.reason(), &e);
        let timeout = seconds(journal.order.ready_timeout_seconds);
        verify::wait_ready(&self.ctx, &self.cluster, &journal.to_version, timeout)
            .await
            .map_err(fail)?;
        let snapshot = snapshot::read(&self.ctx.paths.snapshot)
            .map_err(|e| StepFailure::new("SnapshotUnreadable", &e))?
            .filter(|s| s.upgrade_uid == journal.uid && s.attempt == journal.attempt)
            .ok_or_else(|| StepFailure {
                reason: "SnapshotUnreadable",
                message: "the snapshot of this attempt is missing".to_owned(),
            })?;
        let mut cri = CriClient::connect(&self.ctx.paths.cri_socket)
            .await
            .map_err(|e| StepFailure::new("RuntimeUnavailable", &e))?;
        let settle = seconds(journal.order.settle_seconds);
        let max = usize::try_from(journal.order.max_unexpected_restarts).unwrap_or(0);
        match verify::settle(&self.ctx, &mut cri, &snapshot, settle, max).await {
            Ok(restarts) => {
                journal.restarts = restarts;
                Ok(())
            }
            Err(error) => {
                journal.restarts = verify::restarts_since(
                    &snapshot,
                    &cri.running_containers().await.unwrap_or_default(),
                );
                Err(fail(error))
            }
        }
    }

    async fn restore(&self, journal: &Journal) -> Result<(), StepFailure> {
        let backup = journal
            .backup
            .clone()
            .unwrap_or_else(|| install::backup_path(&self.ctx, &journal.from_version));
        install::restore(&self.ctx, &backup, &journal.original_sha256)
            .await
            .map_err(|e| StepFailure::new("RollbackFailed", &e))
    }

    async fn verify_previous(&self, journal: &Journal) -> Result<(), StepFailure> {
        let timeout = seconds(journal.order.ready_timeout_seconds);
        verify::wait_ready(&self.ctx, &self.cluster, &journal.from_version, timeout)
            .await
            .map_err(|e| StepFailure::new("RollbackFailed", &e))
    }

    /// Records a failure: roll back when the kubelet may have changed and rollback is on,
    /// otherwise end the attempt as `Failed`.
    async fn fail(&self, journal: &mut Journal, failure: StepFailure) {
        self.metrics.failed(failure.reason);
        let rolling_back = matches!(
            journal.step,
            Step::RollingBack | Step::Restored | Step::RestartedPrevious
        );
        if rolling_back {
            let first = journal.failure.take();
            let message = match &first {
                Some(f) => format!("{}; rollback failed: {}", f.message, failure.message),
                None => failure.message,
            };
            let reason = first.map_or_else(|| failure.reason.to_owned(), |f| f.reason);
            journal.failure = Some(Failure { reason, message });
            journal.advance(Step::Failed);
            return;
        }
        journal.failure = Some(Failure {
            reason: failure.reason.to_owned(),
            message: failure.message,
        });
        let next = if journal.order.rollback && self.kubelet_changed(journal).await {
            Step::RollingBack
        } else {
            Step::Failed
        };
        journal.advance(next);
    }

    async fn kubelet_changed(&self, journal: &Journal) -> bool {
        if journal.step < Step::Staged || journal.original_sha256.is_empty() {
            return false;
        }
        let current = stage::file_sha256(&self.ctx.paths.kubelet)
            .await
            .unwrap_or_default();
        current != journal.original_sha256 || journal.step.touched_kubelet()
    }

    fn finish(&self, journal: &Journal) {
        self.publish(journal);
        if journal.step == Step::Succeeded {
            self.metrics.succeeded.inc();
            stage::discard(&self.ctx, &journal.target_sha256);
        }
        let failure = journal.failure.as_ref();
        tracing::info!(
            step = ?journal.step,
            reason = failure.map(|f| f.reason.as_str()),
            message = failure.map(|f| f.message.as_str()),
            "attempt finished"
        );
    }

    fn publish(&self, journal: &Journal) {
        if let Some(progress) = &self.progress {
            let _ = progress.send(journal.clone());
        }
    }
}

fn seconds(value: i64) -> Duration {
    Duration::from_secs(u64::try_from(value).unwrap_or(0))
}

/// The artifact of an attempt, for pre-staging at Prepare.
#[must_use]
pub fn artifact(order: &WorkOrder) -> &BinaryArtifact {
    &order.settings.binary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to read the node")]
    struct Wrapper(#[source] kube::Error);

    #[test]
    fn a_refused_request_ends_the_chain_with_the_servers_message() {
        let status =
            kube::core::Status::failure("nodes \"n\" not found", "NotFound").with_code(404);
        let error = Wrapper(kube::Error::Api(status.boxed()));

        let line = error_chain(&error);

        assert_eq!(
            line,
            "failed to read the node: nodes \"n\" not found (HTTP 404 NotFound)"
        );
    }
}
