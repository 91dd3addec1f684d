//! The HTTP front: one handler that parses the path, records the request, applies injected
//! faults, and dispatches to discovery, reads, watches and writes; errors become `Status`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use super::objects::{DeleteOptions, Deleted, WriteOptions, key_for};
use super::patch::PatchKind;
use super::resources::ResourceInfo;
use super::routes::{self, ResourcePath, Target};
use super::selectors::{self, Selectors};
use super::status::{self, ApiError};
use super::tables::{self, IncludeObject};
use super::watch::{self, WatchRequest};
use super::{RequestRecord, Shared, convert, discovery, eviction, gc};

type Params = HashMap<String, String>;

/// Largest accepted request body.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The single request handler behind every path.
pub async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let params: Params = Query::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let target = routes::parse(parts.uri.path(), &shared.lock().registry);
    let user_agent = header_text(&parts.headers, header::USER_AGENT);
    let Target::Resource(path) = target else {
        return document(&shared, &target);
    };

    let watch = matches!(params.get("watch").map(String::as_str), Some("true" | "1"));
    let verb = routes::verb(&parts.method, &path, watch);
    let injected = shared.faults.take(&path.plural, verb);
    if let Some(delay) = injected.delay {
        tokio::time::sleep(delay).await;
    }
    let response = match injected.fail {
        Some(code) => error(&ApiError::new(code, reason_for(code), "injected fault")),
        None => match axum::body::to_bytes(body, BODY_LIMIT).await {
            Ok(bytes) => {
                let call = Call {
                    shared: &shared,
                    path: &path,
                    params: &params,
                    headers: &parts.headers,
                    verb,
                };
                call.dispatch(&bytes)
            }
            Err(e) => error(&ApiError::bad_request(format!("failed to read body: {e}"))),
        },
    };
    tracing::debug!(
        verb,
        resource = %path.plural,
        name = ?path.name,
        code = response.status().as_u16(),
        "request"
    );
    shared.record(RequestRecord {
        verb: verb.to_owned(),
        group: path.group.clone(),
        version: path.version.clone(),
        resource: path.plural.clone(),
        subresource: path.subresource.clone(),
        namespace: path.namespace.clone(),
        name: path.name.clone(),
        field_selector: params.get("fieldSelector").cloned(),
        label_selector: params.get("labelSelector").cloned(),
        user_agent,
        code: response.status().as_u16(),
    });
    response
}

fn reason_for(code: u16) -> &'static str {
    match code {
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn document(shared: &Shared, target: &Target) -> Response {
    let registry = shared.lock().registry.clone();
    let found = match target {
        Target::Version => Some(discovery::version(&shared.config.server_version)),
        Target::Health => return (StatusCode::OK, "ok").into_response(),
        Target::CoreVersions => Some(discovery::core_versions(&shared.address)),
        Target::Groups => Some(discovery::groups(&registry)),
        Target::Group(group) => discovery::group(&registry, group),
        Target::Resources(group, version) => discovery::resources(&registry, group, version),
        Target::Resource(_) | Target::Unknown => None,
    };
    match found {
        Some(body) => respond(200, &body),
        None => error(&ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )),
    }
}

/// A JSON response.
pub fn respond(code: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A `Status` error response.
pub fn error(error: &ApiError) -> Response {
    respond(error.code, &error.to_status())
}

struct Call<'a> {
    shared: &'a Arc<Shared>,
    path: &'a ResourcePath,
    params: &'a Params,
    headers: &'a HeaderMap,
    verb: &'static str,
}

impl Call<'_> {
    fn dispatch(&self, body: &[u8]) -> Response {
        let info = {
            let state = self.shared.lock();
            state
                .registry
                .find(&self.path.group, &self.path.version, &self.path.plural)
                .cloned()
        };
        let Some(info) = info else {
            return error(&ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ));
        };
        if let Err(e) = self.check_subresource(&info) {
            return error(&e);
        }
        let result = match self.verb {
            "get" => self.get(&info),
            "list" => self.list(&info),
            "watch" => return self.watch(info),
            "create" => self.create(&info, body),
            "update" => self.update(&info, body),
            "patch" => self.patch(&info, body),
            "delete" => self.delete(&info, body),
            "deletecollection" => self.delete_collection(&info, body),
            _ => Err(ApiError::method_not_allowed("this method")),
        };
        self.collect_garbage();
        match result {
            Ok((code, body)) => respond(code, &body),
            Err(e) => error(&e),
        }
    }

    fn check_subresource(&self, info: &ResourceInfo) -> Result<(), ApiError> {
        let missing = || {
            ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        };
        match self.path.subresource.as_deref() {
            None => Ok(()),
            Some("status") if info.status_subresource => Ok(()),
            Some("eviction") if info.kind == "Pod" && !info.custom && self.verb == "create" => {
                Ok(())
            }
            Some(_) => Err(missing()),
        }
    }

    fn collect_garbage(&self) {
        let pending = !self.shared.lock().pending_cascade.is_empty();
        if pending {
            let shared = self.shared.clone();
            tokio::spawn(async move { gc::collect(&mut shared.lock()) });
        }
    }

    fn key(&self, info: &ResourceInfo) -> super::store::Key {
        key_for(
            info,
            self.path.namespace.as_deref(),
            self.path.name.as_deref().unwrap_or_default(),
        )
    }

    fn table(&self) -> Option<IncludeObject> {
        let accept = header_text(self.headers, header::ACCEPT);
        tables::wants_table(&accept).then(|| IncludeObject::parse(self.param("includeObject")))
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    fn write_options(&self) -> WriteOptions {
        let user_agent = header_text(self.headers, header::USER_AGENT);
        let derived = user_agent
            .split('/')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("unknown");
        WriteOptions {
            manager: self.param("fieldManager").unwrap_or(derived).to_owned(),
            subresource: self.path.subresource.clone().unwrap_or_default(),
            dry_run: self.param("dryRun").is_some_and(|d| d == "All"),
        }
    }

    fn served(&self, info: &ResourceInfo, stored: &Value) -> Value {
        let served = convert::to_served(info, stored);
        match self.table() {
            Some(include) => {
                let rv = served["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                tables::table(info, &[served], &rv, true, include)
            }
            None => served,
        }
    }

    fn get(&self, info: &ResourceInfo) -> Result<(u16, Value), ApiError> {
        let object = self.shared.lock().get(info, &self.key(info))?;
        Ok((200, self.served(info, &object)))
    }

    fn selectors(&self, info: &ResourceInfo) -> Result<Selectors, ApiError> {
        let labels = selectors::parse_labels(self.param("labelSelector").unwrap_or_default())
            .map_err(ApiError::bad_request)?;
        let fields = selectors::parse_fields(self.param("fieldSelector").unwrap_or_default(), info)
            .map_err(ApiError::bad_request)?;
        Ok(Selectors { labels, fields })
    }

    fn list(&self, info: &ResourceInfo) -> Result<(u16, Value), ApiError> {
        let selectors = self.selectors(info)?;
        let limit = self
            .param("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        let token = self
            .param("continue")
            .filter(|c| !c.is_empty())
            .map(parse_continue)
            .transpose()?;
        let state = self.shared.lock();
        let revision = match &token {
            Some((revision, ..)) if *revision < state.store.oldest() => {
                return Err(ApiError::new(
                    410,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent \
                     list result. You can start a new list without the continue parameter.",
                ));
            }
            Some((revision, ..)) => *revision,
            None => state.store.revision(),
        };
        let mut matching = state
            .store
            .list(&info.store, self.path.namespace.as_deref())
            .filter(|(key, _)| {
                token
                    .as_ref()
                    .is_none_or(|(_, ns, name)| (&key.0, &key.1) > (ns, name))
            })
            .filter(|(_, object)| selectors.matches(object));
        let page: Vec<(super::store::Key, Arc<Value>)> = match limit {
            Some(limit) => matching
                .by_ref()
                .take(limit)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            None => matching
                .by_ref()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        let remaining = matching.count();
        drop(state);
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if remaining > 0
            && let Some((last, _)) = page.last()
        {
            metadata["continue"] = json!(format!("{revision}/{}/{}", last.0, last.1));
            metadata["remainingItemCount"] = json!(remaining);
        }
        let items: Vec<Value> = page
            .iter()
            .map(|(_, o)| convert::to_served(info, o))
            .collect();
        if let Some(include) = self.table() {
            let mut table = tables::table(info, &items, &revision.to_string(), true, include);
            table["metadata"] = metadata;
            return Ok((200, table));
        }
        let list = json!({
            "kind": info.list_kind, "apiVersion": info.api_version(),
            "metadata": metadata, "items": items,
        });
        Ok((200, list))
    }

    fn watch(&self, info: ResourceInfo) -> Response {
        let mut selectors = match self.selectors(&info) {
            Ok(selectors) => selectors,
            Err(e) => return error(&e),
        };
        if let Some(name) = &self.path.name {
            selectors.fields = selectors.fields.with_name(name);
        }
        let configured = self.shared.config.watch_timeout;
        let timeout = self
            .param("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .map_or(configured, Duration::from_secs);
        let request = WatchRequest {
            info,
            namespace: self.path.namespace.clone(),
            selectors,
            resource_version: self.param("resourceVersion").map(str::to_owned),
            send_initial_events: self.param("sendInitialEvents") == Some("true"),
            bookmarks: self.param("allowWatchBookmarks") == Some("true"),
            timeout,
            table: self.table(),
        };
        let body: Body = watch::start(self.shared.clone(), request);
        let content_type = "application/json";
        (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
    }

    fn create(&self, info: &ResourceInfo, body: &[u8]) -> Result<(u16, Value), ApiError> {
        let object = parse_body(body)?;
        if self.path.subresource.as_deref() == Some("eviction") {
            eviction::evict(&mut self.shared.lock(), info, &self.key(info), &object)?;
            return Ok((201, status::success(201)));
        }
        if self.path.name.is_some() {
            return Err(ApiError::method_not_allowed("POST on a named object"));
        }
        let created = self.shared.lock().create(
            info,
            self.path.namespace.as_deref(),
            object,
            &self.write_options(),
        )?;
        Ok((201, self.served(info, &created)))
    }

    fn update(&self, info: &ResourceInfo, body: &[u8]) -> Result<(u16, Value), ApiError> {
        let object = parse_body(body)?;
        let updated =
            self.shared
                .lock()
                .update(info, self.key(info), object, &self.write_options())?;
        Ok((200, self.served(info, &updated)))
    }

    fn patch(&self, info: &ResourceInfo, body: &[u8]) -> Result<(u16, Value), ApiError> {
        let content_type = header_text(self.headers, header::CONTENT_TYPE);
        let kind = PatchKind::from_content_type(&content_type).ok_or_else(|| {
            ApiError::new(
                415,
                "UnsupportedMediaType",
                format!("the body of the request was in an unknown format: {content_type}"),
            )
        })?;
        if kind == PatchKind::Apply && self.param("fieldManager").is_none_or(str::is_empty) {
            return Err(ApiError::bad_request(
                "PATCH, application/apply-patch+yaml requests require fieldManager",
            ));
        }
        let patch = parse_body(body)?;
        let force = self.param("force") == Some("true");
        let (object, created) = self.shared.lock().patch(
            info,
            self.key(info),
            kind,
            &patch,
            force,
            &self.write_options(),
        )?;
        Ok((if created { 201 } else { 200 }, self.served(info, &object)))
    }

    fn delete_options(&self, body: &[u8]) -> Result<DeleteOptions, ApiError> {
        let body = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            parse_body(body)?
        };
        let orphan = body["orphanDependents"].as_bool() == Some(true)
            || self.param("orphanDependents") == Some("true");
        let propagation = body["propagationPolicy"]
            .as_str()
            .or(self.param("propagationPolicy"))
            .map(str::to_owned)
            .or_else(|| orphan.then(|| "Orphan".to_owned()));
        Ok(DeleteOptions {
            grace_period: body["gracePeriodSeconds"].as_i64().or_else(|| {
                self.param("gracePeriodSeconds")
                    .and_then(|g| g.parse().ok())
            }),
            propagation,
            uid: body["preconditions"]["uid"].as_str().map(str::to_owned),
            resource_version: body["preconditions"]["resourceVersion"]
                .as_str()
                .map(str::to_owned),
            dry_run: self.param("dryRun") == Some("All")
                || body["dryRun"].as_array().is_some_and(|d| !d.is_empty()),
        })
    }

    fn delete(&self, info: &ResourceInfo, body: &[u8]) -> Result<(u16, Value), ApiError> {
        let options = self.delete_options(body)?;
        let outcome = self.shared.lock().delete(info, &self.key(info), &options)?;
        match outcome {
            Deleted::Gone(last) => Ok((200, self.served(info, &last))),
            Deleted::Terminating(object) => Ok((200, self.served(info, &object))),
        }
    }

    fn delete_collection(
        &self,
        info: &ResourceInfo,
        body: &[u8],
    ) -> Result<(u16, Value), ApiError> {
        let options = self.delete_options(body)?;
        let selectors = self.selectors(info)?;
        let mut state = self.shared.lock();
        let keys: Vec<super::store::Key> = state
            .store
            .list(&info.store, self.path.namespace.as_deref())
            .filter(|(_, o)| selectors.matches(o))
            .map(|(k, _)| k.clone())
            .collect();
        let mut items = Vec::new();
        for key in keys {
            match state.delete(info, &key, &options)? {
                Deleted::Gone(o) | Deleted::Terminating(o) => {
                    items.push(convert::to_served(info, &o));
                }
            }
        }
        let revision = state.store.revision().to_string();
        Ok((
            200,
            json!({
                "kind": info.list_kind, "apiVersion": info.api_version(),
                "metadata": {"resourceVersion": revision}, "items": items,
            }),
        ))
    }
}

fn parse_continue(token: &str) -> Result<(u64, String, String), ApiError> {
    let invalid = || ApiError::bad_request("invalid continue token");
    let mut parts = token.splitn(3, '/');
    let revision = parts
        .next()
        .and_then(|r| r.parse().ok())
        .ok_or_else(invalid)?;
    let namespace = parts.next().ok_or_else(invalid)?.to_owned();
    let name = parts.next().ok_or_else(invalid)?.to_owned();
    Ok((revision, namespace, name))
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return Ok(value);
    }
    serde_saphyr::from_slice::<Value>(body)
        .map_err(|e| ApiError::bad_request(format!("failed to decode the request body: {e}")))
}
