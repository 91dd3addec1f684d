//! Sentence-named scenarios, each one rollout story told through the simulated world.

use kubelift_crds::{ContainerPolicy, DrainTimeoutAction, PlanPhase, Stage};

use super::*;
use crate::planner::{BlockedEviction, PodView};

fn pod(namespace: &str, name: &str) -> PodView {
    PodView {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        ..PodView::default()
    }
}

fn condition<'a>(
    world: &'a World,
    kind: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    world
        .plan
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == kind)
        .unwrap()
}

#[test]
fn rollout_upgrades_every_node_and_completes() {
    let mut world = World::new(spec(), nodes(4));
    world.run(40);
    assert_eq!(world.plan.status.phase, Some(PlanPhase::Complete));
    assert_eq!(world.plan.status.progress.as_deref(), Some("4/4"));
    assert!(
        world
            .nodes
            .values()
            .all(|n| n.kubelet_version == TARGET && !n.unschedulable)
    );
}

#[test]
fn canary_node_upgrades_alone_before_the_first_batch() {
    let mut spec = spec();
    spec.rollout.max_unavailable = max_unavailable(3);
    let mut world = World::new(spec, nodes(5));
    world.reconcile();
    assert_eq!(world.nus.len(), 1, "only the canary starts");
    for _ in 0..2 {
        world.helpers_step();
        world.reconcile();
        assert_eq!(
            world.nus.len(),
            1,
            "nothing joins the canary before it completes"
        );
    }
    world.helpers_step();
    world.reconcile();
    assert_eq!(world.nus.len(), 4, "the first batch fills all three slots");
}

#[test]
fn nodes_go_in_name_order_control_plane_first_and_the_operators_node_last() {
    let mut nodes = nodes(4);
    nodes[3].labels.insert(
        crate::planner::CONTROL_PLANE_LABEL.to_owned(),
        String::new(),
    );
    let mut world = World::new(spec(), nodes);
    world.operator_node = Some("node-00".to_owned());
    world.run(40);
    assert_eq!(
        world.created_order(),
        ["node-03", "node-01", "node-02", "node-00"]
    );
}

#[test]
fn zone_round_robin_alternates_zones() {
    let mut spec = spec();
    spec.rollout.order = kubelift_crds::RolloutOrder::ZoneRoundRobin;
    let mut nodes = nodes(4);
    for (node, zone) in nodes.iter_mut().zip(["a", "a", "b", "b"]) {
        node.labels
            .insert(crate::planner::ZONE_LABEL.to_owned(), zone.to_owned());
    }
    let mut world = World::new(spec, nodes);
    world.run(40);
    assert_eq!(
        world.created_order(),
        ["node-00", "node-02", "node-01", "node-03"]
    );
}

#[test]
fn manually_cordoned_node_stays_cordoned_after_upgrade() {
    let mut nodes = nodes(2);
    nodes[0].unschedulable = true;
    let mut world = World::new(spec(), nodes);
    world.run(30);
    let manual = &world.nodes["node-00"];
    assert_eq!(manual.kubelet_version, TARGET);
    assert!(manual.unschedulable && manual.cordoned_by.is_none());
    assert!(
        !world.nodes["node-01"].unschedulable,
        "our own cordon is lifted"
    );
}

#[test]
fn nodes_at_target_and_excluded_nodes_are_never_touched() {
    let mut nodes = nodes(3);
    nodes[0].kubelet_version = TARGET.to_owned();
    nodes[1]
        .labels
        .insert("kubelift.dev/exclude".to_owned(), "true".to_owned());
    let mut world = World::new(spec(), nodes);
    world.run(20);
    assert_eq!(world.created_order(), ["node-02"]);
    assert_eq!(world.plan.status.targeted, 2);
    assert_eq!(world.plan.status.skipped, 1);
}

#[test]
fn not_ready_node_is_set_aside_not_waited_on() {
    let mut spec = spec();
    spec.rollout.max_unavailable = max_unavailable(2);
    let mut nodes = nodes(3);
    nodes[0].ready = false;
    let mut world = World::new(spec, nodes);
    world.run(30);
    assert_eq!(world.created_order(), ["node-01", "node-02"]);
    assert_eq!(world.plan.status.phase, Some(PlanPhase::Progressing));
    assert!(
        world
            .plan
            .status
            .message
            .as_deref()
            .unwrap()
            .contains("set aside until Ready: node-00")
    );

    world.nodes.get_mut("node-00").unwrap().ready = true;
    world.run(10);
    assert_eq!(world.plan.status.phase, Some(PlanPhase::Complete));
}

#[test]
fn nodes_added_while_the_plan_runs_are_picked_up() {
    let mut world = World::new(spec(), nodes(2));
    world.run(4);
    world.nodes.insert("node-99".to_owned(), node("node-99"));
    world.run(30);
    assert!(world.created_order().contains(&"node-99".to_owned()));
    assert_eq!(world.plan.status.progress.as_deref(), Some("3/3"));
}

#[test]
fn failed_node_halts_the_plan_at_the_failure_budget() {
    let mut world = World::new(spec(), nodes(3));
    world.scripts.insert(
        "node-00".to_owned(),
        Script {
            fail: true,
            ..Script::default()
        },
    );
    world.run(20);
    assert_eq!(world.plan.status.phase, Some(PlanPhase::Halted));
    assert_eq!(world.created_order(), ["node-00"]);
    assert_eq!(world.plan.status.failed, 1);
    assert_eq!(condition(&world, "Degraded").status, "True");
}

#[test]
fn reapplying_a_fixed_spec_retries_failed_nodes() {
    let mut world = World::new(spec(), nodes(2));
    world.scripts.insert(
        "node-00".to_owned(),
        Script {
            fail: true,
            ..Script::default()
        },
    );
    world.run(10);
    assert_eq!(world.plan.status.phase, Some(PlanPhase::Halted));

    world.scripts.clear();
    world.plan.generation = 2;
    world.plan.spec.failure_policy.max_failed_nodes = 1;
    world.run(30);
    assert_eq!(world.nu("node-00").unwrap().spec.attempt, 2);
    assert_eq!(world.plan.status.phase, Some(PlanPhase::Complete));
}

#[test]
fn retry_annotation_bumps_the_attempt_of_failed_nodes_once() {
    let mut world = World::new(spec(), nodes(1));
    world.scripts.insert(
        "node-00".to_owned(),
        Script {
            fail: true,
            ..Script::default()
        },
    );
    world.run(10);
    world.plan.retry = Some("1".to_owned());
    world.run(10);
    assert_eq!(
        world.nu("node-00").unwrap().spec.attempt,
        2,
        "one bump per retry value"
    );
    world.scripts.clear();
    world.plan.retry = Some("2".to_owned());
    world.run(10);
    assert_eq!(world.plan.status.phase, Some(PlanPhase::Complete));
}

#[test]
fn deleting_the_plan_uncordons_nodes_it_cordoned() {
    let mut nodes = nodes(3);
    nodes[2].unschedulable = true;
    let mut world = World::new(spec(), nodes);
    world.reconcile();
    world.helpers_step();
    world.reconcile();
    assert_eq!(world.nodes["node-00"].cordoned_by.as_deref(), Some("patch"));

    world.plan.deleting = true;
    world.reconcile();
    assert!(
        world.nodes["node-00"].unschedulable,
        "mid-swap nodes keep their cordon"
    );
    world.helpers_step();
    world.helpers_step();
    world.run(3);
    assert!(!world.nodes["node-00"].unschedulable);
    assert!(
        world.nodes["node-02"].unschedulable,
        "someone else's cordon stays"
    );
    assert!(world.nus.is_empty());
    assert!(!world.plan.has_finalizer);
}

#[test]
fn execute_waits_until_the_helper_observed_the_current_generation() {
    let mut world = World::new(spec(), nodes(1));
    world.reconcile();
    world.helpers_step();
    let nu = world.nus.values_mut().next().unwrap();
    nu.generation += 1;
    world.reconcile();
    assert_eq!(world.nu("node-00").unwrap().spec.stage, Stage::Prepare);
}

#[test]
fn preserve_holds_a_node_naming_the_containers_and_moves_on() {
    let mut world = World::new(spec(), nodes(2));
    let script = Script {
        restarting: vec![restarting("shop", "cart-7", false)],
        ..Script::default()
    };
    world.scripts.insert("node-00".to_owned(), script);
    world.run(20);
    let held = world.nu("node-00").unwrap();
    assert_eq!(held.spec.stage, Stage::Hold);
    assert!(
        held.spec
            .hold_reason
            .as_deref()
            .unwrap()
            .contains("shop/cart-7/app")
    );
    assert_eq!(world.nodes["node-01"].kubelet_version, TARGET);
    assert_eq!(world.plan.status.blocked, 1);
}

#[test]
fn evict_if_restart_evicts_exactly_the_restarting_pods() {
    let mut spec = spec();
    spec.containers.policy = ContainerPolicy::EvictIfRestart;
    let mut world = World::new(spec, nodes(1));
    let script = Script {
        restarting: vec![restarting("shop", "cart-7", false)],
        ..Script::default()
    };
    world.scripts.insert("node-00".to_owned(), script);
    world.pods.insert(
        "node-00".to_owned(),
        vec![pod("shop", "cart-7"), pod("shop", "web-1")],
    );
    world.run(20);
    let evicted: Vec<&Action> = world
        .log
        .iter()
        .filter(|a| matches!(a, Action::Evict { .. }))
        .collect();
    assert_eq!(evicted.len(), 1);
    assert!(matches!(evicted[0], Action::Evict { pod, .. } if pod == "cart-7"));
    assert_eq!(world.nodes["node-00"].kubelet_version, TARGET);
}

#[test]
fn drain_never_evicts_daemon_set_or_mirror_pods() {
    let mut spec = spec();
    spec.containers.policy = ContainerPolicy::Drain;
    let mut world = World::new(spec, nodes(1));
    let daemon = PodView {
        daemon_set: true,
        ..pod("kube-system", "proxy")
    };
    let mirror = PodView {
        mirror: true,
        ..pod("kube-system", "etcd")
    };
    world.pods.insert(
        "node-00".to_owned(),
        vec![daemon, mirror, pod("shop", "web-1")],
    );
    world.run(20);
    assert_eq!(world.pods["node-00"].len(), 2);
    assert_eq!(world.nodes["node-00"].kubelet_version, TARGET);
}

#[test]
fn blocked_eviction_names_the_pod_and_the_budget_in_the_message() {
    let mut spec = spec();
    spec.containers.policy = ContainerPolicy::Drain;
    let mut world = World::new(spec, nodes(1));
    world
        .pods
        .insert("node-00".to_owned(), vec![pod("shop", "web-1")]);
    world.reconcile();
    world.helpers_step();
    let mut input = world.input();
    input.blocked_evictions.insert(
        "node-00".to_owned(),
        BlockedEviction {
            pod: "shop/web-1".to_owned(),
            budget: Some("shop/web-pdb".to_owned()),
        },
    );
    input.pods = world.pods.clone();
    let planned = plan(&input);
    let message = planned.status.message.unwrap();
    assert!(
        message.contains("shop/web-1") && message.contains("shop/web-pdb"),
        "{message}"
    );
}

#[test]
fn drain_timeout_with_skip_sets_the_node_aside_and_moves_on() {
    let mut spec = spec();
    spec.containers.policy = ContainerPolicy::Drain;
    spec.drain.on_timeout = DrainTimeoutAction::Skip;
    spec.drain.timeout_seconds = 30;
    let mut world = World::new(spec, nodes(2));
    let stuck = PodView {
        terminating: true,
        ..pod("shop", "web-1")
    };
    world.pods.insert("node-00".to_owned(), vec![stuck]);
    world.run(5);
    world.advance(60);
    world.run(20);
    assert_eq!(world.nu("node-00").unwrap().spec.stage, Stage::Hold);
    assert!(
        !world.nodes["node-00"].unschedulable,
        "our cordon is lifted from the skipped node"
    );
    assert_eq!(world.nodes["node-01"].kubelet_version, TARGET);
    assert_eq!(world.plan.status.skipped, 1);
}

#[test]
fn invalid_spec_names_every_bad_field_and_creates_nothing() {
    let mut spec = spec();
    spec.version = "latest".to_owned();
    spec.binary.sha256 = "xyz".to_owned();
    spec.rollout.max_unavailable = IntOrString::String("0%".to_owned());
    let mut world = World::new(spec, nodes(2));
    let planned = world.reconcile();
    assert!(planned.actions.is_empty());
    assert_eq!(world.plan.status.phase, Some(PlanPhase::Invalid));
    let valid = condition(&world, "Valid");
    assert_eq!(valid.status, "False");
    for field in [
        "spec.version",
        "spec.binary.sha256",
        "spec.rollout.maxUnavailable",
    ] {
        assert!(
            valid.message.contains(field),
            "{field} missing from {:?}",
            valid.message
        );
    }
    assert_eq!(planned.events.len(), 1);
    assert!(
        world.reconcile().events.is_empty(),
        "the Event is sent once, on the transition"
    );
}

#[test]
fn target_newer_than_the_api_server_is_refused() {
    let mut spec = spec();
    spec.version = "v1.34.0".to_owned();
    let mut world = World::new(spec, nodes(1));
    world.reconcile();
    assert_eq!(world.plan.status.phase, Some(PlanPhase::Invalid));
    assert!(world.nus.is_empty());
}

#[test]
fn target_more_than_three_minors_behind_the_api_server_is_refused() {
    let mut spec = spec();
    spec.version = "v1.29.0".to_owned();
    let mut world = World::new(spec, nodes(1));
    world.reconcile();
    assert_eq!(world.plan.status.phase, Some(PlanPhase::Invalid));
}

#[test]
fn downgrade_is_skipped_unless_allowed() {
    let mut nodes = nodes(2);
    nodes[0].kubelet_version = "v1.33.0".to_owned();
    let mut world = World::new(spec(), nodes);
    world.run(20);
    assert_eq!(world.created_order(), ["node-01"]);
    assert!(
        world
            .plan
            .status
            .message
            .as_deref()
            .unwrap()
            .contains("allowDowngrade")
    );

    world.plan.spec.allow_downgrade = true;
    world.plan.generation = 2;
    world.run(20);
    assert_eq!(world.nodes["node-00"].kubelet_version, TARGET);
}

#[test]
fn node_claimed_by_another_plan_is_reported_and_waited_on() {
    let mut world = World::new(spec(), nodes(2));
    world
        .claims
        .insert("node-00".to_owned(), "other".to_owned());
    world.run(20);
    assert_eq!(world.created_order(), ["node-01"]);
    assert_eq!(world.plan.status.phase, Some(PlanPhase::Progressing));
    assert!(
        world
            .plan
            .status
            .message
            .as_deref()
            .unwrap()
            .contains("claimed by plan other")
    );

    world.claims.clear();
    world.run(20);
    assert_eq!(world.plan.status.phase, Some(PlanPhase::Complete));
}

#[test]
fn approval_gate_waits_for_the_resume_annotation_of_this_generation() {
    let mut spec = spec();
    spec.rollout.pause_after_canary = true;
    let mut world = World::new(spec, nodes(3));
    world.run(20);
    assert_eq!(world.created_order().len(), 1);
    assert_eq!(world.plan.status.phase, Some(PlanPhase::WaitingForApproval));

    world.plan.resume = Some("1".to_owned());
    world.run(30);
    assert_eq!(world.plan.status.phase, Some(PlanPhase::Complete));
}

#[test]
fn paused_plan_starts_nothing_while_the_node_in_flight_finishes() {
    let mut world = World::new(spec(), nodes(3));
    world.reconcile();
    world.helpers_step();
    world.reconcile();
    world.plan.spec.paused = true;
    world.run(20);
    assert_eq!(world.created_order(), ["node-00"]);
    assert_eq!(world.nodes["node-00"].kubelet_version, TARGET);
    assert_eq!(world.plan.status.phase, Some(PlanPhase::Paused));
}

#[test]
fn closed_window_reports_when_it_opens_and_then_proceeds() {
    let mut spec = spec();
    spec.window = Some(kubelift_crds::MaintenanceWindow {
        days: vec![],
        start: "22:00".to_owned(),
        end: "23:00".to_owned(),
        time_zone: "Europe/Berlin".to_owned(),
    });
    let mut world = World::new(spec, nodes(1));
    let planned = world.reconcile();
    assert_eq!(world.plan.status.phase, Some(PlanPhase::WaitingForWindow));
    assert!(world.nus.is_empty());
    let wait = planned.requeue_after.unwrap().as_secs();
    world.advance(i64::try_from(wait).unwrap());
    world.run(10);
    assert_eq!(world.plan.status.phase, Some(PlanPhase::Complete));
}

#[test]
fn silent_helper_fails_the_node_after_the_prepare_timeout() {
    let mut world = World::new(spec(), nodes(1));
    world.reconcile();
    world.advance(301);
    world.reconcile();
    let nu = world.nu("node-00").unwrap();
    assert!(
        nu.spec
            .hold_reason
            .as_deref()
            .unwrap()
            .starts_with("HelperUnavailable")
    );
    assert_eq!(world.plan.status.failed, 1);
}

#[test]
fn dry_run_prepares_every_node_and_executes_none() {
    let mut spec = spec();
    spec.rollout.dry_run = true;
    let mut world = World::new(spec, nodes(3));
    let script = Script {
        restarting: vec![restarting("shop", "cart-7", false)],
        ..Script::default()
    };
    world.scripts.insert("node-01".to_owned(), script);
    world.run(10);
    assert_eq!(world.nus.len(), 3);
    assert!(world.nus.values().all(|nu| nu.spec.stage == Stage::Prepare));
    assert!(world.nodes.values().all(|n| !n.unschedulable));
    assert_eq!(world.plan.status.phase, Some(PlanPhase::Complete));
    assert_eq!(world.plan.status.predicted_restarts, 1);
}

#[test]
fn an_unchanged_world_plans_no_writes() {
    let mut world = World::new(spec(), nodes(2));
    world.reconcile();
    let again = plan(&world.input());
    assert!(again.actions.is_empty(), "{:?}", again.actions);
    assert_eq!(again.status, world.plan.status);
}

#[test]
fn conditions_keep_their_transition_time_while_unchanged() {
    let mut world = World::new(spec(), nodes(3));
    world.reconcile();
    let first = condition(&world, "Valid").last_transition_time.clone();
    world.advance(100);
    world.reconcile();
    assert_eq!(condition(&world, "Valid").last_transition_time, first);
}

#[test]
fn finished_plan_is_deleted_after_its_ttl() {
    let mut world = World::new(spec(), nodes(1));
    world.plan.spec.ttl_seconds_after_finished = Some(60);
    world.run(10);
    assert!(!world.plan.deleting);
    world.advance(61);
    world.reconcile();
    assert!(world.plan.deleting);
}
