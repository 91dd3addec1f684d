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
