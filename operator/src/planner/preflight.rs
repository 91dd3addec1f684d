//! Checks made before any node is touched: the spec is well formed, the target version keeps
//! within the supported skew of the API server, and nodes are never silently downgraded.

use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kubelet_hash::KubeletVersion;
use kubelift_crds::{BinaryArtifact, KubeletUpgradeSpec};

use super::{selector, window};

/// Minor versions a kubelet may lag behind the API server.
const MAX_MINOR_SKEW: u32 = 3;

/// Every problem with the plan, one sentence per bad field; empty when the plan may run.
#[must_use]
pub fn problems(spec: &KubeletUpgradeSpec, api_server_version: Option<&str>) -> Vec<String> {
    let mut problems = spec_problems(spec);
    if let (Ok(target), Some(server)) =
        (KubeletVersion::from_str(&spec.version), api_server_version)
    {
        problems.extend(skew_problem(&target, server));
    }
    problems
}

/// Whether upgrading a node at `current` to `target` would be a downgrade the plan forbids.
#[must_use]
pub fn forbidden_downgrade(spec: &KubeletUpgradeSpec, current: &str) -> bool {
    let (Ok(target), Ok(current)) = (
        KubeletVersion::from_str(&spec.version),
        KubeletVersion::from_str(current),
    ) else {
        return false;
    };
    !spec.allow_downgrade && current > target
}

/// The number of nodes allowed in flight for `targeted` nodes (at least 1).
#[must_use]
pub fn max_unavailable(value: &IntOrString, targeted: usize) -> usize {
    let resolved = match value {
        IntOrString::Int(n) => usize::try_from(*n).unwrap_or(0),
        IntOrString::String(text) => percent(text).map_or(1, |p| targeted * p / 100),
    };
    resolved.max(1)
}

fn spec_problems(spec: &KubeletUpgradeSpec) -> Vec<String> {
    let mut problems = Vec::new();
    if KubeletVersion::from_str(&spec.version).is_err() {
        problems.push(format!(
            "spec.version: {:?} is not a version like v1.32.1",
            spec.version
        ));
    }
    let top = BinaryArtifact {
        url: spec.binary.url.clone(),
        path: spec.binary.path.clone(),
        sha256: spec.binary.sha256.clone(),
    };
    problems.extend(artifact_problems(&top, "spec.binary"));
    for (arch, artifact) in &spec.binary.architectures {
        problems.extend(artifact_problems(
            artifact,
            &format!("spec.binary.architectures[{arch}]"),
        ));
    }
    problems.extend(rollout_problems(spec));
    if let Some(selector) = &spec.node_selector {
        problems.extend(selector::problems(selector, "spec.nodeSelector"));
    }
    if let Some(window) = &spec.window {
        problems.extend(window::problems(window));
    }
    problems
}

fn artifact_problems(artifact: &BinaryArtifact, field: &str) -> Vec<String> {
    let mut problems = Vec::new();
    match (&artifact.url, &artifact.path) {
        (Some(_), Some(_)) => problems.push(format!("{field}: set exactly one of url and path")),
        (None, None) => problems.push(format!("{field}: one of url and path is required")),
        (Some(url), None) if !acceptable_url(url) => problems.push(format!(
            "{field}.url: {url:?} must be https:// or http:// to a loopback address"
        )),
        (None, Some(path)) if !path.starts_with('/') => {
            problems.push(format!("{field}.path: {path:?} must be absolute"));
        }
        _ => {}
    }
    let sha = &artifact.sha256;
    if sha.len() != 64
        || !sha
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        problems.push(format!(
            "{field}.sha256: must be 64 lowercase hexadecimal characters"
        ));
    }
    problems
}

fn rollout_problems(spec: &KubeletUpgradeSpec) -> Vec<String> {
    let rollout = &spec.rollout;
    let mut problems = Vec::new();
    match &rollout.max_unavailable {
        IntOrString::Int(n) if *n < 1 => {
            problems.push(format!(
                "spec.rollout.maxUnavailable: {n} must be at least 1"
            ));
        }
        IntOrString::String(text) if percent(text).is_none_or(|p| p == 0 || p > 100) => problems
            .push(format!(
                "spec.rollout.maxUnavailable: {text:?} must be a percentage 1%..100%"
            )),
        _ => {}
    }
    let numbers = [
        ("spec.rollout.canary", i64::from(rollout.canary)),
        ("spec.rollout.soakSeconds", rollout.soak_seconds),
        ("spec.drain.timeoutSeconds", spec.drain.timeout_seconds),
        (
            "spec.verify.prepareTimeoutSeconds",
            spec.verify.prepare_timeout_seconds,
        ),
        (
            "spec.verify.readyTimeoutSeconds",
            spec.verify.ready_timeout_seconds,
        ),
        ("spec.verify.settleSeconds", spec.verify.settle_seconds),
        (
            "spec.verify.maxUnexpectedRestarts",
            i64::from(spec.verify.max_unexpected_restarts),
        ),
        (
            "spec.failurePolicy.maxFailedNodes",
            i64::from(spec.failure_policy.max_failed_nodes),
        ),
    ];
    for (field, value) in numbers {
        if value < 0 {
            problems.push(format!("{field}: {value} must not be negative"));
        }
    }
    if spec.ttl_seconds_after_finished.is_some_and(|ttl| ttl < 0) {
        problems.push("spec.ttlSecondsAfterFinished: must not be negative".to_owned());
    }
    problems
}

fn skew_problem(target: &KubeletVersion, server: &str) -> Option<String> {
    let server = KubeletVersion::from_str(server).ok()?;
    let (target_pair, server_pair) = (target.minor_pair(), server.minor_pair());
    if target_pair > server_pair {
        return Some(format!(
            "spec.version: v{}.{} is newer than the API server (v{}.{})",
            target.major, target.minor, server.major, server.minor
        ));
    }
    let lag = server.minor.saturating_sub(target.minor);
    (target.major == server.major && lag > MAX_MINOR_SKEW).then(|| {
        format!(
            "spec.version: v{}.{} is {lag} minor versions older than the API server (v{}.{}); \
             at most {MAX_MINOR_SKEW} are supported",
            target.major, target.minor, server.major, server.minor
        )
    })
}

fn acceptable_url(url: &str) -> bool {
    let loopback = ["http://127.", "http://localhost", "http://[::1]"];
    url.starts_with("https://") || loopback.iter().any(|prefix| url.starts_with(prefix))
}

fn percent(text: &str) -> Option<usize> {
    text.strip_suffix('%')?.parse().ok()
}
