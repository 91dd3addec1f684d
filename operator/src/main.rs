//! `kubelift-operator`: the rollout controller.

use std::fmt::Write as _;

use clap::Parser;
use kubelift_operator::cli::{self, Cli, LogFormat};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_env("KUBELIFT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    match cli.log_format {
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
    }

    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        "kubelift-operator starting"
    );
    match cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            let mut chain = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                let _ = write!(chain, ": {cause}");
                source = cause.source();
            }
            tracing::error!(error = %chain, "kubelift-operator stopped");
            std::process::ExitCode::FAILURE
        }
    }
}
