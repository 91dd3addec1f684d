//! A kubelet emulator: it behaves like a kubelet towards everything kubelift looks at. It
//! registers and heartbeats its Node and Lease, serves `/healthz`, runs the pods bound to its
//! node as containers in the node's CRI runtime with the kubelet's labels and annotations, and on
//! start and every sync applies the kubelet's rule with its own version's hash (`kubelet-hash`):
//! a running container whose stored hash differs is killed and recreated — unless it runs
//! snapshot-aware and the node's snapshot lists the container. It completes graceful deletions.
//!
//! Every Kubernetes and CRI interaction is a small function in its own module; the sync loop in
//! [`sync`] only decides and calls them.

mod cri;
mod health;
mod node;
mod pods;
mod snapshot;
mod sync;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kubelet_hash::KubeletVersion;

pub use cri::{CriClient, CriError, connect as connect_cri};
pub use snapshot::snapshot_container_ids;

/// Kubelet labels and annotations on CRI containers and sandboxes.
pub mod keys {
    /// Pod name label.
    pub const POD_NAME: &str = "io.kubernetes.pod.name";
    /// Pod namespace label.
    pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
    /// Pod UID label.
    pub const POD_UID: &str = "io.kubernetes.pod.uid";
    /// Container name label.
    pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
    /// The container hash annotation.
    pub const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
    /// The restart count annotation.
    pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
    /// Termination message path annotation.
    pub const TERMINATION_MESSAGE_PATH: &str = "io.kubernetes.container.terminationMessagePath";
    /// Termination message policy annotation.
    pub const TERMINATION_MESSAGE_POLICY: &str = "io.kubernetes.container.terminationMessagePolicy";
    /// Pod termination grace period annotation.
    pub const TERMINATION_GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";
}

/// A failure injected on demand, to test what kubelift does with a bad kubelet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// `/healthz` never answers 200 and the Node is never Ready.
    NeverHealthy,
    /// The process exits with an error right after starting.
    CrashOnStart,
    /// The Node reports the previous minor version instead of this kubelet's own.
    WrongVersion,
}

/// Everything one emulated kubelet needs.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The Node's name.
    pub node_name: String,
    /// This kubelet's version: what it prints, reports, and hashes with.
    pub version: KubeletVersion,
    /// The node's CRI socket.
    pub cri_socket: PathBuf,
    /// `/healthz` port on 127.0.0.1 (0 picks a free one).
    pub healthz_port: u16,
    /// Host root prefix (snapshot file at `<root>/var/lib/kubelift/snapshot.json`).
    pub host_root: PathBuf,
    /// `topology.kubernetes.io/zone` label.
    pub zone: Option<String>,
    /// `kubernetes.io/arch` label and `nodeInfo.architecture`.
    pub arch: String,
    /// Skip hash-triggered restarts of containers the snapshot lists.
    pub snapshot_aware: bool,
    /// An injected failure.
    pub fault: Option<Fault>,
    /// Time between pod syncs.
    pub sync_interval: Duration,
    /// Time between Node status and Lease heartbeats.
    pub heartbeat_interval: Duration,
    /// The image every container really runs (the spec's image is only hashed and reported).
    pub runtime_image: String,
    /// How long this kubelet takes to start before it registers its Node and serves `/healthz`:
    /// a real kubelet's restart time, for benchmarks (zero by default).
    pub startup_delay: Duration,
}

impl EmulatorConfig {
    /// Defaults for `node_name` at `version`: 500 ms syncs, 10 s heartbeats, busybox.
    #[must_use]
    pub fn new(node_name: &str, version: KubeletVersion, cri_socket: PathBuf) -> Self {
        EmulatorConfig {
            node_name: node_name.to_owned(),
            version,
            cri_socket,
            healthz_port: 0,
            host_root: PathBuf::from("/"),
            zone: None,
            arch: default_arch().to_owned(),
            snapshot_aware: false,
            fault: None,
            sync_interval: Duration::from_millis(500),
            heartbeat_interval: Duration::from_secs(10),
            runtime_image: DEFAULT_RUNTIME_IMAGE.to_owned(),
            startup_delay: Duration::ZERO,
        }
    }

    /// The version the Node reports: its own, or the previous minor under [`Fault::WrongVersion`].
    #[must_use]
    pub fn reported_version(&self) -> String {
        match self.fault {
            Some(Fault::WrongVersion) => {
                let minor = self.version.minor.saturating_sub(1);
                format!("v{}.{}.{}", self.version.major, minor, self.version.patch)
            }
            _ => self.version.to_string(),
        }
    }

    /// `<host-root>/var/lib/kubelift/snapshot.json`.
    #[must_use]
    pub fn snapshot_path(&self) -> PathBuf {
        self.host_root.join("var/lib/kubelift/snapshot.json")
    }
}

/// The image every container runs unless configured otherwise.
pub const DEFAULT_RUNTIME_IMAGE: &str = "docker.io/library/busybox:latest";

/// The `kubernetes.io/arch` value of this machine.
#[must_use]
pub fn default_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// What the real kubelet prints for `--version`.
#[must_use]
pub fn version_line(version: &KubeletVersion) -> String {
    format!("Kubernetes {version}")
}

/// Failures of the emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The `crash-on-start` fault.
    #[error("failed to start: crash-on-start fault injected")]
    CrashOnStart,
    /// The container runtime could not be reached.
    #[error(transparent)]
    Cri(#[from] CriError),
    /// Registering the Node failed.
    #[error(transparent)]
    Node(#[from] node::NodeError),
    /// The health endpoint could not be served.
    #[error(transparent)]
    Health(#[from] health::HealthError),
}

/// A running emulator's handles, for in-process use by tests and the sandbox.
#[derive(Debug)]
pub struct RunningEmulator {
    /// The bound `/healthz` port.
    pub healthz_port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl RunningEmulator {
    /// Stops every loop of this emulator (containers keep running, as with a real kubelet).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the emulator's loops in the background; returns once the Node is registered (after
/// the configured startup delay).
pub async fn start(
    config: EmulatorConfig,
    client: kube::Client,
) -> Result<RunningEmulator, EmulatorError> {
    if config.fault == Some(Fault::CrashOnStart) {
        return Err(EmulatorError::CrashOnStart);
    }
    tokio::time::sleep(config.startup_delay).await;
    let config = Arc::new(config);
    let runtime = cri::connect_with_retry(&config.cri_socket, Duration::from_secs(60)).await?;
    let runtime_version = cri::runtime_version(&runtime).await?;
    node::register(&client, &config, &runtime_version).await?;
    let healthy = health::Health::new(config.fault != Some(Fault::NeverHealthy));
    let (healthz_port, serve_health) = health::bind(config.healthz_port, healthy.clone()).await?;
    let heartbeat = node::heartbeat_loop(client.clone(), config.clone(), runtime_version);
    let syncing = sync::sync_loop(client, config.clone(), runtime, healthy);
    let task = tokio::spawn(async move {
        tokio::join!(serve_health, heartbeat, syncing);
    });
    let (node, version) = (&config.node_name, &config.version);
    tracing::info!(%node, %version, healthz_port, "kubelet emulator started");
    Ok(RunningEmulator { healthz_port, task })
}

/// Runs the emulator until SIGTERM or SIGINT (the binary's `run`).
pub async fn run(config: EmulatorConfig, client: kube::Client) -> Result<(), EmulatorError> {
    use tokio::signal::unix::{SignalKind, signal};
    let running = start(config, client).await?;
    let mut terminate = signal(SignalKind::terminate()).map_err(health::HealthError::Signal)?;
    tokio::select! {
        _ = terminate.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    running.stop();
    tracing::info!("kubelet emulator stopped");
    Ok(())
}
