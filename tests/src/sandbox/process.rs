//! The sandbox's child processes (supervisors, helpers, the operator): each is spawned with its
//! output appended to its own log file, and stopped by its own PID — SIGTERM, then SIGKILL after
//! a grace period — never by name. A process still running when its handle is dropped (a test
//! that panicked, a sandbox interrupted half-way) is stopped the same way, so that a supervisor
//! still stops its kubelet and nothing outlives the sandbox.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::SandboxError;

/// How long a process may take to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// How long a dropped process may take to exit after SIGTERM (blocking the dropping thread).
const DROP_GRACE: Duration = Duration::from_secs(5);

/// A running child process of the sandbox.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Spawns `command` with stdin closed and stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Result<Self, SandboxError> {
        let failed = |source| SandboxError::Spawn {
            name: name.to_owned(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(failed)?;
        let stderr = file.try_clone().map_err(failed)?;
        command.stdin(Stdio::null()).stdout(file).stderr(stderr);
        let child = command.spawn().map_err(failed)?;
        tracing::debug!(name, pid = child.id(), "process started");
        Ok(Self {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        })
    }

    /// The process's PID while it runs.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Its log file.
    #[must_use]
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Sends `signal` to this process by its PID.
    pub fn signal(&self, signal: Signal) {
        if let Some(pid) = self.pid().and_then(|pid| i32::try_from(pid).ok()) {
            let _sent = kill(Pid::from_raw(pid), signal);
        }
    }

    /// SIGKILLs the process by its PID and reaps it (a crash, for the fault tests).
    pub async fn kill(&mut self) {
        self.signal(Signal::SIGKILL);
        let _status = self.child.wait().await;
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM by PID, then SIGKILL when it has not exited after a grace period.
    pub async fn stop(&mut self) {
        self.signal(Signal::SIGTERM);
        if tokio::time::timeout(STOP_GRACE, self.child.wait())
            .await
            .is_err()
        {
            tracing::warn!(name = %self.name, "process ignored SIGTERM; killing it");
            self.kill().await;
        }
    }
}

impl Drop for Process {
    /// SIGTERM, then a blocking wait of up to [`DROP_GRACE`] (then SIGKILL), so that files the
    /// process writes are closed before whoever owns their directory removes it.
    fn drop(&mut self) {
        if self.exited() {
            return;
        }

        tracing::debug!(name = %self.name, "process handle dropped; stopping it");
        self.signal(Signal::SIGTERM);
        let deadline = std::time::Instant::now() + DROP_GRACE;
        while !self.exited() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if !self.exited() {
            self.signal(Signal::SIGKILL);
        }
    }
}
