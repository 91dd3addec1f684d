//! `kubelift-node-helper`: the privileged per-node agent, and the restart-prediction commands.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod predict_cli;

/// Upgrades this node's kubelet in place and proves no container restarted.
#[derive(Debug, Parser)]
#[command(name = "kubelift-node-helper", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the hash each container would get from a kubelet version (reads a Pod or one
    /// Container, JSON or YAML, on stdin).
    Hash(predict_cli::HashArgs),
    /// Predict which containers of a pod a kubelet upgrade would restart (reads a Pod, JSON or
    /// YAML, on stdin).
    Predict(predict_cli::PredictArgs),
    /// Run the per-node agent: execute this node's `NodeUpgrade`s.
    Agent(Box<kubelift_node_helper::agent::AgentArgs>),
    /// Execute one `NodeUpgrade` from node-local input, without the API server (break-glass).
    Execute(Box<kubelift_node_helper::offline::ExecuteArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Hash(args) => predict_cli::run_hash(&args),
        Command::Predict(args) => predict_cli::run_predict(&args),
        Command::Agent(args) => kubelift_node_helper::agent::main(*args),
        Command::Execute(args) => kubelift_node_helper::offline::main(*args),
    }
}
