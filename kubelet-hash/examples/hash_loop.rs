//! Hashes one benchmark container many times, for instruction counts under
//! `valgrind --tool=callgrind` (stable on a loaded machine, unlike wall-clock time).
//!
//! `cargo build --release -p kubelet-hash --example hash_loop`, then
//! `valgrind --tool=callgrind target/release/examples/hash_loop app v1.30.2 1000`.

#![allow(clippy::unwrap_used, missing_docs, reason = "profiling driver")]

#[path = "../benches/containers/mod.rs"]
mod containers;

use std::hint::black_box;

use kubelet_hash::{HashOptions, KubeletVersion, hash};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let container = match args.get(1).map(String::as_str) {
        Some("typical") => containers::TYPICAL,
        Some("sidecar") => containers::SIDECAR,
        _ => containers::APP,
    };
    let kubelet: KubeletVersion = args
        .get(2)
        .map_or("v1.30.2", String::as_str)
        .parse()
        .unwrap();
    let count: u32 = args.get(3).map_or(Ok(1000), |n| n.parse()).unwrap();
    let options = HashOptions::default();
    let mut last = String::new();
    for _ in 0..count {
        last = hash(black_box(container), &kubelet, &options).unwrap();
    }
    println!("{last}");
}
