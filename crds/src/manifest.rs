//! Renders kubelift's CustomResourceDefinitions as the YAML stream committed at
//! `manifests/crds.yaml`; `crdgen` prints it and a test fails when the committed file differs.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_core::CustomResourceExt;

use crate::{KubeletUpgrade, NodeUpgrade};

/// The command that regenerates `manifests/crds.yaml`, named in its header.
pub const REGENERATE: &str = "cargo run -p kubelift-crds --bin crdgen > manifests/crds.yaml";

/// Why the CRDs could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// serde-saphyr refused a CRD.
    #[error("failed to render CRDs as YAML")]
    Render(#[from] serde_saphyr::SerializeError),
}

/// The CustomResourceDefinitions of kubelift's API, in the order `crds.yaml` lists them.
#[must_use]
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![KubeletUpgrade::crd(), NodeUpgrade::crd()]
}

/// The content of `manifests/crds.yaml`: a header saying it is generated, then one document per
/// CRD.
pub fn crds_yaml() -> Result<String, ManifestError> {
    let documents = serde_saphyr::to_string_multiple(&crds())?;
    Ok(format!(
        "# Generated from the types in crds/src by `{REGENERATE}`.\n\
         # Do not edit: change the types, their doc comments or crds/src/rules.rs instead.\n\
         {documents}"
    ))
}
