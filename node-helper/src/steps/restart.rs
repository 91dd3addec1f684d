//! Restart: run the configured command that restarts the kubelet service (by default
//! `systemctl restart kubelet` in the host's namespaces through `nsenter`). Restarting twice is
//! harmless, so the step is idempotent by nature.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::context::NodeContext;

/// How long the restart command may run.
const RESTART_TIMEOUT: Duration = Duration::from_secs(120);

/// The default restart command: systemd's, entered in PID 1's namespaces.
pub const DEFAULT_RESTART_COMMAND: &str =
    "nsenter --target 1 --mount --uts --ipc --net --pid -- systemctl restart kubelet";

/// Errors of restarting the kubelet service.
#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    /// No command is configured.
    #[error("failed to restart the kubelet: the restart command is empty")]
    Empty,
    /// The command could not be started.
    #[error("failed to run the restart command {program}")]
    Spawn {
        /// The program.
        program: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The command did not finish in time.
    #[error("failed to restart the kubelet: {program} did not finish in time")]
    Timeout {
        /// The program.
        program: String,
    },
    /// The command exited unsuccessfully.
    #[error("failed to restart the kubelet: {program} exited with {status}")]
    Exit {
        /// The program.
        program: String,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
}

/// Splits a configured command line on white space (no shell is involved).
#[must_use]
pub fn parse_command(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

/// Runs the restart command and waits for it to finish. Its output goes to the helper's own
/// stdout and stderr (never a pipe, which a daemonising command would keep open).
pub async fn restart_kubelet(ctx: &NodeContext) -> Result<(), RestartError> {
    let (program, args) = ctx
        .restart_command
        .split_first()
        .ok_or(RestartError::Empty)?;
    let run = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .status();
    let status = tokio::time::timeout(RESTART_TIMEOUT, run)
        .await
        .map_err(|_| RestartError::Timeout {
            program: program.clone(),
        })?
        .map_err(|source| RestartError::Spawn {
            program: program.clone(),
            source,
        })?;
    if !status.success() {
        return Err(RestartError::Exit {
            program: program.clone(),
            status,
        });
    }
    tracing::info!(%program, "kubelet restart requested");
    Ok(())
}
