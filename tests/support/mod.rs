//! The integration-test harness: one real control plane (etcd and
//! kube-apiserver, built by `tests/controlplane/build.sh`) per test binary,
//! with the CRDs and admission policies installed and confirmed active; for
//! each test, a fresh workspace name and namespace, and a kube client per
//! identity. When a test fails, the objects of its workspace are printed.
#![allow(dead_code)]

pub mod browser;
mod controlplane;
pub mod faults;
pub mod world;

pub use controlplane::{ControlPlane, repo};

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::ApiResource;
use kube::{Client, Config, Resource};

/// The identities of the control plane's static tokens.
pub const IDENTITIES: &[&str] = &[
    "admin", "alice", "bob", "carol", "dave", "erin", "partner", "auditor", "gitops", "operator",
];

static PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// The control plane of this test binary, started on first use.
/// If it cannot start, every test of the binary fails with the first error
/// instead of trying again.
pub fn plane() -> &'static ControlPlane {
    let plane = PLANE.get_or_init(|| {
        let started = Instant::now();
        let plane = std::panic::catch_unwind(start_plane).map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown error".into())
        })?;
        eprintln!(
            "control plane ready in {:.1}s at {}",
            started.elapsed().as_secs_f64(),
            plane.dir.display()
        );
        Ok(plane)
    });
    match plane {
        Ok(plane) => plane,
        Err(err) => panic!("the control plane did not start: {err}"),
    }
}

fn start_plane() -> ControlPlane {
    let exe = std::env::current_exe().ok();
    let test_name = exe
        .as_ref()
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tests".into());
    let dir = std::env::temp_dir().join(format!("foureyes-{test_name}-{}", std::process::id()));
    let plane = ControlPlane::start(dir).unwrap_or_else(|err| panic!("{err}"));
    if NODE.load(Ordering::SeqCst) {
        start_node(&plane);
        return plane;
    }
    if HELM_INSTALL.load(Ordering::SeqCst) {
        install_chart(&plane);
    } else {
        install_raw(&plane);
    }
    plane.kubectl_ok("admin", &["create", "namespace", "foureyes-probe"], None);
    plane.wait_for_identity_policy();
    plane
}

/// The raw install: `crds/` (CRDs, admission policies and their
/// parameters) and `foureyes rbac` for the test configuration.
fn install_raw(plane: &ControlPlane) {
    plane.kubectl_ok(
        "admin",
        &[
            "apply",
            "--server-side",
            "--field-manager=foureyes-tests",
            "-f",
            "crds/",
        ],
        None,
    );
    plane.kubectl_ok(
        "admin",
        &["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"],
        None,
    );
    plane.kubectl_ok(
        "admin",
        &[
            "apply",
            "--server-side",
            "--field-manager=foureyes-tests",
            "-f",
            "tests/controlplane/rbac.yaml",
        ],
        None,
    );
    let config = plane.dir.join("operator-config.yaml");
    std::fs::write(&config, OPERATOR_CONFIG).unwrap();
    let rbac = Command::new(env!("CARGO_BIN_EXE_foureyes"))
        .args(["rbac", "--config"])
        .arg(&config)
        .output()
        .expect("foureyes rbac");
    assert!(
        rbac.status.success(),
        "foureyes rbac: {}",
        String::from_utf8_lossy(&rbac.stderr)
    );
    plane.kubectl_ok(
        "admin",
        &["apply", "--server-side", "--field-manager=foureyes-tests", "-f", "-"],
        Some(&String::from_utf8_lossy(&rbac.stdout)),
    );
}

/// A fresh `helm install` of `charts/foureyes` in `foureyes-system`, as a
/// user would install it: the chart's CRDs, RBAC, admission policies and
/// parameters; nothing from `crds/`. (The chart's Deployment does not run
/// here: the tests run the operator as a process with the same identity.)
fn install_chart(plane: &ControlPlane) {
    plane.kubectl_ok(
        "admin",
        &[
            "apply",
            "--server-side",
            "--field-manager=foureyes-tests",
            "-f",
            "tests/controlplane/rbac.yaml",
        ],
        None,
    );
    let kubeconfig = plane.kubeconfig("admin");
    let (ok, out, err) = run_helm(
        &[
            "install",
            "foureyes",
            "charts/foureyes",
            "--namespace",
            "foureyes-system",
            "--create-namespace",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "helm install:\n{out}\n{err}");
    plane.kubectl_ok(
        "admin",
        &["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"],
        None,
    );
}

static NODE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Gives this test binary's control plane a node that runs pods
/// (`tests/node/up.sh`, with the operator image imported) and installs
/// nothing: the test installs the chart itself, then calls
/// [`ControlPlane::wait_for_policies`]. Call it before anything starts the plane.
pub fn with_node() {
    NODE.store(true, Ordering::SeqCst);
}

/// The operator image, an OCI archive: `$FOUREYES_IMAGE` if set (the test
/// command builds it first), else built now by `scripts/image.sh` (the
/// release binaries).
pub fn operator_image() -> &'static PathBuf {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        if let Some(path) = std::env::var_os("FOUREYES_IMAGE") {
            return PathBuf::from(path);
        }
        let out = Command::new("bash")
            .arg(repo().join("scripts/image.sh"))
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/image.sh");
        assert!(out.status.success(), "scripts/image.sh failed; see above");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().last().expect("scripts/image.sh's result line");
        PathBuf::from(line.split_whitespace().next().expect("the archive's path"))
    })
}

/// Starts the node in `<plane dir>/node`, with the plane's watchdog's parent.
fn start_node(plane: &ControlPlane) {
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(repo().join("tests/node/up.sh"))
        .arg(&plane.dir)
        .arg(plane.dir.join("node"))
        .arg(std::process::id().to_string())
        .env("NODE_IMAGES", operator_image())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run tests/node/up.sh");
    assert!(out.status.success(), "tests/node/up.sh failed; see its output above");
    eprintln!("node ready in {:.1}s", started.elapsed().as_secs_f64());
}

static HELM_INSTALL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes this test binary's control plane a fresh Helm install of the chart
/// instead of the raw manifests; call it before anything starts the plane.
pub fn install_with_helm() {
    HELM_INSTALL.store(true, Ordering::SeqCst);
}

/// helm, built from the Go module proxy by `tests/controlplane/helm/build.sh`
/// (cached after the first build).
pub fn helm() -> &'static PathBuf {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo().join("tests/controlplane/helm/build.sh"))
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("run tests/controlplane/helm/build.sh");
        assert!(out.status.success(), "building helm failed; see above");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let bin = stdout.lines().last().expect("bin directory").trim();
        PathBuf::from(bin).join("helm")
    })
}

/// Runs helm in the repository; returns (success, stdout, stderr).
pub fn run_helm(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write as _;
    let home = std::env::temp_dir().join(format!("foureyes-helm-{}", std::process::id()));
    let mut child = Command::new(helm())
        .args(args)
        .current_dir(repo())
        // Keep helm's caches and configuration out of the user's home.
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run helm");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().expect("helm output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl ControlPlane {
    /// Runs kubectl as an identity and panics with its output if it fails.
    pub fn kubectl_ok(&self, identity: &str, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, stdout, stderr) = self.kubectl(identity, args, stdin);
        assert!(
            ok,
            "kubectl {} (as {identity}) failed:\n{stdout}\n{stderr}",
            args.join(" ")
        );
        stdout
    }

    /// After an installation by the test itself: waits until the admission
    /// policies take effect (in the namespace `foureyes-probe`, made here).
    pub fn wait_for_policies(&self) {
        self.kubectl_ok("admin", &["create", "namespace", "foureyes-probe"], None);
        self.wait_for_identity_policy();
    }

    /// A newly created ValidatingAdmissionPolicy takes effect after a short
    /// delay: retry a request it must deny until it is denied.
    fn wait_for_identity_policy(&self) {
        let probe = r#"
apiVersion: foureyes.dev/v1alpha1
kind: RoleRequest
metadata: { name: probe, namespace: foureyes-probe }
spec:
  subject: { kind: User, name: dave }
  workspaceRole: member
  duration: 1h
  justification: probe
  requester: bob
"#;
        let deadline = Instant::now() + Duration::from_secs(60);
        self.retry_until(
            deadline,
            "the identity admission policy",
            &["create", "--dry-run=server", "-f", "-"],
            probe,
            |ok, _, stderr| !ok && stderr.contains("spec.requester must be your own user name"),
        );
        // The creator stamp (a MutatingAdmissionPolicy) likewise...
        let binding = &probe_binding("probe");
        let stamp = r"jsonpath={.metadata.annotations.foureyes\.dev/created-by}";
        let stamped = |ok: bool, stdout: &str, _: &str| ok && stdout.trim() == "alice";
        self.retry_until(
            deadline,
            "the creator stamp",
            &["create", "--dry-run=server", "-f", "-", "-o", stamp],
            binding,
            stamped,
        );
        // ...and the policy that keeps the stamp on updates.
        self.kubectl_ok("alice", &["create", "-f", "-"], Some(binding));
        self.retry_until(
            deadline,
            "the creator-keep policy",
            &["replace", "--dry-run=server", "-f", "-", "-o", stamp],
            binding,
            stamped,
        );
        // ...and the one that records who appended each vote.
        let request = r#"
apiVersion: foureyes.dev/v1alpha1
kind: RoleRequest
metadata: { name: probe-votes, namespace: foureyes-probe }
spec:
  subject: { kind: User, name: dave }
  workspaceRole: member
  duration: 1h
  justification: probe
  requester: alice
  approvals: [{ user: alice, decision: Approve }]
"#;
        self.retry_until(
            deadline,
            "the votes stamp",
            &[
                "create",
                "--dry-run=server",
                "-f",
                "-",
                "-o",
                r"jsonpath={.metadata.annotations.foureyes\.dev/votes}",
            ],
            request,
            |ok, stdout, _| ok && stdout.contains("\talice"),
        );
    }

    /// Runs kubectl as alice with `stdin` until `done(ok, stdout, stderr)`,
    /// or fails when `deadline` passes.
    fn retry_until(
        &self,
        deadline: Instant,
        what: &str,
        args: &[&str],
        stdin: &str,
        done: impl Fn(bool, &str, &str) -> bool,
    ) {
        loop {
            let (ok, stdout, stderr) = self.kubectl("alice", args, Some(stdin));
            if done(ok, &stdout, &stderr) {
                return;
            }
            assert!(Instant::now() < deadline, "{what} never took effect: {stdout}{stderr}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// A foureyes RoleBinding named `name` in `foureyes-probe` that alice
/// grants: one that the admission policies match.
pub fn probe_binding(name: &str) -> String {
    format!(
        r#"
apiVersion: foureyes.dev/v1alpha1
kind: RoleBinding
metadata: {{ name: {name}, namespace: foureyes-probe }}
spec:
  subject: {{ kind: User, name: dave }}
  workspaceRole: member
  duration: 1h
  justification: probe
  grantedBy: alice
"#
    )
}

/// A kube client acting as one identity.
pub async fn client(identity: &str) -> Client {
    let kubeconfig = Kubeconfig::read_from(plane().kubeconfig(identity)).expect("read kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kube config");
    Client::try_from(config).expect("kube client")
}

/// A kube client acting as `user` in `groups`, by impersonation from the
/// admin (the API server then authenticates the request as that user, for
/// RBAC and admission alike; the group `system:authenticated` is added).
pub async fn client_as(user: &str, groups: &[&str]) -> Client {
    let mut kubeconfig = Kubeconfig::read_from(plane().kubeconfig("admin")).expect("read kubeconfig");
    for named in &mut kubeconfig.auth_infos {
        if let Some(auth) = named.auth_info.as_mut() {
            auth.impersonate = Some(user.to_owned());
            let mut all: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
            all.push("system:authenticated".into());
            auth.impersonate_groups = Some(all);
        }
    }
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kube config");
    Client::try_from(config).expect("kube client")
}

/// One test's own workspace: a unique name and its control namespace,
/// created by the admin. Dumps the workspace's objects if the test panics.
pub struct TestEnv {
    /// The workspace name.
    pub name: String,
    /// The workspace's control namespace (`ws-<name>`).
    pub ns: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestEnv {
    /// A fresh workspace name with the given prefix, and its namespace.
    pub async fn new(prefix: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id() % 100_000);
        let ns = format!("ws-{name}");
        let plane = plane();
        // Labelled for the workspace of that name, so that the workspace (if
        // the test creates one) adopts it: an unlabelled existing namespace is
        // never taken over.
        let manifest = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels: {{ foureyes.dev/control-namespace: {name} }}\n"
        );
        plane.kubectl_ok("admin", &["create", "-f", "-"], Some(&manifest));
        Self { name, ns }
    }

    /// A client acting as the identity.
    pub async fn client(&self, identity: &str) -> Client {
        client(identity).await
    }

    /// An API for foureyes (or other) objects of type `K` in this workspace's
    /// namespace, acting as the identity.
    pub async fn api<K>(&self, identity: &str) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(client(identity).await, &self.ns)
    }

    /// A dynamic API for kind `K` (so that tests can send objects the typed
    /// structs cannot express), in this namespace when namespaced.
    pub async fn dynamic<K>(&self, identity: &str) -> Api<DynamicObject>
    where
        K: Resource,
        K::DynamicType: Default,
    {
        let ar = ApiResource::erase::<K>(&Default::default());
        let client = client(identity).await;
        if K::kind(&Default::default()) == "Workspace" {
            Api::all_with(client, &ar)
        } else {
            Api::namespaced_with(client, &self.ns, &ar)
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let plane = plane();
            let (_, ws, _) = plane.kubectl(
                "admin",
                &["get", "workspaces.foureyes.dev", &self.name, "-o", "yaml"],
                None,
            );
            let (_, objs, _) = plane.kubectl("admin", &["get", "foureyes", "-n", &self.ns, "-o", "yaml"], None);
            let (_, events, _) = plane.kubectl("admin", &["get", "events", "-n", &self.ns], None);
            eprintln!(
                "--- workspace {} ---\n{ws}\n--- objects in {} ---\n{objs}\n--- events ---\n{events}",
                self.name, self.ns
            );
        }
    }
}

/// Creates a JSON object through a dynamic API; returns the API server's
/// refusal message on failure.
pub async fn create_json(api: &Api<DynamicObject>, value: serde_json::Value) -> Result<DynamicObject, String> {
    let obj: DynamicObject = serde_json::from_value(value).expect("object JSON");
    api.create(&PostParams::default(), &obj).await.map_err(refusal)
}

/// Replaces an object through a dynamic API; returns the refusal message on failure.
pub async fn replace_json(api: &Api<DynamicObject>, value: serde_json::Value) -> Result<DynamicObject, String> {
    let obj: DynamicObject = serde_json::from_value(value).expect("object JSON");
    let name = obj.metadata.name.clone().expect("name");
    api.replace(&name, &PostParams::default(), &obj).await.map_err(refusal)
}

/// The message of an API error.
pub fn refusal(err: kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message,
        other => other.to_string(),
    }
}

/// The operator's configuration in tests: `partner` (and the group
/// `foureyes:partners`) are partners; the sweep runs every 2 seconds.
pub const OPERATOR_CONFIG: &str = r#"
partners:
  users: [partner]
  groups: ["foureyes:partners"]
auditors:
  groups: ["foureyes:auditors"]
sweepInterval: 2s
retention: 1h
"#;

/// A running operator process (`foureyes run`, as the operator's service
/// account). It stops when dropped, and also when the test process dies.
pub struct Operator {
    child: std::process::Child,
    /// Its log file.
    pub log: PathBuf,
}

impl Operator {
    /// Starts an operator with the test configuration; `name` tells its log
    /// apart. Leader election is on (the binary's default), on the Lease
    /// `foureyes-system/foureyes`: one operator at a time acts.
    pub fn start(name: &str) -> Self {
        Self::start_with(name, &[], Some("caches synced; ready"))
    }

    /// Starts an operator with extra `foureyes run` arguments; waits until its
    /// log says `ready_when` (if given). Its instance name (and identity in
    /// the leader Lease) is `name`.
    pub fn start_with(name: &str, args: &[&str], ready_when: Option<&str>) -> Self {
        Self::start_configured(name, OPERATOR_CONFIG, args, ready_when)
    }

    /// Like [`Operator::start_with`], with the configuration file `config`.
    pub fn start_configured(name: &str, config_text: &str, args: &[&str], ready_when: Option<&str>) -> Self {
        Self::start_via(name, &plane().kubeconfig("operator"), config_text, args, ready_when)
    }

    /// Like [`Operator::start_configured`], reaching the API server with
    /// `kubeconfig` (the operator's identity through a proxy, say).
    pub fn start_via(
        name: &str,
        kubeconfig: &std::path::Path,
        config_text: &str,
        args: &[&str],
        ready_when: Option<&str>,
    ) -> Self {
        let plane = plane();
        let config = plane.dir.join(format!("operator-config-{name}.yaml"));
        std::fs::write(&config, config_text).unwrap();
        let log = plane.dir.join(format!("operator-{name}.log"));
        let script = r#"
"$FOUREYES_BIN" run --config "$FOUREYES_CONFIG_FILE" --metrics-addr 127.0.0.1:0 "$@" >>"$FOUREYES_LOG" 2>&1 &
op=$!
echo "$op" >"$FOUREYES_LOG.pid"
trap 'kill -TERM $op 2>/dev/null; wait $op; exit 0' TERM INT
while kill -0 "$FOUREYES_PARENT" 2>/dev/null && kill -0 $op 2>/dev/null; do sleep 0.5; done
kill -TERM $op 2>/dev/null
wait $op
"#;
        let child = Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg("foureyes-operator")
            .arg(format!("--instance={name}"))
            .args(args)
            .env("FOUREYES_BIN", env!("CARGO_BIN_EXE_foureyes"))
            .env("FOUREYES_CONFIG_FILE", &config)
            .env("FOUREYES_LOG", &log)
            .env("FOUREYES_PARENT", std::process::id().to_string())
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,foureyes=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the operator");
        let op = Self { child, log };
        if let Some(needle) = ready_when {
            op.wait_for_log(needle, Duration::from_secs(60));
        }
        op
    }

    /// Kills the operator process at once (SIGKILL: no graceful shutdown, the
    /// leader Lease is not released).
    pub fn kill(&self) {
        self.signal("KILL");
    }

    /// Freezes the operator process (SIGSTOP): it holds its connections and
    /// its Lease, and does nothing.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Resumes a frozen operator process (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// Whether the operator process still runs.
    pub fn running(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
            .unwrap_or(false)
    }

    /// Sends a signal to the operator process itself.
    pub fn signal(&self, sig: &str) {
        let pid = self.pid();
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{sig} {pid}");
    }

    /// The operator process's id.
    pub fn pid(&self) -> u32 {
        let pid_file = self.log.with_extension("log.pid");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|p| p.trim().parse::<u32>().ok())
            {
                break pid;
            }
            assert!(Instant::now() < deadline, "no pid file {}", pid_file.display());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The operator's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the operator's log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if text.contains(needle) {
                return;
            }
            assert!(Instant::now() < deadline, "operator log never said {needle:?}:\n{text}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the operator (SIGTERM) and waits for it to exit.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        // A frozen operator cannot handle SIGTERM.
        if let Some(pid) = std::fs::read_to_string(self.log.with_extension("log.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
        {
            let _ = Command::new("kill").arg("-CONT").arg(pid.to_string()).status();
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            eprintln!("--- operator log (last lines) ---");
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
        self.terminate();
    }
}

static SHARED_OPERATOR: OnceLock<std::sync::Mutex<Option<Operator>>> = OnceLock::new();

/// The operator shared by the tests of this binary, started on first use.
pub fn shared_operator() {
    SHARED_OPERATOR.get_or_init(|| std::sync::Mutex::new(Some(Operator::start("shared"))));
}

/// Waits until `check` returns `Some`, polling every 100 ms.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asks the API server whether `user` may `verb` `resource` in `namespace`
/// (a SubjectAccessReview, as the admin).
pub async fn can(user: &str, verb: &str, resource: &str, namespace: &str) -> bool {
    use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_owned()),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.to_owned()),
                verb: Some(verb.to_owned()),
                resource: Some(resource.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(client("admin").await);
    let out = api
        .create(&PostParams::default(), &sar)
        .await
        .expect("SubjectAccessReview");
    out.status.is_some_and(|s| s.allowed)
}
