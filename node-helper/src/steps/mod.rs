//! The node-local steps of Execute, one module each. Every step is idempotent: run again after a
//! crash, it finds its own earlier work and completes it instead of repeating it.

pub mod install;
pub mod ownership;
pub mod restart;
pub mod snapshot;
pub mod stage;
pub mod verify;
