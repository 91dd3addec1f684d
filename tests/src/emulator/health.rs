//! `/healthz` on 127.0.0.1, as the kubelet serves it: 200 `ok` once the emulator has completed
//! its first pod sync after starting (so a caller that sees it healthy also sees the kubelet's
//! rule applied), 503 before that and forever under the `never-healthy` fault.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::StatusCode;

/// Failures of serving health.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The port could not be bound.
    #[error("failed to bind the healthz port {port}")]
    Bind {
        /// The port asked for.
        port: u16,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The termination signal handler could not be installed.
    #[error("failed to install the signal handler")]
    Signal(#[source] std::io::Error),
}

/// Whether the emulator is healthy: it may be (no fault) and it has synced once.
#[derive(Debug, Clone)]
pub(crate) struct Health {
    allowed: bool,
    synced: Arc<AtomicBool>,
}

impl Health {
    pub(crate) fn new(allowed: bool) -> Self {
        Health {
            allowed,
            synced: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Records that a full sync completed.
    pub(crate) fn mark_synced(&self) {
        self.synced.store(true, Ordering::Release);
    }

    pub(crate) fn is_healthy(&self) -> bool {
        self.allowed && self.synced.load(Ordering::Acquire)
    }

    /// Whether the Node may report Ready (always, unless the never-healthy fault is on).
    pub(crate) fn allowed(&self) -> bool {
        self.allowed
    }
}

/// Binds the port and returns it with the serving future.
pub(crate) async fn bind(
    port: u16,
    health: Health,
) -> Result<(u16, impl Future<Output = ()>), HealthError> {
    let failed = |source| HealthError::Bind { port, source };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(failed)?;
    let bound = listener.local_addr().map_err(failed)?.port();
    let router = axum::Router::new().route(
        "/healthz",
        axum::routing::get(move || {
            let health = health.clone();
            async move {
                if health.is_healthy() {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not healthy")
                }
            }
        }),
    );
    let serve = async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::warn!(%error, "healthz server stopped");
        }
    };
    Ok((bound, serve))
}
