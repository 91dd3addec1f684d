//! The container is decoded as the kubelet's Go decoder does before it is re-encoded:
//! `IntOrString` both ways, quantities from strings, numbers and `null`, case-insensitive keys,
//! duplicates, `null` on non-pointers, type mismatches, and Go's string repairs.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use kubelet_hash::{HashError, HashOptions, KubeletVersion, hash_bytes, hashed_json};

fn v1_30() -> KubeletVersion {
    "v1.30.0".parse().unwrap()
}

fn projected(container: &str) -> String {
    hashed_json(container, &v1_30(), &HashOptions::default()).unwrap()
}

fn refused(container: &str) -> HashError {
    hashed_json(container, &v1_30(), &HashOptions::default()).unwrap_err()
}

/// The probe's port as written, then as the kubelet writes it back.
const INT_OR_STRING: &[(&str, &str)] = &[
    ("8080", "8080"),
    ("\"8080\"", "\"8080\""),
    ("\"http\"", "\"http\""),
    ("0", "0"),
    ("-0", "0"),
    ("-1", "-1"),
    ("2147483647", "2147483647"),
    ("null", "0"),
    ("\"\"", "\"\""),
    ("\"a<b\"", "\"a\\u003cb\""),
    ("\"\\u0068ttp\"", "\"http\""),
];

#[test]
fn int_or_string_is_written_as_given_a_number_or_a_string() {
    for &(given, written) in INT_OR_STRING {
        let container =
            format!(r#"{{"name":"a","readinessProbe":{{"httpGet":{{"port":{given}}}}}}}"#);
        let expected = format!(
            r#"{{"name":"a","resources":{{}},"readinessProbe":{{"httpGet":{{"port":{written}}}}}}}"#
        );
        assert_eq!(projected(&container), expected, "port {given}");
    }
}

#[test]
fn an_absent_int_or_string_is_the_number_zero() {
    let json = projected(r#"{"name":"a","livenessProbe":{"tcpSocket":{}}}"#);
    assert_eq!(
        json,
        r#"{"name":"a","resources":{},"livenessProbe":{"tcpSocket":{"port":0}}}"#
    );
}

#[test]
fn int_or_string_refuses_what_go_refuses() {
    for port in ["1.5", "1e3", "2147483648", "true", "{}", "[]"] {
        let container =
            format!(r#"{{"name":"a","livenessProbe":{{"tcpSocket":{{"port":{port}}}}}}}"#);
        assert!(
            matches!(refused(&container), HashError::Decode(_)),
            "port {port}"
        );
    }
}

#[test]
fn quantities_read_from_numbers_and_null_and_refuse_escapes() {
    let json = projected(r#"{"name":"a","resources":{"limits":{"cpu":0.5,"memory":null}}}"#);
    assert_eq!(
        json,
        r#"{"name":"a","resources":{"limits":{"cpu":"500m","memory":"0"}}}"#
    );
    assert!(
        matches!(refused(r#"{"name":"a","resources":{"limits":{"cpu":"\u0031"}}}"#),
        HashError::Decode(e) if e.path == ".resources.limits.cpu")
    );
    assert!(matches!(
        refused(r#"{"name":"a","resources":{"limits":{"cpu":""}}}"#),
        HashError::Decode(_)
    ));
    assert!(matches!(
        refused(r#"{"name":"a","resources":{"limits":{"cpu":true}}}"#),
        HashError::Decode(_)
    ));
}

#[test]
fn a_present_resource_field_ref_always_carries_its_divisor() {
    let json = projected(concat!(
        r#"{"name":"a","env":[{"name":"X","valueFrom":{"resourceFieldRef":{"resource":"r","#,
        r#""divisor":"1Mi"}}}]}"#,
    ));
    assert!(
        json.contains(r#""resourceFieldRef":{"resource":"r","divisor":"1Mi"}"#),
        "{json}"
    );
}

#[test]
fn keys_match_case_insensitively_and_exact_matches_win() {
    let json = projected(r#"{"NAME":"upper","Image":"i","imagepullpolicy":"Always"}"#);
    assert_eq!(
        json,
        r#"{"name":"upper","image":"i","resources":{},"imagePullPolicy":"Always"}"#
    );
    let json = projected(r#"{"name":"exact","Name":"folded"}"#);
    assert!(
        json.starts_with(r#"{"name":"folded""#),
        "later keys overwrite: {json}"
    );
}

#[test]
fn duplicate_keys_merge_structs_and_replace_scalars_as_go_does() {
    let json = projected(
        r#"{"name":"a","securityContext":{"privileged":true},"securityContext":{"runAsUser":0}}"#,
    );
    assert!(
        json.contains(r#""securityContext":{"privileged":true,"runAsUser":0}"#),
        "{json}"
    );
    let json =
        projected(r#"{"name":"a","resources":{"limits":{"cpu":"1"},"limits":{"memory":"1"}}}"#);
    assert!(
        json.contains(r#"{"limits":{"cpu":"1","memory":"1"}}"#),
        "maps merge: {json}"
    );
}

#[test]
fn null_leaves_non_pointers_alone_and_clears_pointers() {
    let json = projected(r#"{"name":"a","resources":null,"stdin":null,"securityContext":null}"#);
    assert_eq!(json, r#"{"name":"a","resources":{}}"#);
    let json = projected(r#"{"name":"a","livenessProbe":{"grpc":{"port":1,"service":null}}}"#);
    assert!(
        json.contains(r#""grpc":{"port":1,"service":null}"#),
        "{json}"
    );
    let json = projected(r#"{"name":"a","args":["x",null]}"#);
    assert!(json.contains(r#""args":["x",""]"#), "{json}");
}

#[test]
fn pointers_to_zero_values_are_kept_and_empty_collections_dropped() {
    let json = projected(concat!(
        r#"{"name":"a","command":[],"env":[{"name":"E","#,
        r#""valueFrom":{"secretKeyRef":{"key":"k","optional":false}}}],"#,
        r#""securityContext":{"privileged":false}}"#,
    ));
    assert_eq!(
        json,
        concat!(
            r#"{"name":"a","env":[{"name":"E","valueFrom":{"secretKeyRef":{"key":"k","#,
            r#""optional":false}}}],"resources":{},"securityContext":{"privileged":false}}"#,
        )
    );
}

#[test]
fn unknown_fields_are_dropped_but_type_mismatches_fail() {
    assert_eq!(
        projected(r#"{"name":"a","future":{"x":[1]},"stdin":false}"#),
        r#"{"name":"a","resources":{}}"#
    );
    for bad in [
        r#"{"name":1}"#,
        r#"{"name":"a","stdin":"yes"}"#,
        r#"{"name":"a","args":"x"}"#,
        r#"{"name":"a","ports":[{"containerPort":1.0}]}"#,
        r"[]",
    ] {
        assert!(matches!(refused(bad), HashError::Decode(_)), "{bad}");
    }
    assert!(matches!(refused(r#"{"name":"a""#), HashError::Json(_)));
}

#[test]
fn integers_are_rewritten_in_go_form_and_range_checked() {
    let json = projected(r#"{"name":"a","ports":[{"containerPort":-0,"hostPort":65536}]}"#);
    assert!(
        json.contains(r#""ports":[{"hostPort":65536,"containerPort":0}]"#),
        "{json}"
    );
    assert!(
        matches!(refused(r#"{"name":"a","ports":[{"containerPort":2147483648}]}"#),
        HashError::Decode(e) if e.path == ".ports.0.containerPort")
    );
}

#[test]
fn invalid_utf8_and_lone_surrogates_become_raw_replacement_characters() {
    let kubelet = v1_30();
    let raw = hash_bytes(
        b"{\"name\":\"a\",\"args\":[\"x\xffy\"]}",
        &kubelet,
        &HashOptions::default(),
    );
    let repaired = hashed_json(
        r#"{"name":"a","args":["x\ufffdy"]}"#,
        &kubelet,
        &HashOptions::default(),
    );
    assert!(repaired.unwrap().contains("x\u{fffd}y"));
    let escaped = kubelet_hash::hash(
        r#"{"name":"a","args":["x\ud800y"]}"#,
        &kubelet,
        &HashOptions::default(),
    );
    assert_eq!(raw.unwrap(), escaped.unwrap());
}

#[test]
fn the_escaping_option_changes_only_containers_with_backspace_or_form_feed() {
    let kubelet: KubeletVersion = "v1.29.0".parse().unwrap();
    let legacy = HashOptions {
        go_escapes: Some(kubelet_hash::GoEscapes::Legacy),
        ..Default::default()
    };
    let go122 = HashOptions {
        go_escapes: Some(kubelet_hash::GoEscapes::Go122),
        ..Default::default()
    };
    let with = r#"{"name":"a","args":["\b\f"]}"#;
    assert!(
        hashed_json(with, &kubelet, &legacy)
            .unwrap()
            .contains(r#"["\u0008\u000c"]"#)
    );
    assert!(
        hashed_json(with, &kubelet, &go122)
            .unwrap()
            .contains(r#"["\b\f"]"#)
    );
    assert_eq!(
        hashed_json(with, &kubelet, &HashOptions::default()).unwrap(),
        hashed_json(with, &kubelet, &legacy).unwrap(),
        "1.29 defaults to legacy"
    );
    let v1_31: KubeletVersion = "v1.31.0".parse().unwrap();
    assert_eq!(
        hashed_json(
            r#"{"name":"\f","image":"i"}"#,
            &v1_31,
            &HashOptions::default()
        )
        .unwrap(),
        r#"{"image":"i","name":"\f"}"#,
        "1.31+ defaults to go1.22"
    );
}
