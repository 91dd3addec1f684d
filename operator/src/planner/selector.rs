//! Label-selector matching, so the planner decides which nodes and pods a plan covers without
//! asking the API server.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// Whether `labels` satisfy `selector` (no selector, or an empty one, matches everything).
#[must_use]
pub fn matches(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    let Some(selector) = selector else {
        return true;
    };

    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    let by_expressions = selector
        .match_expressions
        .iter()
        .flatten()
        .all(|requirement| requirement_holds(requirement, labels));
    by_labels && by_expressions
}

/// Problems with a selector's operators, one sentence each.
#[must_use]
pub fn problems(selector: &LabelSelector, field: &str) -> Vec<String> {
    let known = ["In", "NotIn", "Exists", "DoesNotExist"];
    selector
        .match_expressions
        .iter()
        .flatten()
        .filter(|requirement| !known.contains(&requirement.operator.as_str()))
        .map(|requirement| format!("{field}: unknown operator {:?}", requirement.operator))
        .collect()
}

fn requirement_holds(
    requirement: &LabelSelectorRequirement,
    labels: &BTreeMap<String, String>,
) -> bool {
    let value = labels.get(&requirement.key);
    let listed = |v: &String| {
        requirement
            .values
            .iter()
            .flatten()
            .any(|allowed| allowed == v)
    };
    match requirement.operator.as_str() {
        "In" => value.is_some_and(listed),
        "NotIn" => !value.is_some_and(listed),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}
