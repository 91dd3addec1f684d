//! The rollout planner: a pure, synchronous function from a snapshot of the cluster (the plan,
//! the nodes, this plan's NodeUpgrades, other plans' claims, a few pods, the time) to the actions
//! that move the rollout one step and the status that describes it.
//!
//! It ensures the rollout's invariants — concurrency, canaries, order, gates, failure budget,
//! cordon ownership — in one place that tests can drive through any sequence of events.

mod advance;
mod input;
mod lifecycle;
mod observe;
mod order;
mod output;
mod policy;
mod preflight;
mod rollout;
mod selector;
mod status;
pub mod window;

pub use input::{
    BlockedEviction, CONTROL_PLANE_LABEL, NodeUpgradeView, NodeView, PlanInput, PlanView, PodSet,
    PodView, ZONE_LABEL,
};
pub use observe::reason_code;
pub use order::ordered;
pub use output::{Action, EventKind, NodeUpgradeOrder, Plan, PlannedEvent};
pub use policy::{Decision, Evictions, decide};
pub use preflight::max_unavailable;
pub use selector::matches as selector_matches;

/// Plan one pass.
#[must_use]
pub fn plan(input: &PlanInput) -> Plan {
    if input.plan.deleting {
        return lifecycle::deleting(input);
    }

    let problems = preflight::problems(&input.plan.spec, input.api_server_version.as_deref());
    if !problems.is_empty() {
        let (status, events) = status::invalid(input, &problems);
        return Plan {
            status,
            events,
            ..Plan::default()
        };
    }
    rollout::rollout(input)
}

#[cfg(test)]
mod tests;
