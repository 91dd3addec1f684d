//! Shared fixtures for the API server tests: a server, a test CRD with a status subresource,
//! list-map conditions, printer columns and a selectable field, and small JSON helpers.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test fixtures fail loudly"
)]

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::wait::{await_condition, conditions};
use kubelift_testbed::apiserver::{ApiServer, ApiServerConfig};
use serde_json::{Value, json};

/// Generous bound for anything awaited in a test.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A server with default settings.
pub async fn server() -> ApiServer {
    ApiServer::start(ApiServerConfig::default())
        .await
        .expect("server starts")
}

/// The test CRD `widgets.test.kubelift.dev` (namespaced, short name `wd`).
pub fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.test.kubelift.dev"},
        "spec": {
            "group": "test.kubelift.dev",
            "scope": "Namespaced",
            "names": {
                "plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"],
            },
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "selectableFields": [{"jsonPath": ".spec.nodeName"}],
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "properties": {
                            "size": {"type": "integer"},
                            "color": {"type": "string", "default": "blue"},
                            "nodeName": {"type": "string"},
                            "tags": {"type": "array", "items": {"type": "string"}},
                        }},
                        "status": {"type": "object", "properties": {
                            "phase": {"type": "string"},
                            "conditions": {
                                "type": "array",
                                "x-kubernetes-list-type": "map",
                                "x-kubernetes-list-map-keys": ["type"],
                                "items": {"type": "object", "properties": {
                                    "type": {"type": "string"},
                                    "status": {"type": "string"},
                                    "reason": {"type": "string"},
                                }},
                            },
                        }},
                    },
                }},
            }],
        },
    })
}

/// The API resource of widgets.
pub fn widget_resource() -> ApiResource {
    let gvk = GroupVersionKind::gvk("test.kubelift.dev", "v1", "Widget");
    ApiResource::from_gvk_with_plural(&gvk, "widgets")
}

/// Creates the widget CRD and waits until it is established.
pub async fn install_widgets(client: &kube::Client) {
    let crds: Api<DynamicObject> = Api::all_with(client.clone(), &crd_resource());
    let crd: DynamicObject = serde_json::from_value(widget_crd()).unwrap();
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("CRD is created");
    let typed: Api<CustomResourceDefinition> = Api::all(client.clone());
    let established = await_condition(
        typed,
        "widgets.test.kubelift.dev",
        conditions::is_crd_established(),
    );
    tokio::time::timeout(PATIENCE, established)
        .await
        .unwrap()
        .unwrap();
}

/// The API resource of CRDs.
pub fn crd_resource() -> ApiResource {
    let gvk = GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition");
    ApiResource::from_gvk_with_plural(&gvk, "customresourcedefinitions")
}

/// Widgets in `default`.
pub fn widgets(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), "default", &widget_resource())
}

/// A widget object.
pub fn widget(name: &str, spec: Value) -> DynamicObject {
    let mut object = json!({
        "apiVersion": "test.kubelift.dev/v1", "kind": "Widget", "metadata": {"name": name},
    });
    object["spec"] = spec;
    serde_json::from_value(object).unwrap()
}

/// A `DynamicObject` as JSON.
pub fn to_json(object: &DynamicObject) -> Value {
    serde_json::to_value(object).unwrap()
}

/// Server-side apply of a JSON body.
pub async fn apply(
    api: &Api<DynamicObject>,
    name: &str,
    manager: &str,
    body: Value,
) -> kube::Result<DynamicObject> {
    api.patch(name, &PatchParams::apply(manager), &Patch::Apply(body))
        .await
}

/// Server-side apply to `/status`.
pub async fn apply_status(
    api: &Api<DynamicObject>,
    name: &str,
    manager: &str,
    body: Value,
) -> kube::Result<DynamicObject> {
    api.patch_status(name, &PatchParams::apply(manager), &Patch::Apply(body))
        .await
}

/// The HTTP status code of a kube API error.
pub fn code(error: &kube::Error) -> u16 {
    match error {
        kube::Error::Api(status) => status.code,
        other => panic!("expected an API error, got {other}"),
    }
}
