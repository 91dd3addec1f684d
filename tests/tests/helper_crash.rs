//! Crash safety of the node helper: the test watches the journal, SIGKILLs the helper (by PID)
//! right after each step is recorded in turn, starts it again, and checks that it converges to the
//! same end state as an uninterrupted run — while a sampler reading the kubelet path throughout
//! only ever sees the old or the new bytes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on setup errors"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kubelet_hash::{HashOptions, KubeletVersion};
use kubelift_node_helper::journal::{Journal, Step};
use kubelift_testbed::artifact_server::ArtifactServer;
use kubelift_testbed::containerd::{ContainerSpec, Containerd, PodSpec};
use kubelift_testbed::helper_run::{
    runtime_tools_present, spawn_execute, work_order, write_inputs,
};
use kubelift_testbed::standin_kubelet::{SimulatedNode, sha256_hex, standin_kubelet};

const FROM: &str = "v1.31.2";
const TO: &str = "v1.32.0";

fn pod() -> PodSpec {
    let json = serde_json::json!({ "name": "app", "image": "shop/web:2.1" }).to_string();
    let version: KubeletVersion = FROM.parse().unwrap();
    let hash = kubelet_hash::hash(&json, &version, &HashOptions::default()).unwrap();
    PodSpec {
        namespace: "shop".into(),
        name: "web-0".into(),
        uid: "33333333-cccc-4000-8000-000000000003".into(),
        containers: vec![ContainerSpec {
            name: "app".into(),
            image: "shop/web:2.1".into(),
            hash,
            restart_count: 0,
        }],
    }
}

fn read_journal(path: &std::path::Path) -> Option<Journal> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Samples the kubelet path until stopped; returns (samples, samples that were neither version).
fn sample_kubelet(
    path: std::path::PathBuf,
    old: Vec<u8>,
    new: Vec<u8>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(usize, usize)> {
    std::thread::spawn(move || {
        let (mut samples, mut torn) = (0, 0);
        while !stop.load(Ordering::Relaxed) {
            if let Ok(bytes) = std::fs::read(&path) {
                samples += 1;
                torn += usize::from(bytes != old && bytes != new);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        (samples, torn)
    })
}

/// What a run interrupted after each of some steps ended with.
struct CrashRun {
    node: SimulatedNode,
    old: Vec<u8>,
    killed_at: Vec<Step>,
    journal: Journal,
    samples: usize,
    torn: usize,
}

/// Runs `execute` with `artifact`, killing the helper (SIGKILL) right after each of `steps` is
/// recorded in the journal, then lets a last run finish, sampling the kubelet path throughout.
async fn crash_after_each(
    name: &str,
    artifact: Vec<u8>,
    ready_timeout: i64,
    steps: &[Step],
) -> CrashRun {
    let node = SimulatedNode::new(name, FROM).unwrap();
    let mut containerd = Containerd::start(&node.path("containerd"), &node.cri_socket())
        .await
        .unwrap();
    containerd.run_pod(&pod()).await.unwrap();
    node.restart_kubelet().unwrap();
    let server = ArtifactServer::start().await.unwrap();
    let old = std::fs::read(node.kubelet_path()).unwrap();
    let url = server.publish("kubelet", artifact.clone());
    let mut order = work_order(&node.name, "uid-crash", TO, &url, &sha256_hex(&artifact));
    order.spec.verify.ready_timeout_seconds = ready_timeout;
    let (order_path, pods_path) = write_inputs(&node, &order, &[pod()]).unwrap();
    let journal_path = node.journal_dir().join("uid-crash-1.json");
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_kubelet(node.kubelet_path(), old.clone(), artifact, stop.clone());

    let mut killed_at = Vec::new();
    for &step in steps {
        let mut child = spawn_execute(&node, &order_path, &pods_path).unwrap();
        let seen = loop {
            if let Some(journal) = read_journal(&journal_path).filter(|j| j.step >= step) {
                break journal.step;
            }
            if child.try_wait().unwrap().is_some() {
                break Step::Succeeded;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        child.wait().unwrap();
        killed_at.push(seen);
    }
    eprintln!("killed the helper right after {killed_at:?} were recorded");
    let last = spawn_execute(&node, &order_path, &pods_path).unwrap();
    let finished = tokio::task::spawn_blocking(move || last.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    let (sample_count, torn) = sampler.join().unwrap();
    containerd.shutdown().await;
    let journal: Journal = serde_json::from_slice(&finished.stdout).unwrap();
    CrashRun {
        node,
        old,
        killed_at,
        journal,
        samples: sample_count,
        torn,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helper_killed_after_each_step_converges_to_the_same_end_state() {
    if !runtime_tools_present() {
        return;
    }
    let new = standin_kubelet(TO, true);
    let steps = [
        Step::Started,
        Step::Snapshotted,
        Step::Staged,
        Step::Installed,
        Step::Restarted,
    ];

    let run = crash_after_each("node-crash", new.clone(), 60, &steps).await;

    assert_eq!(
        run.journal.step,
        Step::Succeeded,
        "killed at {:?}: {:?}",
        run.killed_at,
        run.journal
    );
    assert_eq!(std::fs::read(run.node.kubelet_path()).unwrap(), new);
    let backup = run
        .node
        .path(&format!("usr/bin/kubelet.kubelift-backup-{FROM}"));
    assert_eq!(std::fs::read(backup).unwrap(), run.old);
    assert!(
        run.journal.restarts.is_empty(),
        "{:?}",
        run.journal.restarts
    );
    assert!(run.samples > 0);
    assert_eq!(
        run.torn, 0,
        "the kubelet path held neither the old nor the new bytes"
    );
    let recorded: Vec<Step> = run.journal.history.iter().map(|r| r.step).collect();
    for step in [
        Step::Snapshotted,
        Step::Staged,
        Step::Installed,
        Step::Restarted,
        Step::Succeeded,
    ] {
        assert!(
            recorded.contains(&step),
            "{step:?} missing from {recorded:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helper_killed_during_a_rollback_still_restores_the_original_bytes() {
    if !runtime_tools_present() {
        return;
    }
    let broken = standin_kubelet(TO, false);
    let steps = [
        Step::Installed,
        Step::RollingBack,
        Step::Restored,
        Step::RestartedPrevious,
    ];

    let run = crash_after_each("node-crash-back", broken, 3, &steps).await;

    assert_eq!(
        run.journal.step,
        Step::RolledBack,
        "killed at {:?}: {:?}",
        run.killed_at,
        run.journal
    );
    assert_eq!(
        run.journal.failure.as_ref().unwrap().reason,
        "KubeletNotReady"
    );
    assert_eq!(std::fs::read(run.node.kubelet_path()).unwrap(), run.old);
    assert!(run.samples > 0);
    assert_eq!(
        run.torn, 0,
        "the kubelet path held neither the old nor the new bytes"
    );
}
