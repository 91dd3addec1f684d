//! Container hashes per second on realistic containers as the API server serves them (target:
//! ≥ 100,000 per second on one core).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "benchmark harness"
)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kubelet_hash::{HashOptions, KubeletVersion, hash, predict};

mod containers;

use containers::{APP, SIDECAR, TYPICAL};

fn hashes(c: &mut Criterion) {
    let options = HashOptions::default();
    let mut group = c.benchmark_group("hash");
    group.throughput(Throughput::Elements(1));
    for (label, kubelet) in [
        ("app_v1.30", "v1.30.2"),
        ("app_v1.24", "v1.24.17"),
        ("app_v1.31", "v1.31.2"),
    ] {
        let kubelet: KubeletVersion = kubelet.parse().unwrap();
        group.bench_function(label, |b| b.iter(|| hash(APP, &kubelet, &options).unwrap()));
    }
    let kubelet: KubeletVersion = "v1.30.2".parse().unwrap();
    group.bench_function("typical_v1.30", |b| {
        b.iter(|| hash(TYPICAL, &kubelet, &options).unwrap());
    });
    group.bench_function("sidecar_v1.30", |b| {
        b.iter(|| hash(SIDECAR, &kubelet, &options).unwrap());
    });
    group.finish();

    let pod = format!(r#"{{"spec":{{"initContainers":[{SIDECAR}],"containers":[{APP},{APP}]}}}}"#);
    let (from, to) = ("v1.30.6".parse().unwrap(), "v1.31.2".parse().unwrap());
    let mut group = c.benchmark_group("predict");
    group.throughput(Throughput::Elements(3));
    group.bench_function("pod_of_3", |b| {
        b.iter(|| predict(&pod, &from, &to, None).unwrap());
    });
    group.finish();
}

criterion_group!(benches, hashes);
criterion_main!(benches);
