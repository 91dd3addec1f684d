//! Durable file writes: a file is either absent, wholly old or wholly new, never partial.
//!
//! Every write goes to a temporary file in the destination's own directory, is flushed to disk,
//! renamed over the destination and followed by an fsync of the directory, so a crash or power
//! loss at any instant leaves one of the two complete versions.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temp = temp_sibling(path, "tmp");
    let mut file = File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    rename_durable(&temp, path)
}

/// Copies `from` to `to` atomically and durably, keeping `from`'s permissions.
pub fn copy_atomic(from: &Path, to: &Path) -> io::Result<()> {
    let temp = temp_sibling(to, "copy");
    fs::copy(from, &temp)?;
    File::open(&temp)?.sync_all()?;
    rename_durable(&temp, to)
}

/// Renames `from` over `to` (same directory or filesystem) and fsyncs the target directory.
pub fn rename_durable(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)?;
    sync_dir(parent_of(to))
}

/// Flushes a directory's entries to disk, making earlier renames and creations durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and its parents when missing.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

/// A temporary path next to `path`, unique per process, hidden from casual listings.
#[must_use]
pub fn temp_sibling(path: &Path, purpose: &str) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    parent_of(path).join(format!(".{name}.{purpose}-{}", std::process::id()))
}

/// Removes the temporary siblings ([`temp_sibling`]) in `dir` that another process left when it
/// died between creating and renaming them; returns how many went. One helper runs per node, so
/// any such file not named by this process's ID is stale.
pub fn remove_stale_temps(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let own = std::process::id().to_string();
    let stale = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| is_stale_temp(path, &own));
    stale
        .filter(|path| match fs::remove_file(path) {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(
                    path = %path.display(),
                    %error,
                    "failed to remove a stale temp file"
                );
                false
            }
        })
        .count()
}

fn is_stale_temp(path: &Path, own_pid: &str) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let Some((head, pid)) = name.rsplit_once('-') else {
        return false;
    };
    let from_a_process = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    let purpose = head.rsplit_once('.').map(|(_, purpose)| purpose);
    let temporary = matches!(purpose, Some("tmp" | "copy"));
    name.starts_with('.') && temporary && from_a_process && pid != own_pid
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

    use super::*;

    #[test]
    fn atomic_write_replaces_the_whole_file_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"old contents that are longer").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temp_files_of_other_processes_go_and_everything_else_stays() {
        let dir = tempfile::tempdir().unwrap();
        let own = temp_sibling(&dir.path().join("u-1.json"), "tmp");
        let kept = [
            "u-1.json",
            ".kubelet.kubelift-staged-123456789012",
            "kubelet.kubelift-backup-v1.31.4",
            ".notes.tmp-abc",
        ];
        let stale = [".u-1.json.tmp-4242", ".kubelet.copy-17"];
        for name in kept.iter().chain(&stale) {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        fs::write(&own, b"mine").unwrap();

        let removed = remove_stale_temps(dir.path());

        assert_eq!(removed, stale.len());
        for name in kept {
            assert!(dir.path().join(name).exists(), "{name} kept");
        }
        assert!(own.exists(), "this process's own temp file is not stale");
    }
}
