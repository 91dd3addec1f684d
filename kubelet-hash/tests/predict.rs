//! `predict` and `calibrate`: regular, init and sidecar containers, estimates without stored
//! hashes, calibrated verdicts with them, `Unknown` when the model does not reproduce what the
//! kubelet stored, the toolchain's escaping and in-place resize.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::collections::BTreeMap;

use kubelet_hash::{
    ContainerKind, GoEscapes, HashOptions, KubeletVersion, StoredHashes, Verdict, calibrate,
    container_names_and_json, hash, predict,
};

const POD: &str = r#"{
  "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
  "spec": {
    "initContainers": [
      {"name": "setup", "image": "busybox:1.36", "command": ["true"]},
      {"name": "proxy", "image": "envoy:1.30", "restartPolicy": "Always",
       "resources": {"limits": {"cpu": "0.5"}}}
    ],
    "containers": [
      {"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}],
       "resources": {}, "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
       "terminationMessagePath": "/dev/termination-log", "imagePullPolicy": "IfNotPresent"}
    ]
  }
}"#;

fn version(s: &str) -> KubeletVersion {
    s.parse().unwrap()
}

/// The hashes a kubelet of `version` stored when it created each container of `pod`.
fn stored_by(pod: &str, kubelet: &str, options: HashOptions) -> BTreeMap<String, StoredHashes> {
    container_names_and_json(pod)
        .unwrap()
        .into_iter()
        .map(|(_, name, json)| {
            let hash = hash(&json, &version(kubelet), &options).unwrap();
            (
                name,
                StoredHashes {
                    hash: Some(hash),
                    hash_without_resources: None,
                },
            )
        })
        .collect()
}

fn verdicts(prediction: &kubelet_hash::PodPrediction) -> Vec<(&str, ContainerKind, Verdict)> {
    prediction
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.kind, c.verdict))
        .collect()
}

#[test]
fn init_and_sidecar_containers_are_listed_first_with_their_kind() {
    let containers = container_names_and_json(POD).unwrap();
    let kinds: Vec<(ContainerKind, &str)> = containers
        .iter()
        .map(|(kind, name, _)| (*kind, name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (ContainerKind::Init, "setup"),
            (ContainerKind::Sidecar, "proxy"),
            (ContainerKind::Regular, "web")
        ]
    );
    assert!(
        containers[0].2.starts_with(r#"{"name": "setup""#),
        "raw text kept: {}",
        containers[0].2
    );
}

#[test]
fn without_stored_hashes_the_two_models_are_compared() {
    let within = predict(POD, &version("v1.29.2"), &version("v1.29.9"), None).unwrap();
    assert!(
        within
            .containers
            .iter()
            .all(|c| c.verdict == Verdict::Preserved && c.stored.is_none())
    );
    let across = predict(POD, &version("v1.30.6"), &version("v1.31.2"), None).unwrap();
    assert!(
        across
            .containers
            .iter()
            .all(|c| c.verdict == Verdict::WillRestart)
    );
    let first = &across.containers[0];
    assert_eq!(
        first.current,
        hash(
            &container_names_and_json(POD).unwrap()[0].2,
            &version("v1.30.6"),
            &HashOptions::default()
        )
        .unwrap()
    );
}

#[test]
fn the_resize_policy_field_restarts_containers_that_set_it_on_1_26_to_1_27() {
    let stored = stored_by(POD, "v1.26.15", HashOptions::default());
    let prediction = predict(
        POD,
        &version("v1.26.15"),
        &version("v1.27.1"),
        Some(&stored),
    )
    .unwrap();
    assert_eq!(
        verdicts(&prediction),
        [
            ("setup", ContainerKind::Init, Verdict::Preserved),
            ("proxy", ContainerKind::Sidecar, Verdict::Preserved),
            ("web", ContainerKind::Regular, Verdict::WillRestart),
        ]
    );
    let web = &prediction.containers[2];
    assert_eq!(web.stored.as_deref(), Some(web.current.as_str()));
    assert_ne!(web.current, web.target);
}

#[test]
fn a_stored_hash_the_model_does_not_reproduce_is_unknown() {
    let mut stored = stored_by(POD, "v1.28.3", HashOptions::default());
    stored.get_mut("proxy").unwrap().hash = Some("deadbeef".into());
    stored.remove("setup");
    let prediction = predict(POD, &version("v1.28.3"), &version("v1.28.4"), Some(&stored)).unwrap();
    assert_eq!(
        verdicts(&prediction),
        [
            ("setup", ContainerKind::Init, Verdict::Unknown),
            ("proxy", ContainerKind::Sidecar, Verdict::Unknown),
            ("web", ContainerKind::Regular, Verdict::Preserved),
        ]
    );
    assert_eq!(prediction.containers[1].stored.as_deref(), Some("deadbeef"));
    assert!(prediction.containers[1].calibration.is_none());
}

#[test]
fn stored_hashes_compare_as_numbers_like_the_kubelet_reads_them() {
    let container = concat!(
        r#"{"name":"test_container","image":"foo/image:v1","command":["/bin/testcmd"],"#,
        r#""args":["/bin/sh","-c","echo abc"],"ports":[{"containerPort":8001}],"#,
        r#""env":[{"name":"ENV_FOO","value":"bar"},{"name":"ENV_BAR","#,
        r#""valueFrom":{"secretKeyRef":{"name":"foo","key":"bar","optional":true}}}],"#,
        r#""resources":{"limits":{"foo":"1G"},"requests":{"foo":"500M"}}}"#,
    );
    let padded = StoredHashes {
        hash: Some("0311670A".into()),
        hash_without_resources: None,
    };
    assert!(calibrate(container, &version("v1.20.0"), &padded).is_some());
    let prefixed = StoredHashes {
        hash: Some("0x311670a".into()),
        hash_without_resources: None,
    };
    assert!(calibrate(container, &version("v1.20.0"), &prefixed).is_none());
    assert!(calibrate(container, &version("v1.20.0"), &StoredHashes::default()).is_none());
}

#[test]
fn calibration_finds_the_toolchain_from_a_backspace_and_carries_it_to_the_target() {
    let pod = concat!(
        r#"{"spec":{"containers":[{"name":"bell","image":"i","args":["ring\b"]},"#,
        r#"{"name":"plain","image":"i"}]}}"#,
    );
    let bell = &container_names_and_json(pod).unwrap()[0].2;
    let go122 = HashOptions {
        go_escapes: Some(GoEscapes::Go122),
        ..HashOptions::default()
    };
    for (escapes, options) in [
        (GoEscapes::Go122, go122),
        (GoEscapes::Legacy, HashOptions::default()),
    ] {
        let stored = stored_by(pod, "v1.29.4", options);
        let calibration = calibrate(bell, &version("v1.29.4"), &stored["bell"]).unwrap();
        assert_eq!(calibration.go_escapes, escapes);
        assert!(!calibration.escapes_ambiguous);
        let same = predict(pod, &version("v1.29.4"), &version("v1.29.4"), Some(&stored)).unwrap();
        assert!(
            same.containers
                .iter()
                .all(|c| c.verdict == Verdict::Preserved),
            "{escapes}"
        );
        let upgrade =
            predict(pod, &version("v1.29.4"), &version("v1.30.1"), Some(&stored)).unwrap();
        let expected = if escapes == GoEscapes::Go122 {
            Verdict::Preserved
        } else {
            Verdict::WillRestart
        };
        assert_eq!(upgrade.containers[0].verdict, expected, "{escapes}");
        assert_eq!(upgrade.containers[1].verdict, Verdict::Preserved);
        assert!(
            calibrate(
                &container_names_and_json(pod).unwrap()[1].2,
                &version("v1.29.4"),
                &stored["plain"]
            )
            .unwrap()
            .escapes_ambiguous
        );
    }
    let stored = stored_by(pod, "v1.29.4", HashOptions::default());
    let later_patch =
        predict(pod, &version("v1.29.4"), &version("v1.29.9"), Some(&stored)).unwrap();
    assert_eq!(
        later_patch.containers[0].verdict,
        Verdict::Unknown,
        "the later build's toolchain is open"
    );
}

#[test]
fn a_container_resized_in_place_is_preserved_while_only_its_resources_differ() {
    let original = concat!(
        r#"{"spec":{"containers":[{"name":"app","image":"i","#,
        r#""resources":{"limits":{"cpu":"1"}}}]}}"#,
    );
    let resized = concat!(
        r#"{"spec":{"containers":[{"name":"app","image":"i","#,
        r#""resources":{"limits":{"cpu":"2"}}}]}}"#,
    );
    let json = &container_names_and_json(original).unwrap()[0].2;
    let kubelet = version("v1.28.2");
    let without = HashOptions {
        without_resources: true,
        ..HashOptions::default()
    };
    let stored = BTreeMap::from([(
        "app".to_owned(),
        StoredHashes {
            hash: Some(hash(json, &kubelet, &HashOptions::default()).unwrap()),
            hash_without_resources: Some(hash(json, &kubelet, &without).unwrap()),
        },
    )]);
    let prediction = predict(resized, &kubelet, &version("v1.29.1"), Some(&stored)).unwrap();
    let app = &prediction.containers[0];
    assert_eq!(app.verdict, Verdict::Preserved);
    assert!(app.calibration.unwrap().resized_in_place);
    let to_1_31 = predict(resized, &kubelet, &version("v1.31.0"), Some(&stored)).unwrap();
    assert_eq!(to_1_31.containers[0].verdict, Verdict::WillRestart);
}

#[test]
fn malformed_pods_are_refused() {
    for bad in [
        r"[]",
        r#"{"spec":{"containers":{}}}"#,
        r#"{"spec":{"containers":[{"image":"i"}]}}"#,
        r#"{"spec":{"containers":[1]}}"#,
        "{",
    ] {
        assert!(
            predict(bad, &version("v1.30.0"), &version("v1.31.0"), None).is_err(),
            "{bad}"
        );
    }
    assert!(predict(POD, &version("v1.15.0"), &version("v1.31.0"), None).is_err());
}
