//! Process setup shared by the long-running commands: logging and the async runtime.

use std::future::Future;
use std::process::ExitCode;

/// Sets up `tracing` (filter from `RUST_LOG`, default `info`; JSON when `KUBELIFT_LOG_JSON` is
/// set) and runs `work` on a single-threaded runtime, which keeps the idle helper small.
pub fn block_on(work: impl Future<Output = ExitCode>) -> ExitCode {
    init_tracing();
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(work),
        Err(error) => {
            tracing::error!(%error, "failed to start the async runtime");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::env::var_os("KUBELIFT_LOG_JSON").is_some() {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
