//! What the helper needs from the cluster: this node's pods (as the API server serves them, so
//! the hash model sees the exact JSON the kubelet decodes) and the Node's reported kubelet
//! version and readiness. Through the API server in the agent; node-local (pods from a file, the
//! Node not observed) in the offline `execute` command.

use std::path::Path;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::core::GroupVersionKind;

/// Errors of reading from the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// An API call failed.
    #[error("failed to read {what} from the API server")]
    Api {
        /// What was read.
        what: &'static str,
        /// The client error.
        #[source]
        source: Box<kube::Error>,
    },
    /// Watching the Node failed.
    #[error("failed to watch the Node")]
    Watch(#[source] Box<kube::runtime::wait::Error>),
    /// The pods file could not be read.
    #[error("failed to read pods from {path}")]
    File {
        /// The file.
        path: String,
        /// The I/O or parse error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The Node's own report about its kubelet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    /// `status.nodeInfo.kubeletVersion`.
    pub kubelet_version: String,
    /// Whether the `Ready` condition is `True`.
    pub ready: bool,
}

/// Where pods and the Node's state come from.
#[derive(Clone)]
pub enum ClusterView {
    /// The API server.
    Api(kube::Client),
    /// Node-local input only: pods as served by the API server, saved to a file beforehand; the
    /// Node's state is not observed.
    Offline {
        /// The node's pods (each a pod object as JSON).
        pods: Vec<serde_json::Value>,
    },
}

impl std::fmt::Debug for ClusterView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Api(_) => f.write_str("ClusterView::Api"),
            Self::Offline { pods } => write!(f, "ClusterView::Offline({} pods)", pods.len()),
        }
    }
}

impl ClusterView {
    /// An offline view with the pods of a `PodList` (or a JSON array of pods) in `path`.
    pub fn offline_from_file(path: Option<&Path>) -> Result<Self, ClusterError> {
        let Some(path) = path else {
            return Ok(Self::Offline { pods: Vec::new() });
        };
        let file = |source: Box<dyn std::error::Error + Send + Sync>| ClusterError::File {
            path: path.display().to_string(),
            source,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file(e.into()))?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| file(e.into()))?;
        let pods = match value {
            serde_json::Value::Array(pods) => pods,
            mut list => list
                .get_mut("items")
                .map(serde_json::Value::take)
                .map_or_else(Vec::new, |items| match items {
                    serde_json::Value::Array(pods) => pods,
                    _ => Vec::new(),
                }),
        };
        Ok(Self::Offline { pods })
    }

    /// The pods bound to `node`, as JSON objects.
    pub async fn node_pods(&self, node: &str) -> Result<Vec<serde_json::Value>, ClusterError> {
        match self {
            Self::Offline { pods } => Ok(pods.clone()),
            Self::Api(client) => api_pods(client, node).await,
        }
    }

    /// Waits (by watch) up to `limit` until the Node reports kubelet `version` and is Ready;
    /// `Ok(true)` when it does, `Ok(false)` on time-out, always `Ok(true)` when not observed.
    pub async fn await_node_ready(
        &self,
        node: &str,
        version: &str,
        limit: std::time::Duration,
    ) -> Result<bool, ClusterError> {
        let Self::Api(client) = self else {
            return Ok(true);
        };
        let nodes: Api<Node> = Api::all(client.clone());
        let reports = |n: Option<&Node>| {
            n.map(node_state)
                .is_some_and(|s| s.ready && s.kubelet_version == version)
        };
        let ready = kube::runtime::wait::await_condition(nodes, node, reports);
        match tokio::time::timeout(limit, ready).await {
            Ok(Ok(_)) => Ok(true),
            Ok(Err(error)) => Err(ClusterError::Watch(Box::new(error))),
            Err(_) => Ok(false),
        }
    }

    /// The Node's reported kubelet version and readiness; `None` when not observed.
    pub async fn node_state(&self, node: &str) -> Result<Option<NodeState>, ClusterError> {
        let Self::Api(client) = self else {
            return Ok(None);
        };
        let nodes: Api<Node> = Api::all(client.clone());
        let node = nodes.get(node).await.map_err(|e| api("node", e))?;
        Ok(Some(node_state(&node)))
    }
}

fn api(what: &'static str, source: kube::Error) -> ClusterError {
    ClusterError::Api {
        what,
        source: Box::new(source),
    }
}

/// Lists pods untyped, so the JSON reaches the hash model as served.
async fn api_pods(
    client: &kube::Client,
    node: &str,
) -> Result<Vec<serde_json::Value>, ClusterError> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "Pod"));
    let pods: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let params = ListParams::default().fields(&format!("spec.nodeName={node}"));
    let list = pods.list(&params).await.map_err(|e| api("pods", e))?;
    list.items
        .into_iter()
        .map(|pod| serde_json::to_value(pod).map_err(|e| api("pods", kube::Error::SerdeError(e))))
        .collect()
}

/// Reads version and readiness from a Node object.
#[must_use]
pub fn node_state(node: &Node) -> NodeState {
    let status = node.status.as_ref();
    let kubelet_version = status
        .and_then(|s| s.node_info.as_ref())
        .map(|info| info.kubelet_version.clone())
        .unwrap_or_default();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    NodeState {
        kubelet_version,
        ready,
    }
}
