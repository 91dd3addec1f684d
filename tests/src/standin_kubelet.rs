//! Stand-in kubelets and simulated nodes for the node helper's tests.
//!
//! A stand-in kubelet is a small `#!/bin/sh` program: `--version` prints `Kubernetes vX.Y.Z`;
//! otherwise a healthy one serves `/healthz` (busybox `httpd` on the port in
//! `KUBELET_HEALTH_PORT`) and a broken one never does. A simulated node is a temporary host root
//! with the kubelet at `usr/bin/kubelet` and a restart script standing in for
//! `systemctl restart kubelet`: it stops the running kubelet by its PID file and starts whatever
//! binary is at the kubelet path now. Every process it starts is stopped by its PID.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// The bytes of a stand-in kubelet reporting `version`; a `healthy` one serves `/healthz`.
#[must_use]
pub fn standin_kubelet(version: &str, healthy: bool) -> Vec<u8> {
    let serve = if healthy {
        "exec busybox httpd -f -p \"127.0.0.1:$KUBELET_HEALTH_PORT\" -h \"$KUBELET_HEALTH_DIR\""
    } else {
        "exec busybox sleep 100000"
    };
    let script = [
        "#!/bin/sh".to_owned(),
        format!("# kubelift stand-in kubelet {version}"),
        "if [ \"${1:-}\" = \"--version\" ]; then".to_owned(),
        format!("  echo \"Kubernetes {version}\""),
        "  exit 0".to_owned(),
        "fi".to_owned(),
        serve.to_owned(),
    ];
    format!("{}\n", script.join("\n")).into_bytes()
}

/// The lowercase hex sha256 of `bytes`.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A simulated node: a temporary host root with a stand-in kubelet and its restart script.
#[derive(Debug)]
pub struct SimulatedNode {
    root: tempfile::TempDir,
    /// The node's name.
    pub name: String,
    /// The port the stand-in kubelet serves `/healthz` on.
    pub health_port: u16,
}

impl SimulatedNode {
    /// Creates the node with a stand-in kubelet of `version` installed (not yet running).
    pub fn new(name: &str, version: &str) -> std::io::Result<Self> {
        let root = tempfile::Builder::new()
            .prefix("kubelift-node-")
            .tempdir()?;
        let node = Self {
            root,
            name: name.to_owned(),
            health_port: free_port()?,
        };
        std::fs::create_dir_all(node.path("usr/bin"))?;
        std::fs::create_dir_all(node.path("run/kubelet-health"))?;
        std::fs::write(node.path("run/kubelet-health/healthz"), "ok")?;
        write_executable(&node.kubelet_path(), &standin_kubelet(version, true))?;
        write_executable(
            &node.restart_script(),
            node.restart_script_text().as_bytes(),
        )?;
        Ok(node)
    }

    /// The host root.
    #[must_use]
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A path under the host root.
    #[must_use]
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }

    /// The kubelet binary (real path).
    #[must_use]
    pub fn kubelet_path(&self) -> PathBuf {
        self.path("usr/bin/kubelet")
    }

    /// Where the node's containerd listens (real path), as the helper's default expects it.
    #[must_use]
    pub fn cri_socket(&self) -> PathBuf {
        self.path("run/containerd/containerd.sock")
    }

    /// The journal directory (real path).
    #[must_use]
    pub fn journal_dir(&self) -> PathBuf {
        self.path("var/lib/kubelift/journal")
    }

    /// The snapshot file (real path).
    #[must_use]
    pub fn snapshot_path(&self) -> PathBuf {
        self.path("var/lib/kubelift/snapshot.json")
    }

    /// The restart command's script (real path, outside what the helper touches).
    #[must_use]
    pub fn restart_script(&self) -> PathBuf {
        self.path("restart-kubelet.sh")
    }

    /// A hook the restart script runs before starting the kubelet, when it exists.
    #[must_use]
    pub fn restart_hook(&self) -> PathBuf {
        self.path("restart-hook.sh")
    }

    /// The kubelet's health URL.
    #[must_use]
    pub fn health_url(&self) -> String {
        format!("http://127.0.0.1:{}/healthz", self.health_port)
    }

    /// The node settings as `kubelift-node-helper` flags.
    #[must_use]
    pub fn helper_args(&self) -> Vec<String> {
        vec![
            format!("--node-name={}", self.name),
            format!("--host-root={}", self.root().display()),
            format!("--kubelet-health-url={}", self.health_url()),
            format!("--restart-command={}", self.restart_script().display()),
            "--poll-interval-ms=100".to_owned(),
        ]
    }

    /// Replaces the kubelet binary (non-atomically: only for setting up a test).
    pub fn install_kubelet(&self, bytes: &[u8]) -> std::io::Result<()> {
        write_executable(&self.kubelet_path(), bytes)
    }

    /// Starts (or restarts) the kubelet through the restart script.
    pub fn restart_kubelet(&self) -> std::io::Result<()> {
        let status = Command::new(self.restart_script()).status()?;
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "restart script exited with {status}"
            )))
        }
    }

    /// The running kubelet's PID, if any.
    #[must_use]
    pub fn kubelet_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.path("run/kubelet.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Stops the running kubelet by its PID.
    pub fn stop_kubelet(&self) {
        if let Some(pid) = self.kubelet_pid() {
            stop_pid(pid);
            let _ = std::fs::remove_file(self.path("run/kubelet.pid"));
        }
    }

    fn restart_script_text(&self) -> String {
        let root = self.root().display();
        let kubelet = self.kubelet_path();
        let kubelet = kubelet.display();
        let port = self.health_port;
        format!(
            r#"#!/bin/sh
# Stand-in for `systemctl restart kubelet` on a simulated node. One restart at a time (a helper
# killed mid-restart leaves its script running while the next helper restarts again).
exec 9>'{root}/run/restart.lock'
flock 9
pidfile='{root}/run/kubelet.pid'
if [ -f "$pidfile" ]; then
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null
  while [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; do
    sleep 0.05
  done
fi
if [ -x '{root}/restart-hook.sh' ]; then '{root}/restart-hook.sh'; fi
KUBELET_HEALTH_PORT={port} KUBELET_HEALTH_DIR='{root}/run/kubelet-health' \
  '{kubelet}' </dev/null >>'{root}/run/kubelet.log' 2>&1 9>&- &
echo $! > "$pidfile"
"#
        )
    }
}

impl Drop for SimulatedNode {
    /// Stops the kubelet by its PID file, then any other process still tied to this node's
    /// root (a kubelet whose PID a racing restart overwrote), by PID.
    fn drop(&mut self) {
        self.stop_kubelet();

        for pid in processes_tied_to(self.root()) {
            stop_pid(pid);
        }
    }
}

/// Processes whose command line or environment names `root`.
fn processes_tied_to(root: &Path) -> Vec<i32> {
    let needle = root.as_os_str().as_encoded_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = i32::try_from(std::process::id()).unwrap_or_default();
    let mentions = |pid: i32, file: &str| {
        std::fs::read(format!("/proc/{pid}/{file}"))
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != own && alive(pid))
        .filter(|&pid| mentions(pid, "cmdline") || mentions(pid, "environ"))
        .collect()
}

/// Sends TERM to `pid` and waits until it is gone (or a zombie), KILL after a grace period.
pub fn stop_pid(pid: i32) {
    use nix::sys::signal::{Signal, kill};
    let target = nix::unistd::Pid::from_raw(pid);
    let _ = kill(target, Signal::SIGTERM);
    for _ in 0..100 {
        if !alive(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = kill(target, Signal::SIGKILL);
}

/// Whether `pid` runs (a zombie does not count).
#[must_use]
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|status| {
        !status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'))
    })
}

/// Writes `bytes` to `path` with mode 0755.
pub fn write_executable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The `kubelift-node-helper` binary next to the running test's target directory; build it first
/// with `cargo build --workspace --bins`.
#[must_use]
pub fn helper_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    profile_dir.join("kubelift-node-helper")
}
