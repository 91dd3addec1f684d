//! A loopback HTTP server for kubelet artifacts: serves named byte blobs at `/<name>`, counts the
//! requests, and can answer `503` to the first requests of a blob to exercise download retries.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

#[derive(Debug, Default)]
struct Blobs {
    files: HashMap<String, Vec<u8>>,
    failures_left: HashMap<String, usize>,
    requests: HashMap<String, usize>,
}

/// A running artifact server; stops when dropped.
#[derive(Debug)]
pub struct ArtifactServer {
    addr: SocketAddr,
    blobs: Arc<Mutex<Blobs>>,
    task: tokio::task::JoinHandle<()>,
}

impl ArtifactServer {
    /// Starts the server on an ephemeral loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let blobs = Arc::new(Mutex::new(Blobs::default()));
        let app = Router::new()
            .route("/{name}", get(serve))
            .with_state(blobs.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, blobs, task })
    }

    /// Publishes `bytes` as `/<name>` and returns its URL.
    #[must_use = "the URL is where the helper downloads from"]
    pub fn publish(&self, name: &str, bytes: Vec<u8>) -> String {
        self.lock().files.insert(name.to_owned(), bytes);
        self.url(name)
    }

    /// Makes the next `count` requests for `name` fail with `503`.
    pub fn fail_next(&self, name: &str, count: usize) {
        self.lock().failures_left.insert(name.to_owned(), count);
    }

    /// How many requests `name` received.
    #[must_use]
    pub fn requests(&self, name: &str) -> usize {
        self.lock().requests.get(name).copied().unwrap_or(0)
    }

    /// The URL of `name`.
    #[must_use]
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Blobs> {
        self.blobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ArtifactServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(State(blobs): State<Arc<Mutex<Blobs>>>, Path(name): Path<String>) -> Response {
    let mut blobs = blobs.lock().unwrap_or_else(PoisonError::into_inner);
    *blobs.requests.entry(name.clone()).or_default() += 1;
    if let Some(left) = blobs.failures_left.get_mut(&name)
        && *left > 0
    {
        *left -= 1;
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match blobs.files.get(&name) {
        Some(bytes) => bytes.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
