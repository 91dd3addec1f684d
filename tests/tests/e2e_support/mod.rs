//! Shared fixtures of the end-to-end tests: a machine-wide lock so that end-to-end tests run one
//! at a time (across test binaries too), a runtime per test, and sandbox helpers.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::fs::File;
use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kubelift_crds::NodeUpgrade;
use kubelift_testbed::sandbox::{Sandbox, SandboxConfig};
use nix::fcntl::{Flock, FlockArg};

/// Generous bound for anything awaited on a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(300);

/// Holds the end-to-end lock while alive.
pub struct E2eLock(#[allow(dead_code, reason = "held for its Drop")] Flock<File>);

/// Takes the machine-wide end-to-end lock (blocking until the running end-to-end test ends).
pub fn lock() -> E2eLock {
    let path = std::env::temp_dir().join("kubelift-e2e.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap();
    E2eLock(
        Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .unwrap(),
    )
}

/// Runs `test` under the end-to-end lock on a fresh runtime.
pub fn run<F: Future<Output = ()>>(test: F) {
    let _lock = lock();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(test);
}

/// A sandbox with `nodes` nodes, small timings, progress printed (shown on failure).
pub fn config(nodes: usize) -> SandboxConfig {
    let mut config = SandboxConfig::new(nodes);
    config.print = true;
    config.timeout = Duration::from_secs(300);
    config
}

/// Starts a sandbox, failing loudly with the cause.
pub async fn start(config: SandboxConfig) -> Sandbox {
    match Sandbox::start(config).await {
        Ok(sandbox) => sandbox,
        Err(error) => panic!("sandbox starts: {}", chain(&error)),
    }
}

/// The full error chain, on one line.
pub use kubelift_node_helper::engine::error_chain as chain;

/// Waits (by watch) until some `NodeUpgrade` satisfies `condition`; returns it.
pub async fn wait_node_upgrade(
    client: &kube::Client,
    condition: impl Fn(&NodeUpgrade) -> bool,
) -> NodeUpgrade {
    let api: Api<NodeUpgrade> = Api::all(client.clone());
    let mut events = watcher(api, watcher::Config::default())
        .applied_objects()
        .boxed();
    let found = tokio::time::timeout(PATIENCE, async {
        loop {
            match events.next().await {
                Some(Ok(upgrade)) if condition(&upgrade) => return upgrade,
                Some(_) => {}
                None => panic!("the watch ended"),
            }
        }
    });
    found
        .await
        .expect("a NodeUpgrade reached the condition in time")
}

/// The node's kubelet file bytes.
pub fn kubelet_bytes(sandbox: &mut Sandbox, index: usize) -> Vec<u8> {
    std::fs::read(sandbox.nodes_mut()[index].kubelet_path()).unwrap()
}
