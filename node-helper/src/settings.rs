//! The helper's settings: flags, each also an environment variable `KUBELIFT_*`. Every seam to
//! the outside (host root, CRI socket, kubelet path, health URL, restart command, artifact CA) is
//! one of these, so tests point the same code at temporary directories and stand-in processes.

use std::path::PathBuf;
use std::time::Duration;

use crate::context::NodeContext;
use crate::host::HostPaths;
use crate::steps::restart;

/// Errors of turning settings into a context.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The CA bundle could not be read or parsed.
    #[error("failed to load the CA bundle {path}")]
    CaBundle {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The HTTP client could not be built.
    #[error("failed to build the HTTP client")]
    Http(#[source] reqwest::Error),
}

/// Node-local settings shared by `agent` and `execute`.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeSettings {
    /// This node's name.
    #[arg(long, env = "KUBELIFT_NODE_NAME")]
    pub node_name: String,
    /// Prefix under which the host's root filesystem is mounted.
    #[arg(long, env = "KUBELIFT_HOST_ROOT", default_value = "/host")]
    pub host_root: PathBuf,
    /// The container runtime's CRI socket (as the host sees it).
    #[arg(
        long,
        env = "KUBELIFT_CRI_SOCKET",
        default_value = "/run/containerd/containerd.sock"
    )]
    pub cri_socket: PathBuf,
    /// The kubelet binary (as the host sees it).
    #[arg(
        long,
        env = "KUBELIFT_KUBELET_PATH",
        default_value = "/usr/bin/kubelet"
    )]
    pub kubelet_path: PathBuf,
    /// The kubelet's health endpoint.
    #[arg(
        long,
        env = "KUBELIFT_KUBELET_HEALTH_URL",
        default_value = "http://127.0.0.1:10248/healthz"
    )]
    pub kubelet_health_url: String,
    /// Command that restarts the kubelet service (split on white space; no shell).
    #[arg(long, env = "KUBELIFT_RESTART_COMMAND", default_value = restart::DEFAULT_RESTART_COMMAND)]
    pub restart_command: String,
    /// kubelift's state directory on the host (journal).
    #[arg(long, env = "KUBELIFT_STATE_DIR", default_value = "/var/lib/kubelift")]
    pub state_dir: PathBuf,
    /// The snapshot file on the host.
    #[arg(
        long,
        env = "KUBELIFT_SNAPSHOT_PATH",
        default_value = "/var/lib/kubelift/snapshot.json"
    )]
    pub snapshot_path: PathBuf,
    /// How many kubelet backups to keep next to the kubelet.
    #[arg(long, env = "KUBELIFT_BACKUPS_TO_KEEP", default_value_t = 2)]
    pub backups_to_keep: usize,
    /// Extra CA certificates (PEM) trusted for artifact downloads, besides the system roots.
    #[arg(long, env = "KUBELIFT_CA_BUNDLE")]
    pub ca_bundle: Option<PathBuf>,
    /// Download attempts before staging fails.
    #[arg(long, env = "KUBELIFT_DOWNLOAD_ATTEMPTS", default_value_t = 5)]
    pub download_attempts: usize,
    /// Milliseconds between checks while waiting for the kubelet or for containers to settle.
    #[arg(long, env = "KUBELIFT_POLL_INTERVAL_MS", default_value_t = 1000)]
    pub poll_interval_ms: u64,
}

impl NodeSettings {
    /// The node's file layout under the host root.
    #[must_use]
    pub fn paths(&self) -> HostPaths {
        HostPaths::new(
            &self.host_root,
            &self.kubelet_path,
            &self.state_dir,
            &self.snapshot_path,
            &self.cri_socket,
        )
    }

    /// The context the steps run in.
    pub fn context(&self) -> Result<NodeContext, SettingsError> {
        Ok(NodeContext {
            node_name: self.node_name.clone(),
            paths: self.paths(),
            http: self.http_client()?,
            health_url: self.kubelet_health_url.clone(),
            restart_command: restart::parse_command(&self.restart_command),
            backups_to_keep: self.backups_to_keep,
            download_attempts: self.download_attempts.max(1),
            poll_interval: Duration::from_millis(self.poll_interval_ms.max(10)),
        })
    }

    /// An HTTP client on rustls with ring, trusting the system roots and the CA bundle.
    fn http_client(&self) -> Result<reqwest::Client, SettingsError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(10));
        if let Some(path) = &self.ca_bundle {
            let ca = |source: Box<dyn std::error::Error + Send + Sync>| SettingsError::CaBundle {
                path: path.clone(),
                source,
            };
            let pem = std::fs::read(path).map_err(|e| ca(e.into()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca(e.into()))?;
            builder = builder.tls_certs_merge(certs);
        }
        builder.build().map_err(SettingsError::Http)
    }
}
