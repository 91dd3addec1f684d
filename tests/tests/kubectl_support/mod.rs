//! The real `kubectl` for tests: a private `HOME` (kubectl caches discovery there) and a
//! kubeconfig for one test server. A missing kubectl skips the caller, except under `CI=true`
//! where it fails the test.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test fixtures fail loudly"
)]

use std::path::PathBuf;
use std::time::Duration;

use kubelift_testbed::apiserver::ApiServer;
use serde_json::Value;

/// Longest a single kubectl command may take on a loaded machine.
const KUBECTL_PATIENCE: Duration = Duration::from_secs(360);

/// kubectl with a private HOME and kubeconfig.
pub struct Kubectl {
    binary: PathBuf,
    home: tempfile::TempDir,
}

impl Kubectl {
    /// kubectl for `server`, or None (after saying why) when kubectl is missing outside CI.
    pub fn for_server(server: &ApiServer) -> Option<Kubectl> {
        let binary = std::env::var_os("KUBELIFT_KUBECTL")
            .map_or_else(|| PathBuf::from("/usr/bin/kubectl"), PathBuf::from);
        if !binary.exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "kubectl is required in CI: {} is missing",
                binary.display()
            );
            eprintln!("skipping: {} is missing", binary.display());
            return None;
        }
        let home = tempfile::tempdir().unwrap();
        server
            .write_kubeconfig(&home.path().join("kubeconfig"))
            .unwrap();
        Some(Kubectl { binary, home })
    }

    /// A kubectl command with the private HOME and kubeconfig, killed when dropped.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.binary);
        command
            .args(args)
            .env("HOME", self.home.path())
            .env("KUBECONFIG", self.home.path().join("kubeconfig"))
            .kill_on_drop(true);
        command
    }

    /// Runs kubectl to completion and returns stdout; fails the test on a non-zero exit.
    pub async fn run(&self, args: &[&str]) -> String {
        let output = tokio::time::timeout(KUBECTL_PATIENCE, self.command(args).output())
            .await
            .unwrap()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "kubectl {args:?} failed: {stdout}\n{stderr}"
        );
        stdout
    }

    /// The path of `name` in the private HOME.
    pub fn home_path(&self, name: &str) -> String {
        self.home.path().join(name).to_string_lossy().into_owned()
    }

    /// `bash -c script` with the private HOME and kubeconfig, and `$KUBECTL` naming kubectl;
    /// killed when dropped.
    pub fn shell(&self, script: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("bash");
        command
            .args(["-c", script])
            .env("HOME", self.home.path())
            .env("KUBECONFIG", self.home.path().join("kubeconfig"))
            .env("KUBECTL", &self.binary)
            .kill_on_drop(true);
        command
    }

    /// Writes `content` as a file in the private HOME and returns its path.
    pub fn file(&self, name: &str, content: &Value) -> String {
        let path = self.home.path().join(name);
        std::fs::write(&path, content.to_string()).unwrap();
        path.to_string_lossy().into_owned()
    }
}
