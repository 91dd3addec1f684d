//! The sandbox command as the README and CI run it: the real `kubelift-sandbox` binary with a
//! small node count, 1.31 → 1.32 under `Preserve`; its exit code and its JSON summary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod e2e_support;

use std::process::Command;

use serde_json::Value;

#[test]
fn the_sandbox_command_upgrades_every_node_and_restarts_no_container() {
    let _lock = e2e_support::lock();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("summary.json");
    let output = Command::new(env!("CARGO_BIN_EXE_kubelift-sandbox"))
        .args([
            "--nodes", "2", "--from", "1.31", "--to", "1.32", "--policy", "Preserve",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--dir")
        .arg(dir.path().join("sandbox"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "the sandbox exits 0");
    assert!(stdout.contains("nodes upgraded"), "the summary is printed");

    let summary: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(summary["phase"], "Complete");
    assert_eq!(summary["nodesUpgraded"], 2);
    assert_eq!(summary["unexpectedRestarts"], 0);
    assert_eq!(summary["restartsObserved"], 0);
    for version in summary["nodeVersions"].as_object().unwrap().values() {
        assert_eq!(version, "v1.32.1");
    }
    let entries = summary["entries"].as_array().unwrap();
    assert_eq!(Some(entries.len() as u64), summary["containers"].as_u64());
    assert!(entries.len() >= 8, "the demo workloads run: {entries:?}");
    for entry in entries {
        assert_eq!(entry["predicted"], "Preserved", "{entry}");
        assert_eq!(entry["restarted"], false, "{entry}");
        assert_eq!(
            entry["containerIdBefore"], entry["containerIdAfter"],
            "{entry}"
        );
        assert!(!entry["node"].as_str().unwrap().is_empty());
    }
}
