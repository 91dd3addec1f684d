//! Names and labels derived from a plan and a node, computed the same way by every part.
//!
//! Object names and label values are limited to 253 and 63 bytes; node names can be longer than a
//! label allows, so NodeUpgrades carry a short digest of the node name as a label as well.

use sha2::{Digest, Sha256};

/// Longest object name Kubernetes accepts for a cluster-scoped custom resource.
const MAX_NAME_LEN: usize = 253;
/// Hex characters of digest kept in shortened names and in the node-hash label.
const DIGEST_LEN: usize = 10;

/// The `kubelift.dev/node-hash` label value for a node: a short, stable digest of its name.
#[must_use]
pub fn node_hash(node_name: &str) -> String {
    short_digest(node_name)
}

/// The name of the NodeUpgrade for `node` in `plan`: `<plan>-<node>`, or when that is too long,
/// its head followed by a digest of the whole so distinct pairs never collide.
#[must_use]
pub fn node_upgrade_name(plan: &str, node: &str) -> String {
    let full = format!("{plan}-{node}");
    if full.len() <= MAX_NAME_LEN {
        return full;
    }

    let keep = MAX_NAME_LEN - DIGEST_LEN - 1;
    let mut head: String = full.chars().take(keep).collect();
    while head.ends_with(['-', '.']) {
        head.pop();
    }
    format!("{head}-{}", short_digest(&full))
}

fn short_digest(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(digest)[..DIGEST_LEN].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_plan_dash_node() {
        assert_eq!(node_upgrade_name("patch", "node-a"), "patch-node-a");
    }

    #[test]
    fn long_names_are_cut_and_stay_distinct() {
        let node_a = format!("{}a", "n".repeat(260));
        let node_b = format!("{}b", "n".repeat(260));
        let name_a = node_upgrade_name("plan", &node_a);
        let name_b = node_upgrade_name("plan", &node_b);
        assert!(name_a.len() <= MAX_NAME_LEN);
        assert_ne!(name_a, name_b);
    }

    #[test]
    fn node_hash_fits_a_label_and_is_stable() {
        assert_eq!(node_hash("node-a"), node_hash("node-a"));
        assert_eq!(node_hash("node-a").len(), DIGEST_LEN);
        assert_ne!(node_hash("node-a"), node_hash("node-b"));
    }
}
