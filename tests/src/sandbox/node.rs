//! One sandbox node: a host-root directory (DESIGN contract 12) holding the kubelet at
//! `usr/bin/kubelet` and the CRI socket at `run/containerd/containerd.sock`, a container runtime
//! (simulated, in-process, or a real containerd), a supervisor process playing the kubelet service
//! (its `ctl restart` is the node's restart command), and a real `kubelift-node-helper agent`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::process::Process;
use super::{Binaries, RuntimeKind, SandboxError};
use crate::containerd::{Containerd, WORKLOAD_IMAGE};
use crate::cri_sim::CriSimServer;

/// The node's container runtime.
#[derive(Debug)]
enum Runtime {
    /// In-memory containers behind the real CRI protocol.
    Simulated(CriSimServer),
    /// A real containerd with its own root, state and runc root.
    Containerd(Box<Containerd>),
}

/// What a node is started with.
#[derive(Debug, Clone)]
pub struct NodeSetup {
    /// The Node's name.
    pub name: String,
    /// Its `topology.kubernetes.io/zone`.
    pub zone: String,
    /// The kubelet version installed at start.
    pub version: String,
    /// The runtime kind.
    pub runtime: RuntimeKind,
}

/// A running sandbox node.
#[derive(Debug)]
pub struct SandboxNode {
    /// The Node's name.
    pub name: String,
    dir: PathBuf,
    healthz_port: u16,
    // Dropped in this order: the helper, the supervisor (with its kubelet), the runtime.
    helper: Option<Process>,
    supervisor: Process,
    runtime: Option<Runtime>,
}

impl SandboxNode {
    /// Creates the host root under `dir`, installs the kubelet of `setup.version` from
    /// `kubelets`, starts the runtime and the supervisor (which starts the kubelet).
    pub async fn start(
        setup: &NodeSetup,
        dir: &Path,
        kubelets: &Path,
        bins: &Binaries,
        kubeconfig: &Path,
    ) -> Result<Self, SandboxError> {
        let root = dir.join("root");
        for sub in ["usr/bin", "etc/kubelift-sandbox", "var/lib/kubelift"] {
            create_dir(&root.join(sub))?;
        }
        let standin = kubelets.join(standin_name(&setup.version));
        copy_executable(&standin, &root.join("usr/bin/kubelet"))?;
        let runtime = start_runtime(setup.runtime, dir, &cri_socket(&root)).await?;
        let healthz_port = free_port()?;
        let mut node = Self {
            name: setup.name.clone(),
            dir: dir.to_owned(),
            healthz_port,
            runtime: Some(runtime),
            supervisor: spawn_supervisor(setup, dir, bins, kubeconfig, healthz_port)?,
            helper: None,
        };
        if let Err(error) = node.wait_for_supervisor().await {
            node.stop().await;
            return Err(error);
        }
        Ok(node)
    }

    /// Starts (or starts again) this node's `kubelift-node-helper agent`.
    pub fn start_helper(&mut self, bins: &Binaries, kubeconfig: &Path) -> Result<(), SandboxError> {
        let restart = format!(
            "{} ctl --socket {} restart",
            bins.emulator.display(),
            self.supervisor_socket().display()
        );
        let mut command = Command::new(&bins.helper);
        command
            .arg("agent")
            .env("KUBELIFT_NODE_NAME", &self.name)
            .env("KUBELIFT_HOST_ROOT", self.root())
            .env("KUBELIFT_KUBECONFIG", kubeconfig)
            .env("KUBELIFT_KUBELET_HEALTH_URL", self.health_url())
            .env("KUBELIFT_RESTART_COMMAND", restart)
            .env("KUBELIFT_METRICS_PORT", "0")
            .env("KUBELIFT_HEARTBEAT_SECONDS", "2")
            .env("KUBELIFT_POLL_INTERVAL_MS", "200")
            .env("RUST_LOG", "info");
        let log = self.dir.join("helper.log");
        self.helper = Some(Process::spawn(
            &format!("helper {}", self.name),
            command,
            &log,
        )?);
        Ok(())
    }

    /// The helper process, while it runs.
    pub fn helper(&mut self) -> Option<&mut Process> {
        self.helper.as_mut()
    }

    /// The host root.
    #[must_use]
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// The kubelet binary (real path).
    #[must_use]
    pub fn kubelet_path(&self) -> PathBuf {
        self.root().join("usr/bin/kubelet")
    }

    /// The node's CRI socket (real path).
    #[must_use]
    pub fn cri_socket(&self) -> PathBuf {
        cri_socket(&self.root())
    }

    /// The kubelet's health URL.
    #[must_use]
    pub fn health_url(&self) -> String {
        format!("http://127.0.0.1:{}/healthz", self.healthz_port)
    }

    /// The supervisor's control socket.
    #[must_use]
    pub fn supervisor_socket(&self) -> PathBuf {
        self.dir.join("supervisor.sock")
    }

    /// Extra flags the stand-in kubelet of `version` passes to the emulator on this node
    /// (`--fault never-healthy`, `--snapshot-aware`): a per-node file, so that the binary's
    /// bytes (and its sha256) stay the same on every node.
    pub fn set_kubelet_flags(&self, version: &str, flags: &str) -> Result<(), SandboxError> {
        let path = self.root().join(flags_path(version));
        std::fs::write(&path, flags).map_err(|source| SandboxError::Io {
            what: format!("write {}", path.display()),
            source,
        })
    }

    async fn wait_for_supervisor(&mut self) -> Result<(), SandboxError> {
        let socket = self.supervisor_socket();
        let deadline = tokio::time::Instant::now() + super::PATIENCE;
        while !socket.exists() {
            if self.supervisor.exited() || tokio::time::Instant::now() > deadline {
                return Err(SandboxError::NodeStart {
                    node: self.name.clone(),
                    log: self.supervisor.log().to_owned(),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Stops the helper, the supervisor (and with it the kubelet), then the runtime.
    pub async fn stop(&mut self) {
        if let Some(helper) = self.helper.as_mut() {
            helper.stop().await;
        }
        self.supervisor.stop().await;
        match self.runtime.take() {
            Some(Runtime::Simulated(server)) => {
                let _stopped = server.shutdown().await;
            }
            Some(Runtime::Containerd(containerd)) => {
                remove_all_sandboxes(&containerd).await;
                containerd.shutdown().await;
            }
            None => {}
        }
    }
}

fn spawn_supervisor(
    setup: &NodeSetup,
    dir: &Path,
    bins: &Binaries,
    kubeconfig: &Path,
    healthz_port: u16,
) -> Result<Process, SandboxError> {
    let root = dir.join("root");
    let mut command = Command::new(&bins.emulator);
    command
        .args(["supervise", "--restart-delay-ms", "300", "--log"])
        .arg(dir.join("kubelet.log"))
        .arg("--socket")
        .arg(dir.join("supervisor.sock"))
        .arg("--program")
        .arg(root.join("usr/bin/kubelet"))
        .env("KUBELIFT_NODE_NAME", &setup.name)
        .env("KUBELIFT_KUBECONFIG", kubeconfig)
        .env("KUBELIFT_CRI_SOCKET", cri_socket(&root))
        .env("KUBELIFT_HEALTHZ_PORT", healthz_port.to_string())
        .env("KUBELIFT_HOST_ROOT", &root)
        .env("KUBELIFT_ZONE", &setup.zone)
        .env("KUBELIFT_SYNC_INTERVAL_MS", "300")
        .env("KUBELIFT_HEARTBEAT_INTERVAL_MS", "2000");
    if setup.runtime == RuntimeKind::Containerd {
        command.env("KUBELIFT_RUNTIME_IMAGE", WORKLOAD_IMAGE);
    }
    let name = format!("supervisor {}", setup.name);
    Process::spawn(&name, command, &dir.join("supervisor.log"))
}

async fn start_runtime(
    kind: RuntimeKind,
    dir: &Path,
    socket: &Path,
) -> Result<Runtime, SandboxError> {
    match kind {
        RuntimeKind::Simulated => Ok(Runtime::Simulated(CriSimServer::start(socket)?)),
        RuntimeKind::Containerd => {
            let state = dir.join("containerd");
            create_dir(&state)?;
            create_dir(socket.parent().unwrap_or(dir))?;
            let containerd = Containerd::start(&state, socket).await?;
            Ok(Runtime::Containerd(Box::new(containerd)))
        }
    }
}

/// Stops and removes every pod sandbox through CRI (the emulator's, not only the harness's),
/// so that containerd can be stopped with nothing of it left running.
async fn remove_all_sandboxes(containerd: &Containerd) {
    use k8s_cri::v1 as cri;
    let mut client = containerd.runtime();
    let listed = client
        .list_pod_sandbox(cri::ListPodSandboxRequest::default())
        .await;
    let Ok(listed) = listed else { return };
    for sandbox in listed.into_inner().items {
        let id = sandbox.id;
        let stop = cri::StopPodSandboxRequest {
            pod_sandbox_id: id.clone(),
        };
        let _stopped = client.stop_pod_sandbox(stop).await;
        let remove = cri::RemovePodSandboxRequest { pod_sandbox_id: id };
        let _removed = client.remove_pod_sandbox(remove).await;
    }
}

/// `<root>/run/containerd/containerd.sock`, where the helper's default CRI socket resolves.
fn cri_socket(root: &Path) -> PathBuf {
    root.join("run/containerd/containerd.sock")
}

/// The file name of the stand-in kubelet of `version` in the sandbox's kubelet directory.
#[must_use]
pub fn standin_name(version: &str) -> String {
    format!("kubelet-{version}")
}

/// The per-node flags file of the stand-in kubelet of `version`, relative to the host root.
fn flags_path(version: &str) -> String {
    format!("etc/kubelift-sandbox/kubelet-{version}.flags")
}

/// The bytes of the stand-in kubelet of `version`: a script that execs the emulator at that
/// version, with the node's extra flags (read from the host root the supervisor names).
#[must_use]
pub fn standin_script(emulator: &Path, version: &str) -> String {
    let flags = flags_path(version);
    format!(
        "#!/bin/sh\n# kubelift sandbox stand-in kubelet {version}: the kubelet emulator.\n\
         flags=\"${{KUBELIFT_HOST_ROOT:-/}}/{flags}\"\n\
         if [ -r \"$flags\" ]; then set -- $(cat \"$flags\") \"$@\"; fi\n\
         exec '{}' run --version {version} \"$@\"\n",
        emulator.display()
    )
}

/// Writes an executable file (mode 0755).
pub fn write_executable(path: &Path, bytes: &[u8]) -> Result<(), SandboxError> {
    let failed = |source| SandboxError::Io {
        what: format!("write {}", path.display()),
        source,
    };
    std::fs::write(path, bytes).map_err(failed)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(failed)
}

fn copy_executable(from: &Path, to: &Path) -> Result<(), SandboxError> {
    let bytes = std::fs::read(from).map_err(|source| SandboxError::Io {
        what: format!("read {}", from.display()),
        source,
    })?;
    write_executable(to, &bytes)
}

fn create_dir(path: &Path) -> Result<(), SandboxError> {
    std::fs::create_dir_all(path).map_err(|source| SandboxError::Io {
        what: format!("create {}", path.display()),
        source,
    })
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16, SandboxError> {
    let failed = |source| SandboxError::Io {
        what: "pick a free port".to_owned(),
        source,
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(failed)?;
    Ok(listener.local_addr().map_err(failed)?.port())
}
