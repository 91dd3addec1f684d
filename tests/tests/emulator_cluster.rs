//! The cluster controllers with in-process kubelet emulators on simulated runtimes: a Deployment
//! spreads its pods round-robin over the nodes, a `DaemonSet` puts one pod on each, and a pod
//! evicted from a cordoned node comes back on another node while the `DaemonSet` pod stays.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod emulator_support;

use std::collections::BTreeSet;
use std::time::Duration;

use emulator_support::{PATIENCE, server};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{EvictParams, Patch, PatchParams, PostParams};
use kube::runtime::{reflector, watcher};
use kubelift_testbed::cri_sim::CriSimServer;
use kubelift_testbed::emulator::{self, EmulatorConfig, RunningEmulator};
use serde_json::json;

struct SimNode {
    _dir: tempfile::TempDir,
    _cri: CriSimServer,
    _kubelet: RunningEmulator,
}

async fn start_node(client: &kube::Client, name: &str) -> SimNode {
    let dir = tempfile::tempdir().unwrap();
    let cri = CriSimServer::start(&dir.path().join("cri.sock")).unwrap();
    let mut config = EmulatorConfig::new(name, "v1.31.2".parse().unwrap(), cri.socket().to_owned());
    config.host_root = dir.path().to_owned();
    config.sync_interval = Duration::from_millis(200);
    config.heartbeat_interval = Duration::from_secs(1);
    let kubelet = emulator::start(config, client.clone()).await.unwrap();
    SimNode {
        _dir: dir,
        _cri: cri,
        _kubelet: kubelet,
    }
}

fn is_running(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    let statuses = status.and_then(|s| s.container_statuses.as_ref());
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && statuses.is_some_and(|list| list.iter().all(|c| c.container_id.is_some()))
}

fn node_of(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default()
}

/// Waits (by watch) until the pods matching `selector` satisfy `condition`; returns them.
async fn wait_pods(
    client: &kube::Client,
    selector: &str,
    condition: impl Fn(&[Pod]) -> bool,
) -> Vec<Pod> {
    let api: Api<Pod> = Api::all(client.clone());
    let (reader, writer) = reflector::store();
    let config = watcher::Config::default().labels(selector);
    let mut events = reflector(writer, watcher(api, config)).boxed();
    let found = tokio::time::timeout(PATIENCE, async {
        loop {
            let pods: Vec<Pod> = reader.state().iter().map(|p| (**p).clone()).collect();
            if condition(&pods) {
                return pods;
            }
            events.next().await.unwrap().unwrap();
        }
    });
    found.await.expect("pods reached the condition in time")
}

fn deployment() -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
            },
        },
    }))
    .unwrap()
}

fn daemon_set() -> DaemonSet {
    serde_json::from_value(json!({
        "metadata": {"name": "agent", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "agent", "image": "node-exporter:1.8"}]},
            },
        },
    }))
    .unwrap()
}

fn running_on_distinct_nodes(pods: &[Pod], count: usize) -> bool {
    let live: Vec<_> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let nodes: BTreeSet<String> = live.iter().map(|p| node_of(p)).collect();
    live.len() == count && nodes.len() == count && live.iter().all(|p| is_running(p))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_deployment_pod_comes_back_on_another_node() {
    let _logs = tracing_subscriber::fmt().with_test_writer().try_init();
    let server = server().await;
    let client = server.client();
    let _nodes = [
        start_node(&client, "node-a").await,
        start_node(&client, "node-b").await,
        start_node(&client, "node-c").await,
    ];
    let _controllers = kubelift_testbed::cluster::spawn(client.clone());
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    deployments
        .create(&PostParams::default(), &deployment())
        .await
        .unwrap();
    let daemon_sets: Api<DaemonSet> = Api::default_namespaced(client.clone());
    daemon_sets
        .create(&PostParams::default(), &daemon_set())
        .await
        .unwrap();

    let web = wait_pods(&client, "app=web", |pods| {
        running_on_distinct_nodes(pods, 3)
    })
    .await;
    wait_pods(&client, "app=agent", |pods| {
        running_on_distinct_nodes(pods, 3)
    })
    .await;
    let victim = web.iter().find(|p| node_of(p) == "node-a").unwrap();
    let victim_name = victim.metadata.name.clone().unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    let cordon = json!({"spec": {"unschedulable": true}});
    nodes
        .patch("node-a", &PatchParams::default(), &Patch::Merge(&cordon))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.evict(&victim_name, &EvictParams::default())
        .await
        .unwrap();

    let replaced = wait_pods(&client, "app=web", |pods| {
        let gone = pods
            .iter()
            .all(|p| p.metadata.name.as_deref() != Some(victim_name.as_str()));
        let running = pods.iter().filter(|p| is_running(p)).count() == 3;
        gone && running && pods.iter().all(|p| node_of(p) != "node-a")
    })
    .await;
    assert_eq!(replaced.len(), 3);
    let agents = wait_pods(&client, "app=agent", |pods| {
        running_on_distinct_nodes(pods, 3)
    })
    .await;
    assert!(
        agents.iter().any(|p| node_of(p) == "node-a"),
        "the DaemonSet pod stays on node-a"
    );
}
