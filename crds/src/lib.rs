//! kubelift's API: the `KubeletUpgrade` plan and the per-node `NodeUpgrade` work order.
