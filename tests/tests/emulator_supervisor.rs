//! The supervisor as the node's kubelet service: it runs the program at the kubelet path, and
//! `ctl restart` re-executes whatever file is at that path at that moment; `stop` and `start`
//! do what they say, and a program that exits on its own is started again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod emulator_support;

use std::path::Path;
use std::time::Duration;

use emulator_support::{PATIENCE, emulator_bin, install_executable};
use kubelift_testbed::supervisor::{ProcessState, Report, control};

/// A program that records its version and PID, then sleeps until stopped.
fn program(version: &str, marks: &Path) -> String {
    format!(
        "#!/bin/sh\necho \"{version} $$\" >> '{}'\nexec sleep 100000\n",
        marks.display()
    )
}

/// Waits until the marks file has `lines` lines (the program writes them; nothing to watch).
async fn marks_after(marks: &Path, lines: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let text = std::fs::read_to_string(marks).unwrap_or_default();
        let found: Vec<String> = text.lines().map(str::to_owned).collect();
        if found.len() >= lines {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "program never ran {lines} times"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is_alive(pid: u32) -> bool {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap());
    nix::sys::signal::kill(pid, None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

struct Supervised {
    dir: tempfile::TempDir,
    child: tokio::process::Child,
}

impl Supervised {
    async fn start(restart_delay_ms: &str) -> Supervised {
        let dir = tempfile::tempdir().unwrap();
        let kubelet = dir.path().join("usr/bin/kubelet");
        install_executable(&kubelet, &program("v1", &dir.path().join("marks")));
        let child = tokio::process::Command::new(emulator_bin())
            .args([
                "supervise",
                "--restart-delay-ms",
                restart_delay_ms,
                "--socket",
            ])
            .arg(dir.path().join("supervisor.sock"))
            .arg("--program")
            .arg(&kubelet)
            .spawn()
            .unwrap();
        let supervised = Supervised { dir, child };
        marks_after(&supervised.marks(), 1).await;
        supervised
    }

    fn marks(&self) -> std::path::PathBuf {
        self.dir.path().join("marks")
    }

    async fn ctl(&self, command: &str) -> Report {
        control(&self.dir.path().join("supervisor.sock"), command)
            .await
            .unwrap()
    }

    async fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id().unwrap()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn restart_re_executes_the_file_now_at_the_kubelet_path() {
    let supervised = Supervised::start("200").await;
    let first = supervised.ctl("status").await;
    assert_eq!(first.state, ProcessState::Running);
    let first_pid = first.pid.unwrap();

    let kubelet = supervised.dir.path().join("usr/bin/kubelet");
    install_executable(&kubelet, &program("v2", &supervised.marks()));
    let restarted = supervised.ctl("restart").await;

    let marks = marks_after(&supervised.marks(), 2).await;
    assert_eq!(marks[0], format!("v1 {first_pid}"));
    assert_eq!(marks[1], format!("v2 {}", restarted.pid.unwrap()));
    assert!(!is_alive(first_pid), "the old program was stopped");
    assert_eq!(restarted.starts, 2);
    supervised.stop().await;
}

#[tokio::test]
async fn stop_and_start_control_the_program_and_the_supervisor_stops_it_on_exit() {
    let supervised = Supervised::start("200").await;
    let running = supervised.ctl("status").await.pid.unwrap();

    let stopped = supervised.ctl("stop").await;
    assert_eq!(stopped.state, ProcessState::Stopped);
    assert!(stopped.pid.is_none());
    assert!(!is_alive(running));
    let started = supervised.ctl("start").await;
    assert_eq!(started.state, ProcessState::Running);
    let again = started.pid.unwrap();

    supervised.stop().await;
    assert!(
        !is_alive(again),
        "stopping the supervisor stops its program"
    );
}

#[tokio::test]
async fn a_program_that_exits_on_its_own_is_started_again() {
    let supervised = Supervised::start("100").await;
    let first = supervised.ctl("status").await.pid.unwrap();

    let pid = nix::unistd::Pid::from_raw(i32::try_from(first).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();

    let marks = marks_after(&supervised.marks(), 2).await;
    assert!(marks[1].starts_with("v1 "));
    assert_ne!(marks[1], marks[0]);
    supervised.stop().await;
}
