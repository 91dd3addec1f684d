//! The snapshot file: the kubelet version and every running container's ID, hash and restart
//! count, written before the swap. It is the evidence verification compares against, and what a
//! snapshot-aware kubelet reads, so it is versioned, carries a sha256 of its own body, is written
//! atomically, and keeps the previous snapshot as `<file>.prev`. A corrupted or truncated file is
//! detected and never trusted.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use kubelift_crds::Verdict;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::cri::RuntimeContainer;
use crate::fsutil;

/// Format version written into every snapshot.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// Errors of reading and writing snapshots.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file could not be read or written.
    #[error("failed to access snapshot file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a snapshot (truncated, not JSON, wrong shape).
    #[error("failed to parse snapshot file {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The body does not match its recorded digest.
    #[error("failed to verify snapshot file {path}: body sha256 {actual} but recorded {recorded}")]
    Digest {
        /// The file.
        path: PathBuf,
        /// The digest written in the file.
        recorded: String,
        /// The digest of the body as read.
        actual: String,
    },
    /// The file has a format this helper does not know.
    #[error("failed to read snapshot file {path}: unknown format version {version}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The format version found.
        version: u32,
    },
}

/// One container as recorded before the swap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotContainer {
    /// The container as the runtime reported it.
    #[serde(flatten)]
    pub container: RuntimeContainer,
    /// What the prediction said would happen to it.
    pub verdict: Verdict,
}

/// The content of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotBody {
    /// The node.
    pub node: String,
    /// `NodeUpgrade` UID the snapshot was taken for.
    pub upgrade_uid: String,
    /// `NodeUpgrade` attempt the snapshot was taken for.
    pub attempt: u32,
    /// Kubelet version before the swap.
    pub kubelet_version_before: String,
    /// Kubelet version after the swap.
    pub kubelet_version_after: String,
    /// When the snapshot was taken.
    pub taken_at: Timestamp,
    /// Every running kubelet container, ordered by pod UID and container name.
    pub containers: Vec<SnapshotContainer>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    format_version: u32,
    sha256: String,
    body: &'a RawValue,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadEnvelope<'a> {
    format_version: u32,
    sha256: String,
    #[serde(borrow)]
    body: &'a RawValue,
}

/// Writes `body` to `path`, keeping a snapshot of another attempt as `<path>.prev`.
pub fn write(path: &Path, body: &SnapshotBody) -> Result<(), SnapshotError> {
    let io = |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        fsutil::ensure_dir(dir).map_err(io)?;
    }
    keep_previous(path, body).map_err(io)?;
    fsutil::write_atomic(path, &encode(path, body)?).map_err(io)
}

/// Reads and checks the snapshot at `path`; `None` when there is none.
pub fn read(path: &Path) -> Result<Option<SnapshotBody>, SnapshotError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SnapshotError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    decode(path, &bytes).map(Some)
}

/// The path of the previous snapshot.
#[must_use]
pub fn previous_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".prev");
    PathBuf::from(name)
}

fn encode(path: &Path, body: &SnapshotBody) -> Result<Vec<u8>, SnapshotError> {
    let parse = |source| SnapshotError::Parse {
        path: path.to_path_buf(),
        source,
    };
    let body_text = serde_json::to_string(body).map_err(parse)?;
    let raw = RawValue::from_string(body_text).map_err(parse)?;
    let envelope = Envelope {
        format_version: SNAPSHOT_FORMAT,
        sha256: hex::encode(Sha256::digest(raw.get().as_bytes())),
        body: &raw,
    };
    serde_json::to_vec(&envelope).map_err(parse)
}

fn decode(path: &Path, bytes: &[u8]) -> Result<SnapshotBody, SnapshotError> {
    let parse = |source| SnapshotError::Parse {
        path: path.to_path_buf(),
        source,
    };
    let envelope: ReadEnvelope<'_> = serde_json::from_slice(bytes).map_err(parse)?;
    if envelope.format_version != SNAPSHOT_FORMAT {
        let version = envelope.format_version;
        return Err(SnapshotError::Format {
            path: path.to_path_buf(),
            version,
        });
    }
    let actual = hex::encode(Sha256::digest(envelope.body.get().as_bytes()));
    if actual != envelope.sha256 {
        let recorded = envelope.sha256;
        return Err(SnapshotError::Digest {
            path: path.to_path_buf(),
            recorded,
            actual,
        });
    }
    serde_json::from_str(envelope.body.get()).map_err(parse)
}

/// Moves an existing snapshot of another attempt aside, so a re-run of the same step keeps the
/// true previous snapshot rather than its own earlier copy.
fn keep_previous(path: &Path, body: &SnapshotBody) -> std::io::Result<()> {
    let same_attempt = matches!(
        read(path),
        Ok(Some(old)) if old.upgrade_uid == body.upgrade_uid && old.attempt == body.attempt
    );
    if same_attempt || !path.exists() {
        return Ok(());
    }
    fsutil::rename_durable(path, &previous_path(path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

    use super::*;

    fn body(uid: &str) -> SnapshotBody {
        let container = RuntimeContainer {
            id: "c1".into(),
            pod_uid: "p1".into(),
            pod_namespace: "default".into(),
            pod_name: "web".into(),
            container_name: "app".into(),
            hash: "311670a".into(),
            hash_without_resources: None,
            restart_count: 3,
            started_at: 17,
        };
        SnapshotBody {
            node: "node-a".into(),
            upgrade_uid: uid.into(),
            attempt: 1,
            kubelet_version_before: "v1.31.0".into(),
            kubelet_version_after: "v1.32.0".into(),
            taken_at: Timestamp::UNIX_EPOCH,
            containers: vec![SnapshotContainer {
                container,
                verdict: Verdict::Preserved,
            }],
        }
    }

    #[test]
    fn snapshot_round_trips_and_keeps_the_previous_attempts_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.json");
        write(&path, &body("old")).unwrap();
        write(&path, &body("new")).unwrap();
        write(&path, &body("new")).unwrap();
        assert_eq!(read(&path).unwrap(), Some(body("new")));
        assert_eq!(read(&previous_path(&path)).unwrap(), Some(body("old")));
    }

    #[test]
    fn a_changed_byte_in_the_body_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.json");
        write(&path, &body("u")).unwrap();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"c1\"", "\"c2\"");
        std::fs::write(&path, text).unwrap();
        assert!(matches!(read(&path), Err(SnapshotError::Digest { .. })));
    }

    #[test]
    fn a_truncated_snapshot_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.json");
        write(&path, &body("u")).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(matches!(read(&path), Err(SnapshotError::Parse { .. })));
    }
}
