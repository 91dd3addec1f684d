//! The real `kubelift-operator` binary, killed mid-rollout and started again, resumes where it
//! stopped: every `NodeUpgrade` is created once (one uid per name) and sent to Execute once (one
//! spec change after creation). Needs `cargo build -p kubelift-operator --bins` first.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod operator_support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kubelift_crds::{NodePhase, NodeUpgrade, PlanPhase, Stage};
use kubelift_testbed::scripted_helper::{Script, ScriptedHelpers};
use operator_support::*;
use serde_json::json;

fn start_operator(kubeconfig: &std::path::Path) -> Child {
    let binary = workspace().join("target/debug/kubelift-operator");
    assert!(
        binary.exists(),
        "build it first: cargo build -p kubelift-operator --bins"
    );
    Command::new(binary)
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--metrics-port",
            "0",
        ])
        .args(["--log-format", "text"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("operator starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_operator_resumes_creating_and_executing_each_node_once() {
    let server = server().await;
    let client = server.client();
    nodes(&client, 6).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let script = Script {
        hold: Duration::from_secs(2),
        ..Script::default()
    };
    let _helpers = ScriptedHelpers::start(
        server.client_with_user_agent("kubelift-node-helper/test"),
        script,
    );

    let (succeeded_tx, mut succeeded_rx) = tokio::sync::watch::channel(0usize);
    let api = Api::<NodeUpgrade>::all(client.clone());
    let history = tokio::spawn(async move {
        let mut uids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut executes: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
        let mut done = BTreeSet::new();
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects();
        let mut events = std::pin::pin!(events);
        while let Some(Ok(nu)) = events.next().await {
            let name = nu.metadata.name.clone().unwrap();
            uids.entry(name.clone())
                .or_default()
                .insert(nu.metadata.uid.clone().unwrap());
            if nu.spec.stage == Stage::Execute {
                executes
                    .entry(name.clone())
                    .or_default()
                    .insert(nu.metadata.generation.unwrap());
            }
            if nu.status.as_ref().and_then(|s| s.phase) == Some(NodePhase::Succeeded) {
                done.insert(name);
                let _ = succeeded_tx.send(done.len());
            }
            if done.len() == 6 {
                break;
            }
        }
        (uids, executes)
    });

    let mut operator = start_operator(&kubeconfig);
    create_plan(
        &client,
        plan(
            "resume",
            &json!({"maxUnavailable": 2, "canary": 1, "soakSeconds": 0}),
        ),
    )
    .await;
    let two_done = tokio::time::timeout(PATIENCE, succeeded_rx.wait_for(|n| *n >= 2)).await;
    two_done
        .expect("two nodes finish in time")
        .expect("history runs");
    operator.kill().expect("operator is killed by its PID");
    operator.wait().unwrap();

    let mut operator = start_operator(&kubeconfig);
    let done = await_phase(&client, "resume", PlanPhase::Complete).await;
    operator.kill().unwrap();
    operator.wait().unwrap();

    assert_eq!(done.status.unwrap().progress.as_deref(), Some("6/6"));
    let (uids, executes) = tokio::time::timeout(PATIENCE, history)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(uids.len(), 6);
    assert!(
        uids.values().all(|u| u.len() == 1),
        "each NodeUpgrade was created once: {uids:?}"
    );
    assert!(
        executes.values().all(|g| g.len() == 1),
        "each went to Execute once: {executes:?}"
    );
    let agent = kubelift_operator::cli::USER_AGENT;
    let creations: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.user_agent == agent && r.resource == "nodeupgrades")
        .filter(|r| r.verb == "patch" && r.subresource.is_none() && r.code == 201)
        .filter_map(|r| r.name)
        .collect();
    let distinct: BTreeSet<&String> = creations.iter().collect();
    assert_eq!(
        (creations.len(), distinct.len()),
        (6, 6),
        "the request log shows each NodeUpgrade created (201) exactly once: {creations:?}"
    );
}
