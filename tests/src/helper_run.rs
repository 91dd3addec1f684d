//! Running the real `kubelift-node-helper` binary against a simulated node: work orders (a
//! `NodeUpgrade` as the operator would write it), the node's pods as the API server would serve
//! them, and the `execute` command's final journal.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use kubelift_crds::{BinaryArtifact, NodeUpgrade, NodeUpgradeSpec, Stage, VerifySpec};
use kubelift_node_helper::journal::Journal;

use crate::containerd::PodSpec;
use crate::standin_kubelet::{SimulatedNode, helper_binary};

/// Failures of running the helper.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The helper binary is not built.
    #[error("failed to find {0}: run `cargo build --workspace --bins` first")]
    NotBuilt(PathBuf),
    /// A file or process operation failed.
    #[error("failed to run the helper")]
    Io(#[from] std::io::Error),
    /// Output was not JSON.
    #[error("failed to parse the helper's output")]
    Json(#[from] serde_json::Error),
}

/// A `NodeUpgrade` for `node` to `version` from `url` with digest `sha256`, stage `Execute`.
#[must_use]
pub fn work_order(node: &str, uid: &str, version: &str, url: &str, sha256: &str) -> NodeUpgrade {
    let spec = NodeUpgradeSpec {
        node_name: node.to_owned(),
        plan: "plan".to_owned(),
        version: version.to_owned(),
        binary: BinaryArtifact {
            url: Some(url.to_owned()),
            path: None,
            sha256: sha256.to_owned(),
        },
        stage: Stage::Execute,
        hold_reason: None,
        attempt: 1,
        containers: kubelift_crds::ContainersSpec::default(),
        verify: VerifySpec {
            ready_timeout_seconds: 60,
            settle_seconds: 2,
            ..VerifySpec::default()
        },
        rollback: true,
    };
    let mut upgrade = NodeUpgrade::new(&format!("plan-{node}"), spec);
    upgrade.metadata.uid = Some(uid.to_owned());
    upgrade
}

/// Writes the work order and a `PodList` of `pods` into the node's root; returns their paths.
pub fn write_inputs(
    node: &SimulatedNode,
    order: &NodeUpgrade,
    pods: &[PodSpec],
) -> Result<(PathBuf, PathBuf), RunError> {
    let order_path = node.path("work-order.json");
    std::fs::write(&order_path, serde_json::to_vec(order)?)?;
    let items: Vec<serde_json::Value> = pods.iter().map(|p| p.api_json(&node.name)).collect();
    let list = serde_json::json!({ "apiVersion": "v1", "kind": "PodList", "items": items });
    let pods_path = node.path("pods.json");
    std::fs::write(&pods_path, serde_json::to_vec(&list)?)?;
    Ok((order_path, pods_path))
}

/// Starts `kubelift-node-helper execute` for the node with the given inputs.
pub fn spawn_execute(node: &SimulatedNode, order: &Path, pods: &Path) -> Result<Child, RunError> {
    let binary = helper_binary();
    if !binary.exists() {
        return Err(RunError::NotBuilt(binary));
    }
    let child = Command::new(binary)
        .arg("execute")
        .args(node.helper_args())
        .arg("--work-order")
        .arg(order)
        .arg("--pods-file")
        .arg(pods)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    Ok(child)
}

/// Runs `execute` to its end; returns the exit code and the final journal it printed.
pub fn run_execute(
    node: &SimulatedNode,
    order: &NodeUpgrade,
    pods: &[PodSpec],
) -> Result<(Option<i32>, Journal), RunError> {
    let (order_path, pods_path) = write_inputs(node, order, pods)?;
    let output = spawn_execute(node, &order_path, &pods_path)?.wait_with_output()?;
    let journal = serde_json::from_slice(&output.stdout)?;
    Ok((output.status.code(), journal))
}

/// Whether the real-runtime tools are installed; when they are not, tests skip, except in CI
/// (`CI=true`), where a missing tool fails the run.
#[must_use]
pub fn runtime_tools_present() -> bool {
    let present = crate::containerd::Containerd::available();
    assert!(
        present || std::env::var("CI").as_deref() != Ok("true"),
        "containerd, runc, ctr and busybox-static are required in CI"
    );
    if !present {
        eprintln!("skipping: containerd, runc, ctr or busybox-static is not installed");
    }
    present
}

/// Starts `kubelift-node-helper agent` for the node against the API server in `kubeconfig`,
/// serving `/healthz` and `/metrics` on `metrics_port` of 127.0.0.1.
pub fn spawn_agent(
    node: &SimulatedNode,
    kubeconfig: &Path,
    metrics_port: u16,
) -> Result<Child, RunError> {
    let binary = helper_binary();
    if !binary.exists() {
        return Err(RunError::NotBuilt(binary));
    }
    let child = Command::new(binary)
        .arg("agent")
        .args(node.helper_args())
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg(format!("--metrics-port={metrics_port}"))
        .arg("--metrics-address=127.0.0.1")
        .arg("--heartbeat-seconds=2")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()?;
    Ok(child)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
