//! The one-pass reader agrees byte for byte with the general path wherever it does not give
//! up, and gives up wherever the general path fails.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests fail loudly on unexpected errors"
)]

#[path = "../../benches/containers/mod.rs"]
mod containers;

use crate::{GoEscapes, HashOptions, KubeletVersion, direct_bytes, hashed_bytes, json};

/// Inputs off the common shape: each must give the general path's answer, whichever path runs.
const UNUSUAL: &[&str] = &[
    r#"{"image":"a","name":"b"}"#,
    r#"{"name":"a","name":"b"}"#,
    r#"{"Name":"a","image":"b"}"#,
    r#"{"n\u0061me":"a"}"#,
    r#"{"name":null,"image":"b"}"#,
    r#"{"name":"a","command":null,"livenessProbe":null,"resources":null}"#,
    r#"{"name":"a","command":[],"args":["x",null],"ports":[]}"#,
    r#"{"name":"a","unknown":{"deep":[1,2,{"x":null}]},"image":"b"}"#,
    r#"{"name":"a","imageX":"b","IMAGE":"c"}"#,
    r#" { "name" : "a" , "ports" : [ { "containerPort" : 80 } ] } "#,
    r#"{"name":"a","ports":[{"containerPort":-0,"hostPort":0}]}"#,
    r#"{"name":"a","ports":[{"hostPort":0,"containerPort":-0},{"hostPort":-1}]}"#,
    r#"{"name":"a","ports":[{"containerPort":2147483648}]}"#,
    r#"{"name":"a","ports":[{"containerPort":1.5}]}"#,
    r#"{"name":"a","stdin":false,"tty":true,"workingDir":""}"#,
    r#"{"name":"a","workingDir":"","stdin":false,"tty":true}"#,
    r#"{"name":"a","resources":{"limits":{"cpu":"1.500","memory":"1024Mi","cpu":"2"}}}"#,
    r#"{"name":"a","resources":{"limits":{"cpu":null}}}"#,
    r#"{"name":"a","resources":{"limits":{"cpu":0.5,"memory":"x"}}}"#,
    r#"{"name":"a","resources":{"limits":{},"requests":{"b":"1","a":"2"}}}"#,
    r#"{"name":"a","resources":{"limits":{"cpu":"\u0031"}}}"#,
    r#"{"name":"a<&>","image":"x\u2028\b\f\ud800\"\\"}"#,
    r#"{"name":"a","securityContext":{"privileged":false,"capabilities":{}}}"#,
    r#"{"name":"a","securityContext":{"capabilities":{},"privileged":false}}"#,
    r#"{"name":"a","securityContext":{"capabilities":{},"privileged":false,"Privileged":true}}"#,
    r#"{"name":"a","readinessProbe":{"httpGet":{"port":"8080"},"tcpSocket":{}}}"#,
    r#"{"name":"a","readinessProbe":{"httpGet":{"port":null}}}"#,
    r#"{"name":"a","env":[{"name":"x","valueFrom":{"resourceFieldRef":{"resource":"c"}}}]}"#,
    r#"{"name":"a","lifecycle":{"preStop":{"sleep":{"seconds":5}}},"restartPolicy":"Always"}"#,
    r#"{"name":"a","restartPolicy":"Always","resizePolicy":[]}"#,
    r#"{"name":"a"} x"#,
    r#"{"name":"a""#,
    r#"{"name":"a",}"#,
    "null",
    "[]",
    "{}",
    r#"{"name":"a","image":5}"#,
    r#"{"name":"a","stdin":"true"}"#,
];

fn inputs() -> Vec<String> {
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../../testdata/vectors.json")).unwrap();
    let served = vectors["vectors"].as_array().unwrap().iter();
    let mut inputs: Vec<String> = served
        .map(|v| v["container_json"].as_str().unwrap().to_owned())
        .collect();
    inputs.extend([containers::APP, containers::TYPICAL, containers::SIDECAR].map(str::to_owned));
    inputs.extend(UNUSUAL.iter().map(|s| (*s).to_owned()));
    inputs.push(format!(
        r#"{{"name":"a","x":{}1{}}}"#,
        "[".repeat(300),
        "]".repeat(300)
    ));
    inputs
}

fn all_options() -> impl Iterator<Item = (KubeletVersion, HashOptions)> {
    (16..=31).flat_map(|minor| {
        let kubelet = KubeletVersion::new(1, minor, 0);
        [GoEscapes::Legacy, GoEscapes::Go122]
            .into_iter()
            .flat_map(|e| [false, true].map(move |w| (e, w)))
            .filter(move |&(_, w)| !w || (27..=30).contains(&minor))
            .map(move |(e, without_resources)| {
                let options = HashOptions {
                    go_escapes: Some(e),
                    without_resources,
                };
                (kubelet.clone(), options)
            })
    })
}

#[test]
fn the_one_pass_reader_matches_the_general_path_or_gives_up() {
    let mut direct_answers = 0;
    for input in inputs() {
        for (kubelet, options) in all_options() {
            let general = json::parse(input.as_bytes())
                .map_err(crate::HashError::from)
                .and_then(|node| hashed_bytes(&node, &kubelet, options));
            let Some(direct) = direct_bytes(input.as_bytes(), &kubelet, options) else {
                continue;
            };
            direct_answers += 1;
            let general = general.unwrap_or_else(|e| panic!("{input} on {kubelet}: {e}"));
            assert_eq!(
                String::from_utf8_lossy(&direct),
                String::from_utf8_lossy(&general),
                "{input} on {kubelet} {options:?}"
            );
        }
    }
    assert!(
        direct_answers > 500,
        "the one-pass reader answered only {direct_answers} times"
    );
}

#[test]
fn containers_as_the_api_server_serves_them_take_the_one_pass_reader() {
    let kubelet = KubeletVersion::new(1, 30, 2);
    for container in [containers::APP, containers::TYPICAL, containers::SIDECAR] {
        let options = HashOptions::default();
        assert!(direct_bytes(container.as_bytes(), &kubelet, options).is_some());
    }
}
