//! The agent: watches this node's `NodeUpgrade`s and runs them.

use std::process::ExitCode;

use crate::settings::NodeSettings;

/// Arguments of `agent`.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// Node-local settings.
    #[command(flatten)]
    pub node: NodeSettings,
}

/// Entry point of `agent`.
#[must_use]
pub fn main(_args: AgentArgs) -> ExitCode {
    ExitCode::SUCCESS
}
