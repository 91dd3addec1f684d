//! The node-local journal of one `NodeUpgrade` attempt: which step of Execute is done, and what the
//! later steps and a rollback need to know (versions, digests, backup path, failure).
//!
//! One file per `NodeUpgrade` UID and attempt (`<state-dir>/journal/<uid>-<attempt>.json`), so an
//! old failure never swallows a retry. Written atomically after every step, so a helper killed at
//! any instant finds the last completed step when it starts again and resumes from there.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use kubelift_crds::BinaryArtifact;
use serde::{Deserialize, Serialize};

use crate::fsutil;

/// Format version of the journal file.
pub const JOURNAL_FORMAT: u32 = 1;

/// Errors of the journal store.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Reading or writing a journal file failed.
    #[error("failed to access journal file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A journal file is not valid JSON of the expected shape.
    #[error("failed to parse journal file {path}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// The last completed step of an attempt. Steps run in declaration order; the rollback steps only
/// after a failure with rollback enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Step {
    /// The attempt is recorded; nothing on the node has changed.
    Started,
    /// The snapshot file is written.
    Snapshotted,
    /// The new binary is staged and checked in the kubelet's directory.
    Staged,
    /// The backup is kept and the new binary renamed over the kubelet path.
    Installed,
    /// The kubelet service was restarted on the new binary.
    Restarted,
    /// A failure is recorded and the previous kubelet is being restored.
    RollingBack,
    /// The backup was renamed back over the kubelet path after a failure.
    Restored,
    /// The kubelet service was restarted on the restored binary.
    RestartedPrevious,
    /// Terminal: the new kubelet is verified.
    Succeeded,
    /// Terminal: the upgrade failed; see `failure`.
    Failed,
    /// Terminal: the upgrade failed and the previous kubelet is back and healthy.
    RolledBack,
}

impl Step {
    /// Whether nothing more will happen in this attempt.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::RolledBack)
    }

    /// Whether the kubelet path may hold the new binary (so a rollback has something to undo).
    #[must_use]
    pub fn touched_kubelet(self) -> bool {
        matches!(self, Self::Installed | Self::Restarted)
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// `PascalCase` reason, as reported in status and Events.
    pub reason: String,
    /// What exactly went wrong.
    pub message: String,
}

/// A container that restarted during the upgrade: its ID before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Restart {
    /// Pod namespace.
    pub pod_namespace: String,
    /// Pod name.
    pub pod_name: String,
    /// Pod UID.
    pub pod_uid: String,
    /// Container name.
    pub container_name: String,
    /// Container ID in the snapshot.
    pub id_before: String,
    /// Container ID running now (empty when none runs).
    pub id_after: String,
    /// Restart count in the snapshot.
    pub restart_count_before: u32,
    /// Restart count now.
    pub restart_count_after: u32,
    /// Whether the prediction said the container would be preserved.
    pub unexpected: bool,
}

/// The parts of a `NodeUpgrade`'s spec an attempt needs until its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderSettings {
    /// Where the new binary comes from.
    pub binary: BinaryArtifact,
    /// Seconds the kubelet may take to become healthy and its Node Ready.
    pub ready_timeout_seconds: i64,
    /// Seconds to watch for restarts after the kubelet is healthy.
    pub settle_seconds: i64,
    /// Tolerated restarts of containers predicted `Preserved`.
    pub max_unexpected_restarts: i32,
    /// Restore the previous kubelet on failure.
    pub rollback: bool,
}

/// When a step completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    /// The step.
    pub step: Step,
    /// When it completed.
    pub at: Timestamp,
}

/// The journal of one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Journal {
    /// File format version.
    pub format_version: u32,
    /// `NodeUpgrade` UID.
    pub uid: String,
    /// `NodeUpgrade` attempt.
    pub attempt: u32,
    /// `NodeUpgrade` name (for reports when the object is gone).
    pub name: String,
    /// The node.
    pub node: String,
    /// The last completed step.
    pub step: Step,
    /// Kubelet version before the upgrade.
    pub from_version: String,
    /// Target version.
    pub to_version: String,
    /// sha256 of the kubelet binary before the upgrade.
    pub original_sha256: String,
    /// sha256 of the new binary.
    pub target_sha256: String,
    /// The work order's settings, so the attempt can finish (or roll back) without its object.
    pub order: OrderSettings,
    /// The backup of the previous binary, once kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<PathBuf>,
    /// Why the attempt failed, once it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Containers observed to restart.
    #[serde(default)]
    pub restarts: Vec<Restart>,
    /// Completed steps with times.
    #[serde(default)]
    pub history: Vec<StepRecord>,
}

impl Journal {
    /// Records `step` as completed now.
    pub fn advance(&mut self, step: Step) {
        self.step = step;
        self.history.push(StepRecord {
            step,
            at: Timestamp::now(),
        });
    }

    /// When `step` completed, if it did.
    #[must_use]
    pub fn completed_at(&self, step: Step) -> Option<Timestamp> {
        self.history
            .iter()
            .rev()
            .find(|r| r.step == step)
            .map(|r| r.at)
    }
}

/// The directory of journal files.
#[derive(Debug, Clone)]
pub struct JournalStore {
    dir: PathBuf,
}

impl JournalStore {
    /// A store in `dir` (created on first save).
    #[must_use]
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// The file of one attempt.
    #[must_use]
    pub fn path(&self, uid: &str, attempt: u32) -> PathBuf {
        self.dir.join(format!("{uid}-{attempt}.json"))
    }

    /// Loads one attempt's journal, `None` when it has none.
    pub fn load(&self, uid: &str, attempt: u32) -> Result<Option<Journal>, JournalError> {
        read(&self.path(uid, attempt))
    }

    /// Saves a journal atomically and durably.
    pub fn save(&self, journal: &Journal) -> Result<(), JournalError> {
        let path = self.path(&journal.uid, journal.attempt);
        let io = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        fsutil::ensure_dir(&self.dir).map_err(io)?;
        let bytes = serde_json::to_vec_pretty(journal).map_err(|source| JournalError::Corrupt {
            path: path.clone(),
            source,
        })?;
        fsutil::write_atomic(&path, &bytes).map_err(io)
    }

    /// Every journal in the store, ordered by file name.
    pub fn all(&self) -> Result<Vec<Journal>, JournalError> {
        let io = |source| JournalError::Io {
            path: self.dir.clone(),
            source,
        };
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(e)),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| is_journal_file(path))
            .collect();
        paths.sort();
        let mut journals = Vec::with_capacity(paths.len());
        for path in paths {
            journals.extend(read(&path)?);
        }
        Ok(journals)
    }
}

fn is_journal_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    !name.starts_with('.') && json
}

fn read(path: &Path) -> Result<Option<Journal>, JournalError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| JournalError::Corrupt {
                    path: path.to_path_buf(),
                    source,
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(JournalError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

    use super::*;

    fn journal() -> Journal {
        Journal {
            format_version: JOURNAL_FORMAT,
            uid: "u-1".into(),
            attempt: 2,
            name: "plan-node-a".into(),
            node: "node-a".into(),
            step: Step::Started,
            from_version: "v1.31.0".into(),
            to_version: "v1.32.0".into(),
            original_sha256: "aa".into(),
            target_sha256: "bb".into(),
            order: OrderSettings {
                binary: BinaryArtifact::default(),
                ready_timeout_seconds: 1,
                settle_seconds: 1,
                max_unexpected_restarts: 0,
                rollback: true,
            },
            backup: None,
            failure: None,
            restarts: Vec::new(),
            history: Vec::new(),
        }
    }

    #[test]
    fn journal_is_keyed_by_uid_and_attempt_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = JournalStore::new(&dir.path().join("journal"));
        let mut saved = journal();
        saved.advance(Step::Snapshotted);
        store.save(&saved).unwrap();
        assert!(store.path("u-1", 2).ends_with("u-1-2.json"));
        assert_eq!(store.load("u-1", 2).unwrap(), Some(saved.clone()));
        assert_eq!(store.load("u-1", 3).unwrap(), None);
        assert_eq!(store.all().unwrap(), vec![saved]);
    }

    #[test]
    fn a_truncated_journal_is_reported_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let store = JournalStore::new(dir.path());
        std::fs::write(store.path("u-1", 1), b"{\"formatVersion\":1,").unwrap();
        assert!(matches!(
            store.load("u-1", 1),
            Err(JournalError::Corrupt { .. })
        ));
    }
}
