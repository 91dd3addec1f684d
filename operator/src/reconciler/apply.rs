//! Apply: carry out the planner's actions in order, stopping at the first failure, then write
//! the status by server-side apply (only when it changed) and publish the planned Events.

use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, EvictParams, ListParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use kubelift_crds::constants::{
    CORDONED_BY_ANNOTATION, NODE_HASH_LABEL, OPERATOR_MANAGER, PLAN_FINALIZER, PLAN_LABEL,
};
use kubelift_crds::naming::node_hash;
use kubelift_crds::{KubeletUpgrade, KubeletUpgradeStatus, NodeUpgrade};
use serde_json::json;

use super::{
    Context, EVICTING_SINCE_ANNOTATION, Error, RETRY_HANDLED_ANNOTATION, STAGE_SINCE_ANNOTATION,
};
use crate::planner::{
    Action, BlockedEviction, EventKind, NodeUpgradeOrder, PlannedEvent, selector_matches,
};

/// Apply every action in order.
pub async fn actions(
    plan: &KubeletUpgrade,
    actions: &[Action],
    ctx: &Context,
) -> Result<(), Error> {
    for action in actions {
        tracing::debug!(?action, "applying");
        action_one(plan, action, ctx).await?;
    }
    Ok(())
}

async fn action_one(plan: &KubeletUpgrade, action: &Action, ctx: &Context) -> Result<(), Error> {
    let name = plan.name_any();
    match action {
        Action::AddFinalizer => finalizer(plan, ctx, true).await,
        Action::RemoveFinalizer => finalizer(plan, ctx, false).await,
        Action::ApplyNodeUpgrade(order) => node_upgrade(plan, order, ctx).await,
        Action::DeleteNodeUpgrade { name } => {
            let api = Api::<NodeUpgrade>::all(ctx.client.clone());
            ignore_missing(api.delete(name, &DeleteParams::default()).await.map(|_| ()))
                .map_err(Error::DeleteNodeUpgrade)
        }
        Action::Cordon { node } => cordon(ctx, node, Some(&name)).await,
        Action::Uncordon { node } => cordon(ctx, node, None).await,
        Action::Evict {
            node,
            namespace,
            pod,
        } => evict(ctx, &name, node, namespace, pod).await,
        Action::DeletePod { namespace, pod, .. } => {
            let api = Api::<Pod>::namespaced(ctx.client.clone(), namespace);
            ignore_missing(api.delete(pod, &DeleteParams::default()).await.map(|_| ()))
                .map_err(Error::DeletePod)
        }
        Action::MarkRetryHandled { value } => {
            let patch = json!({"metadata": {"annotations": {RETRY_HANDLED_ANNOTATION: value}}});
            let api = Api::<KubeletUpgrade>::all(ctx.client.clone());
            api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .map(|_| ())
                .map_err(Error::PatchPlan)
        }
        Action::DeletePlan => {
            let api = Api::<KubeletUpgrade>::all(ctx.client.clone());
            ignore_missing(
                api.delete(&name, &DeleteParams::default())
                    .await
                    .map(|_| ()),
            )
            .map_err(Error::PatchPlan)
        }
    }
}

/// Add or drop our finalizer, guarded by the resource version so others' finalizers survive.
async fn finalizer(plan: &KubeletUpgrade, ctx: &Context, keep: bool) -> Result<(), Error> {
    let mut finalizers: Vec<String> = plan
        .finalizers()
        .iter()
        .filter(|f| *f != PLAN_FINALIZER)
        .cloned()
        .collect();
    if keep {
        finalizers.push(PLAN_FINALIZER.to_owned());
    }
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": plan.resource_version(),
    }});
    let api = Api::<KubeletUpgrade>::all(ctx.client.clone());
    let result = api
        .patch(
            &plan.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await;
    ignore_missing(result.map(|_| ())).map_err(Error::PatchPlan)
}

async fn node_upgrade(
    plan: &KubeletUpgrade,
    order: &NodeUpgradeOrder,
    ctx: &Context,
) -> Result<(), Error> {
    let mut annotations = serde_json::Map::new();
    annotations.insert(
        STAGE_SINCE_ANNOTATION.to_owned(),
        json!(order.stage_since.to_string()),
    );
    if let Some(since) = order.evicting_since {
        annotations.insert(
            EVICTING_SINCE_ANNOTATION.to_owned(),
            json!(since.to_string()),
        );
    }
    let owner = plan
        .controller_owner_ref(&())
        .map(|o| vec![o])
        .unwrap_or_default();
    let object = json!({
        "apiVersion": "kubelift.dev/v1alpha1",
        "kind": "NodeUpgrade",
        "metadata": {
            "name": order.name,
            "labels": {
                PLAN_LABEL: plan.name_any(),
                NODE_HASH_LABEL: node_hash(&order.spec.node_name),
            },
            "annotations": annotations,
            "ownerReferences": owner,
        },
        "spec": order.spec,
    });
    let api = Api::<NodeUpgrade>::all(ctx.client.clone());
    let params = PatchParams::apply(OPERATOR_MANAGER).force();
    api.patch(&order.name, &params, &Patch::Apply(object))
        .await
        .map(|_| ())
        .map_err(Error::ApplyNodeUpgrade)
}

/// Cordon with our mark (`plan` given) or uncordon and drop the mark.
async fn cordon(ctx: &Context, node: &str, plan: Option<&str>) -> Result<(), Error> {
    let patch = json!({
        "spec": {"unschedulable": plan.is_some()},
        "metadata": {"annotations": {CORDONED_BY_ANNOTATION: plan}},
    });
    let api = Api::<Node>::all(ctx.client.clone());
    let result = api
        .patch(node, &PatchParams::default(), &Patch::Merge(patch))
        .await;
    ignore_missing(result.map(|_| ())).map_err(Error::Cordon)
}

async fn evict(
    ctx: &Context,
    plan: &str,
    node: &str,
    namespace: &str,
    pod: &str,
) -> Result<(), Error> {
    let api = Api::<Pod>::namespaced(ctx.client.clone(), namespace);
    match api.evict(pod, &EvictParams::default()).await {
        Ok(_) => {
            ctx.metrics.evictions.inc();
            ctx.clear_blocked(plan, node);
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 429 => {
            let budget = budget_of(ctx, namespace, pod).await;
            let blocked = BlockedEviction {
                pod: format!("{namespace}/{pod}"),
                budget,
            };
            ctx.block(plan, node, blocked);
            Ok(())
        }
        Err(error) => ignore_missing(Err(error)).map_err(Error::Evict),
    }
}

/// The disruption budget whose selector covers the pod (`namespace/name`), if one does.
async fn budget_of(ctx: &Context, namespace: &str, pod: &str) -> Option<String> {
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), namespace);
    let labels = pods.get(pod).await.ok()?.labels().clone();
    let budgets = Api::<PodDisruptionBudget>::namespaced(ctx.client.clone(), namespace);
    let list = budgets.list(&ListParams::default()).await.ok()?;
    list.items
        .iter()
        .find(|pdb| {
            let selector = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
            selector.is_some() && selector_matches(selector, &labels)
        })
        .map(|pdb| format!("{namespace}/{}", pdb.name_any()))
}

/// Write the status by server-side apply unless it is unchanged.
pub async fn status(
    plan: &KubeletUpgrade,
    status: &KubeletUpgradeStatus,
    ctx: &Context,
) -> Result<(), Error> {
    if plan.status.as_ref() == Some(status) {
        return Ok(());
    }
    let object = json!({
        "apiVersion": "kubelift.dev/v1alpha1",
        "kind": "KubeletUpgrade",
        "status": status,
    });
    let api = Api::<KubeletUpgrade>::all(ctx.client.clone());
    let params = PatchParams::apply(OPERATOR_MANAGER).force();
    let result = api
        .patch_status(&plan.name_any(), &params, &Patch::Apply(object))
        .await;
    ignore_missing(result.map(|_| ())).map_err(Error::WriteStatus)
}

/// Publish the planned Events on the plan; a failure to record one is logged, not fatal.
pub async fn events(plan: &KubeletUpgrade, events: &[PlannedEvent], ctx: &Context) {
    let reference: ObjectReference = plan.object_ref(&());
    for planned in events {
        let event = Event {
            type_: match planned.kind {
                EventKind::Normal => EventType::Normal,
                EventKind::Warning => EventType::Warning,
            },
            reason: planned.reason.to_owned(),
            note: Some(truncate(&planned.note, 1000)),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(error) = ctx.recorder.publish(&event, &reference).await {
            tracing::warn!(%error, reason = planned.reason, "failed to publish event");
        }
    }
}

fn truncate(text: &str, limit: usize) -> String {
    text.chars().take(limit).collect()
}

fn ignore_missing(result: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match result {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        other => other,
    }
}
