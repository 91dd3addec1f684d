//! The server's outer surface: discovery, Table responses, `metav1.Status` errors, the request
//! log attributed by User-Agent with RBAC verbs, fault injection, events.k8s.io served from the
//! core Event store, and the `kubelift-apiserver` binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod apiserver_support;

use std::time::Duration;

use apiserver_support::{PATIENCE, code, install_widgets, server, widget, widgets};
use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kubelift_testbed::apiserver::FaultMatch;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

async fn get_json(client: &kube::Client, path: &str, accept: &str) -> Value {
    let request = http::Request::get(path)
        .header(http::header::ACCEPT, accept)
        .body(Vec::new())
        .unwrap();
    let text = client.request_text(request).await.unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn discovery_lists_groups_resources_and_subresources() {
    let server = server().await;
    let client = server.client();
    install_widgets(&client).await;

    let version = get_json(&client, "/version", "application/json").await;
    let groups = get_json(&client, "/apis", "application/json").await;
    let core = get_json(&client, "/api/v1", "application/json").await;
    let custom = get_json(&client, "/apis/test.kubelift.dev/v1", "application/json").await;

    assert_eq!(version["gitVersion"], "v1.33.0");
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"test.kubelift.dev") && names.contains(&"policy"),
        "{names:?}"
    );
    let core_names: Vec<&str> = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(core_names.contains(&"pods/eviction") && core_names.contains(&"nodes/status"));
    let widget = &custom["resources"][0];
    assert_eq!(
        (widget["name"].as_str(), widget["namespaced"].as_bool()),
        (Some("widgets"), Some(true))
    );
    assert_eq!(widget["shortNames"], json!(["wd"]));
}

#[tokio::test]
async fn tables_render_printer_columns_with_ages() {
    let server = server().await;
    let client = server.in_process_client();
    install_widgets(&client).await;
    widgets(&client)
        .create(&PostParams::default(), &widget("w", json!({"size": 7})))
        .await
        .unwrap();

    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let table = get_json(
        &client,
        "/apis/test.kubelift.dev/v1/namespaces/default/widgets",
        accept,
    )
    .await;

    assert_eq!(table["kind"], "Table");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Name", "Size", "Phase", "Age"]);
    let cells = &table["rows"][0]["cells"];
    assert_eq!(
        (&cells[0], &cells[1], &cells[2]),
        (&json!("w"), &json!(7), &Value::Null)
    );
    assert!(
        cells[3].as_str().unwrap().ends_with('s'),
        "an age such as 0s: {}",
        cells[3]
    );
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
}

#[tokio::test]
async fn errors_are_status_objects_with_reason_and_code() {
    let server = server().await;
    let client = server.client();

    let request = http::Request::get("/api/v1/namespaces/default/configmaps/missing")
        .body(Vec::new())
        .unwrap();
    let error = client.request::<ConfigMap>(request).await.unwrap_err();

    match error {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 404);
            assert_eq!(status.reason, "NotFound");
        }
        other => panic!("expected a Status, got {other}"),
    }
}

#[tokio::test]
async fn the_request_log_records_rbac_verbs_resources_and_user_agents() {
    let server = server().await;
    let maps: Api<ConfigMap> =
        Api::default_namespaced(server.client_with_user_agent("unit-tester/1.0"));
    let map: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "cm"}})).unwrap();
    maps.create(&PostParams::default(), &map).await.unwrap();
    maps.get("cm").await.unwrap();
    maps.list(&ListParams::default()).await.unwrap();
    maps.patch(
        "cm",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "b"}})),
    )
    .await
    .unwrap();
    maps.delete("cm", &kube::api::DeleteParams::default())
        .await
        .unwrap();

    let mine: Vec<(String, String, Option<String>)> = server
        .requests()
        .into_iter()
        .filter(|r| r.user_agent == "unit-tester/1.0")
        .map(|r| (r.verb, r.resource, r.name))
        .collect();

    let cm = || Some("cm".to_owned());
    assert_eq!(
        mine,
        [
            ("create".into(), "configmaps".into(), None),
            ("get".into(), "configmaps".into(), cm()),
            ("list".into(), "configmaps".into(), None),
            ("patch".into(), "configmaps".into(), cm()),
            ("delete".into(), "configmaps".into(), cm()),
        ]
    );
}

#[tokio::test]
async fn injected_failures_and_delays_hit_only_matching_requests() {
    let server = server().await;
    let maps: Api<ConfigMap> = Api::default_namespaced(server.in_process_client());
    let map: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "cm"}})).unwrap();
    maps.create(&PostParams::default(), &map).await.unwrap();
    server
        .faults()
        .fail_next(FaultMatch::new("configmaps", "get"), 2, 503);
    server.faults().delay_next(
        FaultMatch::new("configmaps", "list"),
        1,
        Duration::from_millis(10),
    );

    let first = maps.get("cm").await.unwrap_err();
    let second = maps.get("cm").await.unwrap_err();
    let listed = maps.list(&ListParams::default()).await;
    let third = maps.get("cm").await;

    assert_eq!((code(&first), code(&second)), (503, 503));
    assert!(listed.is_ok());
    assert!(third.is_ok(), "only the next two gets fail");
}

#[tokio::test]
async fn events_written_as_events_k8s_io_are_served_as_core_events() {
    let server = server().await;
    let client = server.in_process_client();
    let events_v1: Api<k8s_openapi::api::events::v1::Event> =
        Api::default_namespaced(client.clone());
    let event = json!({
        "metadata": {"name": "e1"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reason": "Started", "note": "it began", "type": "Normal", "action": "Start",
        "reportingController": "kubelift.dev/operator", "reportingInstance": "op-1",
        "regarding": {"kind": "Node", "name": "node-a", "apiVersion": "v1"},
    });
    events_v1
        .create(
            &PostParams::default(),
            &serde_json::from_value(event).unwrap(),
        )
        .await
        .unwrap();

    let core: Api<Event> = Api::default_namespaced(client);
    let listed = core
        .list(&ListParams::default().fields("involvedObject.kind=Node,involvedObject.name=node-a"))
        .await
        .unwrap();

    assert_eq!(listed.items.len(), 1);
    let event = &listed.items[0];
    assert_eq!(event.message.as_deref(), Some("it began"));
    assert_eq!(
        event.reporting_component.as_deref(),
        Some("kubelift.dev/operator")
    );
    let round_trip = events_v1.get("e1").await.unwrap();
    assert_eq!(round_trip.note.as_deref(), Some("it began"));
}

#[tokio::test]
async fn the_binary_prints_its_address_and_writes_a_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubelift-apiserver"))
        .args(["--port", "0", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let address = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let config = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(config, &options)
        .await
        .unwrap();
    let client = kube::Client::try_from(config.clone()).unwrap();
    let version = client.apiserver_version().await.unwrap();
    child.kill().await.unwrap();

    assert!(address.starts_with("http://127.0.0.1:"), "{address}");
    assert_eq!(
        config.cluster_url.to_string().trim_end_matches('/'),
        address
    );
    assert_eq!(version.git_version, "v1.33.0");
}

async fn create_oversized_widget(enforce_cel: bool) -> Result<(), kube::Error> {
    let config = kubelift_testbed::apiserver::ApiServerConfig {
        enforce_cel,
        ..Default::default()
    };
    let server = kubelift_testbed::apiserver::ApiServer::start(config)
        .await
        .unwrap();
    let client = server.in_process_client();
    let mut crd = apiserver_support::widget_crd();
    let schema = &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    schema["properties"]["spec"]["x-kubernetes-validations"] = json!([{
        "rule": "!has(self.size) || self.size <= 10",
        "message": "size must be at most 10",
    }]);
    let crds: Api<kube::api::DynamicObject> =
        Api::all_with(client.clone(), &apiserver_support::crd_resource());
    crds.create(
        &PostParams::default(),
        &serde_json::from_value(crd).unwrap(),
    )
    .await
    .unwrap();

    widgets(&client)
        .create(&PostParams::default(), &widget("big", json!({"size": 11})))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn cel_rules_are_enforced_only_when_asked() {
    let rejected = create_oversized_widget(true).await.unwrap_err();

    assert_eq!(code(&rejected), 422);
    assert!(
        create_oversized_widget(false).await.is_ok(),
        "without --enforce-cel the object is stored"
    );
}
