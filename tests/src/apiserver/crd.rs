//! Custom resources: structural pruning of unknown fields and schema `default`s on every write,
//! the CRD's own status (`Established`, `NamesAccepted`), and optional CEL rule enforcement.

use serde_json::{Map, Value, json};

use super::status::ApiError;

/// Drops fields the schema does not know and fills in defaults, below the root's metadata.
pub fn prune_and_default(object: &mut Value, schema: &Value) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    let properties = schema["properties"].as_object();
    let preserve = schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
    if !preserve {
        map.retain(|k, _| {
            matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
                || properties.is_some_and(|p| p.contains_key(k))
        });
    }
    visit_properties(map, schema, true);
}

fn prune(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => prune_object(map, schema),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items.iter_mut() {
                    prune(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

fn prune_object(map: &mut Map<String, Value>, schema: &Value) {
    if schema["x-kubernetes-embedded-resource"].as_bool() == Some(true) {
        return;
    }
    if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        for value in map.values_mut() {
            prune(value, additional);
        }
        return;
    }
    let preserve = schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
    let properties = schema["properties"].as_object();
    if !preserve {
        map.retain(|k, _| properties.is_some_and(|p| p.contains_key(k)));
    }
    visit_properties(map, schema, false);
}

fn visit_properties(map: &mut Map<String, Value>, schema: &Value, root: bool) {
    let Some(properties) = schema["properties"].as_object() else {
        return;
    };
    for (name, property) in properties {
        if root && matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if !map.contains_key(name)
            && let Some(default) = property.get("default")
        {
            map.insert(name.clone(), default.clone());
        }
        if let Some(value) = map.get_mut(name) {
            prune(value, property);
        }
    }
}

/// Sets the status a CRD gets once its names are accepted and it is served.
pub fn establish(crd: &mut Value, now: &str) {
    let names = crd["spec"]["names"].clone();
    let storage: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .map(|v| v["name"].clone())
        .collect();
    let condition = |kind: &str, reason: &str, message: &str| {
        json!({
            "type": kind, "status": "True", "lastTransitionTime": now,
            "reason": reason, "message": message,
        })
    };
    crd["status"] = json!({
        "acceptedNames": names,
        "storedVersions": storage,
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition(
                "Established",
                "InitialNamesAccepted",
                "the initial names have been accepted",
            ),
        ],
    });
}

/// Evaluates the schema's `x-kubernetes-validations` CEL rules (with transition rules against
/// the old object); any failure rejects the write as 422 Invalid.
pub fn validate_cel(schema: &Value, object: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let Err(errors) = kube_cel::validate(schema, object, old) else {
        return Ok(());
    };
    let messages: Vec<String> = errors
        .as_slice()
        .iter()
        .map(|e| format!("{}: Invalid value: {}", e.field_path, e.message))
        .collect();
    Err(ApiError::invalid(messages.join(", ")))
}
