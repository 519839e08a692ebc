//! A throwaway control plane (etcd and kube-apiserver, built by
//! `tests/controlplane/build.sh`): starting and stopping it, and kubectl
//! against it. Shared by the integration-test harness and the load
//! benchmark (`benches/load.rs` includes this file).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running control plane.
pub struct ControlPlane {
    /// Its state directory (kubeconfigs, logs, pids).
    pub dir: PathBuf,
    /// The kubectl built with it.
    pub kubectl: PathBuf,
}

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

impl ControlPlane {
    /// Starts a control plane in `dir` (emptied first) with
    /// `tests/controlplane/start.sh`. It stops by itself once this process
    /// is gone; [`ControlPlane::stop`] stops it before.
    pub fn start(dir: PathBuf) -> Result<Self, String> {
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new("bash")
            .arg(repo().join("tests/controlplane/start.sh"))
            .arg(&dir)
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("run tests/controlplane/start.sh: {e}"))?;
        if !out.status.success() {
            return Err("tests/controlplane/start.sh failed; see its output above".into());
        }
        let env = std::fs::read_to_string(dir.join("env")).map_err(|e| format!("control plane env file: {e}"))?;
        let kubectl = env
            .lines()
            .find_map(|l| l.strip_prefix("KUBECTL="))
            .map(|v| PathBuf::from(v.trim_matches(|c| c == '"' || c == '\'')))
            .ok_or("no KUBECTL in the control plane's env file")?;
        Ok(Self { dir, kubectl })
    }

    /// Stops it (`tests/controlplane/stop.sh`).
    pub fn stop(&self) {
        let _ = Command::new("bash")
            .arg(repo().join("tests/controlplane/stop.sh"))
            .arg(&self.dir)
            .status();
    }

    /// The kubeconfig file of an identity.
    pub fn kubeconfig(&self, identity: &str) -> PathBuf {
        self.dir.join("kubeconfig").join(format!("{identity}.kubeconfig"))
    }

    /// Runs kubectl as an identity; returns (success, stdout, stderr).
    pub fn kubectl(&self, identity: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        use std::io::Write as _;
        let mut child = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(self.kubeconfig(identity))
            .args(args)
            .current_dir(repo())
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().expect("kubectl output");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}
