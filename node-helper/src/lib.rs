//! kubelift's node helper: the privileged per-node agent that upgrades this node's kubelet in
//! place and proves no container restarted.
//!
//! The node-local engine (CRI reader, prediction, snapshot, journal, stage, install, restart,
//! verify, rollback) is usable on its own — by the agent, by the offline `execute` command and by
//! the testbed; the agent adds the Kubernetes API side.

pub mod agent;
pub mod cluster;
pub mod context;
pub mod cri;
pub mod engine;
pub mod fsutil;
pub mod host;
pub mod journal;
pub mod kubelet;
pub mod metrics;
pub mod offline;
pub mod prediction;
pub mod runtime;
pub mod serve;
pub mod settings;
pub mod snapshot;
pub mod steps;
