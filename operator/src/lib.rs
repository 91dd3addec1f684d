//! kubelift's rollout controller: a pure planner that decides, a thin reconciler that gathers
//! inputs and applies decisions, and the operations around them (leader election, metrics,
//! health). The `kubectl-kubelift` plugin shares the planner for `plan`.

pub mod planner;
pub mod reasons;
