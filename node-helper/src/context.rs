//! Everything the node-local steps need to know about this node: where its files are, how to
//! reach the kubelet and the artifact server, and how to restart the kubelet service.

use std::time::Duration;

use crate::host::HostPaths;

/// The node-local settings shared by every step.
#[derive(Debug, Clone)]
pub struct NodeContext {
    /// The node's name.
    pub node_name: String,
    /// The node's files, resolved under the host root.
    pub paths: HostPaths,
    /// HTTP client for artifact downloads and kubelet health probes.
    pub http: reqwest::Client,
    /// The kubelet's health endpoint.
    pub health_url: String,
    /// Program and arguments that restart the kubelet service.
    pub restart_command: Vec<String>,
    /// How many kubelet backups to keep next to the kubelet.
    pub backups_to_keep: usize,
    /// Download attempts before staging fails.
    pub download_attempts: usize,
    /// Interval between checks while waiting for the kubelet or watching containers settle.
    pub poll_interval: Duration,
}

#[cfg(test)]
pub(crate) mod testing {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

    use std::path::Path;
    use std::time::Duration;

    use super::NodeContext;
    use crate::host::HostPaths;

    /// A context for a temporary host root with a kubelet at `usr/bin/kubelet`.
    pub(crate) fn context(root: &Path) -> NodeContext {
        let _ = rustls::crypto::ring::default_provider().install_default();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        NodeContext {
            node_name: "node-a".into(),
            paths: HostPaths::new(
                root,
                Path::new("/usr/bin/kubelet"),
                Path::new("/var/lib/kubelift"),
                Path::new("/var/lib/kubelift/snapshot.json"),
                Path::new("/run/containerd/containerd.sock"),
            ),
            http: reqwest::Client::builder().build().unwrap(),
            health_url: "http://127.0.0.1:9/healthz".into(),
            restart_command: vec!["true".into()],
            backups_to_keep: 2,
            download_attempts: 1,
            poll_interval: Duration::from_millis(10),
        }
    }
}
