//! Install: keep a backup of the current kubelet next to it (named with its version), rename the
//! staged binary over the kubelet path in one atomic step, fsync, and prune old backups beyond the
//! limit. The kubelet path therefore only ever holds the old or the new binary, never a partial
//! one. Idempotent: when the kubelet already is the target binary, only pruning remains.
//!
//! Also guards the path before anything changes it: a symlink (which the rename would replace
//! instead of the binary it points to) or a world-writable file is refused.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::context::NodeContext;
use crate::fsutil;
use crate::steps::stage;

/// Marker in the file name of every backup: `kubelet.kubelift-backup-v1.31.2`.
const BACKUP_MARKER: &str = ".kubelift-backup-";

/// Errors of installing or restoring a kubelet binary.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The kubelet path is a symlink.
    #[error("failed to accept kubelet path {path}: it is a symlink to {target}")]
    Symlink {
        /// The kubelet path.
        path: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
    /// The kubelet path is writable by anyone.
    #[error("failed to accept kubelet path {path}: it is world-writable (mode {mode:o})")]
    WorldWritable {
        /// The kubelet path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A file operation failed.
    #[error("failed to update {path}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Neither the staged file nor the kubelet path holds the target binary.
    #[error("failed to find the staged kubelet {path}")]
    StagedMissing {
        /// Where it was expected.
        path: PathBuf,
    },
    /// The backup to restore is missing or differs from the recorded original.
    #[error("failed to restore {path}: the backup's sha256 is {actual}, expected {expected}")]
    BackupMismatch {
        /// The backup.
        path: PathBuf,
        /// The original binary's digest.
        expected: String,
        /// The backup's digest (empty when missing).
        actual: String,
    },
}

impl InstallError {
    /// `PascalCase` reason for status, Events and metrics.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Symlink { .. } | Self::WorldWritable { .. } => "UnsafeKubeletPath",
            Self::BackupMismatch { .. } => "BackupMismatch",
            Self::Io { .. } | Self::StagedMissing { .. } => "InstallFailed",
        }
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> InstallError + '_ {
    move |source| InstallError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Refuses a kubelet path that is a symlink or world-writable.
pub fn check_kubelet_path(path: &Path) -> Result<(), InstallError> {
    let meta = std::fs::symlink_metadata(path).map_err(io(path))?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path).map_err(io(path))?;
        return Err(InstallError::Symlink {
            path: path.to_path_buf(),
            target,
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o002 != 0 {
        return Err(InstallError::WorldWritable {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// The backup path for a kubelet of `version`.
#[must_use]
pub fn backup_path(ctx: &NodeContext, version: &str) -> PathBuf {
    let mut name = ctx.paths.kubelet.as_os_str().to_owned();
    name.push(format!("{BACKUP_MARKER}{version}"));
    PathBuf::from(name)
}

/// Backs up the current kubelet and renames the staged binary over it; returns the backup.
pub async fn install(
    ctx: &NodeContext,
    from_version: &str,
    original_sha256: &str,
    target_sha256: &str,
) -> Result<PathBuf, InstallError> {
    let kubelet = &ctx.paths.kubelet;
    check_kubelet_path(kubelet)?;
    let backup = backup_path(ctx, from_version);
    let current = stage::file_sha256(kubelet).await.map_err(io(kubelet))?;
    if current == target_sha256 {
        tracing::debug!(path = %kubelet.display(), "kubelet already installed");
    } else {
        keep_backup(kubelet, &backup, original_sha256).await?;
        swap_in(ctx, target_sha256)?;
    }
    prune_backups(ctx, &backup);
    Ok(backup)
}

/// Renames the backup's copy over the kubelet path; the backup itself stays.
pub async fn restore(
    ctx: &NodeContext,
    backup: &Path,
    original_sha256: &str,
) -> Result<(), InstallError> {
    let kubelet = &ctx.paths.kubelet;
    if stage::file_sha256(kubelet).await.ok().as_deref() == Some(original_sha256) {
        return Ok(());
    }
    let actual = stage::file_sha256(backup).await.unwrap_or_default();
    if actual != original_sha256 {
        let expected = original_sha256.to_owned();
        return Err(InstallError::BackupMismatch {
            path: backup.to_path_buf(),
            expected,
            actual,
        });
    }
    fsutil::copy_atomic(backup, kubelet).map_err(io(kubelet))?;
    tracing::info!(path = %kubelet.display(), backup = %backup.display(), "kubelet restored");
    Ok(())
}

/// Copies the current kubelet to `backup` unless an identical backup is already there.
async fn keep_backup(
    kubelet: &Path,
    backup: &Path,
    original_sha256: &str,
) -> Result<(), InstallError> {
    if stage::file_sha256(backup).await.ok().as_deref() == Some(original_sha256) {
        return Ok(());
    }
    fsutil::copy_atomic(kubelet, backup).map_err(io(backup))
}

fn swap_in(ctx: &NodeContext, target_sha256: &str) -> Result<(), InstallError> {
    let staged = stage::staged_path(ctx, target_sha256);
    if !staged.exists() {
        return Err(InstallError::StagedMissing { path: staged });
    }
    fsutil::rename_durable(&staged, &ctx.paths.kubelet).map_err(io(&ctx.paths.kubelet))?;
    tracing::info!(path = %ctx.paths.kubelet.display(), "kubelet swapped");
    Ok(())
}

/// Deletes the oldest backups beyond the limit, never the one this attempt relies on.
fn prune_backups(ctx: &NodeContext, keep: &Path) {
    let mut backups = list_backups(ctx);
    backups.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
    let excess = backups
        .iter()
        .skip(ctx.backups_to_keep.max(1))
        .filter(|(_, p)| p != keep);
    for (_, path) in excess {
        match std::fs::remove_file(path) {
            Ok(()) => tracing::info!(path = %path.display(), "old kubelet backup pruned"),
            Err(error) => tracing::warn!(path = %path.display(), %error, "failed to prune backup"),
        }
    }
}

/// Every backup next to the kubelet, with its modification time.
#[must_use]
pub fn list_backups(ctx: &NodeContext) -> Vec<(std::time::SystemTime, PathBuf)> {
    let Some(prefix) = ctx
        .paths
        .kubelet
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        return Vec::new();
    };
    let prefix = format!("{prefix}{BACKUP_MARKER}");
    let Ok(entries) = std::fs::read_dir(ctx.paths.kubelet_dir()) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

    use super::*;
    use crate::context::testing::context;

    fn write(path: &Path, bytes: &[u8], mode: u32) {
        std::fs::write(path, bytes).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn sha(bytes: &[u8]) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(bytes))
    }

    #[test]
    fn a_symlinked_or_world_writable_kubelet_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        write(&dir.path().join("real-kubelet"), b"k", 0o755);
        std::os::unix::fs::symlink(dir.path().join("real-kubelet"), &ctx.paths.kubelet).unwrap();
        assert!(matches!(
            check_kubelet_path(&ctx.paths.kubelet),
            Err(InstallError::Symlink { .. })
        ));
        std::fs::remove_file(&ctx.paths.kubelet).unwrap();
        write(&ctx.paths.kubelet, b"k", 0o777);
        let refused = check_kubelet_path(&ctx.paths.kubelet);
        assert!(matches!(
            refused,
            Err(InstallError::WorldWritable { mode: 0o777, .. })
        ));
    }

    #[tokio::test]
    async fn install_keeps_a_backup_is_idempotent_and_prunes_old_backups() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        write(&ctx.paths.kubelet, b"old", 0o755);
        for (version, age) in [("v1.28.0", 3), ("v1.29.0", 2), ("v1.30.0", 1)] {
            let backup = backup_path(&ctx, version);
            write(&backup, version.as_bytes(), 0o755);
            let mtime = std::time::SystemTime::now() - std::time::Duration::from_secs(age * 60);
            std::fs::File::options()
                .write(true)
                .open(&backup)
                .unwrap()
                .set_modified(mtime)
                .unwrap();
        }
        write(&stage::staged_path(&ctx, &sha(b"new")), b"new", 0o755);

        let backup = install(&ctx, "v1.31.0", &sha(b"old"), &sha(b"new"))
            .await
            .unwrap();
        let again = install(&ctx, "v1.31.0", &sha(b"old"), &sha(b"new"))
            .await
            .unwrap();

        assert_eq!(backup, again);
        assert_eq!(std::fs::read(&ctx.paths.kubelet).unwrap(), b"new");
        assert_eq!(std::fs::read(&backup).unwrap(), b"old");
        let mut kept: Vec<PathBuf> = list_backups(&ctx).into_iter().map(|(_, p)| p).collect();
        kept.sort();
        assert_eq!(kept, [backup_path(&ctx, "v1.30.0"), backup]);
    }

    #[tokio::test]
    async fn restore_puts_the_original_bytes_back_and_refuses_a_wrong_backup() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        write(&ctx.paths.kubelet, b"new", 0o755);
        let backup = backup_path(&ctx, "v1.31.0");
        write(&backup, b"tampered", 0o755);
        let refused = restore(&ctx, &backup, &sha(b"old")).await;
        assert!(matches!(refused, Err(InstallError::BackupMismatch { .. })));
        write(&backup, b"old", 0o755);
        restore(&ctx, &backup, &sha(b"old")).await.unwrap();
        assert_eq!(std::fs::read(&ctx.paths.kubelet).unwrap(), b"old");
    }
}
