//! The `hash` and `predict` commands, run as the built binary: every vector through `hash`,
//! pods in JSON and YAML, the prediction table, and malformed input (exit 2, one line).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on bad data"
)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

const BINARY: &str = env!("CARGO_BIN_EXE_kubelift-node-helper");
const VECTORS: &str = include_str!("../../kubelet-hash/testdata/vectors.json");

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BINARY)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout_of(args: &[&str], stdin: &str) -> String {
    let output = run(args, stdin.as_bytes());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?} failed: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn hash_prints_the_expected_hash_of_every_vector() {
    let document: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
    for (index, vector) in document["vectors"].as_array().unwrap().iter().enumerate() {
        let container = vector["container_json"].as_str().unwrap();
        let name = &kubelet_hash::container_names_and_json(container).unwrap()[0].1;
        for (minor, kubelet) in [
            ("1.16", "v1.16.0"),
            ("1.26", "v1.26.3"),
            ("1.30", "v1.30.2"),
            ("1.31+", "v1.31.2"),
        ] {
            let expected = vector["hash"][minor].as_str().unwrap();
            let printed = stdout_of(&["hash", "--kubelet-version", kubelet], container);
            assert_eq!(
                printed,
                format!("{name} {expected}\n"),
                "vector {index} on {kubelet}"
            );
        }
        let without = vector["hashWithoutResources"]["1.28"].as_str().unwrap();
        let printed = stdout_of(
            &[
                "hash",
                "--kubelet-version",
                "v1.28.1",
                "--without-resources",
            ],
            container,
        );
        assert_eq!(
            printed,
            format!("{name} {without}\n"),
            "vector {index} without resources"
        );
    }
}

#[test]
fn hash_reads_pods_as_json_or_yaml_one_line_per_container() {
    let json = concat!(
        r#"{"kind":"Pod","spec":{"initContainers":[{"name":"init","image":"bar"}],"#,
        r#""containers":[{"name":"foo","image":"bar"}]}}"#,
    );
    let yaml = concat!(
        "kind: Pod\nspec:\n  initContainers:\n  - name: init\n    image: bar\n",
        "  containers:\n  - name: foo\n    image: bar\n",
    );
    let from_json = stdout_of(&["hash", "--kubelet-version", "v1.31.0"], json);
    assert_eq!(
        from_json,
        stdout_of(&["hash", "--kubelet-version", "v1.31.0"], yaml)
    );
    let lines: Vec<&str> = from_json.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1], "foo 11a6d6d6");
    assert!(lines[0].starts_with("init "));
}

#[test]
fn hash_honours_the_go_escapes_setting() {
    let container = r#"{"name":"a","image":"b","args":["\b"]}"#;
    let legacy = stdout_of(
        &[
            "hash",
            "--kubelet-version",
            "v1.29.0",
            "--go-escapes",
            "legacy",
        ],
        container,
    );
    let go122 = stdout_of(
        &[
            "hash",
            "--kubelet-version",
            "v1.29.0",
            "--go-escapes",
            "go1.22",
        ],
        container,
    );
    assert_ne!(legacy, go122);
    assert_eq!(
        legacy,
        stdout_of(&["hash", "--kubelet-version", "v1.29.0"], container)
    );
}

#[test]
fn predict_prints_a_table_with_a_verdict_per_container() {
    let pod = concat!(
        r#"{"spec":{"containers":[{"name":"web","image":"nginx:1.25","#,
        r#""resizePolicy":[{"resourceName":"cpu","restartPolicy":"NotRequired"}]},"#,
        r#"{"name":"foo","image":"bar"}]}}"#,
    );
    let table = stdout_of(&["predict", "--from", "v1.26.4", "--to", "v1.27.2"], pod);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "CONTAINER",
            "KIND",
            "STORED",
            "CURRENT",
            "TARGET",
            "VERDICT"
        ]
    );
    assert_eq!(rows[1][0], "web");
    assert_eq!(rows[1][5], "WillRestart");
    assert_eq!(
        rows[2],
        ["foo", "regular", "-", "6b89c7eb", "6b89c7eb", "Preserved"]
    );
    let calibrated = stdout_of(
        &[
            "predict",
            "--from",
            "v1.30.6",
            "--to",
            "v1.31.2",
            "--stored",
            "foo=6b89c7eb",
            "--stored",
            "web=1",
        ],
        pod,
    );
    let rows: Vec<Vec<&str>> = calibrated
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[1][0..3], ["web", "regular", "1"]);
    assert_eq!(rows[1][5], "Unknown");
    assert_eq!(
        rows[2],
        [
            "foo",
            "regular",
            "6b89c7eb",
            "6b89c7eb",
            "11a6d6d6",
            "WillRestart"
        ]
    );
}

#[test]
fn malformed_input_exits_2_with_a_one_line_message() {
    let cases: &[(&[&str], &[u8])] = &[
        (&["hash", "--kubelet-version", "v1.30.2"], b"{\"name\":"),
        (
            &["hash", "--kubelet-version", "v1.30.2"],
            b"spec: [\n  containers",
        ),
        (
            &["hash", "--kubelet-version", "v1.30.2"],
            b"{\"image\":\"no-name\"}",
        ),
        (
            &["hash", "--kubelet-version", "v1.30.2"],
            b"{\"name\":\"a\",\"stdin\":\"yes\"}",
        ),
        (
            &["hash", "--kubelet-version", "v1.15.7"],
            b"{\"name\":\"a\"}",
        ),
        (
            &["hash", "--kubelet-version", "one.thirty"],
            b"{\"name\":\"a\"}",
        ),
        (
            &[
                "hash",
                "--kubelet-version",
                "v1.29.0",
                "--go-escapes",
                "go1.21",
            ],
            b"{\"name\":\"a\"}",
        ),
        (
            &["hash", "--kubelet-version", "v1.30.2"],
            b"{\"name\":\"\xff\"}",
        ),
        (&["hash", "--kubelet-version", "v1.30.2"], b""),
        (
            &["predict", "--from", "v1.30.6", "--to", "v1.31.2"],
            b"[1, 2]",
        ),
        (
            &["predict", "--from", "v1.30.6", "--to", "v1.31.2"],
            b"{\"kind\":\"Deployment\",\"spec\":{\"template\":{}}}",
        ),
        (
            &["hash", "--kubelet-version", "v1.30.2"],
            b"kind: DaemonSet\nspec: {}\n",
        ),
        (
            &["predict", "--from", "v1.30.6", "--to", "v1.31.2"],
            b"{\"kind\":\"Pod\",\"spec\":{\"containers\":[]}}",
        ),
        (
            &["predict", "--from", "v1.14.0", "--to", "v1.31.2"],
            b"{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}",
        ),
        (
            &[
                "predict", "--from", "v1.30.6", "--to", "v1.31.2", "--stored", "nohash",
            ],
            b"{\"name\":\"a\"}",
        ),
    ];
    for (args, stdin) in cases {
        let output = run(args, stdin);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?} on {stdin:?}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{args:?} printed output");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: failed to "),
            "{args:?}: {stderr}"
        );
    }
}
