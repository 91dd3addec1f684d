//! The operator's view of Nodes: a watch that decodes only the fields the planner needs (name,
//! labels, readiness, cordon and its mark, kubelet version; see `node_fields`) and caches them,
//! so a fleet of large Node objects costs a few hundred bytes each, even while a list arrives.
//! A change to any kept field wakes every plan.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use kubelift_crds::constants::CORDONED_BY_ANNOTATION;
use tokio::sync::mpsc;

use super::node_fields::NodeFields;
use crate::planner::NodeView;

/// Slim nodes by name, shared between the watch task and the reconciler.
#[derive(Clone, Default)]
pub struct NodeCache {
    nodes: Arc<RwLock<BTreeMap<String, NodeView>>>,
    synced: Arc<std::sync::atomic::AtomicBool>,
}

impl NodeCache {
    /// Every node, as the planner sees it.
    #[must_use]
    pub fn snapshot(&self) -> Vec<NodeView> {
        self.nodes
            .read()
            .map(|n| n.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether the first full list has arrived.
    #[must_use]
    pub fn is_synced(&self) -> bool {
        self.synced.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Watch Nodes forever, keeping the cache current; yields `()` whenever a kept field changes.
    pub fn watch(&self, client: Client) -> impl Stream<Item = ()> + Send + 'static {
        let (changed, rx) = mpsc::channel(1);
        let cache = self.clone();
        tokio::spawn(async move {
            let events = watcher(Api::<NodeFields>::all(client), watcher::Config::default())
                .default_backoff();
            let mut events = std::pin::pin!(events);
            let mut fresh = BTreeMap::new();
            while let Some(event) = events.next().await {
                match event {
                    Ok(event) => {
                        if cache.absorb(event, &mut fresh) {
                            let _ = changed.try_send(());
                        }
                    }
                    Err(error) => tracing::warn!(%error, "node watch failed; retrying"),
                }
            }
        });
        tokio_stream_from(rx)
    }

    /// Fold one watch event into the cache; true when the planner's view changed.
    fn absorb(
        &self,
        event: watcher::Event<NodeFields>,
        fresh: &mut BTreeMap<String, NodeView>,
    ) -> bool {
        let Ok(mut nodes) = self.nodes.write() else {
            return false;
        };
        match event {
            watcher::Event::Init => {
                fresh.clear();
                false
            }
            watcher::Event::InitApply(node) => {
                let view = view(&node);
                fresh.insert(view.name.clone(), view);
                false
            }
            watcher::Event::InitDone => {
                *nodes = std::mem::take(fresh);
                self.synced
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                true
            }
            watcher::Event::Apply(node) => {
                let view = view(&node);
                nodes.insert(view.name.clone(), view.clone()) != Some(view)
            }
            watcher::Event::Delete(node) => nodes
                .remove(node.metadata.name.as_deref().unwrap_or_default())
                .is_some(),
        }
    }
}

/// The planner's view of a Node as the watch decodes it.
#[must_use]
pub fn view(node: &NodeFields) -> NodeView {
    let status = node.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    NodeView {
        name: node.metadata.name.clone().unwrap_or_default(),
        labels: node.metadata.labels.clone().unwrap_or_default(),
        ready,
        unschedulable: node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false),
        cordoned_by: node
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CORDONED_BY_ANNOTATION).cloned()),
        kubelet_version: status
            .and_then(|s| s.node_info.as_ref())
            .map(|i| i.kubelet_version.clone())
            .unwrap_or_default(),
    }
}

fn tokio_stream_from(mut rx: mpsc::Receiver<()>) -> impl Stream<Item = ()> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
