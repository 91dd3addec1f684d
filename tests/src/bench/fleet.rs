//! A large fleet for the scale benchmark: Node objects of realistic size (labels, annotations,
//! a 50-image list, conditions, addresses, node info; the server adds managed fields) and pods
//! bound to them, spread over a few namespaces, created in-process through the API server's
//! router (no socket) by concurrent writers.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use super::BenchError;
use crate::apiserver::ApiServer;

/// Images each Node lists, as a long-lived node's kubelet reports them.
const IMAGES_PER_NODE: usize = 50;

/// Namespaces the pods are spread over.
const NAMESPACES: usize = 20;

/// Concurrent in-process writers.
const WRITERS: usize = 8;

/// The kubelet version of every Node.
pub const KUBELET_VERSION: &str = "v1.31.4";

/// What the fill made.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filled {
    /// Nodes created.
    pub nodes: usize,
    /// Pods created.
    pub pods: usize,
    /// Size of one stored Node as served (JSON bytes), managed fields included.
    pub node_bytes: usize,
    /// Size of one stored Pod as served (JSON bytes).
    pub pod_bytes: usize,
    /// How long it took.
    pub elapsed: Duration,
}

/// The name of node `index`.
#[must_use]
pub fn node_name(index: usize) -> String {
    format!("node-{index:05}")
}

/// Creates the namespaces, `nodes` Nodes and `pods` pods bound round-robin to them.
pub async fn fill(server: &ApiServer, nodes: usize, pods: usize) -> Result<Filled, BenchError> {
    let began = Instant::now();
    let client = server.in_process_client();
    let namespaces = (0..NAMESPACES).map(|n| ("/api/v1/namespaces".to_owned(), namespace(n)));
    create_all(&client, namespaces).await?;
    let node_bodies = (0..nodes).map(|i| ("/api/v1/nodes".to_owned(), node_object(i)));
    create_all(&client, node_bodies).await?;
    tracing::info!(nodes, elapsed = ?began.elapsed(), "nodes created");
    let pod_bodies = (0..pods).map(|i| {
        let ns = namespace_name(i % NAMESPACES);
        let path = format!("/api/v1/namespaces/{ns}/pods");
        (path, pod_object(i, &node_name(i % nodes.max(1)), &ns))
    });
    create_all(&client, pod_bodies).await?;
    tracing::info!(pods, elapsed = ?began.elapsed(), "pods created");
    Ok(Filled {
        nodes,
        pods,
        node_bytes: served_size(&client, &format!("/api/v1/nodes/{}", node_name(0))).await,
        pod_bytes: served_size(&client, "/api/v1/namespaces/team-00/pods/pod-000000").await,
        elapsed: began.elapsed(),
    })
}

/// POSTs every `(path, body)` with [`WRITERS`] in flight; the first failure stops the fill.
async fn create_all(
    client: &kube::Client,
    bodies: impl Iterator<Item = (String, Value)>,
) -> Result<(), BenchError> {
    let mut created = futures::stream::iter(bodies)
        .map(|(path, body)| post(client, path, body))
        .buffer_unordered(WRITERS);
    while let Some(outcome) = created.next().await {
        outcome?;
    }
    Ok(())
}

async fn post(client: &kube::Client, path: String, body: Value) -> Result<(), BenchError> {
    let request = http::Request::post(&path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.to_string().into_bytes())
        .map_err(|e| BenchError::Api {
            what: format!("build POST {path}"),
            source: kube::Error::HttpError(e),
        })?;
    let _created = client
        .request_text(request)
        .await
        .map_err(BenchError::api(format!("POST {path}")))?;
    Ok(())
}

async fn served_size(client: &kube::Client, path: &str) -> usize {
    let Ok(request) = http::Request::get(path).body(Vec::new()) else {
        return 0;
    };
    client
        .request_text(request)
        .await
        .map_or(0, |text| text.len())
}

fn namespace_name(index: usize) -> String {
    format!("team-{index:02}")
}

fn namespace(index: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace_name(index)}})
}

/// A Node as a cloud provider's kubelet registers and reports it.
#[must_use]
pub fn node_object(index: usize) -> Value {
    let name = node_name(index);
    let zone = ["a", "b", "c"][index % 3];
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": node_labels(&name, zone),
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                "csi.volume.kubernetes.io/nodeid":
                    format!("{{\"ebs.csi.aws.com\":\"i-0{index:016x}\"}}"),
                "alpha.kubernetes.io/provided-node-ip": ip(index),
                "node.kubernetes.io/instance-lifecycle": "on-demand",
            },
        },
        "spec": {
            "podCIDR": format!("10.{}.{}.0/24", index / 256 % 256, index % 256),
            "podCIDRs": [format!("10.{}.{}.0/24", index / 256 % 256, index % 256)],
            "providerID": format!("aws:///eu-west-1{zone}/i-0{index:016x}"),
        },
        "status": node_status(index),
    })
}

fn node_labels(name: &str, zone: &str) -> Value {
    json!({
        "kubernetes.io/hostname": name,
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/instance-type": "m6i.4xlarge",
        "node.kubernetes.io/instance-type": "m6i.4xlarge",
        "topology.kubernetes.io/region": "eu-west-1",
        "topology.kubernetes.io/zone": format!("eu-west-1{zone}"),
        "failure-domain.beta.kubernetes.io/region": "eu-west-1",
        "failure-domain.beta.kubernetes.io/zone": format!("eu-west-1{zone}"),
        "topology.ebs.csi.aws.com/zone": format!("eu-west-1{zone}"),
        "eks.amazonaws.com/nodegroup": "general-purpose",
        "eks.amazonaws.com/capacityType": "ON_DEMAND",
        "node-role.kubernetes.io/worker": "",
        "team.example.com/pool": "shared",
    })
}

fn ip(index: usize) -> String {
    format!("10.128.{}.{}", index / 250 % 256, index % 250 + 1)
}

fn node_status(index: usize) -> Value {
    let resources = json!({
        "cpu": "16", "memory": "64860180Ki", "pods": "110", "ephemeral-storage": "209702892Ki",
        "hugepages-1Gi": "0", "hugepages-2Mi": "0", "attachable-volumes-aws-ebs": "39",
    });
    json!({
        "capacity": resources,
        "allocatable": resources,
        "conditions": node_conditions(),
        "addresses": [
            {"type": "InternalIP", "address": ip(index)},
            {"type": "Hostname", "address": format!("ip-{}.eu-west-1.compute.internal", index)},
            {"type": "InternalDNS", "address": format!("ip-{index}.eu-west-1.compute.internal")},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": format!("{index:032x}"),
            "systemUUID": format!("ec2{index:029x}"),
            "bootID": format!("{:032x}", index * 7919),
            "kernelVersion": "6.1.112-122.189.amzn2023.x86_64",
            "osImage": "Amazon Linux 2023.6.20241031",
            "containerRuntimeVersion": "containerd://1.7.23",
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
        "images": node_images(index),
    })
}

fn node_conditions() -> Value {
    let at = "2026-01-01T00:00:00Z";
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": at, "lastTransitionTime": at})
    };
    json!([
        condition(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available"
        ),
        condition(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure"
        ),
        condition(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available"
        ),
        condition(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status"
        ),
    ])
}

fn node_images(index: usize) -> Value {
    let images: Vec<Value> = (0..IMAGES_PER_NODE)
        .map(|i| {
            let repo = format!(
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team-{}/service-{i}",
                i % 7
            );
            let digest = format!("{:064x}", (index % 97 + 1) * (i + 1) * 1_000_003);
            json!({
                "names": [format!("{repo}@sha256:{digest}"), format!("{repo}:v1.{i}.{}", i % 5)],
                "sizeBytes": 20_000_000 + i * 1_234_567,
            })
        })
        .collect();
    Value::Array(images)
}

/// A Deployment's pod, running on `node`.
#[must_use]
pub fn pod_object(index: usize, node: &str, namespace: &str) -> Value {
    let app = format!("service-{}", index % 40);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("pod-{index:06}"),
            "namespace": namespace,
            "labels": {"app": app, "pod-template-hash": "7d9f8c6b5d", "team": namespace},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{app}-7d9f8c6b5d"),
                "uid": format!("00000000-0000-4000-8000-{:012}", index % 40),
                "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "nodeName": node,
            "containers": [{
                "name": "app",
                "image": format!("registry.example.com/{app}:v1.2.3"),
                "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "PORT", "value": "8080"}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                              "limits": {"memory": "256Mi"}},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
            }],
        },
        "status": {"phase": "Running", "podIP": ip(index), "hostIP": ip(index % 5000)},
    })
}
