//! The rollout benchmark (DESIGN §5): a sandbox rollout 1.31 → 1.32 under `Preserve` on the
//! simulated runtime, `soakSeconds: 0`, `maxUnavailable: 10%`, one canary, every target kubelet
//! taking a fixed time to start. It reports the wall time from the plan applied to the plan
//! `Complete` against the ideal (`batches × kubelet restart`, see [`super::timing`]), where the
//! time per node goes, the API requests per node upgraded by the operator and by the helpers,
//! whether the operator watched every pod in the cluster, the operator's peak memory and each
//! helper's memory and CPU once idle. Everything it starts is stopped before it returns.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;

use super::timing::{self, Spread};
use super::tracker::{Milestone, Milestones, Tracker, spans};
use super::traffic::{self, HELPER_AGENT, OPERATOR_AGENT, Traffic};
use super::{BenchError, procfs};
use crate::sandbox::{Sandbox, SandboxConfig, Summary};

/// `rollout.maxUnavailable` of the benchmark's plan, in percent.
const MAX_UNAVAILABLE_PERCENT: usize = 10;

/// Canaries of the sandbox's plan (it always asks for one).
const CANARY: usize = 1;

/// Time the helpers are left alone after the rollout before their idle footprint is read.
const QUIET_BEFORE_IDLE: Duration = Duration::from_secs(3);

/// What to run.
#[derive(Debug, Clone)]
pub struct RolloutSpec {
    /// Nodes in the sandbox.
    pub nodes: usize,
    /// Time every target kubelet takes to start (the per-node kubelet work).
    pub kubelet_restart: Duration,
    /// `verify.settleSeconds` of the plan.
    pub settle_seconds: i64,
    /// How long the helpers' CPU time is watched once the rollout is over.
    pub idle_window: Duration,
}

/// Where the time of one node went, from the milestones its `NodeUpgrade` showed.
#[derive(Debug, Clone, Serialize)]
pub struct NodeTimes {
    /// Created → Prepared: prediction and pre-staging by the helper.
    pub prepare: Spread,
    /// Prepared → stage Execute: the operator's decision (and cordon).
    pub to_execute: Spread,
    /// Stage Execute → Succeeded: the whole per-node Execute.
    pub execute: Spread,
    /// Execute → Restarting: snapshot, staging, install.
    pub before_restart: Spread,
    /// Restarting → Verifying: the helper's restart command (the supervisor stops the old
    /// kubelet and starts the new one, which is still starting when this ends).
    pub restart: Spread,
    /// Verifying → Succeeded: the new kubelet's start (the fixed restart time), then the
    /// helper seeing it healthy, at the target version, Ready, and the containers untouched.
    pub verify: Spread,
    /// Created → Succeeded.
    pub node_total: Spread,
}

/// One helper, idle after the rollout.
#[derive(Debug, Clone, Serialize)]
pub struct HelperIdle {
    /// Its node.
    pub node: String,
    /// Resident memory, MiB.
    pub rss_mib: f64,
    /// Peak resident memory over its life, MiB.
    pub peak_rss_mib: f64,
    /// CPU time used over the idle window, seconds.
    pub cpu_seconds: f64,
}

/// Everything the rollout benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutReport {
    /// Nodes in the sandbox.
    pub nodes: usize,
    /// Nodes the plan upgraded.
    pub nodes_upgraded: usize,
    /// The plan's ending (`Complete` when it finished).
    pub phase: String,
    /// Whether every node upgraded and no preserved container restarted.
    pub success: bool,
    /// Nodes per batch (`maxUnavailable` resolved).
    pub per_batch: usize,
    /// Batches: the canary, then full batches.
    pub batches: usize,
    /// Per-node kubelet work (the fixed restart time), seconds.
    pub kubelet_restart_seconds: f64,
    /// `verify.settleSeconds` of the plan.
    pub settle_seconds: i64,
    /// Ideal: batches × kubelet restart, seconds.
    pub ideal_seconds: f64,
    /// Plan applied → plan `Complete`, seconds.
    pub wall_seconds: f64,
    /// (wall − ideal) / ideal, percent.
    pub overhead_percent: f64,
    /// Where each node's time went.
    pub node_times: NodeTimes,
    /// The operator's requests from the plan applied to its end.
    pub operator_requests: Traffic,
    /// `operator_requests.total` per node upgraded.
    pub operator_requests_per_node: f64,
    /// The operator's requests since it started (startup lists and watches included).
    pub operator_requests_since_start: usize,
    /// The helpers' requests from the plan applied to its end.
    pub helper_requests: Traffic,
    /// `helper_requests.total` per node upgraded.
    pub helper_requests_per_node: f64,
    /// Cluster-wide pod watches the operator opened (since it started).
    pub operator_cluster_pod_watches: usize,
    /// The operator's peak resident memory (`VmHWM`), MiB.
    pub operator_peak_rss_mib: f64,
    /// Each helper once idle.
    pub helpers: Vec<HelperIdle>,
    /// The window the helpers' idle CPU time was measured over, seconds.
    pub idle_window_seconds: f64,
    /// Load averages at the end (1, 5, 15 min).
    pub load_average: String,
}

/// Runs the benchmark on a fresh sandbox; the sandbox is stopped whatever happens.
pub async fn run(spec: &RolloutSpec) -> Result<RolloutReport, BenchError> {
    let mut sandbox = Sandbox::start(sandbox_config(spec)).await?;
    let measured = measure(&mut sandbox, spec).await;
    sandbox.stop().await;
    measured
}

/// The sandbox of DESIGN §5's rollout target.
fn sandbox_config(spec: &RolloutSpec) -> SandboxConfig {
    let mut config = SandboxConfig::new(spec.nodes);
    config.soak_seconds = 0;
    config.settle_seconds = spec.settle_seconds;
    config.max_unavailable = json!(format!("{MAX_UNAVAILABLE_PERCENT}%"));
    config
}

async fn measure(sandbox: &mut Sandbox, spec: &RolloutSpec) -> Result<RolloutReport, BenchError> {
    slow_down_target_kubelets(sandbox, spec.kubelet_restart)?;
    let before = sandbox.record().await?;
    let mark = sandbox.server().requests().len();
    let started = Instant::now();
    let tracker = Tracker::spawn(sandbox.client(), started);
    sandbox.apply_plan().await?;
    let summary = sandbox.finish(&before, started).await?;
    let milestones = tracker.stop();
    tracing::info!(wall = summary.duration_seconds, "rollout finished");
    let operator_peak = operator_memory(sandbox).hwm_mib();
    let helpers = idle_helpers(sandbox, spec.idle_window).await;
    let requests = sandbox.server().requests();
    let during = requests.get(mark..).unwrap_or_default();
    let measured = Measured {
        summary: &summary,
        milestones: &milestones,
        operator: traffic::traffic(during, OPERATOR_AGENT),
        helper: traffic::traffic(during, HELPER_AGENT),
        operator_since_start: traffic::traffic(&requests, OPERATOR_AGENT).total,
        pod_watches: traffic::cluster_pod_watches(&requests, OPERATOR_AGENT),
    };
    Ok(report(spec, measured, operator_peak, helpers))
}

/// Every node's target kubelet takes `restart` to start: the emulator's `--startup-delay-ms`,
/// through the per-node flags file of the stand-in kubelet (this configuration sets no other
/// target flag: not snapshot-aware, no node never healthy).
fn slow_down_target_kubelets(sandbox: &mut Sandbox, restart: Duration) -> Result<(), BenchError> {
    let flags = format!("--startup-delay-ms {}", restart.as_millis());
    let target = sandbox.config().to.clone();
    for node in sandbox.nodes_mut() {
        node.set_kubelet_flags(&target, &flags)?;
    }
    Ok(())
}

fn operator_memory(sandbox: &mut Sandbox) -> procfs::Memory {
    let pid = sandbox.operator().and_then(|p| p.pid());
    pid.and_then(procfs::memory).unwrap_or_default()
}

/// Each helper's memory after a quiet moment, and its CPU time over `window`.
async fn idle_helpers(sandbox: &mut Sandbox, window: Duration) -> Vec<HelperIdle> {
    tokio::time::sleep(QUIET_BEFORE_IDLE).await;
    let pids: Vec<(String, u32)> = sandbox
        .nodes_mut()
        .iter_mut()
        .filter_map(|node| Some((node.name.clone(), node.helper()?.pid()?)))
        .collect();
    let cpu_before: Vec<Option<Duration>> =
        pids.iter().map(|(_, pid)| procfs::cpu_time(*pid)).collect();
    tokio::time::sleep(window).await;
    pids.iter()
        .zip(cpu_before)
        .map(|((node, pid), before)| {
            let memory = procfs::memory(*pid).unwrap_or_default();
            let after = procfs::cpu_time(*pid);
            let used = after.zip(before).map(|(a, b)| a.saturating_sub(b));
            HelperIdle {
                node: node.clone(),
                rss_mib: memory.rss_mib(),
                peak_rss_mib: memory.hwm_mib(),
                cpu_seconds: used.unwrap_or_default().as_secs_f64(),
            }
        })
        .collect()
}

/// What the rollout produced, before it is summed up.
struct Measured<'a> {
    summary: &'a Summary,
    milestones: &'a Milestones,
    operator: Traffic,
    helper: Traffic,
    operator_since_start: usize,
    pod_watches: usize,
}

fn report(
    spec: &RolloutSpec,
    measured: Measured<'_>,
    operator_peak_rss_mib: f64,
    helpers: Vec<HelperIdle>,
) -> RolloutReport {
    let per_batch = timing::per_batch(spec.nodes, MAX_UNAVAILABLE_PERCENT);
    let batches = timing::batches(spec.nodes, CANARY, per_batch);
    let ideal = spec.kubelet_restart * u32::try_from(batches).unwrap_or(u32::MAX);
    let wall = Duration::from_secs_f64(measured.summary.duration_seconds.max(0.0));
    let upgraded = measured.summary.nodes_upgraded;
    RolloutReport {
        nodes: spec.nodes,
        nodes_upgraded: upgraded,
        phase: measured.summary.phase.clone(),
        success: measured.summary.success(),
        per_batch,
        batches,
        kubelet_restart_seconds: spec.kubelet_restart.as_secs_f64(),
        settle_seconds: spec.settle_seconds,
        ideal_seconds: ideal.as_secs_f64(),
        wall_seconds: wall.as_secs_f64(),
        overhead_percent: timing::overhead_percent(wall, ideal),
        node_times: node_times(measured.milestones),
        operator_requests_per_node: measured.operator.per(upgraded),
        operator_requests: measured.operator,
        operator_requests_since_start: measured.operator_since_start,
        helper_requests_per_node: measured.helper.per(upgraded),
        helper_requests: measured.helper,
        operator_cluster_pod_watches: measured.pod_watches,
        operator_peak_rss_mib,
        helpers,
        idle_window_seconds: spec.idle_window.as_secs_f64(),
        load_average: super::load_average(),
    }
}

fn node_times(milestones: &Milestones) -> NodeTimes {
    use Milestone::{Created, Execute, Prepared, Restarting, Succeeded, Verifying};
    let spread = |from, to| Spread::of(spans(milestones, from, to));
    NodeTimes {
        prepare: spread(Created, Prepared),
        to_execute: spread(Prepared, Execute),
        execute: spread(Execute, Succeeded),
        before_restart: spread(Execute, Restarting),
        restart: spread(Restarting, Verifying),
        verify: spread(Verifying, Succeeded),
        node_total: spread(Created, Succeeded),
    }
}

/// The human summary block.
#[must_use]
pub fn render(report: &RolloutReport) -> String {
    let mut out = String::new();
    out.push_str(&render_time(report));
    out.push_str(&render_requests(report));
    out.push_str(&render_footprint(report));
    out
}

fn render_time(r: &RolloutReport) -> String {
    let t = &r.node_times;
    format!(
        "kubelift-bench rollout: {} nodes, v1.31 -> v1.32, Preserve, simulated runtime, \
         soakSeconds 0, settleSeconds {}, maxUnavailable {MAX_UNAVAILABLE_PERCENT}%\n\
         \x20 result                          {} ({}/{} upgraded)\n\
         \x20 wall time (applied -> Complete) {:.2} s\n\
         \x20 ideal                           {:.2} s = {} batches ({CANARY} canary + batches of \
         {}) x {:.2} s kubelet restart\n\
         \x20 overhead                        {:.1} % (target <= 2 %) {}\n\
         \x20 per node, s (min/p50/p90/max):\n{}{}{}{}{}{}{}",
        r.nodes,
        r.settle_seconds,
        r.phase,
        r.nodes_upgraded,
        r.nodes,
        r.wall_seconds,
        r.ideal_seconds,
        r.batches,
        r.per_batch,
        r.kubelet_restart_seconds,
        r.overhead_percent,
        verdict(r.overhead_percent <= 2.0),
        spread_line("prepare (created -> Prepared)", &t.prepare),
        spread_line("wait (Prepared -> Execute)", &t.to_execute),
        spread_line("execute (Execute -> Succeeded)", &t.execute),
        spread_line("  snapshot+stage+install", &t.before_restart),
        spread_line("  restart command (-> Verifying)", &t.restart),
        spread_line("  kubelet start+verify (-> Succeeded)", &t.verify),
        spread_line("node total (created -> Succeeded)", &t.node_total),
    )
}

fn spread_line(name: &str, s: &Spread) -> String {
    format!(
        "    {name:<38} {:>6.2} {:>6.2} {:>6.2} {:>6.2}  (n={})\n",
        s.min, s.p50, s.p90, s.max, s.count
    )
}

fn render_requests(r: &RolloutReport) -> String {
    format!(
        "\x20 operator requests per node      {:.1} (target <= 12) {}: {} during the rollout, \
         {} since start\n\
         \x20   {}\n\
         \x20 helper requests per node        {:.1}: {} during the rollout\n\
         \x20   {}\n\
         \x20 operator cluster-wide pod watch {} {}\n",
        r.operator_requests_per_node,
        verdict(r.operator_requests_per_node <= 12.0),
        r.operator_requests.total,
        r.operator_requests_since_start,
        r.operator_requests.top(8),
        r.helper_requests_per_node,
        r.helper_requests.total,
        r.helper_requests.top(8),
        if r.operator_cluster_pod_watches == 0 {
            "none"
        } else {
            "OPENED"
        },
        verdict(r.operator_cluster_pod_watches == 0),
    )
}

fn render_footprint(r: &RolloutReport) -> String {
    let rss: Vec<f64> = r.helpers.iter().map(|h| h.rss_mib).collect();
    let cpu: Vec<f64> = r.helpers.iter().map(|h| h.cpu_seconds).collect();
    let max_rss = rss.iter().copied().fold(0.0, f64::max);
    let max_cpu = cpu.iter().copied().fold(0.0, f64::max);
    let window = r.idle_window_seconds.max(f64::EPSILON);
    format!(
        "\x20 operator peak RSS (VmHWM)       {:.1} MiB\n\
         \x20 helper RSS idle                 max {max_rss:.1} MiB, mean {:.1} MiB over {} \
         helpers (target <= 20 MiB) {}\n\
         \x20 helper CPU idle                 max {max_cpu:.2} s in {:.0} s ({:.2} % of a core)\n\
         \x20 load average                    {}\n",
        r.operator_peak_rss_mib,
        mean(&rss),
        r.helpers.len(),
        verdict(max_rss <= 20.0),
        r.idle_window_seconds,
        max_cpu / window * 100.0,
        r.load_average,
    )
}

fn mean(values: &[f64]) -> f64 {
    let count = f64::from(u32::try_from(values.len()).unwrap_or(u32::MAX)).max(1.0);
    values.iter().sum::<f64>() / count
}

fn verdict(met: bool) -> &'static str {
    if met { "MET" } else { "MISSED" }
}
