//! A Node as the operator's watch decodes it: the metadata it needs (no managed fields),
//! `spec.unschedulable`, the conditions' type and status and the kubelet version. Every other
//! field of the served object — images, addresses, capacity, managed fields — is skipped while
//! decoding and never allocated, so a list page of large Nodes costs little more than its bytes.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::ClusterResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Deserializer};

/// The fields of a Node the planner reads.
#[derive(Clone, Debug, Deserialize)]
pub struct NodeFields {
    /// Name, resource version, UID, labels and annotations only.
    #[serde(deserialize_with = "kept_metadata")]
    pub metadata: ObjectMeta,
    /// `spec.unschedulable`.
    #[serde(default)]
    pub spec: Option<SpecFields>,
    /// Conditions and node info.
    #[serde(default)]
    pub status: Option<StatusFields>,
}

/// `spec` of a Node, reduced.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SpecFields {
    /// Cordoned.
    #[serde(default)]
    pub unschedulable: Option<bool>,
}

/// `status` of a Node, reduced.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusFields {
    /// Each condition's type and status.
    #[serde(default)]
    pub conditions: Option<Vec<ConditionFields>>,
    /// The kubelet version.
    #[serde(default)]
    pub node_info: Option<NodeInfoFields>,
}

/// A Node condition, reduced.
#[derive(Clone, Debug, Deserialize)]
pub struct ConditionFields {
    /// `Ready`, `MemoryPressure`, …
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
}

/// `status.nodeInfo`, reduced.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfoFields {
    /// `kubeletVersion`.
    #[serde(default)]
    pub kubelet_version: String,
}

/// The metadata fields kept; the rest (managed fields above all) is skipped.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeptMetadata {
    name: Option<String>,
    resource_version: Option<String>,
    uid: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
}

fn kept_metadata<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ObjectMeta, D::Error> {
    let kept = KeptMetadata::deserialize(deserializer)?;
    Ok(ObjectMeta {
        name: kept.name,
        resource_version: kept.resource_version,
        uid: kept.uid,
        labels: kept.labels,
        annotations: kept.annotations,
        ..ObjectMeta::default()
    })
}

impl kube::Resource for NodeFields {
    type DynamicType = ();
    type Scope = ClusterResourceScope;

    fn kind((): &()) -> Cow<'_, str> {
        Cow::Borrowed("Node")
    }

    fn group((): &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn version((): &()) -> Cow<'_, str> {
        Cow::Borrowed("v1")
    }

    fn plural((): &()) -> Cow<'_, str> {
        Cow::Borrowed("nodes")
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;
    use crate::reconciler::caches::view;

    /// A served Node with the bulk a real one carries (images, managed fields, capacity).
    fn served() -> serde_json::Value {
        let images: Vec<_> = (0..40)
            .map(|i| {
                let name = format!("registry/image-{i}:v1");
                serde_json::json!({"names": [name], "sizeBytes": i})
            })
            .collect();
        serde_json::json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": "node-a", "uid": "u1", "resourceVersion": "7",
                "labels": {"topology.kubernetes.io/zone": "z1"},
                "annotations": {"kubelift.dev/cordoned-by": "plan"},
                "managedFields": [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}]
            },
            "spec": {"unschedulable": true, "podCIDR": "10.0.0.0/24"},
            "status": {
                "conditions": [
                    {"type": "MemoryPressure", "status": "False", "reason": "ok"},
                    {"type": "Ready", "status": "True", "message": "kubelet is posting"}
                ],
                "nodeInfo": {"kubeletVersion": "v1.31.4", "osImage": "Debian"},
                "images": images,
                "capacity": {"cpu": "8"}
            }
        })
    }

    #[test]
    fn the_reduced_node_keeps_what_the_planner_reads() {
        let reduced: NodeFields = serde_json::from_value(served()).unwrap();

        let seen = view(&reduced);
        assert_eq!(seen.name, "node-a");
        assert_eq!(seen.zone(), "z1");
        assert!(seen.ready && seen.unschedulable);
        assert_eq!(seen.cordoned_by.as_deref(), Some("plan"));
        assert_eq!(seen.kubelet_version, "v1.31.4");
        assert!(reduced.metadata.managed_fields.is_none());
    }

    #[test]
    fn a_bare_node_decodes_with_nothing_ready() {
        let bare = serde_json::json!({"metadata": {"name": "n"}, "spec": null});

        let reduced: NodeFields = serde_json::from_value(bare).unwrap();

        let seen = view(&reduced);
        assert_eq!(seen.name, "n");
        assert!(!seen.ready && !seen.unschedulable && seen.kubelet_version.is_empty());
    }
}
