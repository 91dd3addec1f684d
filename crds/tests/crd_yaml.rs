//! Checks the committed `manifests/crds.yaml`: that `crdgen` reproduces it byte for byte, that it
//! reads back as the generated definitions, and that it carries what users and the API server
//! rely on: descriptions, design defaults, list-map conditions, selectable fields and bounded
//! strings.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test fails loudly on anything unexpected"
)]

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kubelift_crds::manifest;
use serde_json::{Value, json};

const CRDS_YAML: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests/crds.yaml");

fn committed_text() -> String {
    std::fs::read_to_string(CRDS_YAML).unwrap()
}

fn committed() -> Vec<CustomResourceDefinition> {
    serde_saphyr::from_multiple(&committed_text()).unwrap()
}

/// The openAPIV3Schema of the CRD of `kind`, as JSON.
fn schema(kind: &str) -> Value {
    let crds = committed();
    let crd = crds.iter().find(|crd| crd.spec.names.kind == kind).unwrap();
    let validation = crd.spec.versions[0].schema.as_ref().unwrap();
    serde_json::to_value(validation.open_api_v3_schema.as_ref().unwrap()).unwrap()
}

#[test]
fn crdgen_reproduces_the_committed_file_byte_for_byte() {
    let generated = manifest::crds_yaml().unwrap();
    assert!(
        generated == committed_text(),
        "manifests/crds.yaml is stale; regenerate it with `{}`",
        manifest::REGENERATE
    );
}

#[test]
fn the_committed_file_reads_back_as_the_generated_definitions() {
    assert_eq!(committed(), manifest::crds());
}

/// Every entry under `properties`, anywhere in the schema, with its dotted path.
fn properties<'a>(schema: &'a Value, path: &str, out: &mut Vec<(String, &'a Value)>) {
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        let here = format!("{path}.{name}");
        properties(property, &here, out);
        out.push((here, property));
    }
    for nested in ["items", "additionalProperties"] {
        if schema[nested].is_object() {
            properties(&schema[nested], &format!("{path}.{nested}"), out);
        }
    }
}

#[test]
fn every_property_has_a_description() {
    for kind in ["KubeletUpgrade", "NodeUpgrade"] {
        let schema = schema(kind);
        let mut all = Vec::new();
        properties(&schema, kind, &mut all);
        assert!(all.len() > 40, "{kind} has suspiciously few properties");
        let missing: Vec<_> = all
            .iter()
            .filter(|(_, property)| property["description"].as_str().is_none_or(str::is_empty))
            .map(|(path, _)| path.as_str())
            .collect();
        assert!(
            missing.is_empty(),
            "properties without a description: {missing:?}"
        );
    }
}

#[test]
fn the_design_defaults_are_in_the_schema() {
    let spec = &schema("KubeletUpgrade")["properties"]["spec"]["properties"];
    let expected = [
        ("/allowDowngrade", json!(false)),
        ("/rollout/properties/maxUnavailable", json!(1)),
        ("/rollout/properties/canary", json!(1)),
        ("/rollout/properties/pauseAfterCanary", json!(false)),
        ("/rollout/properties/order", json!("Name")),
        ("/rollout/properties/soakSeconds", json!(30)),
        ("/containers/properties/policy", json!("Preserve")),
        ("/containers/properties/snapshotAwareKubelet", json!(false)),
        ("/containers/properties/protectDaemonSets", json!(false)),
        ("/drain/properties/timeoutSeconds", json!(600)),
        ("/drain/properties/onTimeout", json!("Fail")),
        ("/verify/properties/prepareTimeoutSeconds", json!(300)),
        ("/verify/properties/readyTimeoutSeconds", json!(300)),
        ("/verify/properties/settleSeconds", json!(10)),
        ("/verify/properties/maxUnexpectedRestarts", json!(0)),
        ("/failurePolicy/properties/maxFailedNodes", json!(0)),
        ("/failurePolicy/properties/rollback", json!(true)),
        ("/paused", json!(false)),
        ("/window/properties/timeZone", json!("UTC")),
    ];
    for (pointer, default) in expected {
        let property = spec
            .pointer(pointer)
            .unwrap_or_else(|| panic!("no property {pointer}"));
        assert_eq!(property["default"], default, "default of {pointer}");
    }
}

#[test]
fn max_unavailable_cannot_be_stored_as_null() {
    let spec = &schema("KubeletUpgrade")["properties"]["spec"]["properties"];
    let max_unavailable = &spec["rollout"]["properties"]["maxUnavailable"];
    assert_eq!(max_unavailable["x-kubernetes-int-or-string"], json!(true));
    assert_eq!(max_unavailable["nullable"], json!(false));
}

#[test]
fn enums_are_restricted_to_their_values() {
    let spec = &schema("KubeletUpgrade")["properties"]["spec"]["properties"];
    let expected = [
        (
            "/containers/properties/policy",
            json!(["Preserve", "EvictIfRestart", "Drain"]),
        ),
        (
            "/drain/properties/onTimeout",
            json!(["Fail", "Skip", "DeletePod"]),
        ),
        (
            "/rollout/properties/order",
            json!(["Name", "ZoneRoundRobin"]),
        ),
        (
            "/window/properties/days/items",
            json!(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
        ),
    ];
    for (pointer, values) in expected {
        assert_eq!(
            spec.pointer(pointer).unwrap()["enum"],
            values,
            "enum of {pointer}"
        );
    }
    let node = &schema("NodeUpgrade")["properties"]["spec"]["properties"];
    assert_eq!(node["stage"]["enum"], json!(["Prepare", "Execute", "Hold"]));
}

#[test]
fn conditions_are_a_list_map_keyed_by_type() {
    let status = &schema("KubeletUpgrade")["properties"]["status"]["properties"];
    let conditions = &status["conditions"];
    assert_eq!(conditions["x-kubernetes-list-type"], json!("map"));
    assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
    let required = conditions["items"]["required"].as_array().unwrap();
    assert!(
        required.contains(&json!("type")),
        "a list-map key must be required"
    );
}

#[test]
fn node_name_is_a_selectable_field_and_both_kinds_have_a_status_subresource() {
    let crds = committed();
    for crd in &crds {
        let version = &crd.spec.versions[0];
        assert!(
            version.subresources.as_ref().unwrap().status.is_some(),
            "{}",
            crd.spec.names.kind
        );
        assert_eq!(crd.spec.scope, "Cluster");
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["kubelift".to_owned()][..])
        );
    }
    let node = crds
        .iter()
        .find(|crd| crd.spec.names.kind == "NodeUpgrade")
        .unwrap();
    let selectable = node.spec.versions[0].selectable_fields.as_ref().unwrap();
    assert_eq!(selectable[0].json_path, ".spec.nodeName");
}

/// Paths of string properties that carry a CEL rule but no `maxLength`.
fn unbounded_strings(schema: &Value, path: &str, out: &mut Vec<String>) {
    let has_rules = schema.get("x-kubernetes-validations").is_some();
    if has_rules && schema["type"] == "string" && schema.get("maxLength").is_none() {
        out.push(path.to_owned());
    }
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        unbounded_strings(property, &format!("{path}.{name}"), out);
    }
    for nested in ["items", "additionalProperties"] {
        if schema[nested].is_object() {
            unbounded_strings(&schema[nested], &format!("{path}.{nested}"), out);
        }
    }
}

#[test]
fn every_string_checked_by_cel_has_a_maximum_length_for_the_cost_estimator() {
    for kind in ["KubeletUpgrade", "NodeUpgrade"] {
        let mut unbounded = Vec::new();
        unbounded_strings(&schema(kind), kind, &mut unbounded);
        assert!(
            unbounded.is_empty(),
            "strings without maxLength: {unbounded:?}"
        );
    }
}
