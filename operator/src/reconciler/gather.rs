//! Gather: everything one planning pass reads, from the caches and, for nodes being evicted
//! only, from a pod list filtered by `spec.nodeName` (never a cluster-wide pod list).

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use kubelift_crds::constants::{PLAN_FINALIZER, RESUME_ANNOTATION, RETRY_ANNOTATION};
use kubelift_crds::{KubeletUpgrade, NodeUpgrade};

use super::{
    Context, EVICTING_SINCE_ANNOTATION, Error, RETRY_HANDLED_ANNOTATION, STAGE_SINCE_ANNOTATION,
};
use crate::planner::{NodeUpgradeView, PlanInput, PlanView, PodView};

/// Annotation the API server sets on a static pod's mirror.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The planner's input for `plan`, without pods.
pub fn input(plan: &KubeletUpgrade, ctx: &Context) -> PlanInput {
    let name = plan.name_any();
    let all = ctx.node_upgrades.state();
    let (mine, others): (Vec<_>, Vec<_>) = all.iter().partition(|nu| nu.spec.plan == name);
    let claims = others
        .iter()
        .filter(|nu| {
            !nu.status
                .as_ref()
                .and_then(|s| s.phase)
                .is_some_and(kubelift_crds::NodePhase::is_terminal)
        })
        .map(|nu| (nu.spec.node_name.clone(), nu.spec.plan.clone()))
        .collect();

    PlanInput {
        plan: plan_view(plan),
        nodes: ctx.nodes.snapshot(),
        node_upgrades: mine.iter().map(|nu| node_upgrade_view(nu)).collect(),
        claims,
        pods: BTreeMap::new(),
        blocked_evictions: ctx.blocked_evictions(&name),
        operator_node: ctx.settings.node_name.clone(),
        api_server_version: ctx.api_server_version.clone(),
        now: Timestamp::now(),
    }
}

/// List the pods on each of `nodes`, one field-selected list per node.
pub async fn pods(
    ctx: &Context,
    nodes: &[String],
) -> Result<BTreeMap<String, Vec<PodView>>, Error> {
    let api = Api::<Pod>::all(ctx.client.clone());
    let mut found = BTreeMap::new();
    for node in nodes {
        let params = ListParams::default().fields(&format!("spec.nodeName={node}"));
        let pods = api.list(&params).await.map_err(Error::ListPods)?;
        found.insert(node.clone(), pods.items.iter().map(pod_view).collect());
    }
    Ok(found)
}

fn plan_view(plan: &KubeletUpgrade) -> PlanView {
    let annotation = |key: &str| plan.annotations().get(key).cloned();
    PlanView {
        name: plan.name_any(),
        generation: plan.metadata.generation.unwrap_or(1),
        spec: plan.spec.clone(),
        status: plan.status.clone().unwrap_or_default(),
        retry: annotation(RETRY_ANNOTATION),
        retry_handled: annotation(RETRY_HANDLED_ANNOTATION),
        resume: annotation(RESUME_ANNOTATION),
        deleting: plan.metadata.deletion_timestamp.is_some(),
        has_finalizer: plan.finalizers().iter().any(|f| f == PLAN_FINALIZER),
    }
}

fn node_upgrade_view(nu: &NodeUpgrade) -> NodeUpgradeView {
    let time = |key: &str| {
        nu.annotations()
            .get(key)
            .and_then(|v| v.parse::<Timestamp>().ok())
    };
    NodeUpgradeView {
        name: nu.name_any(),
        generation: nu.metadata.generation.unwrap_or(1),
        created: nu.metadata.creation_timestamp.as_ref().map(|t| t.0),
        stage_since: time(STAGE_SINCE_ANNOTATION),
        evicting_since: time(EVICTING_SINCE_ANNOTATION),
        deleting: nu.metadata.deletion_timestamp.is_some(),
        spec: nu.spec.clone(),
        status: nu.status.clone(),
    }
}

fn pod_view(pod: &Pod) -> PodView {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    PodView {
        namespace: pod.namespace().unwrap_or_default(),
        name: pod.name_any(),
        labels: pod.labels().clone(),
        daemon_set: pod.owner_references().iter().any(|o| o.kind == "DaemonSet"),
        mirror: pod.annotations().contains_key(MIRROR_ANNOTATION),
        terminating: pod.metadata.deletion_timestamp.is_some(),
        finished: matches!(phase, Some("Succeeded" | "Failed")),
    }
}
