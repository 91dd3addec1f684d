//! Reads the node's containers from the container runtime over CRI (a unix socket), with the
//! labels and annotations the kubelet put on them: pod identity, container name, the stored
//! container hash and the restart count.
//!
//! Read-only: the helper never creates, stops or changes a container.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    Container, ContainerFilter, ContainerState, ContainerStateValue, ContainerStatusRequest,
    ListContainersRequest,
};
use serde::{Deserialize, Serialize};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// Label with the pod's name.
pub const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
/// Label with the pod's namespace.
pub const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
/// Label with the pod's UID.
pub const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";
/// Label with the container's name in the pod spec.
pub const CONTAINER_NAME_LABEL: &str = "io.kubernetes.container.name";
/// Annotation with the hash the kubelet stored when it created the container.
pub const HASH_ANNOTATION: &str = "io.kubernetes.container.hash";
/// Annotation with the hash without resources (1.27–1.30 with in-place resize on).
pub const HASH_WITHOUT_RESOURCES_ANNOTATION: &str = "io.kubernetes.container.hashWithoutResources";
/// Annotation with the container's restart count.
pub const RESTART_COUNT_ANNOTATION: &str = "io.kubernetes.container.restartCount";

/// Errors of the CRI reader.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    /// The socket could not be reached.
    #[error("failed to connect to the container runtime at {socket}")]
    Connect {
        /// The socket path.
        socket: PathBuf,
        /// The transport error.
        #[source]
        source: tonic::transport::Error,
    },
    /// A CRI call failed.
    #[error("failed to call {call} on the container runtime")]
    Call {
        /// The CRI method.
        call: &'static str,
        /// The gRPC status.
        #[source]
        source: Box<tonic::Status>,
    },
}

/// One running container as the kubelet labelled it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeContainer {
    /// The runtime's container ID.
    pub id: String,
    /// The pod's UID.
    pub pod_uid: String,
    /// The pod's namespace.
    pub pod_namespace: String,
    /// The pod's name.
    pub pod_name: String,
    /// The container's name in the pod spec.
    pub container_name: String,
    /// The stored hash annotation as written (lowercase hex), empty when absent.
    pub hash: String,
    /// The stored hash-without-resources annotation, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_without_resources: Option<String>,
    /// The restart count the kubelet recorded on the container.
    pub restart_count: u32,
    /// When the container started, in nanoseconds since the epoch.
    pub started_at: i64,
}

impl RuntimeContainer {
    /// The container's stable identity across restarts: pod UID and container name.
    #[must_use]
    pub fn key(&self) -> (String, String) {
        (self.pod_uid.clone(), self.container_name.clone())
    }
}

/// A connected CRI runtime client.
#[derive(Debug, Clone)]
pub struct CriClient {
    runtime: RuntimeServiceClient<Channel>,
}

impl CriClient {
    /// Connects to the runtime's CRI socket.
    pub async fn connect(socket: &Path) -> Result<Self, CriError> {
        let path = socket.to_path_buf();
        let connector = tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        });
        let channel = Endpoint::from_static("http://[::1]:0")
            .connect_with_connector(connector)
            .await
            .map_err(|source| CriError::Connect {
                socket: socket.to_path_buf(),
                source,
            })?;
        Ok(Self {
            runtime: RuntimeServiceClient::new(channel),
        })
    }

    /// Every running container that carries the kubelet's pod labels, ordered by pod and name.
    pub async fn running_containers(&mut self) -> Result<Vec<RuntimeContainer>, CriError> {
        let listed = self.list_running().await?;
        let mut containers = Vec::with_capacity(listed.len());
        for container in listed {
            if let Some(read) = self.describe(container).await? {
                containers.push(read);
            }
        }
        containers.sort_by(|a, b| a.key().cmp(&b.key()).then_with(|| a.id.cmp(&b.id)));
        Ok(containers)
    }

    async fn list_running(&mut self) -> Result<Vec<Container>, CriError> {
        let state = ContainerStateValue {
            state: ContainerState::ContainerRunning.into(),
        };
        let filter = ContainerFilter {
            state: Some(state),
            ..ContainerFilter::default()
        };
        let request = ListContainersRequest {
            filter: Some(filter),
        };
        let response = self
            .runtime
            .list_containers(request)
            .await
            .map_err(call("ListContainers"))?;
        Ok(response.into_inner().containers)
    }

    /// Reads one container's status; `None` when it vanished or is not a kubelet container.
    async fn describe(
        &mut self,
        container: Container,
    ) -> Result<Option<RuntimeContainer>, CriError> {
        let request = ContainerStatusRequest {
            container_id: container.id.clone(),
            verbose: false,
        };
        let status = match self.runtime.container_status(request).await {
            Ok(response) => response.into_inner().status,
            Err(status) if status.code() == tonic::Code::NotFound => return Ok(None),
            Err(source) => return Err(call("ContainerStatus")(source)),
        };
        let started_at = status.as_ref().map_or(0, |s| s.started_at);
        Ok(from_labels(
            &container.id,
            &container.labels,
            &container.annotations,
            started_at,
        ))
    }
}

fn call(name: &'static str) -> impl Fn(tonic::Status) -> CriError {
    move |source| CriError::Call {
        call: name,
        source: Box::new(source),
    }
}

/// Builds a container from the kubelet's labels and annotations; `None` without pod labels.
#[must_use]
pub fn from_labels<S: std::hash::BuildHasher>(
    id: &str,
    labels: &std::collections::HashMap<String, String, S>,
    annotations: &std::collections::HashMap<String, String, S>,
    started_at: i64,
) -> Option<RuntimeContainer> {
    let label = |key: &str| labels.get(key).cloned();
    Some(RuntimeContainer {
        id: id.to_owned(),
        pod_uid: label(POD_UID_LABEL)?,
        pod_namespace: label(POD_NAMESPACE_LABEL)?,
        pod_name: label(POD_NAME_LABEL)?,
        container_name: label(CONTAINER_NAME_LABEL)?,
        hash: annotations
            .get(HASH_ANNOTATION)
            .cloned()
            .unwrap_or_default(),
        hash_without_resources: annotations.get(HASH_WITHOUT_RESOURCES_ANNOTATION).cloned(),
        restart_count: annotations
            .get(RESTART_COUNT_ANNOTATION)
            .and_then(|count| count.parse().ok())
            .unwrap_or(0),
        started_at,
    })
}

/// Indexes containers by pod UID and container name.
#[must_use]
pub fn by_key(containers: &[RuntimeContainer]) -> BTreeMap<(String, String), &RuntimeContainer> {
    containers.iter().map(|c| (c.key(), c)).collect()
}
