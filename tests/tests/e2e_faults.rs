//! End-to-end failures through the sandbox library: a target kubelet that never becomes healthy,
//! a wrong sha256, the operator killed mid-rollout, and a helper killed right after it staged the
//! new binary (journal step `Staged`, observed by polling the node's journal).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod e2e_support;

use std::collections::BTreeMap;

use e2e_support::{chain, config, kubelet_bytes, run, start, wait_node_upgrade};
use kube::Api;
use kubelift_crds::{KubeletUpgrade, NodePhase, NodeUpgrade, Stage};
use kubelift_node_helper::journal::{JournalStore, Step};
use kubelift_testbed::sandbox::summary::Summary;
use kubelift_testbed::sandbox::{PLAN, Sandbox};

async fn finish(sandbox: &Sandbox, before: &[kubelift_testbed::sandbox::PodRecord]) -> Summary {
    let started = tokio::time::Instant::now();
    match sandbox.finish(before, started).await {
        Ok(summary) => summary,
        Err(error) => panic!("the rollout ends: {}", chain(&error)),
    }
}

fn phase(upgrade: &NodeUpgrade) -> Option<NodePhase> {
    upgrade.status.as_ref().and_then(|s| s.phase)
}

/// `kubectl get ku -o wide` against the sandbox, with its own HOME (discovery cache).
fn kubectl_get_ku(sandbox: &Sandbox) -> Option<String> {
    if !std::path::Path::new("/usr/bin/kubectl").exists() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "kubectl is required in CI"
        );
        eprintln!("skipping the kubectl check: kubectl is not installed");
        return None;
    }
    let home = tempfile::tempdir().unwrap();
    let output = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(sandbox.kubeconfig())
        .args(["get", "ku", "-o", "wide"])
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn a_kubelet_that_never_becomes_healthy_is_rolled_back_and_halts_the_plan() {
    run(async {
        let mut config = config(3);
        config.never_healthy_node = Some(1);
        let mut sandbox = start(config).await;
        let original = kubelet_bytes(&mut sandbox, 1);
        let untouched = kubelet_bytes(&mut sandbox, 2);

        let summary = sandbox.run_rollout().await.unwrap();

        assert!(!summary.success(), "{summary:#?}");
        assert!(summary.phase.starts_with("Halted"), "{summary:#?}");
        let upgrades = Api::<NodeUpgrade>::all(sandbox.client());
        let failed = upgrades.get(&format!("{PLAN}-node-02")).await.unwrap();
        assert_eq!(phase(&failed), Some(NodePhase::RolledBack), "{failed:#?}");
        assert_eq!(
            kubelet_bytes(&mut sandbox, 1),
            original,
            "the original bytes are back"
        );
        assert_eq!(
            kubelet_bytes(&mut sandbox, 2),
            untouched,
            "the plan halted before node-03"
        );
        assert_eq!(summary.node_versions["node-02"], "v1.31.4");
        assert_eq!(summary.unexpected_restarts, 0);
        if let Some(table) = kubectl_get_ku(&sandbox) {
            assert!(table.contains("Halted"), "{table}");
            assert!(
                table.contains("node-02"),
                "the message names the node: {table}"
            );
        }
        sandbox.stop().await;
    });
}

#[test]
fn a_wrong_sha256_touches_no_node_and_sets_degraded() {
    run(async {
        let mut config = config(3);
        config.wrong_sha256 = true;
        let mut sandbox = start(config).await;
        let originals: Vec<Vec<u8>> = (0..3).map(|i| kubelet_bytes(&mut sandbox, i)).collect();

        let summary = sandbox.run_rollout().await.unwrap();

        assert!(!summary.success(), "{summary:#?}");
        assert_eq!(summary.nodes_upgraded, 0);
        for (index, original) in originals.iter().enumerate() {
            assert_eq!(
                &kubelet_bytes(&mut sandbox, index),
                original,
                "node {index} untouched"
            );
        }
        let plan = Api::<KubeletUpgrade>::all(sandbox.client())
            .get(PLAN)
            .await
            .unwrap();
        let conditions = plan.status.unwrap().conditions;
        let degraded = conditions
            .iter()
            .find(|c| c.type_ == "Degraded")
            .expect("Degraded");
        assert_eq!(degraded.status, "True", "{degraded:?}");
        assert!(degraded.message.contains("sha256"), "{degraded:?}");
        sandbox.stop().await;
    });
}

/// How many times each node's supervisor started a kubelet.
async fn kubelet_starts(sandbox: &mut Sandbox) -> BTreeMap<String, u64> {
    let mut starts = BTreeMap::new();
    for node in sandbox.nodes_mut() {
        let socket = node.supervisor_socket();
        let report = kubelift_testbed::supervisor::control(&socket, "status")
            .await
            .unwrap();
        starts.insert(node.name.clone(), report.starts);
    }
    starts
}

#[test]
fn an_operator_killed_mid_rollout_completes_without_upgrading_a_node_twice() {
    run(async {
        let mut sandbox = start(config(3)).await;
        let before = sandbox.record().await.unwrap();
        sandbox.apply_plan().await.unwrap();
        wait_node_upgrade(&sandbox.client(), |u| {
            u.spec.node_name == "node-02" && u.spec.stage == Stage::Execute
        })
        .await;

        sandbox.operator().unwrap().kill().await;
        sandbox.start_operator().unwrap();
        sandbox.wait_operator_ready().await.unwrap();
        let summary = finish(&sandbox, &before).await;

        assert!(summary.success(), "{summary:#?}");
        assert_eq!(summary.nodes_upgraded, 3);
        let deletes = sandbox
            .server()
            .requests()
            .into_iter()
            .filter(|r| r.resource == "nodeupgrades" && r.verb == "delete")
            .count();
        assert_eq!(deletes, 0, "no NodeUpgrade was deleted and made again");
        let upgrades = Api::<NodeUpgrade>::all(sandbox.client())
            .list(&kube::api::ListParams::default())
            .await;
        let upgrades = upgrades.unwrap().items;
        assert_eq!(upgrades.len(), 3);
        assert!(
            upgrades.iter().all(|u| u.spec.attempt == 1),
            "{upgrades:#?}"
        );
        let starts = kubelet_starts(&mut sandbox).await;
        assert!(
            starts.values().all(|n| *n == 2),
            "one kubelet restart per node: {starts:?}"
        );
        sandbox.stop().await;
    });
}

/// The step the newest journal of node `index` records, read as the helper reads it.
fn journaled_step(sandbox: &mut Sandbox, index: usize) -> Option<Step> {
    let dir = sandbox.nodes_mut()[index]
        .root()
        .join("var/lib/kubelift/journal");
    let journals = JournalStore::new(&dir).all().ok()?;
    journals
        .into_iter()
        .max_by_key(|j| j.attempt)
        .map(|j| j.step)
}

/// Hidden files (temporary writes, staged downloads) left in `dir`.
fn hidden_files(dir: &std::path::Path) -> Vec<String> {
    let entries = std::fs::read_dir(dir).unwrap().filter_map(Result::ok);
    let names = entries.map(|e| e.file_name().to_string_lossy().into_owned());
    names.filter(|name| name.starts_with('.')).collect()
}

/// Polls node `index`'s journal every 2 ms until it records `step` or later; returns what it saw.
async fn await_journaled(sandbox: &mut Sandbox, index: usize, step: Step) -> Step {
    let deadline = tokio::time::Instant::now() + e2e_support::PATIENCE;
    loop {
        match journaled_step(sandbox, index) {
            Some(seen) if seen >= step => return seen,
            _ if tokio::time::Instant::now() > deadline => panic!("{step:?} never journaled"),
            _ => tokio::time::sleep(std::time::Duration::from_millis(2)).await,
        }
    }
}

#[test]
fn a_helper_killed_right_after_staging_the_binary_converges() {
    run(async {
        let mut sandbox = start(config(2)).await;
        let original = kubelet_bytes(&mut sandbox, 0);
        let before = sandbox.record().await.unwrap();
        sandbox.apply_plan().await.unwrap();

        let seen = await_journaled(&mut sandbox, 0, Step::Staged).await;
        sandbox.nodes_mut()[0].helper().unwrap().kill().await;
        let bins = sandbox.config().bins.clone();
        let kubeconfig = sandbox.kubeconfig().to_owned();
        sandbox.nodes_mut()[0]
            .start_helper(&bins, &kubeconfig)
            .unwrap();
        let summary = finish(&sandbox, &before).await;

        assert!(
            matches!(seen, Step::Staged | Step::Installed | Step::Restarted),
            "killed mid-Install, not at {seen:?}"
        );
        assert!(summary.success(), "{summary:#?}");
        assert_eq!(summary.nodes_upgraded, 2);
        assert_eq!(summary.node_versions["node-01"], "v1.32.1");
        let target = std::fs::read(sandbox.dir().join("kubelets/kubelet-v1.32.1")).unwrap();
        assert_eq!(kubelet_bytes(&mut sandbox, 0), target);
        let backup = sandbox.nodes_mut()[0]
            .root()
            .join("usr/bin/kubelet.kubelift-backup-v1.31.4");
        assert_eq!(
            std::fs::read(backup).unwrap(),
            original,
            "one backup, of the original"
        );
        assert_eq!(journaled_step(&mut sandbox, 0), Some(Step::Succeeded));
        let root = sandbox.nodes_mut()[0].root();
        for dir in ["var/lib/kubelift/journal", "usr/bin"] {
            assert_eq!(
                hidden_files(&root.join(dir)),
                Vec::<String>::new(),
                "left in {dir}"
            );
        }
        assert_eq!(summary.restarts_observed, 0);
        let upgrade = Api::<NodeUpgrade>::all(sandbox.client())
            .get(&format!("{PLAN}-node-01"))
            .await
            .unwrap();
        assert_eq!(upgrade.spec.attempt, 1, "the same attempt resumed");
        sandbox.stop().await;
    });
}
