//! The operator against the embedded API server with scripted helpers that hold each node for a
//! while: concurrency is exactly `maxUnavailable` and never more, every request it makes is
//! granted by its RBAC, and an invalid plan is refused with every bad field named.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod operator_support;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use kubelift_crds::{NodePhase, NodeUpgrade, PlanPhase, Stage};
use kubelift_testbed::scripted_helper::{Script, ScriptedHelpers};
use operator_support::*;
use serde_json::json;

/// Nodes in Execute that have not finished, after each `NodeUpgrade` event, in server order.
fn in_flight(states: &BTreeMap<String, (Stage, Option<NodePhase>)>) -> usize {
    states
        .values()
        .filter(|(stage, phase)| {
            *stage == Stage::Execute && !phase.is_some_and(NodePhase::is_terminal)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_node_rollout_with_max_unavailable_three_keeps_exactly_three_in_flight() {
    let server = server().await;
    let client = server.client();
    nodes(&client, 10).await;
    let script = Script {
        hold: Duration::from_secs(2),
        ..Script::default()
    };
    let _helpers = ScriptedHelpers::start(
        server.client_with_user_agent("kubelift-node-helper/test"),
        script,
    );

    let api = Api::<NodeUpgrade>::all(client.clone());
    let peak = tokio::spawn(async move {
        let mut states = BTreeMap::new();
        let mut peak = 0;
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects();
        let mut events = std::pin::pin!(events);
        while let Some(Ok(nu)) = events.next().await {
            let phase = nu.status.as_ref().and_then(|s| s.phase);
            states.insert(nu.spec.node_name.clone(), (nu.spec.stage, phase));
            peak = peak.max(in_flight(&states));
            if states.len() == 10
                && states
                    .values()
                    .all(|(_, p)| *p == Some(NodePhase::Succeeded))
            {
                return peak;
            }
        }
        peak
    });

    let operator = operator(&server);
    create_plan(
        &client,
        plan(
            "wave",
            &json!({"maxUnavailable": 3, "canary": 1, "soakSeconds": 0}),
        ),
    )
    .await;
    let done = await_phase(&client, "wave", PlanPhase::Complete).await;
    let peak = tokio::time::timeout(PATIENCE, peak).await.unwrap().unwrap();
    operator.abort();

    assert_eq!(
        peak, 3,
        "exactly maxUnavailable nodes in flight at the peak"
    );
    let status = done.status.unwrap();
    assert_eq!(status.progress.as_deref(), Some("10/10"));

    let used = used(&server.requests(), OPERATOR_AGENT);
    let granted = granted();
    let missing: Vec<_> = used.difference(&granted).collect();
    assert!(
        missing.is_empty(),
        "requests not granted by manifests/rbac.yaml: {missing:?}"
    );
    let pods_watched = server
        .requests()
        .iter()
        .any(|r| r.user_agent == OPERATOR_AGENT && r.resource == "pods" && r.verb == "watch");
    assert!(
        !pods_watched,
        "the operator never watches pods cluster-wide"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_spec_stored_without_validation_is_refused_naming_every_bad_field() {
    let server = server().await;
    let client = server.client();
    nodes(&client, 2).await;
    let operator = operator(&server);

    let mut bad = plan("broken", &json!({"maxUnavailable": "0%"}));
    bad["spec"]["version"] = json!("latest");
    bad["spec"]["binary"]["sha256"] = json!("not-a-digest");
    create_plan(&client, bad).await;
    let refused = await_phase(&client, "broken", PlanPhase::Invalid).await;
    let event = tokio::time::timeout(PATIENCE, invalid_spec_event(&client)).await;
    operator.abort();

    let status = refused.status.unwrap();
    let valid = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Valid")
        .unwrap();
    assert_eq!(valid.status, "False");
    for field in [
        "spec.version",
        "spec.binary.sha256",
        "spec.rollout.maxUnavailable",
    ] {
        assert!(
            valid.message.contains(field),
            "{field} is not named in {:?}",
            valid.message
        );
    }
    let node_upgrades = Api::<NodeUpgrade>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        node_upgrades.items.is_empty(),
        "nothing is created for an invalid plan"
    );
    let note = event.expect("an InvalidSpec Event is recorded in time");
    assert!(
        note.contains("spec.version"),
        "the Event names the bad fields: {note}"
    );
}

/// The note of the first `InvalidSpec` Event, awaited through a watch.
async fn invalid_spec_event(client: &kube::Client) -> String {
    let events = watcher(
        Api::<Event>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects();
    let mut events = std::pin::pin!(events);
    while let Some(Ok(event)) = events.next().await {
        if event.reason.as_deref() == Some("InvalidSpec") {
            return event.note.unwrap_or_default();
        }
    }
    String::new()
}

#[test]
fn every_argument_in_the_operator_manifest_parses_with_the_operator_cli() {
    use clap::Parser;
    let text = std::fs::read_to_string(workspace().join("manifests/operator.yaml")).unwrap();
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let deployment = documents
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .unwrap();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let cli = kubelift_operator::cli::Cli::try_parse_from(
        std::iter::once("kubelift-operator".to_owned()).chain(args),
    );
    let cli = cli.unwrap_or_else(|e| panic!("operator.yaml arguments do not parse: {e}"));
    assert!(cli.leader_elect);
}
