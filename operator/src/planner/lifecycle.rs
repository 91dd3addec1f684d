//! Deleting a plan: nodes mid-swap finish (or roll back), every other NodeUpgrade is deleted,
//! our cordon is lifted from nodes no longer worked on, and only then is the finalizer dropped.

use kubelift_crds::{KubeletUpgradeStatus, NodePhase, PlanPhase, Stage};

use super::input::{NodeUpgradeView, PlanInput};
use super::output::{Action, EventKind, Plan, PlannedEvent};
use crate::reasons;

/// Plan one pass over a plan being deleted.
#[must_use]
pub fn deleting(input: &PlanInput) -> Plan {
    let plan = &input.plan;
    let mut actions = Vec::new();
    for nu in input
        .node_upgrades
        .iter()
        .filter(|nu| !nu.deleting && !executing(nu))
    {
        actions.push(Action::DeleteNodeUpgrade {
            name: nu.name.clone(),
        });
    }

    let busy = |node: &str| {
        input
            .node_upgrades
            .iter()
            .any(|nu| nu.spec.node_name == node && executing(nu))
    };
    let marked = input
        .nodes
        .iter()
        .filter(|node| node.cordoned_by.as_deref() == Some(plan.name.as_str()));
    for node in marked.filter(|node| !busy(&node.name)) {
        actions.push(Action::Uncordon {
            node: node.name.clone(),
        });
    }

    let waiting = input.node_upgrades.len();
    if waiting == 0 && actions.is_empty() && plan.has_finalizer {
        actions.push(Action::RemoveFinalizer);
    }
    Plan {
        actions,
        status: status(input, waiting),
        events: events(input, waiting),
        ..Plan::default()
    }
}

/// Whether the node may be mid-swap: asked to Execute and not finished.
fn executing(nu: &NodeUpgradeView) -> bool {
    let phase = nu.status.as_ref().and_then(|s| s.phase);
    nu.spec.stage == Stage::Execute && !phase.is_some_and(NodePhase::is_terminal)
}

fn status(input: &PlanInput, waiting: usize) -> KubeletUpgradeStatus {
    let mut status = input.plan.status.clone();
    status.phase = Some(PlanPhase::Deleting);
    status.message = Some(format!(
        "deleting: waiting for {waiting} NodeUpgrades to finish and go"
    ));
    status
}

fn events(input: &PlanInput, waiting: usize) -> Vec<PlannedEvent> {
    if input.plan.status.phase == Some(PlanPhase::Deleting) {
        return Vec::new();
    }
    vec![PlannedEvent {
        kind: EventKind::Normal,
        reason: reasons::DELETING,
        note: format!("cleaning up {waiting} NodeUpgrades and our cordons"),
    }]
}
