//! The restart-prediction model: which container hash a given kubelet version computes.
//!
//! Pure and free of I/O; see `../shared/kubelet-hash/SPEC.md` for the facts it encodes.
