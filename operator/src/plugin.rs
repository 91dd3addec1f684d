//! `kubectl kubelift`: plan, watch and steer rollouts. `plan` shows the order, the batches and,
//! per container, whether it would restart — from the helpers' dry-run reports when the plan ran
//! as a dry run, otherwise from the API-side model (labelled an estimate).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use kubelet_hash::KubeletVersion;
use kubelift_crds::constants::{EXCLUDE_LABEL, RESUME_ANNOTATION, RETRY_ANNOTATION};
use kubelift_crds::{KubeletUpgrade, NodeUpgrade, Verdict};
use serde_json::json;

use crate::planner::{NodeView, max_unavailable, ordered, selector_matches};
use crate::reconciler::{NodeFields, view};

/// Width of the progress bar in `status`.
const BAR: usize = 30;

/// Plan, watch and steer kubelet rollouts.
#[derive(Debug, Parser)]
#[command(name = "kubectl-kubelift", version)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// A plugin command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the node order, the batches and which containers would restart.
    Plan {
        /// The KubeletUpgrade manifest (YAML or JSON).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
    /// Show a plan's progress and each node's phase.
    Status {
        /// The plan.
        name: String,
        /// Keep refreshing until interrupted.
        #[arg(short, long)]
        watch: bool,
    },
    /// Start no new nodes (sets `spec.paused`).
    Pause {
        /// The plan.
        name: String,
    },
    /// Release an approval gate (annotates `kubelift.dev/resume=<generation>`).
    Resume {
        /// The plan.
        name: String,
        /// Also set `spec.paused` to false.
        #[arg(long)]
        unpause: bool,
    },
    /// Retry failed nodes (bumps `kubelift.dev/retry`).
    Retry {
        /// The plan.
        name: String,
    },
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or failed.
    #[error("the kubernetes api request failed")]
    Kube(#[from] kube::Error),
    /// The manifest could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The manifest's path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not a KubeletUpgrade.
    #[error("failed to parse the manifest as a KubeletUpgrade")]
    Parse(#[from] serde_saphyr::Error),
    /// The manifest's spec breaks the API's rules.
    #[error("the manifest's spec is invalid")]
    Invalid(#[from] kubelift_crds::InvalidSpec),
    /// Standard output could not be written.
    #[error("failed to write to standard output")]
    Output(#[source] std::io::Error),
}

impl Error {
    /// Whether the reader of standard output went away (`| head`): not worth a message.
    #[must_use]
    pub fn is_closed_output(&self) -> bool {
        matches!(self, Self::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// Writes `text` to standard output at once.
fn emit(text: &str) -> Result<(), Error> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(Error::Output)
}

/// Run one command.
pub async fn run(cli: Cli) -> Result<(), Error> {
    let client = Client::try_default().await?;
    let plans = Api::<KubeletUpgrade>::all(client.clone());
    match cli.command {
        Command::Plan { file } => plan(&client, &file).await,
        Command::Status { name, watch } => loop {
            emit(&status(&client, &name).await?)?;
            if !watch {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            emit("\x1b[2J\x1b[H")?;
        },
        Command::Pause { name } => {
            merge(&plans, &name, json!({"spec": {"paused": true}})).await?;
            emit(&format!("kubeletupgrade/{name} paused\n"))
        }
        Command::Resume { name, unpause } => resume(&plans, &name, unpause).await,
        Command::Retry { name } => {
            let plan = plans.get(&name).await?;
            let next = plan
                .annotations()
                .get(RETRY_ANNOTATION)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                + 1;
            let patch = json!({"metadata": {"annotations": {RETRY_ANNOTATION: next.to_string()}}});
            merge(&plans, &name, patch).await?;
            emit(&format!("kubeletupgrade/{name}: retry {next} requested\n"))
        }
    }
}

async fn resume(plans: &Api<KubeletUpgrade>, name: &str, unpause: bool) -> Result<(), Error> {
    let plan = plans.get(name).await?;
    let generation = plan.metadata.generation.unwrap_or(1).to_string();
    let mut patch = json!({"metadata": {"annotations": {RESUME_ANNOTATION: generation}}});
    let mut text = String::new();
    if unpause {
        patch["spec"] = json!({"paused": false});
    } else if plan.spec.paused {
        text.push_str(
            "note: spec.paused is true; change it where the plan is managed, or pass --unpause\n",
        );
    }
    merge(plans, name, patch).await?;
    let _ = writeln!(
        text,
        "kubeletupgrade/{name} resumed at generation {generation}"
    );
    emit(&text)
}

async fn merge(
    plans: &Api<KubeletUpgrade>,
    name: &str,
    patch: serde_json::Value,
) -> Result<(), Error> {
    plans
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

/// `status`: a progress bar and a line per node.
async fn status(client: &Client, name: &str) -> Result<String, Error> {
    let plan = Api::<KubeletUpgrade>::all(client.clone()).get(name).await?;
    let status = plan.status.clone().unwrap_or_default();
    let filled = usize::try_from(status.upgraded).unwrap_or(0) * BAR
        / usize::try_from(status.targeted.max(1)).unwrap_or(1);
    let mut text = format!(
        "{name}  {}  [{}{}] {}\n",
        status.phase.map(|p| format!("{p:?}")).unwrap_or_default(),
        "#".repeat(filled.min(BAR)),
        "-".repeat(BAR - filled.min(BAR)),
        status.progress.unwrap_or_default(),
    );
    if let Some(message) = status.message {
        let _ = writeln!(text, "  {message}");
    }
    let node_upgrades = Api::<NodeUpgrade>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    for nu in node_upgrades.items.iter().filter(|nu| nu.spec.plan == name) {
        let report = nu.status.as_ref();
        let _ = writeln!(
            text,
            "  {:<30} {:<8?} {:<12} {}",
            nu.spec.node_name,
            nu.spec.stage,
            report
                .and_then(|s| s.phase)
                .map_or_else(|| "-".to_owned(), |p| format!("{p:?}")),
            nu.spec
                .hold_reason
                .clone()
                .or_else(|| report.and_then(|s| s.reason.clone()))
                .unwrap_or_default(),
        );
    }
    Ok(text)
}

/// `plan -f`: order, batches, and restart predictions.
async fn plan(client: &Client, file: &std::path::Path) -> Result<(), Error> {
    let text = std::fs::read_to_string(file).map_err(|source| Error::Read {
        path: file.to_owned(),
        source,
    })?;
    let plan: KubeletUpgrade = serde_saphyr::from_str(&text)?;
    plan.spec.validate()?;
    let spec = &plan.spec;
    let nodes: Vec<NodeView> = Api::<NodeFields>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(view)
        .collect();
    let selected: Vec<&NodeView> = nodes
        .iter()
        .filter(|n| selector_matches(spec.node_selector.as_ref(), &n.labels))
        .collect();
    let included: Vec<&NodeView> = selected
        .iter()
        .copied()
        .filter(|n| n.labels.get(EXCLUDE_LABEL).map(String::as_str) != Some("true"))
        .collect();
    let targeted: Vec<&NodeView> = included
        .iter()
        .copied()
        .filter(|n| {
            n.kubelet_version.trim_start_matches('v') != spec.version.trim_start_matches('v')
        })
        .collect();
    let order = ordered(&targeted, spec.rollout.order, None);
    let width = max_unavailable(&spec.rollout.max_unavailable, targeted.len());
    let canary = usize::try_from(spec.rollout.canary).unwrap_or(0);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "kubeletupgrade/{} to {}: {} nodes to upgrade",
        plan.name_any(),
        spec.version,
        order.len()
    );
    if order.is_empty() {
        let _ = writeln!(
            out,
            "  the nodeSelector matches {} of {} nodes; {} excluded by {EXCLUDE_LABEL}; \
             {} already at {}",
            selected.len(),
            nodes.len(),
            selected.len() - included.len(),
            included.len() - targeted.len(),
            spec.version
        );
    }
    let reports = dry_run_reports(client, &plan.name_any()).await?;
    let mut batch = 0;
    let mut index = 0;
    while index < order.len() {
        let size = if index < canary { 1 } else { width };
        batch += 1;
        let label = if index < canary { "canary" } else { "batch" };
        let _ = writeln!(out, "{label} {batch}:");
        for node in order.iter().skip(index).take(size) {
            let _ = writeln!(out, "  {} ({})", node.name, node.kubelet_version);
            let report = reports.get(&node.name);
            out.push_str(&predictions(client, node, &spec.version, report).await?);
        }
        index += size;
    }
    emit(&out)
}

/// The helpers' dry-run reports of the plan already applied under this name, by node.
async fn dry_run_reports(
    client: &Client,
    plan: &str,
) -> Result<BTreeMap<String, NodeUpgrade>, Error> {
    let all = Api::<NodeUpgrade>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    Ok(all
        .items
        .into_iter()
        .filter(|nu| {
            nu.spec.plan == plan && nu.status.as_ref().is_some_and(|s| s.prediction.is_some())
        })
        .map(|nu| (nu.spec.node_name.clone(), nu))
        .collect())
}

async fn predictions(
    client: &Client,
    node: &NodeView,
    target: &str,
    report: Option<&NodeUpgrade>,
) -> Result<String, Error> {
    let mut out = String::new();
    if let Some(status) = report.and_then(|nu| nu.status.as_ref()) {
        let counts = status.prediction.clone().unwrap_or_default();
        let _ = writeln!(
            out,
            "    helper report: {} preserved, {} will restart, {} unknown",
            counts.preserved, counts.will_restart, counts.unknown
        );
        for c in status
            .containers
            .iter()
            .filter(|c| c.verdict != Verdict::Preserved)
        {
            let _ = writeln!(
                out,
                "    {}/{}/{}: {:?}",
                c.pod_namespace, c.pod_name, c.container, c.verdict
            );
        }
        return Ok(out);
    }
    let (Ok(current), Ok(target)) = (
        KubeletVersion::from_str(&node.kubelet_version),
        KubeletVersion::from_str(target),
    ) else {
        out.push_str("    (no estimate: unparsable versions)\n");
        return Ok(out);
    };
    let params = ListParams::default().fields(&format!("spec.nodeName={}", node.name));
    for pod in Api::<Pod>::all(client.clone()).list(&params).await?.items {
        let Ok(json) = serde_json::to_string(&pod) else {
            continue;
        };
        match kubelet_hash::predict(&json, &current, &target, None) {
            Ok(prediction) => {
                for c in prediction.containers {
                    let _ = writeln!(
                        out,
                        "    {}/{}/{}: {} (estimate)",
                        pod.namespace().unwrap_or_default(),
                        pod.name_any(),
                        c.name,
                        c.verdict
                    );
                }
            }
            Err(error) => {
                let _ = writeln!(
                    out,
                    "    {}/{}: no estimate ({error})",
                    pod.namespace().unwrap_or_default(),
                    pod.name_any()
                );
            }
        }
    }
    Ok(out)
}
