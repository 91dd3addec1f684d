//! Verification on a real containerd: a container the prediction called `Preserved` that is
//! recreated while the kubelet restarts (new container ID, restart count + 1) fails the upgrade,
//! is reported with both container IDs, and the previous kubelet is restored.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on setup errors"
)]

use std::time::Duration;

use kubelet_hash::{HashOptions, KubeletVersion};
use kubelift_node_helper::journal::{Journal, Step};
use kubelift_testbed::artifact_server::ArtifactServer;
use kubelift_testbed::containerd::{ContainerSpec, Containerd, PodSpec};
use kubelift_testbed::helper_run::{
    runtime_tools_present, spawn_execute, work_order, write_inputs,
};
use kubelift_testbed::standin_kubelet::{
    SimulatedNode, sha256_hex, standin_kubelet, write_executable,
};

const FROM: &str = "v1.31.2";
const TO: &str = "v1.32.0";

fn pod() -> PodSpec {
    let containers = ["app", "sidecar"]
        .iter()
        .map(|name| {
            let image = format!("shop/{name}:1");
            let json = serde_json::json!({ "name": name, "image": image }).to_string();
            let version: KubeletVersion = FROM.parse().unwrap();
            let hash = kubelet_hash::hash(&json, &version, &HashOptions::default()).unwrap();
            ContainerSpec {
                name: (*name).into(),
                image,
                hash,
                restart_count: 0,
            }
        })
        .collect();
    PodSpec {
        namespace: "shop".into(),
        name: "web-1".into(),
        uid: "44444444-dddd-4000-8000-000000000004".into(),
        containers,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preserved_container_recreated_during_the_swap_is_caught_with_both_ids() {
    if !runtime_tools_present() {
        return;
    }
    let node = SimulatedNode::new("node-verify", FROM).unwrap();
    let mut containerd = Containerd::start(&node.path("containerd"), &node.cri_socket())
        .await
        .unwrap();
    let running = containerd.run_pod(&pod()).await.unwrap();
    node.restart_kubelet().unwrap();
    let server = ArtifactServer::start().await.unwrap();
    let original = std::fs::read(node.kubelet_path()).unwrap();
    let new = standin_kubelet(TO, true);
    let url = server.publish("kubelet", new.clone());
    let order = work_order(&node.name, "uid-verify", TO, &url, &sha256_hex(&new));
    let (order_path, pods_path) = write_inputs(&node, &order, &[pod()]).unwrap();
    let reached = node.path("hook-reached");
    let go = node.path("hook-go");
    let hook = format!(
        "#!/bin/sh\nrm -f \"$0\"\ntouch '{}'\nwhile [ ! -e '{}' ]; do sleep 0.05; done\n",
        reached.display(),
        go.display()
    );
    write_executable(&node.restart_hook(), hook.as_bytes()).unwrap();

    let child = spawn_execute(&node, &order_path, &pods_path).unwrap();
    while !reached.exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = running.container("app").unwrap().id.clone();
    let after = containerd
        .recreate_container(&running, "app")
        .await
        .unwrap()
        .id;
    std::fs::write(&go, "").unwrap();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();

    let journal: Journal = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(journal.step, Step::RolledBack, "{journal:?}");
    let failure = journal.failure.clone().unwrap();
    assert_eq!(failure.reason, "UnexpectedRestarts");
    assert!(
        failure.message.contains(&before) && failure.message.contains(&after),
        "{}",
        failure.message
    );
    assert_eq!(journal.restarts.len(), 1, "{:?}", journal.restarts);
    let restart = &journal.restarts[0];
    assert_eq!(
        (restart.container_name.as_str(), restart.unexpected),
        ("app", true)
    );
    assert_eq!(
        (restart.id_before.as_str(), restart.id_after.as_str()),
        (before.as_str(), after.as_str())
    );
    assert_eq!(
        (restart.restart_count_before, restart.restart_count_after),
        (0, 1)
    );
    assert_eq!(std::fs::read(node.kubelet_path()).unwrap(), original);
    containerd.shutdown().await;
}
