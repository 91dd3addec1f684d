//! `kubelift-apiserver`: an in-memory Kubernetes API server on loopback. Prints its address,
//! writes a kubeconfig, and serves until interrupted.

use std::path::PathBuf;

use clap::Parser;
use kubelift_testbed::apiserver::{ApiServer, ApiServerConfig, ApiServerError};

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "In-memory Kubernetes API server for kubelift's tests and sandbox"
)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0, env = "KUBELIFT_APISERVER_PORT")]
    port: u16,
    /// Where to write a kubeconfig for the server.
    #[arg(long, env = "KUBELIFT_APISERVER_KUBECONFIG_OUT")]
    kubeconfig_out: Option<PathBuf>,
    /// Version reported by `/version`.
    #[arg(
        long,
        default_value = "v1.33.0",
        env = "KUBELIFT_APISERVER_SERVER_VERSION"
    )]
    server_version: String,
    /// Evaluate CRD CEL validation rules.
    #[arg(long, env = "KUBELIFT_APISERVER_ENFORCE_CEL")]
    enforce_cel: bool,
}

/// Failures of the binary.
#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("failed to start the API server")]
    Start(#[from] ApiServerError),
    #[error("failed to write the kubeconfig")]
    Kubeconfig(#[source] std::io::Error),
    #[error("failed to wait for a shutdown signal")]
    Signal(#[source] std::io::Error),
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = ApiServerConfig {
        server_version: args.server_version,
        enforce_cel: args.enforce_cel,
        port: args.port,
        ..ApiServerConfig::default()
    };
    let server = ApiServer::start(config).await?;
    if let Some(path) = &args.kubeconfig_out {
        server.write_kubeconfig(path).map_err(Error::Kubeconfig)?;
    }
    println!("{}", server.url());
    interrupted().await.map_err(Error::Signal)?;
    server.shutdown().await?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn interrupted() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        interrupt = tokio::signal::ctrl_c() => interrupt,
        _ = terminate.recv() => Ok(()),
    }
}
