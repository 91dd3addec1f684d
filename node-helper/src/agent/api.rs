//! The agent's writes to the API server, each the smallest that does the job: status by
//! server-side apply under the field manager `kubelift-node-helper` (never the spec), the
//! finalizer `kubelift.dev/node-helper` by a JSON patch guarded by the object's resource version,
//! and Events on transitions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Resource, ResourceExt};
use kubelift_crds::constants::{NODE_HELPER_FINALIZER, NODE_HELPER_MANAGER};
use kubelift_crds::{NodeUpgrade, NodeUpgradeStatus};

/// Errors of writing to the API server.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A write was refused or failed.
    #[error("failed to {action} NodeUpgrade {name}")]
    Write {
        /// What was written.
        action: &'static str,
        /// The object.
        name: String,
        /// The client error.
        #[source]
        source: Box<kube::Error>,
    },
}

/// The agent's handle on the API server.
#[derive(Clone)]
pub struct ApiWriter {
    api: Api<NodeUpgrade>,
    recorder: Recorder,
}

impl std::fmt::Debug for ApiWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiWriter")
    }
}

fn write<'a>(action: &'static str, name: &'a str) -> impl Fn(kube::Error) -> ApiError + 'a {
    move |source| ApiError::Write {
        action,
        name: name.to_owned(),
        source: Box::new(source),
    }
}

impl ApiWriter {
    /// A writer for this node's helper.
    #[must_use]
    pub fn new(client: kube::Client, node: &str) -> Self {
        let reporter = Reporter {
            controller: NODE_HELPER_MANAGER.to_owned(),
            instance: Some(node.to_owned()),
        };
        Self {
            api: Api::all(client.clone()),
            recorder: Recorder::new(client, reporter),
        }
    }

    /// The `NodeUpgrade` API.
    #[must_use]
    pub fn api(&self) -> &Api<NodeUpgrade> {
        &self.api
    }

    /// Applies the whole status the helper owns; returns the updated object.
    pub async fn apply_status(
        &self,
        upgrade: &NodeUpgrade,
        status: &NodeUpgradeStatus,
    ) -> Result<NodeUpgrade, ApiError> {
        let name = upgrade.name_any();
        let patch = serde_json::json!({
            "apiVersion": NodeUpgrade::api_version(&()),
            "kind": NodeUpgrade::kind(&()),
            "status": status,
        });
        let params = PatchParams::apply(NODE_HELPER_MANAGER).force();
        self.api
            .patch_status(&name, &params, &Patch::Apply(&patch))
            .await
            .map_err(write("apply status of", &name))
    }

    /// Adds the helper's finalizer unless present; returns the current object.
    pub async fn hold(&self, upgrade: &NodeUpgrade) -> Result<NodeUpgrade, ApiError> {
        let mut finalizers = upgrade.finalizers().to_vec();
        if finalizers.iter().any(|f| f == NODE_HELPER_FINALIZER) {
            return Ok(upgrade.clone());
        }
        finalizers.push(NODE_HELPER_FINALIZER.to_owned());
        self.set_finalizers(upgrade, finalizers, "add the finalizer to")
            .await
    }

    /// Removes the helper's finalizer when present; returns the current object.
    pub async fn release(&self, upgrade: &NodeUpgrade) -> Result<NodeUpgrade, ApiError> {
        let finalizers = upgrade.finalizers();
        if !finalizers.iter().any(|f| f == NODE_HELPER_FINALIZER) {
            return Ok(upgrade.clone());
        }
        let kept = finalizers
            .iter()
            .filter(|f| *f != NODE_HELPER_FINALIZER)
            .cloned()
            .collect();
        self.set_finalizers(upgrade, kept, "remove the finalizer from")
            .await
    }

    /// Replaces the finalizer list, guarded by the resource version the list was read at; on a
    /// conflict the object is read again and the change recomputed.
    async fn set_finalizers(
        &self,
        upgrade: &NodeUpgrade,
        finalizers: Vec<String>,
        action: &'static str,
    ) -> Result<NodeUpgrade, ApiError> {
        let name = upgrade.name_any();
        let mut attempt = self.patch_finalizers(upgrade, &finalizers, action).await;
        for _ in 0..FINALIZER_RETRIES {
            match attempt {
                Err(ApiError::Write { ref source, .. }) if is_conflict(source) => {
                    let latest = self.api.get(&name).await.map_err(write(action, &name))?;
                    let wanted = recompute(&latest, &finalizers, upgrade.finalizers());
                    attempt = self.patch_finalizers(&latest, &wanted, action).await;
                }
                done => return done,
            }
        }
        attempt
    }

    async fn patch_finalizers(
        &self,
        upgrade: &NodeUpgrade,
        finalizers: &[String],
        action: &'static str,
    ) -> Result<NodeUpgrade, ApiError> {
        let name = upgrade.name_any();
        let version = upgrade.resource_version();
        let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
            { "op": "test", "path": "/metadata/resourceVersion", "value": version },
            { "op": "add", "path": "/metadata/finalizers", "value": finalizers },
        ]))
        .map_err(|e| write(action, &name)(kube::Error::SerdeError(e)))?;
        let params = PatchParams::default();
        self.api
            .patch(&name, &params, &Patch::<()>::Json(patch))
            .await
            .map_err(write(action, &name))
    }

    /// Publishes an Event about `upgrade`; a failure is logged, never fatal.
    pub async fn event(&self, upgrade: &NodeUpgrade, warning: bool, reason: &str, note: String) {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_owned(),
            note: Some(note),
            action: "UpgradeKubelet".to_owned(),
            secondary: None,
        };
        if let Err(error) = self
            .recorder
            .publish(&event, &upgrade.object_ref(&()))
            .await
        {
            tracing::warn!(%error, reason, "failed to publish event");
        }
    }
}

/// Conflicting writes retried before giving up.
const FINALIZER_RETRIES: usize = 5;

/// A failed `test` on the resource version (422) or a conflict (409).
fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409 || status.code == 422)
}

/// Applies the same change (adding or removing the helper's finalizer) to a newer list.
fn recompute(latest: &NodeUpgrade, wanted: &[String], before: &[String]) -> Vec<String> {
    let adding = wanted.len() > before.len();
    let others = latest
        .finalizers()
        .iter()
        .filter(|f| *f != NODE_HELPER_FINALIZER)
        .cloned();
    let mut list: Vec<String> = others.collect();
    if adding {
        list.push(NODE_HELPER_FINALIZER.to_owned());
    }
    list
}

/// The current time as an API timestamp.
#[must_use]
pub fn now() -> Time {
    Time(jiff::Timestamp::now())
}
