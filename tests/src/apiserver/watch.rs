//! Watch streams: chunked `WatchEvent` lines resumed from a resourceVersion (or starting with
//! the current state), bookmarks, streaming lists ending in the `k8s.io/initial-events-end`
//! bookmark, filtered-watch transitions, Table-form events, timeouts, and 410 Gone in-stream.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Shared;
use super::convert;
use super::resources::ResourceInfo;
use super::selectors::Selectors;
use super::status::ApiError;
use super::store::{Event, EventType};
use super::tables::{self, IncludeObject};

/// A parsed watch request.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    /// The watched resource.
    pub info: ResourceInfo,
    /// Namespace filter.
    pub namespace: Option<String>,
    /// Label and field selectors.
    pub selectors: Selectors,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `sendInitialEvents`.
    pub send_initial_events: bool,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// When the stream closes.
    pub timeout: Duration,
    /// Table-form events, with what rows carry.
    pub table: Option<IncludeObject>,
}

/// Starts a watch and returns the streaming response body. The starting point is fixed before
/// this returns, so changes made after the response arrives are never missed.
pub fn start(shared: Arc<Shared>, request: WatchRequest) -> axum::body::Body {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let (mut signals, initial) = {
        let state = shared.lock();
        (state.store.subscribe(), initial_state(&state, &request))
    };
    let start = *signals.borrow_and_update();
    let sender = Sender {
        tx,
        request,
        columns_sent: false,
    };
    tokio::spawn(run(
        shared,
        sender,
        Opening {
            signals,
            start,
            initial,
        },
    ));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|line| (Ok::<_, Infallible>(line), rx))
    });
    axum::body::Body::from_stream(stream)
}

/// Where a watch starts.
struct Opening {
    signals: tokio::sync::watch::Receiver<super::store::Signal>,
    start: super::store::Signal,
    initial: Initial,
}

struct Sender {
    tx: mpsc::Sender<Bytes>,
    request: WatchRequest,
    columns_sent: bool,
}

impl Sender {
    async fn event(&mut self, kind: &str, stored: &Value) -> Result<(), ()> {
        let served = convert::to_served(&self.request.info, stored);
        let object = match self.request.table {
            Some(include) => {
                let rv = served["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let table = tables::table(
                    &self.request.info,
                    &[served],
                    &rv,
                    !self.columns_sent,
                    include,
                );
                self.columns_sent = true;
                table
            }
            None => served,
        };
        self.send(&json!({"type": kind, "object": object})).await
    }

    async fn bookmark(&mut self, revision: u64, initial_end: bool) -> Result<(), ()> {
        let info = &self.request.info;
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object =
            json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": metadata});
        self.send(&json!({"type": "BOOKMARK", "object": object}))
            .await
    }

    async fn error(&mut self, error: &ApiError) {
        let _closing = self
            .send(&json!({"type": "ERROR", "object": error.to_status()}))
            .await;
    }

    async fn send(&mut self, line: &Value) -> Result<(), ()> {
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        self.tx.send(Bytes::from(bytes)).await.map_err(|_| ())
    }
}

async fn run(shared: Arc<Shared>, mut sender: Sender, opening: Opening) {
    let timeout = sender.request.timeout;
    let bookmark_interval = shared.config.bookmark_interval;
    let Opening {
        mut signals,
        start,
        initial,
    } = opening;
    let Ok(cursor) = send_initial(&mut sender, initial).await else {
        return;
    };
    let Ok(mut cursor) = forward(&shared, &mut sender, cursor).await else {
        return;
    };

    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + bookmark_interval,
        bookmark_interval,
    );
    loop {
        tokio::select! {
            () = &mut deadline => return,
            () = sender.tx.closed() => return,
            changed = signals.changed() => {
                if changed.is_err() {
                    return;
                }
                let signal = *signals.borrow_and_update();
                if signal.drops != start.drops {
                    return;
                }
                if signal.compactions != start.compactions {
                    sender.error(&ApiError::expired(cursor, signal.revision)).await;
                    return;
                }
                let Ok(next) = forward(&shared, &mut sender, cursor).await else { return };
                cursor = next;
            }
            _ = ticker.tick(), if sender.request.bookmarks => {
                if sender.bookmark(cursor, false).await.is_err() {
                    return;
                }
            }
        }
    }
}

enum Initial {
    Objects {
        objects: Vec<Arc<Value>>,
        revision: u64,
        end_bookmark: bool,
    },
    From(u64),
    Expired(ApiError),
}

fn initial_state(state: &super::objects::State, request: &WatchRequest) -> Initial {
    let requested = request
        .resource_version
        .as_deref()
        .filter(|rv| !rv.is_empty());
    let from_revision = match requested {
        _ if request.send_initial_events => None,
        None | Some("0") => None,
        Some(rv) => Some(rv.parse::<u64>().unwrap_or(0)),
    };
    if let Some(revision) = from_revision {
        if revision < state.store.oldest() {
            return Initial::Expired(ApiError::expired(revision, state.store.oldest()));
        }
        return Initial::From(revision);
    }
    let objects = state
        .store
        .list(&request.info.store, request.namespace.as_deref())
        .filter(|(_, o)| request.selectors.matches(o))
        .map(|(_, o)| o.clone())
        .collect();
    Initial::Objects {
        objects,
        revision: state.store.revision(),
        end_bookmark: request.send_initial_events && request.bookmarks,
    }
}

async fn send_initial(sender: &mut Sender, initial: Initial) -> Result<u64, ()> {
    match initial {
        Initial::Expired(error) => {
            sender.error(&error).await;
            Err(())
        }
        Initial::From(revision) => Ok(revision),
        Initial::Objects {
            objects,
            revision,
            end_bookmark,
        } => {
            for object in objects {
                sender.event("ADDED", &object).await?;
            }
            if end_bookmark {
                sender.bookmark(revision, true).await?;
            }
            Ok(revision)
        }
    }
}

async fn forward(shared: &Shared, sender: &mut Sender, cursor: u64) -> Result<u64, ()> {
    let batch = {
        let state = shared.lock();
        state
            .store
            .events_after(cursor)
            .map(|events| (events, state.store.revision()))
    };
    let (events, revision) = match batch {
        Ok(batch) => batch,
        Err(too_old) => {
            sender
                .error(&ApiError::expired(cursor, too_old.oldest))
                .await;
            return Err(());
        }
    };
    for event in events {
        if let Some((kind, object)) = visible(&sender.request, &event) {
            sender.event(kind, object).await?;
        }
    }
    Ok(revision)
}

/// How an event looks to a filtered watch: objects entering the filter are ADDED, objects
/// leaving it are DELETED.
fn visible<'e>(request: &WatchRequest, event: &'e Event) -> Option<(&'static str, &'e Value)> {
    if *event.store != *request.info.store {
        return None;
    }
    if request
        .namespace
        .as_deref()
        .is_some_and(|ns| ns != event.namespace)
    {
        return None;
    }
    let now = request.selectors.matches(&event.object);
    let before = event
        .previous
        .as_deref()
        .is_some_and(|p| request.selectors.matches(p));
    match event.kind {
        EventType::Modified if now && before => Some(("MODIFIED", &event.object)),
        EventType::Added | EventType::Modified if now => Some(("ADDED", &event.object)),
        EventType::Modified if before => Some(("DELETED", &event.object)),
        EventType::Deleted if before || now => Some(("DELETED", &event.object)),
        _ => None,
    }
}
