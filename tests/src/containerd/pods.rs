//! Pod sandboxes and containers created the way the kubelet creates them: host network, empty
//! hostname, the kubelet's pod labels, and the hash and restart-count annotations.

use std::collections::HashMap;

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, CreateContainerRequest, ImageSpec, LinuxContainerConfig,
    LinuxContainerSecurityContext, LinuxPodSandboxConfig, LinuxSandboxSecurityContext,
    NamespaceMode, NamespaceOption, PodSandboxConfig, PodSandboxMetadata, RemoveContainerRequest,
    RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest, StopContainerRequest,
    StopPodSandboxRequest,
};
use kubelift_node_helper::cri::{
    CONTAINER_NAME_LABEL, HASH_ANNOTATION, POD_NAME_LABEL, POD_NAMESPACE_LABEL, POD_UID_LABEL,
    RESTART_COUNT_ANNOTATION,
};
use tonic::transport::Channel;

use super::{Containerd, HarnessError, WORKLOAD_IMAGE};

/// One container of a test pod.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// Name in the pod spec.
    pub name: String,
    /// Image as written in the pod spec (what the hash covers).
    pub image: String,
    /// The hash annotation to store.
    pub hash: String,
    /// The restart count annotation to store.
    pub restart_count: u32,
}

/// A test pod.
#[derive(Debug, Clone)]
pub struct PodSpec {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
    /// Containers.
    pub containers: Vec<ContainerSpec>,
}

impl ContainerSpec {
    /// The container as the API server would serve it inside the pod spec.
    #[must_use]
    pub fn api_json(&self) -> serde_json::Value {
        serde_json::json!({ "name": self.name, "image": self.image })
    }
}

impl PodSpec {
    /// The pod as the API server would serve it, bound to `node`.
    #[must_use]
    pub fn api_json(&self, node: &str) -> serde_json::Value {
        let containers: Vec<serde_json::Value> = self
            .containers
            .iter()
            .map(ContainerSpec::api_json)
            .collect();
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": { "name": self.name, "namespace": self.namespace, "uid": self.uid },
            "spec": { "nodeName": node, "containers": containers },
        })
    }
}

/// A container running in a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningContainer {
    /// Name in the pod spec.
    pub name: String,
    /// Runtime container ID.
    pub id: String,
    /// Restart count stored on it.
    pub restart_count: u32,
}

/// A pod running in containerd.
#[derive(Debug, Clone)]
pub struct RunningPod {
    /// The pod.
    pub spec: PodSpec,
    /// The sandbox ID.
    pub sandbox_id: String,
    /// Its containers, in spec order.
    pub containers: Vec<RunningContainer>,
}

impl RunningPod {
    /// The running container named `name`.
    #[must_use]
    pub fn container(&self, name: &str) -> Option<&RunningContainer> {
        self.containers.iter().find(|c| c.name == name)
    }
}

fn cri(call: &'static str) -> impl Fn(tonic::Status) -> HarnessError {
    move |source| HarnessError::Cri {
        call,
        source: Box::new(source),
    }
}

fn host_network() -> NamespaceOption {
    NamespaceOption {
        network: NamespaceMode::Node.into(),
        pid: NamespaceMode::Container.into(),
        ipc: NamespaceMode::Pod.into(),
        ..NamespaceOption::default()
    }
}

fn sandbox_config(pod: &PodSpec, log_dir: &str) -> PodSandboxConfig {
    let labels = HashMap::from([
        (POD_NAME_LABEL.to_owned(), pod.name.clone()),
        (POD_NAMESPACE_LABEL.to_owned(), pod.namespace.clone()),
        (POD_UID_LABEL.to_owned(), pod.uid.clone()),
    ]);
    let security = LinuxSandboxSecurityContext {
        namespace_options: Some(host_network()),
        ..LinuxSandboxSecurityContext::default()
    };
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: pod.name.clone(),
            uid: pod.uid.clone(),
            namespace: pod.namespace.clone(),
            attempt: 0,
        }),
        hostname: String::new(),
        log_directory: log_dir.to_owned(),
        labels,
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(security),
            ..LinuxPodSandboxConfig::default()
        }),
        ..PodSandboxConfig::default()
    }
}

fn container_config(
    pod: &PodSpec,
    container: &ContainerSpec,
    restart_count: u32,
) -> ContainerConfig {
    let labels = HashMap::from([
        (POD_NAME_LABEL.to_owned(), pod.name.clone()),
        (POD_NAMESPACE_LABEL.to_owned(), pod.namespace.clone()),
        (POD_UID_LABEL.to_owned(), pod.uid.clone()),
        (CONTAINER_NAME_LABEL.to_owned(), container.name.clone()),
    ]);
    let annotations = HashMap::from([
        (HASH_ANNOTATION.to_owned(), container.hash.clone()),
        (
            RESTART_COUNT_ANNOTATION.to_owned(),
            restart_count.to_string(),
        ),
    ]);
    let security = LinuxContainerSecurityContext {
        namespace_options: Some(host_network()),
        ..LinuxContainerSecurityContext::default()
    };
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: container.name.clone(),
            attempt: restart_count,
        }),
        image: Some(ImageSpec {
            image: WORKLOAD_IMAGE.to_owned(),
            ..ImageSpec::default()
        }),
        labels,
        annotations,
        log_path: format!("{}-{restart_count}.log", container.name),
        linux: Some(LinuxContainerConfig {
            security_context: Some(security),
            ..LinuxContainerConfig::default()
        }),
        ..ContainerConfig::default()
    }
}

impl Containerd {
    /// Runs a sandbox and starts each of the pod's containers in it.
    pub async fn run_pod(&mut self, pod: &PodSpec) -> Result<RunningPod, HarnessError> {
        let log_dir = self.dir.join("logs").join(&pod.uid);
        std::fs::create_dir_all(&log_dir).map_err(|source| HarnessError::Io {
            what: "create pod log dir",
            source,
        })?;
        let config = sandbox_config(pod, &log_dir.to_string_lossy());
        let request = RunPodSandboxRequest {
            config: Some(config.clone()),
            ..Default::default()
        };
        // Boxed: tonic's request futures are large, and this one is awaited inside every test.
        let sandbox_id = Box::pin(self.client.run_pod_sandbox(request))
            .await
            .map_err(cri("RunPodSandbox"))?
            .into_inner()
            .pod_sandbox_id;
        self.sandboxes.push(sandbox_id.clone());
        let mut containers = Vec::new();
        for container in &pod.containers {
            let start = self.start_container(
                &sandbox_id,
                &config,
                pod,
                container,
                container.restart_count,
            );
            let id = Box::pin(start).await?;
            let restart_count = container.restart_count;
            containers.push(RunningContainer {
                name: container.name.clone(),
                id,
                restart_count,
            });
        }
        Ok(RunningPod {
            spec: pod.clone(),
            sandbox_id,
            containers,
        })
    }

    /// Replaces a running container with a new one (new ID, restart count + 1), as the kubelet
    /// does when it restarts a container.
    pub async fn recreate_container(
        &mut self,
        pod: &RunningPod,
        name: &str,
    ) -> Result<RunningContainer, HarnessError> {
        let spec = pod.spec.containers.iter().find(|c| c.name == name);
        let (Some(spec), Some(old)) = (spec, pod.container(name)) else {
            return Err(HarnessError::Start(format!(
                "no container {name} in the pod"
            )));
        };
        let stop = StopContainerRequest {
            container_id: old.id.clone(),
            timeout: 5,
        };
        Box::pin(self.client.stop_container(stop))
            .await
            .map_err(cri("StopContainer"))?;
        let remove = RemoveContainerRequest {
            container_id: old.id.clone(),
        };
        Box::pin(self.client.remove_container(remove))
            .await
            .map_err(cri("RemoveContainer"))?;
        let log_dir = self.dir.join("logs").join(&pod.spec.uid);
        let config = sandbox_config(&pod.spec, &log_dir.to_string_lossy());
        let restart_count = old.restart_count + 1;
        let start = self.start_container(&pod.sandbox_id, &config, &pod.spec, spec, restart_count);
        let id = Box::pin(start).await?;
        Ok(RunningContainer {
            name: name.to_owned(),
            id,
            restart_count,
        })
    }

    async fn start_container(
        &mut self,
        sandbox_id: &str,
        sandbox: &PodSandboxConfig,
        pod: &PodSpec,
        container: &ContainerSpec,
        restart_count: u32,
    ) -> Result<String, HarnessError> {
        let request = CreateContainerRequest {
            pod_sandbox_id: sandbox_id.to_owned(),
            config: Some(container_config(pod, container, restart_count)),
            sandbox_config: Some(sandbox.clone()),
        };
        let id = self
            .client
            .create_container(request)
            .await
            .map_err(cri("CreateContainer"))?
            .into_inner()
            .container_id;
        let start = StartContainerRequest {
            container_id: id.clone(),
        };
        self.client
            .start_container(start)
            .await
            .map_err(cri("StartContainer"))?;
        Ok(id)
    }
}

/// Stops and removes a sandbox with its containers.
pub(super) async fn remove_sandbox(
    client: &mut RuntimeServiceClient<Channel>,
    id: &str,
) -> Result<(), HarnessError> {
    let stop = StopPodSandboxRequest {
        pod_sandbox_id: id.to_owned(),
    };
    client
        .stop_pod_sandbox(stop)
        .await
        .map_err(cri("StopPodSandbox"))?;
    let remove = RemovePodSandboxRequest {
        pod_sandbox_id: id.to_owned(),
    };
    client
        .remove_pod_sandbox(remove)
        .await
        .map_err(cri("RemovePodSandbox"))?;
    Ok(())
}
