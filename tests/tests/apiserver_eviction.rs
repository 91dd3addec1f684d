//! Evictions against `PodDisruptionBudgets`: the 200/429/500 answers, budget arithmetic for
//! `minAvailable` and `maxUnavailable` (int and percent) under concurrent evictions, and graceful
//! termination that ends only when the node's kubelet (here: the test) confirms.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod apiserver_support;

use apiserver_support::{code, server};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, EvictParams, Patch, PatchParams, PostParams};
use kubelift_testbed::apiserver::ApiServer;
use serde_json::{Value, json};

async fn running_pods(pods: &Api<Pod>, count: usize, app: &str) {
    for i in 0..count {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("{app}-{i}"), "labels": {"app": app}},
            "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "busybox:1"}]},
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        let status = json!({"status": {"phase": "Running",
                             "conditions": [{"type": "Ready", "status": "True"}]}});
        pods.patch_status(
            &format!("{app}-{i}"),
            &PatchParams::default(),
            &Patch::Merge(status),
        )
        .await
        .unwrap();
    }
}

async fn budget(server: &ApiServer, name: &str, app: &str, limits: Value) {
    let pdbs: Api<PodDisruptionBudget> = Api::default_namespaced(server.client());
    let mut spec = json!({"selector": {"matchLabels": {"app": app}}});
    spec.as_object_mut()
        .unwrap()
        .extend(limits.as_object().unwrap().clone());
    let pdb: PodDisruptionBudget =
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap();
    pdbs.create(&PostParams::default(), &pdb).await.unwrap();
}

/// Evicts every pod at once and returns how many evictions were allowed.
async fn evict_all_at_once(pods: &Api<Pod>, app: &str, count: usize) -> (usize, usize) {
    let evictions = (0..count).map(|i| {
        let pods = pods.clone();
        let name = format!("{app}-{i}");
        tokio::spawn(async move { pods.evict(&name, &EvictParams::default()).await })
    });
    let results = futures::future::join_all(evictions).await;
    let mut allowed = 0;
    let mut refused = 0;
    for result in results {
        match result.unwrap() {
            Ok(_) => allowed += 1,
            Err(error) => {
                assert_eq!(code(&error), 429);
                refused += 1;
            }
        }
    }
    (allowed, refused)
}

async fn allowed_evictions(limits: Value, count: usize) -> usize {
    let server = server().await;
    let pods: Api<Pod> = Api::default_namespaced(server.client());
    running_pods(&pods, count, "web").await;
    budget(&server, "web", "web", limits).await;

    let (allowed, refused) = evict_all_at_once(&pods, "web", count).await;

    assert_eq!(allowed + refused, count);
    allowed
}

#[tokio::test]
async fn min_available_as_a_number_allows_exactly_the_surplus() {
    assert_eq!(allowed_evictions(json!({"minAvailable": 2}), 3).await, 1);
}

#[tokio::test]
async fn max_unavailable_as_a_number_allows_exactly_that_many() {
    assert_eq!(allowed_evictions(json!({"maxUnavailable": 2}), 5).await, 2);
}

#[tokio::test]
async fn min_available_as_a_percentage_rounds_up() {
    assert_eq!(
        allowed_evictions(json!({"minAvailable": "50%"}), 5).await,
        2
    );
}

#[tokio::test]
async fn max_unavailable_as_a_percentage_rounds_up() {
    assert_eq!(
        allowed_evictions(json!({"maxUnavailable": "30%"}), 5).await,
        2
    );
}

#[tokio::test]
async fn a_pod_under_two_budgets_cannot_be_evicted() {
    let server = server().await;
    let pods: Api<Pod> = Api::default_namespaced(server.client());
    running_pods(&pods, 2, "db").await;
    budget(&server, "one", "db", json!({"minAvailable": 0})).await;
    budget(&server, "two", "db", json!({"maxUnavailable": 1})).await;

    let error = pods
        .evict("db-0", &EvictParams::default())
        .await
        .unwrap_err();

    assert_eq!(code(&error), 500);
}

#[tokio::test]
async fn an_evicted_pod_terminates_until_its_kubelet_confirms() {
    let server = server().await;
    let pods: Api<Pod> = Api::default_namespaced(server.client());
    running_pods(&pods, 2, "app").await;
    budget(&server, "app", "app", json!({"maxUnavailable": 1})).await;

    pods.evict("app-0", &EvictParams::default()).await.unwrap();

    let terminating = pods.get("app-0").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    let pdbs: Api<PodDisruptionBudget> = Api::default_namespaced(server.client());
    let status = pdbs.get("app").await.unwrap().status.unwrap();
    assert!(status.disrupted_pods.unwrap().contains_key("app-0"));
    assert_eq!(status.disruptions_allowed, 0);

    pods.delete(
        "app-0",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(pods.get_opt("app-0").await.unwrap().is_none());
}

#[tokio::test]
async fn pods_without_a_budget_are_evicted_and_pending_pods_ignore_budgets() {
    let server = server().await;
    let pods: Api<Pod> = Api::default_namespaced(server.client());
    running_pods(&pods, 1, "free").await;
    let pending: Pod = serde_json::from_value(json!({
        "metadata": {"name": "pending", "labels": {"app": "guarded"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pending).await.unwrap();
    budget(&server, "guarded", "guarded", json!({"minAvailable": 5})).await;

    pods.evict("free-0", &EvictParams::default()).await.unwrap();
    pods.evict("pending", &EvictParams::default())
        .await
        .unwrap();

    assert!(
        pods.get_opt("pending").await.unwrap().is_none(),
        "an unbound pod goes at once"
    );
}
