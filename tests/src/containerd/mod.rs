//! A real containerd per test: its own temporary root, state, sockets and runc root, the CRI
//! settings these machines need (see `RUNTIME-NOTES.md`), a locally built busybox image imported
//! with `ctr`, and host-network pod sandboxes with kubelet-labelled containers created through
//! CRI. Teardown goes through CRI first (stop and remove every sandbox), then stops containerd by
//! its own PID.

mod image;
mod pods;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

pub use image::{BUSYBOX, SLEEP_FOREVER, write_image_tar};
pub use pods::{ContainerSpec, PodSpec, RunningContainer, RunningPod};

/// Image used as the sandbox (pause) image.
pub const PAUSE_IMAGE: &str = "kubelift.test/pause:1";
/// Image used for workload containers.
pub const WORKLOAD_IMAGE: &str = "kubelift.test/busybox:1";

/// How long containerd may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Failures of the harness.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A file operation failed.
    #[error("failed to {what}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A required tool is not installed.
    #[error("failed to find {tool}: install containerd, runc and busybox-static")]
    Missing {
        /// The tool.
        tool: &'static str,
    },
    /// containerd did not come up.
    #[error("failed to start containerd: {0}")]
    Start(String),
    /// A command failed.
    #[error("failed to run {command}: {output}")]
    Command {
        /// The command.
        command: String,
        /// Its stderr.
        output: String,
    },
    /// A CRI call failed.
    #[error("failed to call {call} on containerd")]
    Cri {
        /// The call.
        call: &'static str,
        /// The status.
        #[source]
        source: Box<tonic::Status>,
    },
}

/// A running containerd with its own directories.
#[derive(Debug)]
pub struct Containerd {
    dir: PathBuf,
    socket: PathBuf,
    child: Option<std::process::Child>,
    client: RuntimeServiceClient<Channel>,
    sandboxes: Vec<String>,
}

impl Containerd {
    /// Whether containerd, runc, ctr and busybox are installed.
    #[must_use]
    pub fn available() -> bool {
        ["/usr/bin/containerd", "/usr/bin/ctr", BUSYBOX]
            .iter()
            .all(|p| Path::new(p).exists())
            && which("runc")
    }

    /// Starts containerd with its state under `dir` and its CRI socket at `socket`, and imports
    /// the busybox image as both the pause and the workload image.
    pub async fn start(dir: &Path, socket: &Path) -> Result<Self, HarnessError> {
        for tool in ["containerd", "ctr", "runc"] {
            if !which(tool) {
                return Err(HarnessError::Missing {
                    tool: "containerd/ctr/runc",
                });
            }
        }
        let config = write_config(dir, socket)?;
        let child = spawn(dir, &config)?;
        let mut containerd = Self {
            dir: dir.to_path_buf(),
            socket: socket.to_path_buf(),
            child: Some(child),
            client: wait_for_socket(socket).await?,
            sandboxes: Vec::new(),
        };
        containerd.import_images().await?;
        Ok(containerd)
    }

    /// The CRI socket.
    #[must_use]
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// containerd's PID.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// The CRI runtime client.
    #[must_use]
    pub fn runtime(&self) -> RuntimeServiceClient<Channel> {
        self.client.clone()
    }

    async fn import_images(&mut self) -> Result<(), HarnessError> {
        let tar = self.dir.join("busybox-image.tar");
        write_image_tar(&tar, &[PAUSE_IMAGE, WORKLOAD_IMAGE])?;
        let output = tokio::process::Command::new("ctr")
            .arg("-a")
            .arg(&self.socket)
            .args([
                "-n",
                "k8s.io",
                "images",
                "import",
                "--snapshotter",
                "native",
            ])
            .arg(&tar)
            .output()
            .await
            .map_err(|source| HarnessError::Io {
                what: "run ctr",
                source,
            })?;
        if !output.status.success() {
            return Err(HarnessError::Command {
                command: "ctr images import".into(),
                output: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        Ok(())
    }

    /// Stops and removes every sandbox through CRI, then stops containerd by its PID.
    pub async fn shutdown(mut self) {
        self.teardown().await;
    }

    async fn teardown(&mut self) {
        for id in std::mem::take(&mut self.sandboxes) {
            if let Err(error) = pods::remove_sandbox(&mut self.client, &id).await {
                tracing::warn!(%id, %error, "failed to remove sandbox");
            }
        }
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if self.child.is_none() {
            return;
        }
        let sandboxes = std::mem::take(&mut self.sandboxes);
        let client = self.client.clone();
        let teardown = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async move {
                    let mut client = client;
                    for id in sandboxes {
                        let _ = pods::remove_sandbox(&mut client, &id).await;
                    }
                });
            }
        });
        let _ = teardown.join();
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
    }
}

/// Sends TERM to containerd by its PID and waits; KILL after a grace period.
fn stop_child(child: &mut std::process::Child) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    for _ in 0..100 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
}

fn write_config(dir: &Path, socket: &Path) -> Result<PathBuf, HarnessError> {
    let io = |what| move |source| HarnessError::Io { what, source };
    for sub in ["root", "state", "runc", "cni", "opt", "logs"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(io("create containerd dirs"))?;
    }
    if let Some(parent) = socket.parent() {
        std::fs::create_dir_all(parent).map_err(io("create socket dir"))?;
    }
    let config = dir.join("config.toml");
    std::fs::write(&config, config_toml(dir, socket)).map_err(io("write containerd config"))?;
    Ok(config)
}

fn config_toml(dir: &Path, socket: &Path) -> String {
    let d = dir.display();
    let s = socket.display();
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
]

[grpc]
  address = "{s}"

[ttrpc]
  address = "{s}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  enable_selinux = false

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "native"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "{d}/runc"

[plugins."io.containerd.grpc.v1.cri".cni]
  conf_dir = "{d}/cni"
  bin_dir = "{d}/cni"
"#
    )
}

fn spawn(dir: &Path, config: &Path) -> Result<std::process::Child, HarnessError> {
    let log =
        std::fs::File::create(dir.join("containerd.log")).map_err(|source| HarnessError::Io {
            what: "create containerd log",
            source,
        })?;
    let err = log.try_clone().map_err(|source| HarnessError::Io {
        what: "clone log",
        source,
    })?;
    std::process::Command::new("containerd")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|source| HarnessError::Io {
            what: "spawn containerd",
            source,
        })
}

/// Connects to the CRI socket once containerd answers on it.
async fn wait_for_socket(socket: &Path) -> Result<RuntimeServiceClient<Channel>, HarnessError> {
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(mut client) = connect(socket).await
            && client
                .version(k8s_cri::v1::VersionRequest::default())
                .await
                .is_ok()
        {
            return Ok(client);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(HarnessError::Start(format!(
                "no CRI answer on {}",
                socket.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A CRI client over `socket`.
pub async fn connect(
    socket: &Path,
) -> Result<RuntimeServiceClient<Channel>, tonic::transport::Error> {
    let path = socket.to_path_buf();
    let channel = Endpoint::from_static("http://[::1]:0")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await?;
    Ok(RuntimeServiceClient::new(channel))
}
