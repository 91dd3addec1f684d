//! Watch semantics and kube-runtime against the embedded API server, in-process and over
//! loopback HTTP: resume from a resourceVersion, 410 Gone in-stream, streaming lists with the
//! initial-events-end bookmark, filtered-watch transitions, timeouts, and watcher, reflector and
//! Controller recovering from forced compaction and dropped streams.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod apiserver_support;

use std::sync::Arc;
use std::time::Duration;

use apiserver_support::{PATIENCE, server};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kubelift_testbed::apiserver::ApiServer;
use serde_json::json;

fn config_map(name: &str, labels: serde_json::Value) -> ConfigMap {
    let mut map = json!({"metadata": {"name": name}});
    map["metadata"]["labels"] = labels;
    serde_json::from_value(map).unwrap()
}

async fn next_event(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin),
) -> WatchEvent<ConfigMap> {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
}

fn name_of(event: &WatchEvent<ConfigMap>) -> (&'static str, String) {
    match event {
        WatchEvent::Added(o) => ("ADDED", o.metadata.name.clone().unwrap()),
        WatchEvent::Modified(o) => ("MODIFIED", o.metadata.name.clone().unwrap()),
        WatchEvent::Deleted(o) => ("DELETED", o.metadata.name.clone().unwrap()),
        WatchEvent::Bookmark(_) => ("BOOKMARK", String::new()),
        WatchEvent::Error(e) => ("ERROR", e.code.to_string()),
    }
}

#[tokio::test]
async fn a_watch_resumes_after_its_resource_version() {
    let server = server().await;
    let maps: Api<ConfigMap> = Api::default_namespaced(server.client());
    maps.create(&PostParams::default(), &config_map("before", json!({})))
        .await
        .unwrap();
    let listed = maps.list(&ListParams::default()).await.unwrap();
    let version = listed.metadata.resource_version.unwrap();
    maps.create(&PostParams::default(), &config_map("after", json!({})))
        .await
        .unwrap();
    maps.delete("before", &kube::api::DeleteParams::default())
        .await
        .unwrap();

    let mut stream = maps
        .watch(&WatchParams::default(), &version)
        .await
        .unwrap()
        .boxed();

    assert_eq!(
        name_of(&next_event(&mut stream).await),
        ("ADDED", "after".to_owned())
    );
    assert_eq!(
        name_of(&next_event(&mut stream).await),
        ("DELETED", "before".to_owned())
    );
}

#[tokio::test]
async fn an_expired_resource_version_gets_410_inside_the_stream() {
    let server = server().await;
    let maps: Api<ConfigMap> = Api::default_namespaced(server.in_process_client());
    let first = maps
        .create(&PostParams::default(), &config_map("a", json!({})))
        .await
        .unwrap();
    maps.create(&PostParams::default(), &config_map("b", json!({})))
        .await
        .unwrap();
    let open_version = server.revision().to_string();
    let mut open = maps
        .watch(&WatchParams::default(), &open_version)
        .await
        .unwrap()
        .boxed();

    server.faults().compact();

    let old_version = first.metadata.resource_version.unwrap();
    let mut stale = maps
        .watch(&WatchParams::default(), &old_version)
        .await
        .unwrap()
        .boxed();
    assert_eq!(
        name_of(&next_event(&mut stale).await),
        ("ERROR", "410".to_owned())
    );
    assert_eq!(
        name_of(&next_event(&mut open).await),
        ("ERROR", "410".to_owned())
    );
}

#[tokio::test]
async fn a_streaming_list_ends_its_initial_events_with_a_bookmark() {
    let server = server().await;
    let maps: Api<ConfigMap> = Api::default_namespaced(server.client());
    for name in ["a", "b"] {
        maps.create(&PostParams::default(), &config_map(name, json!({})))
            .await
            .unwrap();
    }

    let params = WatchParams::default().initial_events();
    let mut stream = maps.watch(&params, "").await.unwrap().boxed();

    assert_eq!(
        name_of(&next_event(&mut stream).await),
        ("ADDED", "a".to_owned())
    );
    assert_eq!(
        name_of(&next_event(&mut stream).await),
        ("ADDED", "b".to_owned())
    );
    match next_event(&mut stream).await {
        WatchEvent::Bookmark(bookmark) => {
            let annotations = bookmark.metadata.annotations;
            assert_eq!(
                annotations
                    .get("k8s.io/initial-events-end")
                    .map(String::as_str),
                Some("true")
            );
        }
        other => panic!(
            "expected the initial-events-end bookmark, got {:?}",
            name_of(&other)
        ),
    }
}

#[tokio::test]
async fn objects_entering_and_leaving_a_filtered_watch_are_added_and_deleted() {
    let server = server().await;
    let maps: Api<ConfigMap> = Api::default_namespaced(server.in_process_client());
    maps.create(
        &PostParams::default(),
        &config_map("m", json!({"tier": "web"})),
    )
    .await
    .unwrap();
    let params = WatchParams::default().labels("tier=web");
    let mut stream = maps.watch(&params, "0").await.unwrap().boxed();
    assert_eq!(
        name_of(&next_event(&mut stream).await),
        ("ADDED", "m".to_owned())
    );

    let relabel = |tier: &str| Patch::Merge(json!({"metadata": {"labels": {"tier": tier}}}));
    maps.patch("m", &PatchParams::default(), &relabel("db"))
        .await
        .unwrap();
    maps.patch("m", &PatchParams::default(), &relabel("web"))
        .await
        .unwrap();

    assert_eq!(
        name_of(&next_event(&mut stream).await),
        ("DELETED", "m".to_owned())
    );
    assert_eq!(
        name_of(&next_event(&mut stream).await),
        ("ADDED", "m".to_owned())
    );
}

#[tokio::test]
async fn a_watch_closes_at_its_timeout() {
    let server = server().await;
    let maps: Api<ConfigMap> = Api::default_namespaced(server.client());

    let stream = maps
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap();
    let events: Vec<_> = tokio::time::timeout(PATIENCE, stream.collect::<Vec<_>>())
        .await
        .unwrap();

    assert!(events.is_empty());
}

async fn reflector_recovers(server: &ApiServer, client: kube::Client, config: watcher::Config) {
    let maps: Api<ConfigMap> = Api::default_namespaced(client);
    maps.create(&PostParams::default(), &config_map("first", json!({})))
        .await
        .unwrap();
    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = reflector(writer, watcher(maps.clone(), config))
        .default_backoff()
        .applied_objects();
    let driver = tokio::spawn(stream.for_each(|_| async {}));
    tokio::time::timeout(PATIENCE, reader.wait_until_ready())
        .await
        .unwrap()
        .unwrap();

    server.faults().compact();
    maps.create(
        &PostParams::default(),
        &config_map("after-compaction", json!({})),
    )
    .await
    .unwrap();
    server.faults().drop_watches();
    maps.create(&PostParams::default(), &config_map("after-drop", json!({})))
        .await
        .unwrap();
    maps.delete("first", &kube::api::DeleteParams::default())
        .await
        .unwrap();

    let converged = async {
        loop {
            let mut names: Vec<String> = reader
                .state()
                .iter()
                .filter_map(|m| m.metadata.name.clone())
                .collect();
            names.sort();
            if names == ["after-compaction", "after-drop"] {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(PATIENCE, converged)
        .await
        .expect("the reflector catches up");
    driver.abort();
}

#[tokio::test]
async fn a_reflector_recovers_in_process_from_compaction_and_dropped_streams() {
    let server = server().await;
    reflector_recovers(
        &server,
        server.in_process_client(),
        watcher::Config::default(),
    )
    .await;
}

#[tokio::test]
async fn a_reflector_recovers_over_http_from_compaction_and_dropped_streams() {
    let server = server().await;
    reflector_recovers(&server, server.client(), watcher::Config::default()).await;
}

#[tokio::test]
async fn a_streaming_list_reflector_recovers_over_http() {
    let server = server().await;
    reflector_recovers(
        &server,
        server.client(),
        watcher::Config::default().streaming_lists(),
    )
    .await;
}

#[derive(Debug, thiserror::Error)]
#[error("failed to mark the config map")]
struct MarkError(#[source] kube::Error);

async fn mark(map: Arc<ConfigMap>, api: Arc<Api<ConfigMap>>) -> Result<Action, MarkError> {
    let name = map.metadata.name.clone().unwrap();
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                      "data": {"reconciled": "yes"}});
    api.patch(
        &name,
        &PatchParams::apply("test-controller"),
        &Patch::Apply(body),
    )
    .await
    .map_err(MarkError)?;
    Ok(Action::await_change())
}

async fn wait_marked(maps: &Api<ConfigMap>, name: &str) {
    let marked = async {
        loop {
            let map = maps.get_opt(name).await.unwrap();
            if map
                .and_then(|m| m.data)
                .is_some_and(|d| d.contains_key("reconciled"))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(PATIENCE, marked)
        .await
        .expect("the controller reconciles");
}

async fn controller_keeps_reconciling(server: &ApiServer, client: kube::Client) {
    let maps: Api<ConfigMap> = Api::default_namespaced(client);
    let controller = Controller::new(maps.clone(), watcher::Config::default())
        .run(
            mark,
            |_, _, _| Action::requeue(Duration::from_secs(1)),
            Arc::new(maps.clone()),
        )
        .for_each(|_| async {});
    let driver = tokio::spawn(controller);

    maps.create(&PostParams::default(), &config_map("one", json!({})))
        .await
        .unwrap();
    wait_marked(&maps, "one").await;
    server.faults().compact();
    server.faults().drop_watches();
    maps.create(&PostParams::default(), &config_map("two", json!({})))
        .await
        .unwrap();
    wait_marked(&maps, "two").await;
    driver.abort();
}

#[tokio::test]
async fn a_controller_keeps_reconciling_in_process_after_faults() {
    let server = server().await;
    controller_keeps_reconciling(&server, server.in_process_client()).await;
}

#[tokio::test]
async fn a_controller_keeps_reconciling_over_http_after_faults() {
    let server = server().await;
    controller_keeps_reconciling(&server, server.client()).await;
}

#[tokio::test]
async fn a_raw_watcher_restarts_with_init_after_compaction() {
    let server = server().await;
    let maps: Api<ConfigMap> = Api::default_namespaced(server.client());
    maps.create(&PostParams::default(), &config_map("a", json!({})))
        .await
        .unwrap();
    let mut events = watcher(maps.clone(), watcher::Config::default()).boxed();
    let mut inits = 0;
    while inits < 1 {
        if let watcher::Event::InitDone = tokio::time::timeout(PATIENCE, events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            inits += 1;
        }
    }

    maps.create(&PostParams::default(), &config_map("b", json!({})))
        .await
        .unwrap();
    loop {
        let event = tokio::time::timeout(PATIENCE, events.try_next())
            .await
            .unwrap();
        if let Ok(Some(watcher::Event::Apply(_))) = event {
            break;
        }
    }

    server.faults().compact();

    loop {
        let event = tokio::time::timeout(PATIENCE, events.next())
            .await
            .unwrap()
            .unwrap();
        if let Ok(watcher::Event::InitDone) = event {
            break;
        }
    }
}
