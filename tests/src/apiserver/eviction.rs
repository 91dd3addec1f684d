//! `pods/eviction` and `PodDisruptionBudgets`: the budget's status is computed here, under the
//! server's single lock, so concurrent evictions can never spend more than `disruptionsAllowed`;
//! `disruptedPods` remembers pods evicted but not yet gone.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::objects::{DeleteOptions, Deleted, State, now};
use super::resources::ResourceInfo;
use super::selectors::label_selector_object_matches;
use super::status::ApiError;
use super::store::Key;

/// How long an evicted pod counts as disrupted while it still exists.
const DISRUPTION_TTL_SECONDS: i64 = 120;

/// The arithmetic of one budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Pods the budget covers.
    pub expected: i64,
    /// Covered pods that are ready, not terminating and not recently evicted.
    pub healthy: i64,
    /// Pods that must stay healthy.
    pub desired: i64,
}

impl Budget {
    /// How many more pods may be disrupted.
    pub fn allowed(self) -> i64 {
        (self.healthy - self.desired).max(0)
    }
}

/// Evicts a pod if its budget allows: `Ok` when deleted (or already terminating).
pub fn evict(
    state: &mut State,
    pods: &ResourceInfo,
    key: &Key,
    body: &Value,
) -> Result<(), ApiError> {
    let pod = state.get(pods, key)?;
    let options = delete_options(body);
    if can_ignore_budget(&pod) {
        return delete(state, pods, key, &options);
    }
    let budgets = budgets_for(state, &pod);
    let (pdb_info, budget_key, budget) = match budgets.as_slice() {
        [] => return delete(state, pods, key, &options),
        [one] => one.clone(),
        _ => {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, \
                 which the eviction subresource does not support.",
            ));
        }
    };
    let numbers = compute(state, &budget);
    if !is_healthy(&pod) && numbers.healthy >= numbers.desired && numbers.desired > 0 {
        return delete(state, pods, key, &options);
    }
    if numbers.allowed() <= 0 {
        return Err(too_many_requests(&budget, numbers));
    }
    record_disruption(state, &pdb_info, budget_key, &budget, &key.1, numbers);
    delete(state, pods, key, &options)
}

fn delete(
    state: &mut State,
    pods: &ResourceInfo,
    key: &Key,
    options: &DeleteOptions,
) -> Result<(), ApiError> {
    match state.delete(pods, key, options)? {
        Deleted::Gone(_) | Deleted::Terminating(_) => Ok(()),
    }
}

fn delete_options(body: &Value) -> DeleteOptions {
    let options = &body["deleteOptions"];
    DeleteOptions {
        grace_period: options["gracePeriodSeconds"].as_i64(),
        propagation: options["propagationPolicy"].as_str().map(str::to_owned),
        uid: options["preconditions"]["uid"].as_str().map(str::to_owned),
        resource_version: options["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_owned),
        dry_run: options["dryRun"].as_array().is_some_and(|d| !d.is_empty()),
    }
}

fn can_ignore_budget(pod: &Value) -> bool {
    let terminating = pod["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    let phase = pod["status"]["phase"].as_str();
    terminating || matches!(phase, Some("Succeeded" | "Failed" | "Pending"))
}

fn is_healthy(pod: &Value) -> bool {
    let conditions = pod["status"]["conditions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let ready = conditions
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    ready
        && pod["metadata"]
            .get("deletionTimestamp")
            .is_none_or(Value::is_null)
}

fn pdb_info(state: &State) -> Option<ResourceInfo> {
    state
        .registry
        .find("policy", "v1", "poddisruptionbudgets")
        .cloned()
}

fn budgets_for(state: &State, pod: &Value) -> Vec<(ResourceInfo, Key, Arc<Value>)> {
    let Some(info) = pdb_info(state) else {
        return Vec::new();
    };
    let namespace = pod["metadata"]["namespace"].as_str();
    state
        .store
        .list(&info.store, namespace)
        .filter(|(_, pdb)| selects(pdb, pod))
        .map(|(key, pdb)| (info.clone(), key.clone(), pdb.clone()))
        .collect()
}

fn selects(pdb: &Value, pod: &Value) -> bool {
    let selector = &pdb["spec"]["selector"];
    !selector.is_null() && label_selector_object_matches(selector, pod)
}

/// Computes a budget's numbers from the pods it selects.
pub fn compute(state: &State, pdb: &Value) -> Budget {
    let namespace = pdb["metadata"]["namespace"].as_str();
    let disrupted = pdb["status"]["disruptedPods"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let pods: Vec<Arc<Value>> = state
        .store
        .list("pods", namespace)
        .filter(|(_, pod)| selects(pdb, pod))
        .map(|(_, pod)| pod.clone())
        .collect();
    let expected = i64::try_from(pods.len()).unwrap_or(i64::MAX);
    let healthy = pods
        .iter()
        .filter(|p| is_healthy(p))
        .filter(|p| {
            p["metadata"]["name"]
                .as_str()
                .is_none_or(|n| !disrupted.contains_key(n))
        })
        .count();
    let healthy = i64::try_from(healthy).unwrap_or(i64::MAX);
    Budget {
        expected,
        healthy,
        desired: desired_healthy(&pdb["spec"], expected),
    }
}

fn desired_healthy(spec: &Value, expected: i64) -> i64 {
    if let Some(min) = spec.get("minAvailable").filter(|v| !v.is_null()) {
        return scaled(min, expected);
    }
    if let Some(max) = spec.get("maxUnavailable").filter(|v| !v.is_null()) {
        return (expected - scaled(max, expected)).max(0);
    }
    expected
}

/// An int-or-percent scaled against `total`, rounding percentages up.
pub fn scaled(value: &Value, total: i64) -> i64 {
    match value {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(percent) => (percent * total + 99) / 100,
            None => s.parse().unwrap_or(0),
        },
        _ => 0,
    }
}

fn too_many_requests(pdb: &Value, numbers: Budget) -> ApiError {
    let name = pdb["metadata"]["name"].as_str().unwrap_or_default();
    let cause = format!(
        "The disruption budget {name} needs {} healthy pods and has {} currently",
        numbers.desired, numbers.healthy
    );
    ApiError::new(
        429,
        "TooManyRequests",
        "Cannot evict pod as it would violate the pod's disruption budget.",
    )
    .with_details(json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]}))
}

fn record_disruption(
    state: &mut State,
    info: &ResourceInfo,
    key: Key,
    pdb: &Value,
    pod_name: &str,
    numbers: Budget,
) {
    let mut updated = pdb.clone();
    let mut disrupted = pdb["status"]["disruptedPods"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    disrupted.insert(pod_name.to_owned(), json!(now()));
    let after = Budget {
        healthy: numbers.healthy - 1,
        ..numbers
    };
    updated["status"] = status(pdb, after, &disrupted);
    state.store.put(&info.store, key, updated);
}

fn status(pdb: &Value, numbers: Budget, disrupted: &Map<String, Value>) -> Value {
    let allowed = numbers.allowed();
    let (condition, reason) = if allowed > 0 {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    let previous = pdb["status"]["conditions"][0].clone();
    let since = if previous["status"] == condition {
        previous["lastTransitionTime"].clone()
    } else {
        json!(now())
    };
    json!({
        "observedGeneration": pdb["metadata"]["generation"],
        "disruptedPods": disrupted,
        "disruptionsAllowed": allowed,
        "currentHealthy": numbers.healthy,
        "desiredHealthy": numbers.desired,
        "expectedPods": numbers.expected,
        "conditions": [{
            "type": "DisruptionAllowed", "status": condition, "reason": reason,
            "message": "", "lastTransitionTime": since,
            "observedGeneration": pdb["metadata"]["generation"],
        }],
    })
}

/// Recomputes the status of every budget in a namespace, writing only real changes.
pub fn refresh_budgets(state: &mut State, namespace: &Value) {
    let Some(info) = pdb_info(state) else { return };
    let namespace = namespace.as_str();
    let budgets: Vec<(Key, Arc<Value>)> = state
        .store
        .list(&info.store, namespace)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (key, pdb) in budgets {
        let disrupted = live_disruptions(state, &pdb);
        let mut probe = (*pdb).clone();
        probe["status"]["disruptedPods"] = Value::Object(disrupted.clone());
        let numbers = compute(state, &probe);
        let fresh = status(&pdb, numbers, &disrupted);
        if strip_time(&fresh) != strip_time(&pdb["status"]) {
            let mut updated = (*pdb).clone();
            updated["status"] = fresh;
            state.store.put(&info.store, key, updated);
        }
    }
}

fn live_disruptions(state: &State, pdb: &Value) -> Map<String, Value> {
    let namespace = pdb["metadata"]["namespace"].as_str().unwrap_or_default();
    let cutoff = chrono::Utc::now() - chrono::Duration::seconds(DISRUPTION_TTL_SECONDS);
    let mut disrupted = pdb["status"]["disruptedPods"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    disrupted.retain(|name, at| {
        let exists = state
            .store
            .get("pods", &(namespace.to_owned(), name.clone()))
            .is_some();
        let recent = at
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| t > cutoff);
        exists && recent
    });
    disrupted
}

fn strip_time(status: &Value) -> Value {
    let mut status = status.clone();
    if let Some(condition) = status["conditions"]
        .get_mut(0)
        .and_then(Value::as_object_mut)
    {
        condition.remove("lastTransitionTime");
    }
    status
}
