//! `meta.k8s.io/v1` Table responses: printer columns from CRDs (`JSONPath` cells, `date` columns
//! as ages) and kubectl's familiar default columns for built-in kinds.

use chrono::{DateTime, Utc};
use jsonpath_rust::JsonPath;
use serde_json::{Value, json};

use super::resources::{PrinterColumn, ResourceInfo};

/// What each row carries besides its cells (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The full object.
    Object,
}

impl IncludeObject {
    /// Parses the query parameter.
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

/// Whether an `Accept` header asks for the Table form.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

/// A Table of served objects.
pub fn table(
    info: &ResourceInfo,
    objects: &[Value],
    resource_version: &str,
    with_columns: bool,
    include: IncludeObject,
) -> Value {
    let columns = columns(info);
    let definitions: Vec<Value> = if with_columns {
        columns.iter().map(definition).collect()
    } else {
        Vec::new()
    };
    let now = Utc::now();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| row(info, &columns, o, include, now))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

fn column(name: &str, kind: &str, json_path: &str, priority: i64) -> PrinterColumn {
    PrinterColumn {
        name: name.to_owned(),
        kind: kind.to_owned(),
        json_path: json_path.to_owned(),
        priority,
        description: String::new(),
    }
}

fn columns(info: &ResourceInfo) -> Vec<PrinterColumn> {
    let mut columns = vec![column("Name", "string", "", 0)];
    if info.custom {
        if info.printer_columns.is_empty() {
            columns.push(column("Age", "date", ".metadata.creationTimestamp", 0));
        } else {
            columns.extend(info.printer_columns.iter().cloned());
        }
        return columns;
    }
    let builtin: &[(&str, &str, i64)] = match (info.group.as_str(), info.plural.as_str()) {
        ("", "nodes") => &[
            ("Status", "string", 0),
            ("Roles", "string", 0),
            ("Age", "date", 0),
            ("Version", "string", 0),
            ("Internal-IP", "string", 1),
            ("External-IP", "string", 1),
            ("OS-Image", "string", 1),
            ("Kernel-Version", "string", 1),
            ("Container-Runtime", "string", 1),
        ],
        ("", "pods") => &[
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "date", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
        ],
        ("", "namespaces") => &[("Status", "string", 0), ("Age", "date", 0)],
        ("policy", "poddisruptionbudgets") => &[
            ("Min Available", "string", 0),
            ("Max Unavailable", "string", 0),
            ("Allowed Disruptions", "integer", 0),
            ("Age", "date", 0),
        ],
        _ => &[("Age", "date", 0)],
    };
    columns.extend(builtin.iter().map(|(n, k, p)| column(n, k, "", *p)));
    columns
}

fn definition(column: &PrinterColumn) -> Value {
    let format = if column.name == "Name" { "name" } else { "" };
    json!({
        "name": column.name,
        "type": if column.kind == "date" { "string" } else { column.kind.as_str() },
        "format": format,
        "description": column.description,
        "priority": column.priority,
    })
}

fn row(
    info: &ResourceInfo,
    columns: &[PrinterColumn],
    object: &Value,
    include: IncludeObject,
    now: DateTime<Utc>,
) -> Value {
    let cells: Vec<Value> = columns.iter().map(|c| cell(info, c, object, now)).collect();
    let mut row = json!({"cells": cells});
    match include {
        IncludeObject::None => {}
        IncludeObject::Object => row["object"] = object.clone(),
        IncludeObject::Metadata => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": object["metadata"],
            });
        }
    }
    row
}

fn cell(info: &ResourceInfo, column: &PrinterColumn, object: &Value, now: DateTime<Utc>) -> Value {
    if column.name == "Name" {
        return object["metadata"]["name"].clone();
    }
    if (column.name == "Age" && column.json_path.is_empty())
        || column.json_path == ".metadata.creationTimestamp"
    {
        return json!(age(&object["metadata"]["creationTimestamp"], now));
    }
    if info.custom {
        return custom_cell(column, object, now);
    }
    builtin_cell(&column.name, object)
}

fn custom_cell(column: &PrinterColumn, object: &Value, now: DateTime<Utc>) -> Value {
    let path = format!("${}", column.json_path.trim_start_matches('$'));
    let found = object
        .query(&path)
        .ok()
        .and_then(|hits| hits.first().map(|v| (*v).clone()));
    match (found, column.kind.as_str()) {
        (Some(value), "date") => json!(age(&value, now)),
        (Some(Value::Array(_) | Value::Object(_)), _) => {
            let found = object
                .query(&path)
                .ok()
                .and_then(|h| h.first().map(std::string::ToString::to_string));
            json!(found)
        }
        (Some(value), _) => value,
        (None, _) => Value::Null,
    }
}

fn builtin_cell(name: &str, object: &Value) -> Value {
    let status = &object["status"];
    let text = |v: &Value| {
        v.as_str()
            .map_or_else(|| "<none>".to_owned(), str::to_owned)
    };
    match name {
        "Status" if object["kind"] == "Node" => json!(node_status(object)),
        "Status" if object["kind"] == "Pod" => json!(pod_status(object)),
        "Status" => json!(text(&status["phase"])),
        "Roles" => json!(node_roles(object)),
        "Version" => json!(text(&status["nodeInfo"]["kubeletVersion"])),
        "Internal-IP" => json!(node_address(object, "InternalIP")),
        "External-IP" => json!(node_address(object, "ExternalIP")),
        "OS-Image" => json!(text(&status["nodeInfo"]["osImage"])),
        "Kernel-Version" => json!(text(&status["nodeInfo"]["kernelVersion"])),
        "Container-Runtime" => json!(text(&status["nodeInfo"]["containerRuntimeVersion"])),
        "Ready" => json!(pod_ready(object)),
        "Restarts" => json!(pod_restarts(object)),
        "IP" => json!(text(&status["podIP"])),
        "Node" => json!(text(&object["spec"]["nodeName"])),
        "Min Available" => json!(int_or_string(&object["spec"]["minAvailable"])),
        "Max Unavailable" => json!(int_or_string(&object["spec"]["maxUnavailable"])),
        "Allowed Disruptions" => json!(status["disruptionsAllowed"].as_i64().unwrap_or(0)),
        _ => Value::Null,
    }
}

fn int_or_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => "N/A".to_owned(),
    }
}

fn node_status(node: &Value) -> String {
    let conditions = node["status"]["conditions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let ready = conditions.iter().find(|c| c["type"] == "Ready");
    let mut status = match ready.and_then(|c| c["status"].as_str()) {
        Some("True") => "Ready".to_owned(),
        Some("False") => "NotReady".to_owned(),
        _ => "Unknown".to_owned(),
    };
    if node["spec"]["unschedulable"].as_bool() == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

fn node_roles(node: &Value) -> String {
    let labels = node["metadata"]["labels"].as_object();
    let mut roles: Vec<String> = labels
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            k.strip_prefix("node-role.kubernetes.io/")
                .map(str::to_owned)
                .or_else(|| {
                    (k == "kubernetes.io/role").then(|| v.as_str().unwrap_or_default().to_owned())
                })
        })
        .filter(|r| !r.is_empty())
        .collect();
    roles.sort();
    if roles.is_empty() {
        "<none>".to_owned()
    } else {
        roles.join(",")
    }
}

fn node_address(node: &Value, kind: &str) -> String {
    let addresses = node["status"]["addresses"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let found = addresses
        .iter()
        .find(|a| a["type"] == kind)
        .and_then(|a| a["address"].as_str());
    found.unwrap_or("<none>").to_owned()
}

fn pod_status(pod: &Value) -> String {
    if pod["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return "Terminating".to_owned();
    }
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let waiting = statuses
        .iter()
        .find_map(|s| s["state"]["waiting"]["reason"].as_str());
    let reason = pod["status"]["reason"].as_str();
    let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
    reason.or(waiting).unwrap_or(phase).to_owned()
}

fn pod_ready(pod: &Value) -> String {
    let total = pod["spec"]["containers"].as_array().map_or(0, Vec::len);
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let ready = statuses
        .iter()
        .filter(|s| s["ready"].as_bool() == Some(true))
        .count();
    format!("{ready}/{total}")
}

fn pod_restarts(pod: &Value) -> String {
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let restarts: i64 = statuses
        .iter()
        .filter_map(|s| s["restartCount"].as_i64())
        .sum();
    restarts.to_string()
}

/// A timestamp rendered as kubectl renders ages (`45s`, `3m12s`, `5h`, `2d3h`).
pub fn age(timestamp: &Value, now: DateTime<Utc>) -> String {
    let parsed = timestamp
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    let Some(then) = parsed else {
        return "<unknown>".to_owned();
    };
    human_duration((now - then.with_timezone(&Utc)).num_seconds())
}

/// kubectl's human-readable duration.
#[must_use]
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    let seconds = seconds.max(0);
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86400);
    let with_rest = |big: i64, unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big}{unit}")
        } else {
            format!("{big}{unit}{small}{small_unit}")
        }
    };
    if seconds < 120 {
        format!("{seconds}s")
    } else if minutes < 10 {
        with_rest(minutes, "m", seconds % 60, "s")
    } else if minutes < 180 {
        format!("{minutes}m")
    } else if hours < 8 {
        with_rest(hours, "h", minutes % 60, "m")
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        with_rest(days, "d", hours % 24, "h")
    } else if hours < 24 * 365 * 2 {
        format!("{days}d")
    } else if hours < 24 * 365 * 8 {
        with_rest(days / 365, "y", days % 365, "d")
    } else {
        format!("{}y", days / 365)
    }
}
