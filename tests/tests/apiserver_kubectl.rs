//! The real `kubectl` against the embedded API server, each test with its own `HOME`: applying
//! the CRDs and examples, printer columns in `get` and `get -w`, nodes, cordon and uncordon,
//! `describe node`, drain blocked by a `PodDisruptionBudget` and then unblocked, delete, and
//! server-side apply. A missing kubectl skips the tests, except under `CI=true` where it fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod apiserver_support;
mod kubectl_support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use apiserver_support::{PATIENCE, server, widget_crd};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kubectl_support::Kubectl;
use kubelift_testbed::apiserver::ApiServer;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

fn manifests() -> PathBuf {
    std::env::var_os("KUBELIFT_MANIFESTS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests"),
        PathBuf::from,
    )
}

fn examples() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(manifests().join("examples")) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    files.sort();
    files
}

fn node(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"node-role.kubernetes.io/worker": ""}},
        "status": {
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready",
                "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }],
            "nodeInfo": {
                "kubeletVersion": "v1.32.2", "osImage": "Debian", "kernelVersion": "6.1",
                "containerRuntimeVersion": "containerd://1.6.20", "architecture": "amd64",
                "operatingSystem": "linux", "machineID": "m", "systemUUID": "s", "bootID": "b",
                "kubeProxyVersion": "",
            },
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
            "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_the_crds_and_examples_and_prints_printer_columns() {
    let server = server().await;
    let Some(kubectl) = Kubectl::for_server(&server) else {
        return;
    };
    let crds = manifests().join("crds.yaml");
    kubectl
        .run(&["apply", "--validate=false", "-f", crds.to_str().unwrap()])
        .await;
    let examples = examples();
    for example in &examples {
        kubectl
            .run(&["apply", "--validate=false", "-f", example.to_str().unwrap()])
            .await;
    }
    assert!(
        !examples.is_empty(),
        "manifests/examples holds the examples to apply"
    );

    let table = kubectl.run(&["get", "kubeletupgrades"]).await;
    let wide = kubectl.run(&["get", "ku", "-o", "wide"]).await;

    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "VERSION", "PHASE", "UPGRADED", "FAILED", "AGE"]
    );
    assert!(wide.lines().next().unwrap().contains("MESSAGE"));
    assert_eq!(
        table.lines().count(),
        examples.len() + 1,
        "one row per example:\n{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_prints_rows_as_objects_change() {
    let server = server().await;
    let Some(kubectl) = Kubectl::for_server(&server) else {
        return;
    };
    let crd = kubectl.file("crd.json", &widget_crd());
    kubectl
        .run(&["apply", "--validate=false", "-f", &crd])
        .await;
    let widget = json!({"apiVersion": "test.kubelift.dev/v1", "kind": "Widget",
                        "metadata": {"name": "w", "namespace": "default"}, "spec": {"size": 3}});
    let widget = kubectl.file("widget.json", &widget);
    kubectl
        .run(&["apply", "--validate=false", "-f", &widget])
        .await;

    let mut child = kubectl
        .command(&["get", "wd", "-w"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let header = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let first = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let status = json!({"status": {"phase": "Shiny"}});
    let api = apiserver_support::widgets(&server.client());
    api.patch_status("w", &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
    let changed = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    child.kill().await.unwrap();

    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["NAME", "SIZE", "PHASE", "AGE"]
    );
    assert!(first.starts_with("w ") && first.contains(" 3 "), "{first}");
    assert!(changed.contains("Shiny"), "{changed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_cordons_uncordons_and_describes_nodes() {
    let server = server().await;
    let Some(kubectl) = Kubectl::for_server(&server) else {
        return;
    };
    let nodes: Api<Node> = Api::all(server.client());
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(node("node-a")).unwrap(),
        )
        .await
        .unwrap();

    let listed = kubectl.run(&["get", "nodes"]).await;
    kubectl.run(&["cordon", "node-a"]).await;
    let cordoned = nodes.get("node-a").await.unwrap();
    let listed_cordoned = kubectl.run(&["get", "nodes"]).await;
    kubectl.run(&["uncordon", "node-a"]).await;
    let uncordoned = nodes.get("node-a").await.unwrap();
    let described = kubectl.run(&["describe", "node", "node-a"]).await;

    let header: Vec<&str> = listed.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    let row: Vec<&str> = listed.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        (row[0], row[1], row[2], row[4]),
        ("node-a", "Ready", "worker", "v1.32.2")
    );
    assert!(listed_cordoned.contains("Ready,SchedulingDisabled"));
    assert_eq!(cordoned.spec.unwrap().unschedulable, Some(true));
    assert_ne!(
        uncordoned.spec.unwrap_or_default().unschedulable,
        Some(true)
    );
    assert!(
        described.contains("node-a") && described.contains("Kubelet Version:"),
        "{described}"
    );
}

/// Plays the node's kubelet: confirms every graceful pod deletion at once.
fn confirm_terminations(server: &ApiServer) -> tokio::task::JoinHandle<()> {
    let client = server.client();
    let pods: Api<Pod> = Api::all(client.clone());
    tokio::spawn(async move {
        let stream = watcher(pods.clone(), watcher::Config::default())
            .default_backoff()
            .applied_objects();
        let mut stream = std::pin::pin!(stream);
        while let Some(Ok(pod)) = stream.next().await {
            if pod.metadata.deletion_timestamp.is_some() {
                let namespaced: Api<Pod> =
                    Api::namespaced(client.clone(), &pod.metadata.namespace.unwrap());
                let now = DeleteParams {
                    grace_period_seconds: Some(0),
                    ..Default::default()
                };
                let _gone = namespaced.delete(&pod.metadata.name.unwrap(), &now).await;
            }
        }
    })
}

async fn workloads_on_node(server: &ApiServer) {
    let client = server.client();
    let daemonsets: Api<DaemonSet> = Api::default_namespaced(client.clone());
    let template = |app: &str| {
        json!({"metadata": {"labels": {"app": app}},
                                     "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}})
    };
    let ds = json!({
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": template("agent")},
    });
    let ds = daemonsets
        .create(&PostParams::default(), &serde_json::from_value(ds).unwrap())
        .await
        .unwrap();
    let replicasets: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    let rs = json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template("web")},
    });
    let rs = replicasets
        .create(&PostParams::default(), &serde_json::from_value(rs).unwrap())
        .await
        .unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    for (name, app, kind, uid) in [
        ("agent-x", "agent", "DaemonSet", ds.metadata.uid),
        ("web-x", "web", "ReplicaSet", rs.metadata.uid),
    ] {
        let pod = json!({
            "metadata": {"name": name, "labels": {"app": app}, "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": kind, "name": app, "uid": uid,
                "controller": true}]},
            "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "busybox:1"}]},
        });
        pods.create(
            &PostParams::default(),
            &serde_json::from_value(pod).unwrap(),
        )
        .await
        .unwrap();
        let ready = json!({
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        });
        pods.patch_status(name, &PatchParams::default(), &Patch::Merge(ready))
            .await
            .unwrap();
    }
    let pdbs: Api<PodDisruptionBudget> = Api::default_namespaced(client);
    let pdb = json!({
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
    });
    pdbs.create(
        &PostParams::default(),
        &serde_json::from_value(pdb).unwrap(),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drain_retries_a_budget_blocked_eviction_until_the_budget_allows_it() {
    let server = server().await;
    let Some(kubectl) = Kubectl::for_server(&server) else {
        return;
    };
    let nodes: Api<Node> = Api::all(server.client());
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(node("node-a")).unwrap(),
        )
        .await
        .unwrap();
    workloads_on_node(&server).await;
    let kubelet = confirm_terminations(&server);

    let drain = kubectl
        .command(&["drain", "node-a", "--ignore-daemonsets", "--timeout=180s"])
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let refused = async {
        while !server
            .requests()
            .iter()
            .any(|r| r.subresource.as_deref() == Some("eviction") && r.code == 429)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(PATIENCE, refused)
        .await
        .expect("drain hits the budget");
    let pdbs: Api<PodDisruptionBudget> = Api::default_namespaced(server.client());
    pdbs.delete("web", &DeleteParams::default()).await.unwrap();
    let output = tokio::time::timeout(PATIENCE * 3, drain.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    kubelet.abort();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "drain failed: {stderr}");
    assert!(
        stderr.contains("disruption budget"),
        "drain reports the 429: {stderr}"
    );
    let pods: Api<Pod> = Api::default_namespaced(server.client());
    assert!(
        pods.get_opt("web-x").await.unwrap().is_none(),
        "the evicted pod is gone"
    );
    assert!(
        pods.get_opt("agent-x").await.unwrap().is_some(),
        "the DaemonSet pod stays"
    );
    assert_eq!(
        nodes
            .get("node-a")
            .await
            .unwrap()
            .spec
            .unwrap()
            .unschedulable,
        Some(true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_server_side_and_deletes() {
    let server = server().await;
    let Some(kubectl) = Kubectl::for_server(&server) else {
        return;
    };
    let crd = kubectl.file("crd.json", &widget_crd());
    kubectl
        .run(&["apply", "--server-side", "--validate=false", "-f", &crd])
        .await;
    let widget = |size: i64| {
        json!({
            "apiVersion": "test.kubelift.dev/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "default"}, "spec": {"size": size},
        })
    };
    let first = kubectl.file("w1.json", &widget(1));
    let second = kubectl.file("w2.json", &widget(2));

    kubectl
        .run(&["apply", "--server-side", "--validate=false", "-f", &first])
        .await;
    kubectl
        .run(&["apply", "--server-side", "--validate=false", "-f", &second])
        .await;
    let size = kubectl
        .run(&["get", "widget", "w", "-o", "jsonpath={.spec.size}"])
        .await;
    let managers = kubectl
        .run(&[
            "get",
            "widget",
            "w",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ])
        .await;
    kubectl.run(&["delete", "widget", "w"]).await;
    let remaining = kubectl.run(&["get", "widgets", "-o", "name"]).await;

    assert_eq!(size, "2");
    assert_eq!(managers, "kubectl");
    assert!(remaining.trim().is_empty(), "{remaining}");
}
