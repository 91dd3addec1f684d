//! Writes the CustomResourceDefinitions of kubelift's API as one YAML stream.

use kube::CustomResourceExt;
use kubelift_crds::{KubeletUpgrade, NodeUpgrade};

fn main() {
    let crds = [KubeletUpgrade::crd(), NodeUpgrade::crd()];
    for crd in crds {
        match serde_saphyr::to_string(&crd) {
            Ok(yaml) => print!("---\n{yaml}"),
            Err(error) => {
                eprintln!("crdgen: failed to render CRD: {error}");
                std::process::exit(1);
            }
        }
    }
}
