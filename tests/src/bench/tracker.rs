//! Milestones of every `NodeUpgrade`, timestamped by the benchmark as its watch sees them
//! (the objects' own times have one-second resolution): created, prepared, sent to Execute,
//! restarting, verifying, succeeded. Each milestone keeps the first time it was seen.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use kubelift_crds::{NodePhase, NodeUpgrade, Stage};
use tokio::time::Instant;

/// A point in one node's upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Milestone {
    /// The operator created the `NodeUpgrade` (stage `Prepare`).
    Created,
    /// The helper reported `Prepared`.
    Prepared,
    /// The operator set stage `Execute`.
    Execute,
    /// The helper reported `Restarting` (snapshot, staging and install done).
    Restarting,
    /// The helper reported `Verifying` (the new kubelet is up).
    Verifying,
    /// The helper reported `Succeeded`.
    Succeeded,
}

/// When each node reached each milestone, since the tracker started.
pub type Milestones = BTreeMap<String, BTreeMap<Milestone, Duration>>;

/// A background watch recording milestones until stopped.
pub struct Tracker {
    seen: Arc<Mutex<Milestones>>,
    task: tokio::task::JoinHandle<()>,
}

impl Tracker {
    /// Starts watching every `NodeUpgrade`; times count from `start`.
    pub fn spawn(client: Client, start: Instant) -> Self {
        let seen = Arc::new(Mutex::new(Milestones::new()));
        let api: Api<NodeUpgrade> = Api::all(client);
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects();
        let recorded = seen.clone();
        let task = tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                match event {
                    Ok(upgrade) => record(&recorded, &upgrade, start.elapsed()),
                    Err(error) => tracing::debug!(%error, "node upgrade watch error; retrying"),
                }
            }
        });
        Self { seen, task }
    }

    /// Stops watching and returns what was recorded.
    pub fn stop(self) -> Milestones {
        self.task.abort();
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.clone()
    }
}

fn record(seen: &Mutex<Milestones>, upgrade: &NodeUpgrade, at: Duration) {
    let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
    let node = seen.entry(upgrade.spec.node_name.clone()).or_default();
    for milestone in reached(upgrade) {
        node.entry(milestone).or_insert(at);
    }
}

/// The milestones an object shows.
fn reached(upgrade: &NodeUpgrade) -> Vec<Milestone> {
    let phase = upgrade.status.as_ref().and_then(|s| s.phase);
    let mut reached = vec![Milestone::Created];
    if upgrade.spec.stage == Stage::Execute {
        reached.push(Milestone::Execute);
    }
    reached.extend(match phase {
        Some(NodePhase::Prepared) => Some(Milestone::Prepared),
        Some(NodePhase::Restarting) => Some(Milestone::Restarting),
        Some(NodePhase::Verifying) => Some(Milestone::Verifying),
        Some(NodePhase::Succeeded) => Some(Milestone::Succeeded),
        _ => None,
    });
    reached
}

/// The time from `from` to `to` on every node that reached both.
#[must_use]
pub fn spans(milestones: &Milestones, from: Milestone, to: Milestone) -> Vec<Duration> {
    milestones
        .values()
        .filter_map(|node| Some(node.get(&to)?.saturating_sub(*node.get(&from)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_only_nodes_that_reached_both_milestones() {
        let at = Duration::from_millis;
        let mut milestones = Milestones::new();
        milestones.insert(
            "node-01".to_owned(),
            BTreeMap::from([
                (Milestone::Execute, at(1_000)),
                (Milestone::Succeeded, at(2_500)),
            ]),
        );
        milestones.insert(
            "node-02".to_owned(),
            BTreeMap::from([(Milestone::Execute, at(3_000))]),
        );
        let execute = spans(&milestones, Milestone::Execute, Milestone::Succeeded);
        assert_eq!(execute, vec![at(1_500)]);
        assert!(spans(&milestones, Milestone::Created, Milestone::Execute).is_empty());
    }
}
