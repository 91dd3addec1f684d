//! Shared fixtures for the operator tests: a server with kubelift's CRDs, Ready nodes at an old
//! kubelet version, plans, the operator (in process or as its real binary), and the RBAC check.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test fixtures fail loudly"
)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client, CustomResourceExt};
use kubelift_crds::{KubeletUpgrade, NodeUpgrade, PlanPhase};
use kubelift_operator::metrics::Metrics;
use kubelift_operator::reconciler::{self, Settings};
use kubelift_testbed::apiserver::{ApiServer, ApiServerConfig, RequestRecord};
use serde_json::{Value, json};

/// Generous bound for anything awaited in a test on a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(120);
/// The User-Agent the in-process operator's requests carry.
pub const OPERATOR_AGENT: &str = "kubelift-operator/test";
/// Kubelet version the test nodes start at.
pub const FROM: &str = "v1.31.4";

/// A server with kubelift's CRDs installed.
pub async fn server() -> ApiServer {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
    let server = ApiServer::start(ApiServerConfig::default())
        .await
        .expect("server starts");
    let crds = Api::<CustomResourceDefinition>::all(server.client());
    for crd in [KubeletUpgrade::crd(), NodeUpgrade::crd()] {
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("CRD installs");
    }
    server
}

/// Create `count` Ready nodes `node-00`… at kubelet `FROM`.
pub async fn nodes(client: &Client, count: usize) -> Vec<String> {
    let api = Api::<Node>::all(client.clone());
    let mut names = Vec::new();
    for i in 0..count {
        let name = format!("node-{i:02}");
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/arch": "amd64"}},
        }))
        .unwrap();
        api.create(&PostParams::default(), &node)
            .await
            .expect("node is created");
        let status = json!({"status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "nodeInfo": {
                "kubeletVersion": FROM, "architecture": "amd64", "bootID": "b",
                "containerRuntimeVersion": "containerd://1.7", "kernelVersion": "6.1",
                "kubeProxyVersion": FROM, "machineID": "m", "operatingSystem": "linux",
                "osImage": "Debian", "systemUUID": "u",
            },
        }});
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
            .await
            .expect("node status is set");
        names.push(name);
    }
    names
}

/// A plan to `v1.32.1` with the given `rollout` section.
pub fn plan(name: &str, rollout: &Value) -> Value {
    json!({
        "apiVersion": "kubelift.dev/v1alpha1",
        "kind": "KubeletUpgrade",
        "metadata": {"name": name},
        "spec": {
            "version": "v1.32.1",
            "binary": {"url": "https://example.com/kubelet", "sha256": "a".repeat(64)},
            "rollout": rollout,
        },
    })
}

/// Create a plan from its JSON.
pub async fn create_plan(client: &Client, plan: Value) {
    let plan: KubeletUpgrade = serde_json::from_value(plan).unwrap();
    Api::<KubeletUpgrade>::all(client.clone())
        .create(&PostParams::default(), &plan)
        .await
        .expect("plan is created");
}

/// Run the operator in this process until the returned task is aborted.
pub fn operator(server: &ApiServer) -> tokio::task::JoinHandle<()> {
    let client = server.client_with_user_agent(OPERATOR_AGENT);
    let settings = Settings {
        node_name: None,
        instance: "test".to_owned(),
    };
    tokio::spawn(reconciler::run(
        client,
        settings,
        Arc::new(Metrics::new()),
        Arc::new(AtomicBool::new(false)),
    ))
}

/// Wait until the plan reaches `phase`.
pub async fn await_phase(client: &Client, name: &str, phase: PlanPhase) -> KubeletUpgrade {
    let api = Api::<KubeletUpgrade>::all(client.clone());
    let reached = move |plan: Option<&KubeletUpgrade>| {
        plan.and_then(|p| p.status.as_ref()).and_then(|s| s.phase) == Some(phase)
    };
    let waited = tokio::time::timeout(PATIENCE, await_condition(api.clone(), name, reached)).await;
    if waited.is_err() {
        eprintln!(
            "plan never reached {phase:?}: {:?}",
            api.get(name).await.map(|p| p.status)
        );
    }
    waited
        .expect("plan reaches the phase in time")
        .expect("watch works")
        .expect("plan exists")
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every `(group, resource[/subresource], verb)` the operator's `ClusterRole` and `Role` grant.
pub fn granted() -> BTreeSet<(String, String, String)> {
    let text = std::fs::read_to_string(workspace().join("manifests/rbac.yaml")).unwrap();
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let mut granted = BTreeSet::new();
    let roles = documents.iter().filter(|d| {
        matches!(d["kind"].as_str(), Some("ClusterRole" | "Role"))
            && d["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("kubelift-operator"))
    });
    for rule in roles.flat_map(|role| role["rules"].as_array().cloned().unwrap_or_default()) {
        let strings = |key: &str| -> Vec<String> {
            rule[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        };
        for group in strings("apiGroups") {
            for resource in strings("resources") {
                for verb in strings("verbs") {
                    granted.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    granted
}

/// Every `(group, resource[/subresource], verb)` the requests from `agent` used.
pub fn used(requests: &[RequestRecord], agent: &str) -> BTreeSet<(String, String, String)> {
    requests
        .iter()
        .filter(|r| r.user_agent.starts_with(agent) && !r.resource.is_empty())
        .map(|r| {
            let resource = match &r.subresource {
                Some(sub) => format!("{}/{sub}", r.resource),
                None => r.resource.clone(),
            };
            (r.group.clone(), resource, r.verb.clone())
        })
        .collect()
}
