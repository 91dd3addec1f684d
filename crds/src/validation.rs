//! Rust-side validation of the specs: the constraints of the CRD's CEL rules, with the same field
//! paths and messages, plus what CEL cannot check (whether a time zone exists).
//!
//! The API server refuses bad input at apply time; this is the operator's safety net for objects
//! stored without the schema (an older CRD, a hand-made object), and it reports every problem at
//! once so that one `Valid=False` condition names each bad field.

use std::fmt;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::common::{BinaryArtifact, DrainSpec, FailurePolicy, VerifySpec};
use crate::kubelet_upgrade::{BinarySource, KubeletUpgradeSpec, MaintenanceWindow, RolloutSpec};
use crate::node_upgrade::NodeUpgradeSpec;
use crate::rules::{self, Rule};
use crate::version;

/// One bad field: where it is and what it must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field as the API server names it, e.g. `spec.binary.sha256` or
    /// `spec.binary.architectures[arm64].url`.
    pub path: String,
    /// What the value must be, e.g. `must be 64 lowercase hexadecimal characters`.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in a spec, in field order; displayed as `path: message; path: message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct InvalidSpec {
    /// The bad fields, never empty.
    pub errors: Vec<FieldError>,
}

impl fmt::Display for InvalidSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.errors.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl KubeletUpgradeSpec {
    /// Checks every constraint of the spec and returns all violations at once.
    pub fn validate(&self) -> Result<(), InvalidSpec> {
        let mut problems = Problems::default();
        problems.check(
            "spec.version",
            version::parse(&self.version).is_ok(),
            rules::VERSION,
        );
        check_binary_source(&mut problems, &self.binary);
        check_rollout(&mut problems, &self.rollout);
        check_drain(&mut problems, &self.drain);
        check_verify(&mut problems, "spec.verify", &self.verify);
        check_failure_policy(&mut problems, &self.failure_policy);
        if let Some(window) = &self.window {
            check_window(&mut problems, window);
        }
        if let Some(ttl) = self.ttl_seconds_after_finished {
            problems.check(
                "spec.ttlSecondsAfterFinished",
                ttl >= 0,
                rules::NON_NEGATIVE,
            );
        }
        problems.into_result()
    }
}

impl NodeUpgradeSpec {
    /// Checks every constraint of the spec and returns all violations at once.
    pub fn validate(&self) -> Result<(), InvalidSpec> {
        let mut problems = Problems::default();
        problems.check(
            "spec.nodeName",
            !self.node_name.is_empty(),
            rules::NON_EMPTY,
        );
        problems.check("spec.plan", !self.plan.is_empty(), rules::NON_EMPTY);
        problems.check(
            "spec.version",
            version::parse(&self.version).is_ok(),
            rules::VERSION,
        );
        check_artifact(&mut problems, "spec.binary", &self.binary);
        problems.check("spec.attempt", self.attempt >= 0, rules::NON_NEGATIVE);
        check_verify(&mut problems, "spec.verify", &self.verify);
        problems.into_result()
    }
}

/// The violations found so far.
#[derive(Default)]
struct Problems {
    errors: Vec<FieldError>,
}

impl Problems {
    /// Records a violation of `rule` at `path` unless `holds`.
    fn check(&mut self, path: impl Into<String>, holds: bool, rule: Rule) {
        if !holds {
            self.errors.push(FieldError {
                path: path.into(),
                message: rule.message.to_owned(),
            });
        }
    }

    fn into_result(self) -> Result<(), InvalidSpec> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(InvalidSpec {
                errors: self.errors,
            })
        }
    }
}

fn check_binary_source(problems: &mut Problems, binary: &BinarySource) {
    check_source(
        problems,
        "spec.binary",
        binary.url.as_deref(),
        binary.path.as_deref(),
    );
    problems.check(
        "spec.binary.sha256",
        rules::is_sha256(&binary.sha256),
        rules::SHA256,
    );
    for (arch, artifact) in &binary.architectures {
        check_artifact(
            problems,
            &format!("spec.binary.architectures[{arch}]"),
            artifact,
        );
    }
}

fn check_artifact(problems: &mut Problems, at: &str, artifact: &BinaryArtifact) {
    check_source(
        problems,
        at,
        artifact.url.as_deref(),
        artifact.path.as_deref(),
    );
    problems.check(
        format!("{at}.sha256"),
        rules::is_sha256(&artifact.sha256),
        rules::SHA256,
    );
}

/// The `url`/`path` pair shared by a plan's binary and each artifact.
fn check_source(problems: &mut Problems, at: &str, url: Option<&str>, path: Option<&str>) {
    problems.check(at, url.is_some() != path.is_some(), rules::ONE_SOURCE);
    if let Some(url) = url {
        problems.check(format!("{at}.url"), rules::is_allowed_url(url), rules::URL);
    }
    if let Some(path) = path {
        problems.check(format!("{at}.path"), rules::is_safe_path(path), rules::PATH);
    }
}

fn check_rollout(problems: &mut Problems, rollout: &RolloutSpec) {
    let max_unavailable_ok = match &rollout.max_unavailable {
        IntOrString::Int(nodes) => *nodes > 0,
        IntOrString::String(percentage) => rules::is_percentage(percentage),
    };
    problems.check(
        "spec.rollout.maxUnavailable",
        max_unavailable_ok,
        rules::MAX_UNAVAILABLE,
    );
    problems.check(
        "spec.rollout.canary",
        rollout.canary >= 0,
        rules::NON_NEGATIVE,
    );
    problems.check(
        "spec.rollout.soakSeconds",
        rollout.soak_seconds >= 0,
        rules::NON_NEGATIVE,
    );
}

fn check_drain(problems: &mut Problems, drain: &DrainSpec) {
    problems.check(
        "spec.drain.timeoutSeconds",
        drain.timeout_seconds > 0,
        rules::POSITIVE,
    );
}

fn check_verify(problems: &mut Problems, at: &str, verify: &VerifySpec) {
    let prepare = verify.prepare_timeout_seconds > 0;
    problems.check(
        format!("{at}.prepareTimeoutSeconds"),
        prepare,
        rules::POSITIVE,
    );
    let ready = verify.ready_timeout_seconds > 0;
    problems.check(format!("{at}.readyTimeoutSeconds"), ready, rules::POSITIVE);
    let settle = verify.settle_seconds >= 0;
    problems.check(format!("{at}.settleSeconds"), settle, rules::NON_NEGATIVE);
    let restarts = verify.max_unexpected_restarts >= 0;
    problems.check(
        format!("{at}.maxUnexpectedRestarts"),
        restarts,
        rules::NON_NEGATIVE,
    );
}

fn check_failure_policy(problems: &mut Problems, policy: &FailurePolicy) {
    let failed_ok = policy.max_failed_nodes >= 0;
    problems.check(
        "spec.failurePolicy.maxFailedNodes",
        failed_ok,
        rules::NON_NEGATIVE,
    );
}

fn check_window(problems: &mut Problems, window: &MaintenanceWindow) {
    problems.check(
        "spec.window",
        window.start != window.end,
        rules::WINDOW_LENGTH,
    );
    problems.check(
        "spec.window.start",
        rules::is_clock(&window.start),
        rules::CLOCK,
    );
    problems.check(
        "spec.window.end",
        rules::is_clock(&window.end),
        rules::CLOCK,
    );
    let zone_ok = rules::is_time_zone(&window.time_zone);
    problems.check("spec.window.timeZone", zone_ok, rules::TIME_ZONE);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(path: &str, message: &str) -> FieldError {
        FieldError {
            path: path.to_owned(),
            message: message.to_owned(),
        }
    }

    #[test]
    fn the_display_names_each_field_and_joins_them() {
        let invalid = InvalidSpec {
            errors: vec![
                error("spec.version", "must be x"),
                error("spec.binary", "must be y"),
            ],
        };
        assert_eq!(
            invalid.to_string(),
            "spec.version: must be x; spec.binary: must be y"
        );
    }
}
