//! A `docker save`-format image tarball built from the machine's static busybox, so tests need no
//! registry: one layer with `/bin/busybox` and its applet links, a config whose entrypoint is a
//! shell that sleeps until TERM, and a manifest that tags it with every name given.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::HarnessError;

/// The static busybox the image is built from.
pub const BUSYBOX: &str = "/bin/busybox";

/// Applets linked next to busybox in the image.
const APPLETS: [&str; 6] = ["sh", "sleep", "true", "cat", "echo", "kill"];

/// The image's default command: a shell that exits on TERM and otherwise sleeps.
pub const SLEEP_FOREVER: &str = "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done";

/// Writes the tarball to `out`, tagged with each of `tags` (e.g. `kubelift.test/busybox:1`).
pub fn write_image_tar(out: &Path, tags: &[&str]) -> Result<(), HarnessError> {
    let layer = layer_tar()?;
    let layer_digest = hex::encode(Sha256::digest(&layer));
    let config = config_json(&layer_digest);
    let config_digest = hex::encode(Sha256::digest(config.as_bytes()));
    let manifest = serde_json::json!([{
        "Config": format!("{config_digest}.json"),
        "RepoTags": tags,
        "Layers": [format!("{layer_digest}/layer.tar")],
    }]);
    let mut archive = tar::Builder::new(std::fs::File::create(out).map_err(io("create image"))?);
    append(
        &mut archive,
        &format!("{layer_digest}/layer.tar"),
        &layer,
        0o644,
    )?;
    append(
        &mut archive,
        &format!("{config_digest}.json"),
        config.as_bytes(),
        0o644,
    )?;
    append(
        &mut archive,
        "manifest.json",
        manifest.to_string().as_bytes(),
        0o644,
    )?;
    archive.finish().map_err(io("finish image"))
}

fn layer_tar() -> Result<Vec<u8>, HarnessError> {
    let busybox = std::fs::read(BUSYBOX).map_err(io("read /bin/busybox"))?;
    let mut layer = tar::Builder::new(Vec::new());
    append_dir(&mut layer, "bin/")?;
    append_dir(&mut layer, "tmp/")?;
    append(&mut layer, "bin/busybox", &busybox, 0o755)?;
    for applet in APPLETS {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        layer
            .append_link(&mut header, format!("bin/{applet}"), "busybox")
            .map_err(io("link applet"))?;
    }
    layer.into_inner().map_err(io("finish layer"))
}

fn config_json(layer_digest: &str) -> String {
    serde_json::json!({
        "architecture": docker_arch(),
        "os": "linux",
        "config": {
            "Entrypoint": ["/bin/sh", "-c", SLEEP_FOREVER],
            "Env": ["PATH=/bin"],
            "WorkingDir": "/",
        },
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{layer_digest}")] },
    })
    .to_string()
}

/// The Docker/OCI architecture name of this machine.
fn docker_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn append<W: std::io::Write>(
    archive: &mut tar::Builder<W>,
    path: &str,
    data: &[u8],
    mode: u32,
) -> Result<(), HarnessError> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_entry_type(tar::EntryType::Regular);
    archive
        .append_data(&mut header, path, data)
        .map_err(io("append to tar"))
}

fn append_dir<W: std::io::Write>(
    archive: &mut tar::Builder<W>,
    path: &str,
) -> Result<(), HarnessError> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    header.set_mode(0o755);
    archive
        .append_data(&mut header, path, std::io::empty())
        .map_err(io("append dir"))
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> HarnessError {
    move |source| HarnessError::Io { what, source }
}
