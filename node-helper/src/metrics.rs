//! The helper's Prometheus metrics: how long each step takes and why upgrades fail.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label set naming a step.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    /// The step, e.g. `Staged`.
    pub step: String,
}

/// Label set naming a failure reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// The `PascalCase` reason.
    pub reason: String,
}

/// The helper's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    /// Seconds each completed step took.
    pub step_seconds: Family<StepLabels, Histogram>,
    /// Failed attempts by reason.
    pub failures: Family<ReasonLabels, Counter>,
    /// Upgrades that reached `Succeeded`.
    pub succeeded: Counter,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let step_seconds = Family::<StepLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.01, 2.0, 16))
        });
        let failures = Family::<ReasonLabels, Counter>::default();
        let succeeded = Counter::default();
        let mut registry = Registry::with_prefix("kubelift_node_helper");
        registry.register(
            "step_duration_seconds",
            "Seconds each step took",
            step_seconds.clone(),
        );
        registry.register(
            "failures",
            "Failed node upgrades by reason",
            failures.clone(),
        );
        registry.register(
            "upgrades_succeeded",
            "Node upgrades that succeeded",
            succeeded.clone(),
        );
        Self {
            step_seconds,
            failures,
            succeeded,
            registry,
        }
    }
}

impl Metrics {
    /// Records a completed step's duration.
    pub fn step_done(&self, step: &str, seconds: f64) {
        self.step_seconds
            .get_or_create(&StepLabels {
                step: step.to_owned(),
            })
            .observe(seconds);
    }

    /// Counts a failure.
    pub fn failed(&self, reason: &str) {
        self.failures
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// The metrics in the Prometheus text format.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}
