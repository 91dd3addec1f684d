//! Writes the custom resource definitions of kubelift's API as one YAML stream on standard output:
//! `cargo run -p kubelift-crds --bin crdgen > manifests/crds.yaml`.

use std::io::{self, Write};
use std::process::ExitCode;

use kubelift_crds::manifest::{self, ManifestError};

const USAGE: &str = "usage: crdgen > manifests/crds.yaml\n\n\
                     Writes the CustomResourceDefinitions of kubelift's API to standard output.\n";

/// Why crdgen stopped.
#[derive(Debug, thiserror::Error)]
enum CrdgenError {
    #[error(transparent)]
    Render(#[from] ManifestError),
    #[error("failed to write CRDs to standard output")]
    Write(#[from] io::Error),
    #[error("unexpected argument {0:?}\n\n{USAGE}")]
    Argument(String),
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&error);
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), CrdgenError> {
    if let Some(argument) = std::env::args().nth(1) {
        if argument == "--help" || argument == "-h" {
            return write_stdout(USAGE);
        }
        return Err(CrdgenError::Argument(argument));
    }

    write_stdout(&manifest::crds_yaml()?)
}

/// Writes through a locked stdout so a closed pipe is an error to report, not a panic.
fn write_stdout(text: &str) -> Result<(), CrdgenError> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// Prints the error with its chain of causes.
fn report(error: &CrdgenError) {
    eprint!("crdgen: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        eprint!(": {cause}");
        source = cause.source();
    }
    eprintln!();
}
