//! The `hash` and `predict` commands: the restart-prediction model on the command line.
//!
//! Both read a Pod (or, for `hash`, a single Container) as JSON or YAML on stdin. JSON is hashed
//! from its raw text; YAML is first converted to JSON, which keeps every value but not every
//! spelling (`1.500` becomes `1.5`), as any YAML client does before the API server sees it.
//! Bad input ends with exit code 2 and a one-line message on stderr.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::ExitCode;

use kubelet_hash::{
    GoEscapes, HashError, HashOptions, KubeletVersion, StoredHashes, VersionError,
    container_names_and_json, hash, predict,
};

/// Arguments of `hash`.
#[derive(Debug, clap::Args)]
pub struct HashArgs {
    /// Kubelet version whose hash to compute, e.g. `v1.30.2`.
    #[arg(long)]
    kubelet_version: String,
    /// How the kubelet's Go toolchain escapes 0x08/0x0C: `legacy` or `go1.22`
    /// (default: `go1.22` from 1.30, `legacy` before).
    #[arg(long)]
    go_escapes: Option<String>,
    /// Compute `hashWithoutResources` (1.27–1.30 kubelets with in-place resize).
    #[arg(long)]
    without_resources: bool,
}

/// Arguments of `predict`.
#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// The running kubelet's version, e.g. `v1.30.6`.
    #[arg(long)]
    from: String,
    /// The target kubelet's version, e.g. `v1.31.2`.
    #[arg(long)]
    to: String,
    /// A container's stored hash as `NAME=HASH[,HASH_WITHOUT_RESOURCES]` (repeatable); with
    /// these the model is calibrated against the running kubelet instead of estimating.
    #[arg(long, value_name = "NAME=HASH")]
    stored: Vec<String>,
}

/// Why a command refused its input.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("failed to read stdin: {0}")]
    Read(#[from] std::io::Error),
    #[error("failed to read input: it is not UTF-8")]
    NotUtf8,
    #[error("failed to parse yaml: {0}")]
    Yaml(String),
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error("failed to parse --stored {0:?}: expected NAME=HASH[,HASH_WITHOUT_RESOURCES]")]
    Stored(String),
    #[error("failed to read the input as a Pod: it is a {0} (try `kubectl get pod NAME -o json`)")]
    NotAPod(String),
    #[error("failed to find a container: the Pod has no spec.containers")]
    NoContainers,
}

/// Runs `hash`.
pub fn run_hash(args: &HashArgs) -> ExitCode {
    finish(read_input().and_then(|input| hash_lines(args, &input)))
}

/// Runs `predict`.
pub fn run_predict(args: &PredictArgs) -> ExitCode {
    finish(read_input().and_then(|input| prediction_table(args, &input)))
}

/// Prints the output, or the error on one line with exit code 2.
fn finish(result: Result<String, CliError>) -> ExitCode {
    match result {
        Ok(output) => {
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(output.as_bytes())
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            let message = error.to_string();
            let one_line: Vec<&str> = message.lines().map(str::trim).collect();
            eprintln!("error: {}", one_line.join(" "));
            ExitCode::from(2)
        }
    }
}

/// Stdin as JSON text: JSON as is, YAML converted.
fn read_input() -> Result<String, CliError> {
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes)?;
    let text = String::from_utf8(bytes).map_err(|_| CliError::NotUtf8)?;
    as_json(text)
}

fn as_json(text: String) -> Result<String, CliError> {
    let looks_like_json = matches!(text.trim_start().chars().next(), Some('{' | '['));
    let json = if looks_like_json {
        text
    } else {
        let value: serde_json::Value =
            serde_saphyr::from_str(&text).map_err(|e| CliError::Yaml(e.to_string()))?;
        value.to_string()
    };
    refuse_other_kinds(&json)?;
    Ok(json)
}

/// A Deployment or any other object that names a kind other than Pod is refused: its containers
/// sit elsewhere, and its template is not what the kubelet hashes.
fn refuse_other_kinds(json: &str) -> Result<(), CliError> {
    #[derive(serde::Deserialize)]
    struct Kind {
        kind: Option<String>,
    }
    match serde_json::from_str::<Kind>(json) {
        Ok(Kind { kind: Some(kind) }) if kind != "Pod" => Err(CliError::NotAPod(kind)),
        _ => Ok(()),
    }
}

fn hash_lines(args: &HashArgs, input: &str) -> Result<String, CliError> {
    let kubelet: KubeletVersion = args.kubelet_version.parse()?;
    let go_escapes = args
        .go_escapes
        .as_deref()
        .map(str::parse::<GoEscapes>)
        .transpose()?;
    let options = HashOptions {
        go_escapes,
        without_resources: args.without_resources,
    };
    container_names_and_json(input)?
        .into_iter()
        .map(|(_, name, json)| Ok(format!("{name} {}\n", hash(&json, &kubelet, &options)?)))
        .collect()
}

fn prediction_table(args: &PredictArgs, input: &str) -> Result<String, CliError> {
    let from: KubeletVersion = args.from.parse()?;
    let to: KubeletVersion = args.to.parse()?;
    let stored = parse_stored(&args.stored)?;
    let prediction = predict(input, &from, &to, (!stored.is_empty()).then_some(&stored))?;
    if prediction.containers.is_empty() {
        return Err(CliError::NoContainers);
    }
    let mut rows = vec![
        [
            "CONTAINER",
            "KIND",
            "STORED",
            "CURRENT",
            "TARGET",
            "VERDICT",
        ]
        .map(String::from),
    ];
    for c in prediction.containers {
        let stored = c.stored.unwrap_or_else(|| "-".to_owned());
        let row = [
            c.name,
            c.kind.to_string(),
            stored,
            c.current,
            c.target,
            c.verdict.to_string(),
        ];
        rows.push(row);
    }
    Ok(render_table(&rows))
}

fn parse_stored(entries: &[String]) -> Result<BTreeMap<String, StoredHashes>, CliError> {
    let mut stored = BTreeMap::new();
    for entry in entries {
        let invalid = || CliError::Stored(entry.clone());
        let (name, hashes) = entry.split_once('=').ok_or_else(invalid)?;
        let (hash, without) = match hashes.split_once(',') {
            Some((hash, without)) => (hash, Some(without.to_owned())),
            None => (hashes, None),
        };
        if name.is_empty() || hash.is_empty() {
            return Err(invalid());
        }
        let hashes = StoredHashes {
            hash: Some(hash.to_owned()),
            hash_without_resources: without,
        };
        stored.insert(name.to_owned(), hashes);
    }
    Ok(stored)
}

/// Left-aligned columns separated by two spaces.
fn render_table(rows: &[[String; 6]]) -> String {
    let mut widths = [0; 6];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut output = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        output.push_str(cells.join("  ").trim_end());
        output.push('\n');
    }
    output
}
