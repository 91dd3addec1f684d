//! An in-memory Kubernetes API server for tests, the sandbox and kubectl: served over plain HTTP
//! on 127.0.0.1 and in-process as a tower service, faithful to the semantics controllers rely
//! on (resourceVersions, watches, finalizers, status subresources, server-side apply, CRDs,
//! selectors, evictions with `PodDisruptionBudgets`). One lock serialises all writes.

mod apply;
pub mod bench;
mod convert;
mod crd;
mod defaulting;
mod discovery;
mod eviction;
mod faults;
mod fieldpath;
mod gc;
mod handler;
mod objects;
mod patch;
mod resources;
mod routes;
mod schema;
mod selectors;
mod status;
mod store;
mod tables;
mod watch;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use faults::{FaultMatch, Faults};
pub use status::ApiError;
pub use tables::human_duration;

use faults::FaultRules;
use objects::State;

/// How the server is started.
#[derive(Debug, Clone)]
pub struct ApiServerConfig {
    /// Reported by `/version` (kubectl's dispatcher picks its client release from it).
    pub server_version: String,
    /// Evaluate CRD CEL validation rules (off: objects that slipped past the schema are stored).
    pub enforce_cel: bool,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Watch events retained; a watch resuming from an older revision gets 410 Gone.
    pub history_limit: usize,
    /// Interval between bookmarks on watches that allow them.
    pub bookmark_interval: Duration,
    /// Watch duration when the client sets no `timeoutSeconds`.
    pub watch_timeout: Duration,
}

impl Default for ApiServerConfig {
    fn default() -> Self {
        Self {
            server_version: "v1.33.0".to_owned(),
            enforce_cel: false,
            port: 0,
            history_limit: 10_000,
            bookmark_interval: Duration::from_secs(5),
            watch_timeout: Duration::from_secs(1800),
        }
    }
}

/// Failures of starting or stopping the server.
#[derive(Debug, thiserror::Error)]
pub enum ApiServerError {
    /// The listener could not be bound.
    #[error("failed to bind the API server listener")]
    Bind(#[source] std::io::Error),
    /// The bound address could not be read.
    #[error("failed to read the API server address")]
    Address(#[source] std::io::Error),
    /// The server task failed.
    #[error("failed to run the API server")]
    Serve(#[source] tokio::task::JoinError),
}

/// One served request, for tests checking RBAC coverage and per-component traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// RBAC verb: get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
    /// API group (empty for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Plural resource name.
    pub resource: String,
    /// Subresource such as `status` or `eviction`.
    pub subresource: Option<String>,
    /// Namespace, if the path had one.
    pub namespace: Option<String>,
    /// Object name, if the path had one.
    pub name: Option<String>,
    /// The `fieldSelector` query parameter, if any (to tell a node-scoped pod watch from a
    /// cluster-wide one).
    pub field_selector: Option<String>,
    /// The `labelSelector` query parameter, if any.
    pub label_selector: Option<String>,
    /// The request's User-Agent.
    pub user_agent: String,
    /// HTTP status code of the answer.
    pub code: u16,
}

/// State shared by the handler, watches and handles.
struct Shared {
    state: Mutex<State>,
    config: ApiServerConfig,
    address: String,
    log: Mutex<Vec<RequestRecord>>,
    faults: FaultRules,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, record: RequestRecord) {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(record);
    }
}

/// A running server; it stops on drop or [`ApiServer::shutdown`].
pub struct ApiServer {
    shared: Arc<Shared>,
    router: axum::Router,
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

fn server_minor(version: &str) -> u32 {
    version
        .trim_start_matches('v')
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(33)
}

impl ApiServer {
    /// Binds 127.0.0.1 and starts serving.
    pub async fn start(config: ApiServerConfig) -> Result<ApiServer, ApiServerError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(ApiServerError::Bind)?;
        let address = listener.local_addr().map_err(ApiServerError::Address)?;
        let mut state = State::new(config.history_limit, server_minor(&config.server_version));
        state.enforce_cel = config.enforce_cel;
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            config,
            address: address.to_string(),
            log: Mutex::new(Vec::new()),
            faults: FaultRules::default(),
        });
        let router = axum::Router::new()
            .fallback(handler::handle)
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let serve = axum::serve(listener, router.clone()).with_graceful_shutdown(async move {
            let _stopped = stopped.await;
        });
        let task = tokio::spawn(async move { serve.await });
        tracing::info!(%address, "API server listening");
        Ok(ApiServer {
            shared,
            router,
            address,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The bound address.
    #[must_use]
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A client over loopback HTTP with the User-Agent `kubelift-testbed`.
    #[must_use]
    pub fn client(&self) -> kube::Client {
        self.client_with_user_agent("kubelift-testbed")
    }

    /// A client over loopback HTTP; the request log attributes its requests to `user_agent`.
    #[must_use]
    pub fn client_with_user_agent(&self, user_agent: &str) -> kube::Client {
        let connector =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<kube::client::Body>();
        let base = ::http::Uri::try_from(self.url()).unwrap_or_default();
        let service = tower::ServiceBuilder::new()
            .layer(kube::client::middleware::BaseUriLayer::new(base))
            .map_request(user_agent_setter(user_agent))
            .service(connector);
        kube::Client::new(service, "default")
    }

    /// A client calling the router directly, without a socket.
    #[must_use]
    pub fn in_process_client(&self) -> kube::Client {
        let service = tower::ServiceBuilder::new()
            .map_request(user_agent_setter("kubelift-testbed-in-process"))
            .service(self.router.clone());
        kube::Client::new(service, "default")
    }

    /// Writes a kubeconfig pointing at this server (namespace `default`, no credentials).
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        let kubeconfig = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kubelift", "cluster": {"server": self.url()}}],
            "users": [{"name": "kubelift", "user": {}}],
            "contexts": [{"name": "kubelift", "context": {
                "cluster": "kubelift", "user": "kubelift", "namespace": "default"
            }}],
            "current-context": "kubelift",
            "preferences": {},
        });
        std::fs::write(path, format!("{kubeconfig:#}\n"))
    }

    /// Every request served so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.shared
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Fault injection.
    #[must_use]
    pub fn faults(&self) -> Faults {
        Faults {
            shared: self.shared.clone(),
        }
    }

    /// The latest committed revision (resourceVersion).
    #[must_use]
    pub fn revision(&self) -> u64 {
        self.shared.lock().store.revision()
    }

    /// Stops serving: closes watches, then waits for the server task.
    pub async fn shutdown(mut self) -> Result<(), ApiServerError> {
        self.stop_serving();
        if let Some(task) = self.task.take() {
            let finished = tokio::time::timeout(Duration::from_secs(10), task).await;
            if let Ok(joined) = finished {
                let _served = joined.map_err(ApiServerError::Serve)?;
            }
        }
        Ok(())
    }

    fn stop_serving(&mut self) {
        self.shared.lock().store.drop_watches();
        if let Some(stop) = self.stop.take() {
            let _sent = stop.send(());
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop_serving();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A request as the kube client's HTTP stack carries it.
type HttpRequest = ::http::Request<kube::client::Body>;

fn user_agent_setter(user_agent: &str) -> impl Fn(HttpRequest) -> HttpRequest + Clone + use<> {
    let value = ::http::HeaderValue::from_str(user_agent)
        .unwrap_or_else(|_| ::http::HeaderValue::from_static("kubelift-testbed"));
    move |mut request| {
        request
            .headers_mut()
            .insert(::http::header::USER_AGENT, value.clone());
        request
    }
}
