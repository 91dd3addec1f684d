//! Object semantics of the embedded API server: optimistic concurrency, generation, status
//! isolation, finalizers, owner cascade, server-side apply, CRD pruning and defaults, selectors,
//! patches and paging — each exercised through a real `kube::Client`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod apiserver_support;

use apiserver_support::{
    PATIENCE, apply, apply_status, code, install_widgets, server, to_json, widget, widgets,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn config_map(name: &str, data: Value) -> ConfigMap {
    let mut map = json!({"metadata": {"name": name}});
    map["data"] = data;
    serde_json::from_value(map).unwrap()
}

#[tokio::test]
async fn replacing_with_a_stale_resource_version_conflicts() {
    let server = server().await;
    let maps: Api<ConfigMap> = Api::default_namespaced(server.in_process_client());
    let created = maps
        .create(&PostParams::default(), &config_map("cm", json!({"a": "1"})))
        .await
        .unwrap();
    let mut first = created.clone();
    first.data = Some([("a".to_owned(), "2".to_owned())].into());
    maps.replace("cm", &PostParams::default(), &first)
        .await
        .unwrap();

    let mut stale = created;
    stale.data = Some([("a".to_owned(), "3".to_owned())].into());
    let error = maps
        .replace("cm", &PostParams::default(), &stale)
        .await
        .unwrap_err();

    assert_eq!(code(&error), 409);
    assert_eq!(maps.get("cm").await.unwrap().data.unwrap()["a"], "2");
}

#[tokio::test]
async fn creating_twice_conflicts_and_missing_namespaces_are_not_found() {
    let server = server().await;
    let client = server.client();
    let maps: Api<ConfigMap> = Api::default_namespaced(client.clone());
    maps.create(&PostParams::default(), &config_map("cm", json!({})))
        .await
        .unwrap();

    let again = maps
        .create(&PostParams::default(), &config_map("cm", json!({})))
        .await
        .unwrap_err();
    let elsewhere: Api<ConfigMap> = Api::namespaced(client, "nowhere");
    let missing = elsewhere
        .create(&PostParams::default(), &config_map("cm", json!({})))
        .await
        .unwrap_err();

    assert_eq!(code(&again), 409);
    assert_eq!(code(&missing), 404);
}

#[tokio::test]
async fn generation_moves_only_when_the_spec_changes() {
    let server = server().await;
    let client = server.in_process_client();
    install_widgets(&client).await;
    let api = widgets(&client);
    let created = api
        .create(&PostParams::default(), &widget("w", json!({"size": 1})))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    let labelled = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    let with_status = api
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}})),
        )
        .await
        .unwrap();
    let resized = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap();

    assert_eq!(labelled.metadata.generation, Some(1));
    assert_eq!(with_status.metadata.generation, Some(1));
    assert_eq!(resized.metadata.generation, Some(2));
}

#[tokio::test]
async fn spec_and_status_are_isolated_both_ways() {
    let server = server().await;
    let client = server.in_process_client();
    install_widgets(&client).await;
    let api = widgets(&client);
    api.create(&PostParams::default(), &widget("w", json!({"size": 1})))
        .await
        .unwrap();

    let status_write = json!({"spec": {"size": 9}, "status": {"phase": "Ready"}});
    let after_status = api
        .patch_status("w", &PatchParams::default(), &Patch::Merge(status_write))
        .await
        .unwrap();
    let main_write = json!({"spec": {"size": 3}, "status": {"phase": "Broken"}});
    let after_main = api
        .patch("w", &PatchParams::default(), &Patch::Merge(main_write))
        .await
        .unwrap();

    let status = to_json(&after_status);
    assert_eq!(
        status["spec"]["size"], 1,
        "a /status write must not change the spec"
    );
    assert_eq!(status["status"]["phase"], "Ready");
    let main = to_json(&after_main);
    assert_eq!(main["spec"]["size"], 3);
    assert_eq!(
        main["status"]["phase"], "Ready",
        "a main-resource write must not change status"
    );
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let server = server().await;
    let maps: Api<ConfigMap> = Api::default_namespaced(server.in_process_client());
    let mut map = config_map("cm", json!({}));
    map.metadata.finalizers = Some(vec!["test.kubelift.dev/hold".to_owned()]);
    maps.create(&PostParams::default(), &map).await.unwrap();

    maps.delete("cm", &DeleteParams::default()).await.unwrap();
    let terminating = maps.get("cm").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    let add = json!({"metadata": {"finalizers": ["test.kubelift.dev/hold", "another"]}});
    let refused = maps
        .patch("cm", &PatchParams::default(), &Patch::Merge(add))
        .await
        .unwrap_err();
    assert_eq!(
        code(&refused),
        422,
        "no new finalizers on a terminating object"
    );

    let clear = json!({"metadata": {"finalizers": null}});
    maps.patch("cm", &PatchParams::default(), &Patch::Merge(clear))
        .await
        .unwrap();
    assert_eq!(code(&maps.get("cm").await.unwrap_err()), 404);
}

#[tokio::test]
async fn deleting_an_owner_removes_its_dependents_in_the_background() {
    let server = server().await;
    let maps: Api<ConfigMap> = Api::default_namespaced(server.client());
    let owner = maps
        .create(&PostParams::default(), &config_map("owner", json!({})))
        .await
        .unwrap();
    let reference = json!([{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
        "uid": owner.metadata.uid.unwrap(),
    }]);
    for name in ["child-a", "child-b"] {
        let child: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": name, "ownerReferences": reference}}),
        )
        .unwrap();
        maps.create(&PostParams::default(), &child).await.unwrap();
    }
    maps.create(&PostParams::default(), &config_map("bystander", json!({})))
        .await
        .unwrap();

    maps.delete("owner", &DeleteParams::background())
        .await
        .unwrap();

    let gone = async {
        loop {
            let names: Vec<String> = maps
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .filter_map(|m| m.metadata.name)
                .collect();
            if names == ["bystander"] {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(PATIENCE, gone)
        .await
        .expect("dependents are collected");
}

#[tokio::test]
async fn orphaning_keeps_dependents_without_the_reference() {
    let server = server().await;
    let maps: Api<ConfigMap> = Api::default_namespaced(server.in_process_client());
    let owner = maps
        .create(&PostParams::default(), &config_map("owner", json!({})))
        .await
        .unwrap();
    let reference = json!([{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
        "uid": owner.metadata.uid.unwrap(),
    }]);
    let child: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "child", "ownerReferences": reference}}),
    )
    .unwrap();
    maps.create(&PostParams::default(), &child).await.unwrap();

    maps.delete("owner", &DeleteParams::orphan()).await.unwrap();

    let child = maps.get("child").await.unwrap();
    assert!(child.metadata.owner_references.is_none_or(|r| r.is_empty()));
}

#[tokio::test]
async fn server_side_apply_conflicts_unless_forced() {
    let server = server().await;
    let client = server.in_process_client();
    install_widgets(&client).await;
    let api = widgets(&client);
    let body = |size: i64| {
        json!({"apiVersion": "test.kubelift.dev/v1", "kind": "Widget", "metadata": {"name": "w"},
               "spec": {"size": size}})
    };
    apply(&api, "w", "alice", body(1)).await.unwrap();

    let conflict = apply(&api, "w", "bob", body(2)).await.unwrap_err();
    assert_eq!(code(&conflict), 409);
    let shared = apply(&api, "w", "bob", body(1)).await;
    assert!(
        shared.is_ok(),
        "applying the same value is shared ownership, not a conflict"
    );

    let forced = api
        .patch(
            "w",
            &PatchParams::apply("carol").force(),
            &kube::api::Patch::Apply(body(3)),
        )
        .await
        .unwrap();
    assert_eq!(to_json(&forced)["spec"]["size"], 3);
    let managers: Vec<String> = forced
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter(|m| {
            m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.to_string().contains("f:size"))
        })
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(
        managers,
        ["carol"],
        "forcing takes the field from every other manager"
    );
}

#[tokio::test]
async fn server_side_apply_removes_fields_a_manager_stops_applying() {
    let server = server().await;
    let client = server.in_process_client();
    install_widgets(&client).await;
    let api = widgets(&client);
    let head =
        json!({"apiVersion": "test.kubelift.dev/v1", "kind": "Widget", "metadata": {"name": "w"}});
    let mut first = head.clone();
    first["spec"] = json!({"size": 1, "nodeName": "n1", "tags": ["a"]});
    apply(&api, "w", "alice", first).await.unwrap();
    let mut other = head.clone();
    other["spec"] = json!({"tags": ["a"]});
    apply(&api, "w", "bob", other).await.unwrap();

    let mut second = head;
    second["spec"] = json!({"size": 1});
    let after = to_json(&apply(&api, "w", "alice", second).await.unwrap());

    assert_eq!(after["spec"]["size"], 1);
    assert!(
        after["spec"].get("nodeName").is_none(),
        "alice's abandoned field is removed"
    );
    assert_eq!(
        after["spec"]["tags"],
        json!(["a"]),
        "a field bob still owns stays"
    );
}

#[tokio::test]
async fn two_managers_own_different_entries_of_one_list_map() {
    let server = server().await;
    let client = server.client();
    install_widgets(&client).await;
    let api = widgets(&client);
    api.create(&PostParams::default(), &widget("w", json!({"size": 1})))
        .await
        .unwrap();
    let status = |kind: &str, value: &str| {
        json!({"apiVersion": "test.kubelift.dev/v1", "kind": "Widget", "metadata": {"name": "w"},
               "status": {"conditions": [{"type": kind, "status": value}]}})
    };

    apply_status(&api, "w", "operator", status("Ready", "True"))
        .await
        .unwrap();
    apply_status(&api, "w", "helper", status("Healthy", "True"))
        .await
        .unwrap();
    let updated = apply_status(&api, "w", "operator", status("Ready", "False"))
        .await
        .unwrap();

    let conditions = to_json(&updated)["status"]["conditions"].clone();
    assert_eq!(
        conditions,
        json!([{"type": "Ready", "status": "False"}, {"type": "Healthy", "status": "True"}])
    );
    let stolen = apply_status(&api, "w", "helper", status("Ready", "True"))
        .await
        .unwrap_err();
    assert_eq!(
        code(&stolen),
        409,
        "the helper may not flip the operator's condition"
    );
}

#[tokio::test]
async fn custom_resources_are_pruned_and_defaulted() {
    let server = server().await;
    let client = server.in_process_client();
    install_widgets(&client).await;
    let api = widgets(&client);

    let created = api
        .create(
            &PostParams::default(),
            &widget("w", json!({"size": 1, "bogus": true})),
        )
        .await
        .unwrap();

    let spec = to_json(&created)["spec"].clone();
    assert_eq!(spec, json!({"size": 1, "color": "blue"}));
}

#[tokio::test]
async fn served_pods_carry_kube_apiserver_defaults() {
    let server = server().await;
    let pods: Api<Pod> = Api::default_namespaced(server.in_process_client());
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [
            {"name": "latest", "image": "nginx", "ports": [{"containerPort": 80}],
             "livenessProbe": {"httpGet": {"port": 80}}},
            {"name": "tagged", "image": "registry.local:5000/app:1.2",
             "resources": {"limits": {"cpu": "1"}}},
        ]},
    }))
    .unwrap();

    let created = pods.create(&PostParams::default(), &pod).await.unwrap();
    let defaulted = serde_json::to_value(created).unwrap();

    let spec = &defaulted["spec"];
    assert_eq!(spec["restartPolicy"], "Always");
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["terminationGracePeriodSeconds"], 30);
    let latest = &spec["containers"][0];
    assert_eq!(latest["imagePullPolicy"], "Always");
    assert_eq!(latest["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(latest["terminationMessagePolicy"], "File");
    assert_eq!(latest["resources"], json!({}));
    assert_eq!(latest["ports"][0]["protocol"], "TCP");
    let probe = &latest["livenessProbe"];
    assert_eq!(
        (
            &probe["timeoutSeconds"],
            &probe["periodSeconds"],
            &probe["successThreshold"],
            &probe["failureThreshold"]
        ),
        (&json!(1), &json!(10), &json!(1), &json!(3))
    );
    assert_eq!(probe["httpGet"]["scheme"], "HTTP");
    let tagged = &spec["containers"][1];
    assert_eq!(tagged["imagePullPolicy"], "IfNotPresent");
    assert_eq!(tagged["resources"]["requests"]["cpu"], "1");
    assert_eq!(defaulted["status"]["phase"], "Pending");
}

#[tokio::test]
async fn selectors_filter_lists_and_unknown_fields_are_rejected() {
    let server = server().await;
    let client = server.in_process_client();
    install_widgets(&client).await;
    let api = widgets(&client);
    for (name, node, tier) in [("a", "n1", "web"), ("b", "n2", "db"), ("c", "n1", "cache")] {
        let mut object = widget(name, json!({"nodeName": node}));
        object.metadata.labels = Some([("tier".to_owned(), tier.to_owned())].into());
        api.create(&PostParams::default(), &object).await.unwrap();
    }
    let names = |list: kube::core::ObjectList<kube::api::DynamicObject>| -> Vec<String> {
        list.items
            .into_iter()
            .filter_map(|o| o.metadata.name)
            .collect()
    };

    let by_field = api
        .list(&ListParams::default().fields("spec.nodeName=n1"))
        .await
        .unwrap();
    let by_set = api
        .list(&ListParams::default().labels("tier in (web,db),tier!=db"))
        .await
        .unwrap();
    let by_both = api
        .list(
            &ListParams::default()
                .fields("spec.nodeName!=n2")
                .labels("!missing,tier"),
        )
        .await
        .unwrap();
    let unknown = api
        .list(&ListParams::default().fields("spec.size=1"))
        .await
        .unwrap_err();

    assert_eq!(names(by_field), ["a", "c"]);
    assert_eq!(names(by_set), ["a"]);
    assert_eq!(names(by_both), ["a", "c"]);
    assert_eq!(code(&unknown), 400);
}

#[tokio::test]
async fn json_patch_test_failures_are_rejected_and_strategic_merge_uses_merge_keys() {
    let server = server().await;
    let pods: Api<Pod> = Api::default_namespaced(server.in_process_client());
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "labels": {"a": "1"}},
        "spec": {"containers": [{"name": "one", "image": "x:1"}, {"name": "two", "image": "y:1"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();

    let failing: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/labels/a", "value": "2"},
        {"op": "replace", "path": "/metadata/labels/a", "value": "3"},
    ]))
    .unwrap();
    let refused = pods
        .patch("p", &PatchParams::default(), &Patch::<()>::Json(failing))
        .await
        .unwrap_err();
    let strategic = json!({"metadata": {"labels": {"a": null}},
                           "spec": {"containers": [{"name": "two", "image": "y:2"}]}});
    let patched = pods
        .patch("p", &PatchParams::default(), &Patch::Strategic(strategic))
        .await
        .unwrap();

    assert_eq!(code(&refused), 422);
    let patched = serde_json::to_value(patched).unwrap();
    assert!(
        patched["metadata"]
            .get("labels")
            .is_none_or(|l| l.get("a").is_none())
    );
    let images: Vec<&str> = patched["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["image"].as_str().unwrap())
        .collect();
    assert_eq!(images, ["x:1", "y:2"]);
}

#[tokio::test]
async fn lists_page_with_limit_and_continue() {
    let server = server().await;
    let maps: Api<ConfigMap> = Api::default_namespaced(server.client());
    for i in 0..5 {
        maps.create(
            &PostParams::default(),
            &config_map(&format!("cm-{i}"), json!({})),
        )
        .await
        .unwrap();
    }

    let first = maps.list(&ListParams::default().limit(2)).await.unwrap();
    let token = first.metadata.continue_.clone().unwrap();
    let second = maps
        .list(&ListParams::default().limit(10).continue_token(&token))
        .await
        .unwrap();

    assert_eq!(first.items.len(), 2);
    assert_eq!(second.items.len(), 3);
    assert!(second.metadata.continue_.is_none_or(|c| c.is_empty()));
    assert!(!first.metadata.resource_version.unwrap().is_empty());
}

#[tokio::test]
async fn standard_namespaces_exist() {
    let server = server().await;
    let namespaces: Api<Namespace> = Api::all(server.in_process_client());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    for wanted in [
        "default",
        "kube-system",
        "kube-node-lease",
        "kubelift-system",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "{wanted} is missing from {names:?}"
        );
    }
}
