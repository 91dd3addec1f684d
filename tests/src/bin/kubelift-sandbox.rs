//! `kubelift-sandbox`: a whole kubelift rollout on one machine — the embedded API server, the
//! real operator, one real helper per node, kubelet emulators on simulated or real container
//! runtimes — shown live, then summarized. Exits 0 only when the rollout completed and no
//! container predicted `Preserved` restarted.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use kubelet_hash::KubeletVersion;
use kubelift_crds::ContainerPolicy;
use kubelift_node_helper::engine::error_chain;
use kubelift_testbed::sandbox::summary::render;
use kubelift_testbed::sandbox::{RuntimeKind, Sandbox, SandboxConfig, SandboxError, Summary};

/// Run a kubelet rollout with kubelift on simulated nodes on this machine.
#[derive(Debug, Parser)]
#[command(name = "kubelift-sandbox", version)]
struct Cli {
    /// Number of nodes (at least 1).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    nodes: u16,
    /// Kubelet version the nodes start at (`1.31`, `v1.31.4`; 1.16 or later).
    #[arg(long, default_value = "1.31", value_parser = parse_version)]
    from: String,
    /// Target kubelet version (1.16 or later).
    #[arg(long, default_value = "1.32", value_parser = parse_version)]
    to: String,
    /// Container policy: `Preserve`, `EvictIfRestart` or `Drain`.
    #[arg(long, default_value = "Preserve", value_parser = parse_policy)]
    policy: ContainerPolicy,
    /// The target kubelet honours kubelift's snapshot (`containers.snapshotAwareKubelet`).
    #[arg(long)]
    snapshot_aware: bool,
    /// Container runtime of the nodes.
    #[arg(long, value_enum, default_value_t = RuntimeKind::Simulated)]
    runtime: RuntimeKind,
    /// Apply the manifests in this directory instead of the demo workloads.
    #[arg(long)]
    workloads: Option<PathBuf>,
    /// Write the summary, with one entry per container, to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Keep serving after the summary (until Ctrl-C), for `kubectl`.
    #[arg(long)]
    keep: bool,
    /// Where to keep the sandbox's files (default: a temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// `verify.settleSeconds` of the plan.
    #[arg(long, default_value_t = 2)]
    settle_seconds: i64,
    /// `rollout.maxUnavailable` of the plan (at least 1).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    max_unavailable: u16,
}

fn parse_policy(text: &str) -> Result<ContainerPolicy, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| format!("expected Preserve, EvictIfRestart or Drain, got {text:?}"))
}

/// A version the restart model can hash, completed to a full version (`1.31` → `v1.31.4`).
fn parse_version(text: &str) -> Result<String, String> {
    let full = full_version(text);
    let version: KubeletVersion = full.parse().map_err(|error| format!("{error}"))?;
    if (version.major, version.minor) < (1, 16) {
        return Err(format!(
            "{full} is older than v1.16, which kubelift does not model"
        ));
    }
    Ok(full)
}

/// `1.31` → `v1.31.4`, `1.32` → `v1.32.1`: a released patch of each minor; full versions as given.
fn full_version(text: &str) -> String {
    let bare = text.trim_start_matches('v');
    match bare.split('.').count() {
        2 => format!("v{bare}.{}", default_patch(bare)),
        _ => format!("v{bare}"),
    }
}

fn default_patch(minor: &str) -> u32 {
    match minor {
        "1.30" => 8,
        "1.31" => 4,
        "1.32" => 1,
        _ => 0,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: failed to start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error @ SandboxError::Interrupted { .. }) => {
            eprintln!("{error}; everything the sandbox started is stopped");
            ExitCode::from(130)
        }
        Err(error) => {
            eprintln!("error: {}", error_chain(&error));
            ExitCode::from(2)
        }
    }
}

fn config(cli: &Cli) -> SandboxConfig {
    let mut config = SandboxConfig::new(usize::from(cli.nodes));
    config.from.clone_from(&cli.from);
    config.to.clone_from(&cli.to);
    config.policy = cli.policy;
    config.snapshot_aware = cli.snapshot_aware;
    config.runtime = cli.runtime;
    config.workloads.clone_from(&cli.workloads);
    config.dir.clone_from(&cli.dir);
    config.settle_seconds = cli.settle_seconds;
    config.max_unavailable = serde_json::json!(cli.max_unavailable);
    config.print = true;
    config
}

async fn run(cli: Cli) -> Result<bool, SandboxError> {
    check_arguments(&cli)?;

    let config = config(&cli);
    let header = format!(
        "kubelift sandbox: kubelet {} -> {} under {:?} on {} ({:?} runtime)",
        config.from,
        config.to,
        config.policy,
        nodes(config.nodes),
        config.runtime
    );
    let mut sandbox = Sandbox::create(config).await?;
    println!("{header}");

    let outcome = tokio::select! {
        outcome = boot_and_roll_out(&mut sandbox, &cli) => outcome,
        signal = interrupted() => Err(SandboxError::Interrupted { signal }),
    };
    if outcome.is_ok() && cli.keep {
        println!("keeping the sandbox running; Ctrl-C to stop");
        interrupted().await;
    }

    sandbox.stop().await;
    outcome.map(|summary| summary.success())
}

async fn boot_and_roll_out(sandbox: &mut Sandbox, cli: &Cli) -> Result<Summary, SandboxError> {
    sandbox.boot().await?;
    println!(
        "cluster up; while it runs: KUBECONFIG={} kubectl get ku,nu",
        sandbox.kubeconfig().display()
    );

    let summary = sandbox.run_rollout().await?;
    report(cli, &summary)?;
    Ok(summary)
}

/// Refuses, before anything starts, what could only fail later: a target that is not newer than
/// the start (the sandbox shows upgrades; nodes at or above the target would be skipped), and a
/// summary file that cannot be written.
fn check_arguments(cli: &Cli) -> Result<(), SandboxError> {
    let parsed = |text: &str| text.parse::<KubeletVersion>().ok();
    if parsed(&cli.to) <= parsed(&cli.from) {
        return Err(SandboxError::Arguments(format!(
            "--to {} is not newer than --from {}: the sandbox shows an upgrade",
            cli.to, cli.from
        )));
    }

    match &cli.json {
        Some(path) => check_writable(path),
        None => Ok(()),
    }
}

/// Opens `path` for writing without changing it; removes it again when it did not exist.
fn check_writable(path: &std::path::Path) -> Result<(), SandboxError> {
    let existed = path.exists();
    let opened = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path);
    opened.map_err(|source| SandboxError::Io {
        what: format!("write {}", path.display()),
        source,
    })?;

    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// `1 node`, `3 nodes`.
fn nodes(count: usize) -> String {
    if count == 1 {
        "1 node".to_owned()
    } else {
        format!("{count} nodes")
    }
}

/// Resolves on the first SIGINT or SIGTERM, with the signal's name.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    let (Ok(mut interrupt), Ok(mut terminate)) = handlers else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    }
}

fn report(cli: &Cli, summary: &Summary) -> Result<(), SandboxError> {
    print!("{}", render(summary));
    for entry in summary
        .entries
        .iter()
        .filter(|e| e.restarted && e.predicted == "Preserved")
    {
        println!(
            "  UNEXPECTED RESTART: {} {} on {}",
            entry.pod, entry.container, entry.node
        );
    }
    let verdict = if summary.success() { "OK" } else { "FAILED" };
    println!("result: {verdict}");
    if let Some(path) = &cli.json {
        let text = serde_json::to_vec_pretty(summary).unwrap_or_default();
        std::fs::write(path, text).map_err(|source| SandboxError::Io {
            what: format!("write {}", path.display()),
            source,
        })?;
    }
    Ok(())
}
