//! In-memory object storage: one global revision counter stamped as `resourceVersion` on every
//! write, and a bounded history of change events from which watches resume or get 410 Gone.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::watch;

/// `(namespace, name)`; the namespace is empty for cluster-scoped objects.
pub type Key = (String, String);

/// The type of a change event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object was changed.
    Modified,
    /// The object was removed.
    Deleted,
}

/// One committed change.
#[derive(Debug)]
pub struct Event {
    /// Revision of the change.
    pub revision: u64,
    /// Storage key of the resource.
    pub store: Arc<str>,
    /// Namespace of the object.
    pub namespace: String,
    /// Change type.
    pub kind: EventType,
    /// The object after the change (the last state for deletions).
    pub object: Arc<Value>,
    /// The object before the change.
    pub previous: Option<Arc<Value>>,
}

/// What watchers wake up on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signal {
    /// Latest committed revision.
    pub revision: u64,
    /// Bumped by a forced compaction: open watches end with 410.
    pub compactions: u64,
    /// Bumped to drop every open watch stream.
    pub drops: u64,
}

/// A resourceVersion older than the retained history.
#[derive(Debug, Clone, Copy)]
pub struct TooOld {
    /// The oldest revision a watch may still start from.
    pub oldest: u64,
}

/// All objects and the retained history.
#[derive(Debug)]
pub struct Store {
    objects: HashMap<Arc<str>, BTreeMap<Key, Arc<Value>>>,
    revision: u64,
    history: VecDeque<Arc<Event>>,
    oldest: u64,
    limit: usize,
    signal: watch::Sender<Signal>,
}

impl Store {
    /// An empty store keeping at most `limit` events of history.
    pub fn new(limit: usize) -> Self {
        let (signal, _) = watch::channel(Signal::default());
        Self {
            objects: HashMap::new(),
            revision: 0,
            history: VecDeque::new(),
            oldest: 0,
            limit: limit.max(1),
            signal,
        }
    }

    /// Subscribes to commit, compaction and drop signals.
    pub fn subscribe(&self) -> watch::Receiver<Signal> {
        self.signal.subscribe()
    }

    /// The latest committed revision.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The oldest revision a watch can resume from.
    pub fn oldest(&self) -> u64 {
        self.oldest
    }

    /// One object.
    pub fn get(&self, store: &str, key: &Key) -> Option<&Arc<Value>> {
        self.objects.get(store)?.get(key)
    }

    /// Objects of a resource, optionally in one namespace, ordered by namespace and name.
    pub fn list<'a>(
        &'a self,
        store: &str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Arc<Value>)> + 'a {
        self.objects
            .get(store)
            .into_iter()
            .flat_map(|objects| objects.iter())
            .filter(move |((ns, _), _)| namespace.is_none_or(|wanted| ns == wanted))
    }

    /// Stores `object` under a new revision and records the change.
    pub fn put(&mut self, store: &Arc<str>, key: Key, mut object: Value) -> Arc<Value> {
        let revision = self.next_revision();
        object["metadata"]["resourceVersion"] = Value::String(revision.to_string());
        let object = Arc::new(object);
        let previous = self
            .objects
            .entry(store.clone())
            .or_default()
            .insert(key.clone(), object.clone());
        let kind = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(store, key.0, kind, object.clone(), previous);
        object
    }

    /// Removes an object under a new revision and records the deletion.
    pub fn remove(&mut self, store: &Arc<str>, key: &Key) -> Option<Arc<Value>> {
        let previous = self.objects.get_mut(store)?.remove(key)?;
        let revision = self.next_revision();
        let mut last = (*previous).clone();
        last["metadata"]["resourceVersion"] = Value::String(revision.to_string());
        let last = Arc::new(last);
        self.record(
            store,
            key.0.clone(),
            EventType::Deleted,
            last.clone(),
            Some(previous),
        );
        Some(last)
    }

    /// Events after `revision`, or [`TooOld`] when history no longer covers it.
    pub fn events_after(&self, revision: u64) -> Result<Vec<Arc<Event>>, TooOld> {
        if revision < self.oldest {
            return Err(TooOld {
                oldest: self.oldest,
            });
        }
        let start = self.history.partition_point(|e| e.revision <= revision);
        Ok(self.history.range(start..).cloned().collect())
    }

    /// Forgets all history: open watches end with 410, older resourceVersions are expired.
    pub fn compact(&mut self) {
        self.history.clear();
        self.oldest = self.revision;
        self.signal.send_modify(|s| s.compactions += 1);
    }

    /// Ends every open watch stream.
    pub fn drop_watches(&self) {
        self.signal.send_modify(|s| s.drops += 1);
    }

    fn next_revision(&mut self) -> u64 {
        self.revision += 1;
        self.revision
    }

    fn record(
        &mut self,
        store: &Arc<str>,
        namespace: String,
        kind: EventType,
        object: Arc<Value>,
        previous: Option<Arc<Value>>,
    ) {
        let revision = self.revision;
        let event = Event {
            revision,
            store: store.clone(),
            namespace,
            kind,
            object,
            previous,
        };
        self.history.push_back(Arc::new(event));
        while self.history.len() > self.limit {
            if let Some(dropped) = self.history.pop_front() {
                self.oldest = dropped.revision;
            }
        }
        self.signal.send_modify(|s| s.revision = revision);
    }
}
