//! Where the node's files are: every path the helper touches is resolved under one host-root
//! prefix (`/host` in the `DaemonSet`, a temporary directory per simulated node in tests).

use std::path::{Path, PathBuf};

/// The node's file layout, already resolved under the host-root prefix.
#[derive(Debug, Clone)]
pub struct HostPaths {
    /// The host-root prefix itself.
    pub root: PathBuf,
    /// The kubelet binary.
    pub kubelet: PathBuf,
    /// kubelift's state directory (journal, staged downloads' bookkeeping).
    pub state_dir: PathBuf,
    /// The snapshot file.
    pub snapshot: PathBuf,
    /// The CRI socket.
    pub cri_socket: PathBuf,
}

impl HostPaths {
    /// Resolves host-absolute paths (as the host sees them) under `root`.
    #[must_use]
    pub fn new(root: &Path, kubelet: &Path, state_dir: &Path, snapshot: &Path, cri: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            kubelet: under(root, kubelet),
            state_dir: under(root, state_dir),
            snapshot: under(root, snapshot),
            cri_socket: under(root, cri),
        }
    }

    /// The journal directory.
    #[must_use]
    pub fn journal_dir(&self) -> PathBuf {
        self.state_dir.join("journal")
    }

    /// The directory holding the kubelet, where staged binaries and backups live.
    #[must_use]
    pub fn kubelet_dir(&self) -> PathBuf {
        self.kubelet
            .parent()
            .map_or_else(|| self.root.clone(), Path::to_path_buf)
    }

    /// The kubelet's path as the host itself sees it (without the prefix).
    #[must_use]
    pub fn kubelet_on_host(&self) -> PathBuf {
        self.kubelet
            .strip_prefix(&self.root)
            .map_or_else(|_| self.kubelet.clone(), |rel| Path::new("/").join(rel))
    }

    /// Resolves another host-absolute path (for example a node-local artifact) under the root.
    #[must_use]
    pub fn resolve(&self, host_path: &Path) -> PathBuf {
        under(&self.root, host_path)
    }
}

/// Joins a host-absolute path under the prefix: `/host` + `/usr/bin/kubelet`.
fn under(root: &Path, host_path: &Path) -> PathBuf {
    root.join(host_path.strip_prefix("/").unwrap_or(host_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_under_the_host_root_and_back() {
        let paths = HostPaths::new(
            Path::new("/host"),
            Path::new("/usr/bin/kubelet"),
            Path::new("/var/lib/kubelift"),
            Path::new("/var/lib/kubelift/snapshot.json"),
            Path::new("/run/containerd/containerd.sock"),
        );
        assert_eq!(paths.kubelet, Path::new("/host/usr/bin/kubelet"));
        assert_eq!(
            paths.journal_dir(),
            Path::new("/host/var/lib/kubelift/journal")
        );
        assert_eq!(paths.kubelet_on_host(), Path::new("/usr/bin/kubelet"));
        assert_eq!(paths.kubelet_dir(), Path::new("/host/usr/bin"));
    }
}
