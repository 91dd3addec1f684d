//! `kubelift-node-helper`: the privileged per-node agent.

use clap::Parser;

/// Upgrades this node's kubelet in place and proves no container restarted.
#[derive(Debug, Parser)]
#[command(name = "kubelift-node-helper", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    tracing_subscriber::fmt().json().init();
    tracing::info!("kubelift-node-helper starting");
}
