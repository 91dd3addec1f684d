//! `execute`: runs one `NodeUpgrade` on this node from node-local input, without the API server —
//! for break-glass use when the control plane is unreachable, and to drive the engine as a plain
//! process. The Node's reported version and readiness are not observed in this mode; the pods
//! the prediction needs come from a file saved from the API server (`kubectl get pods -o json`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use kubelift_crds::NodeUpgrade;

use crate::cluster::ClusterView;
use crate::engine::{Engine, Outcome, WorkOrder, error_chain};
use crate::metrics::Metrics;
use crate::settings::NodeSettings;

/// Arguments of `execute`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecuteArgs {
    /// Node-local settings.
    #[command(flatten)]
    pub node: NodeSettings,
    /// The `NodeUpgrade` to execute, as JSON or YAML (its `metadata.uid` keys the journal).
    #[arg(long, env = "KUBELIFT_WORK_ORDER")]
    pub work_order: PathBuf,
    /// The node's pods as served by the API server (a `PodList` as JSON), for the prediction.
    #[arg(long, env = "KUBELIFT_PODS_FILE")]
    pub pods_file: Option<PathBuf>,
}

/// Errors of `execute`.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// The work order could not be read.
    #[error("failed to read the work order {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Runs `execute`; prints the final journal as JSON on stdout.
pub async fn run(args: ExecuteArgs) -> ExitCode {
    match execute(&args).await {
        Ok(ExitCode::SUCCESS) => ExitCode::SUCCESS,
        Ok(code) => code,
        Err(error) => {
            tracing::error!(error = %error_chain(error.as_ref()), "execute failed");
            ExitCode::from(2)
        }
    }
}

async fn execute(args: &ExecuteArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let upgrade = read_work_order(&args.work_order)?;
    let order = WorkOrder::from_object(&upgrade)?;
    let cluster = ClusterView::offline_from_file(args.pods_file.as_deref())?;
    let engine = Engine::new(
        args.node.context()?,
        cluster,
        Arc::new(Metrics::default()),
        None,
    );
    match engine.execute(&order).await? {
        Outcome::Finished(journal) => {
            println!("{}", serde_json::to_string_pretty(&journal)?);
            let ok = journal.step == crate::journal::Step::Succeeded;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Outcome::PredictionChanged { containers, .. } => {
            tracing::warn!(?containers, "prediction changed since prepare");
            Ok(ExitCode::from(3))
        }
    }
}

fn read_work_order(path: &Path) -> Result<NodeUpgrade, OfflineError> {
    let read = |source| OfflineError::Read {
        path: path.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(|e| read(e.into()))?;
    serde_saphyr::from_str(&text).map_err(|e| read(e.into()))
}

/// Entry point of `execute`.
#[must_use]
pub fn main(args: ExecuteArgs) -> ExitCode {
    crate::runtime::block_on(run(args))
}
