//! One planning pass over a valid, living plan: observe every targeted node, retry what the user
//! asked to retry, advance each node one step, start new nodes within the budget, and sum it
//! all up as a status.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use kubelift_crds::constants::ARCH_LABEL;
use kubelift_crds::naming::node_upgrade_name;
use kubelift_crds::{NodeUpgradeSpec, PlanPhase, Stage};

use super::input::{NodeUpgradeView, NodeView, PlanInput};
use super::observe::{Observed, Outcome, after, observe};
use super::output::{Action, EventKind, NodeUpgradeOrder, Plan, PlannedEvent};
use super::status::{self, Summary};
use super::window::{Opening, next_opening};
use super::{advance, order, preflight, selector};
use crate::reasons;

/// How soon to look again at a node whose evictions are still running.
pub(super) const EVICTION_RETRY: Duration = Duration::from_secs(5);
/// Nodes named in one message fragment before "and N more".
const NAMED_NODES: usize = 3;

/// What keeps new nodes from starting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Gate {
    /// More nodes failed than `maxFailedNodes` allows.
    Halted,
    /// `spec.paused`.
    Paused,
    /// The maintenance window is closed until then.
    Window(Timestamp),
    /// The canaries are done; waiting for `kubelift.dev/resume=<generation>`.
    Approval,
}

/// One node's place in the pass.
pub(super) struct Slot<'a> {
    pub node: &'a NodeView,
    pub nu: Option<&'a NodeUpgradeView>,
    pub seen: Observed,
    pub eviction_note: Option<String>,
}

/// The working state of one pass.
pub(super) struct Pass<'a> {
    pub input: &'a PlanInput,
    pub slots: Vec<Slot<'a>>,
    pub excluded: usize,
    pub actions: Vec<Action>,
    pub events: Vec<PlannedEvent>,
    pub pods_needed: Vec<String>,
    pub wake: Vec<Timestamp>,
    pub gate: Option<Gate>,
    /// Nodes this pass made unavailable (cordoned or sent to Execute).
    pub newly_unavailable: usize,
}

/// Plan one pass over a valid plan that is not being deleted.
#[must_use]
pub fn rollout(input: &PlanInput) -> Plan {
    let mut pass = Pass::new(input);
    if !input.plan.has_finalizer {
        pass.actions.push(Action::AddFinalizer);
    }

    pass.retry_and_refresh();
    pass.gate = pass.gate();
    if let Some(Gate::Window(opens)) = pass.gate {
        pass.wake.push(opens);
    }
    pass.advance_all();
    pass.start_nodes();
    pass.clean_untargeted();
    pass.finish()
}

impl<'a> Pass<'a> {
    fn new(input: &'a PlanInput) -> Self {
        let spec = &input.plan.spec;
        let selected: Vec<&NodeView> = input
            .nodes
            .iter()
            .filter(|node| selector::matches(spec.node_selector.as_ref(), &node.labels))
            .collect();
        let excluded = |node: &&NodeView| {
            node.labels
                .get(kubelift_crds::constants::EXCLUDE_LABEL)
                .map(String::as_str)
                == Some("true")
        };
        let targeted: Vec<&NodeView> = selected.iter().copied().filter(|n| !excluded(n)).collect();
        let ordered = order::ordered(
            &targeted,
            spec.rollout.order,
            input.operator_node.as_deref(),
        );
        let by_node: BTreeMap<&str, &NodeUpgradeView> = input
            .node_upgrades
            .iter()
            .map(|nu| (nu.spec.node_name.as_str(), nu))
            .collect();

        let slots = ordered
            .into_iter()
            .map(|node| {
                let nu = by_node.get(node.name.as_str()).copied();
                Slot {
                    node,
                    nu,
                    seen: observe(input, node, nu),
                    eviction_note: None,
                }
            })
            .collect();
        Pass {
            input,
            slots,
            excluded: selected.len() - targeted.len(),
            actions: Vec::new(),
            events: Vec::new(),
            pods_needed: Vec::new(),
            wake: Vec::new(),
            gate: None,
            newly_unavailable: 0,
        }
    }

    /// A new generation or a new `kubelift.dev/retry` value gives finished-but-not-upgraded
    /// nodes another attempt; NodeUpgrades not yet executing pick up a changed spec.
    fn retry_and_refresh(&mut self) {
        let plan = &self.input.plan;
        let new_generation = plan
            .status
            .observed_generation
            .is_some_and(|g| g != plan.generation);
        let new_retry = plan.retry.is_some() && plan.retry != plan.retry_handled;
        if new_retry {
            let value = plan.retry.clone().unwrap_or_default();
            self.actions.push(Action::MarkRetryHandled { value });
        }

        for index in 0..self.slots.len() {
            let retry = matches!(
                self.slots[index].seen,
                Observed::Done(Outcome::Failed(_) | Outcome::Skipped(_) | Outcome::Held(_))
            ) && (new_generation || new_retry);
            if retry || self.outdated(&self.slots[index]) {
                self.reprepare(index, retry);
            }
        }
    }

    fn outdated(&self, slot: &Slot<'_>) -> bool {
        let Some(nu) = slot.nu else {
            return false;
        };
        let settled = matches!(
            slot.seen,
            Observed::Preparing(_)
                | Observed::Prepared
                | Observed::Done(_)
                | Observed::HelperTimedOut
        );
        let upgraded_here = slot.seen == Observed::Done(Outcome::Succeeded)
            && super::observe::at_target(self.input, slot.node);
        let desired = self.spec_for(
            slot.node,
            nu.spec.stage,
            nu.spec.hold_reason.clone(),
            nu.spec.attempt,
        );
        settled && !upgraded_here && !same_work(&desired, &nu.spec)
    }

    fn reprepare(&mut self, index: usize, retry: bool) {
        let slot = &self.slots[index];
        let Some(nu) = slot.nu else {
            return;
        };
        let bump = retry || matches!(slot.seen, Observed::Done(_));
        let attempt = if bump {
            nu.spec.attempt + 1
        } else {
            nu.spec.attempt
        };
        let name = slot.node.name.clone();
        self.push_order(index, Stage::Prepare, None, attempt, None);
        if bump {
            self.event(
                EventKind::Normal,
                reasons::NODE_RETRIED,
                format!("node {name}: attempt {attempt}"),
            );
        }
        let deadline = after(
            self.input.now,
            self.input.plan.spec.verify.prepare_timeout_seconds,
        );
        self.slots[index].seen = Observed::Preparing(deadline);
    }

    fn gate(&self) -> Option<Gate> {
        let spec = &self.input.plan.spec;
        let failed = self.count(|s| {
            matches!(
                s,
                Observed::Done(Outcome::Failed(_)) | Observed::HelperTimedOut
            )
        });
        if failed > usize::try_from(spec.failure_policy.max_failed_nodes).unwrap_or(0) {
            return Some(Gate::Halted);
        }
        if spec.paused {
            return Some(Gate::Paused);
        }
        if spec.rollout.dry_run {
            return None;
        }
        if let Some(Opening::At(at)) = spec
            .window
            .as_ref()
            .and_then(|w| next_opening(w, self.input.now))
        {
            return Some(Gate::Window(at));
        }
        self.awaiting_approval().then_some(Gate::Approval)
    }

    fn awaiting_approval(&self) -> bool {
        let plan = &self.input.plan;
        let rollout = &plan.spec.rollout;
        let approved = plan.resume.as_deref() == Some(plan.generation.to_string().as_str());
        let work_left = self
            .slots
            .iter()
            .any(|s| matches!(s.seen, Observed::Candidate | Observed::Prepared));
        rollout.pause_after_canary
            && rollout.canary > 0
            && self.canaries_done()
            && !approved
            && work_left
    }

    pub(super) fn canaries_done(&self) -> bool {
        let succeeded = self.count(|s| *s == Observed::Done(Outcome::Succeeded));
        succeeded >= usize::try_from(self.input.plan.spec.rollout.canary).unwrap_or(0)
    }

    fn advance_all(&mut self) {
        for index in 0..self.slots.len() {
            advance::advance(self, index);
        }
    }

    fn start_nodes(&mut self) {
        if self.gate.is_some() {
            return;
        }
        let mut budget = self.budget();
        for index in 0..self.slots.len() {
            let slot = &self.slots[index];
            if slot.seen != Observed::Candidate || !slot.node.ready || budget == 0 {
                continue;
            }
            budget -= 1;
            let name = slot.node.name.clone();
            self.push_order(index, Stage::Prepare, None, 1, None);
            self.event(
                EventKind::Normal,
                reasons::NODE_STARTED,
                format!("node {name}: preparing"),
            );
            let deadline = after(
                self.input.now,
                self.input.plan.spec.verify.prepare_timeout_seconds,
            );
            self.slots[index].seen = Observed::Preparing(deadline);
        }
    }

    /// Nodes that may start now: the unavailability budget left, one at a time for canaries,
    /// unlimited for a dry run (preparing changes nothing on a node).
    fn budget(&self) -> usize {
        let spec = &self.input.plan.spec;
        if spec.rollout.dry_run {
            return usize::MAX;
        }
        let limit = preflight::max_unavailable(&spec.rollout.max_unavailable, self.slots.len());
        let in_flight = self.slots.iter().filter(|s| self.in_flight(s)).count();
        let not_ready = self
            .slots
            .iter()
            .filter(|s| !s.node.ready && !self.in_flight(s))
            .count();
        let left = limit.saturating_sub(in_flight + not_ready);
        if self.canaries_done() {
            left
        } else {
            usize::from(in_flight == 0).min(left)
        }
    }

    /// Whether a node holds a slot: the rollout works on it, or it still carries our cordon.
    pub(super) fn in_flight(&self, slot: &Slot<'_>) -> bool {
        slot.seen.is_active() || self.keeps_cordon(slot)
    }

    /// Whether our cordon stays on the node after this pass (finished nodes are uncordoned
    /// before anything new starts, and the reconciler stops at the first failed action).
    fn keeps_cordon(&self, slot: &Slot<'_>) -> bool {
        self.ours(slot.node) && !matches!(slot.seen, Observed::Done(_) | Observed::Upgraded)
    }

    /// Whether one more node may become unavailable: nodes cordoned by us or executing, plus
    /// NotReady nodes, stay within `maxUnavailable` even when nodes failed since they started.
    pub(super) fn may_take_down_one_more(&self) -> bool {
        let spec = &self.input.plan.spec;
        let limit = preflight::max_unavailable(&spec.rollout.max_unavailable, self.slots.len());
        let down = self
            .slots
            .iter()
            .filter(|s| {
                self.keeps_cordon(s)
                    || !s.node.ready
                    || matches!(s.seen, Observed::Executing | Observed::Soaking(_))
            })
            .count();
        down + self.newly_unavailable < limit
    }

    pub(super) fn ours(&self, node: &NodeView) -> bool {
        node.cordoned_by.as_deref() == Some(self.input.plan.name.as_str())
    }

    /// NodeUpgrades of nodes that left the plan are deleted unless they are executing; our
    /// cordon is lifted from nodes no longer worked on.
    fn clean_untargeted(&mut self) {
        let targeted: Vec<&str> = self.slots.iter().map(|s| s.node.name.as_str()).collect();
        for nu in &self.input.node_upgrades {
            let gone = !targeted.contains(&nu.spec.node_name.as_str());
            if gone && nu.spec.stage != Stage::Execute && !nu.deleting {
                self.actions.push(Action::DeleteNodeUpgrade {
                    name: nu.name.clone(),
                });
            }
        }
        for node in &self.input.nodes {
            let executing = self
                .input
                .node_upgrades
                .iter()
                .any(|nu| nu.spec.node_name == node.name && nu.spec.stage == Stage::Execute);
            if self.ours(node) && !targeted.contains(&node.name.as_str()) && !executing {
                self.actions.push(Action::Uncordon {
                    node: node.name.clone(),
                });
            }
        }
    }

    pub(super) fn spec_for(
        &self,
        node: &NodeView,
        stage: Stage,
        hold_reason: Option<String>,
        attempt: i32,
    ) -> NodeUpgradeSpec {
        let spec = &self.input.plan.spec;
        NodeUpgradeSpec {
            node_name: node.name.clone(),
            plan: self.input.plan.name.clone(),
            version: spec.version.clone(),
            binary: spec
                .binary
                .for_arch(node.labels.get(ARCH_LABEL).map(String::as_str)),
            stage,
            hold_reason,
            attempt,
            containers: spec.containers.clone(),
            verify: spec.verify.clone(),
            rollback: spec.failure_policy.rollback,
        }
    }

    /// Queue a NodeUpgrade apply for slot `index` with the stage, hold reason and attempt given.
    pub(super) fn push_order(
        &mut self,
        index: usize,
        stage: Stage,
        hold_reason: Option<String>,
        attempt: i32,
        evicting_since: Option<Timestamp>,
    ) {
        let slot = &self.slots[index];
        let unchanged = slot
            .nu
            .filter(|nu| nu.spec.stage == stage && nu.spec.attempt == attempt);
        let stage_since = unchanged
            .and_then(|nu| nu.stage_since)
            .unwrap_or(self.input.now);
        let order = NodeUpgradeOrder {
            name: node_upgrade_name(&self.input.plan.name, &slot.node.name),
            spec: self.spec_for(slot.node, stage, hold_reason, attempt),
            stage_since,
            evicting_since,
        };
        self.actions.push(Action::ApplyNodeUpgrade(order));
    }

    pub(super) fn event(&mut self, kind: EventKind, reason: &'static str, note: String) {
        self.events.push(PlannedEvent { kind, reason, note });
    }

    pub(super) fn count(&self, predicate: impl Fn(&Observed) -> bool) -> usize {
        self.slots.iter().filter(|s| predicate(&s.seen)).count()
    }

    fn finish(mut self) -> Plan {
        let summary = self.summary();
        let mut status = status::build(self.input, &summary);
        if let Some(event) = status::transition_event(self.input, &summary) {
            self.events.push(event);
        }
        if summary.failed > self.input.plan.status.failed {
            let note = summary.degraded.clone().unwrap_or_default();
            self.event(EventKind::Warning, reasons::NODE_FAILED, note);
        }
        self.expire(&mut status);
        let now = self.input.now;
        let requeue_after = self.wake.iter().filter(|at| **at > now).min().map(|at| {
            Duration::from_secs(u64::try_from(at.duration_since(now).as_secs()).unwrap_or(0) + 1)
        });
        Plan {
            actions: self.actions,
            status,
            events: self.events,
            pods_needed: self.pods_needed,
            requeue_after,
        }
    }

    fn expire(&mut self, status: &mut kubelift_crds::KubeletUpgradeStatus) {
        let ttl = self.input.plan.spec.ttl_seconds_after_finished;
        let (Some(ttl), Some(done)) = (ttl, status.completion_time.as_ref()) else {
            return;
        };
        let at = after(done.0, ttl);
        if self.input.now >= at {
            self.actions.push(Action::DeletePlan);
            let note = format!("deleted {ttl}s after it finished");
            self.event(EventKind::Normal, reasons::EXPIRED, note);
        } else {
            self.wake.push(at);
        }
    }

    fn summary(&self) -> Summary {
        let count =
            |p: &dyn Fn(&Observed) -> bool| i32::try_from(self.count(p)).unwrap_or(i32::MAX);
        let set_aside = self
            .slots
            .iter()
            .filter(|s| s.seen == Observed::Candidate && !s.node.ready);
        let failed = count(&|s| matches!(s, Observed::Done(Outcome::Failed(_))));
        let evicting_blocked = self
            .slots
            .iter()
            .filter(|s| s.eviction_note.is_some())
            .count();
        let mut summary = Summary {
            targeted: i32::try_from(self.slots.len()).unwrap_or(i32::MAX),
            upgraded: count(&|s| {
                matches!(
                    s,
                    Observed::Upgraded | Observed::Soaking(_) | Observed::Done(Outcome::Succeeded)
                )
            }),
            skipped: i32::try_from(self.excluded + set_aside.count()).unwrap_or(i32::MAX)
                + count(&|s| {
                    matches!(
                        s,
                        Observed::Done(Outcome::Skipped(_)) | Observed::Downgrade(_)
                    )
                }),
            in_progress: count(&|s| s.is_active()),
            failed,
            blocked: count(&|s| matches!(s, Observed::Done(Outcome::Held(_))))
                + i32::try_from(evicting_blocked).unwrap_or(0),
            predicted_restarts: self.predicted_restarts(),
            started: self
                .slots
                .iter()
                .any(|s| s.nu.is_some() || s.seen.is_active()),
            ..Summary::default()
        };
        summary.phase = self.phase(&summary);
        summary.message = self.message();
        summary.degraded = self.degraded();
        summary
    }

    fn phase(&self, summary: &Summary) -> PlanPhase {
        let work_left = self.slots.iter().any(|s| {
            s.seen.is_active()
                || matches!(s.seen, Observed::Candidate | Observed::Claimed(_))
                || self.ours(s.node)
        });
        match self.gate {
            Some(Gate::Halted) => PlanPhase::Halted,
            _ if !work_left => PlanPhase::Complete,
            Some(Gate::Paused) => PlanPhase::Paused,
            Some(Gate::Window(_)) => PlanPhase::WaitingForWindow,
            Some(Gate::Approval) => PlanPhase::WaitingForApproval,
            None if summary.started => PlanPhase::Progressing,
            None => PlanPhase::Pending,
        }
    }

    fn predicted_restarts(&self) -> i32 {
        self.slots
            .iter()
            .filter(|s| {
                !matches!(
                    s.seen,
                    Observed::Done(Outcome::Succeeded) | Observed::Upgraded
                )
            })
            .filter_map(|s| s.nu?.status.as_ref()?.prediction.as_ref())
            .map(|p| p.will_restart + p.unknown)
            .sum()
    }

    /// The message: what blocks progress, most pressing first.
    fn message(&self) -> Option<String> {
        let mut parts: Vec<String> = Vec::new();
        let failed = self.named(|s| matches!(s, Observed::Done(Outcome::Failed(_))));
        match self.gate {
            Some(Gate::Halted) => {
                parts.push(format!("halted: failure budget exhausted ({failed})"));
            }
            Some(Gate::Paused) => parts.push("paused: spec.paused is true".to_owned()),
            Some(Gate::Window(at)) => {
                parts.push(format!("maintenance window closed; opens at {at}"));
            }
            Some(Gate::Approval) => parts.push(format!(
                "canary done; approve with annotation {}={}",
                kubelift_crds::constants::RESUME_ANNOTATION,
                self.input.plan.generation
            )),
            None => {}
        }
        parts.extend(self.slots.iter().filter_map(|s| s.eviction_note.clone()));
        parts.extend(self.slots.iter().filter_map(|s| match &s.seen {
            Observed::Done(Outcome::Held(why) | Outcome::Skipped(why)) => {
                Some(format!("node {} held: {why}", s.node.name))
            }
            Observed::Claimed(other) => {
                Some(format!("node {} is claimed by plan {other}", s.node.name))
            }
            Observed::Downgrade(from) => Some(format!(
                "node {} skipped: {from} is newer than the target (allowDowngrade is false)",
                s.node.name
            )),
            _ => None,
        }));
        let set_aside = self.named(|s| *s == Observed::Candidate);
        let not_ready: Vec<&str> = self
            .slots
            .iter()
            .filter(|s| s.seen == Observed::Candidate && !s.node.ready)
            .map(|s| s.node.name.as_str())
            .collect();
        if !not_ready.is_empty() {
            parts.push(format!("set aside until Ready: {}", list(&not_ready)));
        }
        if self.gate.is_none() && self.input.plan.spec.rollout.dry_run && set_aside.is_empty() {
            parts.push(format!(
                "dry run: {} containers would restart",
                self.predicted_restarts()
            ));
        }
        (!parts.is_empty()).then(|| shorten(&parts))
    }

    fn degraded(&self) -> Option<String> {
        let failed = self.slots.iter().filter_map(|s| match &s.seen {
            Observed::Done(Outcome::Failed(why)) => {
                Some(format!("node {} failed: {why}", s.node.name))
            }
            _ => None,
        });
        let held = self.slots.iter().filter_map(|s| match &s.seen {
            Observed::Done(Outcome::Held(why)) => Some(format!("node {} held: {why}", s.node.name)),
            _ => None,
        });
        let parts: Vec<String> = failed.chain(held).collect();
        (!parts.is_empty()).then(|| shorten(&parts))
    }

    fn named(&self, predicate: impl Fn(&Observed) -> bool) -> String {
        let names: Vec<&str> = self
            .slots
            .iter()
            .filter(|s| predicate(&s.seen))
            .map(|s| s.node.name.as_str())
            .collect();
        list(&names)
    }
}

/// Whether two NodeUpgrade specs ask for the same work (stage and attempt aside).
fn same_work(a: &NodeUpgradeSpec, b: &NodeUpgradeSpec) -> bool {
    a.version == b.version
        && a.binary == b.binary
        && a.containers == b.containers
        && a.verify == b.verify
        && a.rollback == b.rollback
}

fn list(names: &[&str]) -> String {
    let mut shown: Vec<String> = names
        .iter()
        .take(NAMED_NODES)
        .map(|n| (*n).to_owned())
        .collect();
    if names.len() > NAMED_NODES {
        shown.push(format!("and {} more", names.len() - NAMED_NODES));
    }
    shown.join(", ")
}

fn shorten(parts: &[String]) -> String {
    let mut shown: Vec<String> = parts.iter().take(NAMED_NODES).cloned().collect();
    if parts.len() > NAMED_NODES {
        shown.push(format!("and {} more", parts.len() - NAMED_NODES));
    }
    shown.join("; ")
}
