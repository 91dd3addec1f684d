//! Server-side apply and managed fields: each manager owns the fields it applied; applying a
//! value another manager owns conflicts unless forced; fields a manager stops applying are
//! removed unless someone else owns them; ordinary writes move ownership to their manager.

use serde_json::{Map, Value, json};

use super::fieldpath::{self, FieldSet, Path};
use super::schema::{ListType, Schema, same_key};
use super::status::ApiError;

/// Who writes, through which subresource, and how.
#[derive(Debug, Clone, Copy)]
pub struct Writer<'a> {
    /// Field manager name.
    pub manager: &'a str,
    /// `status` or empty.
    pub subresource: &'a str,
    /// Whether the resource isolates status in a subresource.
    pub status_subresource: bool,
    /// `apiVersion` recorded in managed fields.
    pub api_version: &'a str,
    /// Timestamp recorded in managed fields.
    pub now: &'a str,
    /// Structure of the object.
    pub schema: Schema<'a>,
}

#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    subresource: String,
    api_version: String,
    time: String,
    set: FieldSet,
}

/// Applies `applied` on top of `live` for `writer`; `force` takes conflicting fields over.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    writer: &Writer<'_>,
    force: bool,
) -> Result<Value, ApiError> {
    let empty = json!({});
    let live = live.unwrap_or(&empty);
    let mut entries = read_entries(live);
    let applied_set = owned_set(applied, writer);
    let conflicts = find_conflicts(live, applied, &applied_set, &entries, writer.manager);
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(&conflicts));
    }

    let mut merged = live.clone();
    merge(&mut merged, applied, writer.schema);
    let previous = take_entry(&mut entries, writer, "Apply");
    remove_abandoned(&mut merged, previous.as_ref(), &applied_set, &entries);

    for (path, manager) in &conflicts {
        for entry in entries.iter_mut().filter(|e| &e.manager == manager) {
            entry.set.remove(path);
        }
    }
    entries.push(new_entry(writer, "Apply", applied_set));
    write_entries(&mut merged, entries);
    Ok(merged)
}

/// Records an ordinary write (create, update, patch): `writer` takes the fields it changed.
pub fn record_update(old: Option<&Value>, new: &mut Value, writer: &Writer<'_>) {
    let empty = json!({});
    let old = old.unwrap_or(&empty);
    let before = owned_set(old, writer);
    let after = owned_set(new, writer);
    let changed: FieldSet = after
        .iter()
        .filter(|p| leaf_changed(old, new, p) || !before.contains(*p))
        .cloned()
        .collect();
    let removed: FieldSet = before.difference(&after).cloned().collect();
    if changed.is_empty() && removed.is_empty() && old.get("metadata").is_some() {
        let entries = read_entries(old);
        write_entries(new, entries);
        return;
    }

    let mut entries = read_entries(old);
    for entry in &mut entries {
        entry
            .set
            .retain(|p| !changed.contains(p) && !removed.contains(p));
    }
    let mut mine = take_entry(&mut entries, writer, "Update")
        .map(|e| e.set)
        .unwrap_or_default();
    mine.retain(|p| !removed.contains(p));
    mine.extend(changed);
    entries.push(new_entry(writer, "Update", mine));
    write_entries(new, entries);
}

fn leaf_changed(old: &Value, new: &Value, path: &Path) -> bool {
    let after = fieldpath::value_at(new, path);
    let is_container = after.is_some_and(|v| v.as_object().is_some_and(|m| !m.is_empty()));
    !is_container && fieldpath::value_at(old, path) != after
}

fn owned_set(object: &Value, writer: &Writer<'_>) -> FieldSet {
    let mut set = FieldSet::new();
    fieldpath::collect(object, writer.schema, &mut Vec::new(), &mut set);
    set.retain(|path| tracked(path, writer));
    set
}

fn tracked(path: &Path, writer: &Writer<'_>) -> bool {
    let first = path.first().map(String::as_str);
    if matches!(first, Some("f:apiVersion" | "f:kind") | None) {
        return false;
    }
    if first == Some("f:metadata") {
        let second = path.get(1).map(String::as_str);
        let system = matches!(
            second,
            Some(
                "f:name"
                    | "f:namespace"
                    | "f:uid"
                    | "f:resourceVersion"
                    | "f:generation"
                    | "f:creationTimestamp"
                    | "f:managedFields"
                    | "f:deletionTimestamp"
                    | "f:deletionGracePeriodSeconds"
                    | "f:selfLink"
            ) | None
        );
        return !system && writer.subresource != "status";
    }
    if !writer.status_subresource {
        return true;
    }
    (first == Some("f:status")) == (writer.subresource == "status")
}

fn find_conflicts(
    live: &Value,
    applied: &Value,
    applied_set: &FieldSet,
    entries: &[Entry],
    manager: &str,
) -> Vec<(Path, String)> {
    let mut conflicts = Vec::new();
    for entry in entries.iter().filter(|e| e.manager != manager) {
        for path in applied_set.intersection(&entry.set) {
            let wanted = fieldpath::value_at(applied, path);
            let current = fieldpath::value_at(live, path);
            let container = wanted.is_some_and(|v| v.as_object().is_some_and(|m| !m.is_empty()));
            if !container && current.is_some() && wanted != current {
                conflicts.push((path.clone(), entry.manager.clone()));
            }
        }
    }
    conflicts
}

fn conflict_error(conflicts: &[(Path, String)]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(path, manager)| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with \"{manager}\""),
                "field": render_path(path),
            })
        })
        .collect();
    let listed: Vec<String> = conflicts
        .iter()
        .map(|(path, manager)| format!("conflict with \"{manager}\": {}", render_path(path)))
        .collect();
    let noun = if conflicts.len() == 1 {
        "conflict"
    } else {
        "conflicts"
    };
    let message = format!(
        "Apply failed with {} {noun}: {}",
        conflicts.len(),
        listed.join("\n")
    );
    ApiError::new(409, "Conflict", message).with_details(json!({"causes": causes}))
}

/// Renders a path as `.spec.containers[name="c"].image`.
pub fn render_path(path: &Path) -> String {
    let mut text = String::new();
    for element in path {
        if let Some(name) = element.strip_prefix("f:") {
            text.push('.');
            text.push_str(name);
        } else if let Some(key) = element.strip_prefix("k:") {
            let key: Value = serde_json::from_str(key).unwrap_or(Value::Null);
            let parts: Vec<String> = key
                .as_object()
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            text.push('[');
            text.push_str(&parts.join(","));
            text.push(']');
        } else if let Some(value) = element.strip_prefix("v:") {
            text.push_str("[=");
            text.push_str(value);
            text.push(']');
        }
    }
    text
}

/// Merges an applied configuration into an object, list-maps by key and sets by value.
pub fn merge(live: &mut Value, applied: &Value, schema: Schema<'_>) {
    match (live, applied) {
        (Value::Object(live), Value::Object(applied)) if !schema.atomic_map() => {
            for (name, value) in applied {
                match live.get_mut(name) {
                    Some(current) => merge(current, value, schema.field(name)),
                    None => {
                        live.insert(name.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(live), Value::Array(applied)) => merge_list(live, applied, schema),
        (live, applied) => *live = applied.clone(),
    }
}

fn merge_list(live: &mut Vec<Value>, applied: &[Value], schema: Schema<'_>) {
    match schema.list_type() {
        ListType::Map(keys) => {
            for item in applied {
                match live.iter_mut().find(|l| same_key(&keys, l, item)) {
                    Some(current) => merge(current, item, schema.items()),
                    None => live.push(item.clone()),
                }
            }
        }
        ListType::Set => {
            for item in applied {
                if !live.contains(item) {
                    live.push(item.clone());
                }
            }
        }
        ListType::Atomic => *live = applied.to_vec(),
    }
}

fn remove_abandoned(
    merged: &mut Value,
    previous: Option<&Entry>,
    applied: &FieldSet,
    others: &[Entry],
) {
    let Some(previous) = previous else { return };
    let owned_elsewhere = |path: &Path| {
        others
            .iter()
            .any(|e| e.set.iter().any(|p| p.starts_with(path)))
            || applied.iter().any(|p| p.starts_with(path))
    };
    let mut abandoned: Vec<&Path> = previous
        .set
        .iter()
        .filter(|p| !owned_elsewhere(p))
        .collect();
    abandoned.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for path in abandoned {
        fieldpath::remove_at(merged, path);
    }
}

fn take_entry(entries: &mut Vec<Entry>, writer: &Writer<'_>, operation: &str) -> Option<Entry> {
    let index = entries.iter().position(|e| {
        e.manager == writer.manager
            && e.operation == operation
            && e.subresource == writer.subresource
    })?;
    Some(entries.remove(index))
}

fn new_entry(writer: &Writer<'_>, operation: &str, set: FieldSet) -> Entry {
    Entry {
        manager: writer.manager.to_owned(),
        operation: operation.to_owned(),
        subresource: writer.subresource.to_owned(),
        api_version: writer.api_version.to_owned(),
        time: writer.now.to_owned(),
        set,
    }
}

fn read_entries(object: &Value) -> Vec<Entry> {
    let raw = object["metadata"]["managedFields"]
        .as_array()
        .map(Vec::as_slice);
    let text = |e: &Value, k: &str| e[k].as_str().unwrap_or_default().to_owned();
    raw.unwrap_or_default()
        .iter()
        .map(|e| Entry {
            manager: text(e, "manager"),
            operation: text(e, "operation"),
            subresource: text(e, "subresource"),
            api_version: text(e, "apiVersion"),
            time: text(e, "time"),
            set: fieldpath::from_fields_v1(&e["fieldsV1"]),
        })
        .collect()
}

fn write_entries(object: &mut Value, entries: Vec<Entry>) {
    let rendered: Vec<Value> = entries
        .into_iter()
        .filter(|e| !e.set.is_empty())
        .map(|e| {
            let mut entry = Map::new();
            entry.insert("manager".into(), e.manager.into());
            entry.insert("operation".into(), e.operation.into());
            entry.insert("apiVersion".into(), e.api_version.into());
            entry.insert("time".into(), e.time.into());
            entry.insert("fieldsType".into(), "FieldsV1".into());
            entry.insert("fieldsV1".into(), fieldpath::to_fields_v1(&e.set));
            if !e.subresource.is_empty() {
                entry.insert("subresource".into(), e.subresource.into());
            }
            Value::Object(entry)
        })
        .collect();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert("managedFields".into(), Value::Array(rendered));
    }
}
