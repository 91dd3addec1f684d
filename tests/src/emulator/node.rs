//! The emulator's Node and Lease: registration (labels, realistic capacity, `nodeInfo`), then a
//! heartbeat of the Node's conditions and of its Lease in `kube-node-lease`, as a kubelet does.

use std::sync::Arc;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::EmulatorConfig;

/// The namespace holding node Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// Seconds a node Lease stays valid without renewal.
const LEASE_DURATION_SECONDS: u64 = 40;

/// Failures of registering or heartbeating the Node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A write to the API failed.
    #[error("failed to write {what} of node {node}")]
    Write {
        /// What was written.
        what: &'static str,
        /// The node.
        node: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn now_micro() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The Node object a kubelet registers (metadata and spec; status is written separately).
pub fn node_object(config: &EmulatorConfig) -> Value {
    let mut labels = json!({
        "kubernetes.io/hostname": config.node_name,
        "kubernetes.io/arch": config.arch,
        "kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": config.arch,
        "beta.kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "kubelift.sim.8x32",
    });
    if let Some(zone) = &config.zone {
        labels["topology.kubernetes.io/zone"] = json!(zone);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": config.node_name,
            "labels": labels,
            "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": {},
    })
}

/// The Node status a kubelet reports: 8 CPUs, 32 GiB, 110 pods, `Ready` unless unhealthy.
pub fn node_status(
    config: &EmulatorConfig,
    runtime_version: &str,
    ready: bool,
    since: &str,
) -> Value {
    let now = now_rfc3339();
    let condition = |kind: &str, status: bool, reason: &str, message: &str| {
        json!({
            "type": kind,
            "status": if status { "True" } else { "False" },
            "lastHeartbeatTime": now,
            "lastTransitionTime": since,
            "reason": reason,
            "message": message,
        })
    };
    let ready_condition = if ready {
        condition(
            "Ready",
            true,
            "KubeletReady",
            "kubelet is posting ready status",
        )
    } else {
        condition(
            "Ready",
            false,
            "KubeletNotReady",
            "kubelet health check failed",
        )
    };
    json!({
        "capacity": {"cpu": "8", "memory": "32863312Ki", "pods": "110",
                     "ephemeral-storage": "102687672Ki", "hugepages-2Mi": "0"},
        "allocatable": {"cpu": "7910m", "memory": "31680592Ki", "pods": "110",
                        "ephemeral-storage": "94636136338", "hugepages-2Mi": "0"},
        "conditions": [
            condition("MemoryPressure", false, "KubeletHasSufficientMemory",
                      "kubelet has sufficient memory available"),
            condition("DiskPressure", false, "KubeletHasNoDiskPressure",
                      "kubelet has no disk pressure"),
            condition("PIDPressure", false, "KubeletHasSufficientPID",
                      "kubelet has sufficient PID available"),
            ready_condition,
        ],
        "addresses": [
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "Hostname", "address": config.node_name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": node_info(config, runtime_version),
        "images": images(),
    })
}

fn node_info(config: &EmulatorConfig, runtime_version: &str) -> Value {
    let machine = format!("{:032x}", fnv_of(config.node_name.as_bytes()));
    let boot = format!("{}/{}", config.node_name, std::process::id());
    json!({
        "machineID": machine,
        "systemUUID": machine,
        "bootID": format!("{:032x}", fnv_of(boot.as_bytes())),
        "kernelVersion": "6.1.0-28-amd64",
        "osImage": "Debian GNU/Linux 12 (bookworm)",
        "containerRuntimeVersion": runtime_version,
        "kubeletVersion": config.reported_version(),
        "kubeProxyVersion": config.reported_version(),
        "operatingSystem": "linux",
        "architecture": config.arch,
    })
}

/// A few images a real node has pulled, for a realistic Node size.
fn images() -> Value {
    let names = [
        ("registry.k8s.io/kube-proxy:v1.31.4", 30_229_000),
        ("registry.k8s.io/pause:3.10", 320_368),
        ("docker.io/library/nginx:1.27", 72_099_000),
        ("docker.io/library/postgres:16", 158_114_000),
        ("docker.io/library/busybox:1.36", 2_160_000),
        ("quay.io/prometheus/node-exporter:v1.8.2", 11_640_000),
        ("docker.io/envoyproxy/envoy:v1.31.2", 62_115_000),
        ("registry.k8s.io/coredns/coredns:v1.11.3", 18_562_000),
    ];
    let image = |(name, size): &(&str, u64)| {
        let digest = format!("{:064x}", fnv_of(name.as_bytes()));
        json!({"names": [format!("{name}@sha256:{digest}"), name], "sizeBytes": size})
    };
    Value::Array(names.iter().map(image).collect())
}

/// A stable non-cryptographic fingerprint for made-up IDs.
fn fnv_of(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Creates an object, or merge-patches it when it exists.
async fn create_or_patch<K>(api: &Api<K>, name: &str, object: Value) -> Result<K, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let typed: K = serde_json::from_value(object.clone()).map_err(kube::Error::SerdeError)?;
    match api.create(&PostParams::default(), &typed).await {
        Err(kube::Error::Api(status)) if status.code == 409 => {
            api.patch(name, &PatchParams::default(), &Patch::Merge(&object))
                .await
        }
        other => other,
    }
}

fn write_failed(what: &'static str, node: &str) -> impl FnOnce(kube::Error) -> NodeError {
    let node = node.to_owned();
    move |source| NodeError::Write { what, node, source }
}

/// Registers the Node, writes its full status, and takes its Lease.
pub(crate) async fn register(
    client: &kube::Client,
    config: &EmulatorConfig,
    runtime_version: &str,
) -> Result<(), NodeError> {
    let name = &config.node_name;
    let nodes: Api<Node> = Api::all(client.clone());
    let node = create_or_patch(&nodes, name, node_object(config)).await;
    let node = node.map_err(write_failed("registration", name))?;
    let ready = config.fault != Some(super::Fault::NeverHealthy);
    let status = json!({"status": node_status(config, runtime_version, ready, &now_rfc3339())});
    let patch = nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await;
    patch.map_err(write_failed("status", name))?;
    ensure_lease_namespace(client)
        .await
        .map_err(write_failed("lease namespace", name))?;
    let uid = node.metadata.uid.unwrap_or_default();
    renew_lease(client, name, &uid)
        .await
        .map_err(write_failed("lease", name))?;
    tracing::info!(node = %name, version = %config.reported_version(), "node registered");
    Ok(())
}

async fn ensure_lease_namespace(client: &kube::Client) -> Result<(), kube::Error> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let object =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NAMESPACE}});
    let namespace: Namespace = serde_json::from_value(object).map_err(kube::Error::SerdeError)?;
    match namespaces.create(&PostParams::default(), &namespace).await {
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        other => other.map(|_| ()),
    }
}

async fn renew_lease(client: &kube::Client, node: &str, node_uid: &str) -> Result<(), kube::Error> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid},
            ],
        },
        "spec": {
            "holderIdentity": node,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": now_micro(),
        },
    });
    create_or_patch(&leases, node, lease).await.map(|_| ())
}

/// Heartbeats the Node's conditions and Lease every `heartbeat_interval`, forever.
pub(crate) async fn heartbeat_loop(
    client: kube::Client,
    config: Arc<EmulatorConfig>,
    runtime_version: String,
) {
    let since = now_rfc3339();
    let mut ticks = tokio::time::interval(config.heartbeat_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if let Err(error) = heartbeat(&client, &config, &runtime_version, &since).await {
            tracing::warn!(node = %config.node_name, error = %error, "failed to heartbeat");
        }
    }
}

async fn heartbeat(
    client: &kube::Client,
    config: &EmulatorConfig,
    runtime_version: &str,
    since: &str,
) -> Result<(), NodeError> {
    let name = &config.node_name;
    let nodes: Api<Node> = Api::all(client.clone());
    let ready = config.fault != Some(super::Fault::NeverHealthy);
    let full = node_status(config, runtime_version, ready, since);
    let status =
        json!({"status": {"conditions": full["conditions"], "nodeInfo": full["nodeInfo"]}});
    let node = nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await;
    let node = node.map_err(write_failed("status", name))?;
    let uid = node.metadata.uid.unwrap_or_default();
    renew_lease(client, name, &uid)
        .await
        .map_err(write_failed("lease", name))
}
