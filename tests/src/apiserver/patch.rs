//! PATCH bodies: JSON merge patch and RFC 6902 JSON patch (through `json-patch`), and strategic
//! merge patch for built-in kinds with Kubernetes' merge keys, `null` deletion and directives.

use serde_json::{Map, Value};

use super::schema::{ListType, builtin_list_type, same_key};
use super::status::ApiError;

/// The patch formats the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml`.
    Apply,
}

impl PatchKind {
    /// The patch kind for a `Content-Type`.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        match essence {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Applies a merge, JSON or strategic patch to a copy of `current`.
pub fn patch(
    current: &Value,
    kind: PatchKind,
    body: &Value,
    custom: bool,
) -> Result<Value, ApiError> {
    let mut target = current.clone();
    match kind {
        PatchKind::Merge => json_patch::merge(&mut target, body),
        PatchKind::Strategic if custom => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                "strategic merge patch is not supported for custom resources",
            ));
        }
        PatchKind::Strategic => strategic(&mut target, body),
        PatchKind::Json => {
            let operations: json_patch::Patch = serde_json::from_value(body.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut target, &operations).map_err(|e| {
                ApiError::invalid(format!("the JSON patch could not be applied: {e}"))
            })?;
        }
        PatchKind::Apply => return Err(ApiError::internal("apply is not a plain patch")),
    }
    Ok(target)
}

/// Strategic merge patch of `patch` into `target`.
pub fn strategic(target: &mut Value, patch: &Value) {
    let Some(patch) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = Value::Object(without_directives(patch));
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    for (name, value) in patch {
        strategic_field(target, name, value);
    }
}

fn strategic_field(target: &mut Value, name: &str, value: &Value) {
    if name.starts_with("$setElementOrder/") || name == "$retainKeys" || name == "$patch" {
        return;
    }
    if let Some(field) = name.strip_prefix("$deleteFromPrimitiveList/") {
        let doomed = value.as_array().cloned().unwrap_or_default();
        if let Some(items) = target.get_mut(field).and_then(Value::as_array_mut) {
            items.retain(|v| !doomed.contains(v));
        }
        return;
    }
    let Some(map) = target.as_object_mut() else {
        return;
    };
    match value {
        Value::Null => {
            map.remove(name);
        }
        Value::Object(_) if map.get(name).is_some_and(Value::is_object) => {
            if let Some(current) = map.get_mut(name) {
                strategic(current, value);
            }
        }
        Value::Array(items) => {
            let merged = strategic_list(map.get(name), items, builtin_list_type(name));
            map.insert(name.to_owned(), Value::Array(merged));
        }
        other => {
            let mut fresh = Value::Null;
            strategic(&mut fresh, other);
            let clean = if other.is_object() {
                fresh
            } else {
                other.clone()
            };
            map.insert(name.to_owned(), clean);
        }
    }
}

fn strategic_list(current: Option<&Value>, patch: &[Value], list: ListType) -> Vec<Value> {
    let mut items = current
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match list {
        ListType::Map(keys) => {
            for item in patch {
                merge_keyed_item(&mut items, item, &keys);
            }
            items
        }
        ListType::Set => {
            for item in patch {
                if !items.contains(item) {
                    items.push(item.clone());
                }
            }
            items
        }
        ListType::Atomic => patch.to_vec(),
    }
}

fn merge_keyed_item(items: &mut Vec<Value>, item: &Value, keys: &[String]) {
    let key_fields: Vec<String> = keys
        .iter()
        .filter(|k| item.get(*k).is_some())
        .cloned()
        .collect();
    let position = items.iter().position(|i| same_key(&key_fields, i, item));
    let directive = item.get("$patch").and_then(Value::as_str);
    match (position, directive) {
        (Some(index), Some("delete")) => {
            items.remove(index);
        }
        (_, Some("delete")) => {}
        (Some(index), _) => strategic(&mut items[index], item),
        (None, _) => {
            let mut fresh = Value::Object(Map::new());
            strategic(&mut fresh, item);
            items.push(fresh);
        }
    }
}

fn without_directives(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
