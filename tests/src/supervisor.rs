//! A per-node service manager standing in for systemd: it runs one program (the node's kubelet
//! path) with configured arguments and environment, restarts it when told to over a unix socket
//! (re-executing whatever file is at the path at that moment, as `systemctl restart` does), starts
//! it again after it exits on its own, and reports its PID and state.
//!
//! Protocol: a client connects, writes one command line (`restart`, `stop`, `start`, `status`)
//! and reads one JSON [`Report`] line back.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// Failures of the supervisor and of its control client.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The control socket could not be bound.
    #[error("failed to bind the supervisor socket {path}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A control connection failed.
    #[error("failed to talk to the supervisor on {path}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The answer was not a report.
    #[error("failed to read the supervisor's answer")]
    Answer(#[source] serde_json::Error),
    /// The supervisor answered with an error.
    #[error("failed to {command}: {message}")]
    Refused {
        /// The command sent.
        command: String,
        /// What the supervisor said.
        message: String,
    },
    /// Waiting for a termination signal failed.
    #[error("failed to install the signal handler")]
    Signal(#[source] std::io::Error),
}

/// What the supervisor runs and where it listens.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// Control socket.
    pub socket: PathBuf,
    /// The program, resolved again at every start.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment on top of the supervisor's own.
    pub env: Vec<(String, String)>,
    /// Append the program's stdout and stderr to this file (inherit when `None`).
    pub log: Option<PathBuf>,
    /// Start the program again after it exits on its own.
    pub restart_on_exit: bool,
    /// Delay before such a restart (systemd's `RestartSec`).
    pub restart_delay: Duration,
    /// Time between SIGTERM and SIGKILL when stopping.
    pub stop_timeout: Duration,
}

impl SupervisorConfig {
    /// Defaults for `program` listening on `socket`: restart on exit after 1 s, 10 s to stop.
    #[must_use]
    pub fn new(socket: PathBuf, program: PathBuf) -> Self {
        SupervisorConfig {
            socket,
            program,
            args: Vec::new(),
            env: Vec::new(),
            log: None,
            restart_on_exit: true,
            restart_delay: Duration::from_secs(1),
            stop_timeout: Duration::from_secs(10),
        }
    }
}

/// State of the supervised program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessState {
    /// Running with a PID.
    Running,
    /// Stopped on request.
    Stopped,
    /// Exited on its own (or failed to start); restarted after the delay when configured.
    Exited,
}

/// The answer to every command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// State after the command.
    pub state: ProcessState,
    /// PID while running.
    pub pid: Option<u32>,
    /// How many times the program was started.
    pub starts: u64,
    /// How the last run ended, if one did.
    pub last_exit: Option<String>,
    /// Why the command failed, if it did.
    pub error: Option<String>,
}

/// The supervisor's own state.
struct Supervisor {
    config: SupervisorConfig,
    child: Option<Child>,
    state: ProcessState,
    starts: u64,
    last_exit: Option<String>,
    restart_at: Option<Instant>,
}

/// Runs the supervisor until SIGTERM or SIGINT, then stops the program and removes the socket.
pub async fn run(config: SupervisorConfig) -> Result<(), SupervisorError> {
    let listener = bind(&config.socket)?;
    let socket = config.socket.clone();
    let mut supervisor = Supervisor::new(config);
    supervisor.start();
    let result = supervisor.serve(&listener).await;
    supervisor.stop().await;
    let _removed = std::fs::remove_file(&socket);
    result
}

fn bind(socket: &Path) -> Result<UnixListener, SupervisorError> {
    let failed = |source| SupervisorError::Bind {
        path: socket.to_owned(),
        source,
    };
    if let Some(parent) = socket.parent() {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    match std::fs::remove_file(socket) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(failed(e)),
        _ => {}
    }
    UnixListener::bind(socket).map_err(failed)
}

async fn wait_child(child: Option<&mut Child>) -> std::io::Result<ExitStatus> {
    match child {
        Some(child) => child.wait().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Supervisor {
    fn new(config: SupervisorConfig) -> Self {
        Supervisor {
            config,
            child: None,
            state: ProcessState::Stopped,
            starts: 0,
            last_exit: None,
            restart_at: None,
        }
    }

    async fn serve(&mut self, listener: &UnixListener) -> Result<(), SupervisorError> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).map_err(SupervisorError::Signal)?;
        let mut interrupt = signal(SignalKind::interrupt()).map_err(SupervisorError::Signal)?;
        loop {
            tokio::select! {
                _ = terminate.recv() => return Ok(()),
                _ = interrupt.recv() => return Ok(()),
                exited = wait_child(self.child.as_mut()) => self.exited(exited),
                () = sleep_until(self.restart_at) => self.start(),
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => self.answer(stream).await,
                    Err(error) => tracing::warn!(%error, "failed to accept a control connection"),
                },
            }
        }
    }

    async fn answer(&mut self, stream: UnixStream) {
        let (read, mut write) = stream.into_split();
        let mut line = String::new();
        if let Err(error) = BufReader::new(read).read_line(&mut line).await {
            tracing::warn!(%error, "failed to read a control command");
            return;
        }
        let report = self.command(line.trim()).await;
        let mut text = serde_json::to_string(&report).unwrap_or_default();
        text.push('\n');
        if let Err(error) = write.write_all(text.as_bytes()).await {
            tracing::warn!(%error, "failed to answer a control command");
        }
    }

    async fn command(&mut self, command: &str) -> Report {
        tracing::info!(command, "supervisor command");
        match command {
            "status" => self.report(None),
            "start" => {
                if self.child.is_none() {
                    self.start();
                }
                self.report(None)
            }
            "stop" => {
                self.stop().await;
                self.report(None)
            }
            "restart" => {
                self.stop().await;
                self.start();
                self.report(None)
            }
            other => self.report(Some(format!("unknown command {other:?}"))),
        }
    }

    fn report(&self, error: Option<String>) -> Report {
        Report {
            state: self.state,
            pid: self.child.as_ref().and_then(Child::id),
            starts: self.starts,
            last_exit: self.last_exit.clone(),
            error,
        }
    }

    fn start(&mut self) {
        self.restart_at = None;
        self.starts += 1;
        match self.spawn() {
            Ok(child) => {
                let program = self.config.program.display();
                tracing::info!(pid = child.id(), %program, "started");
                self.child = Some(child);
                self.state = ProcessState::Running;
            }
            Err(error) => {
                tracing::warn!(%error, program = %self.config.program.display(), "failed to start");
                self.last_exit = Some(format!("failed to start: {error}"));
                self.exited_without_child();
            }
        }
    }

    fn spawn(&self) -> std::io::Result<Child> {
        let mut command = Command::new(&self.config.program);
        command
            .args(&self.config.args)
            .envs(self.config.env.iter().cloned());
        command.stdin(Stdio::null()).kill_on_drop(true);
        if let Some(log) = &self.config.log {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)?;
            command.stdout(file.try_clone()?).stderr(file);
        }
        command.spawn()
    }

    fn exited(&mut self, status: std::io::Result<ExitStatus>) {
        self.child = None;
        self.last_exit = Some(match status {
            Ok(status) => status.to_string(),
            Err(error) => format!("failed to wait: {error}"),
        });
        tracing::info!(last_exit = self.last_exit.as_deref(), "program exited");
        self.exited_without_child();
    }

    fn exited_without_child(&mut self) {
        self.state = ProcessState::Exited;
        if self.config.restart_on_exit {
            self.restart_at = Some(Instant::now() + self.config.restart_delay);
        }
    }

    /// SIGTERM, then SIGKILL after the stop timeout; no automatic restart afterwards.
    async fn stop(&mut self) {
        self.restart_at = None;
        self.state = ProcessState::Stopped;
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _sent = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        let status = match tokio::time::timeout(self.config.stop_timeout, child.wait()).await {
            Ok(status) => status,
            Err(_elapsed) => match child.kill().await {
                Ok(()) => child.wait().await,
                Err(error) => Err(error),
            },
        };
        let describe = |s: ExitStatus| s.to_string();
        self.last_exit = Some(status.map_or_else(|e| format!("failed to wait: {e}"), describe));
    }
}

/// Sends one command to the supervisor listening on `socket` and returns its report.
pub async fn control(socket: &Path, command: &str) -> Result<Report, SupervisorError> {
    let failed = |source| SupervisorError::Connect {
        path: socket.to_owned(),
        source,
    };
    let stream = UnixStream::connect(socket).await.map_err(failed)?;
    let (read, mut write) = stream.into_split();
    write
        .write_all(format!("{command}\n").as_bytes())
        .await
        .map_err(failed)?;
    let mut line = String::new();
    BufReader::new(read)
        .read_line(&mut line)
        .await
        .map_err(failed)?;
    let report: Report = serde_json::from_str(&line).map_err(SupervisorError::Answer)?;
    match &report.error {
        Some(message) => Err(SupervisorError::Refused {
            command: command.to_owned(),
            message: message.clone(),
        }),
        None => Ok(report),
    }
}
