//! Whether the host's package manager owns the kubelet binary: dpkg or rpm would put their own
//! version back on the package's next upgrade, so the helper warns about it in status.

use std::path::Path;

use crate::host::HostPaths;

/// A warning when dpkg or rpm owns the kubelet path, `None` otherwise.
#[must_use]
pub fn package_owner_warning(paths: &HostPaths) -> Option<String> {
    let on_host = paths.kubelet_on_host();
    let owner = dpkg_owner(&paths.resolve(Path::new("/var/lib/dpkg/info")), &on_host)
        .or_else(|| rpm_owner(&paths.root, &on_host))?;
    Some(format!(
        "{} is owned by the package {owner}; the package manager will replace it on the \
         package's next upgrade",
        on_host.display()
    ))
}

/// The dpkg package whose file list names `path`.
fn dpkg_owner(info_dir: &Path, path: &Path) -> Option<String> {
    let wanted = path.to_string_lossy();
    std::fs::read_dir(info_dir)
        .ok()?
        .filter_map(Result::ok)
        .find_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let package = name.strip_suffix(".list")?;
            let listed = std::fs::read_to_string(entry.path()).ok()?;
            listed
                .lines()
                .any(|line| line == wanted)
                .then(|| package.to_owned())
        })
}

/// The rpm package owning `path`, asked through `rpm --root` when the host has an rpm database.
fn rpm_owner(root: &Path, path: &Path) -> Option<String> {
    if !root.join("var/lib/rpm").exists() {
        return None;
    }
    let output = std::process::Command::new("rpm")
        .arg("--root")
        .arg(root)
        .arg("-qf")
        .arg(path)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
