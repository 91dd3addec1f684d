//! Checks every file in `manifests/`: each parses as a YAML stream of Kubernetes objects, the
//! examples are valid plans (for `validate()` and for the CRD's CEL rules), and the install
//! manifests keep what DESIGN requires of RBAC, the operator Deployment and the helper `DaemonSet`.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test fails loudly on anything unexpected"
)]

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kubelift_crds::{ContainerPolicy, KubeletUpgrade, manifest};
use serde::de::DeserializeOwned;
use serde_json::Value;

fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests")
}

/// Every `.yaml` file under `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The documents of a YAML stream, skipping the empty ones that comments before `---` leave.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text)
        .unwrap_or_else(|error| panic!("{} does not parse: {error}", path.display()));
    documents
        .into_iter()
        .filter(|document| !document.is_null())
        .collect()
}

/// The objects of `kind` in one manifest file, as typed values.
fn objects<T: DeserializeOwned>(file: &str, kind: &str) -> Vec<T> {
    documents(&manifests_dir().join(file))
        .into_iter()
        .filter(|document| document["kind"] == kind)
        .map(|document| serde_json::from_value(document).unwrap())
        .collect()
}

#[test]
fn every_manifest_is_a_stream_of_kubernetes_objects() {
    let files = yaml_files(&manifests_dir());
    assert!(
        files.len() >= 10,
        "expected the whole manifests tree, found {files:?}"
    );
    for file in files {
        let documents = documents(&file);
        assert!(!documents.is_empty(), "{} holds no object", file.display());
        for document in documents {
            let api_version = document["apiVersion"].as_str().unwrap_or_default();
            let kind = document["kind"].as_str().unwrap_or_default();
            assert!(
                !api_version.is_empty() && !kind.is_empty(),
                "{}: {document}",
                file.display()
            );
            let named = document["metadata"]["name"].is_string() || kind == "Kustomization";
            assert!(named, "{}: a {kind} without a name", file.display());
        }
    }
}

#[test]
fn every_example_is_a_valid_plan_for_validate_and_for_the_crd_rules() {
    let schema = manifest::crds()[0].spec.versions[0].schema.clone().unwrap();
    let schema = serde_json::to_value(schema.open_api_v3_schema.unwrap()).unwrap();
    let examples = yaml_files(&manifests_dir().join("examples"));
    assert_eq!(examples.len(), 3, "{examples:?}");

    for file in examples {
        for document in documents(&file) {
            let plan: KubeletUpgrade = serde_json::from_value(document.clone())
                .unwrap_or_else(|error| panic!("{}: {error}", file.display()));
            if let Err(invalid) = plan.spec.validate() {
                panic!("{} is invalid: {invalid}", file.display());
            }
            let cel = kube_cel::Validator::new().validate(&schema, &document, None);
            assert!(cel.is_ok(), "{}: {cel:?}", file.display());
        }
    }
}

#[test]
fn the_examples_show_a_canary_patch_under_preserve_a_minor_evicting_upgrade_and_a_dry_run() {
    let plan = |name: &str| -> KubeletUpgrade {
        objects(&format!("examples/{name}.yaml"), "KubeletUpgrade")
            .pop()
            .unwrap()
    };

    let patch = plan("patch-preserve");
    assert_eq!(patch.spec.containers.policy, ContainerPolicy::Preserve);
    assert!(patch.spec.rollout.canary > 0 && patch.spec.rollout.pause_after_canary);

    let minor = plan("minor-evict-if-restart");
    assert_eq!(
        minor.spec.containers.policy,
        ContainerPolicy::EvictIfRestart
    );
    let from_patch = kubelift_crds::version::parse(&patch.spec.version).unwrap();
    let to_minor = kubelift_crds::version::parse(&minor.spec.version).unwrap();
    assert!(to_minor > from_patch && !to_minor.same_minor(&from_patch));

    assert!(plan("dry-run").spec.rollout.dry_run);
}

#[test]
fn kustomization_lists_files_that_exist() {
    for dir in [manifests_dir(), manifests_dir().join("monitoring")] {
        let kustomization = documents(&dir.join("kustomization.yaml")).pop().unwrap();
        for resource in kustomization["resources"].as_array().unwrap() {
            let file = dir.join(resource.as_str().unwrap());
            assert!(file.is_file(), "{} is listed but missing", file.display());
        }
    }
}

#[test]
fn every_binding_names_a_defined_role_and_service_account() {
    let roles: Vec<ClusterRole> = objects("rbac.yaml", "ClusterRole");
    let accounts: Vec<Value> = objects("rbac.yaml", "ServiceAccount");
    let role_names: Vec<_> = roles
        .iter()
        .filter_map(|role| role.metadata.name.clone())
        .collect();
    let account_names: Vec<_> = accounts
        .iter()
        .map(|sa| sa["metadata"]["name"].clone())
        .collect();

    let cluster_bindings: Vec<ClusterRoleBinding> = objects("rbac.yaml", "ClusterRoleBinding");
    let bindings: Vec<RoleBinding> = objects("rbac.yaml", "RoleBinding");
    let subjects = cluster_bindings
        .iter()
        .flat_map(|binding| binding.subjects.iter().flatten())
        .chain(
            bindings
                .iter()
                .flat_map(|binding| binding.subjects.iter().flatten()),
        );
    for subject in subjects {
        assert_eq!(subject.namespace.as_deref(), Some("kubelift-system"));
        assert!(
            account_names.contains(&Value::from(subject.name.clone())),
            "{}",
            subject.name
        );
    }
    for binding in &cluster_bindings {
        assert!(
            role_names.contains(&binding.role_ref.name),
            "{}",
            binding.role_ref.name
        );
    }
}

/// Whether `role` grants `verb` on `resource` of `group`.
fn grants(role: &ClusterRole, group: &str, resource: &str, verb: &str) -> bool {
    role.rules.iter().flatten().any(|rule| {
        let has = |list: &Option<Vec<String>>, item: &str| {
            list.iter()
                .flatten()
                .any(|entry| entry == item || entry == "*")
        };
        has(&rule.api_groups, group)
            && has(&rule.resources, resource)
            && rule.verbs.iter().any(|v| v == verb)
    })
}

#[test]
fn the_helper_may_write_only_node_upgrade_status_and_finalizers() {
    let roles: Vec<ClusterRole> = objects("rbac.yaml", "ClusterRole");
    let helper = roles
        .iter()
        .find(|role| role.metadata.name.as_deref() == Some("kubelift-node-helper"))
        .unwrap();
    assert!(grants(
        helper,
        "kubelift.dev",
        "nodeupgrades/status",
        "patch"
    ));
    assert!(grants(helper, "kubelift.dev", "nodeupgrades", "watch"));
    for verb in ["create", "update", "delete"] {
        assert!(
            !grants(helper, "kubelift.dev", "nodeupgrades", verb),
            "helper may {verb}"
        );
    }
    assert!(!grants(helper, "kubelift.dev", "kubeletupgrades", "get"));
    assert!(
        !grants(helper, "", "nodes", "patch"),
        "only the operator cordons"
    );
    assert!(
        !grants(helper, "", "pods/eviction", "create"),
        "only the operator evicts"
    );
}

#[test]
fn the_operator_deployment_is_leader_elected_and_locked_down() {
    let deployment: Deployment = objects("operator.yaml", "Deployment").pop().unwrap();
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));

    let pod = spec.template.spec.unwrap();
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some("kubelift-operator")
    );
    let container = &pod.containers[0];
    let args = container.args.clone().unwrap();
    assert!(args.contains(&"--leader-elect".to_owned()), "{args:?}");

    let probe_path = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
        probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .clone()
            .unwrap()
    };
    assert_eq!(probe_path(&container.liveness_probe), "/healthz");
    assert_eq!(probe_path(&container.readiness_probe), "/readyz");
    assert!(container.resources.as_ref().unwrap().requests.is_some());

    let security = container.security_context.clone().unwrap();
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.capabilities.unwrap().drop.unwrap(), ["ALL"]);
}

#[test]
fn the_helper_daemon_set_has_the_host_access_design_section_4_requires() {
    let daemon_set: DaemonSet = objects("node-helper.yaml", "DaemonSet").pop().unwrap();
    let pod = daemon_set.spec.unwrap().template.spec.unwrap();
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some("kubelift-node-helper")
    );
    assert_eq!((pod.host_network, pod.host_pid), (Some(true), Some(true)));
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("system-node-critical")
    );
    let tolerations = pod.tolerations.unwrap();
    assert!(
        tolerations
            .iter()
            .any(|t| t.operator.as_deref() == Some("Exists") && t.key.is_none())
    );

    let container = &pod.containers[0];
    assert_eq!(
        container.security_context.as_ref().unwrap().privileged,
        Some(true)
    );
    let mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == "/host")
        .unwrap();
    let volume = pod
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == mount.name)
        .unwrap();
    assert_eq!(volume.host_path.unwrap().path, "/");

    let env = container.env.clone().unwrap();
    let node_name = env.iter().find(|e| e.name == "KUBELIFT_NODE_NAME").unwrap();
    let field = node_name
        .value_from
        .as_ref()
        .unwrap()
        .field_ref
        .as_ref()
        .unwrap();
    assert_eq!(field.field_path, "spec.nodeName");
}

#[test]
fn the_dockerfile_builds_the_images_the_manifests_name() {
    let dockerfile = std::fs::read_to_string(manifests_dir().join("../Dockerfile")).unwrap();
    let images = [
        ("operator.yaml", "Deployment", "ghcr.io/kubelift/operator:"),
        (
            "node-helper.yaml",
            "DaemonSet",
            "ghcr.io/kubelift/node-helper:",
        ),
    ];
    for (file, kind, image) in images {
        let workload: Value = objects(file, kind).pop().unwrap();
        let named = workload["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap();
        assert!(named.starts_with(image), "{file} runs {named}");
        let stage = image.trim_end_matches(':').rsplit('/').next().unwrap();
        assert!(
            dockerfile.contains(&format!(" AS {stage}\n")),
            "no Dockerfile stage {stage}"
        );
    }
    assert!(
        dockerfile.contains("util-linux"),
        "the helper image needs nsenter"
    );
}
