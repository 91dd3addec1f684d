//! The emulator's CRI calls, each one small function over a connected `RuntimeService` client
//! (the same protocol for a real containerd and the simulated runtime).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as api;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint};

/// A CRI runtime client over a unix socket.
pub type CriClient = RuntimeServiceClient<Channel>;

/// Failures of CRI calls.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    /// The socket could not be reached.
    #[error("failed to connect to the CRI socket {path}")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: tonic::transport::Error,
    },
    /// A call failed.
    #[error("failed to call CRI {call}")]
    Call {
        /// The CRI method.
        call: &'static str,
        /// The status returned.
        #[source]
        source: tonic::Status,
    },
}

fn call_failed(call: &'static str) -> impl FnOnce(tonic::Status) -> CriError {
    move |source| CriError::Call { call, source }
}

/// Connects to the CRI runtime listening on `socket`.
pub async fn connect(socket: &Path) -> Result<CriClient, CriError> {
    let path = socket.to_owned();
    let failed = |source| CriError::Connect {
        path: socket.to_owned(),
        source,
    };
    let endpoint = Endpoint::from_static("http://[::]:50051");
    let channel = endpoint
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await
        .map_err(failed)?;
    Ok(RuntimeServiceClient::new(channel))
}

/// Connects, retrying while the runtime is still starting (up to `patience`).
pub(crate) async fn connect_with_retry(
    socket: &Path,
    patience: Duration,
) -> Result<CriClient, CriError> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match connect(socket).await {
            Ok(client) => return Ok(client),
            Err(error) if tokio::time::Instant::now() >= deadline => return Err(error),
            Err(error) => tracing::debug!(%error, "CRI runtime not reachable yet"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `<runtime name>://<runtime version>`, as `nodeInfo.containerRuntimeVersion` spells it.
pub(crate) async fn runtime_version(client: &CriClient) -> Result<String, CriError> {
    let request = api::VersionRequest {
        version: "v1".to_owned(),
    };
    let version = client
        .clone()
        .version(request)
        .await
        .map_err(call_failed("Version"))?;
    let version = version.into_inner();
    Ok(format!(
        "{}://{}",
        version.runtime_name, version.runtime_version
    ))
}

/// Every container with the kubelet's pod UID label.
pub(crate) async fn list_containers(client: &CriClient) -> Result<Vec<api::Container>, CriError> {
    let request = api::ListContainersRequest { filter: None };
    let reply = client
        .clone()
        .list_containers(request)
        .await
        .map_err(call_failed("ListContainers"))?;
    let containers = reply.into_inner().containers;
    Ok(containers
        .into_iter()
        .filter(|c| c.labels.contains_key(super::keys::POD_UID))
        .collect())
}

/// Every sandbox with the kubelet's pod UID label.
pub(crate) async fn list_sandboxes(client: &CriClient) -> Result<Vec<api::PodSandbox>, CriError> {
    let request = api::ListPodSandboxRequest { filter: None };
    let reply = client
        .clone()
        .list_pod_sandbox(request)
        .await
        .map_err(call_failed("ListPodSandbox"))?;
    let items = reply.into_inner().items;
    Ok(items
        .into_iter()
        .filter(|s| s.labels.contains_key(super::keys::POD_UID))
        .collect())
}

/// Host network, empty hostname: the settings under which runc runs pods on these machines.
fn host_namespaces() -> api::NamespaceOption {
    api::NamespaceOption {
        network: api::NamespaceMode::Node.into(),
        pid: api::NamespaceMode::Container.into(),
        ipc: api::NamespaceMode::Pod.into(),
        ..Default::default()
    }
}

/// The sandbox config of a pod (kubelet labels; host network).
pub(crate) fn sandbox_config(pod: &super::pods::PodRef, attempt: u32) -> api::PodSandboxConfig {
    let security = api::LinuxSandboxSecurityContext {
        namespace_options: Some(host_namespaces()),
        ..Default::default()
    };
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: pod.name.clone(),
            uid: pod.uid.clone(),
            namespace: pod.namespace.clone(),
            attempt,
        }),
        labels: pod.labels(),
        linux: Some(api::LinuxPodSandboxConfig {
            security_context: Some(security),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Runs a sandbox and returns its ID.
pub(crate) async fn run_sandbox(
    client: &CriClient,
    config: api::PodSandboxConfig,
) -> Result<String, CriError> {
    let request = api::RunPodSandboxRequest {
        config: Some(config),
        runtime_handler: String::new(),
    };
    let reply = client
        .clone()
        .run_pod_sandbox(request)
        .await
        .map_err(call_failed("RunPodSandbox"))?;
    Ok(reply.into_inner().pod_sandbox_id)
}

/// Stops and removes a sandbox and everything in it.
pub(crate) async fn remove_sandbox(client: &CriClient, id: &str) -> Result<(), CriError> {
    let stop = api::StopPodSandboxRequest {
        pod_sandbox_id: id.to_owned(),
    };
    client
        .clone()
        .stop_pod_sandbox(stop)
        .await
        .map_err(call_failed("StopPodSandbox"))?;
    let remove = api::RemovePodSandboxRequest {
        pod_sandbox_id: id.to_owned(),
    };
    client
        .clone()
        .remove_pod_sandbox(remove)
        .await
        .map_err(call_failed("RemovePodSandbox"))?;
    Ok(())
}

/// What the emulator asks the runtime to run for one container of a pod.
#[derive(Debug, Clone)]
pub(crate) struct NewContainer {
    /// Container name in the pod spec.
    pub name: String,
    /// The image the runtime really runs.
    pub runtime_image: String,
    /// Kubelet labels.
    pub labels: HashMap<String, String>,
    /// Kubelet annotations (hash, restart count, …).
    pub annotations: HashMap<String, String>,
    /// Attempt number (the restart count).
    pub attempt: u32,
}

/// A shell that sleeps until it is told to stop: busybox's `sh` traps TERM and exits cleanly.
fn sleep_entrypoint() -> Vec<String> {
    let script = "trap 'exit 0' TERM; while true; do sleep 1; done";
    vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned()]
}

/// Creates and starts a container in a sandbox; returns its ID.
pub(crate) async fn create_and_start(
    client: &CriClient,
    sandbox_id: &str,
    sandbox: &api::PodSandboxConfig,
    container: NewContainer,
) -> Result<String, CriError> {
    let security = api::LinuxContainerSecurityContext {
        namespace_options: Some(host_namespaces()),
        ..Default::default()
    };
    let config = api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: container.name,
            attempt: container.attempt,
        }),
        image: Some(api::ImageSpec {
            image: container.runtime_image,
            ..Default::default()
        }),
        command: sleep_entrypoint(),
        labels: container.labels,
        annotations: container.annotations,
        linux: Some(api::LinuxContainerConfig {
            security_context: Some(security),
            ..Default::default()
        }),
        ..Default::default()
    };
    let create = api::CreateContainerRequest {
        pod_sandbox_id: sandbox_id.to_owned(),
        config: Some(config),
        sandbox_config: Some(sandbox.clone()),
    };
    let reply = client
        .clone()
        .create_container(create)
        .await
        .map_err(call_failed("CreateContainer"))?;
    let id = reply.into_inner().container_id;
    let start = api::StartContainerRequest {
        container_id: id.clone(),
    };
    client
        .clone()
        .start_container(start)
        .await
        .map_err(call_failed("StartContainer"))?;
    Ok(id)
}

/// Stops (with a grace period in seconds) and removes a container.
pub(crate) async fn kill(client: &CriClient, id: &str, grace_seconds: i64) -> Result<(), CriError> {
    let stop = api::StopContainerRequest {
        container_id: id.to_owned(),
        timeout: grace_seconds,
    };
    client
        .clone()
        .stop_container(stop)
        .await
        .map_err(call_failed("StopContainer"))?;
    let remove = api::RemoveContainerRequest {
        container_id: id.to_owned(),
    };
    client
        .clone()
        .remove_container(remove)
        .await
        .map_err(call_failed("RemoveContainer"))?;
    Ok(())
}
