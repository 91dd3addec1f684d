//! The `kubectl kubelift` plugin as users run it: through the real `kubectl`, which finds
//! `kubectl-kubelift` on `PATH`, against the embedded API server — pause, retry, status, plan,
//! the errors a typo or a bad manifest gets, and a reader that goes away mid-watch.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod kubectl_support;

use std::path::PathBuf;
use std::process::Output;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::PostParams;
use kubectl_support::Kubectl;
use kubelift_crds::KubeletUpgrade;
use kubelift_testbed::apiserver::{ApiServer, ApiServerConfig};
use serde_json::json;

const EXAMPLE: &str = include_str!("../../manifests/examples/patch-preserve.yaml");

/// The directory holding the built binaries (`kubectl-kubelift` among them).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    deps.parent().unwrap().to_path_buf()
}

/// `PATH` with the built binaries first, so that kubectl finds `kubectl-kubelift`.
fn path_with_plugin() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    format!("{}:{path}", bin_dir().display())
}

/// A server with the CRDs, three worker nodes on v1.32.1 and the example plan applied.
async fn cluster() -> ApiServer {
    let server = ApiServer::start(ApiServerConfig::default()).await.unwrap();
    let client = server.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in kubelift_crds::manifest::crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let nodes: Api<Node> = Api::all(client.clone());
    for (name, zone) in [("node-a", "a"), ("node-b", "b"), ("node-c", "a")] {
        let node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
            "status": {"nodeInfo": {"kubeletVersion": "v1.32.1"}},
        });
        let node: Node = serde_json::from_value(node).unwrap();
        nodes.create(&PostParams::default(), &node).await.unwrap();
    }
    let plan: KubeletUpgrade = serde_saphyr::from_str(EXAMPLE).unwrap();
    let plans: Api<KubeletUpgrade> = Api::all(client);
    plans.create(&PostParams::default(), &plan).await.unwrap();
    server
}

/// `kubectl kubelift <args>`, with the plugin on PATH.
async fn plugin(kubectl: &Kubectl, args: &[&str]) -> Output {
    let mut full = vec!["kubelift"];
    full.extend_from_slice(args);
    kubectl
        .command(&full)
        .env("PATH", path_with_plugin())
        .output()
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn plan_object(server: &ApiServer) -> KubeletUpgrade {
    let plans: Api<KubeletUpgrade> = Api::all(server.client());
    plans.get("patch-v1-32-3").await.unwrap()
}

#[tokio::test]
async fn pause_and_retry_change_the_plan_as_they_say() {
    let server = cluster().await;
    let Some(kubectl) = Kubectl::for_server(&server) else {
        return;
    };

    let paused = plugin(&kubectl, &["pause", "patch-v1-32-3"]).await;
    let first = plugin(&kubectl, &["retry", "patch-v1-32-3"]).await;
    let second = plugin(&kubectl, &["retry", "patch-v1-32-3"]).await;

    assert!(paused.status.success(), "{}", text(&paused.stderr));
    assert_eq!(
        text(&paused.stdout),
        "kubeletupgrade/patch-v1-32-3 paused\n"
    );
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(text(&first.stdout).contains("retry 1 requested"));
    assert!(text(&second.stdout).contains("retry 2 requested"));
    let plan = plan_object(&server).await;
    assert!(plan.spec.paused);
    let annotations = plan.metadata.annotations.unwrap_or_default();
    assert_eq!(annotations["kubelift.dev/retry"], "2");
}

/// `kubectl kubelift plan -f` on `manifest`, against a fresh cluster; `None` without kubectl.
async fn plan_output(manifest: &str) -> Option<Output> {
    let server = cluster().await;
    let kubectl = Kubectl::for_server(&server)?;
    let file = kubectl.home_path("plan.yaml");
    std::fs::write(&file, manifest).unwrap();
    Some(plugin(&kubectl, &["plan", "-f", &file]).await)
}

#[tokio::test]
async fn plan_shows_the_canary_then_the_batches_in_zone_order() {
    let Some(output) = plan_output(EXAMPLE).await else {
        return;
    };

    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        "kubeletupgrade/patch-v1-32-3 to v1.32.3: 3 nodes to upgrade"
    );
    assert_eq!(lines[1], "canary 1:");
    let batches = lines.iter().filter(|l| l.starts_with("batch ")).count();
    assert_eq!(
        batches, 2,
        "10% of 3 nodes rounds down to one at a time: {stdout}"
    );
    for node in ["node-a", "node-b", "node-c"] {
        assert_eq!(
            stdout.matches(&format!("  {node} (v1.32.1)")).count(),
            1,
            "{stdout}"
        );
    }
}

#[tokio::test]
async fn a_plan_that_selects_no_node_says_why() {
    let nowhere = EXAMPLE.replace(
        "  nodeSelector:\n",
        "  nodeSelector:\n    matchLabels: {pool: none}\n",
    );
    assert_ne!(nowhere, EXAMPLE, "the selector went in");

    let Some(output) = plan_output(&nowhere).await else {
        return;
    };

    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.contains(": 0 nodes to upgrade"), "{stdout}");
    assert!(
        stdout.contains("the nodeSelector matches 0 of 3 nodes"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_bad_manifest_or_a_missing_plan_gets_one_clear_line_and_changes_nothing() {
    let server = cluster().await;
    let Some(kubectl) = Kubectl::for_server(&server) else {
        return;
    };
    let bad = kubectl.home_path("bad.yaml");
    std::fs::write(&bad, EXAMPLE.replace("version: v1.32.3", "version: banana")).unwrap();
    let before = plan_object(&server).await;

    let invalid = plugin(&kubectl, &["plan", "-f", &bad]).await;
    let missing = plugin(&kubectl, &["pause", "patch-v9"]).await;

    let invalid_err = text(&invalid.stderr);
    assert_eq!(invalid.status.code(), Some(1), "{invalid_err}");
    assert!(invalid_err.contains("spec.version"), "{invalid_err}");
    assert!(invalid.stdout.is_empty());
    let missing_err = text(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1), "{missing_err}");
    assert!(missing_err.contains("patch-v9"), "{missing_err}");
    assert!(missing_err.contains("NotFound"), "{missing_err}");
    assert!(
        !missing_err.contains("Status {"),
        "no debug dump: {missing_err}"
    );
    assert_eq!(missing_err.lines().count(), 1, "{missing_err}");
    let after = plan_object(&server).await;
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
}

#[tokio::test]
async fn a_watch_piped_into_head_ends_quietly_when_head_exits() {
    let server = cluster().await;
    let Some(kubectl) = Kubectl::for_server(&server) else {
        return;
    };
    let script = "set -o pipefail; \"$KUBECTL\" kubelift status patch-v1-32-3 --watch | head -n 1";

    let output = kubectl
        .shell(script)
        .env("PATH", path_with_plugin())
        .output()
        .await
        .unwrap();

    let stderr = text(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}: {stderr}",
        output.status
    );
    assert!(text(&output.stdout).starts_with("patch-v1-32-3"));
    assert!(!stderr.contains("panicked"), "{stderr}");
}
