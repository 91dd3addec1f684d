//! Pure decisions of the workload controllers: from everything listed, the writes that bring
//! Deployments, `ReplicaSets` and `DaemonSets` to their desired pods.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

/// The label carrying a `ReplicaSet`'s template hash.
pub const TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// Everything a pass reads.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    /// All Deployments.
    pub deployments: Vec<Deployment>,
    /// All `ReplicaSets`.
    pub replica_sets: Vec<ReplicaSet>,
    /// All `DaemonSets`.
    pub daemon_sets: Vec<DaemonSet>,
    /// All Pods.
    pub pods: Vec<Pod>,
    /// All Nodes.
    pub nodes: Vec<Node>,
}

/// One write a controller wants.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Create a `ReplicaSet` for a Deployment's current template.
    CreateReplicaSet {
        /// Namespace.
        namespace: String,
        /// The object.
        object: Value,
    },
    /// Set a `ReplicaSet`'s replicas.
    ScaleReplicaSet {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Desired replicas.
        replicas: i32,
    },
    /// Create a pod from a template.
    CreatePod {
        /// Namespace.
        namespace: String,
        /// The object.
        object: Value,
    },
    /// Delete a surplus pod.
    DeletePod {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// Bind a pending pod to a node.
    BindPod {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The node chosen.
        node: String,
    },
}

/// The writes of the Deployment, `ReplicaSet` and `DaemonSet` controllers.
#[must_use]
pub fn plan(cluster: &Cluster) -> Vec<Write> {
    let deployments = cluster
        .deployments
        .iter()
        .flat_map(|d| plan_deployment(d, cluster));
    let replica_sets = cluster
        .replica_sets
        .iter()
        .flat_map(|rs| plan_replica_set(rs, cluster));
    let daemon_sets = cluster
        .daemon_sets
        .iter()
        .flat_map(|ds| plan_daemon_set(ds, cluster));
    deployments.chain(replica_sets).chain(daemon_sets).collect()
}

fn name_of(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

fn namespace_of(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("default")
}

fn owned_by(meta: &ObjectMeta, owner: &ObjectMeta) -> bool {
    let uid = owner.uid.as_deref();
    meta.owner_references
        .iter()
        .flatten()
        .any(|r| Some(r.uid.as_str()) == uid)
}

/// Pods that count: not being deleted and not finished.
fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

fn node_of(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or_default()
}

/// 32-bit FNV-1a of the template's JSON, in hex: stable across passes and processes.
#[must_use]
pub fn template_hash(template: &PodTemplateSpec) -> String {
    let text = serde_json::to_string(template).unwrap_or_default();
    let hash = text.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{hash:x}")
}

fn owner_reference(kind: &str, meta: &ObjectMeta) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": kind, "name": meta.name, "uid": meta.uid,
        "controller": true, "blockOwnerDeletion": true,
    })
}

fn plan_deployment(deployment: &Deployment, cluster: &Cluster) -> Vec<Write> {
    let meta = &deployment.metadata;
    let Some(spec) = &deployment.spec else {
        return Vec::new();
    };
    let hash = template_hash(&spec.template);
    let current = format!("{}-{hash}", name_of(meta));
    let replicas = spec.replicas.unwrap_or(1);
    let namespace = namespace_of(meta).to_owned();
    let owned: Vec<_> = cluster
        .replica_sets
        .iter()
        .filter(|rs| owned_by(&rs.metadata, meta))
        .collect();
    let mut writes = Vec::new();
    if !owned.iter().any(|rs| name_of(&rs.metadata) == current) {
        let object = replica_set_object(deployment, &current, &hash, replicas);
        writes.push(Write::CreateReplicaSet {
            namespace: namespace.clone(),
            object,
        });
    }
    for rs in owned {
        let want = if name_of(&rs.metadata) == current {
            replicas
        } else {
            0
        };
        if rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1) != want {
            let name = name_of(&rs.metadata).to_owned();
            writes.push(Write::ScaleReplicaSet {
                namespace: namespace.clone(),
                name,
                replicas: want,
            });
        }
    }
    writes
}

fn replica_set_object(deployment: &Deployment, name: &str, hash: &str, replicas: i32) -> Value {
    let meta = &deployment.metadata;
    let spec = deployment.spec.clone().unwrap_or_default();
    let mut template = serde_json::to_value(&spec.template).unwrap_or_default();
    template["metadata"]["labels"][TEMPLATE_HASH_LABEL] = json!(hash);
    let mut selector = serde_json::to_value(&spec.selector).unwrap_or_default();
    selector["matchLabels"][TEMPLATE_HASH_LABEL] = json!(hash);
    let labels = template["metadata"]["labels"].clone();
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name, "namespace": namespace_of(meta), "labels": labels,
            "ownerReferences": [owner_reference("Deployment", meta)],
        },
        "spec": {"replicas": replicas, "selector": selector, "template": template},
    })
}

fn pod_object(
    owner_kind: &str,
    owner: &ObjectMeta,
    template: Option<&PodTemplateSpec>,
    node: Option<&str>,
) -> Value {
    let template = serde_json::to_value(template).unwrap_or_default();
    let mut spec = template["spec"].clone();
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": format!("{}-", name_of(owner)),
            "namespace": namespace_of(owner),
            "labels": template["metadata"]["labels"],
            "annotations": template["metadata"]["annotations"],
            "ownerReferences": [owner_reference(owner_kind, owner)],
        },
        "spec": spec,
    })
}

fn plan_replica_set(rs: &ReplicaSet, cluster: &Cluster) -> Vec<Write> {
    let meta = &rs.metadata;
    let Some(spec) = &rs.spec else {
        return Vec::new();
    };
    let desired = usize::try_from(spec.replicas.unwrap_or(1)).unwrap_or(0);
    let mut active: Vec<&Pod> = cluster
        .pods
        .iter()
        .filter(|p| owned_by(&p.metadata, meta) && is_active(p))
        .collect();
    let namespace = namespace_of(meta).to_owned();
    if active.len() < desired {
        let object = pod_object("ReplicaSet", meta, spec.template.as_ref(), None);
        let create = Write::CreatePod { namespace, object };
        return vec![create; desired - active.len()];
    }
    active.sort_by_key(|p| (!node_of(p).is_empty(), name_of(&p.metadata).to_owned()));
    let surplus = active
        .into_iter()
        .take(active_surplus(desired, cluster, meta));
    surplus
        .map(|p| Write::DeletePod {
            namespace: namespace.clone(),
            name: name_of(&p.metadata).to_owned(),
        })
        .collect()
}

fn active_surplus(desired: usize, cluster: &Cluster, meta: &ObjectMeta) -> usize {
    let active = cluster
        .pods
        .iter()
        .filter(|p| owned_by(&p.metadata, meta) && is_active(p))
        .count();
    active.saturating_sub(desired)
}

fn plan_daemon_set(ds: &DaemonSet, cluster: &Cluster) -> Vec<Write> {
    let meta = &ds.metadata;
    let Some(spec) = &ds.spec else {
        return Vec::new();
    };
    let owned: Vec<&Pod> = cluster
        .pods
        .iter()
        .filter(|p| owned_by(&p.metadata, meta) && is_active(p))
        .collect();
    let covered: BTreeSet<&str> = owned.iter().map(|p| node_of(p)).collect();
    let nodes: BTreeSet<&str> = cluster.nodes.iter().map(|n| name_of(&n.metadata)).collect();
    let namespace = namespace_of(meta).to_owned();
    let missing = nodes
        .iter()
        .filter(|n| !covered.contains(*n))
        .map(|node| Write::CreatePod {
            namespace: namespace.clone(),
            object: pod_object("DaemonSet", meta, Some(&spec.template), Some(node)),
        });
    let stray = owned
        .iter()
        .filter(|p| !nodes.contains(node_of(p)))
        .map(|p| Write::DeletePod {
            namespace: namespace.clone(),
            name: name_of(&p.metadata).to_owned(),
        });
    missing.chain(stray).collect()
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::panic,
        reason = "tests fail loudly on unexpected errors"
    )]

    use super::*;

    fn from(value: Value) -> Cluster {
        serde_json::from_value::<ClusterJson>(value).unwrap().into()
    }

    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct ClusterJson {
        deployments: Vec<Deployment>,
        replica_sets: Vec<ReplicaSet>,
        daemon_sets: Vec<DaemonSet>,
        pods: Vec<Pod>,
        nodes: Vec<Node>,
    }

    impl From<ClusterJson> for Cluster {
        fn from(c: ClusterJson) -> Self {
            Cluster {
                deployments: c.deployments,
                replica_sets: c.replica_sets,
                daemon_sets: c.daemon_sets,
                pods: c.pods,
                nodes: c.nodes,
            }
        }
    }

    fn template() -> Value {
        let containers = json!([{"name": "web", "image": "nginx"}]);
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}})
    }

    #[test]
    fn a_deployment_gets_a_replica_set_named_after_its_template_hash() {
        let cluster = from(json!({"deployments": [{
            "metadata": {"name": "web", "namespace": "shop", "uid": "d1"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": template(),
            },
        }]}));
        let writes = plan(&cluster);
        let [Write::CreateReplicaSet { namespace, object }] = writes.as_slice() else {
            panic!("{writes:?}")
        };
        assert_eq!(namespace, "shop");
        let hash = object["spec"]["template"]["metadata"]["labels"][TEMPLATE_HASH_LABEL]
            .as_str()
            .unwrap();
        assert_eq!(object["metadata"]["name"], format!("web-{hash}"));
        assert_eq!(object["spec"]["replicas"], 3);
        assert_eq!(
            object["spec"]["selector"]["matchLabels"][TEMPLATE_HASH_LABEL],
            hash
        );
        assert_eq!(object["metadata"]["ownerReferences"][0]["uid"], "d1");
    }

    #[test]
    fn a_replica_set_replaces_a_terminating_pod() {
        let owner =
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "r1"});
        let cluster = from(json!({
            "replica_sets": [{"metadata": {"name": "web-1", "namespace": "shop", "uid": "r1"},
                              "spec": {"replicas": 2, "selector": {}, "template": template()}}],
            "pods": [
                {"metadata": {"name": "a", "ownerReferences": [owner.clone()]}},
                {"metadata": {"name": "b", "deletionTimestamp": "2026-01-01T00:00:00Z",
                              "ownerReferences": [owner]}},
            ],
        }));
        let writes = plan(&cluster);
        let [Write::CreatePod { object, .. }] = writes.as_slice() else {
            panic!("{writes:?}")
        };
        assert_eq!(object["metadata"]["generateName"], "web-1-");
        assert!(
            object["spec"].get("nodeName").is_none(),
            "the scheduler places it"
        );
    }

    #[test]
    fn a_daemon_set_gets_one_pod_per_node_bound_directly() {
        let cluster = from(json!({
            "daemon_sets": [{"metadata": {"name": "agent", "namespace": "kube-system", "uid": "ds"},
                             "spec": {"selector": {}, "template": template()}}],
            "nodes": [
                {"metadata": {"name": "n1"}},
                {"metadata": {"name": "n2"}, "spec": {"unschedulable": true}},
            ],
        }));
        let nodes: Vec<_> = plan(&cluster)
            .into_iter()
            .map(|w| match w {
                Write::CreatePod { object, .. } => {
                    object["spec"]["nodeName"].as_str().unwrap().to_owned()
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(nodes, ["n1", "n2"]);
    }
}
