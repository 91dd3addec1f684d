//! The CRI `RuntimeService` and `ImageService` of the simulated runtime, over its in-memory
//! state. Calls a kubelet or the node helper needs are served; streaming, exec and stats calls
//! answer `Unimplemented`, as a runtime without that feature would.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_server::ImageService;
use k8s_cri::v1::runtime_service_server::RuntimeService;
use tonic::{Request, Response, Status};

use super::state::Runtime;

/// The name this runtime reports from `Version`.
pub const RUNTIME_NAME: &str = "kubelift-cri-sim";

type Reply<T> = Result<Response<T>, Status>;

/// Both CRI services over one shared runtime state.
#[derive(Debug, Clone, Default)]
pub(crate) struct SimService {
    runtime: Arc<Mutex<Runtime>>,
}

impl SimService {
    fn runtime(&self) -> MutexGuard<'_, Runtime> {
        self.runtime.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn unsimulated(call: &str) -> Status {
    Status::unimplemented(format!("{call} is not simulated"))
}

#[tonic::async_trait]
impl RuntimeService for SimService {
    type GetContainerEventsStream = Pin<
        Box<dyn tokio_stream::Stream<Item = Result<cri::ContainerEventResponse, Status>> + Send>,
    >;

    async fn version(&self, _request: Request<cri::VersionRequest>) -> Reply<cri::VersionResponse> {
        Ok(Response::new(cri::VersionResponse {
            version: "0.1.0".to_owned(),
            runtime_name: RUNTIME_NAME.to_owned(),
            runtime_version: env!("CARGO_PKG_VERSION").to_owned(),
            runtime_api_version: "v1".to_owned(),
        }))
    }

    async fn run_pod_sandbox(
        &self,
        request: Request<cri::RunPodSandboxRequest>,
    ) -> Reply<cri::RunPodSandboxResponse> {
        let config = request.into_inner().config.unwrap_or_default();
        let pod_sandbox_id = self.runtime().run_sandbox(config)?;
        Ok(Response::new(cri::RunPodSandboxResponse { pod_sandbox_id }))
    }

    async fn stop_pod_sandbox(
        &self,
        request: Request<cri::StopPodSandboxRequest>,
    ) -> Reply<cri::StopPodSandboxResponse> {
        self.runtime()
            .stop_sandbox(&request.into_inner().pod_sandbox_id);
        Ok(Response::new(cri::StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(
        &self,
        request: Request<cri::RemovePodSandboxRequest>,
    ) -> Reply<cri::RemovePodSandboxResponse> {
        self.runtime()
            .remove_sandbox(&request.into_inner().pod_sandbox_id);
        Ok(Response::new(cri::RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(
        &self,
        request: Request<cri::PodSandboxStatusRequest>,
    ) -> Reply<cri::PodSandboxStatusResponse> {
        let id = request.into_inner().pod_sandbox_id;
        let runtime = self.runtime();
        let status = runtime.sandbox_status(&id)?;
        Ok(Response::new(cri::PodSandboxStatusResponse {
            status: Some(status),
            containers_statuses: runtime.statuses_in(&id),
            ..Default::default()
        }))
    }

    async fn list_pod_sandbox(
        &self,
        request: Request<cri::ListPodSandboxRequest>,
    ) -> Reply<cri::ListPodSandboxResponse> {
        let filter = request.into_inner().filter;
        let items = self.runtime().list_sandboxes(filter.as_ref());
        Ok(Response::new(cri::ListPodSandboxResponse { items }))
    }

    async fn create_container(
        &self,
        request: Request<cri::CreateContainerRequest>,
    ) -> Reply<cri::CreateContainerResponse> {
        let request = request.into_inner();
        let config = request.config.unwrap_or_default();
        let container_id = self
            .runtime()
            .create_container(&request.pod_sandbox_id, config)?;
        Ok(Response::new(cri::CreateContainerResponse { container_id }))
    }

    async fn start_container(
        &self,
        request: Request<cri::StartContainerRequest>,
    ) -> Reply<cri::StartContainerResponse> {
        self.runtime()
            .start_container(&request.into_inner().container_id)?;
        Ok(Response::new(cri::StartContainerResponse {}))
    }

    async fn stop_container(
        &self,
        request: Request<cri::StopContainerRequest>,
    ) -> Reply<cri::StopContainerResponse> {
        self.runtime()
            .stop_container(&request.into_inner().container_id)?;
        Ok(Response::new(cri::StopContainerResponse {}))
    }

    async fn remove_container(
        &self,
        request: Request<cri::RemoveContainerRequest>,
    ) -> Reply<cri::RemoveContainerResponse> {
        self.runtime()
            .remove_container(&request.into_inner().container_id);
        Ok(Response::new(cri::RemoveContainerResponse {}))
    }

    async fn list_containers(
        &self,
        request: Request<cri::ListContainersRequest>,
    ) -> Reply<cri::ListContainersResponse> {
        let filter = request.into_inner().filter;
        let containers = self.runtime().list_containers(filter.as_ref());
        Ok(Response::new(cri::ListContainersResponse { containers }))
    }

    async fn container_status(
        &self,
        request: Request<cri::ContainerStatusRequest>,
    ) -> Reply<cri::ContainerStatusResponse> {
        let status = self
            .runtime()
            .container_status(&request.into_inner().container_id)?;
        Ok(Response::new(cri::ContainerStatusResponse {
            status: Some(status),
            ..Default::default()
        }))
    }

    async fn status(&self, _request: Request<cri::StatusRequest>) -> Reply<cri::StatusResponse> {
        let ready = |kind: &str| cri::RuntimeCondition {
            r#type: kind.to_owned(),
            status: true,
            ..Default::default()
        };
        let conditions = vec![ready("RuntimeReady"), ready("NetworkReady")];
        Ok(Response::new(cri::StatusResponse {
            status: Some(cri::RuntimeStatus { conditions }),
            ..Default::default()
        }))
    }

    async fn get_container_events(
        &self,
        _request: Request<cri::GetEventsRequest>,
    ) -> Reply<Self::GetContainerEventsStream> {
        Err(Status::unimplemented(
            "get_container_events is not simulated",
        ))
    }

    async fn update_container_resources(
        &self,
        _request: Request<cri::UpdateContainerResourcesRequest>,
    ) -> Reply<cri::UpdateContainerResourcesResponse> {
        Err(unsimulated("update_container_resources"))
    }

    async fn reopen_container_log(
        &self,
        _request: Request<cri::ReopenContainerLogRequest>,
    ) -> Reply<cri::ReopenContainerLogResponse> {
        Err(unsimulated("reopen_container_log"))
    }

    async fn exec_sync(
        &self,
        _request: Request<cri::ExecSyncRequest>,
    ) -> Reply<cri::ExecSyncResponse> {
        Err(unsimulated("exec_sync"))
    }

    async fn exec(&self, _request: Request<cri::ExecRequest>) -> Reply<cri::ExecResponse> {
        Err(unsimulated("exec"))
    }

    async fn attach(&self, _request: Request<cri::AttachRequest>) -> Reply<cri::AttachResponse> {
        Err(unsimulated("attach"))
    }

    async fn port_forward(
        &self,
        _request: Request<cri::PortForwardRequest>,
    ) -> Reply<cri::PortForwardResponse> {
        Err(unsimulated("port_forward"))
    }

    async fn container_stats(
        &self,
        _request: Request<cri::ContainerStatsRequest>,
    ) -> Reply<cri::ContainerStatsResponse> {
        Err(unsimulated("container_stats"))
    }

    async fn list_container_stats(
        &self,
        _request: Request<cri::ListContainerStatsRequest>,
    ) -> Reply<cri::ListContainerStatsResponse> {
        Err(unsimulated("list_container_stats"))
    }

    async fn pod_sandbox_stats(
        &self,
        _request: Request<cri::PodSandboxStatsRequest>,
    ) -> Reply<cri::PodSandboxStatsResponse> {
        Err(unsimulated("pod_sandbox_stats"))
    }

    async fn list_pod_sandbox_stats(
        &self,
        _request: Request<cri::ListPodSandboxStatsRequest>,
    ) -> Reply<cri::ListPodSandboxStatsResponse> {
        Err(unsimulated("list_pod_sandbox_stats"))
    }

    async fn update_runtime_config(
        &self,
        _request: Request<cri::UpdateRuntimeConfigRequest>,
    ) -> Reply<cri::UpdateRuntimeConfigResponse> {
        Err(unsimulated("update_runtime_config"))
    }

    async fn checkpoint_container(
        &self,
        _request: Request<cri::CheckpointContainerRequest>,
    ) -> Reply<cri::CheckpointContainerResponse> {
        Err(unsimulated("checkpoint_container"))
    }

    async fn list_metric_descriptors(
        &self,
        _request: Request<cri::ListMetricDescriptorsRequest>,
    ) -> Reply<cri::ListMetricDescriptorsResponse> {
        Err(unsimulated("list_metric_descriptors"))
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _request: Request<cri::ListPodSandboxMetricsRequest>,
    ) -> Reply<cri::ListPodSandboxMetricsResponse> {
        Err(unsimulated("list_pod_sandbox_metrics"))
    }

    async fn runtime_config(
        &self,
        _request: Request<cri::RuntimeConfigRequest>,
    ) -> Reply<cri::RuntimeConfigResponse> {
        Err(unsimulated("runtime_config"))
    }
}

/// Every image is present: the simulated runtime runs nothing, so any reference will do.
fn present(reference: &str) -> cri::Image {
    cri::Image {
        id: format!("sha256:{}", super::state::random_id()),
        repo_tags: vec![reference.to_owned()],
        size: 1_200_000,
        spec: Some(cri::ImageSpec {
            image: reference.to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl ImageService for SimService {
    async fn list_images(
        &self,
        _request: Request<cri::ListImagesRequest>,
    ) -> Reply<cri::ListImagesResponse> {
        Ok(Response::new(cri::ListImagesResponse {
            images: Vec::new(),
        }))
    }

    async fn image_status(
        &self,
        request: Request<cri::ImageStatusRequest>,
    ) -> Reply<cri::ImageStatusResponse> {
        let reference = request
            .into_inner()
            .image
            .map(|i| i.image)
            .unwrap_or_default();
        let image = Some(present(&reference));
        Ok(Response::new(cri::ImageStatusResponse {
            image,
            ..Default::default()
        }))
    }

    async fn pull_image(
        &self,
        request: Request<cri::PullImageRequest>,
    ) -> Reply<cri::PullImageResponse> {
        let image_ref = request
            .into_inner()
            .image
            .map(|i| i.image)
            .unwrap_or_default();
        Ok(Response::new(cri::PullImageResponse { image_ref }))
    }

    async fn remove_image(
        &self,
        _request: Request<cri::RemoveImageRequest>,
    ) -> Reply<cri::RemoveImageResponse> {
        Ok(Response::new(cri::RemoveImageResponse {}))
    }

    async fn image_fs_info(
        &self,
        _request: Request<cri::ImageFsInfoRequest>,
    ) -> Reply<cri::ImageFsInfoResponse> {
        Ok(Response::new(cri::ImageFsInfoResponse::default()))
    }
}
