//! The write path every verb shares: identity and namespace checks, resourceVersion
//! preconditions, spec/status isolation, defaulting and pruning, generation rules, managed
//! fields, finalizers and graceful deletion, no-op detection and the commit itself.

use std::sync::Arc;

use serde_json::{Value, json};

use super::apply::{self, Writer};
use super::convert;
use super::crd;
use super::defaulting;
use super::patch::{self, PatchKind};
use super::resources::{Registry, ResourceInfo, from_crd};
use super::schema::Schema;
use super::status::ApiError;
use super::store::{Key, Store};

/// Everything behind the server's lock.
#[derive(Debug)]
pub struct State {
    /// Objects and history.
    pub store: Store,
    /// Served resources.
    pub registry: Registry,
    /// Minor version of the emulated server (for version-dependent defaults).
    pub server_minor: u32,
    /// Object uids whose dependents the garbage collector must visit.
    pub pending_cascade: Vec<String>,
    /// Whether CRD CEL validation rules are enforced.
    pub enforce_cel: bool,
}

/// How one write is made.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Field manager.
    pub manager: String,
    /// `status` or empty.
    pub subresource: String,
    /// `dryRun=All`: compute and answer, store nothing.
    pub dry_run: bool,
}

/// Options of a DELETE.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `gracePeriodSeconds`.
    pub grace_period: Option<i64>,
    /// `propagationPolicy`: `Background` (default), `Foreground` or `Orphan`.
    pub propagation: Option<String>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// The outcome of a DELETE.
#[derive(Debug, Clone)]
pub enum Deleted {
    /// The object is gone; this was its last state.
    Gone(Arc<Value>),
    /// The object is terminating (finalizers or graceful pod deletion).
    Terminating(Arc<Value>),
}

/// RFC 3339 "now" with second precision, as Kubernetes writes timestamps.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn is_set(value: &Value) -> bool {
    !value.is_null()
}

/// The storage key of an object of `info`.
pub fn key_for(info: &ResourceInfo, namespace: Option<&str>, name: &str) -> Key {
    let namespace = if info.namespaced {
        namespace.unwrap_or_default()
    } else {
        ""
    };
    (namespace.to_owned(), name.to_owned())
}

impl State {
    /// A fresh state with the standard namespaces.
    pub fn new(history: usize, server_minor: u32) -> Self {
        let mut state = Self {
            store: Store::new(history),
            registry: Registry::default(),
            server_minor,
            pending_cascade: Vec::new(),
            enforce_cel: false,
        };
        for name in [
            "default",
            "kube-system",
            "kube-public",
            "kube-node-lease",
            "kubelift-system",
        ] {
            let namespace =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            let info = state.registry.find("", "v1", "namespaces").cloned();
            if let Some(info) = info {
                let options = WriteOptions {
                    manager: "kube-apiserver".into(),
                    ..Default::default()
                };
                let _created = state.create(&info, None, namespace, &options);
            }
        }
        state
    }

    /// The stored object at a key.
    pub fn get(&self, info: &ResourceInfo, key: &Key) -> Result<Arc<Value>, ApiError> {
        self.store
            .get(&info.store, key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&info.qualified(), &key.1))
    }

    /// Creates an object (POST).
    pub fn create(
        &mut self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        body: Value,
        options: &WriteOptions,
    ) -> Result<Arc<Value>, ApiError> {
        let mut object = convert::to_stored(info, body);
        let key = Self::assign_identity(info, namespace, &mut object)?;
        self.create_object(info, key, object, options, false)
    }

    fn create_object(
        &mut self,
        info: &ResourceInfo,
        key: Key,
        mut object: Value,
        options: &WriteOptions,
        applied: bool,
    ) -> Result<Arc<Value>, ApiError> {
        self.check_namespace(info, &key.0)?;
        if self.store.get(&info.store, &key).is_some() {
            return Err(ApiError::already_exists(&info.qualified(), &key.1));
        }
        stamp_new(info, &mut object);
        self.admit(info, None, &mut object)?;
        if !applied {
            let (stamp, api_version) = (now(), info.api_version());
            apply::record_update(
                None,
                &mut object,
                &writer(info, options, &stamp, &api_version),
            );
        }
        Ok(self.commit(info, key, object, options.dry_run))
    }

    fn assign_identity(
        info: &ResourceInfo,
        namespace: Option<&str>,
        object: &mut Value,
    ) -> Result<Key, ApiError> {
        if !object.is_object()
            || !object["metadata"].is_object() && object.get("metadata").is_some()
        {
            return Err(ApiError::bad_request(
                "the object is not a Kubernetes object",
            ));
        }
        let metadata = &mut object["metadata"];
        if metadata["name"].as_str().is_none_or(str::is_empty) {
            let prefix = metadata["generateName"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if prefix.is_empty() {
                return Err(ApiError::invalid("name or generateName is required"));
            }
            metadata["name"] = json!(format!("{prefix}{}", random_suffix()));
        }
        if info.namespaced {
            let body_ns = metadata["namespace"].as_str().map(str::to_owned);
            let namespace = namespace
                .map(str::to_owned)
                .or(body_ns.clone())
                .unwrap_or_default();
            if body_ns.is_some_and(|b| !b.is_empty() && b != namespace) {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match \
                     the namespace sent on the request",
                ));
            }
            metadata["namespace"] = json!(namespace);
        } else if let Some(map) = metadata.as_object_mut() {
            map.remove("namespace");
        }
        let name = metadata["name"].as_str().unwrap_or_default();
        Ok(key_for(info, metadata["namespace"].as_str(), name))
    }

    fn check_namespace(&self, info: &ResourceInfo, namespace: &str) -> Result<(), ApiError> {
        if !info.namespaced {
            return Ok(());
        }
        let key = (String::new(), namespace.to_owned());
        match self.store.get("namespaces", &key) {
            None => Err(ApiError::not_found("namespaces", namespace)),
            Some(ns) if is_set(&ns["metadata"]["deletionTimestamp"]) => Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "unable to create new content in namespace {namespace} \
                     because it is being terminated"
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Replaces an object (PUT), on the main resource or `/status`.
    pub fn update(
        &mut self,
        info: &ResourceInfo,
        key: Key,
        body: Value,
        options: &WriteOptions,
    ) -> Result<Arc<Value>, ApiError> {
        let old = self.get(info, &key)?;
        let object = convert::to_stored(info, body);
        if object["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n != key.1)
        {
            return Err(ApiError::bad_request(
                "the name of the object does not match the name on the URL",
            ));
        }
        self.replace(info, key, &old, object, options, false)
    }

    /// Patches an object; server-side apply creates it when missing. Returns whether it was
    /// created.
    pub fn patch(
        &mut self,
        info: &ResourceInfo,
        key: Key,
        kind: PatchKind,
        body: &Value,
        force: bool,
        options: &WriteOptions,
    ) -> Result<(Arc<Value>, bool), ApiError> {
        let old = self.store.get(&info.store, &key).cloned();
        let (stamp, api_version) = (now(), info.api_version());
        let writer = writer(info, options, &stamp, &api_version);
        match (kind, old) {
            (PatchKind::Apply, None) if options.subresource.is_empty() => {
                let mut object = apply::apply(None, body, &writer, force)?;
                object["metadata"]["name"] = json!(key.1);
                let mut object = convert::to_stored(info, object);
                let key = Self::assign_identity(info, Some(&key.0), &mut object)?;
                Ok((self.create_object(info, key, object, options, true)?, true))
            }
            (_, None) => Err(ApiError::not_found(&info.qualified(), &key.1)),
            (PatchKind::Apply, Some(old)) => {
                let served = convert::to_served(info, &old);
                let merged = apply::apply(Some(&served), body, &writer, force)?;
                let object = convert::to_stored(info, merged);
                Ok((self.replace(info, key, &old, object, options, true)?, false))
            }
            (kind, Some(old)) => {
                let served = convert::to_served(info, &old);
                let patched = patch::patch(&served, kind, body, info.custom)?;
                let object = convert::to_stored(info, patched);
                Ok((
                    self.replace(info, key, &old, object, options, false)?,
                    false,
                ))
            }
        }
    }

    fn replace(
        &mut self,
        info: &ResourceInfo,
        key: Key,
        old: &Arc<Value>,
        mut object: Value,
        options: &WriteOptions,
        applied: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let wanted = object["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default();
        if !wanted.is_empty() && Some(wanted) != old["metadata"]["resourceVersion"].as_str() {
            return Err(ApiError::conflict(
                &info.qualified(),
                &key.1,
                "the object has been modified; please apply your changes \
                 to the latest version and try again",
            ));
        }
        isolate(info, &options.subresource, old, &mut object);
        carry_system_metadata(info, old, &mut object);
        check_finalizers(old, &object)?;
        self.admit(info, Some(old), &mut object)?;
        bump_generation(info, old, &mut object);
        if !applied {
            let (stamp, api_version) = (now(), info.api_version());
            apply::record_update(
                Some(old),
                &mut object,
                &writer(info, options, &stamp, &api_version),
            );
        }
        if unchanged(old, &object) {
            return Ok(old.clone());
        }
        let finished = is_set(&object["metadata"]["deletionTimestamp"])
            && object["metadata"]["finalizers"]
                .as_array()
                .is_none_or(Vec::is_empty)
            && !is_graceful_pod(info, &object);
        if finished && !options.dry_run {
            return Ok(self.remove(info, &key).unwrap_or_else(|| old.clone()));
        }
        Ok(self.commit(info, key, object, options.dry_run))
    }

    /// Defaulting, pruning and schema-driven changes for a written object.
    fn admit(
        &mut self,
        info: &ResourceInfo,
        old: Option<&Value>,
        object: &mut Value,
    ) -> Result<(), ApiError> {
        if let Some(schema) = &info.schema {
            crd::prune_and_default(object, schema);
            if self.enforce_cel {
                crd::validate_cel(schema, object, old)?;
            }
        } else if !info.custom {
            defaulting::apply(&info.kind, object, self.server_minor);
        }
        if info.plural == "customresourcedefinitions" && info.group == "apiextensions.k8s.io" {
            validate_crd(object)?;
            crd::establish(object, &now());
        }
        Ok(())
    }

    fn commit(
        &mut self,
        info: &ResourceInfo,
        key: Key,
        object: Value,
        dry_run: bool,
    ) -> Arc<Value> {
        if dry_run {
            return Arc::new(object);
        }
        let stored = self.store.put(&info.store, key, object);
        if info.plural == "customresourcedefinitions" && info.group == "apiextensions.k8s.io" {
            let served = from_crd(&stored);
            if let Some(first) = served.first() {
                let store = first.store.clone();
                self.registry.set_custom(&store, served);
            }
        }
        if info.plural == "pods" && info.group.is_empty() {
            super::eviction::refresh_budgets(self, &stored["metadata"]["namespace"]);
        }
        stored
    }

    /// Removes an object now, queueing its dependents for the garbage collector.
    pub fn remove(&mut self, info: &ResourceInfo, key: &Key) -> Option<Arc<Value>> {
        let last = self.store.remove(&info.store, key)?;
        if let Some(uid) = last["metadata"]["uid"].as_str() {
            self.pending_cascade.push(uid.to_owned());
        }
        if info.plural == "customresourcedefinitions" && info.group == "apiextensions.k8s.io" {
            self.remove_custom_resources(&last);
        }
        if info.plural == "namespaces" && info.group.is_empty() {
            self.remove_namespace_contents(&key.1);
        }
        if info.plural == "pods" && info.group.is_empty() {
            super::eviction::refresh_budgets(self, &last["metadata"]["namespace"]);
        }
        Some(last)
    }

    fn remove_custom_resources(&mut self, crd: &Value) {
        let served = from_crd(crd);
        let Some(first) = served.first() else { return };
        let store = first.store.clone();
        let keys: Vec<Key> = self
            .store
            .list(&store, None)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.store.remove(&store, &key);
        }
        self.registry.set_custom(&store, Vec::new());
    }

    fn remove_namespace_contents(&mut self, namespace: &str) {
        let namespaced: Vec<Arc<str>> = self
            .registry
            .all()
            .iter()
            .filter(|r| r.namespaced)
            .map(|r| r.store.clone())
            .collect();
        for store in namespaced {
            let keys: Vec<Key> = self
                .store
                .list(&store, Some(namespace))
                .map(|(k, _)| k.clone())
                .collect();
            for key in keys {
                self.store.remove(&store, &key);
            }
        }
    }

    /// Deletes an object: at once, or by marking it terminating when finalizers or a pod's
    /// grace period say so.
    pub fn delete(
        &mut self,
        info: &ResourceInfo,
        key: &Key,
        options: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let old = self.get(info, key)?;
        check_preconditions(info, key, &old, options)?;
        if options.propagation.as_deref() == Some("Orphan") {
            self.orphan_dependents(&old);
        }
        if let Some(grace) = pod_grace(info, &old, options) {
            return Ok(Deleted::Terminating(
                self.mark_terminating(info, key, &old, grace, options),
            ));
        }
        let has_finalizers = old["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            return Ok(Deleted::Terminating(
                self.mark_terminating(info, key, &old, 0, options),
            ));
        }
        if options.dry_run {
            return Ok(Deleted::Gone(old));
        }
        let last = self.remove(info, key).unwrap_or(old);
        if options.propagation.as_deref() == Some("Orphan") {
            self.pending_cascade
                .retain(|uid| Some(uid.as_str()) != last["metadata"]["uid"].as_str());
        }
        Ok(Deleted::Gone(last))
    }

    fn mark_terminating(
        &mut self,
        info: &ResourceInfo,
        key: &Key,
        old: &Arc<Value>,
        grace: i64,
        options: &DeleteOptions,
    ) -> Arc<Value> {
        let current_grace = old["metadata"]["deletionGracePeriodSeconds"].as_i64();
        if is_set(&old["metadata"]["deletionTimestamp"]) && current_grace.is_none_or(|g| g <= grace)
        {
            return old.clone();
        }
        let mut object = (**old).clone();
        let at = chrono::Utc::now() + chrono::Duration::seconds(grace);
        object["metadata"]["deletionTimestamp"] =
            json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        object["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        self.commit(info, key.clone(), object, options.dry_run)
    }

    fn orphan_dependents(&mut self, owner: &Value) {
        let Some(uid) = owner["metadata"]["uid"].as_str() else {
            return;
        };
        let dependents = self.dependents_of(uid);
        for (info, key, mut object) in dependents {
            remove_owner_reference(&mut object, uid);
            self.store.put(&info.store, key, object);
        }
    }

    /// Objects in any store holding an ownerReference to `uid`.
    pub fn dependents_of(&self, uid: &str) -> Vec<(ResourceInfo, Key, Value)> {
        let mut found = Vec::new();
        let mut seen_stores = Vec::new();
        for info in self.registry.all() {
            if seen_stores.contains(&info.store) {
                continue;
            }
            seen_stores.push(info.store.clone());
            for (key, object) in self.store.list(&info.store, None) {
                let refs = object["metadata"]["ownerReferences"]
                    .as_array()
                    .map(Vec::as_slice);
                if refs
                    .unwrap_or_default()
                    .iter()
                    .any(|r| r["uid"].as_str() == Some(uid))
                {
                    found.push((info.clone(), key.clone(), (**object).clone()));
                }
            }
        }
        found
    }

    /// Whether any stored object has this uid.
    pub fn uid_exists(&self, uid: &str) -> bool {
        let mut stores: Vec<Arc<str>> = self
            .registry
            .all()
            .iter()
            .map(|r| r.store.clone())
            .collect();
        stores.dedup();
        stores.iter().any(|store| {
            self.store
                .list(store, None)
                .any(|(_, o)| o["metadata"]["uid"].as_str() == Some(uid))
        })
    }
}

/// Drops the ownerReference to `uid`.
pub fn remove_owner_reference(object: &mut Value, uid: &str) {
    if let Some(refs) = object["metadata"]["ownerReferences"].as_array_mut() {
        refs.retain(|r| r["uid"].as_str() != Some(uid));
        if refs.is_empty()
            && let Some(metadata) = object["metadata"].as_object_mut()
        {
            metadata.remove("ownerReferences");
        }
    }
}

fn writer<'a>(
    info: &'a ResourceInfo,
    options: &'a WriteOptions,
    now: &'a str,
    api_version: &'a str,
) -> Writer<'a> {
    Writer {
        manager: &options.manager,
        subresource: &options.subresource,
        status_subresource: info.status_subresource,
        api_version,
        now,
        schema: Schema::root(info.schema.as_deref()),
    }
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes
        .iter()
        .take(5)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

fn stamp_new(info: &ResourceInfo, object: &mut Value) {
    object["apiVersion"] = json!(info.api_version());
    if info.conversion == super::resources::Conversion::EventsV1 {
        object["apiVersion"] = json!("v1");
    }
    object["kind"] = json!(info.kind);
    let metadata = &mut object["metadata"];
    metadata["uid"] = json!(uuid::Uuid::new_v4().to_string());
    metadata["creationTimestamp"] = json!(now());
    metadata["generation"] = json!(1);
    if let Some(map) = metadata.as_object_mut() {
        for field in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "resourceVersion",
            "selfLink",
        ] {
            map.remove(field);
        }
    }
    if info.status_subresource
        && info.custom
        && let Some(map) = object.as_object_mut()
    {
        map.remove("status");
    }
    if info.kind == "Pod" && !info.custom {
        defaulting::initial_pod_status(object);
    }
}

fn isolate(info: &ResourceInfo, subresource: &str, old: &Value, object: &mut Value) {
    if !info.status_subresource {
        return;
    }
    if subresource == "status" {
        let status = object.get("status").cloned();
        let mut kept = old.clone();
        match status {
            Some(status) => kept["status"] = status,
            None => {
                if let Some(map) = kept.as_object_mut() {
                    map.remove("status");
                }
            }
        }
        if let Some(fields) = object["metadata"].get("managedFields").cloned() {
            kept["metadata"]["managedFields"] = fields;
        }
        *object = kept;
    } else if let Some(map) = object.as_object_mut() {
        match old.get("status") {
            Some(status) => map.insert("status".to_owned(), status.clone()),
            None => map.remove("status"),
        };
    }
}

fn carry_system_metadata(info: &ResourceInfo, old: &Value, object: &mut Value) {
    object["apiVersion"] = old["apiVersion"].clone();
    object["kind"] = json!(info.kind);
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    for field in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "resourceVersion",
    ] {
        match old["metadata"].get(field) {
            Some(value) => object["metadata"][field] = value.clone(),
            None => {
                if let Some(map) = object["metadata"].as_object_mut() {
                    map.remove(field);
                }
            }
        }
    }
    if object["metadata"].get("managedFields").is_none()
        && let Some(fields) = old["metadata"].get("managedFields")
    {
        object["metadata"]["managedFields"] = fields.clone();
    }
}

fn check_finalizers(old: &Value, object: &Value) -> Result<(), ApiError> {
    if !is_set(&old["metadata"]["deletionTimestamp"]) {
        return Ok(());
    }
    let before = old["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let after = object["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if after.iter().any(|f| !before.contains(f)) {
        return Err(ApiError::new(
            422,
            "Invalid",
            "metadata.finalizers: Forbidden: no new finalizers can be added \
             if the object is being deleted",
        ));
    }
    Ok(())
}

fn bump_generation(info: &ResourceInfo, old: &Value, object: &mut Value) {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(map) = v.as_object_mut() {
            map.remove("metadata");
            if info.status_subresource {
                map.remove("status");
            }
        }
        v
    };
    let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
    let changed = strip(old) != strip(object);
    object["metadata"]["generation"] = json!(if changed { generation + 1 } else { generation });
}

fn unchanged(old: &Value, object: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(fields) = v["metadata"]["managedFields"].as_array_mut() {
            for field in fields.iter_mut() {
                if let Some(map) = field.as_object_mut() {
                    map.remove("time");
                }
            }
        }
        v
    };
    strip(old) == strip(object)
}

fn check_preconditions(
    info: &ResourceInfo,
    key: &Key,
    old: &Value,
    options: &DeleteOptions,
) -> Result<(), ApiError> {
    let mismatch = |wanted: &Option<String>, field: &str| {
        wanted
            .as_deref()
            .is_some_and(|w| Some(w) != old["metadata"][field].as_str())
    };
    if mismatch(&options.uid, "uid") || mismatch(&options.resource_version, "resourceVersion") {
        return Err(ApiError::conflict(
            &info.qualified(),
            &key.1,
            "the precondition was not met",
        ));
    }
    Ok(())
}

fn is_graceful_pod(info: &ResourceInfo, pod: &Value) -> bool {
    info.kind == "Pod"
        && !info.custom
        && pod["metadata"]["deletionGracePeriodSeconds"]
            .as_i64()
            .is_some_and(|g| g > 0)
}

/// The grace period for deleting a pod bound to a node, or None to delete at once.
fn pod_grace(info: &ResourceInfo, pod: &Value, options: &DeleteOptions) -> Option<i64> {
    if info.kind != "Pod" || info.custom {
        return None;
    }
    let bound = pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty());
    let terminal = matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    let grace = options
        .grace_period
        .or_else(|| pod["spec"]["terminationGracePeriodSeconds"].as_i64())
        .unwrap_or(30);
    (bound && !terminal && grace > 0).then_some(grace)
}

fn validate_crd(crd: &Value) -> Result<(), ApiError> {
    let spec = &crd["spec"];
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    let group = spec["group"].as_str().unwrap_or_default();
    let expected = format!("{plural}.{group}");
    if crd["metadata"]["name"].as_str() != Some(expected.as_str()) {
        return Err(ApiError::invalid(format!(
            "metadata.name: Invalid value: must be spec.names.plural+\".\"+spec.group ({expected})"
        )));
    }
    Ok(())
}
