//! `kubelift-operator`: the rollout controller.

use clap::Parser;

/// Rolls a new kubelet out to a fleet of nodes, node by node, without restarting containers.
#[derive(Debug, Parser)]
#[command(name = "kubelift-operator", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    tracing_subscriber::fmt().json().init();
    tracing::info!("kubelift-operator starting");
}
