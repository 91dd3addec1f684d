//! Names shared by the operator and the helpers: API group, field managers, finalizers, labels
//! and annotations. Each contract in the design that names a string names it here, once.

/// API group of kubelift's custom resources.
pub const GROUP: &str = "kubelift.dev";
/// API version of kubelift's custom resources.
pub const VERSION: &str = "v1alpha1";

/// Server-side-apply field manager of the operator (KubeletUpgrade status, NodeUpgrade spec).
pub const OPERATOR_MANAGER: &str = "kubelift-operator";
/// Server-side-apply field manager of the node helpers (NodeUpgrade status).
pub const NODE_HELPER_MANAGER: &str = "kubelift-node-helper";

/// Finalizer the operator keeps on a KubeletUpgrade so that deleting it cleans up nodes first.
pub const PLAN_FINALIZER: &str = "kubelift.dev/operator";
/// Finalizer a helper holds on a NodeUpgrade from Execute until a terminal phase.
pub const NODE_HELPER_FINALIZER: &str = "kubelift.dev/node-helper";

/// Label on a NodeUpgrade naming the KubeletUpgrade it belongs to.
pub const PLAN_LABEL: &str = "kubelift.dev/plan";
/// Label on a NodeUpgrade with a short hash of its node's name (node names may exceed 63 bytes).
pub const NODE_HASH_LABEL: &str = "kubelift.dev/node-hash";
/// Node label that keeps a node out of every plan when set to `"true"`.
pub const EXCLUDE_LABEL: &str = "kubelift.dev/exclude";
/// Node annotation naming the plan that cordoned the node; only that plan uncordons it.
pub const CORDONED_BY_ANNOTATION: &str = "kubelift.dev/cordoned-by";

/// Plan annotation whose new value asks to retry failed nodes (bumps `attempt`).
pub const RETRY_ANNOTATION: &str = "kubelift.dev/retry";
/// Plan annotation that releases an approval gate when it equals the plan's generation.
pub const RESUME_ANNOTATION: &str = "kubelift.dev/resume";

/// Field-selector path of a NodeUpgrade's node (declared as a CRD selectable field).
pub const NODE_NAME_FIELD: &str = "spec.nodeName";
/// Node label holding the node's CPU architecture; selects a per-architecture binary.
pub const ARCH_LABEL: &str = "kubernetes.io/arch";
