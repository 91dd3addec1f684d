//! The pods bound to the emulator's node, read as raw JSON exactly as the API server serves them
//! (the hash depends on the served text), and the writes a kubelet makes to them: pod status,
//! and the final zero-grace delete that completes a graceful deletion or an eviction.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kubelet_hash::ContainerKind;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::keys;

/// Failures of reading or writing pods.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// The API call failed.
    #[error("failed to {verb} {target}")]
    Api {
        /// What was attempted.
        verb: &'static str,
        /// `pods of node N` or `pod NS/NAME`.
        target: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The list was not a pod list.
    #[error("failed to parse the pod list")]
    Parse(#[source] serde_json::Error),
    /// A pod's containers could not be read.
    #[error("failed to read the containers of pod {pod}")]
    Containers {
        /// `namespace/name`.
        pod: String,
        /// The cause.
        #[source]
        source: kubelet_hash::HashError,
    },
}

/// A pod's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodRef {
    pub name: String,
    pub namespace: String,
    pub uid: String,
}

impl PodRef {
    /// The kubelet's pod labels on sandboxes and containers.
    pub(crate) fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (keys::POD_NAME.to_owned(), self.name.clone()),
            (keys::POD_NAMESPACE.to_owned(), self.namespace.clone()),
            (keys::POD_UID.to_owned(), self.uid.clone()),
        ])
    }
}

impl std::fmt::Display for PodRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One container of a pod spec, with its raw JSON as served.
#[derive(Debug, Clone)]
pub(crate) struct SpecContainer {
    pub kind: ContainerKind,
    pub name: String,
    pub image: String,
    pub json: String,
    pub termination_message_path: String,
    pub termination_message_policy: String,
}

/// A pod bound to this node.
#[derive(Debug, Clone)]
pub(crate) struct NodePod {
    pub pod: PodRef,
    pub terminating: bool,
    pub grace_seconds: i64,
    pub containers: Vec<SpecContainer>,
    pub status: Value,
}

#[derive(Deserialize)]
struct RawList<'a> {
    #[serde(borrow)]
    items: Vec<&'a RawValue>,
}

/// Lists the pods whose `spec.nodeName` is `node`, keeping each one's raw JSON.
pub(crate) async fn list_node_pods(
    client: &kube::Client,
    node: &str,
) -> Result<Vec<NodePod>, PodError> {
    let path = format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{node}");
    let request = http::Request::get(path).body(Vec::new());
    let request = request.map_err(kube::Error::HttpError);
    let failed = |source| PodError::Api {
        verb: "list",
        target: format!("pods of node {node}"),
        source,
    };
    let text = client
        .request_text(request.map_err(failed)?)
        .await
        .map_err(failed)?;
    let list: RawList<'_> = serde_json::from_str(&text).map_err(PodError::Parse)?;
    let pods = list.items.iter().map(|item| node_pod(item.get()));
    let mut pods = pods.collect::<Result<Vec<_>, _>>()?;
    pods.retain(|p| !is_finished(&p.status));
    Ok(pods)
}

fn is_finished(status: &Value) -> bool {
    matches!(status["phase"].as_str(), Some("Succeeded" | "Failed"))
}

fn node_pod(raw: &str) -> Result<NodePod, PodError> {
    let pod: Pod = serde_json::from_str(raw).map_err(PodError::Parse)?;
    let pod_ref = PodRef {
        name: pod.metadata.name.clone().unwrap_or_default(),
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
    };
    let containers =
        kubelet_hash::container_names_and_json(raw).map_err(|source| PodError::Containers {
            pod: pod_ref.to_string(),
            source,
        })?;
    let spec = pod.spec.unwrap_or_default();
    let all = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers);
    let details: HashMap<&str, &k8s_openapi::api::core::v1::Container> =
        all.map(|c| (c.name.as_str(), c)).collect();
    let containers = containers
        .into_iter()
        .map(|(kind, name, json)| {
            let spec = details.get(name.as_str());
            SpecContainer {
                kind,
                image: spec.and_then(|c| c.image.clone()).unwrap_or_default(),
                termination_message_path: spec
                    .and_then(|c| c.termination_message_path.clone())
                    .unwrap_or_else(|| "/dev/termination-log".to_owned()),
                termination_message_policy: spec
                    .and_then(|c| c.termination_message_policy.clone())
                    .unwrap_or_else(|| "File".to_owned()),
                name,
                json,
            }
        })
        .collect();
    Ok(NodePod {
        pod: pod_ref,
        terminating: pod.metadata.deletion_timestamp.is_some(),
        grace_seconds: spec.termination_grace_period_seconds.unwrap_or(30),
        containers,
        status: serde_json::to_value(pod.status).unwrap_or_default(),
    })
}

/// What the runtime runs for one spec container, as the pod status reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContainerReport {
    pub kind: ContainerKind,
    pub name: String,
    pub image: String,
    pub container_id: String,
    pub restart_count: u32,
    pub started_at_nanos: i64,
}

fn time_of_nanos(nanos: i64) -> String {
    let time = chrono::DateTime::from_timestamp_nanos(nanos);
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn container_status(report: &ContainerReport, ready: bool) -> Value {
    if report.kind == ContainerKind::Init {
        return json!({
            "name": report.name, "image": report.image, "imageID": "", "ready": true,
            "restartCount": 0, "started": false,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
        });
    }
    json!({
        "name": report.name,
        "image": report.image,
        "imageID": format!("{}@sha256:{:064x}", report.image, 0),
        "containerID": format!("containerd://{}", report.container_id),
        "ready": ready,
        "started": true,
        "restartCount": report.restart_count,
        "state": {"running": {"startedAt": time_of_nanos(report.started_at_nanos)}},
    })
}

/// The status a kubelet writes for a pod whose containers all run.
pub(crate) fn running_status(pod: &NodePod, reports: &[ContainerReport], ready: bool) -> Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let start_time = pod.status["startTime"]
        .as_str()
        .map_or(now.clone(), str::to_owned);
    let condition = |kind: &str, status: bool| {
        json!({"type": kind, "status": if status { "True" } else { "False" },
               "lastProbeTime": null, "lastTransitionTime": now})
    };
    let statuses = |reports: &[&ContainerReport]| -> Vec<Value> {
        reports.iter().map(|r| container_status(r, ready)).collect()
    };
    let (init, regular): (Vec<_>, Vec<_>) = reports
        .iter()
        .partition(|r| r.kind != ContainerKind::Regular);
    json!({"status": {
        "phase": "Running",
        "conditions": [
            condition("PodReadyToStartContainers", true),
            condition("Initialized", true),
            condition("Ready", ready),
            condition("ContainersReady", ready),
            condition("PodScheduled", true),
        ],
        "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "podIP": "127.0.0.1",
        "podIPs": [{"ip": "127.0.0.1"}],
        "startTime": start_time,
        "initContainerStatuses": statuses(&init),
        "containerStatuses": statuses(&regular),
    }})
}

/// Whether the served status already says what `reports` would write (no write needed).
pub(crate) fn status_is_current(pod: &NodePod, reports: &[ContainerReport], ready: bool) -> bool {
    let status = &pod.status;
    let ready_now = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == if ready { "True" } else { "False" });
    let listed = |list: &str, report: &ContainerReport| {
        status[list].as_array().into_iter().flatten().any(|c| {
            c["name"] == report.name.as_str()
                && (report.kind == ContainerKind::Init
                    || (c["containerID"]
                        == format!("containerd://{}", report.container_id).as_str()
                        && c["restartCount"] == report.restart_count))
        })
    };
    let all_listed = reports.iter().all(|r| match r.kind {
        ContainerKind::Regular => listed("containerStatuses", r),
        _ => listed("initContainerStatuses", r),
    });
    status["phase"] == "Running" && ready_now && all_listed
}

/// Writes a pod's status.
pub(crate) async fn write_status(
    client: &kube::Client,
    pod: &PodRef,
    status: &Value,
) -> Result<(), PodError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    let patch = pods
        .patch_status(&pod.name, &PatchParams::default(), &Patch::Merge(status))
        .await;
    let failed = |source| PodError::Api {
        verb: "write status of",
        target: format!("pod {pod}"),
        source,
    };
    patch.map(|_| ()).map_err(failed)
}

/// Removes a pod whose containers are gone: delete with `gracePeriodSeconds=0` (404 is done).
pub(crate) async fn finish_deletion(client: &kube::Client, pod: &PodRef) -> Result<(), PodError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    let preconditions = Preconditions {
        uid: Some(pod.uid.clone()),
        resource_version: None,
    };
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(preconditions),
        ..DeleteParams::default()
    };
    match pods.delete(&pod.name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(()),
        Err(source) => Err(PodError::Api {
            verb: "delete",
            target: format!("pod {pod}"),
            source,
        }),
    }
}
