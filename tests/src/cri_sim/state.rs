//! The simulated runtime's memory: pod sandboxes and containers keyed by random hex IDs, with
//! the state transitions of a CRI runtime (created → running → exited, ready → not ready).
//! Containers never run anything; they only remember what the kubelet told the runtime.

use std::collections::{BTreeMap, HashMap};

use k8s_cri::v1::{
    Container, ContainerConfig, ContainerFilter, ContainerState, ContainerStatus, PodSandbox,
    PodSandboxConfig, PodSandboxFilter, PodSandboxState, PodSandboxStatus,
};
use tonic::Status;

/// One pod sandbox as the runtime remembers it.
#[derive(Debug, Clone)]
struct Sandbox {
    config: PodSandboxConfig,
    state: PodSandboxState,
    created_at: i64,
}

/// One container as the runtime remembers it.
#[derive(Debug, Clone)]
struct Record {
    sandbox_id: String,
    config: ContainerConfig,
    state: ContainerState,
    created_at: i64,
    started_at: i64,
    finished_at: i64,
    exit_code: i32,
}

/// Every sandbox and container of one simulated node.
#[derive(Debug, Default)]
pub(crate) struct Runtime {
    sandboxes: BTreeMap<String, Sandbox>,
    containers: BTreeMap<String, Record>,
}

/// A fresh 64-digit lowercase hex ID, like containerd's.
pub(crate) fn random_id() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Nanoseconds since the Unix epoch, as CRI timestamps are.
fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
}

fn not_found(what: &str, id: &str) -> Status {
    Status::not_found(format!("{what} {id:?} not found"))
}

fn labels_match(labels: &HashMap<String, String>, selector: &HashMap<String, String>) -> bool {
    selector
        .iter()
        .all(|(key, value)| labels.get(key) == Some(value))
}

impl Runtime {
    /// Creates a ready sandbox and returns its ID.
    pub(crate) fn run_sandbox(&mut self, config: PodSandboxConfig) -> Result<String, Status> {
        if config.metadata.is_none() {
            return Err(Status::invalid_argument("sandbox config has no metadata"));
        }
        let id = random_id();
        let sandbox = Sandbox {
            config,
            state: PodSandboxState::SandboxReady,
            created_at: now_nanos(),
        };
        self.sandboxes.insert(id.clone(), sandbox);
        Ok(id)
    }

    /// Stops a sandbox and every container in it; stopping an unknown sandbox succeeds.
    pub(crate) fn stop_sandbox(&mut self, id: &str) {
        let Some(sandbox) = self.sandboxes.get_mut(id) else {
            return;
        };
        sandbox.state = PodSandboxState::SandboxNotready;
        let ids: Vec<String> = self.container_ids_in(id);
        for container in ids {
            self.stop_container(&container).unwrap_or_default();
        }
    }

    /// Removes a sandbox and its containers; removing an unknown sandbox succeeds.
    pub(crate) fn remove_sandbox(&mut self, id: &str) {
        for container in self.container_ids_in(id) {
            self.containers.remove(&container);
        }
        self.sandboxes.remove(id);
    }

    fn container_ids_in(&self, sandbox_id: &str) -> Vec<String> {
        let inside = self
            .containers
            .iter()
            .filter(|(_, c)| c.sandbox_id == sandbox_id);
        inside.map(|(id, _)| id.clone()).collect()
    }

    /// The status of one sandbox.
    pub(crate) fn sandbox_status(&self, id: &str) -> Result<PodSandboxStatus, Status> {
        let sandbox = self
            .sandboxes
            .get(id)
            .ok_or_else(|| not_found("pod sandbox", id))?;
        Ok(PodSandboxStatus {
            id: id.to_owned(),
            metadata: sandbox.config.metadata.clone(),
            state: sandbox.state.into(),
            created_at: sandbox.created_at,
            labels: sandbox.config.labels.clone(),
            annotations: sandbox.config.annotations.clone(),
            ..PodSandboxStatus::default()
        })
    }

    /// The sandboxes passing `filter`, oldest ID order.
    pub(crate) fn list_sandboxes(&self, filter: Option<&PodSandboxFilter>) -> Vec<PodSandbox> {
        let keep = |id: &str, sandbox: &Sandbox| {
            filter.is_none_or(|f| {
                (f.id.is_empty() || id.starts_with(&f.id))
                    && f.state
                        .as_ref()
                        .is_none_or(|s| s.state == i32::from(sandbox.state))
                    && labels_match(&sandbox.config.labels, &f.label_selector)
            })
        };
        let kept = self.sandboxes.iter().filter(|(id, s)| keep(id, s));
        kept.map(|(id, s)| PodSandbox {
            id: id.clone(),
            metadata: s.config.metadata.clone(),
            state: s.state.into(),
            created_at: s.created_at,
            labels: s.config.labels.clone(),
            annotations: s.config.annotations.clone(),
            runtime_handler: String::new(),
        })
        .collect()
    }

    /// Creates a container in a ready sandbox and returns its ID.
    pub(crate) fn create_container(
        &mut self,
        sandbox_id: &str,
        config: ContainerConfig,
    ) -> Result<String, Status> {
        let sandbox = self
            .sandboxes
            .get(sandbox_id)
            .ok_or_else(|| not_found("pod sandbox", sandbox_id))?;
        if sandbox.state != PodSandboxState::SandboxReady {
            return Err(Status::failed_precondition(format!(
                "pod sandbox {sandbox_id:?} is not ready"
            )));
        }
        if config.metadata.is_none() {
            return Err(Status::invalid_argument("container config has no metadata"));
        }
        let id = random_id();
        let record = Record {
            sandbox_id: sandbox_id.to_owned(),
            config,
            state: ContainerState::ContainerCreated,
            created_at: now_nanos(),
            started_at: 0,
            finished_at: 0,
            exit_code: 0,
        };
        self.containers.insert(id.clone(), record);
        Ok(id)
    }

    /// Starts a created container.
    pub(crate) fn start_container(&mut self, id: &str) -> Result<(), Status> {
        let record = self
            .containers
            .get_mut(id)
            .ok_or_else(|| not_found("container", id))?;
        if record.state != ContainerState::ContainerCreated {
            return Err(Status::failed_precondition(format!(
                "container {id:?} is not created"
            )));
        }
        record.state = ContainerState::ContainerRunning;
        record.started_at = now_nanos();
        Ok(())
    }

    /// Stops a container (exit code 0, as after a trapped SIGTERM); stopping twice succeeds.
    pub(crate) fn stop_container(&mut self, id: &str) -> Result<(), Status> {
        let record = self
            .containers
            .get_mut(id)
            .ok_or_else(|| not_found("container", id))?;
        if record.state != ContainerState::ContainerExited {
            record.state = ContainerState::ContainerExited;
            record.finished_at = now_nanos();
            record.exit_code = 0;
        }
        Ok(())
    }

    /// Removes a container; removing an unknown one succeeds.
    pub(crate) fn remove_container(&mut self, id: &str) {
        self.containers.remove(id);
    }

    /// The containers passing `filter`.
    pub(crate) fn list_containers(&self, filter: Option<&ContainerFilter>) -> Vec<Container> {
        let keep = |id: &str, record: &Record| {
            filter.is_none_or(|f| {
                (f.id.is_empty() || id.starts_with(&f.id))
                    && (f.pod_sandbox_id.is_empty()
                        || record.sandbox_id.starts_with(&f.pod_sandbox_id))
                    && f.state
                        .as_ref()
                        .is_none_or(|s| s.state == i32::from(record.state))
                    && labels_match(&record.config.labels, &f.label_selector)
            })
        };
        let kept = self.containers.iter().filter(|(id, r)| keep(id, r));
        kept.map(|(id, r)| Container {
            id: id.clone(),
            pod_sandbox_id: r.sandbox_id.clone(),
            metadata: r.config.metadata.clone(),
            image: r.config.image.clone(),
            image_ref: image_ref(&r.config),
            state: r.state.into(),
            created_at: r.created_at,
            labels: r.config.labels.clone(),
            annotations: r.config.annotations.clone(),
            image_id: image_ref(&r.config),
        })
        .collect()
    }

    /// The status of one container.
    pub(crate) fn container_status(&self, id: &str) -> Result<ContainerStatus, Status> {
        let r = self
            .containers
            .get(id)
            .ok_or_else(|| not_found("container", id))?;
        Ok(ContainerStatus {
            id: id.to_owned(),
            metadata: r.config.metadata.clone(),
            state: r.state.into(),
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            exit_code: r.exit_code,
            image: r.config.image.clone(),
            image_ref: image_ref(&r.config),
            reason: if r.state == ContainerState::ContainerExited {
                "Completed".into()
            } else {
                String::new()
            },
            labels: r.config.labels.clone(),
            annotations: r.config.annotations.clone(),
            log_path: r.config.log_path.clone(),
            image_id: image_ref(&r.config),
            ..ContainerStatus::default()
        })
    }

    /// The statuses of the containers in one sandbox.
    pub(crate) fn statuses_in(&self, sandbox_id: &str) -> Vec<ContainerStatus> {
        let ids = self.container_ids_in(sandbox_id);
        ids.iter()
            .filter_map(|id| self.container_status(id).ok())
            .collect()
    }
}

fn image_ref(config: &ContainerConfig) -> String {
    config
        .image
        .as_ref()
        .map(|i| i.image.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

    use k8s_cri::v1::{ContainerMetadata, PodSandboxMetadata};

    use super::*;

    fn sandbox_config() -> PodSandboxConfig {
        let metadata = PodSandboxMetadata {
            name: "web".into(),
            ..Default::default()
        };
        PodSandboxConfig {
            metadata: Some(metadata),
            ..Default::default()
        }
    }

    fn container_config(name: &str) -> ContainerConfig {
        let metadata = ContainerMetadata {
            name: name.into(),
            attempt: 0,
        };
        let labels = HashMap::from([("app".to_owned(), name.to_owned())]);
        ContainerConfig {
            metadata: Some(metadata),
            labels,
            ..Default::default()
        }
    }

    #[test]
    fn a_container_goes_from_created_to_running_to_exited() {
        let mut runtime = Runtime::default();
        let sandbox = runtime.run_sandbox(sandbox_config()).unwrap();
        let id = runtime
            .create_container(&sandbox, container_config("app"))
            .unwrap();
        assert_eq!(
            runtime.container_status(&id).unwrap().state(),
            ContainerState::ContainerCreated
        );
        runtime.start_container(&id).unwrap();
        let running = runtime.container_status(&id).unwrap();
        assert_eq!(running.state(), ContainerState::ContainerRunning);
        assert!(running.started_at >= running.created_at);
        runtime.stop_container(&id).unwrap();
        assert_eq!(
            runtime.container_status(&id).unwrap().state(),
            ContainerState::ContainerExited
        );
    }

    #[test]
    fn filters_select_by_label_and_sandbox() {
        let mut runtime = Runtime::default();
        let first = runtime.run_sandbox(sandbox_config()).unwrap();
        let second = runtime.run_sandbox(sandbox_config()).unwrap();
        runtime
            .create_container(&first, container_config("a"))
            .unwrap();
        runtime
            .create_container(&second, container_config("b"))
            .unwrap();
        let selector = HashMap::from([("app".to_owned(), "b".to_owned())]);
        let by_label = ContainerFilter {
            label_selector: selector,
            ..Default::default()
        };
        let found = runtime.list_containers(Some(&by_label));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pod_sandbox_id, second);
        let by_sandbox = ContainerFilter {
            pod_sandbox_id: first.clone(),
            ..Default::default()
        };
        assert_eq!(
            runtime.list_containers(Some(&by_sandbox))[0].pod_sandbox_id,
            first
        );
    }

    #[test]
    fn removing_a_sandbox_removes_its_containers() {
        let mut runtime = Runtime::default();
        let sandbox = runtime.run_sandbox(sandbox_config()).unwrap();
        let id = runtime
            .create_container(&sandbox, container_config("app"))
            .unwrap();
        runtime.stop_sandbox(&sandbox);
        runtime.remove_sandbox(&sandbox);
        assert!(runtime.container_status(&id).is_err());
        assert!(runtime.list_sandboxes(None).is_empty());
    }

    #[test]
    fn ids_are_64_hex_digits() {
        let id = random_id();
        assert_eq!(id.len(), 64);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
}
