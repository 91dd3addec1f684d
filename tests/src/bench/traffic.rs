//! Who asked the API server for what: the request log attributed to a component by its
//! User-Agent, counted per call (`verb resource[/subresource]`), and the one read DESIGN §5
//! forbids the operator: a pod watch over the whole cluster (no namespace, no field selector).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::apiserver::RequestRecord;

/// User-Agent prefix of the operator (`kubelift_operator::cli::USER_AGENT`).
pub const OPERATOR_AGENT: &str = "kubelift-operator/";

/// User-Agent prefix of the node helpers (`kubelift_node_helper::agent::USER_AGENT`).
pub const HELPER_AGENT: &str = "kubelift-node-helper/";

/// One component's requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// Requests in all.
    pub total: usize,
    /// Requests per call, `verb resource[/subresource]`.
    pub by_call: BTreeMap<String, usize>,
}

impl Traffic {
    /// Requests per unit (per node upgraded), zero when there is none.
    #[must_use]
    pub fn per(&self, units: usize) -> f64 {
        if units == 0 {
            return 0.0;
        }
        ratio(self.total, units)
    }

    /// The calls, most frequent first, as `verb resource ×count`.
    #[must_use]
    pub fn top(&self, count: usize) -> String {
        let mut calls: Vec<(&String, &usize)> = self.by_call.iter().collect();
        calls.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let shown: Vec<String> = calls
            .iter()
            .take(count)
            .map(|(call, n)| format!("{call} ×{n}"))
            .collect();
        shown.join(", ")
    }
}

fn ratio(count: usize, units: usize) -> f64 {
    let as_f64 = |n: usize| f64::from(u32::try_from(n).unwrap_or(u32::MAX));
    as_f64(count) / as_f64(units)
}

/// The requests whose User-Agent starts with `agent`, counted.
#[must_use]
pub fn traffic(records: &[RequestRecord], agent: &str) -> Traffic {
    let mut counted = Traffic::default();
    for record in records.iter().filter(|r| r.user_agent.starts_with(agent)) {
        counted.total += 1;
        *counted.by_call.entry(call(record)).or_default() += 1;
    }
    counted
}

/// `verb resource[/subresource]`.
fn call(record: &RequestRecord) -> String {
    match &record.subresource {
        Some(sub) => format!("{} {}/{sub}", record.verb, record.resource),
        None => format!("{} {}", record.verb, record.resource),
    }
}

/// Whether the request is a watch of core pods across every namespace with no field selector.
#[must_use]
pub fn is_cluster_pod_watch(record: &RequestRecord) -> bool {
    record.verb == "watch"
        && record.group.is_empty()
        && record.resource == "pods"
        && record.namespace.is_none()
        && record.field_selector.as_deref().is_none_or(str::is_empty)
}

/// How many cluster-wide pod watches the component `agent` opened.
#[must_use]
pub fn cluster_pod_watches(records: &[RequestRecord], agent: &str) -> usize {
    records
        .iter()
        .filter(|r| r.user_agent.starts_with(agent) && is_cluster_pod_watch(r))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(agent: &str, verb: &str, resource: &str) -> RequestRecord {
        RequestRecord {
            verb: verb.to_owned(),
            group: String::new(),
            version: "v1".to_owned(),
            resource: resource.to_owned(),
            subresource: None,
            namespace: None,
            name: None,
            field_selector: None,
            label_selector: None,
            user_agent: agent.to_owned(),
            code: 200,
        }
    }

    #[test]
    fn the_prefixes_match_the_components_own_user_agents() {
        assert!(kubelift_operator::cli::USER_AGENT.starts_with(OPERATOR_AGENT));
        assert!(kubelift_node_helper::agent::USER_AGENT.starts_with(HELPER_AGENT));
    }

    #[test]
    fn requests_are_attributed_by_user_agent_and_counted_per_call() {
        let mut status = record("kubelift-operator/0.1.0", "patch", "kubeletupgrades");
        status.subresource = Some("status".to_owned());
        let records = [
            record("kubelift-operator/0.1.0", "create", "nodeupgrades"),
            record("kubelift-operator/0.1.0", "create", "nodeupgrades"),
            status,
            record("kubelift-node-helper/0.1.0", "get", "nodeupgrades"),
        ];
        let operator = traffic(&records, OPERATOR_AGENT);
        assert_eq!(operator.total, 3);
        assert_eq!(operator.by_call["create nodeupgrades"], 2);
        assert_eq!(operator.by_call["patch kubeletupgrades/status"], 1);
        assert!((operator.per(2) - 1.5).abs() < f64::EPSILON);
        assert_eq!(operator.top(1), "create nodeupgrades ×2");
        assert_eq!(traffic(&records, HELPER_AGENT).total, 1);
    }

    #[test]
    fn only_an_unscoped_pod_watch_counts_as_cluster_wide() {
        let agent = "kubelift-operator/0.1.0";
        let cluster = record(agent, "watch", "pods");
        let mut on_a_node = record(agent, "watch", "pods");
        on_a_node.field_selector = Some("spec.nodeName=node-01".to_owned());
        let mut in_a_namespace = record(agent, "watch", "pods");
        in_a_namespace.namespace = Some("default".to_owned());
        let list = record(agent, "list", "pods");
        let records = [cluster.clone(), on_a_node, in_a_namespace, list];
        assert!(is_cluster_pod_watch(&cluster));
        assert_eq!(cluster_pod_watches(&records, OPERATOR_AGENT), 1);
        assert_eq!(cluster_pod_watches(&records, HELPER_AGENT), 0);
    }
}
