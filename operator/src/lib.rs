//! kubelift's rollout controller: a pure planner that decides, a thin reconciler that gathers
//! inputs and applies decisions, and the operations around them (leader election, metrics,
//! health). The `kubectl-kubelift` plugin shares the planner for `plan`.
#![allow(
    clippy::doc_markdown,
    reason = "Kubernetes kinds (NodeUpgrade, KubeletUpgrade, NotReady) read as prose in docs"
)]

pub mod cli;
pub mod metrics;
pub mod planner;
pub mod plugin;
pub mod reasons;
pub mod reconciler;
pub mod server;
