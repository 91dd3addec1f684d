//! Benchmarks of DESIGN §5's performance targets, measured on the testbed (not timed tests):
//! [`rollout`] runs a whole sandbox rollout with a fixed kubelet restart time and reports the
//! orchestration overhead, the API requests per node by component and the processes' footprint;
//! [`scale`] fills the embedded API server with a large fleet and reports the real operator's
//! memory and requests there. Every process a benchmark starts is stopped by its PID before it
//! returns, on success and on failure.

pub mod fleet;
pub mod procfs;
pub mod rollout;
pub mod scale;
pub mod timing;
mod tracker;
pub mod traffic;

use crate::apiserver::ApiServerError;
use crate::sandbox::SandboxError;

/// Failures of a benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The sandbox failed to start or to follow the rollout.
    #[error("failed to run the sandbox")]
    Sandbox(#[from] SandboxError),
    /// The API server did not start.
    #[error("failed to start the API server")]
    ApiServer(#[from] ApiServerError),
    /// An API request failed.
    #[error("failed to {what}")]
    Api {
        /// What was attempted.
        what: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// A file or process operation failed.
    #[error("failed to {what}")]
    Io {
        /// What was attempted.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Something did not happen in time.
    #[error("failed to wait for {what}: timed out")]
    Timeout {
        /// What was awaited.
        what: String,
    },
}

impl BenchError {
    fn api(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let what = what.into();
        move |source| Self::Api { what, source }
    }

    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}

/// The machine's load averages (1, 5, 15 minutes) from `/proc/loadavg`, for the report.
#[must_use]
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}
