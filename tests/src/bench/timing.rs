//! The rollout's ideal and its overhead. The ideal is `batches × per-node kubelet work`: with
//! `canary` canaries done one at a time, then batches of `maxUnavailable` nodes, and the only
//! work a node needs being its kubelet's restart. The overhead is how much longer the measured
//! wall time is, in percent of the ideal. Also spreads (min, p50, p90, max) of measured spans.

use std::time::Duration;

use serde::Serialize;

/// Nodes per batch for `maxUnavailable: <percent>%` over `nodes` targeted nodes, as the
/// operator resolves it (rounded down, at least one).
#[must_use]
pub fn per_batch(nodes: usize, percent: usize) -> usize {
    (nodes * percent / 100).max(1)
}

/// Batches a rollout of `nodes` takes: each canary alone, then the rest `per_batch` at a time.
#[must_use]
pub fn batches(nodes: usize, canary: usize, per_batch: usize) -> usize {
    let canary = canary.min(nodes);
    canary + (nodes - canary).div_ceil(per_batch.max(1))
}

/// Overhead of `wall` over `ideal`, in percent of the ideal.
#[must_use]
pub fn overhead_percent(wall: Duration, ideal: Duration) -> f64 {
    let ideal = ideal.as_secs_f64().max(f64::EPSILON);
    (wall.as_secs_f64() - ideal) / ideal * 100.0
}

/// The spread of a set of durations, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Spread {
    /// How many were measured.
    pub count: usize,
    /// Shortest.
    pub min: f64,
    /// Median (nearest rank).
    pub p50: f64,
    /// 90th percentile (nearest rank).
    pub p90: f64,
    /// Longest.
    pub max: f64,
}

impl Spread {
    /// The spread of `durations` (all zero when empty).
    #[must_use]
    pub fn of(mut durations: Vec<Duration>) -> Self {
        durations.sort();
        let at = |percent: usize| {
            let rank = (durations.len() * percent).div_ceil(100).max(1);
            durations.get(rank - 1).map_or(0.0, Duration::as_secs_f64)
        };
        Self {
            count: durations.len(),
            min: at(0),
            p50: at(50),
            p90: at(90),
            max: at(100),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_percent_of_twenty_nodes_is_two_and_of_five_nodes_still_one() {
        assert_eq!(per_batch(20, 10), 2);
        assert_eq!(per_batch(50, 10), 5);
        assert_eq!(per_batch(5, 10), 1);
    }

    #[test]
    fn a_canary_goes_alone_before_full_batches() {
        assert_eq!(batches(20, 1, 2), 11);
        assert_eq!(batches(50, 1, 5), 11);
        assert_eq!(batches(3, 1, 1), 3);
        assert_eq!(batches(5000, 0, 500), 10);
        assert_eq!(batches(1, 3, 1), 1);
    }

    #[test]
    fn overhead_is_the_excess_over_the_ideal_in_percent() {
        let ideal = Duration::from_secs(10);
        assert!((overhead_percent(Duration::from_millis(10_200), ideal) - 2.0).abs() < 1e-9);
        assert!((overhead_percent(Duration::from_secs(25), ideal) - 150.0).abs() < 1e-9);
    }

    #[test]
    fn spread_takes_nearest_rank_percentiles() {
        let durations = (1..=10).map(Duration::from_secs).collect();
        let spread = Spread::of(durations);
        assert_eq!(spread.count, 10);
        assert!((spread.min - 1.0).abs() < f64::EPSILON);
        assert!((spread.p50 - 5.0).abs() < f64::EPSILON);
        assert!((spread.p90 - 9.0).abs() < f64::EPSILON);
        assert!((spread.max - 10.0).abs() < f64::EPSILON);
        assert_eq!(Spread::of(Vec::new()), Spread::default());
    }
}
