//! `kubelift-bench`: bounded benchmarks of the testbed. `apiserver` loads the embedded API
//! server with concurrent writers and watchers over loopback HTTP and reports throughput and
//! watch fan-out latency. `rollout` and `scale` measure DESIGN §5's performance targets: a whole
//! sandbox rollout's overhead, API requests and footprint, and the operator's memory on a large
//! fleet. Each prints one summary block and, with `--json PATH`, writes the same numbers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};
use kubelift_node_helper::engine::error_chain;
use kubelift_testbed::apiserver::bench::{self, LoadSpec};
use kubelift_testbed::bench::{BenchError, rollout, scale};
use kubelift_testbed::sandbox::Binaries;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(version, about = "Bounded benchmarks of the kubelift testbed")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// N watchers and M writers against the embedded API server over loopback HTTP.
    Apiserver {
        /// Concurrent watch streams.
        #[arg(long, default_value_t = 50)]
        watchers: usize,
        /// Concurrent writers.
        #[arg(long, default_value_t = 8)]
        writers: usize,
        /// Writes per writer.
        #[arg(long, default_value_t = 500)]
        writes_per_writer: usize,
    },
    /// A sandbox rollout 1.31 -> 1.32 (Preserve, soakSeconds 0, maxUnavailable 10%) with a
    /// fixed kubelet restart time: overhead vs ideal, requests per node, footprint.
    Rollout {
        /// Nodes in the sandbox.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..))]
        nodes: u16,
        /// Milliseconds every target kubelet takes to start.
        #[arg(long, default_value_t = 1000)]
        kubelet_restart_ms: u64,
        /// `verify.settleSeconds` of the plan.
        #[arg(long, default_value_t = 0)]
        settle_seconds: i64,
        /// Seconds over which the idle helpers' CPU time is measured.
        #[arg(long, default_value_t = 5)]
        idle_seconds: u64,
        /// Write the report as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// The real operator against an API server holding a large fleet (no kubelets, no
    /// helpers): peak memory and requests once it has synced and acted.
    Scale {
        /// Nodes in the fleet.
        #[arg(long, default_value_t = 5000)]
        nodes: usize,
        /// Pods, bound round-robin to the nodes.
        #[arg(long, default_value_t = 150_000)]
        pods: usize,
        /// Seconds the operator keeps running after it acted, before it is measured.
        #[arg(long, default_value_t = 5)]
        linger_seconds: u64,
        /// Write the report as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

/// Failures of the command line.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("failed to run the apiserver benchmark")]
    Apiserver(#[from] bench::BenchError),
    #[error("failed to run the benchmark")]
    Bench(#[from] BenchError),
    #[error("failed to write {path}")]
    Json {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match dispatch(Args::parse().command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", error_chain(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> Result<(), CliError> {
    match command {
        Command::Apiserver {
            watchers,
            writers,
            writes_per_writer,
        } => {
            let spec = LoadSpec {
                watchers,
                writers,
                writes_per_writer,
            };
            apiserver(spec).await
        }
        Command::Rollout {
            nodes,
            kubelet_restart_ms,
            settle_seconds,
            idle_seconds,
            json,
        } => {
            let spec = rollout::RolloutSpec {
                nodes: usize::from(nodes),
                kubelet_restart: Duration::from_millis(kubelet_restart_ms),
                settle_seconds,
                idle_window: Duration::from_secs(idle_seconds),
            };
            let report = rollout::run(&spec).await?;
            print!("{}", rollout::render(&report));
            write_json(json.as_deref(), &report)
        }
        Command::Scale {
            nodes,
            pods,
            linger_seconds,
            json,
        } => {
            let spec = scale::ScaleSpec {
                nodes,
                pods,
                linger: Duration::from_secs(linger_seconds),
                bins: Binaries::beside_current_exe(),
            };
            let report = scale::run(&spec).await?;
            print!("{}", scale::render(&report));
            write_json(json.as_deref(), &report)
        }
    }
}

async fn apiserver(spec: LoadSpec) -> Result<(), CliError> {
    let report = bench::run(spec).await?;
    let [p50, p90, p99, max] = report.latency;
    println!(
        "apiserver: {} watchers, {} writers, \
         {} writes in {:.2?} = {:.0} writes/s; \
         {} watch events; fan-out latency \
         p50 {p50:.2?} p90 {p90:.2?} p99 {p99:.2?} max {max:.2?}",
        spec.watchers,
        spec.writers,
        report.writes,
        report.write_time,
        report.writes_per_second(),
        report.events,
    );
    Ok(())
}

fn write_json(path: Option<&Path>, report: &impl serde::Serialize) -> Result<(), CliError> {
    let Some(path) = path else { return Ok(()) };
    let text = serde_json::to_vec_pretty(report).unwrap_or_default();
    std::fs::write(path, text).map_err(|source| CliError::Json {
        path: path.to_owned(),
        source,
    })
}
