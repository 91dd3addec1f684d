//! `kubectl kubelift`: plan, watch and steer kubelet rollouts from the command line.

fn main() {}
