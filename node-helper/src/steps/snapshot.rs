//! Snapshot: re-read the node's containers, re-predict, and write the snapshot file. When a
//! container's verdict got worse since Prepare, nothing is written and the caller goes back to
//! `Prepared` with reason `PredictionChanged`.

use jiff::Timestamp;
use kubelift_crds::ContainerVerdict;

use crate::cluster::{ClusterError, ClusterView};
use crate::context::NodeContext;
use crate::cri::{CriClient, CriError};
use crate::journal::Journal;
use crate::prediction::{self, Predicted};
use crate::snapshot::{self, SnapshotBody, SnapshotContainer, SnapshotError};

/// Errors of the snapshot step.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotStepError {
    /// The runtime could not be read.
    #[error("failed to read the node's containers")]
    Cri(#[from] CriError),
    /// The node's pods could not be read.
    #[error("failed to read the node's pods")]
    Cluster(#[from] ClusterError),
    /// The snapshot could not be written.
    #[error("failed to write the snapshot")]
    Write(#[from] SnapshotError),
}

impl SnapshotStepError {
    /// `PascalCase` reason for status, Events and metrics.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Cri(_) => "RuntimeUnavailable",
            Self::Cluster(_) => "ApiUnavailable",
            Self::Write(_) => "SnapshotFailed",
        }
    }
}

/// What the step found.
#[derive(Debug)]
pub enum SnapshotOutcome {
    /// The snapshot is written.
    Written(SnapshotBody),
    /// Verdicts got worse since Prepare: the listed containers, and the new prediction.
    PredictionChanged(Vec<String>, Vec<Predicted>),
}

/// Takes the snapshot for the attempt in `journal`, comparing with Prepare's `prepared` verdicts
/// when there are some.
pub async fn take(
    ctx: &NodeContext,
    cluster: &ClusterView,
    journal: &Journal,
    prepared: Option<&[ContainerVerdict]>,
) -> Result<SnapshotOutcome, SnapshotStepError> {
    let containers = CriClient::connect(&ctx.paths.cri_socket)
        .await?
        .running_containers()
        .await?;
    let pods = cluster.node_pods(&ctx.node_name).await?;
    let predicted = prediction::predict(
        &containers,
        &pods,
        &journal.from_version,
        &journal.to_version,
    );
    if let Some(before) = prepared {
        let worse = prediction::got_worse(before, &predicted);
        if !worse.is_empty() {
            return Ok(SnapshotOutcome::PredictionChanged(worse, predicted));
        }
    }
    let body = body(ctx, journal, predicted);
    snapshot::write(&ctx.paths.snapshot, &body)?;
    tracing::info!(containers = body.containers.len(), "snapshot written");
    Ok(SnapshotOutcome::Written(body))
}

fn body(ctx: &NodeContext, journal: &Journal, predicted: Vec<Predicted>) -> SnapshotBody {
    SnapshotBody {
        node: ctx.node_name.clone(),
        upgrade_uid: journal.uid.clone(),
        attempt: journal.attempt,
        kubelet_version_before: journal.from_version.clone(),
        kubelet_version_after: journal.to_version.clone(),
        taken_at: Timestamp::now(),
        containers: predicted
            .into_iter()
            .map(|p| SnapshotContainer {
                container: p.container,
                verdict: p.verdict,
            })
            .collect(),
    }
}
