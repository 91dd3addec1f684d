//! A bounded loopback load benchmark: M writers patch `ConfigMap`s over HTTP while N watchers
//! stream them; reports sustained writes per second and watch fan-out latency (from the write
//! call to each watcher's receipt). Not a timed test: it only measures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

use super::{ApiServer, ApiServerConfig, ApiServerError};

/// Annotation carrying the write time in nanoseconds since the benchmark started.
const STAMP: &str = "bench.kubelift.dev/written-at-ns";

/// The load to generate.
#[derive(Debug, Clone, Copy)]
pub struct LoadSpec {
    /// Concurrent watch streams.
    pub watchers: usize,
    /// Concurrent writers, each patching its own `ConfigMap`.
    pub writers: usize,
    /// Writes per writer.
    pub writes_per_writer: usize,
}

/// What the benchmark measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Writes committed.
    pub writes: usize,
    /// Wall time of the write phase.
    pub write_time: Duration,
    /// Watch events delivered across all watchers.
    pub events: usize,
    /// Fan-out latency percentiles: p50, p90, p99, max.
    pub latency: [Duration; 4],
}

impl LoadReport {
    /// Sustained writes per second.
    #[must_use]
    pub fn writes_per_second(&self) -> f64 {
        let writes = u32::try_from(self.writes).unwrap_or(u32::MAX);
        f64::from(writes) / self.write_time.as_secs_f64().max(f64::EPSILON)
    }
}

/// Failures of the benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The server did not start.
    #[error("failed to start the API server")]
    Start(#[from] ApiServerError),
    /// A request failed.
    #[error("failed to talk to the API server")]
    Request(#[from] kube::Error),
    /// Watchers did not receive every event in time.
    #[error("failed to deliver every event: {delivered} of {expected}")]
    Incomplete {
        /// Events delivered.
        delivered: usize,
        /// Events expected.
        expected: usize,
    },
}

/// Runs the benchmark against a fresh server on loopback.
pub async fn run(spec: LoadSpec) -> Result<LoadReport, BenchError> {
    let server = ApiServer::start(ApiServerConfig {
        history_limit: 1_000_000,
        ..Default::default()
    })
    .await?;
    let maps: Api<ConfigMap> =
        Api::default_namespaced(server.client_with_user_agent("kubelift-bench"));
    for writer in 0..spec.writers {
        let map = serde_json::from_value(json!({"metadata": {"name": format!("load-{writer}")}}))
            .unwrap_or_default();
        maps.create(&PostParams::default(), &map).await?;
    }
    let start = Arc::new(Instant::now());
    let expected = spec.writers * spec.writes_per_writer;
    let revision = server.revision().to_string();
    let mut watchers = Vec::new();
    for _ in 0..spec.watchers {
        let api: Api<ConfigMap> =
            Api::default_namespaced(server.client_with_user_agent("kubelift-bench-watcher"));
        let stream = api.watch(&WatchParams::default(), &revision).await?.boxed();
        watchers.push(tokio::spawn(receive(stream, expected, start.clone())));
    }

    let began = Instant::now();
    let writers: Vec<_> = (0..spec.writers)
        .map(|w| {
            tokio::spawn(write(
                server.client_with_user_agent("kubelift-bench-writer"),
                w,
                spec,
                start.clone(),
            ))
        })
        .collect();
    for writer in futures::future::join_all(writers).await {
        writer.unwrap_or(Ok(()))?;
    }
    let write_time = began.elapsed();

    let mut latencies = Vec::new();
    for watcher in futures::future::join_all(watchers).await {
        latencies.extend(watcher.unwrap_or_default());
    }
    server.shutdown().await?;
    if latencies.len() < expected * spec.watchers {
        return Err(BenchError::Incomplete {
            delivered: latencies.len(),
            expected: expected * spec.watchers,
        });
    }
    Ok(report(expected, write_time, latencies))
}

async fn write(
    client: kube::Client,
    writer: usize,
    spec: LoadSpec,
    start: Arc<Instant>,
) -> Result<(), BenchError> {
    let maps: Api<ConfigMap> = Api::default_namespaced(client);
    let name = format!("load-{writer}");
    for seq in 0..spec.writes_per_writer {
        let stamp = start.elapsed().as_nanos().to_string();
        let body =
            json!({"metadata": {"annotations": {STAMP: stamp}}, "data": {"seq": seq.to_string()}});
        maps.patch(&name, &PatchParams::default(), &Patch::Merge(body))
            .await?;
    }
    Ok(())
}

async fn receive(
    mut stream: futures::stream::BoxStream<'static, kube::Result<WatchEvent<ConfigMap>>>,
    expected: usize,
    start: Arc<Instant>,
) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(expected);
    let deadline = tokio::time::sleep(Duration::from_secs(600));
    tokio::pin!(deadline);
    while latencies.len() < expected {
        let event = tokio::select! {
            () = &mut deadline => break,
            event = stream.next() => event,
        };
        let Some(Ok(WatchEvent::Modified(map))) = event else {
            if event.is_none() {
                break;
            }
            continue;
        };
        let stamp = map
            .metadata
            .annotations
            .and_then(|a| a.get(STAMP).and_then(|s| s.parse::<u128>().ok()));
        if let Some(written) = stamp {
            let now = start.elapsed().as_nanos();
            let nanos = u64::try_from(now.saturating_sub(written)).unwrap_or(u64::MAX);
            latencies.push(Duration::from_nanos(nanos));
        }
    }
    latencies
}

fn report(writes: usize, write_time: Duration, mut latencies: Vec<Duration>) -> LoadReport {
    latencies.sort();
    let at = |q: usize| {
        latencies
            .get((latencies.len().saturating_sub(1)) * q / 100)
            .copied()
            .unwrap_or_default()
    };
    LoadReport {
        writes,
        write_time,
        events: latencies.len(),
        latency: [at(50), at(90), at(99), at(100)],
    }
}
