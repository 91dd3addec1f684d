//! The node helper's agent against the embedded API server and a real containerd: it picks up
//! only its own node's `NodeUpgrade`s, prepares and executes through the Prepare/Execute
//! handshake, reports every phase by server-side apply, holds its finalizer while executing and
//! releases it at the end, serves `/healthz` and `/metrics`, and every (verb, resource) it sent —
//! taken from the API server's request log by its User-Agent — is granted by
//! `manifests/rbac.yaml`.
//! Also: every argument in `manifests/node-helper.yaml` parses with the agent's command line.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly on setup errors"
)]
#![allow(
    clippy::too_many_lines,
    reason = "each test walks one whole upgrade, step by step"
)]

use std::collections::BTreeSet;
use std::time::Duration;

use clap::Parser;
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use kubelet_hash::{HashOptions, KubeletVersion};
use kubelift_crds::constants::{NODE_HELPER_FINALIZER, OPERATOR_MANAGER};
use kubelift_crds::{NodePhase, NodeUpgrade, Stage};
use kubelift_node_helper::agent::{AgentArgs, USER_AGENT};
use kubelift_node_helper::journal::{Journal, Step};
use kubelift_testbed::apiserver::{ApiServer, ApiServerConfig};
use kubelift_testbed::artifact_server::ArtifactServer;
use kubelift_testbed::containerd::{ContainerSpec, Containerd, PodSpec};
use kubelift_testbed::helper_run::{free_port, runtime_tools_present, spawn_agent, work_order};
use kubelift_testbed::standin_kubelet::{SimulatedNode, sha256_hex, standin_kubelet, stop_pid};
use serde_json::{Value, json};

const FROM: &str = "v1.31.2";
const TO: &str = "v1.32.0";
const PATIENCE: Duration = Duration::from_secs(120);

async fn install_crds(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in kubelift_crds::manifest::crds() {
        let name = crd.name_any();
        crds.create(&PostParams::default(), &crd).await.unwrap();
        let established = await_condition(crds.clone(), &name, conditions::is_crd_established());
        tokio::time::timeout(PATIENCE, established)
            .await
            .unwrap()
            .unwrap();
    }
}

async fn create_node(client: &kube::Client, name: &str, version: &str) {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node", "metadata": { "name": name },
    }))
    .unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    set_node_version(client, name, version).await;
}

async fn set_node_version(client: &kube::Client, name: &str, version: &str) {
    let nodes: Api<Node> = Api::all(client.clone());
    let status = json!({ "status": {
        "nodeInfo": {
            "kubeletVersion": version, "architecture": "amd64", "bootID": "",
            "containerRuntimeVersion": "", "kernelVersion": "", "kubeProxyVersion": "",
            "machineID": "", "operatingSystem": "linux", "osImage": "", "systemUUID": "",
        },
        "conditions": [{ "type": "Ready", "status": "True" }],
    }});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
}

/// Creates the pod in the API server (which assigns its UID) and returns its spec for containerd.
async fn create_pod(client: &kube::Client, node: &str) -> PodSpec {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "web-0", "namespace": "default" },
        "spec": { "nodeName": node, "containers": [{ "name": "app", "image": "shop/web:2.1" }] },
    }))
    .unwrap();
    let created = pods.create(&PostParams::default(), &pod).await.unwrap();
    let served = serde_json::to_value(&created).unwrap();
    let container = served.pointer("/spec/containers/0").unwrap().to_string();
    let version: KubeletVersion = FROM.parse().unwrap();
    let hash = kubelet_hash::hash(&container, &version, &HashOptions::default()).unwrap();
    PodSpec {
        namespace: "default".into(),
        name: "web-0".into(),
        uid: created.uid().unwrap(),
        containers: vec![ContainerSpec {
            name: "app".into(),
            image: "shop/web:2.1".into(),
            hash,
            restart_count: 0,
        }],
    }
}

/// The rules of the node helper's `ClusterRole` in `manifests/rbac.yaml`.
fn helper_rules() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests/rbac.yaml");
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap();
    let role = documents
        .into_iter()
        .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "kubelift-node-helper")
        .unwrap();
    role["rules"].as_array().unwrap().clone()
}

fn granted(rules: &[Value], group: &str, resource: &str, verb: &str) -> bool {
    let has = |list: &Value, item: &str| {
        list.as_array()
            .is_some_and(|l| l.iter().any(|v| v == item || v == "*"))
    };
    rules.iter().any(|r| {
        has(&r["apiGroups"], group) && has(&r["resources"], resource) && has(&r["verbs"], verb)
    })
}

/// An API server with the CRDs, nodes `node-a` and `node-b` at `FROM`, a pod on `node-a` running
/// in a real containerd, the stand-in kubelet running, and the target published.
struct World {
    server: ApiServer,
    client: kube::Client,
    node: SimulatedNode,
    containerd: Containerd,
    artifacts: ArtifactServer,
    new: Vec<u8>,
    url: String,
    kubeconfig: std::path::PathBuf,
}

async fn world() -> World {
    let server = ApiServer::start(ApiServerConfig::default()).await.unwrap();
    let client = server.client();
    install_crds(&client).await;
    create_node(&client, "node-a", FROM).await;
    create_node(&client, "node-b", FROM).await;
    let pod = create_pod(&client, "node-a").await;
    let node = SimulatedNode::new("node-a", FROM).unwrap();
    let mut containerd = Containerd::start(&node.path("containerd"), &node.cri_socket())
        .await
        .unwrap();
    containerd.run_pod(&pod).await.unwrap();
    node.restart_kubelet().unwrap();
    let artifacts = ArtifactServer::start().await.unwrap();
    let new = standin_kubelet(TO, true);
    let url = artifacts.publish("kubelet", new.clone());
    let kubeconfig = node.path("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    World {
        server,
        client,
        node,
        containerd,
        artifacts,
        new,
        url,
        kubeconfig,
    }
}

/// Creates `plan-<node>` for `node` in `stage`.
async fn create_upgrade(upgrades: &Api<NodeUpgrade>, node: &str, world: &World, stage: Stage) {
    let mut upgrade = work_order(node, "unused", TO, &world.url, &sha256_hex(&world.new));
    upgrade.metadata.uid = None;
    upgrade.spec.stage = stage;
    upgrades
        .create(&PostParams::default(), &upgrade)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_executes_only_its_nodes_upgrade_through_the_handshake_within_its_rbac() {
    if !runtime_tools_present() {
        return;
    }
    let World {
        server,
        client,
        node,
        containerd,
        artifacts: _artifacts,
        new,
        url,
        kubeconfig,
    } = world().await;
    let metrics_port = free_port().unwrap();
    let mut agent = spawn_agent(&node, &kubeconfig, metrics_port).unwrap();

    let upgrades: Api<NodeUpgrade> = Api::all(client.clone());
    let mut other = work_order("node-b", "unused", TO, &url, &sha256_hex(&new));
    other.metadata.uid = None;
    other.spec.stage = Stage::Prepare;
    upgrades
        .create(&PostParams::default(), &other)
        .await
        .unwrap();
    let mut mine = work_order("node-a", "unused", TO, &url, &sha256_hex(&new));
    mine.metadata.uid = None;
    mine.spec.stage = Stage::Prepare;
    upgrades
        .create(&PostParams::default(), &mine)
        .await
        .unwrap();

    let prepared = await_condition(
        upgrades.clone(),
        "plan-node-a",
        |u: Option<&NodeUpgrade>| {
            u.and_then(|u| u.status.as_ref())
                .is_some_and(|s| s.phase == Some(NodePhase::Prepared))
        },
    );
    let prepared = tokio::time::timeout(PATIENCE, prepared)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let status = prepared.status.clone().unwrap();
    assert_eq!(status.observed_generation, prepared.meta().generation);
    assert_eq!(status.from_version.as_deref(), Some(FROM));
    assert_eq!(
        status
            .prediction
            .as_ref()
            .map(|p| (p.preserved, p.will_restart, p.unknown)),
        Some((1, 0, 0))
    );
    assert!(
        prepared.finalizers().is_empty(),
        "no finalizer before Execute"
    );

    let execute = json!({ "spec": { "stage": "Execute" } });
    upgrades
        .patch(
            "plan-node-a",
            &PatchParams::default(),
            &Patch::Merge(execute),
        )
        .await
        .unwrap();
    let config = watcher::Config::default().fields("metadata.name=plan-node-a");
    let mut events = std::pin::pin!(watcher(upgrades.clone(), config).applied_objects());
    let (mut phases, mut held_while_executing, mut node_updated) = (Vec::new(), false, false);
    let finished = tokio::time::timeout(PATIENCE, async {
        while let Some(upgrade) = events.try_next().await.unwrap() {
            let phase = upgrade.status.as_ref().and_then(|s| s.phase);
            if phases.last() != Some(&phase) {
                phases.push(phase);
            }
            if phase.is_some_and(NodePhase::is_executing) {
                held_while_executing |= upgrade
                    .finalizers()
                    .iter()
                    .any(|f| f == NODE_HELPER_FINALIZER);
            }
            if phase == Some(NodePhase::Verifying) && !node_updated {
                set_node_version(&client, "node-a", TO).await;
                node_updated = true;
            }
            if phase.is_some_and(NodePhase::is_terminal) && upgrade.finalizers().is_empty() {
                return upgrade;
            }
        }
        panic!("watch ended");
    })
    .await
    .unwrap_or_else(|_| panic!("no terminal phase; phases seen: {phases:?}"));

    let status = finished.status.clone().unwrap();
    assert_eq!(status.phase, Some(NodePhase::Succeeded), "{status:?}");
    assert!(
        held_while_executing,
        "the finalizer is held from Execute on"
    );
    for phase in [
        NodePhase::Snapshotting,
        NodePhase::Staging,
        NodePhase::Installing,
        NodePhase::Restarting,
    ] {
        assert!(
            phases.contains(&Some(phase)),
            "{phase:?} missing from {phases:?}"
        );
    }
    assert_eq!(std::fs::read(node.kubelet_path()).unwrap(), new);
    let untouched = upgrades.get("plan-node-b").await.unwrap();
    assert!(untouched.status.is_none() && untouched.finalizers().is_empty());

    let metrics = fetch(metrics_port, "/metrics").await;
    assert!(
        metrics.contains("kubelift_node_helper_step_duration_seconds"),
        "{metrics}"
    );
    assert_eq!(fetch(metrics_port, "/healthz").await, "ok");
    let idle_lists = lists_while_idle(&server, Duration::from_secs(5)).await;
    assert_eq!(idle_lists, 0, "an idle agent (heartbeat 2 s) lists nothing");

    stop_pid(i32::try_from(agent.id()).unwrap());
    agent.wait().unwrap();
    let requests: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.user_agent == USER_AGENT)
        .collect();
    assert!(
        !requests.is_empty(),
        "the agent's requests carry its User-Agent"
    );
    let rules = helper_rules();
    let used: BTreeSet<(String, String, String)> = requests
        .iter()
        .map(|r| {
            let resource = r
                .subresource
                .as_ref()
                .map_or(r.resource.clone(), |s| format!("{}/{s}", r.resource));
            (r.group.clone(), resource, r.verb.clone())
        })
        .collect();
    for (group, resource, verb) in &used {
        assert!(
            granted(&rules, group, resource, verb),
            "{verb} {group}/{resource} is not granted"
        );
    }
    assert!(
        requests
            .iter()
            .all(|r| r.name.as_deref() != Some("plan-node-b")),
        "touched node-b's upgrade"
    );
    assert!(used.contains(&(
        "kubelift.dev".into(),
        "nodeupgrades/status".into(),
        "patch".into()
    )));
    let _ = OPERATOR_MANAGER;
    containerd.shutdown().await;
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_whose_node_upgrade_was_deleted_is_rolled_back_when_the_agent_restarts() {
    if !runtime_tools_present() {
        return;
    }
    let world = world().await;
    let original = std::fs::read(world.node.kubelet_path()).unwrap();
    let upgrades: Api<NodeUpgrade> = Api::all(world.client.clone());
    create_upgrade(&upgrades, "node-a", &world, Stage::Execute).await;
    let uid = upgrades.get("plan-node-a").await.unwrap().uid().unwrap();
    let journal_path = world.node.journal_dir().join(format!("{uid}-1.json"));
    let mut agent = spawn_agent(&world.node, &world.kubeconfig, 0).unwrap();
    let installed = wait_for_journal(&journal_path, |j| j.step >= Step::Installed).await;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(agent.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    agent.wait().unwrap();
    assert!(
        !installed.step.is_terminal(),
        "the node is mid-upgrade: {installed:?}"
    );

    let unblock = json!({ "metadata": { "finalizers": null } });
    upgrades
        .patch(
            "plan-node-a",
            &PatchParams::default(),
            &Patch::Merge(unblock),
        )
        .await
        .unwrap();
    upgrades
        .delete("plan-node-a", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    let mut agent = spawn_agent(&world.node, &world.kubeconfig, 0).unwrap();
    let finished = wait_for_journal(&journal_path, |j| j.step.is_terminal()).await;
    stop_pid(i32::try_from(agent.id()).unwrap());
    agent.wait().unwrap();

    assert_eq!(finished.step, Step::RolledBack, "{finished:?}");
    assert_eq!(finished.failure.unwrap().reason, "NodeUpgradeDeleted");
    assert_eq!(std::fs::read(world.node.kubelet_path()).unwrap(), original);
    world.containerd.shutdown().await;
}

/// Waits (watching the file) until the journal satisfies `done`.
/// The agent's lists of `NodeUpgrade`s over `quiet`, once its last upgrade settled.
async fn lists_while_idle(server: &ApiServer, quiet: Duration) -> usize {
    let lists = || {
        server
            .requests()
            .iter()
            .filter(|r| r.user_agent == USER_AGENT)
            .filter(|r| r.verb == "list" && r.resource == "nodeupgrades")
            .count()
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = lists();
    tokio::time::sleep(quiet).await;
    lists() - before
}

async fn wait_for_journal(path: &std::path::Path, done: impl Fn(&Journal) -> bool) -> Journal {
    let wait = async {
        loop {
            let journal = std::fs::read(path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Journal>(&b).ok());
            if let Some(journal) = journal.filter(|j| done(j)) {
                return journal;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(PATIENCE, wait).await.unwrap()
}

async fn fetch(port: u16, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut response)
        .await
        .unwrap();
    response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

/// The agent's command line, as `main` nests it.
#[derive(Debug, clap::Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    Agent(Box<AgentArgs>),
}

#[test]
fn every_argument_in_the_daemonset_parses_with_the_agents_command_line() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests/node-helper.yaml");
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap();
    let daemonset = documents.iter().find(|d| d["kind"] == "DaemonSet").unwrap();
    let container = &daemonset["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let env: Vec<String> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();

    let command = <Cli as clap::CommandFactory>::command();
    let agent = command.find_subcommand("agent").unwrap();
    let known_env: Vec<String> = agent
        .get_arguments()
        .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
        .collect();
    for name in &env {
        assert!(
            known_env.contains(name),
            "env {name} is not a setting of the agent"
        );
    }
    let mut line = vec!["kubelift-node-helper".to_owned()];
    line.extend(args);
    line.push("--node-name=node-a".to_owned());
    let parsed = Cli::try_parse_from(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    let Command::Agent(agent) = parsed.command;
    assert_eq!(agent.node.host_root, std::path::Path::new("/host"));
}
