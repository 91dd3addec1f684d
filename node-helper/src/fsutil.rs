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
}
