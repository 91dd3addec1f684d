//! What a snapshot-aware kubelet reads: the container IDs listed in the node's snapshot file.
//! The file is the node helper's (`{"formatVersion", "sha256", "body": {"containers": [...]}}`);
//! it is read loosely (any `containers` list of objects with an `id`), but a body whose recorded
//! sha256 does not match, or a file that is not JSON, is never trusted: it protects nothing.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

#[derive(Deserialize)]
struct Envelope<'a> {
    sha256: Option<String>,
    #[serde(borrow)]
    body: Option<&'a RawValue>,
}

/// The container IDs the snapshot at `path` lists; empty when missing, corrupt or unverifiable.
pub fn snapshot_container_ids(path: &Path) -> BTreeSet<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeSet::new();
    };
    let ids = listed_ids(&text);
    if ids.is_none() {
        tracing::warn!(path = %path.display(), "snapshot not trusted: corrupt or digest mismatch");
    }
    ids.unwrap_or_default()
}

fn listed_ids(text: &str) -> Option<BTreeSet<String>> {
    let Ok(envelope) = serde_json::from_str::<Envelope<'_>>(text) else {
        return serde_json::from_str(text)
            .ok()
            .map(|body: Value| ids_in(&body));
    };
    let body = match (envelope.body, envelope.sha256) {
        (Some(body), Some(recorded)) => {
            let actual = hex::encode(Sha256::digest(body.get().as_bytes()));
            (actual == recorded).then(|| body.get())?
        }
        (Some(body), None) => body.get(),
        (None, _) => text,
    };
    let body: Value = serde_json::from_str(body).ok()?;
    Some(ids_in(&body))
}

fn ids_in(body: &Value) -> BTreeSet<String> {
    let containers = match body {
        Value::Array(items) => items.as_slice(),
        other => other["containers"]
            .as_array()
            .map_or(&[][..], Vec::as_slice),
    };
    let id = |c: &Value| {
        let id = ["id", "containerId", "containerID"]
            .iter()
            .find_map(|k| c[*k].as_str())?;
        Some(id.trim_start_matches("containerd://").to_owned())
    };
    containers.iter().filter_map(id).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

    use super::*;

    fn envelope(body: &str, digest: &str) -> String {
        format!(r#"{{"formatVersion":1,"sha256":"{digest}","body":{body}}}"#)
    }

    #[test]
    fn a_verified_snapshot_lists_its_container_ids() {
        let body = r#"{"node":"n1","containers":[{"id":"abc","podUid":"u"},{"id":"def"}]}"#;
        let digest = hex::encode(Sha256::digest(body.as_bytes()));
        let ids = listed_ids(&envelope(body, &digest)).unwrap();
        assert_eq!(ids, BTreeSet::from(["abc".to_owned(), "def".to_owned()]));
    }

    #[test]
    fn a_snapshot_whose_digest_does_not_match_is_not_trusted() {
        let body = r#"{"containers":[{"id":"abc"}]}"#;
        assert!(listed_ids(&envelope(body, "00")).is_none());
    }

    #[test]
    fn a_truncated_snapshot_is_not_trusted() {
        assert!(listed_ids(r#"{"formatVersion":1,"body":{"contain"#).is_none());
    }

    #[test]
    fn a_plain_list_of_containers_is_read_loosely() {
        let ids = listed_ids(r#"[{"containerID":"containerd://abc"}]"#).unwrap();
        assert_eq!(ids, BTreeSet::from(["abc".to_owned()]));
    }
}
