//! Shared fixtures for the emulator tests: stand-in kubelet scripts that exec the emulator with
//! their version, a simulated node (host root, simulated CRI runtime, supervisor process), and
//! watch-driven waits on the embedded API server.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test fixtures fail loudly"
)]

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use k8s_cri::v1 as cri;
use kube::Api;
use kube::runtime::wait::await_condition;
use kubelift_testbed::apiserver::{ApiServer, ApiServerConfig};
use kubelift_testbed::cri_sim::CriSimServer;
use kubelift_testbed::emulator::{self, CriClient};
use kubelift_testbed::supervisor::{self, Report};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Generous bound for anything awaited in a test on a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// The emulator binary built for this test run.
pub fn emulator_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kubelift-kubelet-emulator"))
}

/// A server with default settings.
pub async fn server() -> ApiServer {
    ApiServer::start(ApiServerConfig::default())
        .await
        .expect("server starts")
}

/// The bytes of a stand-in kubelet of `version` with extra emulator flags.
pub fn standin_kubelet(version: &str, flags: &str) -> String {
    let bin = emulator_bin();
    format!(
        "#!/bin/sh\nexec '{}' run --version {version} {flags} \"$@\"\n",
        bin.display()
    )
}

/// Writes an executable file atomically (temp file, then rename), as a kubelet swap does.
pub fn install_executable(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let staged = path.with_extension("staged");
    std::fs::write(&staged, text).unwrap();
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&staged, path).unwrap();
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The HTTP status of `GET /healthz` on 127.0.0.1:port, `None` when nothing answers.
pub async fn healthz_status(port: u16) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

/// Polls `/healthz` until it answers 200 (nothing to watch: it is the kubelet's own endpoint).
pub async fn wait_healthy(port: u16) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while healthz_status(port).await != Some(200) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "healthz on {port} never became 200"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (by watch) until the named object satisfies `condition`, and returns it.
pub async fn wait_for<K>(api: &Api<K>, name: &str, condition: impl Fn(&K) -> bool) -> K
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let accept = move |object: Option<&K>| object.is_some_and(&condition);
    let found = tokio::time::timeout(PATIENCE, await_condition(api.clone(), name, accept)).await;
    found
        .expect("condition met in time")
        .expect("watch works")
        .expect("object exists")
}

/// One simulated node: host root, simulated CRI runtime and a supervisor running its kubelet.
pub struct Node {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub healthz_port: u16,
    pub cri: Option<CriSimServer>,
    supervisor: tokio::process::Child,
}

impl Node {
    /// Starts a node whose kubelet path holds `kubelet` (a script), under a supervisor.
    pub async fn start(server: &ApiServer, name: &str, kubelet: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        install_executable(&root.join("usr/bin/kubelet"), kubelet);
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        let cri = CriSimServer::start(&root.join("run/containerd/containerd.sock")).unwrap();
        let healthz_port = free_port();
        let supervisor = tokio::process::Command::new(emulator_bin())
            .args(["supervise", "--restart-delay-ms", "200", "--log"])
            .arg(dir.path().join("kubelet.log"))
            .arg("--socket")
            .arg(dir.path().join("supervisor.sock"))
            .arg("--program")
            .arg(root.join("usr/bin/kubelet"))
            .env("KUBELIFT_NODE_NAME", name)
            .env("KUBELIFT_KUBECONFIG", &kubeconfig)
            .env("KUBELIFT_CRI_SOCKET", cri.socket())
            .env("KUBELIFT_HEALTHZ_PORT", healthz_port.to_string())
            .env("KUBELIFT_HOST_ROOT", &root)
            .env("KUBELIFT_SYNC_INTERVAL_MS", "200")
            .env("KUBELIFT_HEARTBEAT_INTERVAL_MS", "1000")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let node = Node {
            name: name.to_owned(),
            dir,
            healthz_port,
            cri: Some(cri),
            supervisor,
        };
        node.wait_for_socket().await;
        node
    }

    async fn wait_for_socket(&self) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !self.socket().exists() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "supervisor never listened"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn kubelet_path(&self) -> PathBuf {
        self.root().join("usr/bin/kubelet")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("supervisor.sock")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kubelet.log")).unwrap_or_default()
    }

    /// `kubelift-kubelet-emulator ctl --socket <socket> <command>`, as the node helper runs it.
    pub async fn ctl(&self, command: &str) -> Report {
        let output = tokio::process::Command::new(emulator_bin())
            .arg("ctl")
            .arg("--socket")
            .arg(self.socket())
            .arg(command)
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "ctl {command}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// The supervisor's status through the library client.
    pub async fn status(&self) -> Report {
        supervisor::control(&self.socket(), "status").await.unwrap()
    }

    pub async fn runtime(&self) -> CriClient {
        emulator::connect_cri(self.cri.as_ref().unwrap().socket())
            .await
            .unwrap()
    }

    /// Stops the supervisor (and with it the kubelet) by its PID, then the runtime.
    pub async fn stop(mut self) {
        if let Some(pid) = self.supervisor.id() {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap());
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        }
        let waited = tokio::time::timeout(PATIENCE, self.supervisor.wait()).await;
        assert!(waited.is_ok(), "supervisor stopped");
        if let Some(cri) = self.cri.take() {
            cri.shutdown().await.unwrap();
        }
    }
}

/// Running kubelet containers in a runtime, keyed by container name.
pub async fn running_containers(runtime: &CriClient) -> HashMap<String, cri::Container> {
    let request = cri::ListContainersRequest {
        filter: Some(cri::ContainerFilter {
            state: Some(cri::ContainerStateValue {
                state: cri::ContainerState::ContainerRunning.into(),
            }),
            ..Default::default()
        }),
    };
    let containers = runtime
        .clone()
        .list_containers(request)
        .await
        .unwrap()
        .into_inner()
        .containers;
    let name = |c: &cri::Container| c.labels["io.kubernetes.container.name"].clone();
    containers.into_iter().map(|c| (name(&c), c)).collect()
}

/// The kubelet-hash vectors shipped with the model.
pub fn vectors() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kubelet-hash/testdata/vectors.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
