//! The reconciler: for each `KubeletUpgrade`, gather the cluster's state from the caches, let the
//! pure planner decide, and apply its decisions. It ensures the planner never plans on a cache
//! that has not yet seen the operator's own writes, and that failures back off per object.

mod apply;
mod caches;
mod gather;
pub mod node_fields;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::controller::{Action as Requeue, Config as ControllerConfig};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use kubelift_crds::{KubeletUpgrade, NodePhase, NodeUpgrade, Stage};

pub use caches::{NodeCache, view};
pub use node_fields::NodeFields;

use crate::metrics::Metrics;
use crate::planner::{self, BlockedEviction, NodeUpgradeView};

/// NodeUpgrade annotation: when the operator last changed the stage (RFC 3339).
pub const STAGE_SINCE_ANNOTATION: &str = "kubelift.dev/stage-since";
/// NodeUpgrade annotation: when evictions began on the node (RFC 3339).
pub const EVICTING_SINCE_ANNOTATION: &str = "kubelift.dev/evicting-since";
/// Plan annotation: the `kubelift.dev/retry` value the operator already acted upon.
pub const RETRY_HANDLED_ANNOTATION: &str = "kubelift.dev/retry-handled";

/// Longest wait between retries of a failing reconcile.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How soon to look again while the cache catches up with the operator's own writes.
const CACHE_LAG: Duration = Duration::from_millis(200);
/// How often a plan is looked at even when nothing happens (a safety net, not the mechanism).
const RESYNC: Duration = Duration::from_secs(300);

/// Why a reconcile failed; the variant name is the metric label.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Listing the pods of a node failed.
    #[error("failed to list pods of a node")]
    ListPods(#[source] kube::Error),
    /// Creating or updating a NodeUpgrade failed.
    #[error("failed to apply node upgrade")]
    ApplyNodeUpgrade(#[source] kube::Error),
    /// Deleting a NodeUpgrade failed.
    #[error("failed to delete node upgrade")]
    DeleteNodeUpgrade(#[source] kube::Error),
    /// Cordoning or uncordoning a node failed.
    #[error("failed to cordon or uncordon node")]
    Cordon(#[source] kube::Error),
    /// Evicting a pod failed (other than a disruption budget refusing it).
    #[error("failed to evict pod")]
    Evict(#[source] kube::Error),
    /// Deleting a pod failed.
    #[error("failed to delete pod")]
    DeletePod(#[source] kube::Error),
    /// Patching the plan's metadata failed.
    #[error("failed to patch kubelet upgrade")]
    PatchPlan(#[source] kube::Error),
    /// Writing the plan's status failed.
    #[error("failed to write kubelet upgrade status")]
    WriteStatus(#[source] kube::Error),
}

impl Error {
    /// A stable, low-cardinality category for metrics.
    #[must_use]
    pub fn category(&self) -> &'static str {
        match self {
            Error::ListPods(_) => "ListPods",
            Error::ApplyNodeUpgrade(_) => "ApplyNodeUpgrade",
            Error::DeleteNodeUpgrade(_) => "DeleteNodeUpgrade",
            Error::Cordon(_) => "Cordon",
            Error::Evict(_) => "Evict",
            Error::DeletePod(_) => "DeletePod",
            Error::PatchPlan(_) => "PatchPlan",
            Error::WriteStatus(_) => "WriteStatus",
        }
    }
}

/// Settings of the reconciler.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// The node the operator runs on; upgraded last.
    pub node_name: Option<String>,
    /// Name reported on Events (the pod name).
    pub instance: String,
}

/// Shared state of every reconcile.
pub struct Context {
    client: Client,
    nodes: NodeCache,
    node_upgrades: Store<NodeUpgrade>,
    settings: Settings,
    api_server_version: Option<String>,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    blocked: Mutex<BTreeMap<(String, String), BlockedEviction>>,
    failures: Mutex<BTreeMap<String, u32>>,
    expected: Mutex<BTreeMap<String, Option<i64>>>,
    counted_failures: Mutex<BTreeSet<(String, i32)>>,
    ready: Arc<std::sync::atomic::AtomicBool>,
}

impl Context {
    fn blocked_evictions(&self, plan: &str) -> BTreeMap<String, BlockedEviction> {
        let blocked = self.blocked.lock().map(|b| b.clone()).unwrap_or_default();
        blocked
            .into_iter()
            .filter(|((p, _), _)| p == plan)
            .map(|((_, node), b)| (node, b))
            .collect()
    }

    fn block(&self, plan: &str, node: &str, eviction: BlockedEviction) {
        if let Ok(mut blocked) = self.blocked.lock() {
            blocked.insert((plan.to_owned(), node.to_owned()), eviction);
        }
    }

    fn clear_blocked(&self, plan: &str, node: &str) {
        if let Ok(mut blocked) = self.blocked.lock() {
            blocked.remove(&(plan.to_owned(), node.to_owned()));
        }
    }

    /// Remember that the cache must show `name` at `generation` (or gone) before planning again.
    fn expect(&self, name: &str, generation: Option<i64>) {
        if let Ok(mut expected) = self.expected.lock() {
            expected.insert(name.to_owned(), generation);
        }
    }

    /// Whether the NodeUpgrade cache reflects every write this operator made.
    fn cache_caught_up(&self) -> bool {
        let Ok(mut expected) = self.expected.lock() else {
            return true;
        };
        let state = self.node_upgrades.state();
        expected.retain(|name, generation| {
            let cached = state.iter().find(|nu| nu.name_any() == *name);
            match (cached, generation) {
                (Some(nu), Some(generation)) => nu.metadata.generation.unwrap_or(0) < *generation,
                (Some(nu), None) => nu.metadata.deletion_timestamp.is_none(),
                (None, Some(_)) => true,
                (None, None) => false,
            }
        });
        expected.is_empty()
    }
}

/// Watch plans, their NodeUpgrades and the Nodes, and reconcile until shut down.
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    ready: Arc<std::sync::atomic::AtomicBool>,
) {
    let api_server_version = client
        .apiserver_version()
        .await
        .ok()
        .map(|info| info.git_version);
    let nodes = NodeCache::default();
    let node_changes = nodes.watch(client.clone());
    let (store, writer) = reflector::store();
    let listed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let node_upgrades = reflector::reflector(
        writer,
        watcher(
            Api::<NodeUpgrade>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .inspect({
        let listed = listed.clone();
        move |event| {
            if matches!(event, Ok(watcher::Event::InitDone)) {
                listed.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    })
    .touched_objects();

    let reporter = Reporter {
        controller: "kubelift-operator".to_owned(),
        instance: Some(settings.instance.clone()),
    };
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        nodes: nodes.clone(),
        node_upgrades: store.clone(),
        settings,
        api_server_version,
        metrics,
        blocked: Mutex::default(),
        failures: Mutex::default(),
        expected: Mutex::default(),
        counted_failures: Mutex::default(),
        ready: ready.clone(),
    });

    let controller = Controller::new(
        Api::<KubeletUpgrade>::all(client),
        watcher::Config::default(),
    )
    .owns_stream(node_upgrades)
    .reconcile_all_on(node_changes)
    .with_config(ControllerConfig::default().concurrency(1));
    tokio::spawn(wait_ready(listed, nodes, ready));
    controller
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|outcome| async move {
            if let Err(error) = outcome {
                tracing::debug!(%error, "reconcile outcome");
            }
        })
        .await;
}

/// Readiness: the NodeUpgrade and Node caches hold a full list (the controller itself waits for
/// its plan cache before the first reconcile).
async fn wait_ready(
    listed: Arc<std::sync::atomic::AtomicBool>,
    nodes: NodeCache,
    ready: Arc<std::sync::atomic::AtomicBool>,
) {
    while !nodes.is_synced() || !listed.load(std::sync::atomic::Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ready.store(true, std::sync::atomic::Ordering::Relaxed);
    tracing::info!("caches synced");
}

async fn reconcile(plan: Arc<KubeletUpgrade>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let span = tracing::info_span!("reconcile", plan = %plan.name_any());
    tracing::Instrument::instrument(pass(plan, ctx), span).await
}

/// Gather, plan, apply.
async fn pass(plan: Arc<KubeletUpgrade>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let name = plan.name_any();
    let synced = ctx.ready.load(std::sync::atomic::Ordering::Relaxed);
    if !synced || !ctx.cache_caught_up() {
        tracing::debug!(synced, "waiting for caches");
        return Ok(Requeue::requeue(CACHE_LAG));
    }

    let mut input = gather::input(&plan, &ctx);
    let mut decided = planner::plan(&input);
    if !decided.pods_needed.is_empty() {
        input.pods = gather::pods(&ctx, &decided.pods_needed).await?;
        decided = planner::plan(&input);
    }

    let outcome = apply::actions(&plan, &decided.actions, &ctx).await;
    record_expectations(&ctx, &decided.actions);
    outcome?;
    apply::status(&plan, &decided.status, &ctx).await?;
    apply::events(&plan, &decided.events, &ctx).await;

    observe(&ctx, &plan, &input.node_upgrades, &decided);
    if let Ok(mut failures) = ctx.failures.lock() {
        failures.remove(&name);
    }
    Ok(decided.requeue_after.map_or_else(
        || Requeue::requeue(RESYNC),
        |after| Requeue::requeue(after.min(RESYNC)),
    ))
}

/// Expect the cache to show what was just written before the next pass plans on it.
fn record_expectations(ctx: &Context, actions: &[planner::Action]) {
    for action in actions {
        match action {
            planner::Action::ApplyNodeUpgrade(order) => {
                let current = ctx
                    .node_upgrades
                    .state()
                    .into_iter()
                    .find(|nu| nu.name_any() == order.name);
                let changed = current.as_ref().is_none_or(|nu| nu.spec != order.spec);
                let generation = current.and_then(|nu| nu.metadata.generation).unwrap_or(0);
                ctx.expect(
                    &order.name,
                    Some(if changed { generation + 1 } else { generation }),
                );
            }
            planner::Action::DeleteNodeUpgrade { name } => ctx.expect(name, None),
            _ => {}
        }
    }
}

/// Update metrics after a successful pass.
fn observe(
    ctx: &Context,
    plan: &KubeletUpgrade,
    node_upgrades: &[NodeUpgradeView],
    decided: &planner::Plan,
) {
    ctx.metrics.record_plan(&plan.name_any(), &decided.status);
    if decided
        .events
        .iter()
        .any(|e| e.reason == crate::reasons::ROLLOUT_COMPLETE)
        && let (Some(start), Some(end)) =
            (&decided.status.start_time, &decided.status.completion_time)
    {
        let seconds = end.0.duration_since(start.0).as_secs_f64();
        ctx.metrics.rollout_duration.observe(seconds);
    }
    for nu in node_upgrades {
        let Some(reason) = failure_reason(nu) else {
            continue;
        };
        let fresh = ctx
            .counted_failures
            .lock()
            .is_ok_and(|mut seen| seen.insert((nu.name.clone(), nu.spec.attempt)));
        if fresh {
            ctx.metrics.node_failure(planner::reason_code(&reason));
        }
    }
}

fn failure_reason(nu: &NodeUpgradeView) -> Option<String> {
    let hold = nu
        .spec
        .hold_reason
        .as_deref()
        .filter(|_| nu.spec.stage == Stage::Hold);
    let code = hold.map(planner::reason_code);
    if let Some(code) = code.filter(|c| {
        [
            crate::reasons::HOLD_HELPER_UNAVAILABLE,
            crate::reasons::HOLD_DRAIN_TIMEOUT,
        ]
        .contains(c)
    }) {
        return Some(code.to_owned());
    }
    let status = nu
        .status
        .as_ref()
        .filter(|s| s.observed_generation == Some(nu.generation))?;
    matches!(
        status.phase,
        Some(NodePhase::Failed | NodePhase::RolledBack)
    )
    .then(|| status.reason.clone().unwrap_or_else(|| "Failed".to_owned()))
}

/// Back off per object: 1 s, 2 s, 4 s … capped at five minutes.
#[allow(
    clippy::needless_pass_by_value,
    reason = "the signature kube's Controller expects"
)]
fn error_policy(plan: Arc<KubeletUpgrade>, error: &Error, ctx: Arc<Context>) -> Requeue {
    let name = plan.name_any();
    ctx.metrics.reconcile_error(error.category());
    let attempts = ctx.failures.lock().map_or(1, |mut failures| {
        let count = failures.entry(name.clone()).or_insert(0);
        *count += 1;
        *count
    });
    let delay = Duration::from_secs(1u64 << attempts.min(9)).min(MAX_BACKOFF);
    tracing::warn!(plan = %name, error = %ErrorChain(error), attempts, ?delay, "reconcile failed");
    Requeue::requeue(delay)
}

/// Prints an error with its sources, once, where the outcome is reported.
struct ErrorChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}
