//! Every vector of `testdata/vectors.json` (a byte-identical copy of the shared file) matches for
//! every kubelet minor: the hash, `hashWithoutResources` and the exact JSON a 1.30 kubelet hashes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on bad data"
)]

use kubelet_hash::{HashError, HashOptions, KubeletVersion, hash, hashed_json};
use serde_json::Value;

const VECTORS: &str = include_str!("../testdata/vectors.json");

fn vectors() -> Vec<Value> {
    let document: Value = serde_json::from_str(VECTORS).unwrap();
    document["vectors"].as_array().unwrap().clone()
}

fn version(minor_key: &str) -> KubeletVersion {
    format!("v{minor_key}.3").parse().unwrap()
}

#[test]
fn every_vector_hashes_as_expected_on_every_minor() {
    let mut checked = 0;
    for (index, vector) in vectors().iter().enumerate() {
        let container = vector["container_json"].as_str().unwrap();
        for (minor, expected) in vector["hash"].as_object().unwrap() {
            let kubelets: Vec<KubeletVersion> = if minor == "1.31+" {
                ["v1.31.0", "v1.32.4", "v1.33.1", "v1.36.0-alpha.0"]
                    .iter()
                    .map(|v| v.parse().unwrap())
                    .collect()
            } else {
                vec![version(minor)]
            };
            for kubelet in kubelets {
                let got = hash(container, &kubelet, &HashOptions::default()).unwrap();
                assert_eq!(
                    got,
                    expected.as_str().unwrap(),
                    "vector {index} on {kubelet}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 14 * 19, "only {checked} hashes checked");
}

#[test]
fn every_vector_hashes_without_resources_as_expected_on_1_27_to_1_30() {
    let options = HashOptions {
        without_resources: true,
        ..HashOptions::default()
    };
    for (index, vector) in vectors().iter().enumerate() {
        let container = vector["container_json"].as_str().unwrap();
        let expected = vector["hashWithoutResources"].as_object().unwrap();
        assert_eq!(expected.len(), 4, "vector {index}");
        for (minor, expected) in expected {
            let got = hash(container, &version(minor), &options).unwrap();
            assert_eq!(got, expected.as_str().unwrap(), "vector {index} on {minor}");
        }
    }
}

#[test]
fn every_vector_projects_to_the_exact_json_a_1_30_kubelet_hashes() {
    for (index, vector) in vectors().iter().enumerate() {
        let container = vector["container_json"].as_str().unwrap();
        let got = hashed_json(container, &version("1.30"), &HashOptions::default()).unwrap();
        assert_eq!(
            got,
            vector["json_v1.30"].as_str().unwrap(),
            "vector {index}"
        );
    }
}

#[test]
fn without_resources_is_refused_outside_1_27_to_1_30() {
    let options = HashOptions {
        without_resources: true,
        ..HashOptions::default()
    };
    for kubelet in ["v1.26.9", "v1.31.0"] {
        let error = hash(r#"{"name":"a"}"#, &kubelet.parse().unwrap(), &options).unwrap_err();
        assert!(
            matches!(error, HashError::WithoutResourcesUnsupported(_)),
            "{kubelet}"
        );
    }
}

#[test]
fn kubelets_before_1_16_are_refused_with_a_typed_error() {
    for kubelet in ["v1.15.12", "v1.5.0", "v0.9.0", "v2.0.0"] {
        let kubelet: KubeletVersion = kubelet.parse().unwrap();
        let error = hash(r#"{"name":"a"}"#, &kubelet, &HashOptions::default()).unwrap_err();
        assert_eq!(error, HashError::UnsupportedVersion(kubelet.clone()));
        assert!(error.to_string().contains("before v1.16"), "{error}");
    }
}
