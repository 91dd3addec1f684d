//! Following a rollout live: reflectors on the plan and its `NodeUpgrade`s drive a progress bar
//! and one line per node whenever something a person would look at changes, until the plan ends
//! (`Complete`, `Halted`, `Invalid`) or is held: nodes in `Hold` and nothing else moving for a
//! while (under `Preserve` a held node waits for a person, so the sandbox reports it and stops).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client, ResourceExt};
use kubelift_crds::{KubeletUpgrade, NodePhase, NodeUpgrade, PlanPhase, Stage};
use tokio::time::Instant;

use super::SandboxError;

/// How long a held plan must stay unchanged before the sandbox reports it as held.
const HELD_QUIET: Duration = Duration::from_secs(8);

/// How a followed rollout ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The plan reached a terminal phase.
    Finished(PlanPhase),
    /// Nodes are held and nothing else moves.
    Held,
}

/// What the live view shows; a line is printed only when it changes.
#[derive(Debug, Default)]
struct View {
    bar: String,
    nodes: BTreeMap<String, String>,
}

/// Follows the plan `name` until it ends or `timeout` passes; prints progress when `print`.
pub async fn follow(
    client: &Client,
    name: &str,
    timeout: Duration,
    print: bool,
) -> Result<(Ending, KubeletUpgrade), SandboxError> {
    let plans: Api<KubeletUpgrade> = Api::all(client.clone());
    let upgrades: Api<NodeUpgrade> = Api::all(client.clone());
    let (plan_store, plan_writer) = reflector::store();
    let (node_store, node_writer) = reflector::store();
    let plan_events = reflector(plan_writer, watcher(plans, watcher::Config::default()))
        .applied_objects()
        .map(|e| e.map(|_| ()));
    let node_events = reflector(node_writer, watcher(upgrades, watcher::Config::default()))
        .applied_objects()
        .map(|e| e.map(|_| ()));
    let mut events = futures::stream::select(plan_events.boxed(), node_events.boxed());
    let deadline = Instant::now() + timeout;
    let mut view = View::default();
    let mut changed_at = Instant::now();
    loop {
        let plan = plan_store.get(&kube::runtime::reflector::ObjectRef::new(name));
        let nodes: Vec<NodeUpgrade> = node_store
            .state()
            .iter()
            .filter(|u| u.spec.plan == name)
            .map(|u| (**u).clone())
            .collect();
        if let Some(plan) = plan.as_deref() {
            if view.update(plan, &nodes, print) {
                changed_at = Instant::now();
            }
            if let Some(ending) = ending(plan, &nodes, changed_at.elapsed()) {
                return Ok((ending, plan.clone()));
            }
        }
        if Instant::now() > deadline {
            return Err(SandboxError::Timeout {
                what: format!("the plan {name} to finish"),
            });
        }
        match tokio::time::timeout(Duration::from_secs(1), events.next()).await {
            Ok(Some(Err(error))) => tracing::debug!(%error, "watch error; the watcher retries"),
            Ok(None) => {
                return Err(SandboxError::Timeout {
                    what: "the watch to continue".into(),
                });
            }
            _ => {}
        }
    }
}

fn ending(plan: &KubeletUpgrade, nodes: &[NodeUpgrade], quiet: Duration) -> Option<Ending> {
    let status = plan.status.as_ref()?;
    if status.observed_generation != plan.metadata.generation {
        return None;
    }
    match status.phase? {
        phase @ (PlanPhase::Complete | PlanPhase::Halted | PlanPhase::Invalid) => {
            Some(Ending::Finished(phase))
        }
        _ if quiet >= HELD_QUIET && held(nodes) => Some(Ending::Held),
        _ => None,
    }
}

/// Some node is held and no node is being worked on.
fn held(nodes: &[NodeUpgrade]) -> bool {
    let is_held = |u: &NodeUpgrade| u.spec.stage == Stage::Hold;
    let busy = |u: &NodeUpgrade| {
        let phase = u.status.as_ref().and_then(|s| s.phase).unwrap_or_default();
        !is_held(u)
            && !matches!(
                phase,
                NodePhase::Succeeded | NodePhase::Failed | NodePhase::RolledBack
            )
    };
    nodes.iter().any(is_held) && !nodes.iter().any(busy)
}

impl View {
    /// Prints what changed; returns whether anything did.
    fn update(&mut self, plan: &KubeletUpgrade, nodes: &[NodeUpgrade], print: bool) -> bool {
        let mut changed = false;
        let bar = bar_line(plan);
        if bar != self.bar {
            if print {
                println!("{bar}");
            }
            self.bar = bar;
            changed = true;
        }
        for upgrade in nodes {
            let line = node_line(upgrade);
            let node = upgrade.spec.node_name.clone();
            if self.nodes.get(&node) != Some(&line) {
                if print {
                    println!("{line}");
                }
                self.nodes.insert(node, line);
                changed = true;
            }
        }
        changed
    }
}

fn bar_line(plan: &KubeletUpgrade) -> String {
    let status = plan.status.clone().unwrap_or_default();
    let total = usize::try_from(status.targeted.max(1)).unwrap_or(1);
    let done = usize::try_from(status.upgraded.max(0))
        .unwrap_or(0)
        .min(total);
    let width = 30;
    let filled = done * width / total;
    let phase = status
        .phase
        .map_or_else(|| "Pending".to_owned(), |p| format!("{p:?}"));
    let message = status
        .message
        .map(|m| format!(" — {m}"))
        .unwrap_or_default();
    format!(
        "[{}{}] {}/{} upgraded, {} failed · {phase}{message}",
        "#".repeat(filled),
        "-".repeat(width - filled),
        status.upgraded,
        status.targeted,
        status.failed
    )
}

fn node_line(upgrade: &NodeUpgrade) -> String {
    let status = upgrade.status.clone().unwrap_or_default();
    let phase = status
        .phase
        .map_or_else(|| "Pending".to_owned(), |p| format!("{p:?}"));
    let from = status.from_version.unwrap_or_else(|| "?".to_owned());
    let reason = status.reason.map(|r| format!(" ({r})")).unwrap_or_default();
    let hold = upgrade
        .spec
        .hold_reason
        .clone()
        .map(|r| format!(" hold: {r}"))
        .unwrap_or_default();
    format!(
        "  {:<12} {:<8} {:<12} {from} -> {}  restarts {}{reason}{hold}",
        upgrade.spec.node_name,
        format!("{:?}", upgrade.spec.stage),
        phase,
        upgrade.spec.version,
        status.restart_count,
    )
}

/// The `NodeUpgrade`s of plan `name`, keyed by node.
pub async fn node_upgrades(client: &Client, name: &str) -> Result<Vec<NodeUpgrade>, SandboxError> {
    let api: Api<NodeUpgrade> = Api::all(client.clone());
    let listed = api
        .list(&kube::api::ListParams::default())
        .await
        .map_err(|source| SandboxError::Api {
            what: "list nodeupgrades".into(),
            error: source,
        })?;
    Ok(listed
        .items
        .into_iter()
        .filter(|u| u.spec.plan == name || u.name_any().starts_with(&format!("{name}-")))
        .collect())
}
