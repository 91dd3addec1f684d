//! The agent: one per node. Watches only this node's `NodeUpgrade`s (field selector on
//! `spec.nodeName`), runs Prepare and Execute as the operator asks (DESIGN contracts 2, 6, 10,
//! 11), reports every phase in status by server-side apply, heartbeats, emits Events on
//! transitions, holds its finalizer from Execute until a terminal phase, serves `/healthz` and
//! `/metrics`, and at start-up finishes (or rolls back) any attempt its journal left unfinished.

pub mod api;
pub mod prepare;
mod status;
mod work;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use kube::ResourceExt;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kubelift_crds::constants::NODE_NAME_FIELD;
use kubelift_crds::{NodeUpgrade, Stage};

use crate::cluster::ClusterView;
use crate::engine::{Engine, error_chain};
use crate::journal::Step;
use crate::metrics::Metrics;
use crate::settings::{NodeSettings, SettingsError};
use api::ApiWriter;

/// The User-Agent of the helper's API requests (the API server's request log groups by it).
pub const USER_AGENT: &str = concat!("kubelift-node-helper/", env!("CARGO_PKG_VERSION"));

/// Arguments of `agent`.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// Node-local settings.
    #[command(flatten)]
    pub node: NodeSettings,
    /// Kubeconfig file; without it, the in-cluster configuration (or `KUBECONFIG`) is used.
    #[arg(long, env = "KUBELIFT_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Port for `/healthz` and `/metrics` (0 disables them).
    #[arg(long, env = "KUBELIFT_METRICS_PORT", default_value_t = 9478)]
    pub metrics_port: u16,
    /// Address the metrics port binds to.
    #[arg(long, env = "KUBELIFT_METRICS_ADDRESS", default_value_t = Ipv4Addr::UNSPECIFIED)]
    pub metrics_address: Ipv4Addr,
    /// Seconds between heartbeats in the status of unfinished `NodeUpgrade`s.
    #[arg(long, env = "KUBELIFT_HEARTBEAT_SECONDS", default_value_t = 30)]
    pub heartbeat_seconds: u64,
}

/// Errors that stop the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The settings are unusable.
    #[error("failed to apply the settings")]
    Settings(#[from] SettingsError),
    /// No API client could be built.
    #[error("failed to configure the API client")]
    Client(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The journal could not be read.
    #[error("failed to read the journal")]
    Journal(#[from] crate::journal::JournalError),
    /// The watch ended.
    #[error("failed to keep watching NodeUpgrades")]
    Watch,
}

/// Entry point of `agent`.
#[must_use]
pub fn main(args: AgentArgs) -> ExitCode {
    crate::runtime::block_on(async move {
        match Box::pin(run(args)).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(error = %error_chain(&error), "agent stopped");
                ExitCode::FAILURE
            }
        }
    })
}

/// Runs the agent until its watch ends.
pub async fn run(args: AgentArgs) -> Result<(), AgentError> {
    let client = client(&args).await?;
    let metrics = Arc::new(Metrics::default());
    if args.metrics_port != 0 {
        let addr = SocketAddr::from((args.metrics_address, args.metrics_port));
        tokio::spawn(crate::serve::serve(addr, metrics.clone()));
    }
    let agent = Agent::new(&args, client, metrics)?;
    agent.resume_orphans().await?;
    Box::pin(agent.watch()).await
}

/// Builds the API client from the kubeconfig or the environment, with the helper's User-Agent.
async fn client(args: &AgentArgs) -> Result<kube::Client, AgentError> {
    let boxed = |e: Box<dyn std::error::Error + Send + Sync>| AgentError::Client(e);
    let mut config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig =
                kube::config::Kubeconfig::read_from(path).map_err(|e| boxed(e.into()))?;
            let options = kube::config::KubeConfigOptions::default();
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| boxed(e.into()))?
        }
        None => kube::Config::infer().await.map_err(|e| boxed(e.into()))?,
    };
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(USER_AGENT),
    ));
    kube::Client::try_from(config).map_err(|e| boxed(e.into()))
}

/// The agent's state: the engine and the API writer.
#[derive(Debug)]
pub struct Agent {
    engine: Engine,
    writer: ApiWriter,
    node: String,
    heartbeat: Duration,
    /// The (UID, generation, attempt) this process already prepared, so the watch event of its
    /// own `Preparing` write does not start Prepare again; empty after a restart, which redoes
    /// an interrupted Prepare.
    prepared: std::sync::Mutex<std::collections::BTreeSet<(String, i64, i32)>>,
}

impl Agent {
    fn new(
        args: &AgentArgs,
        client: kube::Client,
        metrics: Arc<Metrics>,
    ) -> Result<Self, AgentError> {
        let ctx = args.node.context()?;
        let node = ctx.node_name.clone();
        let engine = Engine::new(ctx, ClusterView::Api(client.clone()), metrics, None);
        let writer = ApiWriter::new(client, &node);
        let heartbeat = Duration::from_secs(args.heartbeat_seconds.max(1));
        let prepared = std::sync::Mutex::default();
        Ok(Self {
            engine,
            writer,
            node,
            heartbeat,
            prepared,
        })
    }

    /// Finishes attempts whose `NodeUpgrade` is gone, replaced, or moved on to another attempt:
    /// an unfinished install is rolled back.
    async fn resume_orphans(&self) -> Result<(), AgentError> {
        for journal in self.engine.store().all()? {
            if journal.step.is_terminal() {
                continue;
            }
            let current = self
                .writer
                .api()
                .get_opt(&journal.name)
                .await
                .ok()
                .flatten();
            let same_attempt = |u: &NodeUpgrade| {
                u.uid().as_deref() == Some(journal.uid.as_str())
                    && u32::try_from(u.spec.attempt).ok() == Some(journal.attempt)
            };
            if current.as_ref().is_some_and(same_attempt) {
                continue;
            }
            let (name, step) = (&journal.name, journal.step);
            tracing::warn!(%name, ?step, "finishing an orphaned attempt");
            if let Err(error) = self.engine.abandon(journal).await {
                let error = error_chain(&error);
                tracing::error!(%error, "failed to finish an orphaned attempt");
            }
        }
        Ok(())
    }

    /// Handles every change to this node's `NodeUpgrade`s, heartbeating in between.
    async fn watch(&self) -> Result<(), AgentError> {
        let selector = format!("{NODE_NAME_FIELD}={}", self.node);
        let config = watcher::Config::default().fields(&selector);
        let (known, store) = reflector::store();
        let stream = reflector(store, watcher(self.writer.api().clone(), config))
            .default_backoff()
            .applied_objects();
        let mut stream = std::pin::pin!(stream);
        let mut ticker = tokio::time::interval(self.heartbeat);
        tracing::info!(node = %self.node, "watching NodeUpgrades");
        loop {
            tokio::select! {
                next = stream.try_next() => match next {
                    Ok(Some(upgrade)) => Box::pin(self.handle(upgrade)).await,
                    Ok(None) => return Err(AgentError::Watch),
                    Err(error) => tracing::warn!(%error, "watch error"),
                },
                _ = ticker.tick() => self.heartbeat_all(&known).await,
            }
        }
    }

    /// Decides what `upgrade` needs from this node and does it.
    async fn handle(&self, upgrade: NodeUpgrade) {
        if upgrade.spec.node_name != self.node {
            return;
        }
        let span = tracing::info_span!("node_upgrade", name = %upgrade.name_any());
        let _entered = span.enter();
        let executing = self.unfinished_journal(&upgrade);
        match upgrade.spec.stage {
            _ if executing => self.execute(upgrade).await,
            _ if upgrade.metadata.deletion_timestamp.is_some() => self.release(&upgrade).await,
            Stage::Prepare if self.needs_prepare(&upgrade) => self.prepare(upgrade).await,
            Stage::Execute if status::awaiting_operator(&upgrade) => {}
            Stage::Execute if !status::finished_attempt(&upgrade) => {
                Box::pin(self.execute_latest(upgrade)).await;
            }
            Stage::Execute | Stage::Hold => self.release(&upgrade).await,
            Stage::Prepare => {}
        }
    }

    /// Executes `upgrade`, unless this node's journal says its attempt already ended: then the
    /// event may be one queued while the attempt ran (its status stale), and the stored object
    /// decides — released when its status shows the end, else reported from the journal.
    async fn execute_latest(&self, upgrade: NodeUpgrade) {
        if !self.journal_step(&upgrade).is_some_and(Step::is_terminal) {
            return Box::pin(self.execute(upgrade)).await;
        }

        match self.writer.api().get(&upgrade.name_any()).await {
            Ok(latest) if status::finished_attempt(&latest) => self.release(&latest).await,
            Ok(latest) => Box::pin(self.execute(latest)).await,
            Err(error) => tracing::warn!(%error, "failed to read the NodeUpgrade"),
        }
    }

    /// Whether an attempt of `upgrade` started changing the node and has not finished.
    fn unfinished_journal(&self, upgrade: &NodeUpgrade) -> bool {
        self.journal_step(upgrade)
            .is_some_and(|step| !step.is_terminal() && step > Step::Started)
    }

    /// The step this node's journal records for the attempt of `upgrade`, if any.
    fn journal_step(&self, upgrade: &NodeUpgrade) -> Option<Step> {
        let (Some(uid), Ok(attempt)) = (upgrade.uid(), u32::try_from(upgrade.spec.attempt)) else {
            return None;
        };
        let journal = self.engine.store().load(&uid, attempt).ok().flatten();
        journal.map(|j| j.step)
    }

    /// Whether Prepare is due and was not started by this process for this generation.
    fn needs_prepare(&self, upgrade: &NodeUpgrade) -> bool {
        let key = (
            upgrade.uid().unwrap_or_default(),
            upgrade.metadata.generation.unwrap_or_default(),
            upgrade.spec.attempt,
        );
        let mut started = self
            .prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        status::needs_prepare(upgrade) && started.insert(key)
    }

    async fn release(&self, upgrade: &NodeUpgrade) {
        if let Err(error) = self.writer.release(upgrade).await {
            tracing::warn!(error = %error_chain(&error), "failed to release the finalizer");
        }
    }

    /// Heartbeats every unsettled `NodeUpgrade`. The watch's copies only tell whether any may be
    /// unsettled (no request at all when idle); the beat itself starts from a fresh list, since
    /// those copies can lag behind this helper's own last status write.
    async fn heartbeat_all(&self, known: &reflector::Store<NodeUpgrade>) {
        if known.state().iter().all(|u| status::is_settled(u)) {
            return;
        }

        let selector = format!("{NODE_NAME_FIELD}={}", self.node);
        let params = kube::api::ListParams::default().fields(&selector);
        let Ok(list) = self.writer.api().list(&params).await else {
            return;
        };
        for upgrade in list.items.iter().filter(|u| !status::is_settled(u)) {
            self.beat(upgrade).await;
        }
    }

    async fn beat(&self, upgrade: &NodeUpgrade) {
        let mut current = upgrade.status.clone().unwrap_or_default();
        current.last_heartbeat_time = Some(api::now());
        if let Err(error) = self.writer.apply_status(upgrade, &current).await {
            tracing::warn!(error = %error_chain(&error), "failed to heartbeat");
        }
    }
}
