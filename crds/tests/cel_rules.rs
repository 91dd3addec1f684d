//! Evaluates every CEL rule of the committed `manifests/crds.yaml` with kube-cel, on valid and
//! invalid objects, and checks that `validate()` reports exactly the same fields and messages.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails loudly on anything unexpected"
)]

use std::collections::BTreeSet;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_cel::{ErrorKind, Validator};
use kubelift_crds::{KubeletUpgrade, NodeUpgrade};
use serde_json::{Value, json};

const SHA_A: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const SHA_B: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

/// Which CRD an object belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Plan,
    Node,
}

/// One change to a base object.
enum Edit {
    Set(&'static str, Value),
    Remove(&'static str),
}

/// A base object with edits, and the field paths both validators must report (none: valid).
struct Case {
    name: &'static str,
    kind: Kind,
    edits: Vec<Edit>,
    expect: &'static [&'static str],
}

fn set(pointer: &'static str, value: Value) -> Edit {
    Edit::Set(pointer, value)
}

fn case(name: &'static str, kind: Kind, edits: Vec<Edit>, expect: &'static [&'static str]) -> Case {
    Case {
        name,
        kind,
        edits,
        expect,
    }
}

/// A plan that sets every field that carries a rule.
fn base_plan() -> Value {
    json!({
        "apiVersion": "kubelift.dev/v1alpha1",
        "kind": "KubeletUpgrade",
        "metadata": { "name": "full" },
        "spec": {
            "version": "v1.32.3",
            "binary": {
                "url": "https://dl.k8s.io/release/v1.32.3/bin/linux/amd64/kubelet",
                "sha256": SHA_A,
                "architectures": {
                    "arm64": { "path": "/opt/kubelet/v1.32.3/kubelet", "sha256": SHA_B }
                }
            },
            "nodeSelector": { "matchLabels": { "pool": "general" } },
            "rollout": {
                "maxUnavailable": "25%",
                "canary": 2,
                "pauseAfterCanary": true,
                "order": "ZoneRoundRobin",
                "soakSeconds": 30
            },
            "containers": { "policy": "Preserve" },
            "drain": { "timeoutSeconds": 600, "onTimeout": "Skip" },
            "verify": {
                "prepareTimeoutSeconds": 300,
                "readyTimeoutSeconds": 300,
                "settleSeconds": 10,
                "maxUnexpectedRestarts": 0
            },
            "failurePolicy": { "maxFailedNodes": 1, "rollback": true },
            "window": {
                "days": ["sat", "sun"],
                "start": "22:00",
                "end": "04:00",
                "timeZone": "Europe/Berlin"
            },
            "ttlSecondsAfterFinished": 3600
        }
    })
}

/// A `NodeUpgrade` that sets every field that carries a rule.
fn base_node() -> Value {
    json!({
        "apiVersion": "kubelift.dev/v1alpha1",
        "kind": "NodeUpgrade",
        "metadata": { "name": "full-node-a" },
        "spec": {
            "nodeName": "node-a",
            "plan": "full",
            "version": "v1.32.3",
            "binary": { "url": "http://127.0.0.1:8080/kubelet", "sha256": SHA_A },
            "stage": "Prepare",
            "attempt": 0,
            "verify": {
                "prepareTimeoutSeconds": 300,
                "readyTimeoutSeconds": 300,
                "settleSeconds": 0,
                "maxUnexpectedRestarts": 1
            }
        }
    })
}

#[allow(
    clippy::too_many_lines,
    reason = "a table of cases reads best as one list"
)]
fn cases() -> Vec<Case> {
    use Kind::{Node, Plan};
    vec![
        case("full plan", Plan, vec![], &[]),
        case(
            "binary from a node path, arm64 from a loopback server",
            Plan,
            vec![
                Edit::Remove("/spec/binary/url"),
                set("/spec/binary/path", json!("/usr/local/bin/kubelet-v1.32.3")),
                set(
                    "/spec/binary/architectures/arm64",
                    json!({ "url": "http://localhost:8080/kubelet-arm64", "sha256": SHA_B }),
                ),
            ],
            &[],
        ),
        case(
            "pre-release version",
            Plan,
            vec![set("/spec/version", json!("v1.33.0-rc.1"))],
            &[],
        ),
        case(
            "k3s version",
            Plan,
            vec![set("/spec/version", json!("v1.31.4+k3s1"))],
            &[],
        ),
        case(
            "IPv6 loopback",
            Plan,
            vec![set("/spec/binary/url", json!("http://[::1]:9000/k"))],
            &[],
        ),
        case(
            "https with port and query",
            Plan,
            vec![set(
                "/spec/binary/url",
                json!("https://mirror.example:8443/kubelet?arch=amd64"),
            )],
            &[],
        ),
        case(
            "127/8 beyond .1",
            Plan,
            vec![set(
                "/spec/binary/url",
                json!("http://127.10.0.255/kubelet"),
            )],
            &[],
        ),
        case(
            "integer maxUnavailable",
            Plan,
            vec![set("/spec/rollout/maxUnavailable", json!(3))],
            &[],
        ),
        case(
            "100 percent",
            Plan,
            vec![set("/spec/rollout/maxUnavailable", json!("100%"))],
            &[],
        ),
        case(
            "1 percent",
            Plan,
            vec![set("/spec/rollout/maxUnavailable", json!("1%"))],
            &[],
        ),
        case(
            "zero counts",
            Plan,
            vec![
                set("/spec/rollout/canary", json!(0)),
                set("/spec/rollout/soakSeconds", json!(0)),
                set("/spec/verify/settleSeconds", json!(0)),
                set("/spec/failurePolicy/maxFailedNodes", json!(0)),
                set("/spec/ttlSecondsAfterFinished", json!(0)),
            ],
            &[],
        ),
        case(
            "whole-day window in a three-part zone",
            Plan,
            vec![
                set("/spec/window/start", json!("00:00")),
                set("/spec/window/end", json!("23:59")),
                set(
                    "/spec/window/timeZone",
                    json!("America/Argentina/Buenos_Aires"),
                ),
            ],
            &[],
        ),
        case(
            "version without v",
            Plan,
            vec![set("/spec/version", json!("1.32.3"))],
            &["spec.version"],
        ),
        case(
            "version without patch",
            Plan,
            vec![set("/spec/version", json!("v1.32"))],
            &["spec.version"],
        ),
        case(
            "empty pre-release",
            Plan,
            vec![set("/spec/version", json!("v1.32.3-"))],
            &["spec.version"],
        ),
        case(
            "leading zero",
            Plan,
            vec![set("/spec/version", json!("v1.032.3"))],
            &["spec.version"],
        ),
        case(
            "uppercase digest",
            Plan,
            vec![set("/spec/binary/sha256", json!(SHA_A.to_uppercase()))],
            &["spec.binary.sha256"],
        ),
        case(
            "short digest",
            Plan,
            vec![set("/spec/binary/sha256", json!(&SHA_A[1..]))],
            &["spec.binary.sha256"],
        ),
        case(
            "url and path",
            Plan,
            vec![set("/spec/binary/path", json!("/usr/bin/kubelet"))],
            &["spec.binary"],
        ),
        case(
            "neither url nor path",
            Plan,
            vec![Edit::Remove("/spec/binary/url")],
            &["spec.binary"],
        ),
        case(
            "plain http to another host",
            Plan,
            vec![set("/spec/binary/url", json!("http://example.com/kubelet"))],
            &["spec.binary.url"],
        ),
        case(
            "plain http to a private address",
            Plan,
            vec![set("/spec/binary/url", json!("http://10.0.0.1/kubelet"))],
            &["spec.binary.url"],
        ),
        case(
            "loopback with a leading zero",
            Plan,
            vec![set("/spec/binary/url", json!("http://127.0.0.01/kubelet"))],
            &["spec.binary.url"],
        ),
        case(
            "localhost lookalike",
            Plan,
            vec![set(
                "/spec/binary/url",
                json!("http://localhost.example.com/kubelet"),
            )],
            &["spec.binary.url"],
        ),
        case(
            "ftp",
            Plan,
            vec![set("/spec/binary/url", json!("ftp://mirror/kubelet"))],
            &["spec.binary.url"],
        ),
        case(
            "https without host",
            Plan,
            vec![set("/spec/binary/url", json!("https:///kubelet"))],
            &["spec.binary.url"],
        ),
        case(
            "space in url",
            Plan,
            vec![set("/spec/binary/url", json!("https://mirror/kube let"))],
            &["spec.binary.url"],
        ),
        case(
            "relative path",
            Plan,
            vec![
                Edit::Remove("/spec/binary/url"),
                set("/spec/binary/path", json!("bin/kubelet")),
            ],
            &["spec.binary.path"],
        ),
        case(
            "path climbing out",
            Plan,
            vec![
                Edit::Remove("/spec/binary/url"),
                set("/spec/binary/path", json!("/usr/bin/../../etc/kubelet")),
            ],
            &["spec.binary.path"],
        ),
        case(
            "bad architecture entry",
            Plan,
            vec![set(
                "/spec/binary/architectures/arm64",
                json!({ "url": "http://mirror/kubelet", "path": "kubelet", "sha256": "nothex" }),
            )],
            &[
                "spec.binary.architectures.arm64",
                "spec.binary.architectures.arm64.url",
                "spec.binary.architectures.arm64.path",
                "spec.binary.architectures.arm64.sha256",
            ],
        ),
        case(
            "zero nodes",
            Plan,
            vec![set("/spec/rollout/maxUnavailable", json!(0))],
            &["spec.rollout.maxUnavailable"],
        ),
        case(
            "zero percent",
            Plan,
            vec![set("/spec/rollout/maxUnavailable", json!("0%"))],
            &["spec.rollout.maxUnavailable"],
        ),
        case(
            "101 percent",
            Plan,
            vec![set("/spec/rollout/maxUnavailable", json!("101%"))],
            &["spec.rollout.maxUnavailable"],
        ),
        case(
            "number as text",
            Plan,
            vec![set("/spec/rollout/maxUnavailable", json!("5"))],
            &["spec.rollout.maxUnavailable"],
        ),
        case(
            "negative counts and zero timeouts",
            Plan,
            vec![
                set("/spec/rollout/canary", json!(-1)),
                set("/spec/rollout/soakSeconds", json!(-1)),
                set("/spec/drain/timeoutSeconds", json!(0)),
                set("/spec/verify/prepareTimeoutSeconds", json!(0)),
                set("/spec/verify/readyTimeoutSeconds", json!(-5)),
                set("/spec/verify/settleSeconds", json!(-1)),
                set("/spec/verify/maxUnexpectedRestarts", json!(-1)),
                set("/spec/failurePolicy/maxFailedNodes", json!(-1)),
                set("/spec/ttlSecondsAfterFinished", json!(-1)),
            ],
            &[
                "spec.rollout.canary",
                "spec.rollout.soakSeconds",
                "spec.drain.timeoutSeconds",
                "spec.verify.prepareTimeoutSeconds",
                "spec.verify.readyTimeoutSeconds",
                "spec.verify.settleSeconds",
                "spec.verify.maxUnexpectedRestarts",
                "spec.failurePolicy.maxFailedNodes",
                "spec.ttlSecondsAfterFinished",
            ],
        ),
        case(
            "bad clock times",
            Plan,
            vec![
                set("/spec/window/start", json!("24:00")),
                set("/spec/window/end", json!("9:30")),
            ],
            &["spec.window.start", "spec.window.end"],
        ),
        case(
            "empty window",
            Plan,
            vec![
                set("/spec/window/start", json!("04:00")),
                set("/spec/window/end", json!("04:00")),
            ],
            &["spec.window"],
        ),
        case(
            "zone with a space",
            Plan,
            vec![set("/spec/window/timeZone", json!("Europe Berlin"))],
            &["spec.window.timeZone"],
        ),
        case(
            "everything wrong at once",
            Plan,
            vec![
                set("/spec/version", json!("latest")),
                set("/spec/binary/path", json!("/usr/bin/kubelet")),
                set("/spec/binary/sha256", json!("")),
                set("/spec/rollout/maxUnavailable", json!("50 %")),
            ],
            &[
                "spec.version",
                "spec.binary",
                "spec.binary.sha256",
                "spec.rollout.maxUnavailable",
            ],
        ),
        case("full node upgrade", Node, vec![], &[]),
        case(
            "node binary from a path",
            Node,
            vec![
                Edit::Remove("/spec/binary/url"),
                set("/spec/binary/path", json!("/usr/bin/kubelet")),
            ],
            &[],
        ),
        case(
            "node upgrade with every field wrong",
            Node,
            vec![
                set("/spec/nodeName", json!("")),
                set("/spec/plan", json!("")),
                set("/spec/version", json!("v1.32.3.1")),
                set("/spec/binary/path", json!("relative")),
                set("/spec/binary/url", json!("http://node-b/kubelet")),
                set("/spec/binary/sha256", json!(SHA_A.replace('a', "g"))),
                set("/spec/attempt", json!(-1)),
                set("/spec/verify/prepareTimeoutSeconds", json!(0)),
                set("/spec/verify/readyTimeoutSeconds", json!(0)),
                set("/spec/verify/settleSeconds", json!(-1)),
                set("/spec/verify/maxUnexpectedRestarts", json!(-2)),
            ],
            &[
                "spec.nodeName",
                "spec.plan",
                "spec.version",
                "spec.binary",
                "spec.binary.url",
                "spec.binary.path",
                "spec.binary.sha256",
                "spec.attempt",
                "spec.verify.prepareTimeoutSeconds",
                "spec.verify.readyTimeoutSeconds",
                "spec.verify.settleSeconds",
                "spec.verify.maxUnexpectedRestarts",
            ],
        ),
    ]
}

/// A rule as the CRD places it: the instance path it applies to (`*` for a map entry, `[*]` for a
/// list item) and its CEL text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Placed {
    kind: KindName,
    path: String,
    rule: String,
}

type KindName = &'static str;

fn kind_name(kind: Kind) -> KindName {
    match kind {
        Kind::Plan => "KubeletUpgrade",
        Kind::Node => "NodeUpgrade",
    }
}

fn committed_crds() -> Vec<CustomResourceDefinition> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests/crds.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_multiple(&text).unwrap()
}

fn schema_of(crds: &[CustomResourceDefinition], kind: Kind) -> Value {
    let crd = crds
        .iter()
        .find(|crd| crd.spec.names.kind == kind_name(kind))
        .unwrap();
    let schema = crd.spec.versions[0].schema.as_ref().unwrap();
    serde_json::to_value(schema.open_api_v3_schema.as_ref().unwrap()).unwrap()
}

/// Every rule in a schema, with the instance path it applies to.
fn placed_rules(kind: Kind, schema: &Value, path: &str, out: &mut Vec<Placed>) {
    for rule in schema["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        out.push(Placed {
            kind: kind_name(kind),
            path: path.to_owned(),
            rule: rule["rule"].as_str().unwrap().to_owned(),
        });
    }
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        placed_rules(kind, property, &join(path, name), out);
    }
    if schema["additionalProperties"].is_object() {
        placed_rules(kind, &schema["additionalProperties"], &join(path, "*"), out);
    }
    if schema["items"].is_object() {
        placed_rules(kind, &schema["items"], &format!("{path}[*]"), out);
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// Whether an instance path such as `spec.binary.architectures.arm64` fits a placed rule's path.
fn fits(pattern: &str, path: &str) -> bool {
    let pattern: Vec<_> = pattern.split('.').collect();
    let path: Vec<_> = path.split('.').collect();
    pattern.len() == path.len() && pattern.iter().zip(&path).all(|(p, s)| *p == "*" || p == s)
}

/// Whether `object` holds a value at every segment of `pattern` (`*` matches any map entry).
fn has_instance(object: &Value, pattern: &[&str]) -> bool {
    match pattern.split_first() {
        None => !object.is_null(),
        Some((&"*", rest)) => object
            .as_object()
            .is_some_and(|map| map.values().any(|value| has_instance(value, rest))),
        Some((name, rest)) => object
            .get(*name)
            .is_some_and(|value| has_instance(value, rest)),
    }
}

fn build(case: &Case) -> Value {
    let mut object = match case.kind {
        Kind::Plan => base_plan(),
        Kind::Node => base_node(),
    };
    for edit in &case.edits {
        match edit {
            Edit::Set(pointer, value) => {
                let (parent, key) = pointer.rsplit_once('/').unwrap();
                let parent = object.pointer_mut(parent).unwrap().as_object_mut().unwrap();
                parent.insert(key.to_owned(), value.clone());
            }
            Edit::Remove(pointer) => {
                let (parent, key) = pointer.rsplit_once('/').unwrap();
                object
                    .pointer_mut(parent)
                    .unwrap()
                    .as_object_mut()
                    .unwrap()
                    .remove(key);
            }
        }
    }
    object
}

/// The (path, message) pairs `validate()` reports, with map keys written as CEL paths write them.
fn rust_errors(kind: Kind, object: &Value) -> BTreeSet<(String, String)> {
    let result = match kind {
        Kind::Plan => serde_json::from_value::<KubeletUpgrade>(object.clone())
            .unwrap()
            .spec
            .validate(),
        Kind::Node => serde_json::from_value::<NodeUpgrade>(object.clone())
            .unwrap()
            .spec
            .validate(),
    };
    let errors = result
        .err()
        .map(|invalid| invalid.errors)
        .unwrap_or_default();
    errors
        .into_iter()
        .map(|error| (error.path.replace('[', ".").replace(']', ""), error.message))
        .collect()
}

#[test]
fn every_rule_is_evaluated_on_valid_and_invalid_objects_and_validate_agrees() {
    let crds = committed_crds();
    let mut rules = Vec::new();
    for kind in [Kind::Plan, Kind::Node] {
        placed_rules(kind, &schema_of(&crds, kind), "", &mut rules);
    }
    let validator = Validator::new();
    let mut passed = BTreeSet::new();
    let mut failed = BTreeSet::new();

    for case in cases() {
        let object = build(&case);
        let cel = match validator.validate(&schema_of(&crds, case.kind), &object, None) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.into_vec(),
        };
        for error in &cel {
            assert_eq!(
                error.kind,
                ErrorKind::ValidationFailure,
                "{}: {error:?}",
                case.name
            );
        }

        let cel_pairs: BTreeSet<_> = cel
            .iter()
            .map(|e| (e.field_path.clone(), e.message.clone()))
            .collect();
        let cel_paths: BTreeSet<_> = cel.iter().map(|e| e.field_path.as_str()).collect();
        let expected: BTreeSet<_> = case.expect.iter().copied().collect();
        assert_eq!(cel_paths, expected, "CEL on case {:?}", case.name);
        assert_eq!(
            rust_errors(case.kind, &object),
            cel_pairs,
            "validate() on case {:?}",
            case.name
        );

        for placed in rules
            .iter()
            .filter(|placed| placed.kind == kind_name(case.kind))
        {
            let fired = cel
                .iter()
                .find(|e| e.rule == placed.rule && fits(&placed.path, &e.field_path));
            if fired.is_some() {
                failed.insert(placed.clone());
            } else if cel.is_empty() {
                let segments: Vec<_> = placed.path.split('.').filter(|s| !s.is_empty()).collect();
                if has_instance(&object, &segments) {
                    passed.insert(placed.clone());
                }
            }
        }
    }

    let all: BTreeSet<_> = rules.into_iter().collect();
    assert!(
        all.len() >= 20,
        "expected the CRDs to carry rules, found {all:?}"
    );
    let never_passed: Vec<_> = all.difference(&passed).collect();
    let never_failed: Vec<_> = all.difference(&failed).collect();
    assert!(
        never_passed.is_empty(),
        "rules never evaluated on a valid object: {never_passed:?}"
    );
    assert!(
        never_failed.is_empty(),
        "rules never failed on an invalid object: {never_failed:?}"
    );
}

#[test]
fn validate_also_refuses_a_well_formed_time_zone_that_does_not_exist() {
    let object = build(&case(
        "unknown zone",
        Kind::Plan,
        vec![set("/spec/window/timeZone", json!("Mars/Olympus_Mons"))],
        &[],
    ));
    let crds = committed_crds();
    let cel = Validator::new().validate(&schema_of(&crds, Kind::Plan), &object, None);
    assert!(cel.is_ok(), "CEL can only check the shape of a zone name");

    let errors = rust_errors(Kind::Plan, &object);
    let paths: Vec<_> = errors.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(paths, ["spec.window.timeZone"]);
}

#[test]
fn validate_reports_every_problem_in_one_message() {
    let object = build(
        &cases()
            .into_iter()
            .find(|c| c.name == "everything wrong at once")
            .unwrap(),
    );
    let plan: KubeletUpgrade = serde_json::from_value(object).unwrap();
    let message = plan.spec.validate().unwrap_err().to_string();
    for field in [
        "spec.version:",
        "spec.binary:",
        "spec.binary.sha256:",
        "spec.rollout.maxUnavailable:",
    ] {
        assert!(message.contains(field), "{field} missing from {message:?}");
    }
}
