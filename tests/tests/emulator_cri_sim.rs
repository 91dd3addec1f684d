//! The simulated CRI runtime through the real CRI protocol over its unix socket: sandboxes and
//! containers keep their labels and annotations, move through their states, and are filtered as
//! a runtime filters them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::collections::HashMap;

use k8s_cri::v1 as cri;
use kubelift_testbed::cri_sim::{CriSimServer, RUNTIME_NAME};
use kubelift_testbed::emulator::{CriClient, connect_cri};

fn sandbox_config(name: &str, uid: &str) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.to_owned(),
            uid: uid.to_owned(),
            namespace: "default".to_owned(),
            attempt: 0,
        }),
        labels: HashMap::from([("io.kubernetes.pod.uid".to_owned(), uid.to_owned())]),
        ..Default::default()
    }
}

fn container_config(name: &str, uid: &str, hash: &str) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.to_owned(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: "busybox".to_owned(),
            ..Default::default()
        }),
        labels: HashMap::from([
            ("io.kubernetes.pod.uid".to_owned(), uid.to_owned()),
            ("io.kubernetes.container.name".to_owned(), name.to_owned()),
        ]),
        annotations: HashMap::from([("io.kubernetes.container.hash".to_owned(), hash.to_owned())]),
        ..Default::default()
    }
}

async fn run_container(client: &mut CriClient, uid: &str, name: &str) -> (String, String) {
    let config = sandbox_config("pod", uid);
    let request = cri::RunPodSandboxRequest {
        config: Some(config.clone()),
        ..Default::default()
    };
    let sandbox = client
        .run_pod_sandbox(request)
        .await
        .unwrap()
        .into_inner()
        .pod_sandbox_id;
    let create = cri::CreateContainerRequest {
        pod_sandbox_id: sandbox.clone(),
        config: Some(container_config(name, uid, "8e45cbd0")),
        sandbox_config: Some(config),
    };
    let id = client
        .create_container(create)
        .await
        .unwrap()
        .into_inner()
        .container_id;
    let start = cri::StartContainerRequest {
        container_id: id.clone(),
    };
    client.start_container(start).await.unwrap();
    (sandbox, id)
}

async fn list(client: &CriClient, filter: cri::ContainerFilter) -> Vec<String> {
    let request = cri::ListContainersRequest {
        filter: Some(filter),
    };
    let found = client
        .clone()
        .list_containers(request)
        .await
        .unwrap()
        .into_inner()
        .containers;
    found.into_iter().map(|c| c.id).collect()
}

#[tokio::test]
async fn containers_keep_labels_annotations_and_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let server = CriSimServer::start(&dir.path().join("cri.sock")).unwrap();
    let mut client = connect_cri(server.socket()).await.unwrap();
    let version = client
        .version(cri::VersionRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(version.runtime_name, RUNTIME_NAME);

    let (_, id) = Box::pin(run_container(&mut client, "uid-1", "web")).await;
    let request = cri::ContainerStatusRequest {
        container_id: id.clone(),
        verbose: false,
    };
    let status = client
        .container_status(request)
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();

    assert_eq!(status.id.len(), 64);
    assert_eq!(status.state(), cri::ContainerState::ContainerRunning);
    assert_eq!(status.labels["io.kubernetes.container.name"], "web");
    assert_eq!(
        status.annotations["io.kubernetes.container.hash"],
        "8e45cbd0"
    );
    assert!(status.created_at > 0 && status.started_at >= status.created_at);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn list_filters_select_by_label_state_and_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let server = CriSimServer::start(&dir.path().join("cri.sock")).unwrap();
    let mut client = connect_cri(server.socket()).await.unwrap();
    let (first_sandbox, first) = Box::pin(run_container(&mut client, "uid-1", "web")).await;
    let (_, second) = Box::pin(run_container(&mut client, "uid-2", "db")).await;
    client
        .stop_container(cri::StopContainerRequest {
            container_id: second.clone(),
            timeout: 0,
        })
        .await
        .unwrap();

    let running = cri::ContainerStateValue {
        state: cri::ContainerState::ContainerRunning.into(),
    };
    let by_label = HashMap::from([("io.kubernetes.pod.uid".to_owned(), "uid-2".to_owned())]);
    assert_eq!(
        list(
            &client,
            cri::ContainerFilter {
                state: Some(running),
                ..Default::default()
            }
        )
        .await,
        std::slice::from_ref(&first)
    );
    assert_eq!(
        list(
            &client,
            cri::ContainerFilter {
                label_selector: by_label,
                ..Default::default()
            }
        )
        .await,
        [second]
    );
    let in_sandbox = cri::ContainerFilter {
        pod_sandbox_id: first_sandbox.clone(),
        ..Default::default()
    };
    assert_eq!(list(&client, in_sandbox).await, [first]);

    client
        .stop_pod_sandbox(cri::StopPodSandboxRequest {
            pod_sandbox_id: first_sandbox.clone(),
        })
        .await
        .unwrap();
    client
        .remove_pod_sandbox(cri::RemovePodSandboxRequest {
            pod_sandbox_id: first_sandbox,
        })
        .await
        .unwrap();
    let sandboxes = client
        .list_pod_sandbox(cri::ListPodSandboxRequest::default())
        .await
        .unwrap();
    assert_eq!(sandboxes.into_inner().items.len(), 1);
    assert_eq!(
        list(&client, cri::ContainerFilter::default()).await.len(),
        1
    );
    server.shutdown().await.unwrap();
}
