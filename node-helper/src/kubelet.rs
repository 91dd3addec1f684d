//! Asks a kubelet binary for its version (`<kubelet> --version` prints `Kubernetes vX.Y.Z`) and
//! probes the running kubelet's health endpoint.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

/// How long a `--version` call may take before the binary counts as broken.
const VERSION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one health probe may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors of reading a kubelet's version.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// The binary could not be run.
    #[error("failed to run {path} --version")]
    Run {
        /// The binary.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The binary did not answer in time.
    #[error("failed to get an answer from {path} --version in time")]
    Timeout {
        /// The binary.
        path: PathBuf,
    },
    /// The binary printed something other than `Kubernetes vX.Y.Z`, or failed.
    #[error("failed to read a version from {path} --version: {output:?}")]
    Unrecognised {
        /// The binary.
        path: PathBuf,
        /// What it printed (trimmed).
        output: String,
    },
}

/// Runs `<path> --version` and returns the version, e.g. `v1.32.1`.
pub async fn binary_version(path: &Path) -> Result<String, KubeletError> {
    let run = Command::new(path)
        .arg("--version")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(VERSION_TIMEOUT, run)
        .await
        .map_err(|_| KubeletError::Timeout {
            path: path.to_path_buf(),
        })?
        .map_err(|source| KubeletError::Run {
            path: path.to_path_buf(),
            source,
        })?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    match parse_version(&text) {
        Some(version) if output.status.success() => Ok(version),
        _ => Err(KubeletError::Unrecognised {
            path: path.to_path_buf(),
            output: text,
        }),
    }
}

/// Parses `Kubernetes v1.32.1` (possibly with a build suffix such as `-eks-1`) into `v1.32.1…`.
#[must_use]
pub fn parse_version(text: &str) -> Option<String> {
    let version = text.lines().next()?.strip_prefix("Kubernetes ")?.trim();
    let valid = version.starts_with('v') && version[1..].split('.').take(2).count() == 2;
    valid.then(|| version.to_owned())
}

/// Whether the kubelet's health endpoint answers `200 OK` right now.
pub async fn healthy(client: &reqwest::Client, url: &str) -> bool {
    let probe = client.get(url).timeout(HEALTH_TIMEOUT).send().await;
    matches!(probe, Ok(response) if response.status().is_success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_line_is_parsed_with_and_without_a_build_suffix() {
        assert_eq!(
            parse_version("Kubernetes v1.32.1\n").as_deref(),
            Some("v1.32.1")
        );
        assert_eq!(
            parse_version("Kubernetes v1.29.3-eks-1").as_deref(),
            Some("v1.29.3-eks-1")
        );
        assert_eq!(parse_version("kubelet 1.32"), None);
        assert_eq!(parse_version("Kubernetes 1.32.1"), None);
    }
}
