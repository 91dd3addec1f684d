//! Property tests: random clusters and random orders of events (helpers stepping, time passing,
//! nodes flapping, nodes joining), with one invariant checked after every reconcile.

use kubelift_crds::{NodePhase, PlanPhase, Stage};
use proptest::prelude::*;

use super::*;
use crate::planner::{CONTROL_PLANE_LABEL, ZONE_LABEL, ordered};

#[derive(Clone, Debug)]
enum Event {
    Reconcile,
    Helper(usize),
    Tick(i64),
    Flap(usize),
    Join,
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => Just(Event::Reconcile),
        4 => (0usize..12).prop_map(Event::Helper),
        1 => (1i64..40).prop_map(Event::Tick),
        1 => (0usize..12).prop_map(Event::Flap),
        1 => Just(Event::Join),
    ]
}

#[derive(Clone, Debug)]
struct Cluster {
    nodes: Vec<NodeView>,
    max_unavailable: i32,
    canary: i32,
    fail: Vec<bool>,
    events: Vec<Event>,
}

fn cluster() -> impl Strategy<Value = Cluster> {
    (2usize..10, 1i32..4, 0i32..3)
        .prop_flat_map(|(count, max, canary)| {
            let node = (any::<bool>(), 0u8..3, any::<bool>(), 0u8..10, any::<bool>());
            (
                proptest::collection::vec(node, count),
                Just(max),
                Just(canary),
                proptest::collection::vec(any::<bool>(), count),
                proptest::collection::vec(event(), 20..120),
            )
        })
        .prop_map(|(shape, max_unavailable, canary, fail, events)| {
            let nodes = shape
                .into_iter()
                .enumerate()
                .map(|(i, (control_plane, zone, at_target, flags, manual))| {
                    let mut n = node(&format!("node-{i:02}"));
                    if control_plane {
                        n.labels
                            .insert(CONTROL_PLANE_LABEL.to_owned(), String::new());
                    }
                    n.labels
                        .insert(ZONE_LABEL.to_owned(), format!("zone-{zone}"));
                    if at_target && flags < 2 {
                        n.kubelet_version = TARGET.to_owned();
                    }
                    if flags == 3 {
                        n.labels
                            .insert("kubelift.dev/exclude".to_owned(), "true".to_owned());
                    }
                    n.ready = flags != 4;
                    n.unschedulable = manual && flags == 5;
                    n
                })
                .collect();
            let fail = fail
                .into_iter()
                .map(|f| f && max_unavailable == 2)
                .collect();
            Cluster {
                nodes,
                max_unavailable,
                canary,
                fail,
                events,
            }
        })
}

fn world(cluster: &Cluster) -> World {
    let mut spec = spec();
    spec.rollout.max_unavailable = max_unavailable(cluster.max_unavailable);
    spec.rollout.canary = cluster.canary;
    spec.failure_policy.max_failed_nodes = 1;
    let mut world = World::new(spec, cluster.nodes.clone());
    for (node, fail) in cluster.nodes.iter().zip(&cluster.fail) {
        world.scripts.insert(
            node.name.clone(),
            Script {
                fail: *fail,
                ..Script::default()
            },
        );
    }
    world
}

/// Play the events; call `check(before, after)` around every reconcile.
fn play(cluster: &Cluster, mut check: impl FnMut(&World, &World)) -> World {
    let mut world = world(cluster);
    let mut joined = 0;
    for event in &cluster.events {
        match event {
            Event::Reconcile => {
                let before = snapshot(&world);
                world.reconcile();
                check(&before, &world);
            }
            Event::Helper(i) => {
                let name = format!("node-{:02}", i % world.nodes.len().max(1));
                world.helper_step(&name);
            }
            Event::Tick(seconds) => world.advance(*seconds),
            Event::Flap(i) => {
                let name = format!("node-{:02}", i % world.nodes.len().max(1));
                if let Some(node) = world.nodes.get_mut(&name) {
                    node.ready = !node.ready;
                }
            }
            Event::Join => {
                joined += 1;
                let name = format!("late-{joined}");
                world.nodes.insert(name.clone(), node(&name));
            }
        }
    }
    world
}

fn snapshot(world: &World) -> World {
    let mut copy = World::new(
        world.plan.spec.clone(),
        world.nodes.values().cloned().collect(),
    );
    copy.plan = world.plan.clone();
    copy.nus = world.nus.clone();
    copy.log = world.log.clone();
    copy
}

fn new_actions<'a>(before: &World, after: &'a World) -> &'a [Action] {
    &after.log[before.log.len()..]
}

fn started(before: &World, after: &World) -> Vec<String> {
    new_actions(before, after)
        .iter()
        .filter_map(|a| match a {
            Action::ApplyNodeUpgrade(order) if !before.nus.contains_key(&order.name) => {
                Some(order.spec.node_name.clone())
            }
            _ => None,
        })
        .collect()
}

fn active(world: &World) -> usize {
    world
        .nus
        .values()
        .filter(|nu| {
            let phase = nu
                .status
                .as_ref()
                .filter(|s| s.observed_generation == Some(nu.generation))
                .and_then(|s| s.phase);
            nu.spec.stage != Stage::Hold && !phase.is_some_and(NodePhase::is_terminal)
        })
        .count()
}

fn succeeded(world: &World) -> usize {
    world
        .nus
        .values()
        .filter(|nu| nu.status.as_ref().and_then(|s| s.phase) == Some(NodePhase::Succeeded))
        .count()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn never_more_than_max_unavailable_nodes_in_flight(cluster in cluster()) {
        let limit = usize::try_from(cluster.max_unavailable).unwrap();
        play(&cluster, |before, after| {
            let (was, now) = (before.unavailable(), after.unavailable());
            assert!(now <= limit.max(was), "{now} unavailable > {limit} (was {was})");
        });
    }

    #[test]
    fn canary_nodes_complete_alone_first(cluster in cluster()) {
        let canary = usize::try_from(cluster.canary).unwrap();
        play(&cluster, |before, after| {
            if succeeded(before) < canary && !started(before, after).is_empty() {
                assert!(active(after) <= 1, "a node joined a canary in flight");
            }
        });
    }

    #[test]
    fn nodes_start_in_the_deterministic_order(cluster in cluster()) {
        let world = play(&cluster, |_, _| {});
        let order: Vec<String> = {
            let nodes: Vec<&NodeView> = world.nodes.values().collect();
            ordered(&nodes, world.plan.spec.rollout.order, None)
                .into_iter()
                .map(|n| n.name.clone())
                .collect()
        };
        let position = |name: &String| order.iter().position(|n| n == name).unwrap();
        let created = world.created_order();
        let ready_initially: Vec<&String> = created
            .iter()
            .filter(|n| cluster.nodes.iter().any(|c| &c.name == *n && c.ready))
            .collect();
        let events_flap = cluster.events.iter().any(|e| matches!(e, Event::Flap(_) | Event::Join));
        if !events_flap {
            prop_assert!(ready_initially.windows(2).all(|w| position(w[0]) < position(w[1])));
        }
    }

    #[test]
    fn planning_is_deterministic(cluster in cluster()) {
        let world = play(&cluster, |_, _| {});
        let input = world.input();
        prop_assert_eq!(plan(&input), plan(&input));
    }

    #[test]
    fn nodes_at_target_and_excluded_nodes_get_no_work_order(cluster in cluster()) {
        let world = play(&cluster, |_, _| {});
        for node in &cluster.nodes {
            let untouchable = node.kubelet_version == TARGET
                || node.labels.get("kubelift.dev/exclude").is_some_and(|v| v == "true");
            if untouchable {
                prop_assert!(world.nu(&node.name).is_none(), "{} was touched", node.name);
            }
        }
    }

    #[test]
    fn a_manual_cordon_is_never_lifted(cluster in cluster()) {
        let world = play(&cluster, |_, _| {});
        for node in cluster.nodes.iter().filter(|n| n.unschedulable) {
            prop_assert!(world.nodes[&node.name].unschedulable);
        }
    }

    #[test]
    fn a_node_claimed_by_another_plan_is_never_started(cluster in cluster()) {
        let mut world = world(&cluster);
        let claimed = cluster.nodes[0].name.clone();
        world.claims.insert(claimed.clone(), "other".to_owned());
        world.run(60);
        prop_assert!(world.nu(&claimed).is_none());
    }

    #[test]
    fn pause_starts_nothing_new(cluster in cluster()) {
        let mut paused = false;
        let mut world = world(&cluster);
        for (step, event) in cluster.events.iter().enumerate() {
            if step == cluster.events.len() / 3 {
                world.plan.spec.paused = true;
                paused = true;
            }
            let before = snapshot(&world);
            match event {
                Event::Helper(i) => {
                    world.helper_step(&format!("node-{:02}", i % cluster.nodes.len()));
                }
                Event::Tick(s) => world.advance(*s),
                _ => { world.reconcile(); }
            }
            if paused {
                prop_assert!(started(&before, &world).is_empty());
                let cordons = new_actions(&before, &world)
                    .iter()
                    .filter(|a| matches!(a, Action::Cordon { .. }))
                    .count();
                prop_assert_eq!(cordons, 0);
            }
        }
    }

    #[test]
    fn the_failure_budget_halts_the_plan(cluster in cluster()) {
        play(&cluster, |before, after| {
            if before.plan.status.failed > before.plan.spec.failure_policy.max_failed_nodes {
                assert!(
                    started(before, after).is_empty(),
                    "started a node past the failure budget"
                );
                assert_eq!(after.plan.status.phase, Some(PlanPhase::Halted));
            }
        });
    }

    #[test]
    fn a_not_ready_node_is_never_started(cluster in cluster()) {
        play(&cluster, |before, after| {
            for name in started(before, after) {
                assert!(before.nodes[&name].ready, "{name} started while NotReady");
            }
        });
    }

    #[test]
    fn every_ready_node_is_eventually_upgraded_with_cooperative_helpers(cluster in cluster()) {
        let mut cluster = cluster;
        cluster.fail.iter_mut().for_each(|f| *f = false);
        // Silent helpers past the prepare timeout are failures, not cooperation.
        cluster.events.retain(|e| !matches!(e, Event::Tick(_)));
        let mut world = play(&cluster, |_, _| {});
        world.nodes.values_mut().for_each(|n| n.ready = true);
        world.run(200);
        for node in world.nodes.values() {
            let excluded = node.labels.get("kubelift.dev/exclude").is_some_and(|v| v == "true");
            prop_assert!(excluded || node.kubelet_version == TARGET, "{} not upgraded", node.name);
        }
        prop_assert_eq!(world.plan.status.phase, Some(PlanPhase::Complete));
    }
}
