//! `kubectl kubelift`: plan, watch and steer kubelet rollouts from the command line. Errors are
//! one line on stderr and exit code 1; an API refusal is shown by the API server's own message.

use std::fmt::Write as _;

use clap::Parser;
use kubelift_operator::plugin::{self, Cli, Error};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match plugin::run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) if error.is_closed_output() => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", describe(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line; the API server's message stands for its whole Status.
fn describe(error: &Error) -> String {
    let mut line = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(kube::Error::Api(status)) = cause.downcast_ref::<kube::Error>() {
            let _ = write!(line, ": {} ({})", status.message, status.reason);
            break;
        }
        let _ = write!(line, ": {cause}");
        source = cause.source();
    }
    line
}
