//! End-to-end rollouts through the sandbox library: the real operator, one real helper per node,
//! kubelet emulators under supervisors on simulated or real container runtimes. The positive
//! control (a bare 1.30 → 1.31 swap recreates every container), 1.31 → 1.32 on real containerd,
//! and 1.30 → 1.31 under each policy, with the disruption budget watched throughout a drain.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod e2e_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use e2e_support::{PATIENCE, chain, config, kubelet_bytes, run, start};
use futures::StreamExt;
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kubelift_crds::{ContainerPolicy, NodeUpgrade, Verdict};
use kubelift_testbed::sandbox::summary::Summary;
use kubelift_testbed::sandbox::{RuntimeKind, Sandbox, SandboxConfig, workloads};
use serde_json::Value;

async fn rollout(sandbox: &mut Sandbox) -> Summary {
    match sandbox.run_rollout().await {
        Ok(summary) => summary,
        Err(error) => panic!("the rollout runs: {}", chain(&error)),
    }
}

fn minor_upgrade(nodes: usize, policy: ContainerPolicy) -> SandboxConfig {
    let mut config = config(nodes);
    config.from = "v1.30.8".into();
    config.to = "v1.31.4".into();
    config.policy = policy;
    config
}

/// Running container IDs on every node, through CRI.
async fn running_ids(sandbox: &mut Sandbox) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for node in sandbox.nodes_mut() {
        let mut client = kubelift_testbed::emulator::connect_cri(&node.cri_socket())
            .await
            .unwrap();
        let request = cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                state: Some(cri::ContainerStateValue {
                    state: cri::ContainerState::ContainerRunning.into(),
                }),
                ..Default::default()
            }),
        };
        let listed = client.list_containers(request).await.unwrap().into_inner();
        ids.extend(listed.containers.into_iter().map(|c| c.id));
    }
    ids
}

/// Running containers of one node by name, through CRI.
async fn containers_by_name(socket: &std::path::Path) -> BTreeMap<String, cri::Container> {
    let mut client = kubelift_testbed::emulator::connect_cri(socket)
        .await
        .unwrap();
    let request = cri::ListContainersRequest::default();
    let listed = client.list_containers(request).await.unwrap().into_inner();
    listed
        .containers
        .into_iter()
        .filter(|c| c.state == i32::from(cri::ContainerState::ContainerRunning))
        .map(|c| (c.labels["io.kubernetes.container.name"].clone(), c))
        .collect()
}

async fn node_upgrades(sandbox: &Sandbox) -> Vec<NodeUpgrade> {
    let api: Api<NodeUpgrade> = Api::all(sandbox.client());
    api.list(&kube::api::ListParams::default())
        .await
        .unwrap()
        .items
}

#[test]
fn positive_control_a_bare_1_30_to_1_31_swap_recreates_every_container() {
    run(async {
        let vectors: Value = serde_json::from_str(
            &std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../kubelet-hash/testdata/vectors.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let vector = &vectors["vectors"][0];
        let container: Value =
            serde_json::from_str(vector["container_json"].as_str().unwrap()).unwrap();
        let manifests = tempfile::tempdir().unwrap();
        let mut objects = workloads::demo();
        objects.push(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "vector-0", "namespace": "default"},
            "spec": {"containers": [container]},
        }));
        for (index, object) in objects.iter().enumerate() {
            let path = manifests.path().join(format!("{index:02}.json"));
            std::fs::write(path, serde_json::to_vec(object).unwrap()).unwrap();
        }
        let mut config = minor_upgrade(2, ContainerPolicy::Preserve);
        config.workloads = Some(manifests.path().to_owned());
        let mut sandbox = start(config).await;
        let before = sandbox.record().await.unwrap();

        let target = sandbox.dir().join("kubelets/kubelet-v1.31.4");
        for node in sandbox.nodes_mut() {
            let staged = node.kubelet_path().with_extension("swap");
            std::fs::copy(&target, &staged).unwrap();
            std::fs::rename(&staged, node.kubelet_path()).unwrap();
            kubelift_testbed::supervisor::control(&node.supervisor_socket(), "restart")
                .await
                .unwrap();
        }
        let uids: BTreeSet<String> = before.iter().map(|p| p.uid.clone()).collect();
        wait_pods(&sandbox.client(), |pods| {
            pods.iter()
                .filter(|p| uids.contains(p.metadata.uid.as_deref().unwrap_or("")))
                .all(|p| {
                    let statuses = p.status.as_ref().and_then(|s| s.container_statuses.clone());
                    statuses.is_some_and(|list| list.iter().all(|c| c.restart_count == 1))
                })
        })
        .await;

        let after = sandbox.record().await.unwrap();
        let mut containers = 0;
        for pod in &before {
            let now = after
                .iter()
                .find(|p| p.uid == pod.uid)
                .expect("no pod was deleted");
            for (name, state) in &pod.containers {
                containers += 1;
                assert_ne!(
                    now.containers[name].id, state.id,
                    "{}/{name} recreated",
                    pod.name
                );
                assert_eq!(now.containers[name].restart_count, state.restart_count + 1);
            }
        }
        assert!(containers >= 9, "every demo container and the vector's ran");
        let vector_node = before
            .iter()
            .find(|p| p.name == "vector-0")
            .unwrap()
            .node
            .clone();
        let node = sandbox
            .nodes_mut()
            .iter()
            .find(|n| n.name == vector_node)
            .unwrap();
        let stored = containers_by_name(&node.cri_socket()).await;
        assert_eq!(
            stored["test_container"].annotations["io.kubernetes.container.hash"],
            vector["hash"]["1.31+"].as_str().unwrap(),
            "the 1.31 emulator stores the hash of vectors.json"
        );
        sandbox.stop().await;
    });
}

async fn wait_pods(client: &kube::Client, condition: impl Fn(&[Pod]) -> bool) {
    let api: Api<Pod> = Api::all(client.clone());
    let (reader, writer) = reflector::store();
    let mut events = reflector(writer, watcher(api, watcher::Config::default()))
        .applied_objects()
        .boxed();
    let waited = tokio::time::timeout(PATIENCE, async {
        loop {
            let pods: Vec<Pod> = reader.state().iter().map(|p| (**p).clone()).collect();
            if !pods.is_empty() && condition(&pods) {
                return;
            }
            let _event = tokio::time::timeout(Duration::from_secs(2), events.next()).await;
        }
    });
    waited.await.expect("pods reached the condition in time");
}

#[test]
fn three_containerd_nodes_go_from_1_31_to_1_32_under_preserve_with_no_restart() {
    if !kubelift_testbed::helper_run::runtime_tools_present() {
        return;
    }
    run(async {
        let mut config = config(3);
        config.runtime = RuntimeKind::Containerd;
        let mut sandbox = start(config).await;
        let ids_before = running_ids(&mut sandbox).await;

        let summary = rollout(&mut sandbox).await;

        assert!(summary.success(), "{summary:#?}");
        assert_eq!(summary.nodes_upgraded, 3);
        assert_eq!(summary.restarts_observed, 0);
        assert_eq!(summary.pods_evicted, 0);
        assert!(
            summary.node_versions.values().all(|v| v == "v1.32.1"),
            "{summary:#?}"
        );
        assert!(
            summary
                .entries
                .iter()
                .all(|e| e.container_id_after.as_ref() == Some(&e.container_id_before))
        );
        assert_eq!(
            running_ids(&mut sandbox).await,
            ids_before,
            "the same containers run"
        );
        assert!(!ids_before.is_empty());
        assert_each_phase_announced_once(&sandbox).await;
        sandbox.stop().await;
    });
}

/// Every helper Event names one phase of one `NodeUpgrade` and was published once: a status
/// event queued while the attempt ran does not announce the end again.
async fn assert_each_phase_announced_once(sandbox: &Sandbox) {
    let api: Api<Event> = Api::all(sandbox.client());
    let events = api
        .list(&kube::api::ListParams::default())
        .await
        .expect("list events");
    let from_helpers: Vec<&Event> = events
        .items
        .iter()
        .filter(|e| e.reporting_controller.as_deref() == Some("kubelift-node-helper"))
        .collect();
    let mut seen = BTreeSet::new();
    for event in &from_helpers {
        let key = (
            event.regarding.as_ref().and_then(|r| r.name.clone()),
            event.reason.clone(),
        );
        assert!(seen.insert(key.clone()), "announced twice: {key:?}");
        assert!(event.series.is_none(), "published again: {event:?}");
    }
    assert!(
        seen.iter()
            .filter(|(_, reason)| reason.as_deref() == Some("Succeeded"))
            .count()
            == 3,
        "one Succeeded per node: {seen:?}"
    );
}

#[test]
fn under_preserve_a_1_30_to_1_31_upgrade_holds_every_node_and_touches_no_binary() {
    run(async {
        let mut sandbox = start(minor_upgrade(3, ContainerPolicy::Preserve)).await;
        let originals: Vec<Vec<u8>> = (0..3).map(|i| kubelet_bytes(&mut sandbox, i)).collect();

        let summary = rollout(&mut sandbox).await;

        assert!(
            !summary.success(),
            "a held rollout is not a success: {summary:#?}"
        );
        assert_eq!(summary.nodes_upgraded, 0);
        assert_eq!(summary.restarts_observed, 0);
        assert!(summary.node_versions.values().all(|v| v == "v1.30.8"));
        for (index, original) in originals.iter().enumerate() {
            assert_eq!(
                &kubelet_bytes(&mut sandbox, index),
                original,
                "node {index} untouched"
            );
        }
        let message = summary.message.clone().unwrap_or_default();
        assert!(message.contains("would restart"), "{message}");
        let upgrades = node_upgrades(&sandbox).await;
        let named: usize = upgrades
            .iter()
            .map(|u| u.status.as_ref().map_or(0, |s| s.containers.len()))
            .sum();
        assert_eq!(
            named, summary.containers,
            "every container is named in a status"
        );
        assert!(
            upgrades.iter().all(|u| u.spec.hold_reason.is_some()),
            "{upgrades:#?}"
        );
        sandbox.stop().await;
    });
}

#[test]
fn under_evict_if_restart_exactly_the_predicted_pods_are_evicted() {
    run(async {
        let mut sandbox = start(minor_upgrade(3, ContainerPolicy::EvictIfRestart)).await;

        let summary = rollout(&mut sandbox).await;

        assert!(summary.success(), "{summary:#?}");
        assert_eq!(summary.nodes_upgraded, 3);
        let predicted: BTreeSet<String> = node_upgrades(&sandbox)
            .await
            .iter()
            .flat_map(|u| u.status.clone().unwrap_or_default().containers)
            .filter(|c| c.verdict != Verdict::Preserved && !c.not_evictable)
            .map(|c| c.pod_name)
            .collect();
        let evicted: BTreeSet<String> = sandbox
            .server()
            .requests()
            .into_iter()
            .filter(|r| r.subresource.as_deref() == Some("eviction") && r.code < 300)
            .filter_map(|r| r.name)
            .collect();
        assert_eq!(
            evicted, predicted,
            "evictions are exactly the predicted pods"
        );
        for entry in summary.entries.iter().filter(|e| !e.evicted) {
            assert!(
                !entry.restarted || entry.pod.starts_with("monitoring/node-exporter"),
                "only DaemonSet pods, never evicted, restart: {entry:?}"
            );
        }
        sandbox.stop().await;
    });
}

#[test]
fn a_snapshot_aware_kubelet_keeps_every_container_from_1_30_to_1_31() {
    run(async {
        let mut config = minor_upgrade(3, ContainerPolicy::Preserve);
        config.snapshot_aware = true;
        let mut sandbox = start(config).await;

        let summary = rollout(&mut sandbox).await;

        assert!(summary.success(), "{summary:#?}");
        assert_eq!(summary.nodes_upgraded, 3);
        assert_eq!(summary.restarts_observed, 0);
        assert_eq!(summary.pods_evicted, 0);
        assert_eq!(summary.containers_preserved, summary.containers);
        assert!(summary.node_versions.values().all(|v| v == "v1.31.4"));
        sandbox.stop().await;
    });
}

/// Four replicas of one web server on two nodes (two each) under a budget of one unavailable.
const BUDGETED_WEB: &str = r"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: nginx
          image: registry.k8s.io/nginx-slim:0.27
          readinessProbe: {httpGet: {path: /ready, port: 8080}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: default}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: web}}
";

fn healthy(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    pod.metadata.deletion_timestamp.is_none()
        && conditions
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Watches the `app=web` pods and keeps the smallest number of healthy ones seen at any moment.
fn track_fewest_healthy(client: kube::Client) -> (Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let fewest = Arc::new(AtomicUsize::new(usize::MAX));
    let api: Api<Pod> = Api::default_namespaced(client);
    let config = watcher::Config::default().labels("app=web");
    let (reader, writer) = reflector::store();
    let mut events = reflector(writer, watcher(api, config)).boxed();
    let seen = fewest.clone();
    let task = tokio::spawn(async move {
        while let Some(event) = events.next().await {
            if matches!(
                event,
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_))
            ) {
                let count = reader.state().iter().filter(|p| healthy(p)).count();
                seen.fetch_min(count, Ordering::Relaxed);
            }
        }
    });
    (fewest, task)
}

#[test]
fn under_evict_if_restart_the_disruption_budget_holds_throughout_the_drain() {
    run(async {
        let manifests = tempfile::tempdir().unwrap();
        std::fs::write(manifests.path().join("web.yaml"), BUDGETED_WEB).unwrap();
        let mut config = minor_upgrade(2, ContainerPolicy::EvictIfRestart);
        config.workloads = Some(manifests.path().to_owned());
        let mut sandbox = start(config).await;
        let (fewest, tracker) = track_fewest_healthy(sandbox.client());

        let summary = rollout(&mut sandbox).await;
        tracker.abort();

        assert!(summary.success(), "{summary:#?}");
        assert_eq!(summary.nodes_upgraded, 2);
        assert_eq!(summary.original_pods_evicted, 4, "{summary:#?}");
        assert!(
            summary.pods_evicted >= 4,
            "replacements may be evicted again"
        );
        let evictions: Vec<_> = sandbox
            .server()
            .requests()
            .into_iter()
            .filter(|r| r.subresource.as_deref() == Some("eviction"))
            .collect();
        assert!(
            evictions.iter().any(|r| r.code == 429),
            "two web pods per node: the budget refused the second eviction at first"
        );
        let fewest = fewest.load(Ordering::Relaxed);
        assert_eq!(fewest, 3, "never more than one web pod unavailable");
        sandbox.stop().await;
    });
}
