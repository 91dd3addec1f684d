//! The kubelet emulator on the simulated CRI runtime against the embedded API server, run by
//! its supervisor from a stand-in kubelet script: it registers its Node and Lease, runs a pod's
//! containers with the kubelet's labels and hash annotations, and applies the kubelet's rule
//! when its version changes — every container recreated across 1.30 → 1.31, none when it is
//! snapshot-aware and the snapshot lists them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod emulator_support;

use std::collections::HashMap;

use emulator_support::{Node, install_executable, running_containers, server, standin_kubelet};
use emulator_support::{vectors, wait_for, wait_healthy};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node as KubeNode, Pod};
use kube::Api;
use kube::api::PostParams;
use kubelet_hash::{HashOptions, KubeletVersion};
use serde_json::json;
use sha2::Digest;

const OLD: &str = "v1.30.4";
const NEW: &str = "v1.31.2";

fn kubelet_version(node: &KubeNode) -> Option<&str> {
    node.status
        .as_ref()?
        .node_info
        .as_ref()
        .map(|info| info.kubelet_version.as_str())
}

fn is_ready(node: &KubeNode) -> bool {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Restart counts by container name once every container of the pod runs.
fn restart_counts(pod: &Pod) -> Option<HashMap<String, i32>> {
    let status = pod.status.as_ref()?;
    let statuses = status.container_statuses.as_ref()?;
    let running = status.phase.as_deref() == Some("Running")
        && statuses.len() == 2
        && statuses.iter().all(|c| c.container_id.is_some());
    running.then(|| {
        statuses
            .iter()
            .map(|c| (c.name.clone(), c.restart_count))
            .collect()
    })
}

/// A pod on `node` with vector 0's container (as its JSON text) and a web server.
async fn create_pod(server: &kubelift_testbed::apiserver::ApiServer, node: &str) -> Pod {
    let vector: serde_json::Value =
        serde_json::from_str(vectors()["vectors"][0]["container_json"].as_str().unwrap()).unwrap();
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "shop", "namespace": "default"},
        "spec": {
            "nodeName": node,
            "containers": [vector, {"name": "web", "image": "nginx:1.27",
                                    "ports": [{"containerPort": 8080}]}],
        },
    });
    let pods: Api<Pod> = Api::default_namespaced(server.client());
    let pod = serde_json::from_value(pod).unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    wait_for(&pods, "shop", |p: &Pod| restart_counts(p).is_some()).await
}

/// Each container's JSON exactly as the API server serves it.
async fn served_containers(
    server: &kubelift_testbed::apiserver::ApiServer,
) -> HashMap<String, String> {
    let request = http::Request::get("/api/v1/namespaces/default/pods/shop")
        .body(Vec::new())
        .unwrap();
    let text = server.client().request_text(request).await.unwrap();
    let containers = kubelet_hash::container_names_and_json(&text).unwrap();
    containers
        .into_iter()
        .map(|(_, name, json)| (name, json))
        .collect()
}

fn hash(json: &str, version: &str) -> String {
    let version: KubeletVersion = version.parse().unwrap();
    kubelet_hash::hash(json, &version, &HashOptions::default()).unwrap()
}

async fn start_node_with_pod(
    server: &kubelift_testbed::apiserver::ApiServer,
) -> (Node, HashMap<String, k8s_cri::v1::Container>) {
    let node = Node::start(server, "node-a", &standin_kubelet(OLD, "")).await;
    let nodes: Api<KubeNode> = Api::all(server.client());
    wait_for(&nodes, "node-a", |n: &KubeNode| {
        kubelet_version(n) == Some(OLD) && is_ready(n)
    })
    .await;
    create_pod(server, "node-a").await;
    let before = running_containers(&node.runtime().await).await;
    assert_eq!(before.len(), 2, "both containers run");
    (node, before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_registers_its_node_and_prints_its_version() {
    let server = server().await;
    let node = Node::start(&server, "node-a", &standin_kubelet(OLD, "")).await;
    let nodes: Api<KubeNode> = Api::all(server.client());

    let registered = wait_for(&nodes, "node-a", |n: &KubeNode| is_ready(n)).await;
    wait_healthy(node.healthz_port).await;

    assert_eq!(kubelet_version(&registered), Some(OLD));
    let labels = registered.metadata.labels.clone().unwrap();
    assert_eq!(labels["kubernetes.io/hostname"], "node-a");
    assert!(labels.contains_key("kubernetes.io/arch"));
    let capacity = registered.status.unwrap().capacity.unwrap();
    assert_eq!(capacity["pods"].0, "110");
    let leases: Api<Lease> = Api::namespaced(server.client(), "kube-node-lease");
    let lease = leases.get("node-a").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("node-a")
    );
    let printed = std::process::Command::new(node.kubelet_path())
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout).trim(),
        format!("Kubernetes {OLD}")
    );
    let status = node.status().await;
    assert!(
        status.pid.is_some(),
        "the supervisor reports the kubelet's PID"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_carry_the_kubelet_labels_and_the_hash_of_the_served_spec() {
    let server = server().await;
    let (node, containers) = start_node_with_pod(&server).await;
    let spec_json = served_containers(&server).await;

    for (name, container) in &containers {
        assert_eq!(container.labels["io.kubernetes.pod.name"], "shop");
        assert_eq!(container.labels["io.kubernetes.pod.namespace"], "default");
        assert!(!container.labels["io.kubernetes.pod.uid"].is_empty());
        assert_eq!(
            container.annotations["io.kubernetes.container.restartCount"],
            "0"
        );
        let stored = &container.annotations["io.kubernetes.container.hash"];
        assert_eq!(stored, &hash(&spec_json[name], OLD), "hash of {name}");
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_1_30_for_1_31_recreates_every_container() {
    let server = server().await;
    let (node, before) = start_node_with_pod(&server).await;

    install_executable(&node.kubelet_path(), &standin_kubelet(NEW, ""));
    let restarted = node.ctl("restart").await;
    assert!(restarted.pid.is_some());
    let pods: Api<Pod> = Api::default_namespaced(server.client());
    let all_restarted = |p: &Pod| restart_counts(p).is_some_and(|c| c.values().all(|n| *n == 1));
    wait_for(&pods, "shop", all_restarted).await;
    let nodes: Api<KubeNode> = Api::all(server.client());
    wait_for(&nodes, "node-a", |n: &KubeNode| {
        kubelet_version(n) == Some(NEW)
    })
    .await;

    let after = running_containers(&node.runtime().await).await;
    let expected_1_31 = vectors()["vectors"][0]["hash"]["1.31+"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        after["test_container"].annotations["io.kubernetes.container.hash"],
        expected_1_31
    );
    for (name, container) in &after {
        assert_ne!(container.id, before[name].id, "{name} was recreated");
        assert_eq!(
            container.annotations["io.kubernetes.container.restartCount"],
            "1"
        );
    }
    node.stop().await;
}

/// The node helper's snapshot format: a checksummed envelope listing the containers.
fn write_snapshot(root: &std::path::Path, containers: &HashMap<String, k8s_cri::v1::Container>) {
    let listed: Vec<_> = containers.values().map(|c| json!({"id": c.id})).collect();
    let body = json!({"node": "node-a", "containers": listed}).to_string();
    let digest = hex::encode(sha2::Sha256::digest(body.as_bytes()));
    let text = format!(r#"{{"formatVersion":1,"sha256":"{digest}","body":{body}}}"#);
    let path = root.join("var/lib/kubelift/snapshot.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_aware_kubelet_keeps_the_containers_the_snapshot_lists() {
    let server = server().await;
    let (node, before) = start_node_with_pod(&server).await;
    write_snapshot(&node.root(), &before);

    install_executable(
        &node.kubelet_path(),
        &standin_kubelet(NEW, "--snapshot-aware"),
    );
    node.ctl("restart").await;
    let nodes: Api<KubeNode> = Api::all(server.client());
    wait_for(&nodes, "node-a", |n: &KubeNode| {
        kubelet_version(n) == Some(NEW)
    })
    .await;
    wait_healthy(node.healthz_port).await;

    let after = running_containers(&node.runtime().await).await;
    for (name, container) in &after {
        assert_eq!(container.id, before[name].id, "{name} kept its container");
        assert_eq!(
            container.annotations["io.kubernetes.container.restartCount"],
            "0"
        );
    }
    let pods: Api<Pod> = Api::default_namespaced(server.client());
    let pod = pods.get("shop").await.unwrap();
    assert!(restart_counts(&pod).unwrap().values().all(|n| *n == 0));
    node.stop().await;
}

/// Polls `/healthz` until something answers (the port opens after registration).
async fn first_healthz_answer(port: u16) -> u16 {
    let deadline = tokio::time::Instant::now() + emulator_support::PATIENCE;
    loop {
        if let Some(code) = emulator_support::healthz_status(port).await {
            return code;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "healthz never answered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_healthy_kubelet_registers_but_never_answers_ok() {
    let server = server().await;
    let node = Node::start(
        &server,
        "node-a",
        &standin_kubelet(NEW, "--fault never-healthy"),
    )
    .await;
    let nodes: Api<KubeNode> = Api::all(server.client());

    let registered = wait_for(&nodes, "node-a", |n: &KubeNode| {
        kubelet_version(n) == Some(NEW)
    })
    .await;

    assert!(!is_ready(&registered), "the Node is not Ready");
    assert_eq!(first_healthz_answer(node.healthz_port).await, 503);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_version_kubelet_reports_the_previous_minor() {
    let server = server().await;
    let node = Node::start(
        &server,
        "node-a",
        &standin_kubelet(NEW, "--fault wrong-version"),
    )
    .await;
    let nodes: Api<KubeNode> = Api::all(server.client());

    let registered = wait_for(&nodes, "node-a", |n: &KubeNode| is_ready(n)).await;

    assert_eq!(kubelet_version(&registered), Some("v1.30.2"));
    let printed = std::process::Command::new(node.kubelet_path())
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout).trim(),
        format!("Kubernetes {NEW}")
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_kubelet_exits_and_is_started_again_by_the_supervisor() {
    let server = server().await;
    let node = Node::start(
        &server,
        "node-a",
        &standin_kubelet(NEW, "--fault crash-on-start"),
    )
    .await;

    let deadline = tokio::time::Instant::now() + emulator_support::PATIENCE;
    let mut status = node.status().await;
    while status.starts < 3 || status.last_exit.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the kubelet never crashed twice"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        status = node.status().await;
    }

    assert!(status.last_exit.unwrap().contains("exit status: 1"));
    let nodes: Api<KubeNode> = Api::all(server.client());
    assert!(
        nodes.get_opt("node-a").await.unwrap().is_none(),
        "a crashing kubelet never registers"
    );
    node.stop().await;
}
