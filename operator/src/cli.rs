//! The operator's command line: every setting is a flag with a `KUBELIFT_*` environment
//! variable, and `run` wires them into the client, the leader election, the HTTP endpoints and
//! the reconciler.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::{Parser, ValueEnum};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kube_lease_manager::LeaseManagerBuilder;

use crate::metrics::Metrics;
use crate::{reconciler, server};

/// User-Agent of every request the operator sends.
pub const USER_AGENT: &str = concat!("kubelift-operator/", env!("CARGO_PKG_VERSION"));

/// Rolls a new kubelet out to a fleet of nodes, node by node, without restarting containers.
#[derive(Debug, Parser)]
#[command(name = "kubelift-operator", version, about)]
pub struct Cli {
    /// Kubeconfig file (default: in-cluster, then `$KUBECONFIG`, then `~/.kube/config`).
    #[arg(long, env = "KUBELIFT_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Run only while holding the leader Lease.
    #[arg(long, env = "KUBELIFT_LEADER_ELECT", default_value_t = false)]
    pub leader_elect: bool,
    /// Namespace of the leader Lease.
    #[arg(long, env = "KUBELIFT_NAMESPACE", default_value = "kubelift-system")]
    pub namespace: String,
    /// Name of the leader Lease.
    #[arg(long, env = "KUBELIFT_LEASE_NAME", default_value = "kubelift-operator")]
    pub lease_name: String,
    /// Seconds a leader Lease stays valid without renewal.
    #[arg(long, env = "KUBELIFT_LEASE_DURATION_SECONDS", default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// Identity in the Lease and on Events (default: the host name).
    #[arg(long, env = "KUBELIFT_POD_NAME")]
    pub identity: Option<String>,
    /// The node this operator runs on; it is upgraded last.
    #[arg(long, env = "KUBELIFT_NODE_NAME")]
    pub node_name: Option<String>,
    /// Address for `/healthz`, `/readyz` and `/metrics`.
    #[arg(
        long,
        env = "KUBELIFT_METRICS_ADDRESS",
        default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    )]
    pub metrics_address: IpAddr,
    /// Port for `/healthz`, `/readyz` and `/metrics` (0: any free port, logged).
    #[arg(long, env = "KUBELIFT_METRICS_PORT", default_value_t = 8080)]
    pub metrics_port: u16,
    /// Log format.
    #[arg(long, env = "KUBELIFT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig could not be read or used.
    #[error("failed to load kubeconfig")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    /// No cluster configuration was found.
    #[error("failed to infer cluster configuration")]
    Infer(#[source] kube::config::InferConfigError),
    /// The client could not be built.
    #[error("failed to build kubernetes client")]
    Client(#[source] kube::Error),
    /// The leader Lease could not be managed.
    #[error("failed to manage leader lease")]
    Lease(#[source] kube_lease_manager::LeaseManagerError),
    /// The HTTP endpoints failed.
    #[error("failed to serve http endpoints")]
    Server(#[source] server::Error),
    /// Leadership was lost; the process exits so a fresh start re-syncs.
    #[error("failed to keep leadership")]
    LostLeadership,
}

/// Run the operator until it is shut down or loses leadership.
pub async fn run(cli: Cli) -> Result<(), Error> {
    let client = client(&cli).await?;
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let address = SocketAddr::new(cli.metrics_address, cli.metrics_port);
    let (bound, serve) = server::bind(address, metrics.clone(), ready.clone())
        .await
        .map_err(Error::Server)?;
    tracing::info!(%bound, "serving health and metrics");
    let serving = tokio::spawn(serve);

    let identity = cli.identity.clone().unwrap_or_else(hostname);
    let settings = reconciler::Settings {
        node_name: cli.node_name.clone(),
        instance: identity.clone(),
    };
    let outcome = if cli.leader_elect {
        lead(&cli, client, identity, settings, metrics, ready).await
    } else {
        reconciler::run(client, settings, metrics, ready).await;
        Ok(())
    };
    serving.abort();
    outcome
}

async fn lead(
    cli: &Cli,
    client: Client,
    identity: String,
    settings: reconciler::Settings,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
) -> Result<(), Error> {
    let manager = LeaseManagerBuilder::new(client.clone(), &cli.lease_name)
        .with_namespace(&cli.namespace)
        .with_identity(&identity)
        .with_duration(cli.lease_duration_seconds)
        .with_grace(cli.lease_duration_seconds / 3)
        .with_field_manager("kubelift-operator")
        .build()
        .await
        .map_err(Error::Lease)?;
    let (mut leading, _task) = manager.watch().await;
    tracing::info!(lease = %cli.lease_name, %identity, "waiting for leadership");
    while !*leading.borrow_and_update() {
        leading.changed().await.map_err(|_| Error::LostLeadership)?;
    }

    tracing::info!(%identity, "leading");
    let lost = async move {
        while *leading.borrow_and_update() {
            if leading.changed().await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        () = reconciler::run(client, settings, metrics, ready) => Ok(()),
        () = lost => Err(Error::LostLeadership),
    }
}

async fn client(cli: &Cli) -> Result<Client, Error> {
    let mut config = match &cli.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(Error::Kubeconfig)?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(Error::Kubeconfig)?
        }
        None => Config::infer().await.map_err(Error::Infer)?,
    };
    config.headers.push((
        http_header(http::header::USER_AGENT),
        http::HeaderValue::from_static(USER_AGENT),
    ));
    Client::try_from(config).map_err(Error::Client)
}

fn http_header(name: http::HeaderName) -> http::HeaderName {
    name
}

fn hostname() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "kubelift-operator".to_owned())
}
