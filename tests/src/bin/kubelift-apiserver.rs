//! `kubelift-apiserver`: an in-memory Kubernetes API server on loopback.

fn main() {}
