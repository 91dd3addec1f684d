//! kubelift's API: the `KubeletUpgrade` plan a user applies, and the `NodeUpgrade` work order the
//! operator hands to one node's helper.
//!
//! This crate ensures both sides of every contract in the design read and write the same shapes:
//! the types, their defaults, the names of labels, annotations, finalizers and field managers, and
//! the validation that refuses bad input before any node is touched: CEL rules in the CRD for the
//! API server, and `validate()` on each spec for the operator.

// Reason: the doc comments become the CRD descriptions `kubectl explain` shows; there Kubernetes
// kind names (DaemonSet, NodeUpgrade) read as words, and backticks around each would be noise.
#![allow(clippy::doc_markdown)]

pub mod common;
pub mod constants;
pub mod kubelet_upgrade;
pub mod manifest;
pub mod naming;
pub mod node_upgrade;
mod rules;
pub mod validation;
pub mod version;

pub use common::{
    BinaryArtifact, ContainerPolicy, ContainersSpec, DrainSpec, DrainTimeoutAction, FailurePolicy,
    VerifySpec,
};
pub use kubelet_upgrade::{
    BinarySource, KubeletUpgrade, KubeletUpgradeSpec, KubeletUpgradeStatus, MaintenanceWindow,
    PlanPhase, RolloutOrder, RolloutSpec, Weekday,
};
pub use node_upgrade::{
    ContainerVerdict, NodePhase, NodeUpgrade, NodeUpgradeSpec, NodeUpgradeStatus, ObservedRestart,
    PredictionCounts, Stage, Verdict,
};
pub use validation::{FieldError, InvalidSpec};
pub use version::{KubeVersion, VersionError};
