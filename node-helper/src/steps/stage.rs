//! Stage: put the target kubelet binary, verified, next to the kubelet (same directory, so the
//! install's rename never crosses a filesystem). Downloads with capped exponential backoff or
//! copies a node-local file, checks free space first, checks the sha256 (a mismatch names both
//! digests and leaves the node untouched), sets the executable bit, and requires the staged
//! binary's `--version` to print the target. Idempotent: an already staged, matching file is kept.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use kubelift_crds::BinaryArtifact;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::context::NodeContext;
use crate::kubelet::{self, KubeletError};

/// Extra free space kept beyond what the staged binary and the backup need.
const SPACE_MARGIN: u64 = 16 * 1024 * 1024;

/// Errors of staging; each names what a person needs to act.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The artifact names neither a URL nor a path, or both.
    #[error("failed to pick an artifact source: exactly one of url and path must be set")]
    Source,
    /// Downloading failed after all retries.
    #[error("failed to download the kubelet from {url}")]
    Download {
        /// The URL.
        url: String,
        /// The last error.
        #[source]
        source: reqwest::Error,
    },
    /// Reading or writing a file failed.
    #[error("failed to write the staged kubelet {path}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not enough free space in the kubelet's directory.
    #[error("failed to find free space in {dir}: {needed} bytes needed, {available} available")]
    Space {
        /// The directory.
        dir: PathBuf,
        /// Bytes needed.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// The artifact's digest differs from the one the plan declares.
    #[error("failed to verify the kubelet artifact: sha256 is {actual}, expected {expected}")]
    Digest {
        /// Declared digest.
        expected: String,
        /// Digest of what was fetched.
        actual: String,
    },
    /// The staged binary does not run or prints no version.
    #[error("failed to run the staged kubelet")]
    Version(#[source] KubeletError),
    /// The staged binary is another version than the target.
    #[error(
        "failed to confirm the staged kubelet's version: it reports {actual}, expected {expected}"
    )]
    WrongVersion {
        /// Target version.
        expected: String,
        /// What the binary prints.
        actual: String,
    },
}

impl StageError {
    /// `PascalCase` reason for status, Events and metrics.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Source => "InvalidArtifact",
            Self::Download { .. } => "DownloadFailed",
            Self::Io { .. } => "StageFailed",
            Self::Space { .. } => "InsufficientDiskSpace",
            Self::Digest { .. } => "ChecksumMismatch",
            Self::Version(_) | Self::WrongVersion { .. } => "ArtifactVersionMismatch",
        }
    }
}

/// Where the staged binary for `sha256` lives: beside the kubelet, hidden, named by digest.
#[must_use]
pub fn staged_path(ctx: &NodeContext, sha256: &str) -> PathBuf {
    let name = ctx.paths.kubelet.file_name().map_or_else(
        || "kubelet".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let short = sha256.get(..12).unwrap_or(sha256);
    ctx.paths
        .kubelet_dir()
        .join(format!(".{name}.kubelift-staged-{short}"))
}

/// Stages and checks the artifact; returns the staged path.
pub async fn stage(
    ctx: &NodeContext,
    artifact: &BinaryArtifact,
    version: &str,
) -> Result<PathBuf, StageError> {
    let expected = artifact.sha256.to_ascii_lowercase();
    let staged = staged_path(ctx, &expected);
    if file_sha256(&staged).await.ok().as_deref() != Some(expected.as_str()) {
        fetch(ctx, artifact, &staged).await?;
        check_digest(&staged, &expected).await?;
    }
    make_executable(&staged)?;
    check_version(&staged, version).await?;
    tracing::info!(path = %staged.display(), %version, "kubelet staged");
    Ok(staged)
}

/// Removes staged files that the current attempt no longer needs.
pub fn discard(ctx: &NodeContext, sha256: &str) {
    let staged = staged_path(ctx, &sha256.to_ascii_lowercase());
    if let Err(error) = std::fs::remove_file(&staged)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %staged.display(), %error, "failed to remove staged kubelet");
    }
}

async fn fetch(
    ctx: &NodeContext,
    artifact: &BinaryArtifact,
    staged: &Path,
) -> Result<(), StageError> {
    match (&artifact.url, &artifact.path) {
        (Some(url), None) => download(ctx, url, staged).await,
        (None, Some(path)) => copy_local(ctx, &ctx.paths.resolve(Path::new(path)), staged),
        _ => Err(StageError::Source),
    }
}

fn copy_local(ctx: &NodeContext, source: &Path, staged: &Path) -> Result<(), StageError> {
    let io = |source| StageError::Io {
        path: staged.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(source).map_err(io)?.len();
    ensure_space(ctx, size)?;
    std::fs::copy(source, staged).map_err(io)?;
    std::fs::File::open(staged)
        .and_then(|f| f.sync_all())
        .map_err(io)
}

async fn download(ctx: &NodeContext, url: &str, staged: &Path) -> Result<(), StageError> {
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(30))
        .with_max_times(ctx.download_attempts.saturating_sub(1))
        .with_jitter();
    (|| download_once(ctx, url, staged))
        .retry(backoff)
        .when(|error| matches!(error, StageError::Download { .. }))
        .notify(|error, delay| tracing::warn!(%url, ?delay, %error, "download failed, retrying"))
        .await
}

async fn download_once(ctx: &NodeContext, url: &str, staged: &Path) -> Result<(), StageError> {
    let http = |source| StageError::Download {
        url: url.to_owned(),
        source,
    };
    let mut response = ctx
        .http
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(http)?;
    if let Some(size) = response.content_length() {
        ensure_space(ctx, size)?;
    }
    let io = |source| StageError::Io {
        path: staged.to_path_buf(),
        source,
    };
    let mut file = tokio::fs::File::create(staged).await.map_err(io)?;
    while let Some(chunk) = response.chunk().await.map_err(http)? {
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.sync_all().await.map_err(io)
}

/// Fails when the kubelet's directory cannot hold the staged binary and a backup of the kubelet.
fn ensure_space(ctx: &NodeContext, artifact_size: u64) -> Result<(), StageError> {
    let dir = ctx.paths.kubelet_dir();
    let stat = rustix::fs::statvfs(&dir).map_err(|e| StageError::Io {
        path: dir.clone(),
        source: e.into(),
    })?;
    let available = stat.f_bavail.saturating_mul(stat.f_frsize);
    let backup = std::fs::metadata(&ctx.paths.kubelet).map_or(0, |m| m.len());
    let needed = artifact_size
        .saturating_add(backup)
        .saturating_add(SPACE_MARGIN);
    if available < needed {
        return Err(StageError::Space {
            dir,
            needed,
            available,
        });
    }
    Ok(())
}

async fn check_digest(staged: &Path, expected: &str) -> Result<(), StageError> {
    let actual = file_sha256(staged).await.map_err(|source| StageError::Io {
        path: staged.to_path_buf(),
        source,
    })?;
    if actual == expected {
        return Ok(());
    }
    let _ = std::fs::remove_file(staged);
    Err(StageError::Digest {
        expected: expected.to_owned(),
        actual,
    })
}

fn make_executable(staged: &Path) -> Result<(), StageError> {
    let mode = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(staged, mode).map_err(|source| StageError::Io {
        path: staged.to_path_buf(),
        source,
    })
}

async fn check_version(staged: &Path, expected: &str) -> Result<(), StageError> {
    let actual = kubelet::binary_version(staged)
        .await
        .map_err(StageError::Version)?;
    if actual == expected {
        return Ok(());
    }
    Err(StageError::WrongVersion {
        expected: expected.to_owned(),
        actual,
    })
}

/// The lowercase hex sha256 of a file's contents.
pub async fn file_sha256(path: &Path) -> std::io::Result<String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(path)?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher)?;
        Ok(hex::encode(hasher.finalize()))
    })
    .await
    .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

    use super::*;
    use crate::context::testing::context;

    #[tokio::test]
    async fn a_node_local_artifact_with_a_wrong_digest_is_refused_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        std::fs::write(
            dir.path().join("kubelet-new"),
            b"#!/bin/sh\necho Kubernetes v1.32.0\n",
        )
        .unwrap();
        let artifact = BinaryArtifact {
            url: None,
            path: Some("/kubelet-new".into()),
            sha256: "0".repeat(64),
        };
        let error = stage(&ctx, &artifact, "v1.32.0").await.unwrap_err();
        assert!(matches!(error, StageError::Digest { .. }), "{error}");
        assert!(error.to_string().contains(&"0".repeat(64)));
        assert!(!staged_path(&ctx, &artifact.sha256).exists());
    }

    #[tokio::test]
    async fn a_staged_binary_must_report_the_target_version() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        let bytes = b"#!/bin/sh\necho Kubernetes v1.31.9\n";
        std::fs::write(dir.path().join("kubelet-new"), bytes).unwrap();
        let sha256 = hex::encode(Sha256::digest(bytes));
        let artifact = BinaryArtifact {
            url: None,
            path: Some("/kubelet-new".into()),
            sha256,
        };
        let error = stage(&ctx, &artifact, "v1.32.0").await.unwrap_err();
        assert!(matches!(error, StageError::WrongVersion { .. }), "{error}");
    }
}
