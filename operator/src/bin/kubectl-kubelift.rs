//! `kubectl kubelift`: plan, watch and steer kubelet rollouts from the command line.

use std::fmt::Write as _;

use clap::Parser;
use kubelift_operator::plugin::{self, Cli};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match plugin::run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            let mut chain = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                let _ = write!(chain, ": {cause}");
                source = cause.source();
            }
            eprintln!("error: {chain}");
            std::process::ExitCode::FAILURE
        }
    }
}
