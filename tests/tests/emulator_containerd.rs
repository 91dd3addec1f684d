//! The kubelet emulator on a real containerd (one per test, from the containerd harness): the
//! pod's containers really run busybox with the kubelet's labels and hash annotations, and a
//! 1.30 → 1.31 swap recreates them with restart count + 1. Skipped when containerd is not
//! installed, except in CI (`CI=true`), where a missing tool fails the run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod emulator_support;

use std::time::Duration;

use emulator_support::{running_containers, server, wait_for};
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use kubelift_testbed::containerd::{Containerd, WORKLOAD_IMAGE};
use kubelift_testbed::emulator::{self, CriClient, EmulatorConfig, RunningEmulator};
use serde_json::json;

async fn start_kubelet(
    client: &kube::Client,
    socket: &std::path::Path,
    version: &str,
) -> RunningEmulator {
    let mut config = EmulatorConfig::new("node-a", version.parse().unwrap(), socket.to_owned());
    config.sync_interval = Duration::from_millis(300);
    WORKLOAD_IMAGE.clone_into(&mut config.runtime_image);
    emulator::start(config, client.clone()).await.unwrap()
}

fn all_running_with_restarts(pod: &Pod, restarts: i32) -> bool {
    let status = pod.status.as_ref();
    let statuses = status.and_then(|s| s.container_statuses.as_ref());
    statuses.is_some_and(|list| {
        !list.is_empty()
            && list
                .iter()
                .all(|c| c.container_id.is_some() && c.restart_count == restarts)
    })
}

async fn remove_sandboxes(runtime: &CriClient) {
    let mut runtime = runtime.clone();
    let listed = runtime
        .list_pod_sandbox(cri::ListPodSandboxRequest::default())
        .await
        .unwrap();
    for sandbox in listed.into_inner().items {
        let id = sandbox.id;
        runtime
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            })
            .await
            .unwrap();
        runtime
            .remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id })
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minor_swap_recreates_real_containers() {
    if !Containerd::available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "containerd is required in CI"
        );
        eprintln!("skipped: containerd, runc or busybox-static is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let containerd =
        Containerd::start(&dir.path().join("containerd"), &dir.path().join("cri.sock"))
            .await
            .unwrap();
    let runtime = emulator::connect_cri(containerd.socket()).await.unwrap();
    let server = server().await;
    let client = server.client();
    let kubelet = start_kubelet(&client, containerd.socket(), "v1.30.4").await;

    let pod = json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"nodeName": "node-a", "containers": [{"name": "nginx", "image": "nginx:1.27"}]},
    });
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(pod).unwrap(),
    )
    .await
    .unwrap();
    wait_for(&pods, "web", |p: &Pod| all_running_with_restarts(p, 0)).await;
    let before = running_containers(&runtime).await;
    let image = &before["nginx"].image.as_ref().unwrap().image;
    assert!(image.contains("busybox"), "busybox runs, not {image}");
    assert!(!before["nginx"].annotations["io.kubernetes.container.hash"].is_empty());

    kubelet.stop();
    let kubelet = start_kubelet(&client, containerd.socket(), "v1.31.2").await;
    wait_for(&pods, "web", |p: &Pod| all_running_with_restarts(p, 1)).await;
    let after = running_containers(&runtime).await;
    assert_ne!(after["nginx"].id, before["nginx"].id);
    assert_eq!(
        after["nginx"].annotations["io.kubernetes.container.restartCount"],
        "1"
    );

    kubelet.stop();
    remove_sandboxes(&runtime).await;
    containerd.shutdown().await;
}
