//! The node helper's `execute` on a real containerd with stand-in kubelets served over loopback
//! HTTP: the snapshot lists exactly the running containers, a wrong digest leaves the node
//! untouched, a good artifact is swapped in with a backup kept, and a kubelet that never becomes
//! healthy is rolled back to the original bytes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on setup errors"
)]

use kubelet_hash::{HashOptions, KubeletVersion};
use kubelift_node_helper::journal::Step;
use kubelift_node_helper::snapshot;
use kubelift_testbed::artifact_server::ArtifactServer;
use kubelift_testbed::containerd::{ContainerSpec, Containerd, PodSpec, RunningPod};
use kubelift_testbed::helper_run::{run_execute, runtime_tools_present, work_order};
use kubelift_testbed::standin_kubelet::{SimulatedNode, sha256_hex, standin_kubelet};

const FROM: &str = "v1.31.2";
const TO: &str = "v1.32.0";

fn container(name: &str, image: &str, restart_count: u32) -> ContainerSpec {
    let json = serde_json::json!({ "name": name, "image": image }).to_string();
    let version: KubeletVersion = FROM.parse().unwrap();
    let hash = kubelet_hash::hash(&json, &version, &HashOptions::default()).unwrap();
    ContainerSpec {
        name: name.into(),
        image: image.into(),
        hash,
        restart_count,
    }
}

fn pods() -> Vec<PodSpec> {
    vec![
        PodSpec {
            namespace: "shop".into(),
            name: "web-0".into(),
            uid: "11111111-aaaa-4000-8000-000000000001".into(),
            containers: vec![
                container("app", "shop/web:2.1", 0),
                container("proxy", "envoy:1.30", 3),
            ],
        },
        PodSpec {
            namespace: "billing".into(),
            name: "ledger-0".into(),
            uid: "22222222-bbbb-4000-8000-000000000002".into(),
            containers: vec![container("ledger", "billing/ledger:7", 1)],
        },
    ]
}

struct Fixture {
    node: SimulatedNode,
    containerd: Containerd,
    running: Vec<RunningPod>,
    server: ArtifactServer,
}

async fn fixture(name: &str) -> Fixture {
    let node = SimulatedNode::new(name, FROM).unwrap();
    let mut containerd = Containerd::start(&node.path("containerd"), &node.cri_socket())
        .await
        .unwrap();
    let mut running = Vec::new();
    for pod in pods() {
        running.push(containerd.run_pod(&pod).await.unwrap());
    }
    node.restart_kubelet().unwrap();
    let server = ArtifactServer::start().await.unwrap();
    Fixture {
        node,
        containerd,
        running,
        server,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_lists_exactly_the_running_containers_with_their_hashes_and_restart_counts() {
    if !runtime_tools_present() {
        return;
    }
    let f = fixture("node-snap").await;
    let new = standin_kubelet(TO, true);
    let url = f.server.publish("kubelet", new.clone());
    let order = work_order(&f.node.name, "uid-snap", TO, &url, &sha256_hex(&new));

    let (code, journal) = run_execute(&f.node, &order, &pods()).unwrap();

    assert_eq!(
        (code, journal.step),
        (Some(0), Step::Succeeded),
        "{journal:?}"
    );
    let snap = snapshot::read(&f.node.snapshot_path()).unwrap().unwrap();
    let mut listed: Vec<(String, String, String, u32)> = snap
        .containers
        .iter()
        .map(|c| {
            (
                c.container.id.clone(),
                c.container.container_name.clone(),
                c.container.hash.clone(),
                c.container.restart_count,
            )
        })
        .collect();
    let mut created: Vec<(String, String, String, u32)> = f
        .running
        .iter()
        .flat_map(|pod| {
            pod.containers.iter().map(|c| {
                let spec = pod
                    .spec
                    .containers
                    .iter()
                    .find(|s| s.name == c.name)
                    .unwrap();
                (
                    c.id.clone(),
                    c.name.clone(),
                    spec.hash.clone(),
                    c.restart_count,
                )
            })
        })
        .collect();
    listed.sort();
    created.sort();
    assert_eq!(listed, created);
    assert!(
        snap.containers
            .iter()
            .all(|c| c.verdict == kubelift_crds::Verdict::Preserved)
    );
    assert_eq!(
        (
            snap.kubelet_version_before.as_str(),
            snap.kubelet_version_after.as_str()
        ),
        (FROM, TO)
    );
    f.containerd.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_digest_fails_the_node_and_leaves_the_kubelet_untouched() {
    if !runtime_tools_present() {
        return;
    }
    let f = fixture("node-digest").await;
    let original = std::fs::read(f.node.kubelet_path()).unwrap();
    let pid_before = f.node.kubelet_pid();
    let url = f.server.publish("kubelet", standin_kubelet(TO, true));
    let declared = sha256_hex(b"some other binary");
    let order = work_order(&f.node.name, "uid-digest", TO, &url, &declared);

    let (code, journal) = run_execute(&f.node, &order, &pods()).unwrap();

    assert_eq!((code, journal.step), (Some(1), Step::Failed));
    let failure = journal.failure.unwrap();
    assert_eq!(failure.reason, "ChecksumMismatch");
    assert!(failure.message.contains(&declared), "{}", failure.message);
    assert!(
        failure
            .message
            .contains(&sha256_hex(&standin_kubelet(TO, true))),
        "{}",
        failure.message
    );
    assert_eq!(std::fs::read(f.node.kubelet_path()).unwrap(), original);
    assert_eq!(
        f.node.kubelet_pid(),
        pid_before,
        "the kubelet must not be restarted"
    );
    let leftovers: Vec<String> = std::fs::read_dir(f.node.path("usr/bin"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, vec!["kubelet".to_owned()]);
    f.containerd.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_artifact_is_swapped_in_with_the_previous_kubelet_kept_as_backup() {
    if !runtime_tools_present() {
        return;
    }
    let f = fixture("node-good").await;
    let original = std::fs::read(f.node.kubelet_path()).unwrap();
    let new = standin_kubelet(TO, true);
    let url = f.server.publish("kubelet", new.clone());
    f.server.fail_next("kubelet", 2);
    let order = work_order(&f.node.name, "uid-good", TO, &url, &sha256_hex(&new));

    let (code, journal) = run_execute(&f.node, &order, &pods()).unwrap();

    assert_eq!(
        (code, journal.step),
        (Some(0), Step::Succeeded),
        "{journal:?}"
    );
    assert_eq!(std::fs::read(f.node.kubelet_path()).unwrap(), new);
    let backup = f
        .node
        .path(&format!("usr/bin/kubelet.kubelift-backup-{FROM}"));
    assert_eq!(std::fs::read(backup).unwrap(), original);
    assert_eq!(
        f.server.requests("kubelet"),
        3,
        "two failed downloads are retried"
    );
    assert!(journal.restarts.is_empty(), "{:?}", journal.restarts);
    f.containerd.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubelet_that_never_becomes_healthy_is_rolled_back_to_the_original_bytes() {
    if !runtime_tools_present() {
        return;
    }
    let f = fixture("node-sick").await;
    let original = std::fs::read(f.node.kubelet_path()).unwrap();
    let broken = standin_kubelet(TO, false);
    let url = f.server.publish("kubelet", broken.clone());
    let mut order = work_order(&f.node.name, "uid-sick", TO, &url, &sha256_hex(&broken));
    order.spec.verify.ready_timeout_seconds = 5;

    let (code, journal) = run_execute(&f.node, &order, &pods()).unwrap();

    assert_eq!(
        (code, journal.step),
        (Some(1), Step::RolledBack),
        "{journal:?}"
    );
    assert_eq!(journal.failure.unwrap().reason, "KubeletNotReady");
    assert_eq!(std::fs::read(f.node.kubelet_path()).unwrap(), original);
    f.containerd.shutdown().await;
}
