//! The order nodes are upgraded in. It depends only on the nodes' names, roles and zones, so
//! every pass over the same cluster picks the same next node and concurrency never creeps up.

use std::collections::BTreeMap;

use kubelift_crds::RolloutOrder;

use super::input::NodeView;

/// The nodes in upgrade order: control-plane nodes first, then the rest, each group in `order`;
/// the operator's own node always last.
#[must_use]
pub fn ordered<'a>(
    nodes: &[&'a NodeView],
    order: RolloutOrder,
    operator_node: Option<&str>,
) -> Vec<&'a NodeView> {
    let is_own = |node: &&NodeView| Some(node.name.as_str()) == operator_node;
    let group = |control_plane: bool| -> Vec<&'a NodeView> {
        let members: Vec<&'a NodeView> = nodes
            .iter()
            .copied()
            .filter(|node| node.is_control_plane() == control_plane && !is_own(node))
            .collect();
        arrange(members, order)
    };

    let mut result = group(true);
    result.extend(group(false));
    result.extend(nodes.iter().copied().filter(is_own));
    result
}

fn arrange(mut nodes: Vec<&NodeView>, order: RolloutOrder) -> Vec<&NodeView> {
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    match order {
        RolloutOrder::Name => nodes,
        RolloutOrder::ZoneRoundRobin => round_robin(&nodes),
    }
}

fn round_robin<'a>(sorted: &[&'a NodeView]) -> Vec<&'a NodeView> {
    let mut zones: BTreeMap<&str, std::collections::VecDeque<&NodeView>> = BTreeMap::new();
    for node in sorted {
        zones.entry(node.zone()).or_default().push_back(node);
    }

    let mut result = Vec::with_capacity(sorted.len());
    while result.len() < sorted.len() {
        for queue in zones.values_mut() {
            if let Some(node) = queue.pop_front() {
                result.push(node);
            }
        }
    }
    result
}
