//! The sandbox command as the README and CI run it: the real `kubelift-sandbox` binary with a
//! small node count, 1.31 → 1.32 under `Preserve`; its exit code and its JSON summary. And what
//! it leaves behind when interrupted or given a workload it cannot create: no process.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod e2e_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

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

/// PIDs of processes (other than this test) whose command line or environment mentions `dir`.
fn processes_mentioning(dir: &Path) -> Vec<(u32, String)> {
    let needle = dir.to_string_lossy().into_owned();
    let own = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let read = |file: &str| std::fs::read(entry.path().join(file)).unwrap_or_default();
        let text = String::from_utf8_lossy(&[read("cmdline"), read("environ")].concat())
            .replace('\0', " ");
        if pid != own && text.contains(&needle) {
            found.push((pid, text.chars().take(200).collect()));
        }
    }
    found
}

/// Waits up to a few seconds for every process mentioning `dir` to be gone.
fn wait_processes_gone(dir: &Path) -> Vec<(u32, String)> {
    for _ in 0..100 {
        let left = processes_mentioning(dir);
        if left.is_empty() {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    processes_mentioning(dir)
}

fn sandbox_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kubelift-sandbox"));
    command.args(args).arg("--dir").arg(dir);
    command
}

#[test]
fn an_interrupted_sandbox_stops_every_process_it_started() {
    let _lock = e2e_support::lock();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("sandbox");
    let mut child = sandbox_command(&dir, &["--nodes", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());

    let mut seen = Vec::new();
    for line in stdout.lines().map_while(Result::ok) {
        let executing = line.contains("Execute");
        seen.push(line);
        if executing {
            break;
        }
    }
    let running = processes_mentioning(&dir);
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    kill(pid, Signal::SIGINT).unwrap();
    let output = child.wait_with_output().unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(seen.iter().any(|l| l.contains("Execute")), "{seen:#?}");
    assert!(
        running.len() >= 4,
        "supervisors, kubelets and helpers ran: {running:?}"
    );
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    assert_eq!(
        wait_processes_gone(&dir),
        Vec::new(),
        "nothing outlives the sandbox"
    );
}

#[test]
fn a_workload_of_an_unknown_kind_fails_clearly_and_stops_the_started_nodes() {
    let _lock = e2e_support::lock();
    let temp = tempfile::tempdir().unwrap();
    let manifests = temp.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    let unknown = "apiVersion: example.com/v1\nkind: Frobnicator\nmetadata: {name: x}\n";
    std::fs::write(manifests.join("x.yaml"), unknown).unwrap();
    let dir = temp.path().join("sandbox");

    let workloads = format!("--workloads={}", manifests.display());
    let output = sandbox_command(&dir, &["--nodes", "2", &workloads])
        .output()
        .unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the API server serves no Frobnicator in example.com/v1"),
        "{stderr}"
    );
    assert!(
        dir.join("node-02/supervisor.log").exists(),
        "the nodes had started"
    );
    assert_eq!(
        wait_processes_gone(&dir),
        Vec::new(),
        "nothing outlives the sandbox"
    );
}

#[test]
fn arguments_that_could_only_fail_later_are_refused_before_anything_starts() {
    let temp = tempfile::tempdir().unwrap();
    let unwritable = temp.path().join("missing/summary.json");
    let unwritable = format!("--json={}", unwritable.display());
    let cases: [(&[&str], &str); 3] = [
        (
            &["--from", "1.32", "--to", "1.31"],
            "is not newer than --from",
        ),
        (
            &["--from", "1.31", "--to", "1.31"],
            "is not newer than --from",
        ),
        (&[unwritable.as_str()], "failed to write"),
    ];

    for (args, message) in cases {
        let dir = temp.path().join("sandbox");
        let output = sandbox_command(&dir, args).output().unwrap();

        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}: nothing started");
        assert!(!dir.exists(), "{args:?}: no sandbox directory");
    }
}
