//! Prepare: predict what the upgrade does to this node's containers and pre-stage the artifact,
//! touching nothing that runs. Reads the kubelet's on-disk version (which must equal the Node's
//! reported version), every container from CRI, and the node's pods from the API; calibrates the
//! model on the stored hashes; stages and checks the binary beside the kubelet; warns when the
//! host's package manager owns the kubelet path.

use kubelift_crds::{NodePhase, NodeUpgrade, NodeUpgradeStatus};

use crate::cluster::ClusterView;
use crate::context::NodeContext;
use crate::cri::CriClient;
use crate::engine::error_chain;
use crate::kubelet;
use crate::prediction::{self, Predicted};
use crate::steps::{install, ownership, stage};

/// Containers listed in status at most (the rest are counted, and `truncated` is set).
pub const STATUS_CONTAINER_CAP: usize = 50;

/// Why Prepare could not finish: a reason for status and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepareFailure {
    /// `PascalCase` reason.
    pub reason: &'static str,
    /// What exactly went wrong.
    pub message: String,
}

fn failure(reason: &'static str, error: &(dyn std::error::Error + 'static)) -> PrepareFailure {
    PrepareFailure {
        reason,
        message: error_chain(error),
    }
}

/// What Prepare found.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The kubelet's version now.
    pub from_version: String,
    /// The prediction per container.
    pub predicted: Vec<Predicted>,
    /// Warnings for status.
    pub warnings: Vec<String>,
}

/// Runs Prepare for `upgrade`.
pub async fn prepare(
    ctx: &NodeContext,
    cluster: &ClusterView,
    upgrade: &NodeUpgrade,
) -> Result<Prepared, PrepareFailure> {
    let kubelet = &ctx.paths.kubelet;
    install::check_kubelet_path(kubelet).map_err(|e| failure(e.reason(), &e))?;
    let from_version = current_version(ctx, cluster).await?;
    let containers = CriClient::connect(&ctx.paths.cri_socket)
        .await
        .map_err(|e| failure("RuntimeUnavailable", &e))?
        .running_containers()
        .await
        .map_err(|e| failure("RuntimeUnavailable", &e))?;
    let pods = cluster
        .node_pods(&ctx.node_name)
        .await
        .map_err(|e| failure("ApiUnavailable", &e))?;
    let predicted = prediction::predict(&containers, &pods, &from_version, &upgrade.spec.version);
    stage::stage(ctx, &upgrade.spec.binary, &upgrade.spec.version)
        .await
        .map_err(|e| failure(e.reason(), &e))?;
    let warnings = ownership::package_owner_warning(&ctx.paths)
        .into_iter()
        .collect();
    Ok(Prepared {
        from_version,
        predicted,
        warnings,
    })
}

/// The on-disk kubelet's version, refused when the Node reports another (contract 6).
async fn current_version(
    ctx: &NodeContext,
    cluster: &ClusterView,
) -> Result<String, PrepareFailure> {
    let on_disk = kubelet::binary_version(&ctx.paths.kubelet)
        .await
        .map_err(|e| failure("KubeletVersionUnknown", &e))?;
    let node = cluster
        .node_state(&ctx.node_name)
        .await
        .map_err(|e| failure("ApiUnavailable", &e))?;
    match node {
        Some(node) if node.kubelet_version != on_disk => Err(PrepareFailure {
            reason: "VersionMismatch",
            message: format!(
                "the kubelet on disk reports {on_disk} but the Node reports {}",
                node.kubelet_version
            ),
        }),
        _ => Ok(on_disk),
    }
}

/// Writes a prediction into `status`.
pub fn record_prediction(status: &mut NodeUpgradeStatus, predicted: &[Predicted]) {
    let (containers, truncated) = prediction::reportable(predicted, STATUS_CONTAINER_CAP);
    status.prediction = Some(prediction::counts(predicted));
    status.containers = containers;
    status.truncated = truncated;
}

/// The status after a successful Prepare.
#[must_use]
pub fn prepared_status(
    base: &NodeUpgradeStatus,
    upgrade: &NodeUpgrade,
    found: &Prepared,
) -> NodeUpgradeStatus {
    let mut status = base.clone();
    status.phase = Some(NodePhase::Prepared);
    status.from_version = Some(found.from_version.clone());
    status.to_version = Some(upgrade.spec.version.clone());
    record_prediction(&mut status, &found.predicted);
    status.warnings.clone_from(&found.warnings);
    status.prepared_time = Some(super::api::now());
    status.reason = None;
    status.message = Some(summary(&found.predicted));
    status
}

fn summary(predicted: &[Predicted]) -> String {
    let counts = prediction::counts(predicted);
    format!(
        "{} preserved, {} will restart, {} unknown",
        counts.preserved, counts.will_restart, counts.unknown
    )
}
