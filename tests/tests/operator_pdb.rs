//! A disruption budget that forbids an eviction the container policy needs: the plan's message
//! names the budget and the pod, `kubectl get ku -o wide` shows it in the MESSAGE column, and once
//! the budget is gone the operator's retry evicts the pod and the node is upgraded. A missing
//! kubectl skips the test, except under `CI=true` where it fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod kubectl_support;
mod operator_support;

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use kubectl_support::Kubectl;
use kubelift_crds::{ContainerVerdict, KubeletUpgrade, NodePhase, NodeUpgrade, PlanPhase, Verdict};
use kubelift_testbed::scripted_helper::{Script, ScriptedHelpers};
use operator_support::*;
use serde_json::json;

const PLAN: &str = "guarded";
const POD: &str = "default/web-0";
const BUDGET: &str = "default/web-pdb";

/// A Running, Ready pod `web-0` on `node`, and a budget that allows it no disruption.
async fn guarded_pod(client: &Client, node: &str) -> Pod {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = json!({
        "metadata": {"name": "web-0", "labels": {"app": "web"}},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "busybox:1"}]},
    });
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(pod).unwrap(),
    )
    .await
    .unwrap();
    let ready = json!({"status": {"phase": "Running",
                                  "conditions": [{"type": "Ready", "status": "True"}]}});
    let pod = pods
        .patch_status("web-0", &PatchParams::default(), &Patch::Merge(ready))
        .await
        .unwrap();
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    let pdb = json!({"metadata": {"name": "web-pdb"},
                     "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}});
    pdbs.create(
        &PostParams::default(),
        &serde_json::from_value(pdb).unwrap(),
    )
    .await
    .unwrap();
    pod
}

/// The helpers' prediction: the pod's one container would restart under the new kubelet.
fn restarting(node: &str, pod: &Pod) -> BTreeMap<String, Vec<ContainerVerdict>> {
    let verdict = ContainerVerdict {
        pod_namespace: "default".to_owned(),
        pod_name: pod.name_any(),
        pod_uid: pod.uid().unwrap(),
        container: "app".to_owned(),
        verdict: Verdict::WillRestart,
        stored_hash: None,
        current_hash: None,
        target_hash: None,
        not_evictable: false,
    };
    BTreeMap::from([(node.to_owned(), vec![verdict])])
}

/// Plays the node's kubelet: confirms every graceful pod deletion at once.
fn confirm_terminations(client: Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let pods: Api<Pod> = Api::all(client.clone());
        let stream = watcher(pods, watcher::Config::default())
            .default_backoff()
            .applied_objects();
        let mut stream = std::pin::pin!(stream);
        while let Some(Ok(pod)) = stream.next().await {
            if pod.metadata.deletion_timestamp.is_some() {
                let namespaced: Api<Pod> =
                    Api::namespaced(client.clone(), &pod.namespace().unwrap());
                let now = DeleteParams {
                    grace_period_seconds: Some(0),
                    ..DeleteParams::default()
                };
                let _gone = namespaced.delete(&pod.name_any(), &now).await;
            }
        }
    })
}

/// Wait until the plan's message names both the budget and the pod; returns the message.
async fn await_blocked_message(client: &Client) -> String {
    let api = Api::<KubeletUpgrade>::all(client.clone());
    let names_both = |plan: Option<&KubeletUpgrade>| {
        plan.and_then(|p| p.status.as_ref())
            .and_then(|s| s.message.as_deref())
            .is_some_and(|m| m.contains(BUDGET) && m.contains(POD))
    };
    let waited = tokio::time::timeout(PATIENCE, await_condition(api.clone(), PLAN, names_both));
    let Ok(plan) = waited.await else {
        let status = api.get(PLAN).await.map(|p| p.status);
        panic!("the message never named the budget and the pod: {status:?}");
    };
    let plan = plan.expect("watch works").expect("plan exists");
    plan.status.unwrap().message.unwrap()
}

/// The MESSAGE column of the plan's row in `kubectl get ku -o wide`.
fn message_column(table: &str) -> String {
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    let column = header.find("MESSAGE").expect("a MESSAGE column");
    let row = lines
        .find(|l| l.starts_with(PLAN))
        .expect("a row for the plan");
    row.get(column..).unwrap_or_default().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdb_blocked_eviction_is_named_in_kubectl_wide_and_retried_once_the_budget_goes() {
    let server = server().await;
    let Some(kubectl) = Kubectl::for_server(&server) else {
        return;
    };
    let client = server.client();
    let names = nodes(&client, 3).await;
    let pod = guarded_pod(&client, &names[0]).await;
    let script = Script {
        restarting: restarting(&names[0], &pod),
        ..Script::default()
    };
    let _helpers = ScriptedHelpers::start(
        server.client_with_user_agent("kubelift-node-helper/test"),
        script,
    );
    let kubelet = confirm_terminations(client.clone());
    let operator = operator(&server);
    let mut spec = plan(
        PLAN,
        &json!({"maxUnavailable": 1, "canary": 1, "soakSeconds": 0}),
    );
    spec["spec"]["containers"] = json!({"policy": "EvictIfRestart"});
    spec["spec"]["drain"] = json!({"timeoutSeconds": 3600, "onTimeout": "Fail"});
    create_plan(&client, spec).await;

    let message = await_blocked_message(&client).await;
    let wide = kubectl.run(&["get", "ku", "-o", "wide"]).await;
    let column = message_column(&wide);
    assert!(
        column.contains(BUDGET) && column.contains(POD),
        "the MESSAGE column names the budget and the pod: {column:?} (message {message:?})\n{wide}"
    );

    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    pdbs.delete("web-pdb", &DeleteParams::default())
        .await
        .unwrap();
    let done = await_phase(&client, PLAN, PlanPhase::Complete).await;
    operator.abort();
    kubelet.abort();

    let status = done.status.unwrap();
    assert_eq!(status.progress.as_deref(), Some("3/3"));
    assert!(
        !status.message.unwrap_or_default().contains(BUDGET),
        "the budget is no longer named once the node moved on"
    );
    let first = Api::<NodeUpgrade>::all(client.clone())
        .list(&kube::api::ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|nu| nu.spec.node_name == names[0])
        .expect("the guarded node has a NodeUpgrade");
    assert_eq!(
        first.status.and_then(|s| s.phase),
        Some(NodePhase::Succeeded),
        "the guarded node was upgraded after its pod left"
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    assert!(
        pods.get_opt("web-0").await.unwrap().is_none(),
        "the pod was evicted"
    );
    let evictions: Vec<u16> = server
        .requests()
        .iter()
        .filter(|r| r.user_agent == OPERATOR_AGENT && r.subresource.as_deref() == Some("eviction"))
        .map(|r| r.code)
        .collect();
    assert!(
        evictions.first() == Some(&429) && evictions.contains(&201),
        "refused first, then retried until allowed: {evictions:?}"
    );
}
