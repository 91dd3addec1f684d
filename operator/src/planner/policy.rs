//! The container policies of DESIGN contract 4: from a helper's prediction, whether a node is
//! held, and which pods must leave it before its kubelet is swapped.

use kubelift_crds::{
    ContainerPolicy, ContainerVerdict, ContainersSpec, DrainSpec, NodeUpgradeStatus, Verdict,
};

use super::input::{PodSet, PodView};
use super::selector;
use crate::reasons;

/// Containers named in a hold reason before "and N more".
const NAMED_CONTAINERS: usize = 3;

/// What the policy makes of a prepared node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Do not upgrade: the hold reason, `<Reason>: <detail>`.
    Hold(String),
    /// Upgrade after evicting these pods.
    Proceed(Evictions),
}

/// Which pods leave the node before the swap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evictions {
    /// None.
    None,
    /// Exactly these (`namespace/name`), because a container of theirs would restart.
    Named(PodSet),
    /// Every evictable pod (a drain, or a prediction list too long to name them all).
    All,
}

/// Apply the container policy to a helper's prediction.
#[must_use]
pub fn decide(containers: &ContainersSpec, report: &NodeUpgradeStatus) -> Decision {
    let restarting: Vec<&ContainerVerdict> = report
        .containers
        .iter()
        .filter(|c| c.verdict != Verdict::Preserved)
        .collect();
    let counted = report
        .prediction
        .as_ref()
        .map_or(0, |p| p.will_restart + p.unknown);
    let any_restart = counted > 0 || !restarting.is_empty();

    if containers.snapshot_aware_kubelet || !any_restart {
        return match containers.policy {
            ContainerPolicy::Drain => Decision::Proceed(Evictions::All),
            _ => Decision::Proceed(Evictions::None),
        };
    }
    if containers.policy == ContainerPolicy::Preserve {
        return Decision::Hold(hold(
            &restarting,
            counted,
            "would restart under policy Preserve",
        ));
    }

    let unevictable: Vec<&ContainerVerdict> = restarting
        .iter()
        .copied()
        .filter(|c| c.not_evictable)
        .collect();
    if containers.protect_daemon_sets && !unevictable.is_empty() {
        let count = i32::try_from(unevictable.len()).unwrap_or(i32::MAX);
        return Decision::Hold(hold(
            &unevictable,
            count,
            "would restart in DaemonSet or static pods (protectDaemonSets)",
        ));
    }
    Decision::Proceed(evictions(containers.policy, &restarting, report.truncated))
}

/// The pods that still have to leave the node: evictable, matching the drain selector, not
/// finished, and chosen by `evictions`.
#[must_use]
pub fn pods_to_evict<'a>(
    pods: &'a [PodView],
    evictions: &Evictions,
    drain: &DrainSpec,
) -> Vec<&'a PodView> {
    pods.iter()
        .filter(|pod| !pod.daemon_set && !pod.mirror && !pod.finished)
        .filter(|pod| selector::matches(drain.pod_selector.as_ref(), &pod.labels))
        .filter(|pod| match evictions {
            Evictions::None => false,
            Evictions::All => true,
            Evictions::Named(names) => names.contains(&format!("{}/{}", pod.namespace, pod.name)),
        })
        .collect()
}

fn evictions(
    policy: ContainerPolicy,
    restarting: &[&ContainerVerdict],
    truncated: bool,
) -> Evictions {
    if policy == ContainerPolicy::Drain || truncated {
        return Evictions::All;
    }
    let named: PodSet = restarting
        .iter()
        .filter(|c| !c.not_evictable)
        .map(|c| format!("{}/{}", c.pod_namespace, c.pod_name))
        .collect();
    if named.is_empty() {
        Evictions::None
    } else {
        Evictions::Named(named)
    }
}

fn hold(containers: &[&ContainerVerdict], count: i32, what: &str) -> String {
    let mut names: Vec<String> = containers
        .iter()
        .take(NAMED_CONTAINERS)
        .map(|c| format!("{}/{}/{}", c.pod_namespace, c.pod_name, c.container))
        .collect();
    let more = usize::try_from(count)
        .unwrap_or(0)
        .saturating_sub(names.len());
    if more > 0 {
        names.push(format!("and {more} more"));
    }
    let noun = if count == 1 {
        "container"
    } else {
        "containers"
    };
    format!(
        "{}: {count} {noun} {what}: {}",
        reasons::HOLD_CONTAINERS_WOULD_RESTART,
        names.join(", ")
    )
}
