//! Checks made before any node is touched: the spec is well formed, the target version keeps
//! within the supported skew of the API server, and nodes are never silently downgraded.

use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kubelet_hash::KubeletVersion;
use kubelift_crds::KubeletUpgradeSpec;

use super::selector;

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

/// Field problems, stated by the API's own validation (the same rules the CRD's schema enforces,
/// for objects stored without it), plus the selector operators only the operator interprets.
fn spec_problems(spec: &KubeletUpgradeSpec) -> Vec<String> {
    let mut problems: Vec<String> = match spec.validate() {
        Ok(()) => Vec::new(),
        Err(invalid) => invalid
            .errors
            .iter()
            .map(|error| format!("{}: {}", error.path, error.message))
            .collect(),
    };
    if let Some(selector) = &spec.node_selector {
        problems.extend(selector::problems(selector, "spec.nodeSelector"));
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

fn percent(text: &str) -> Option<usize> {
    text.strip_suffix('%')?.parse().ok()
}
