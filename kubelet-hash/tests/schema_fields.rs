//! Generated from the schema files: every field that first appears in release 1.N leaves the
//! hash of 1.(N-1) unchanged (the older kubelet drops it) and changes the hash of 1.N.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use kubelet_hash::{HashOptions, KubeletVersion, embedded_minors, hash};
use serde_json::{Map, Value, json};

/// Field path (without the leading dot) to its Go type, for one release.
fn read_schema(minor: u32) -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("schemas/v1.{minor}.txt"));
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (path, rest) = line.split_once(' ').unwrap();
            let go_type = rest.trim_start_matches('(').split(')').next().unwrap();
            (path.trim_start_matches('.').to_owned(), go_type.to_owned())
        })
        .collect()
}

/// A non-zero sample for a leaf (or an empty composite for a parent with children).
fn sample(go_type: &str, has_children: bool) -> Value {
    let element = go_type.trim_start_matches('*').trim_start_matches("[]");
    let value = match element {
        _ if has_children => json!({}),
        "int32" | "int64" | "intstr.IntOrString" => json!(1),
        "bool" => json!(true),
        "resource.Quantity" => json!("1"),
        "v1.ResourceList" => json!({"cpu": "1"}),
        _ => json!("x"),
    };
    if go_type.starts_with("[]") {
        json!([value])
    } else {
        value
    }
}

/// Sets `path` inside `root`, creating parents (a slice parent gets one element).
fn set(root: &mut Map<String, Value>, schema: &BTreeMap<String, String>, path: &str, leaf: Value) {
    let parts: Vec<&str> = path.split('.').collect();
    let mut object = root;
    for depth in 0..parts.len() - 1 {
        let parent_path = parts[..=depth].join(".");
        let is_slice = schema[&parent_path].starts_with("[]");
        let entry = object
            .entry(parts[depth])
            .or_insert_with(|| if is_slice { json!([{}]) } else { json!({}) });
        let next = if is_slice {
            &mut entry.as_array_mut().unwrap()[0]
        } else {
            entry
        };
        object = next.as_object_mut().unwrap();
    }
    object.insert(parts[parts.len() - 1].to_owned(), leaf);
}

fn container(schema: &BTreeMap<String, String>, path: &str, with_field: bool) -> String {
    let mut root = Map::new();
    root.insert("name".into(), json!("c"));
    root.insert("image".into(), json!("i"));
    let has_children = schema.keys().any(|p| p.starts_with(&format!("{path}.")));
    let leaf = sample(&schema[path], has_children);
    set(&mut root, schema, path, leaf);
    if !with_field {
        let parent = path.rsplit_once('.').map(|(parent, _)| parent);
        remove(&mut root, schema, parent, path.rsplit('.').next().unwrap());
    }
    Value::Object(root).to_string()
}

fn remove(
    root: &mut Map<String, Value>,
    schema: &BTreeMap<String, String>,
    parent: Option<&str>,
    key: &str,
) {
    let Some(parent) = parent else {
        root.remove(key);
        return;
    };
    let mut object = root;
    let parts: Vec<&str> = parent.split('.').collect();
    for depth in 0..parts.len() {
        let is_slice = schema[&parts[..=depth].join(".")].starts_with("[]");
        let entry = object.get_mut(parts[depth]).unwrap();
        let next = if is_slice {
            &mut entry.as_array_mut().unwrap()[0]
        } else {
            entry
        };
        object = next.as_object_mut().unwrap();
    }
    object.remove(key);
}

#[test]
fn every_new_field_is_ignored_by_the_previous_release_and_hashed_by_its_own() {
    let minors: Vec<u32> = embedded_minors().collect();
    let mut checked = 0;
    for pair in minors.windows(2) {
        let (old, new) = (read_schema(pair[0]), read_schema(pair[1]));
        let old_kubelet: KubeletVersion = format!("v1.{}.0", pair[0]).parse().unwrap();
        let new_kubelet: KubeletVersion = format!("v1.{}.0", pair[1]).parse().unwrap();
        for path in new.keys().filter(|p| !old.contains_key(*p)) {
            let with = container(&new, path, true);
            let without = container(&new, path, false);
            let on = |kubelet: &KubeletVersion, json: &str| {
                hash(json, kubelet, &HashOptions::default()).unwrap()
            };
            assert_eq!(
                on(&old_kubelet, &with),
                on(&old_kubelet, &without),
                "{path} on {old_kubelet}: {with}"
            );
            assert_ne!(
                on(&new_kubelet, &with),
                on(&new_kubelet, &without),
                "{path} on {new_kubelet}: {with}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} new fields found");
}
