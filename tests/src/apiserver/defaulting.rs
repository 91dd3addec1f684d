//! kube-apiserver's defaults for Pods and pod templates — the fields that end up in container
//! specs and so in the kubelet's container hashes — plus the workload defaults around them.

use serde_json::{Map, Value, json};

/// Applies defaults to a newly written object of a built-in kind.
pub fn apply(kind: &str, object: &mut Value, server_minor: u32) {
    match kind {
        "Pod" => {
            default_pod_spec(&mut object["spec"], server_minor);
            default_pod_admission(&mut object["spec"]);
        }
        "Deployment" | "DaemonSet" | "ReplicaSet" => {
            default_workload(kind, &mut object["spec"]);
            default_pod_spec(&mut object["spec"]["template"]["spec"], server_minor);
        }
        "Secret" => set(object, "type", json!("Opaque")),
        "Namespace" => set(&mut object["status"], "phase", json!("Active")),
        _ => {}
    }
}

/// The initial status of a created Pod.
pub fn initial_pod_status(pod: &mut Value) {
    let qos = qos_class(&pod["spec"]);
    pod["status"] = json!({"phase": "Pending", "qosClass": qos});
}

fn set(target: &mut Value, field: &str, value: Value) {
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if target.get(field).is_none_or(Value::is_null) {
        target[field] = value;
    }
}

fn default_workload(kind: &str, spec: &mut Value) {
    set(spec, "revisionHistoryLimit", json!(10));
    match kind {
        "Deployment" => {
            set(spec, "replicas", json!(1));
            set(spec, "progressDeadlineSeconds", json!(600));
            let rolling = json!({"maxSurge": "25%", "maxUnavailable": "25%"});
            set(
                spec,
                "strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": rolling}),
            );
        }
        "DaemonSet" => {
            let rolling = json!({"maxSurge": 0, "maxUnavailable": 1});
            set(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": rolling}),
            );
        }
        _ => set(spec, "replicas", json!(1)),
    }
}

fn default_pod_spec(spec: &mut Value, server_minor: u32) {
    set(spec, "restartPolicy", json!("Always"));
    set(spec, "dnsPolicy", json!("ClusterFirst"));
    set(spec, "schedulerName", json!("default-scheduler"));
    set(spec, "terminationGracePeriodSeconds", json!(30));
    set(spec, "securityContext", json!({}));
    set(spec, "enableServiceLinks", json!(true));
    for list in ["containers", "initContainers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for container in containers.iter_mut() {
                default_container(container, server_minor);
            }
        }
    }
    if let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        for volume in volumes.iter_mut() {
            default_volume(volume);
        }
    }
}

fn default_pod_admission(spec: &mut Value) {
    set(spec, "serviceAccountName", json!("default"));
    let account = spec["serviceAccountName"].clone();
    set(spec, "serviceAccount", account);
    set(spec, "priority", json!(0));
    set(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    let tolerations = spec["tolerations"].as_array().cloned().unwrap_or_default();
    let mut tolerations = tolerations;
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        if !tolerations.iter().any(|t| t["key"].as_str() == Some(key)) {
            tolerations.push(json!({
                "key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300
            }));
        }
    }
    spec["tolerations"] = Value::Array(tolerations);
}

fn default_container(container: &mut Value, server_minor: u32) {
    let policy = pull_policy(container["image"].as_str().unwrap_or_default());
    set(container, "imagePullPolicy", json!(policy));
    set(
        container,
        "terminationMessagePath",
        json!("/dev/termination-log"),
    );
    set(container, "terminationMessagePolicy", json!("File"));
    set(container, "resources", json!({}));
    default_requests_from_limits(&mut container["resources"]);
    if let Some(ports) = container.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut() {
            set(port, "protocol", json!("TCP"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(probe) = container.get_mut(probe).filter(|p| p.is_object()) {
            default_probe(probe);
        }
    }
    if let Some(env) = container.get_mut("env").and_then(Value::as_array_mut) {
        for var in env.iter_mut() {
            if let Some(field_ref) = var.pointer_mut("/valueFrom/fieldRef") {
                set(field_ref, "apiVersion", json!("v1"));
            }
        }
    }
    if server_minor >= 33 {
        default_resize_policy(container);
    }
}

/// `Always` for `:latest` or untagged images, `IfNotPresent` otherwise.
pub fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

fn default_requests_from_limits(resources: &mut Value) {
    let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    for (name, quantity) in limits {
        if resources["requests"].get(&name).is_none() {
            resources["requests"][&name] = quantity;
        }
    }
}

fn default_resize_policy(container: &mut Value) {
    let resources = &container["resources"];
    let named =
        |r: &str| resources["requests"].get(r).is_some() || resources["limits"].get(r).is_some();
    let wanted: Vec<&str> = ["cpu", "memory"].into_iter().filter(|r| named(r)).collect();
    if wanted.is_empty() {
        return;
    }
    let mut policies = container["resizePolicy"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for resource in wanted {
        if !policies
            .iter()
            .any(|p| p["resourceName"].as_str() == Some(resource))
        {
            policies.push(json!({"resourceName": resource, "restartPolicy": "NotRequired"}));
        }
    }
    container["resizePolicy"] = Value::Array(policies);
}

fn default_probe(probe: &mut Value) {
    set(probe, "timeoutSeconds", json!(1));
    set(probe, "periodSeconds", json!(10));
    set(probe, "successThreshold", json!(1));
    set(probe, "failureThreshold", json!(3));
    if let Some(http_get) = probe.get_mut("httpGet").filter(|h| h.is_object()) {
        set(http_get, "scheme", json!("HTTP"));
        set(http_get, "path", json!("/"));
    }
}

fn default_volume(volume: &mut Value) {
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(source) = volume.get_mut(source).filter(|s| s.is_object()) {
            set(source, "defaultMode", json!(420));
        }
    }
    if let Some(host_path) = volume.get_mut("hostPath").filter(|h| h.is_object()) {
        set(host_path, "type", json!(""));
    }
}

fn qos_class(spec: &Value) -> &'static str {
    let containers = spec["containers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let has = |c: &Value, part: &str| {
        c["resources"][part]
            .as_object()
            .is_some_and(|m| !m.is_empty())
    };
    if !containers
        .iter()
        .any(|c| has(c, "requests") || has(c, "limits"))
    {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        let resources = &c["resources"];
        ["cpu", "memory"].iter().all(|r| {
            resources["limits"].get(r).is_some()
                && resources["limits"][r] == resources["requests"][r]
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}
