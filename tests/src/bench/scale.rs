//! The scale benchmark (DESIGN §5 footprint): the embedded API server filled with a large fleet
//! ([`super::fleet`]; no kubelets, no helpers), then the real `kubelift-operator` started against
//! it with a `KubeletUpgrade` over every node (`maxUnavailable: 10%`, no canary, so it plans the
//! whole fleet and starts a full batch, which then waits for helpers that never come). Once its
//! caches are synced and it has acted (the batch's `NodeUpgrade`s exist and the plan's status is
//! written), it reports the operator's peak memory, CPU time and requests. The operator is
//! stopped by its PID before this returns.

use std::path::Path;
use std::time::{Duration, Instant};

use kube::api::ListParams;
use kube::{Api, Client};
use kubelift_crds::{KubeletUpgrade, NodeUpgrade};
use serde::Serialize;
use serde_json::json;
use tokio::process::Command;

use super::fleet;
use super::traffic::{self, OPERATOR_AGENT, Traffic};
use super::{BenchError, procfs, timing};
use crate::apiserver::{ApiServer, ApiServerConfig};
use crate::sandbox::{Binaries, Process, apply_crds, create_plan};

/// The plan the benchmark applies.
const PLAN: &str = "scale";

/// `rollout.maxUnavailable` of the plan, in percent.
const MAX_UNAVAILABLE_PERCENT: usize = 10;

/// How long the operator may take to sync and act.
const PATIENCE: Duration = Duration::from_secs(600);

/// How often the benchmark looks whether the operator has acted.
const POLL: Duration = Duration::from_millis(500);

/// What to run.
#[derive(Debug, Clone)]
pub struct ScaleSpec {
    /// Nodes in the fleet.
    pub nodes: usize,
    /// Pods, bound round-robin to the nodes.
    pub pods: usize,
    /// How long the operator keeps running after it acted, before it is measured.
    pub linger: Duration,
    /// Where the operator binary is.
    pub bins: Binaries,
}

/// Everything the scale benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleReport {
    /// Nodes in the fleet.
    pub nodes: usize,
    /// Pods in the fleet.
    pub pods: usize,
    /// One stored Node as served, bytes.
    pub node_bytes: usize,
    /// One stored Pod as served, bytes.
    pub pod_bytes: usize,
    /// Time to fill the API server, seconds.
    pub fill_seconds: f64,
    /// Operator started → batch created and status written, seconds.
    pub acted_seconds: f64,
    /// `NodeUpgrade`s the operator created.
    pub node_upgrades: usize,
    /// The operator's peak resident memory (`VmHWM`), MiB.
    pub operator_peak_rss_mib: f64,
    /// Its resident memory at the end, MiB.
    pub operator_rss_mib: f64,
    /// Its CPU time, seconds.
    pub operator_cpu_seconds: f64,
    /// Its requests.
    pub operator_requests: Traffic,
    /// Cluster-wide pod watches it opened.
    pub operator_cluster_pod_watches: usize,
    /// Load averages at the end (1, 5, 15 min).
    pub load_average: String,
}

/// Runs the benchmark on a fresh API server.
pub async fn run(spec: &ScaleSpec) -> Result<ScaleReport, BenchError> {
    spec.bins.check()?;
    let server = ApiServer::start(ApiServerConfig::default()).await?;
    let measured = measure(&server, spec).await;
    server.shutdown().await?;
    measured
}

async fn measure(server: &ApiServer, spec: &ScaleSpec) -> Result<ScaleReport, BenchError> {
    apply_crds(&server.in_process_client()).await?;
    let filled = fleet::fill(server, spec.nodes, spec.pods).await?;
    tracing::info!(elapsed = ?filled.elapsed, "fleet filled");
    server.clear_requests();
    let dir = tempfile::Builder::new()
        .prefix("kubelift-bench-scale-")
        .tempdir()
        .map_err(BenchError::io("create a temporary directory"))?;
    apply_plan(&server.in_process_client()).await?;
    let mut operator = spawn_operator(server, &spec.bins, dir.path())?;
    let started = Instant::now();
    let acted = wait_acted(&server.in_process_client(), spec.nodes, &mut operator).await;
    let acted_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(spec.linger).await;
    let pid = operator.pid();
    let memory = pid.and_then(procfs::memory).unwrap_or_default();
    let cpu = pid.and_then(procfs::cpu_time).unwrap_or_default();
    operator.stop().await;
    let node_upgrades = acted?;
    let requests = server.requests();
    Ok(ScaleReport {
        nodes: filled.nodes,
        pods: filled.pods,
        node_bytes: filled.node_bytes,
        pod_bytes: filled.pod_bytes,
        fill_seconds: filled.elapsed.as_secs_f64(),
        acted_seconds,
        node_upgrades,
        operator_peak_rss_mib: memory.hwm_mib(),
        operator_rss_mib: memory.rss_mib(),
        operator_cpu_seconds: cpu.as_secs_f64(),
        operator_requests: traffic::traffic(&requests, OPERATOR_AGENT),
        operator_cluster_pod_watches: traffic::cluster_pod_watches(&requests, OPERATOR_AGENT),
        load_average: super::load_average(),
    })
}

/// The plan: every node, `maxUnavailable: 10%`, no canary, `Preserve`.
async fn apply_plan(client: &Client) -> Result<(), BenchError> {
    let plan = json!({
        "apiVersion": "kubelift.dev/v1alpha1",
        "kind": "KubeletUpgrade",
        "metadata": {"name": PLAN},
        "spec": {
            "version": "v1.32.1",
            "binary": {
                "url": "http://127.0.0.1:9/kubelet-v1.32.1",
                "sha256": "0".repeat(64),
            },
            "rollout": {
                "maxUnavailable": format!("{MAX_UNAVAILABLE_PERCENT}%"),
                "canary": 0,
                "soakSeconds": 0,
            },
            "containers": {"policy": "Preserve"},
        },
    });
    Ok(create_plan(client, plan).await?)
}

fn spawn_operator(server: &ApiServer, bins: &Binaries, dir: &Path) -> Result<Process, BenchError> {
    let kubeconfig = dir.join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig)
        .map_err(BenchError::io("write the kubeconfig"))?;
    let mut command = Command::new(&bins.operator);
    command
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--metrics-port", "0", "--metrics-address", "127.0.0.1"])
        .args(["--log-format", "text"])
        .env("RUST_LOG", "info");
    Ok(Process::spawn(
        "operator",
        command,
        &dir.join("operator.log"),
    )?)
}

/// Waits until the operator has created the first batch and written the plan's status; returns
/// how many `NodeUpgrade`s exist then.
async fn wait_acted(
    client: &Client,
    nodes: usize,
    operator: &mut Process,
) -> Result<usize, BenchError> {
    let expected = timing::per_batch(nodes, MAX_UNAVAILABLE_PERCENT);
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline && !operator.exited() {
        let created = count_node_upgrades(client).await?;
        if created >= expected && status_written(client).await? {
            return Ok(created);
        }
        tokio::time::sleep(POLL).await;
    }
    Err(BenchError::Timeout {
        what: format!(
            "the operator to create {expected} NodeUpgrades (see {})",
            operator.log().display()
        ),
    })
}

async fn count_node_upgrades(client: &Client) -> Result<usize, BenchError> {
    let api: Api<NodeUpgrade> = Api::all(client.clone());
    let listed = api
        .list_metadata(&ListParams::default())
        .await
        .map_err(BenchError::api("list nodeupgrades"))?;
    Ok(listed.items.len())
}

async fn status_written(client: &Client) -> Result<bool, BenchError> {
    let api: Api<KubeletUpgrade> = Api::all(client.clone());
    let plan = api
        .get(PLAN)
        .await
        .map_err(BenchError::api("get the plan"))?;
    let observed = plan.status.as_ref().and_then(|s| s.observed_generation);
    Ok(observed.is_some() && observed == plan.metadata.generation)
}

/// The human summary block.
#[must_use]
pub fn render(r: &ScaleReport) -> String {
    let target = if r.operator_peak_rss_mib <= 64.0 {
        "MET"
    } else {
        "MISSED"
    };
    let watch = if r.operator_cluster_pod_watches == 0 {
        "none"
    } else {
        "OPENED"
    };
    format!(
        "kubelift-bench scale: {} nodes ({} B each as served), {} pods ({} B each)\n\
         \x20 fill (in-process creates)       {:.1} s\n\
         \x20 operator synced and acted in    {:.1} s ({} NodeUpgrades, plan status written)\n\
         \x20 operator peak RSS (VmHWM)       {:.1} MiB (target <= 64 MiB) {target}\n\
         \x20 operator RSS at the end         {:.1} MiB, CPU {:.1} s\n\
         \x20 operator requests               {}: {}\n\
         \x20 operator cluster-wide pod watch {watch}\n\
         \x20 load average                    {}\n",
        r.nodes,
        r.node_bytes,
        r.pods,
        r.pod_bytes,
        r.fill_seconds,
        r.acted_seconds,
        r.node_upgrades,
        r.operator_peak_rss_mib,
        r.operator_rss_mib,
        r.operator_cpu_seconds,
        r.operator_requests.total,
        r.operator_requests.top(10),
        r.load_average,
    )
}
