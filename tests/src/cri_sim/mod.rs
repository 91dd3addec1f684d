//! A simulated CRI runtime: the real CRI protocol (`k8s-cri`, gRPC over a unix socket) in front
//! of in-memory sandboxes and containers, so that large simulated clusters need no containerd.
//! Containers run nothing but keep their labels, annotations, timestamps and state, which is
//! all the kubelet emulator and the node helper look at. State lives as long as the server.

mod service;
mod state;

use std::path::{Path, PathBuf};

use k8s_cri::v1::image_service_server::ImageServiceServer;
use k8s_cri::v1::runtime_service_server::RuntimeServiceServer;
use tokio::net::UnixListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnixListenerStream;

pub use service::RUNTIME_NAME;

/// Failures of starting or running the simulated runtime.
#[derive(Debug, thiserror::Error)]
pub enum CriSimError {
    /// The socket path could not be prepared or bound.
    #[error("failed to bind the CRI socket {path}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server stopped with an error.
    #[error("failed to serve CRI")]
    Serve(#[source] tonic::transport::Error),
    /// The server task panicked or was cancelled.
    #[error("failed to join the CRI server task")]
    Join(#[source] tokio::task::JoinError),
}

/// A running simulated runtime; it stops serving on drop or [`CriSimServer::shutdown`].
#[derive(Debug)]
pub struct CriSimServer {
    socket: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
}

impl CriSimServer {
    /// Binds `socket` (replacing a stale socket file) and serves both CRI services on it.
    pub fn start(socket: &Path) -> Result<CriSimServer, CriSimError> {
        let listener = bind(socket)?;
        let service = service::SimService::default();
        let (stop, stopped) = oneshot::channel::<()>();
        let serve = tonic::transport::Server::builder()
            .add_service(RuntimeServiceServer::new(service.clone()))
            .add_service(ImageServiceServer::new(service))
            .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async move {
                let _stopped = stopped.await;
            });
        let task = tokio::spawn(serve);
        tracing::info!(socket = %socket.display(), "simulated CRI runtime listening");
        Ok(CriSimServer {
            socket: socket.to_owned(),
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The unix socket it serves on.
    #[must_use]
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Serves until the task ends (it only ends on error or shutdown).
    pub async fn wait(mut self) -> Result<(), CriSimError> {
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(CriSimError::Join)?
                .map_err(CriSimError::Serve),
            None => Ok(()),
        }
    }

    /// Stops serving and removes the socket file.
    pub async fn shutdown(mut self) -> Result<(), CriSimError> {
        if let Some(stop) = self.stop.take() {
            let _sent = stop.send(());
        }
        self.wait_task().await
    }

    async fn wait_task(&mut self) -> Result<(), CriSimError> {
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(CriSimError::Join)?
                .map_err(CriSimError::Serve),
            None => Ok(()),
        }
    }
}

impl Drop for CriSimServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _sent = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
        let _removed = std::fs::remove_file(&self.socket);
    }
}

fn bind(socket: &Path) -> Result<UnixListener, CriSimError> {
    let failed = |source| CriSimError::Bind {
        path: socket.to_owned(),
        source,
    };
    if let Some(parent) = socket.parent() {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(failed(e)),
    }
    UnixListener::bind(socket).map_err(failed)
}
