//! Prometheus metrics: plans and nodes by phase, rollout duration, evictions, node failures by
//! reason and reconcile errors by category, rendered in the text exposition format.

use std::collections::BTreeMap;
use std::sync::Mutex;

use kubelift_crds::{KubeletUpgradeStatus, PlanPhase};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A `phase` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    /// The phase.
    pub phase: String,
}

/// A `reason` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// The reason or category.
    pub reason: String,
}

/// The operator's metrics.
pub struct Metrics {
    registry: Registry,
    plans: Family<PhaseLabel, Gauge>,
    nodes: Family<PhaseLabel, Gauge>,
    /// Seconds from a plan's first node to its completion.
    pub rollout_duration: Histogram,
    /// Evictions the API server accepted.
    pub evictions: Counter,
    failures: Family<ReasonLabel, Counter>,
    errors: Family<ReasonLabel, Counter>,
    statuses: Mutex<BTreeMap<String, KubeletUpgradeStatus>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Register every metric.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let plans = Family::<PhaseLabel, Gauge>::default();
        let nodes = Family::<PhaseLabel, Gauge>::default();
        let rollout_duration = Histogram::new(exponential_buckets(30.0, 2.0, 12));
        let evictions = Counter::default();
        let failures = Family::<ReasonLabel, Counter>::default();
        let errors = Family::<ReasonLabel, Counter>::default();
        registry.register("kubelift_plans", "KubeletUpgrades by phase", plans.clone());
        registry.register(
            "kubelift_nodes",
            "Targeted nodes by phase, over all plans",
            nodes.clone(),
        );
        registry.register(
            "kubelift_rollout_duration_seconds",
            "Seconds from a plan's first node to its completion",
            rollout_duration.clone(),
        );
        registry.register(
            "kubelift_evictions",
            "Pod evictions accepted",
            evictions.clone(),
        );
        registry.register(
            "kubelift_node_failures",
            "Nodes failed, by reason",
            failures.clone(),
        );
        registry.register(
            "kubelift_reconcile_errors",
            "Failed reconciles, by category",
            errors.clone(),
        );
        Metrics {
            registry,
            plans,
            nodes,
            rollout_duration,
            evictions,
            failures,
            errors,
            statuses: Mutex::default(),
        }
    }

    /// Record a plan's latest status and recompute the by-phase gauges.
    pub fn record_plan(&self, plan: &str, status: &KubeletUpgradeStatus) {
        let Ok(mut statuses) = self.statuses.lock() else {
            return;
        };
        statuses.insert(plan.to_owned(), status.clone());

        self.plans.clear();
        self.nodes.clear();
        for status in statuses.values() {
            let phase = status.phase.unwrap_or(PlanPhase::Pending);
            self.plans
                .get_or_create(&label(&format!("{phase:?}")))
                .inc();
            let counts = [
                ("Upgraded", status.upgraded),
                ("InProgress", status.in_progress),
                ("Failed", status.failed),
                ("Blocked", status.blocked),
                ("Skipped", status.skipped),
            ];
            for (phase, count) in counts {
                self.nodes
                    .get_or_create(&label(phase))
                    .inc_by(i64::from(count));
            }
        }
    }

    /// Count a node failure under its reason.
    pub fn node_failure(&self, reason: &str) {
        self.failures
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Count a failed reconcile under its category.
    pub fn reconcile_error(&self, category: &str) {
        self.errors
            .get_or_create(&ReasonLabel {
                reason: category.to_owned(),
            })
            .inc();
    }

    /// The text exposition of every metric.
    #[must_use]
    pub fn render(&self) -> String {
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

fn label(phase: &str) -> PhaseLabel {
    PhaseLabel {
        phase: phase.to_owned(),
    }
}
