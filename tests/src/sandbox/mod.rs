//! The sandbox: a whole kubelift rollout on one machine. It starts the embedded API server, the
//! cluster controllers, a loopback artifact server, and per node a host-root directory with
//! stand-in kubelets, a container runtime, a supervisor running the kubelet emulator and a real
//! `kubelift-node-helper agent`; then the real `kubelift-operator`. It applies the CRDs, the
//! workloads and a `KubeletUpgrade`, follows the rollout and compares every container before and
//! after. Every process it starts is stopped by its PID on [`Sandbox::stop`].

mod node;
mod process;
pub mod rollout;
pub mod summary;
pub mod workloads;

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, PostParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client};
use kubelift_crds::{ContainerPolicy, KubeletUpgrade, PlanPhase};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::apiserver::{ApiServer, ApiServerConfig, RequestRecord};
use crate::artifact_server::ArtifactServer;
use crate::cluster::ClusterControllers;
pub use node::{NodeSetup, SandboxNode, standin_script};
pub use process::Process;
pub use rollout::Ending;
pub use summary::{PodRecord, Summary};

/// Generous bound for anything the sandbox waits on, on a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(180);

/// The plan the sandbox applies.
pub const PLAN: &str = "sandbox-upgrade";

/// Failures of the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The arguments ask for something the sandbox cannot show.
    #[error("{0}")]
    Arguments(String),
    /// A binary the sandbox runs is missing.
    #[error("failed to find {0}: run `cargo build --workspace --bins` first")]
    NotBuilt(PathBuf),
    /// A file operation failed.
    #[error("failed to {what}")]
    Io {
        /// What was attempted.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A process could not be started.
    #[error("failed to start {name}")]
    Spawn {
        /// Which process.
        name: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A node's supervisor did not come up.
    #[error("failed to start node {node} (see {log})")]
    NodeStart {
        /// The node.
        node: String,
        /// Its supervisor's log.
        log: PathBuf,
    },
    /// The API server did not start.
    #[error("failed to start the API server")]
    ApiServer(#[from] crate::apiserver::ApiServerError),
    /// A simulated runtime did not start.
    #[error("failed to start a simulated CRI runtime")]
    CriSim(#[from] crate::cri_sim::CriSimError),
    /// A containerd did not start.
    #[error("failed to start containerd")]
    Containerd(#[from] crate::containerd::HarnessError),
    /// An API call failed.
    #[error("failed to {what}")]
    Api {
        /// What was attempted.
        what: String,
        /// The cause.
        #[source]
        error: kube::Error,
    },
    /// A workload object could not be created.
    #[error("failed to create {what}")]
    Object {
        /// The object.
        what: String,
        /// The cause.
        #[source]
        error: kube::Error,
    },
    /// A manifest could not be parsed.
    #[error("failed to parse {path}: {message}")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A manifest names no usable `apiVersion` and `kind`.
    #[error("failed to read the kind of {what}: {message}")]
    Kind {
        /// The object.
        what: String,
        /// Why.
        message: String,
    },
    /// Something did not happen in time.
    #[error("failed to wait for {what}: timed out")]
    Timeout {
        /// What was awaited.
        what: String,
    },
    /// A signal stopped the sandbox before its summary.
    #[error("interrupted by {signal}")]
    Interrupted {
        /// The signal's name.
        signal: &'static str,
    },
}

/// Which container runtime the nodes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeKind {
    /// The in-memory CRI server (fast, any node count).
    Simulated,
    /// A real containerd and runc per node.
    Containerd,
}

/// The binaries the sandbox runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `kubelift-kubelet-emulator`.
    pub emulator: PathBuf,
    /// `kubelift-node-helper`.
    pub helper: PathBuf,
    /// `kubelift-operator`.
    pub operator: PathBuf,
}

impl Binaries {
    /// The binaries in `dir`.
    #[must_use]
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            emulator: dir.join("kubelift-kubelet-emulator"),
            helper: dir.join("kubelift-node-helper"),
            operator: dir.join("kubelift-operator"),
        }
    }

    /// The binaries next to the running executable (`target/<profile>/`, also from
    /// `target/<profile>/deps/` where test executables live), or in `KUBELIFT_BIN_DIR`.
    #[must_use]
    pub fn beside_current_exe() -> Self {
        if let Some(dir) = std::env::var_os("KUBELIFT_BIN_DIR") {
            return Self::in_dir(Path::new(&dir));
        }
        let exe = std::env::current_exe().unwrap_or_default();
        let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
        if dir.ends_with("deps") {
            dir.pop();
        }
        Self::in_dir(&dir)
    }

    /// Fails naming the first binary that is missing.
    pub fn check(&self) -> Result<(), SandboxError> {
        for path in [&self.emulator, &self.helper, &self.operator] {
            if !path.exists() {
                return Err(SandboxError::NotBuilt(path.clone()));
            }
        }
        Ok(())
    }
}

/// Everything a sandbox run is configured with.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Number of nodes.
    pub nodes: usize,
    /// Kubelet version the nodes start at (`vX.Y.Z`).
    pub from: String,
    /// Target version (`vX.Y.Z`).
    pub to: String,
    /// Container policy of the plan.
    pub policy: ContainerPolicy,
    /// `containers.snapshotAwareKubelet`, and the target kubelets run snapshot-aware.
    pub snapshot_aware: bool,
    /// The runtime of every node.
    pub runtime: RuntimeKind,
    /// Manifests to apply instead of the demo set.
    pub workloads: Option<PathBuf>,
    /// `verify.settleSeconds`.
    pub settle_seconds: i64,
    /// `rollout.soakSeconds`.
    pub soak_seconds: i64,
    /// `rollout.maxUnavailable`.
    pub max_unavailable: Value,
    /// Publish a digest that does not match the artifact.
    pub wrong_sha256: bool,
    /// Index of a node whose target kubelet never becomes healthy.
    pub never_healthy_node: Option<usize>,
    /// Where the binaries are.
    pub bins: Binaries,
    /// Where the sandbox keeps its files (a fresh temporary directory when `None`).
    pub dir: Option<PathBuf>,
    /// Print progress on stdout.
    pub print: bool,
    /// How long the rollout may take.
    pub timeout: Duration,
}

impl SandboxConfig {
    /// The default sandbox: `nodes` nodes, 1.31 → 1.32 under `Preserve`, simulated runtime.
    #[must_use]
    pub fn new(nodes: usize) -> Self {
        Self {
            nodes,
            from: "v1.31.4".to_owned(),
            to: "v1.32.1".to_owned(),
            policy: ContainerPolicy::Preserve,
            snapshot_aware: false,
            runtime: RuntimeKind::Simulated,
            workloads: None,
            settle_seconds: 2,
            soak_seconds: 0,
            max_unavailable: json!(1),
            wrong_sha256: false,
            never_healthy_node: None,
            bins: Binaries::beside_current_exe(),
            dir: None,
            print: false,
            timeout: Duration::from_secs(900),
        }
    }
}

/// A running sandbox.
pub struct Sandbox {
    config: SandboxConfig,
    dir: PathBuf,
    server: ApiServer,
    kubeconfig: PathBuf,
    artifacts: ArtifactServer,
    controllers: Option<ClusterControllers>,
    nodes: Vec<SandboxNode>,
    operator: Option<Process>,
    operator_port: u16,
    objects: Vec<Value>,
    /// Last, so that it is removed after every process above has stopped.
    _temp: Option<tempfile::TempDir>,
}

impl Sandbox {
    /// Starts the API server, the controllers, the nodes (Ready, with their helpers), the
    /// operator, and the workloads (every pod running). On failure whatever had started is
    /// stopped again.
    pub async fn start(config: SandboxConfig) -> Result<Self, SandboxError> {
        let mut sandbox = Self::create(config).await?;

        match Box::pin(sandbox.boot()).await {
            Ok(()) => Ok(sandbox),
            Err(error) => {
                sandbox.stop().await;
                Err(error)
            }
        }
    }

    /// Starts the API server (with the CRDs), the cluster controllers and the artifact server:
    /// no node yet. [`Sandbox::boot`] starts the rest.
    pub async fn create(config: SandboxConfig) -> Result<Self, SandboxError> {
        config.bins.check()?;
        let objects = match &config.workloads {
            Some(dir) => workloads::read_dir(dir)?,
            None => workloads::demo(),
        };
        let (temp, dir) = sandbox_dir(config.dir.as_deref())?;
        let server = ApiServer::start(ApiServerConfig::default()).await?;
        let kubeconfig = dir.join("kubeconfig");
        server
            .write_kubeconfig(&kubeconfig)
            .map_err(|source| SandboxError::Io {
                what: "write the kubeconfig".into(),
                source,
            })?;
        apply_crds(&server.client()).await?;
        let controllers = crate::cluster::spawn(server.client());
        let artifacts = ArtifactServer::start()
            .await
            .map_err(|source| SandboxError::Io {
                what: "start the artifact server".into(),
                source,
            })?;
        Ok(Self {
            objects,
            config,
            _temp: temp,
            dir,
            server,
            kubeconfig,
            artifacts,
            controllers: Some(controllers),
            nodes: Vec::new(),
            operator: None,
            operator_port: 0,
        })
    }

    /// Starts the nodes (Ready, with their helpers), the operator and the workloads (every pod
    /// running). On failure, or when the future is dropped, [`Sandbox::stop`] stops what started.
    pub async fn boot(&mut self) -> Result<(), SandboxError> {
        self.write_kubelets()?;
        self.start_nodes().await?;
        wait_nodes_ready(&self.client(), self.config.nodes).await?;
        for node in &mut self.nodes {
            node.start_helper(&self.config.bins, &self.kubeconfig)?;
        }
        self.start_operator()?;
        workloads::apply(&self.client(), &self.objects).await?;
        let expected = workloads::expected_pods(&self.objects, self.config.nodes);
        wait_pods_running(&self.client(), expected).await?;
        self.wait_operator_ready().await
    }

    /// A client of the API server.
    #[must_use]
    pub fn client(&self) -> Client {
        self.server.client()
    }

    /// The API server (its request log, faults).
    #[must_use]
    pub fn server(&self) -> &ApiServer {
        &self.server
    }

    /// The kubeconfig `kubectl` can use while the sandbox runs.
    #[must_use]
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The sandbox's directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The nodes.
    pub fn nodes_mut(&mut self) -> &mut [SandboxNode] {
        &mut self.nodes
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// The operator process, while it runs.
    pub fn operator(&mut self) -> Option<&mut Process> {
        self.operator.as_mut()
    }

    /// Starts the operator (again).
    pub fn start_operator(&mut self) -> Result<(), SandboxError> {
        let port = node::free_port()?;
        let mut command = Command::new(&self.config.bins.operator);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args([
                "--metrics-port",
                &port.to_string(),
                "--metrics-address",
                "127.0.0.1",
            ])
            .args(["--log-format", "text"])
            .env("RUST_LOG", "info");
        let log = self.dir.join("operator.log");
        self.operator = Some(Process::spawn("operator", command, &log)?);
        self.operator_port = port;
        Ok(())
    }

    /// Waits until the operator answers `/readyz` with 200 (its caches are synced), so that a
    /// plan applied next is seen by a running controller. Polls: the endpoint has no watch.
    pub async fn wait_operator_ready(&mut self) -> Result<(), SandboxError> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::time::Instant::now() < deadline {
            if http_status(self.operator_port, "/readyz").await == Some(200) {
                return Ok(());
            }
            if self.operator.as_mut().is_none_or(Process::exited) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = self.dir.join("operator.log");
        Err(SandboxError::Timeout {
            what: format!("the operator to be ready (see {})", log.display()),
        })
    }

    /// Every pod as it is now.
    pub async fn pods(&self) -> Result<Vec<Pod>, SandboxError> {
        list(&self.client(), "pods").await
    }

    /// Applies the plan, follows it, and summarizes what happened to every container.
    pub async fn run_rollout(&mut self) -> Result<Summary, SandboxError> {
        let before = self.record().await?;
        let started = tokio::time::Instant::now();
        self.apply_plan().await?;
        self.finish(&before, started).await
    }

    /// Every pod's containers as they are now (the "before" of a summary).
    pub async fn record(&self) -> Result<Vec<PodRecord>, SandboxError> {
        Ok(self.pods().await?.iter().map(PodRecord::from_pod).collect())
    }

    /// Follows the applied plan until it ends, then summarizes against `before`.
    pub async fn finish(
        &self,
        before: &[PodRecord],
        started: tokio::time::Instant,
    ) -> Result<Summary, SandboxError> {
        let timeout = self.config.timeout;
        let (ending, plan) =
            rollout::follow(&self.client(), PLAN, timeout, self.config.print).await?;
        let duration_seconds = started.elapsed().as_secs_f64();
        self.summarize(before, &ending, &plan, duration_seconds)
            .await
    }

    async fn summarize(
        &self,
        before: &[PodRecord],
        ending: &Ending,
        plan: &KubeletUpgrade,
        duration_seconds: f64,
    ) -> Result<Summary, SandboxError> {
        let status = plan.status.clone().unwrap_or_default();
        let phase = match ending {
            Ending::Finished(phase) if status.blocked > 0 => format!("{phase:?} (nodes held)"),
            Ending::Finished(phase) => format!("{phase:?}"),
            Ending::Held => "Held".to_owned(),
        };
        let complete = *ending == Ending::Finished(PlanPhase::Complete);
        let outcome = summary::PlanOutcome {
            plan: PLAN.to_owned(),
            from: self.config.from.clone(),
            to: self.config.to.clone(),
            policy: format!("{:?}", self.config.policy),
            completed: complete && status.blocked == 0 && status.failed == 0,
            phase,
            message: status.message,
            duration_seconds,
            evictions: self.accepted_evictions(),
        };
        let after = self.pods().await?;
        let nodes: Vec<Node> = list(&self.client(), "nodes").await?;
        let upgrades = rollout::node_upgrades(&self.client(), PLAN).await?;
        Ok(summary::summarize(
            outcome, before, &after, &nodes, &upgrades,
        ))
    }

    /// Evictions the API server accepted (from its request log).
    fn accepted_evictions(&self) -> usize {
        let requests = self.server.requests();
        let accepted =
            |r: &&RequestRecord| r.subresource.as_deref() == Some("eviction") && r.code < 300;
        requests.iter().filter(accepted).count()
    }

    /// Applies the `KubeletUpgrade` the configuration describes.
    pub async fn apply_plan(&self) -> Result<(), SandboxError> {
        create_plan(&self.client(), self.plan_json()).await
    }

    /// The `KubeletUpgrade` as JSON.
    #[must_use]
    pub fn plan_json(&self) -> Value {
        let config = &self.config;
        let script = self.kubelet_script(&config.to);
        let mut sha256 = crate::standin_kubelet::sha256_hex(script.as_bytes());
        if config.wrong_sha256 {
            sha256 = crate::standin_kubelet::sha256_hex(b"not the artifact");
        }
        let url = self.artifacts.url(&node::standin_name(&config.to));
        json!({
            "apiVersion": "kubelift.dev/v1alpha1",
            "kind": "KubeletUpgrade",
            "metadata": {"name": PLAN},
            "spec": {
                "version": config.to,
                "binary": {"url": url, "sha256": sha256},
                "rollout": {
                    "maxUnavailable": config.max_unavailable,
                    "canary": 1,
                    "soakSeconds": config.soak_seconds,
                },
                "containers": {
                    "policy": config.policy,
                    "snapshotAwareKubelet": config.snapshot_aware,
                },
                "verify": {
                    "settleSeconds": config.settle_seconds,
                    "readyTimeoutSeconds": 60,
                    "prepareTimeoutSeconds": 120,
                },
                "drain": {"timeoutSeconds": 120},
                "failurePolicy": {"maxFailedNodes": 0, "rollback": true},
            },
        })
    }

    fn kubelet_script(&self, version: &str) -> String {
        standin_script(&self.config.bins.emulator, version)
    }

    /// Writes both stand-in kubelets into `<dir>/kubelets/` and publishes the target's.
    fn write_kubelets(&self) -> Result<(), SandboxError> {
        let kubelets = self.dir.join("kubelets");
        std::fs::create_dir_all(&kubelets).map_err(|source| SandboxError::Io {
            what: format!("create {}", kubelets.display()),
            source,
        })?;
        for version in [&self.config.from, &self.config.to] {
            let script = self.kubelet_script(version);
            let name = node::standin_name(version);
            node::write_executable(&kubelets.join(&name), script.as_bytes())?;
            let _url = self.artifacts.publish(&name, script.into_bytes());
        }
        Ok(())
    }

    async fn start_nodes(&mut self) -> Result<(), SandboxError> {
        let zones = ["zone-a", "zone-b", "zone-c"];
        for index in 0..self.config.nodes {
            let setup = NodeSetup {
                name: format!("node-{:02}", index + 1),
                zone: zones[index % zones.len()].to_owned(),
                version: self.config.from.clone(),
                runtime: self.config.runtime,
            };
            let dir = self.dir.join(&setup.name);
            let kubelets = self.dir.join("kubelets");
            let bins = &self.config.bins;
            let node = SandboxNode::start(&setup, &dir, &kubelets, bins, &self.kubeconfig).await;
            self.nodes.push(node?);
            self.set_target_flags(index)?;
        }
        Ok(())
    }

    /// Flags of the target kubelet on node `index`: snapshot-aware, or never healthy.
    fn set_target_flags(&self, index: usize) -> Result<(), SandboxError> {
        let mut flags = Vec::new();
        if self.config.snapshot_aware {
            flags.push("--snapshot-aware");
        }
        if self.config.never_healthy_node == Some(index) {
            flags.push("--fault never-healthy");
        }
        self.nodes[index].set_kubelet_flags(&self.config.to, &flags.join(" "))
    }

    /// Stops the operator, every node's helper, supervisor and runtime, by PID; then removes the
    /// sandbox's directory unless it was given.
    pub async fn stop(mut self) {
        if let Some(operator) = self.operator.as_mut() {
            operator.stop().await;
        }
        for node in &mut self.nodes {
            node.stop().await;
        }
        drop(self.controllers.take());
        let _stopped = self.server.shutdown().await;
    }
}

/// The HTTP status of `GET <path>` on 127.0.0.1:`port`, `None` when nothing answers.
async fn http_status(port: u16, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

fn sandbox_dir(dir: Option<&Path>) -> Result<(Option<tempfile::TempDir>, PathBuf), SandboxError> {
    let failed = |source| SandboxError::Io {
        what: "create the sandbox directory".into(),
        source,
    };
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(failed)?;
        return Ok((None, dir.to_owned()));
    }
    let temp = tempfile::Builder::new()
        .prefix("kubelift-sandbox-")
        .tempdir()
        .map_err(failed)?;
    let path = temp.path().to_owned();
    Ok((Some(temp), path))
}

/// Creates the `KubeletUpgrade` written as JSON in `plan`.
pub async fn create_plan(client: &Client, plan: Value) -> Result<(), SandboxError> {
    let plan: KubeletUpgrade = serde_json::from_value(plan).map_err(|e| SandboxError::Api {
        what: "build the KubeletUpgrade".into(),
        error: kube::Error::SerdeError(e),
    })?;
    let api: Api<KubeletUpgrade> = Api::all(client.clone());
    api.create(&PostParams::default(), &plan)
        .await
        .map_err(|error| SandboxError::Api {
            what: "create the KubeletUpgrade".into(),
            error,
        })?;
    Ok(())
}

/// Creates kubelift's CRDs (those already there are left as they are).
pub async fn apply_crds(client: &Client) -> Result<(), SandboxError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in kubelift_crds::manifest::crds() {
        match api.create(&PostParams::default(), &crd).await {
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            done => {
                done.map_err(|source| SandboxError::Api {
                    what: "create the CRDs".into(),
                    error: source,
                })?;
            }
        }
    }
    Ok(())
}

async fn list<K>(client: &Client, what: &str) -> Result<Vec<K>, SandboxError>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    let api: Api<K> = Api::all(client.clone());
    let listed = api.list(&ListParams::default()).await;
    Ok(listed
        .map_err(|source| SandboxError::Api {
            what: format!("list {what}"),
            error: source,
        })?
        .items)
}

/// Waits (by watch) until `condition` holds over every object of kind `K`.
async fn wait_all<K>(
    client: &Client,
    what: &str,
    condition: impl Fn(&[K]) -> bool,
) -> Result<(), SandboxError>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + Sync + 'static,
    K: serde::de::DeserializeOwned,
{
    let api: Api<K> = Api::all(client.clone());
    let (reader, writer) = reflector::store();
    let mut events = reflector(writer, watcher(api, watcher::Config::default()))
        .applied_objects()
        .boxed();
    let waited = tokio::time::timeout(PATIENCE, async {
        loop {
            let objects: Vec<K> = reader.state().iter().map(|o| (**o).clone()).collect();
            if condition(&objects) {
                return;
            }
            if let Ok(None) = tokio::time::timeout(Duration::from_secs(2), events.next()).await {
                return;
            }
        }
    });
    waited.await.map_err(|_| SandboxError::Timeout {
        what: what.to_owned(),
    })
}

async fn wait_nodes_ready(client: &Client, count: usize) -> Result<(), SandboxError> {
    let ready = |node: &Node| {
        let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref());
        conditions
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    };
    wait_all(client, "every node to be Ready", |nodes: &[Node]| {
        nodes.iter().filter(|n| ready(n)).count() >= count
    })
    .await
}

/// Whether a pod runs with a container ID for each of its containers.
#[must_use]
pub fn pod_running(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    let statuses = status.and_then(|s| s.container_statuses.as_ref());
    let wanted = pod.spec.as_ref().map_or(0, |s| s.containers.len());
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && statuses.is_some_and(|list| {
            list.len() == wanted && list.iter().all(|c| c.container_id.is_some())
        })
}

async fn wait_pods_running(client: &Client, expected: usize) -> Result<(), SandboxError> {
    wait_all(client, "every workload pod to run", |pods: &[Pod]| {
        let live: Vec<&Pod> = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        live.len() >= expected && live.iter().all(|p| pod_running(p))
    })
    .await
}
