//! Managed-field sets in the `FieldsV1` wire form: paths of `f:`, `k:`, `v:` and `i:` elements,
//! collected from objects by schema and used to find, compare and remove owned fields.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::schema::{ListType, Schema, same_key};

/// One path: elements such as `f:spec`, `k:{"name":"c"}`, `v:"x"`.
pub type Path = Vec<String>;

/// A set of owned paths.
pub type FieldSet = BTreeSet<Path>;

/// Collects the fields present in `object` (a leaf per scalar, atomic value or empty map; a
/// member per list-map or set item).
pub fn collect(object: &Value, schema: Schema<'_>, prefix: &mut Path, out: &mut FieldSet) {
    match object {
        Value::Object(map) if !map.is_empty() && !schema.atomic_map() => {
            for (name, value) in map {
                prefix.push(format!("f:{name}"));
                collect(value, schema.field(name), prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => collect_list(items, schema, prefix, out),
        _ => {
            out.insert(prefix.clone());
        }
    }
}

fn collect_list(items: &[Value], schema: Schema<'_>, prefix: &mut Path, out: &mut FieldSet) {
    match schema.list_type() {
        ListType::Map(keys) => {
            for item in items {
                prefix.push(key_element(&keys, item));
                out.insert(prefix.clone());
                collect(item, schema.items(), prefix, out);
                prefix.pop();
            }
        }
        ListType::Set => {
            for item in items {
                prefix.push(format!("v:{item}"));
                out.insert(prefix.clone());
                prefix.pop();
            }
        }
        ListType::Atomic => {
            out.insert(prefix.clone());
        }
    }
}

fn key_element(keys: &[String], item: &Value) -> String {
    let mut sorted: Vec<&String> = keys.iter().collect();
    sorted.sort();
    let mut map = Map::new();
    for key in sorted {
        map.insert(key.clone(), item.get(key).cloned().unwrap_or(Value::Null));
    }
    format!("k:{}", Value::Object(map))
}

/// The value at `path`, if present.
pub fn value_at<'v>(object: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter()
        .try_fold(object, |value, element| step(value, element))
}

fn step<'v>(value: &'v Value, element: &str) -> Option<&'v Value> {
    if let Some(name) = element.strip_prefix("f:") {
        return value.get(name);
    }
    let items = value.as_array()?;
    items.get(position(items, element)?)
}

fn position(items: &[Value], element: &str) -> Option<usize> {
    if let Some(key) = element.strip_prefix("k:") {
        let key: Value = serde_json::from_str(key).ok()?;
        let keys: Vec<String> = key.as_object()?.keys().cloned().collect();
        return items.iter().position(|item| same_key(&keys, item, &key));
    }
    if let Some(wanted) = element.strip_prefix("v:") {
        let wanted: Value = serde_json::from_str(wanted).ok()?;
        return items.iter().position(|item| *item == wanted);
    }
    element.strip_prefix("i:")?.parse().ok()
}

/// Removes the field or item at `path`; returns whether something was removed.
pub fn remove_at(object: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let Some(parent) = parents.iter().try_fold(object, |v, e| step_mut(v, e)) else {
        return false;
    };
    if let Some(name) = last.strip_prefix("f:") {
        return parent
            .as_object_mut()
            .is_some_and(|m| m.remove(name).is_some());
    }
    let Some(items) = parent.as_array_mut() else {
        return false;
    };
    match position(items, last) {
        Some(index) => {
            items.remove(index);
            true
        }
        None => false,
    }
}

fn step_mut<'v>(value: &'v mut Value, element: &str) -> Option<&'v mut Value> {
    if let Some(name) = element.strip_prefix("f:") {
        return value.get_mut(name);
    }
    let items = value.as_array_mut()?;
    let index = position(items, element)?;
    items.get_mut(index)
}

/// Parses a `fieldsV1` tree into a set.
pub fn from_fields_v1(tree: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    walk_tree(tree, &mut Vec::new(), &mut out);
    out
}

fn walk_tree(tree: &Value, prefix: &mut Path, out: &mut FieldSet) {
    let Some(map) = tree.as_object() else { return };
    if map.is_empty() && !prefix.is_empty() {
        out.insert(prefix.clone());
    }
    for (element, child) in map {
        if element == "." {
            out.insert(prefix.clone());
            continue;
        }
        prefix.push(element.clone());
        walk_tree(child, prefix, out);
        prefix.pop();
    }
}

/// Renders a set as a `fieldsV1` tree.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Value::Object(Map::new());
    for path in set {
        let node = path.iter().fold(&mut root, |node, e| &mut node[e.as_str()]);
        if node.is_null() {
            *node = Value::Object(Map::new());
        }
    }
    for path in set.iter().filter(|p| !p.is_empty()) {
        let has_children = set
            .iter()
            .any(|p| p.len() > path.len() && p.starts_with(path));
        if has_children {
            let node = path.iter().fold(&mut root, |node, e| &mut node[e.as_str()]);
            node["."] = Value::Object(Map::new());
        }
    }
    root
}
