//! The workloads a sandbox runs: a realistic demo set (web servers with probes, a database with
//! env from a Secret and resource limits, a service with a sidecar, a node-agent `DaemonSet`, a
//! `PodDisruptionBudget`), or the manifests of a directory. Objects are created through API
//! discovery, so any kind the API server serves can appear in a manifest.

use std::path::Path;

use kube::api::{DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::SandboxError;

/// Reads every manifest (`*.yaml`, `*.yml`, `*.json`, multi-document YAML) in `dir`, by name.
pub fn read_dir(dir: &Path) -> Result<Vec<Value>, SandboxError> {
    let failed = |source| SandboxError::Io {
        what: format!("read {}", dir.display()),
        source,
    };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(failed)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        })
        .collect();
    paths.sort();
    let mut objects = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(failed)?;
        let documents: Vec<Value> =
            serde_saphyr::from_multiple(&text).map_err(|e| SandboxError::Manifest {
                path: path.clone(),
                message: e.to_string(),
            })?;
        objects.extend(documents.into_iter().filter(|d| !d.is_null()));
    }
    if objects.is_empty() {
        return Err(SandboxError::Manifest {
            path: dir.to_owned(),
            message: "no object in any *.yaml, *.yml or *.json file".into(),
        });
    }
    Ok(objects)
}

/// How many pods `objects` make on `nodes` nodes (each `Deployment`'s replicas, one per node
/// per `DaemonSet`, each bare `Pod`).
#[must_use]
pub fn expected_pods(objects: &[Value], nodes: usize) -> usize {
    objects
        .iter()
        .map(|object| match object["kind"].as_str() {
            Some("Deployment" | "ReplicaSet") => {
                usize::try_from(object["spec"]["replicas"].as_u64().unwrap_or(1)).unwrap_or(0)
            }
            Some("DaemonSet") => nodes,
            Some("Pod") => 1,
            _ => 0,
        })
        .sum()
}

/// Creates every object in order (an object that already exists is left as it is).
pub async fn apply(client: &Client, objects: &[Value]) -> Result<(), SandboxError> {
    for object in objects {
        create(client, object).await?;
    }
    Ok(())
}

async fn create(client: &Client, object: &Value) -> Result<(), SandboxError> {
    let typed: DynamicObject =
        serde_json::from_value(object.clone()).map_err(|e| SandboxError::Object {
            what: describe(object),
            error: kube::Error::SerdeError(e),
        })?;
    let failed = |source| SandboxError::Object {
        what: describe(object),
        error: source,
    };
    let type_meta = typed.types.clone().unwrap_or_default();
    let gvk = GroupVersionKind::try_from(&type_meta).map_err(|e| SandboxError::Kind {
        what: describe(object),
        message: e.to_string(),
    })?;
    let (resource, capabilities) = match pinned_kind(client, &gvk).await {
        Err(kube::Error::Api(status)) if status.code == 404 => {
            return Err(SandboxError::Kind {
                what: describe(object),
                message: format!(
                    "the API server serves no {} in {}",
                    gvk.kind,
                    gvk.api_version()
                ),
            });
        }
        found => found.map_err(failed)?,
    };
    let api: Api<DynamicObject> = match capabilities.scope {
        Scope::Namespaced => {
            let namespace = typed.metadata.namespace.as_deref().unwrap_or("default");
            Api::namespaced_with(client.clone(), namespace, &resource)
        }
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    match api.create(&PostParams::default(), &typed).await {
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        done => done.map(|_| ()).map_err(failed),
    }
}

fn describe(object: &Value) -> String {
    format!(
        "{} {}/{}",
        object["kind"].as_str().unwrap_or("?"),
        object["metadata"]["namespace"].as_str().unwrap_or(""),
        object["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// The demo set: what a small production cluster runs.
#[must_use]
pub fn demo() -> Vec<Value> {
    vec![
        namespace("shop"),
        namespace("monitoring"),
        database_secret(),
        web(),
        web_budget(),
        database(),
        checkout(),
        node_exporter(),
    ]
}

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn database_secret() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "postgres-credentials", "namespace": "shop"},
        "type": "Opaque",
        "stringData": {"username": "shop", "password": "sandbox-only"},
    })
}

fn deployment(name: &str, replicas: u32, pod: &Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod},
        },
    })
}

fn web() -> Value {
    let probe = |path: &str, period: u32| {
        json!({
            "httpGet": {"path": path, "port": 8080},
            "periodSeconds": period,
        })
    };
    deployment(
        "web",
        3,
        &json!({"containers": [{
            "name": "nginx",
            "image": "registry.k8s.io/nginx-slim:0.27",
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": probe("/ready", 5),
            "livenessProbe": probe("/healthz", 10),
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
        }]}),
    )
}

fn web_budget() -> Value {
    json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}},
    })
}

fn database() -> Value {
    let secret = |key: &str| json!({"secretKeyRef": {"name": "postgres-credentials", "key": key}});
    deployment(
        "postgres",
        1,
        &json!({"containers": [{
            "name": "postgres",
            "image": "docker.io/library/postgres:16.4",
            "ports": [{"containerPort": 5432}],
            "env": [
                {"name": "POSTGRES_USER", "valueFrom": secret("username")},
                {"name": "POSTGRES_PASSWORD", "valueFrom": secret("password")},
                {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
            ],
            "resources": {
                "requests": {"cpu": "500m", "memory": "1Gi"},
                "limits": {"cpu": "2", "memory": "2Gi"},
            },
        }]}),
    )
}

fn checkout() -> Value {
    deployment(
        "checkout",
        2,
        &json!({"containers": [
            {
                "name": "checkout",
                "image": "ghcr.io/example/checkout:2.14.1",
                "ports": [{"containerPort": 9000}],
                "env": [{"name": "DATABASE_HOST", "value": "postgres.shop.svc"}],
            },
            {
                "name": "envoy",
                "image": "docker.io/envoyproxy/envoy:v1.31.2",
                "args": ["--config-path", "/etc/envoy/envoy.yaml"],
                "ports": [{"containerPort": 9901}],
            },
        ]}),
    )
}

fn node_exporter() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "node-exporter", "namespace": "monitoring"},
        "spec": {
            "selector": {"matchLabels": {"app": "node-exporter"}},
            "template": {
                "metadata": {"labels": {"app": "node-exporter"}},
                "spec": {"containers": [{
                    "name": "node-exporter",
                    "image": "quay.io/prometheus/node-exporter:v1.8.2",
                    "args": ["--path.rootfs=/host"],
                    "resources": {"limits": {"cpu": "200m", "memory": "128Mi"}},
                }]},
            },
        },
    })
}
