//! The operator's HTTP endpoints: `/healthz` (the process runs), `/readyz` (caches are synced),
//! `/metrics` (Prometheus text format).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::metrics::Metrics;

/// Why the HTTP server stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding or serving failed.
    #[error("failed to serve health and metrics endpoints")]
    Serve(#[source] std::io::Error),
}

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
}

/// Bind `address` and return the bound address and the serving future.
pub async fn bind(
    address: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
) -> Result<(SocketAddr, impl Future<Output = Result<(), Error>>), Error> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(Error::Serve)?;
    let bound = listener.local_addr().map_err(Error::Serve)?;
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Shared { metrics, ready });
    let serve = async move { axum::serve(listener, router).await.map_err(Error::Serve) };
    Ok((bound, serve))
}

async fn readyz(State(shared): State<Shared>) -> (StatusCode, &'static str) {
    if shared.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced")
    }
}

async fn metrics_text(State(shared): State<Shared>) -> String {
    shared.metrics.render()
}
