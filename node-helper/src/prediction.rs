//! Prediction on this node: for every running container, what the current and the target kubelet
//! compute from its pod spec, compared with the hash stored on the container. The model (the
//! `kubelet-hash` crate) is calibrated on the node's stored hashes first, so a model that does not
//! reproduce them says `Unknown` instead of guessing.

use std::collections::BTreeMap;

use kubelet_hash::{KubeletVersion, StoredHashes};
use kubelift_crds::{ContainerVerdict, PredictionCounts, Verdict};

use crate::cri::RuntimeContainer;

/// One container with its prediction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predicted {
    /// The container as the runtime reports it.
    pub container: RuntimeContainer,
    /// The verdict.
    pub verdict: Verdict,
    /// What the model computes for the current kubelet.
    pub current_hash: Option<String>,
    /// What the model computes for the target kubelet.
    pub target_hash: Option<String>,
    /// The pod is a `DaemonSet` or mirror pod.
    pub not_evictable: bool,
}

/// Predicts every container from its pod's JSON (as the API server serves it). A container
/// whose pod is unknown, or whose versions or pod the model cannot read, is `Unknown`.
#[must_use]
pub fn predict(
    containers: &[RuntimeContainer],
    pods: &[serde_json::Value],
    current: &str,
    target: &str,
) -> Vec<Predicted> {
    let pods_by_uid: BTreeMap<&str, &serde_json::Value> = pods
        .iter()
        .filter_map(|pod| Some((pod.pointer("/metadata/uid")?.as_str()?, pod)))
        .collect();
    let mut by_pod: BTreeMap<&str, Vec<&RuntimeContainer>> = BTreeMap::new();
    for container in containers {
        by_pod
            .entry(container.pod_uid.as_str())
            .or_default()
            .push(container);
    }
    let versions = current
        .parse::<KubeletVersion>()
        .ok()
        .zip(target.parse().ok());
    let mut predicted: Vec<Predicted> = by_pod
        .into_iter()
        .flat_map(|(uid, group)| {
            predict_pod(&group, pods_by_uid.get(uid).copied(), versions.as_ref())
        })
        .collect();
    predicted.sort_by_key(|a| a.container.key());
    predicted
}

/// Predicts the running containers of one pod with the model, calibrated on their stored hashes.
fn predict_pod(
    group: &[&RuntimeContainer],
    pod: Option<&serde_json::Value>,
    versions: Option<&(KubeletVersion, KubeletVersion)>,
) -> Vec<Predicted> {
    let not_evictable = pod.is_some_and(is_not_evictable);
    let stored: BTreeMap<String, StoredHashes> = group
        .iter()
        .map(|c| {
            let hashes = StoredHashes {
                hash: Some(c.hash.clone()).filter(|h| !h.is_empty()),
                hash_without_resources: c.hash_without_resources.clone(),
            };
            (c.container_name.clone(), hashes)
        })
        .collect();
    let model = pod.zip(versions).and_then(|(pod, (current, target))| {
        let text = serde_json::to_string(pod).ok()?;
        kubelet_hash::predict(&text, current, target, Some(&stored)).ok()
    });
    group
        .iter()
        .map(|c| {
            let judged = model
                .as_ref()
                .and_then(|m| m.containers.iter().find(|p| p.name == c.container_name));
            Predicted {
                container: (*c).clone(),
                verdict: judged.map_or(Verdict::Unknown, |p| verdict(p.verdict)),
                current_hash: judged.map(|p| p.current.clone()),
                target_hash: judged.map(|p| p.target.clone()),
                not_evictable,
            }
        })
        .collect()
}

fn verdict(model: kubelet_hash::Verdict) -> Verdict {
    match model {
        kubelet_hash::Verdict::Preserved => Verdict::Preserved,
        kubelet_hash::Verdict::WillRestart => Verdict::WillRestart,
        kubelet_hash::Verdict::Unknown => Verdict::Unknown,
    }
}

/// `DaemonSet` pods and static (mirror) pods are never evicted.
fn is_not_evictable(pod: &serde_json::Value) -> bool {
    let daemon = pod
        .pointer("/metadata/ownerReferences")
        .and_then(|o| o.as_array())
        .is_some_and(|owners| {
            owners
                .iter()
                .any(|o| o.get("kind") == Some(&"DaemonSet".into()))
        });
    let mirror = pod
        .pointer("/metadata/annotations/kubernetes.io~1config.mirror")
        .is_some();
    daemon || mirror
}

/// Counts by verdict.
#[must_use]
pub fn counts(predicted: &[Predicted]) -> PredictionCounts {
    let count = |v: Verdict| {
        i32::try_from(predicted.iter().filter(|p| p.verdict == v).count()).unwrap_or(i32::MAX)
    };
    PredictionCounts {
        preserved: count(Verdict::Preserved),
        will_restart: count(Verdict::WillRestart),
        unknown: count(Verdict::Unknown),
    }
}

/// The non-`Preserved` containers for status, capped at `cap`; the flag says whether any were cut.
#[must_use]
pub fn reportable(predicted: &[Predicted], cap: usize) -> (Vec<ContainerVerdict>, bool) {
    let all: Vec<ContainerVerdict> = predicted
        .iter()
        .filter(|p| p.verdict != Verdict::Preserved)
        .map(|p| ContainerVerdict {
            pod_namespace: p.container.pod_namespace.clone(),
            pod_name: p.container.pod_name.clone(),
            pod_uid: p.container.pod_uid.clone(),
            container: p.container.container_name.clone(),
            verdict: p.verdict,
            stored_hash: Some(p.container.hash.clone()),
            current_hash: p.current_hash.clone(),
            target_hash: p.target_hash.clone(),
            not_evictable: p.not_evictable,
        })
        .collect();
    let truncated = all.len() > cap;
    (all.into_iter().take(cap).collect(), truncated)
}

/// Whether any container's verdict is worse now than in `before` (a container not listed there
/// was `Preserved`, since status lists only the others).
#[must_use]
pub fn got_worse(before: &[ContainerVerdict], now: &[Predicted]) -> Vec<String> {
    let earlier: BTreeMap<(&str, &str), Verdict> = before
        .iter()
        .map(|c| ((c.pod_uid.as_str(), c.container.as_str()), c.verdict))
        .collect();
    now.iter()
        .filter(|p| {
            let key = (
                p.container.pod_uid.as_str(),
                p.container.container_name.as_str(),
            );
            rank(p.verdict) > rank(earlier.get(&key).copied().unwrap_or(Verdict::Preserved))
        })
        .map(|p| {
            format!(
                "{}/{}/{}",
                p.container.pod_namespace, p.container.pod_name, p.container.container_name
            )
        })
        .collect()
}

/// `Unknown` is treated as `WillRestart`, so only leaving `Preserved` is worse.
fn rank(verdict: Verdict) -> u8 {
    u8::from(verdict != Verdict::Preserved)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

    use kubelet_hash::HashOptions;

    use super::*;

    fn running(name: &str, hash: &str) -> RuntimeContainer {
        RuntimeContainer {
            id: format!("id-{name}"),
            pod_uid: "uid-1".into(),
            pod_namespace: "shop".into(),
            pod_name: "web-0".into(),
            container_name: name.into(),
            hash: hash.into(),
            hash_without_resources: None,
            restart_count: 0,
            started_at: 0,
        }
    }

    fn pod() -> serde_json::Value {
        serde_json::json!({
            "metadata": { "uid": "uid-1", "name": "web-0", "namespace": "shop" },
            "spec": { "containers": [
                { "name": "app", "image": "shop/web:2.1" },
                { "name": "proxy", "image": "envoy:1.30" },
            ]},
        })
    }

    fn stored(name: &str, image: &str, version: &str) -> String {
        let json = serde_json::json!({ "name": name, "image": image }).to_string();
        kubelet_hash::hash(&json, &version.parse().unwrap(), &HashOptions::default()).unwrap()
    }

    #[test]
    fn a_patch_upgrade_after_1_31_preserves_and_a_bad_stored_hash_is_unknown() {
        let containers = [
            running("app", &stored("app", "shop/web:2.1", "v1.31.2")),
            running("proxy", "abc"),
        ];
        let predicted = predict(&containers, &[pod()], "v1.31.2", "v1.32.0");
        let verdicts: Vec<Verdict> = predicted.iter().map(|p| p.verdict).collect();
        assert_eq!(verdicts, [Verdict::Preserved, Verdict::Unknown]);
    }

    #[test]
    fn the_1_31_algorithm_change_restarts_every_container() {
        let containers = [running("app", &stored("app", "shop/web:2.1", "v1.30.4"))];
        let predicted = predict(&containers, &[pod()], "v1.30.4", "v1.31.0");
        assert_eq!(predicted[0].verdict, Verdict::WillRestart);
        let (listed, truncated) = reportable(&predicted, 10);
        assert_eq!((listed.len(), truncated), (1, false));
    }

    #[test]
    fn a_container_without_its_pod_is_unknown() {
        let containers = [running("app", &stored("app", "shop/web:2.1", "v1.31.2"))];
        assert_eq!(
            predict(&containers, &[], "v1.31.2", "v1.32.0")[0].verdict,
            Verdict::Unknown
        );
    }

    #[test]
    fn only_leaving_preserved_counts_as_a_worse_verdict() {
        let containers = [running("app", "1"), running("proxy", "2")];
        let mut now = predict(&containers, &[], "v1.31.2", "v1.32.0");
        now[1].verdict = Verdict::Preserved;
        let before = reportable(&now, 10).0;
        assert!(got_worse(&before, &now).is_empty());
        now[1].verdict = Verdict::WillRestart;
        assert_eq!(got_worse(&before, &now), ["shop/web-0/proxy"]);
    }
}
