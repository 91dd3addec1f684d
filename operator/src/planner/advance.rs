//! One step for one node that the rollout already works on: hold or proceed once the helper has
//! prepared, cordon, evict, hand over to Execute, time out, and lift our cordon when done.

use jiff::SignedDuration;
use kubelift_crds::{DrainTimeoutAction, Stage};

use super::input::PodView;
use super::observe::{Observed, Outcome, after};
use super::output::{Action, EventKind};
use super::policy::{self, Decision, Evictions};
use super::rollout::{EVICTION_RETRY, Pass};
use crate::reasons;

/// Advance slot `index` by one step.
pub(super) fn advance(pass: &mut Pass<'_>, index: usize) {
    match pass.slots[index].seen.clone() {
        Observed::HelperTimedOut => time_out_helper(pass, index),
        Observed::Prepared | Observed::Redecide => decide(pass, index),
        Observed::Preparing(at) | Observed::Soaking(at) => pass.wake.push(at),
        _ => {}
    }

    let slot = &pass.slots[index];
    let finished = matches!(slot.seen, Observed::Done(_) | Observed::Upgraded);
    if finished && pass.ours(slot.node) {
        pass.actions.push(Action::Uncordon {
            node: slot.node.name.clone(),
        });
    }
}

fn time_out_helper(pass: &mut Pass<'_>, index: usize) {
    let seconds = pass.input.plan.spec.verify.prepare_timeout_seconds;
    let reason = format!(
        "{}: the node helper did not report within {seconds}s",
        reasons::HOLD_HELPER_UNAVAILABLE
    );
    hold(pass, index, reason.clone());
    pass.slots[index].seen = Observed::Done(Outcome::Failed(reason));
}

fn decide(pass: &mut Pass<'_>, index: usize) {
    let slot = &pass.slots[index];
    let Some(report) = slot.nu.and_then(|nu| nu.status.as_ref()) else {
        return;
    };
    let redecide = slot.seen == Observed::Redecide;
    let evictions = match policy::decide(&pass.input.plan.spec.containers, report) {
        Decision::Hold(reason) => {
            let node = slot.node.name.clone();
            hold(pass, index, reason.clone());
            pass.event(
                EventKind::Warning,
                reasons::NODE_HELD,
                format!("node {node}: {reason}"),
            );
            pass.slots[index].seen = Observed::Done(Outcome::Held(reason));
            return;
        }
        Decision::Proceed(evictions) => evictions,
    };

    let started = pass.ours(slot.node) || slot.nu.is_some_and(|nu| nu.evicting_since.is_some());
    if redecide {
        let attempt = slot.nu.map_or(1, |nu| nu.spec.attempt);
        pass.push_order(index, Stage::Prepare, None, attempt, None);
    } else if started || (pass.gate.is_none() && pass.may_take_down_one_more()) {
        if !started {
            pass.newly_unavailable += 1;
        }
        proceed(pass, index, &evictions);
    }
}

/// Cordon (unless already unschedulable), evict what the policy evicts, then Execute.
fn proceed(pass: &mut Pass<'_>, index: usize, evictions: &Evictions) {
    let slot = &pass.slots[index];
    let node = slot.node.name.clone();
    if !slot.node.unschedulable {
        pass.actions.push(Action::Cordon { node: node.clone() });
    }

    let remaining: Vec<PodView> = if *evictions == Evictions::None {
        Vec::new()
    } else {
        let Some(pods) = pass.input.pods.get(&node) else {
            pass.pods_needed.push(node);
            return;
        };
        policy::pods_to_evict(pods, evictions, &pass.input.plan.spec.drain)
            .into_iter()
            .cloned()
            .collect()
    };
    let attempt = slot.nu.map_or(1, |nu| nu.spec.attempt);
    if remaining.is_empty() {
        pass.push_order(index, Stage::Execute, None, attempt, None);
        pass.slots[index].seen = Observed::Executing;
        return;
    }
    evict(pass, index, &remaining);
}

fn evict(pass: &mut Pass<'_>, index: usize, remaining: &[PodView]) {
    let slot = &pass.slots[index];
    let node = slot.node.name.clone();
    let attempt = slot.nu.map_or(1, |nu| nu.spec.attempt);
    let since = slot.nu.and_then(|nu| nu.evicting_since);
    if since.is_none() {
        pass.push_order(index, Stage::Prepare, None, attempt, Some(pass.input.now));
    }
    let since = since.unwrap_or(pass.input.now);
    let drain = &pass.input.plan.spec.drain;
    let deadline = since
        .saturating_add(SignedDuration::from_secs(drain.timeout_seconds))
        .unwrap_or(since);
    let blocked = pass.input.blocked_evictions.get(&node).cloned();
    pass.slots[index].eviction_note = Some(match &blocked {
        Some(b) => format!(
            "node {node}: eviction of pod {} blocked by PodDisruptionBudget {}",
            b.pod,
            b.budget.as_deref().unwrap_or("(unnamed)")
        ),
        None => format!("node {node}: evicting {} pods", remaining.len()),
    });

    if pass.input.now >= deadline {
        drain_timed_out(
            pass,
            index,
            remaining,
            blocked.as_ref().map(|b| b.pod.as_str()),
        );
        return;
    }
    for pod in remaining.iter().filter(|pod| !pod.terminating) {
        pass.actions.push(Action::Evict {
            node: node.clone(),
            namespace: pod.namespace.clone(),
            pod: pod.name.clone(),
        });
    }
    pass.wake.push(after(
        pass.input.now,
        i64::try_from(EVICTION_RETRY.as_secs()).unwrap_or(5),
    ));
    pass.wake.push(deadline);
}

fn drain_timed_out(
    pass: &mut Pass<'_>,
    index: usize,
    remaining: &[PodView],
    blocked: Option<&str>,
) {
    let drain = &pass.input.plan.spec.drain;
    let node = pass.slots[index].node.name.clone();
    let first = remaining
        .first()
        .map(|p| format!("{}/{}", p.namespace, p.name));
    let pod = blocked.map(str::to_owned).or(first).unwrap_or_default();
    let why = pass.slots[index].eviction_note.clone().unwrap_or_default();
    let detail = format!(
        "evictions not done after {}s (pod {pod}); {why}",
        drain.timeout_seconds
    );

    let outcome = match drain.on_timeout {
        DrainTimeoutAction::DeletePod => {
            for pod in remaining.iter().filter(|pod| !pod.terminating) {
                pass.actions.push(Action::DeletePod {
                    node: node.clone(),
                    namespace: pod.namespace.clone(),
                    pod: pod.name.clone(),
                });
            }
            return;
        }
        DrainTimeoutAction::Fail => {
            Outcome::Failed(format!("{}: {detail}", reasons::HOLD_DRAIN_TIMEOUT))
        }
        DrainTimeoutAction::Skip => {
            Outcome::Skipped(format!("{}: {detail}", reasons::HOLD_DRAIN_SKIPPED))
        }
    };
    let (Outcome::Failed(reason) | Outcome::Skipped(reason)) = &outcome else {
        return;
    };
    hold(pass, index, reason.clone());
    pass.event(
        EventKind::Warning,
        reasons::DRAIN_TIMED_OUT,
        format!("node {node}: {reason}"),
    );
    pass.slots[index].seen = Observed::Done(outcome);
    pass.slots[index].eviction_note = None;
}

fn hold(pass: &mut Pass<'_>, index: usize, reason: String) {
    let attempt = pass.slots[index].nu.map_or(1, |nu| nu.spec.attempt);
    pass.push_order(index, Stage::Hold, Some(reason), attempt, None);
}
