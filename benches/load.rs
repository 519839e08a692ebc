//! The access-engine benchmark: a release-mode load against a real control
//! plane (DESIGN §5). It starts a control plane and the operator, creates N
//! bindings in N/10 workspaces: up to 1,000 (half of a smaller load) expire
//! at the same instant, `--singles` expire one at a time `--spacing-ms`
//! apart, and the rest stay active as the load. It prints:
//!
//! - revocation lag (expiry → native RBAC gone, as a watcher sees it):
//!   p50/p99/max, for the simultaneous and the single expiries;
//! - API writes per grant (from the operator's own counter);
//! - API writes after a restart with everything in sync (target: zero);
//! - the operator's peak resident memory.
//!
//! With `--requests N` it measures role requests instead: N + `--singles`
//! requests, each already approved by its requesting manager (1/2). The
//! singles are approved by a second manager one every `--spacing-ms` while
//! the N stay in flight; then the N are approved at once. It prints approval
//! → native RBAC latency p50/p99/max for both, and the API writes per request.
//! With `--notify` a CloudEvents sink posts every notification to an HTTPS
//! receiver in the benchmark (`--notify-hole` adds a sink that never
//! answers), to compare the approval latency with notifications on and off.
//!
//! With `--lockout` it measures a lockout (DESIGN §5, §7 procedure 6): one
//! user holds `--bindings` grants in bindings/10 workspaces, a partner locks
//! them out, and it prints the time from the Lockout's creation until a
//! watcher sees the last of their native RoleBindings deleted, and the API
//! writes the lockout took (all kinds, events and history included).
//!
//! With `--crash` (DESIGN §5, invariant 12) all of up to 1,000 bindings expire
//! at the same instant, the operator is SIGKILLed 300 ms after it and started
//! again at once; it prints how long after the restart the last overdue
//! native binding was gone. With `--standby` a second replica waits for the
//! Lease and the leader is frozen (SIGSTOP) a second before the expiry; it
//! prints how long after the expiry the last native binding was gone.
//!
//! With `--soak <duration>` (a Go duration: `10m`) it runs a steady churn for
//! that long in 10 workspaces of two managers each: every second a partner's
//! grant that expires after 20 s, a request approved by two managers whose
//! binding expires after 20 s, and a grant revoked 5 s after it was made
//! (finished records are kept for a minute). Each minute it prints the
//! operator's resident memory and the open watches (kube-apiserver's
//! `apiserver_longrunning_requests`, minus those open before the operator
//! started), and at the end the memory slope after a 2-minute warm-up
//! (least squares over samples taken every 10 s, in KiB/min).
//!
//! Usage: `cargo bench --bench load -- --bindings 1000`, or
//! `-- --requests 1000`, or `-- --lockout --bindings 1000`, or `-- --history 2000`. It starts the control plane
//! with the integration tests' code (`tests/support/controlplane.rs`).
//! `cargo test --benches` builds it but skips the load: only `cargo bench`
//! (which passes `--bench`) runs it.

use foureyes::wire::{CONTROL_NAMESPACE_LABEL, EXPIRES_ANNOTATION, GRANT_SELECTOR};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use clap::Parser;
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::RoleBinding as NativeBinding;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Client, Config};
use serde_json::json;

use foureyes::api::{BindingPhase, RoleBinding, Workspace};
use foureyes::rbac::parse_expiry;

#[path = "../tests/support/controlplane.rs"]
mod controlplane;
#[path = "../tests/support/receiver.rs"]
mod receiver;

use controlplane::{ControlPlane, repo};

#[derive(Parser, Debug)]
struct Args {
    /// Number of bindings (spread over bindings/10 workspaces).
    #[arg(long, default_value_t = 1000)]
    bindings: usize,
    /// Concurrent API requests while loading (and concurrent appenders with `--history`).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Instead of the access-engine load: append this many entries to one
    /// history chain, one at a time and then from `--concurrency` tasks, and
    /// print appends per second and bytes per 1,000 entries.
    #[arg(long)]
    history: Option<usize>,
    /// Measure role requests instead: this many requests in flight.
    #[arg(long, default_value_t = 0)]
    requests: usize,
    /// Single expiries (with `--bindings`) or single approvals (with
    /// `--requests`) measured one by one, this far apart.
    #[arg(long, default_value_t = 100)]
    spacing_ms: u64,
    /// How many single expiries or approvals to measure.
    #[arg(long, default_value_t = 200)]
    singles: usize,
    /// Measure a lockout instead: one user holds `--bindings` grants in
    /// bindings/10 workspaces and is locked out.
    #[arg(long)]
    lockout: bool,
    /// SIGKILL the operator 300 ms after the simultaneous expiries and start
    /// it again at once; prints when the last overdue native binding went.
    #[arg(long)]
    crash: bool,
    /// Run a standby replica and freeze the leader (SIGSTOP) a second before
    /// the simultaneous expiries; prints when the last native binding went.
    #[arg(long)]
    standby: bool,
    /// Run a steady churn of grants, approvals, expiries and revocations
    /// for this long (a Go duration: `10m`), sampling the operator's memory
    /// and the open watches, and print the memory slope after warm-up.
    #[arg(long)]
    soak: Option<String>,
    /// With notifications on: a CloudEvents sink posting to an HTTPS
    /// receiver in this process (signed, with its own CA), and with
    /// `--notify-hole` also a sink that never answers.
    #[arg(long)]
    notify: bool,
    /// With `--notify`: add a sink that accepts connections and never answers.
    #[arg(long)]
    notify_hole: bool,
    /// Passed by `cargo bench`; without it (`cargo test --benches`) nothing runs.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Native binding name → (its expiry, when a watcher saw it deleted).
type Deletions = Arc<tokio::sync::Mutex<HashMap<String, (DateTime<Utc>, DateTime<Utc>)>>>;

/// The benchmark's control plane (started like the integration tests'),
/// stopped when dropped.
struct Plane(ControlPlane);

impl std::ops::Deref for Plane {
    type Target = ControlPlane;

    fn deref(&self) -> &ControlPlane {
        &self.0
    }
}

impl Plane {
    fn kubectl_ok(&self, id: &str, args: &[&str], stdin: Option<&str>) -> anyhow::Result<()> {
        let (ok, _, stderr) = self.kubectl(id, args, stdin);
        if !ok {
            bail!("kubectl {args:?} failed: {stderr}");
        }
        Ok(())
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// The operator binary the benchmark runs: this build's, or another one
/// named by `FOUREYES_BENCH_BIN` (with its manifests in `FOUREYES_BENCH_CRDS`),
/// to measure an earlier version under the same load.
fn operator_binary() -> std::path::PathBuf {
    std::env::var_os("FOUREYES_BENCH_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_foureyes").into())
}

/// Starts a control plane in a fresh directory, installs the CRDs and the
/// admission policies, and the operator's RBAC for the benchmark's
/// configuration (written to `config.yaml` in the plane's directory).
fn start_plane(prefix: &str) -> anyhow::Result<Plane> {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    let plane = Plane(ControlPlane::start(dir).map_err(anyhow::Error::msg)?);
    let crds = std::env::var("FOUREYES_BENCH_CRDS").unwrap_or_else(|_| repo().join("crds").display().to_string());
    plane.kubectl_ok("admin", &["apply", "--server-side", "-f", &crds], None)?;
    plane.kubectl_ok("admin", &["wait", "--for=condition=Established", "crd", "--all"], None)?;
    let config = plane.dir.join("config.yaml");
    std::fs::write(&config, "partners: {users: [partner]}\nsweepInterval: 1m\n")?;
    let rbac = Command::new(operator_binary())
        .args(["rbac", "--config"])
        .arg(&config)
        .output()?;
    plane.kubectl_ok(
        "admin",
        &["apply", "--server-side", "-f", "-"],
        Some(&String::from_utf8_lossy(&rbac.stdout)),
    )?;
    Ok(plane)
}

/// Turns notifications on in the benchmark's configuration: a signed
/// CloudEvents sink posting to an HTTPS receiver in this process (and, with
/// `hole`, a sink that never answers), its Secret, and the operator's RBAC
/// to read it.
async fn notifications(plane: &Plane, config: &Path, hole: bool) -> anyhow::Result<receiver::Receiver> {
    let receiver = receiver::Receiver::start().await;
    let mut sinks = vec![serde_json::json!({
        "name": "bench", "url": receiver.url, "caBundle": receiver.ca_pem,
        "secretRef": { "name": "foureyes-notifications", "key": "hmac" },
    })];
    if hole {
        let (url, _) = receiver::black_hole().await;
        sinks.push(serde_json::json!({ "name": "hole", "format": "slack", "url": url, "timeout": "10s" }));
    }
    let mut text: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(config)?)?;
    text["notifications"] = serde_yaml::to_value(serde_json::json!({ "sinks": sinks }))?;
    std::fs::write(config, serde_yaml::to_string(&text)?)?;
    let _ = plane.kubectl("admin", &["create", "namespace", "foureyes-system"], None);
    plane.kubectl_ok(
        "admin",
        &["apply", "-f", "-"],
        Some(
            "apiVersion: v1\nkind: Secret\nmetadata: { name: foureyes-notifications, namespace: foureyes-system }\nstringData: { hmac: bench-key }\n",
        ),
    )?;
    let rbac = Command::new(operator_binary())
        .args(["rbac", "--config"])
        .arg(config)
        .output()?;
    plane.kubectl_ok(
        "admin",
        &["apply", "--server-side", "-f", "-"],
        Some(&String::from_utf8_lossy(&rbac.stdout)),
    )?;
    println!(
        "notifications on: a CloudEvents sink{}",
        if hole { " and a sink that never answers" } else { "" }
    );
    Ok(receiver)
}

/// What the receiver got, and the operator's notification counters.
async fn report_notifications(op: &Operator, receiver: &receiver::Receiver) -> anyhow::Result<()> {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = receiver.received();
    let pending = got
        .iter()
        .filter(|r| r.json()["type"] == "dev.foureyes.request.pending")
        .count();
    println!("notifications received: {} ({pending} request.pending)", got.len());
    let (_, text) = http_get(&op.metrics, "/metrics").await?;
    for line in text.lines().filter(|l| l.starts_with("foureyes_notifications_")) {
        println!("  {line}");
    }
    Ok(())
}

async fn client(plane: &Plane, id: &str) -> anyhow::Result<Client> {
    let kc = Kubeconfig::read_from(plane.kubeconfig(id))?;
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    config.read_timeout = Some(Duration::from_secs(120));
    Ok(Client::try_from(config)?)
}

struct Operator {
    child: Child,
    pid: u32,
    metrics: String,
}

impl Operator {
    fn start(plane: &Plane, config: &Path, port: u16, log: &Path) -> anyhow::Result<Self> {
        let child = Command::new(operator_binary())
            .args(["run", "--config"])
            .arg(config)
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .env("KUBECONFIG", plane.kubeconfig("operator"))
            .env(
                "RUST_LOG",
                std::env::var("FOUREYES_BENCH_OPERATOR_LOG").unwrap_or_else(|_| {
                    // The approval path's timings (see `approval_breakdown`).
                    "warn,foureyes::run=info,foureyes::reconcile::request=debug,foureyes::reconcile::binding=debug"
                        .into()
                }),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .context("start the operator")?;
        let pid = child.id();
        Ok(Self {
            child,
            pid,
            metrics: format!("http://127.0.0.1:{port}"),
        })
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        for _ in 0..600 {
            if http_get(&self.metrics, "/readyz")
                .await
                .is_ok_and(|(code, _)| code == 200)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("operator not ready after 60 s")
    }

    async fn writes(&self) -> anyhow::Result<f64> {
        Ok(self.writes_by_kind().await?.values().sum())
    }

    /// The operator's API writes, by `kind,verb` label set.
    async fn writes_by_kind(&self) -> anyhow::Result<std::collections::BTreeMap<String, f64>> {
        let (_, body) = http_get(&self.metrics, "/metrics").await?;
        Ok(body
            .lines()
            .filter_map(|l| l.strip_prefix("foureyes_api_writes_total{"))
            .filter_map(|l| {
                let (labels, value) = l.split_once("} ")?;
                Some((labels.to_owned(), value.trim().parse::<f64>().ok()?))
            })
            .collect())
    }

    /// The operator's peak resident memory so far.
    fn peak_rss_mib(&self) -> f64 {
        self.status_mib("VmHWM:")
    }

    /// The operator's resident memory now.
    fn rss_mib(&self) -> f64 {
        self.status_mib("VmRSS:")
    }

    fn status_mib(&self, field: &str) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            })
            .map(|kib| kib / 1024.0)
            .unwrap_or(f64::NAN)
    }

    fn stop(mut self) {
        let _ = Command::new("kill").arg("-CONT").arg(self.pid.to_string()).status();
        let _ = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status();
        let _ = self.child.wait();
    }

    /// SIGKILL: no shutdown, the Lease is not released.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGSTOP.
    fn freeze(&self) {
        let _ = Command::new("kill").arg("-STOP").arg(self.pid.to_string()).status();
    }
}

async fn http_get(base: &str, path: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).await?;
    let code = buf.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, body))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18080)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Prints a figure that DESIGN §5 sets a target for, and whether it is met.
fn target(what: &str, figure: String, goal: &str, met: bool) {
    println!(
        "TARGET {what}: {figure} (target {goal}): {}",
        if met { "PASS" } else { "FAIL" }
    );
}

/// The writes between two readings of the counters, by `kind,verb`.
fn spent(
    before: &std::collections::BTreeMap<String, f64>,
    after: &std::collections::BTreeMap<String, f64>,
) -> std::collections::BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

/// Prints the writes of a phase by kind, each per `per` objects.
fn print_writes(what: &str, writes: &std::collections::BTreeMap<String, f64>, per: usize) {
    let total: f64 = writes.values().sum();
    println!(
        "  API writes {what}: {total} ({:.2} each of {per})",
        total / per.max(1) as f64
    );
    for (labels, v) in writes {
        println!("    {labels}: {v} ({:.2} each)", v / per.max(1) as f64);
    }
}

fn percentile_of(mut values: Vec<f64>, p: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    percentile(&values, p)
}

fn summary(name: &str, mut lags: Vec<f64>) {
    lags.sort_by(|a, b| a.total_cmp(b));
    println!(
        "  {name:<24} n={:<6} p50={:>7.1} ms  p99={:>7.1} ms  max={:>7.1} ms",
        lags.len(),
        percentile(&lags, 50.0),
        percentile(&lags, 99.0),
        lags.last().copied().unwrap_or(f64::NAN)
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.bench {
        println!("the load benchmark runs with cargo bench --bench load");
        return Ok(());
    }
    if let Some(n) = args.history {
        return history_bench(n.max(1), args.concurrency.max(1)).await;
    }
    let n = args.bindings.max(10);
    let workspaces = (n / 10).max(1);
    if args.soak.is_some() {
        // It says what it does once it has parsed its length.
    } else if args.requests > 0 {
        println!(
            "foureyes role-request benchmark: {} requests approved at once",
            args.requests
        );
    } else {
        println!("foureyes access-engine benchmark: {n} bindings in {workspaces} workspaces");
    }

    // Control plane.
    let plane = start_plane("foureyes-bench")?;
    let config = plane.dir.join("config.yaml");
    plane.kubectl_ok(
        "admin",
        &[
            "apply",
            "--server-side",
            "-f",
            &repo().join("tests/controlplane/rbac.yaml").display().to_string(),
        ],
        None,
    )?;
    // The benchmark's partner acts at volume; it skips client-side throttling only.
    let admin = client(&plane, "admin").await?;
    let partner = client(&plane, "partner").await?;

    if let Some(soak) = &args.soak {
        let length: foureyes::api::GoDuration = soak.parse().map_err(anyhow::Error::msg)?;
        return soak_bench(&plane, &admin, &partner, length.get()).await;
    }
    let receiver = if args.notify {
        Some(notifications(&plane, &config, args.notify_hole).await?)
    } else {
        None
    };

    let port = free_port();
    let op = Operator::start(&plane, &config, port, &plane.dir.join("operator.log"))?;
    op.wait_ready().await?;
    if args.requests > 0 {
        let result = requests_bench(&plane, &admin, &partner, &op, &args).await;
        if let Some(receiver) = receiver {
            report_notifications(&op, &receiver).await?;
        }
        op.stop();
        return result;
    }
    if args.lockout {
        let result = lockout_bench(&admin, &partner, &op, n, workspaces, args.concurrency).await;
        op.stop();
        return result;
    }

    // Watch native bindings: record when each disappears.
    let deletions: Deletions = Default::default();
    {
        let deletions = deletions.clone();
        let api: Api<NativeBinding> = Api::all(admin.clone());
        tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default().labels(GRANT_SELECTOR)).boxed();
            while let Ok(Some(ev)) = stream.try_next().await {
                if let watcher::Event::Delete(nb) = ev {
                    let seen = Utc::now();
                    let expiry = nb
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(EXPIRES_ANNOTATION))
                        .and_then(|s| parse_expiry(s));
                    if let (Some(e), Some(name)) = (expiry, nb.metadata.name) {
                        deletions.lock().await.insert(name, (e, seen));
                    }
                }
            }
        });
    }

    // Workspaces.
    let t0 = Instant::now();
    create_workspaces(&admin, &partner, workspaces, args.concurrency).await?;
    println!("created {workspaces} workspaces in {:.1} s", t0.elapsed().as_secs_f64());

    // Bindings: up to 1,000 expire together at `together` (DESIGN §5); once
    // their record is written, `singles` expire one by one, `spacing_ms`
    // apart; the rest stay active past the end of the run (they are the load).
    // The workspaces' own set-up (namespace, Roles, auditors' binding,
    // first history chunk) is not the grants': counted from when it is done.
    let writes_before = settle(&op).await?;
    let by_kind_before = op.writes_by_kind().await?;
    let load_window = Duration::from_millis(35 * n as u64).max(Duration::from_secs(60));
    let together = chrono::SubsecRound::trunc_subsecs(Utc::now() + chrono::Duration::from_std(load_window)?, 3);
    let faults = args.crash || args.standby;
    let simultaneous = if faults { n.min(1000) } else { (n / 2).min(1000) };
    let singles = if faults { 0 } else { args.singles.min(n - simultaneous) };
    let first_single = together + chrono::Duration::seconds(30);
    let spacing = chrono::Duration::milliseconds(args.spacing_ms.max(1) as i64);
    let last_single = first_single + spacing * singles as i32;
    let t1 = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let partner = partner.clone();
            async move {
                let ws = format!("ws-bench-{}", i % workspaces);
                let expires = if i < simultaneous {
                    together
                } else if i < simultaneous + singles {
                    first_single + spacing * (i - simultaneous) as i32
                } else {
                    together + chrono::Duration::hours(1)
                };
                let b: RoleBinding = serde_json::from_value(json!({
                    "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
                    "metadata": { "name": format!("grant-{i}"), "namespace": ws },
                    "spec": {
                        "subject": { "kind": "User", "name": format!("user-{i}@example.com") },
                        "workspaceRole": "member",
                        "expiresAt": expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        "justification": "benchmark", "grantedBy": "partner",
                    },
                }))
                .expect("binding");
                // Right after the CRDs are installed, the API server needs a
                // moment to resolve the Lockout kind that foureyes-lockouts
                // reads: until then it refuses (fail closed). Retried.
                let api = Api::<RoleBinding>::namespaced(partner, &ws);
                let mut tries = 0;
                loop {
                    match api.create(&PostParams::default(), &b).await {
                        Err(kube::Error::Api(e)) if e.message.contains("failed to configure policy") && tries < 900 => {
                            tries += 1;
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        other => break other.map(|_| ()),
                    }
                }
            }
        })
        .buffer_unordered(args.concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    println!("created {n} bindings in {:.1} s", t1.elapsed().as_secs_f64());

    // Wait until every grant is in place.
    let all: Api<RoleBinding> = Api::all(admin.clone());
    let mut active_after = f64::NAN;
    loop {
        let list = all.list(&ListParams::default()).await?;
        let active = list
            .items
            .iter()
            .filter(|b| b.status.as_ref().and_then(|s| s.phase) == Some(BindingPhase::Active))
            .count();
        if active >= n {
            active_after = t1.elapsed().as_secs_f64();
            break;
        }
        if Utc::now() > together {
            println!("warning: only {active}/{n} active at the simultaneous expiry; raise the load window");
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Let the last status and count updates land before measuring.
    let mut last = op.writes().await?;
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let now = op.writes().await?;
        if now == last {
            break;
        }
        last = now;
    }
    let writes_grants = op.writes().await? - writes_before;
    print_writes(
        "for the grants (all kinds, events and history included)",
        &spent(&by_kind_before, &op.writes_by_kind().await?),
        n,
    );
    println!("all grants active after {active_after:.1} s");
    println!(
        "API writes per grant: {:.2} ({} writes for {n} grants)",
        writes_grants / n as f64,
        writes_grants
    );
    if n == 1000 {
        target(
            "1,000 grants created at once, all active within",
            format!("{active_after:.1} s"),
            "5 s",
            active_after < 5.0,
        );
    }
    target(
        "API writes per grant",
        format!("{:.2}", writes_grants / n as f64),
        "<= 4",
        writes_grants / n as f64 <= 4.0,
    );
    let rss_loaded = op.peak_rss_mib();

    if faults {
        let result = fault_bench(&plane, &admin, &config, op, together, simultaneous, &deletions, &args).await;
        return result;
    }

    // Restart with everything in sync: no writes expected.
    op.stop();
    let op = Operator::start(&plane, &config, port, &plane.dir.join("operator-restart.log"))?;
    op.wait_ready().await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let restart_writes = op.writes().await?.abs();
    let rss_restart = op.rss_mib();
    println!("API writes after a restart in steady state (5 s after ready): {restart_writes}");
    if Utc::now() > together - chrono::Duration::seconds(2) {
        println!("warning: the restart ended after the simultaneous expiry; raise the load window");
    }
    for (labels, v) in op.writes_by_kind().await? {
        println!("  writes {labels}: {v}");
    }

    // Expiries.
    while Utc::now() < last_single + chrono::Duration::seconds(3) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let expected = simultaneous + singles;
    let deadline = Instant::now() + Duration::from_secs(60);
    while deletions.lock().await.len() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let seen = deletions.lock().await.clone();
    let (mut together_lags, mut single_lags) = (vec![], vec![]);
    for (expiry, at) in seen.values() {
        let lag = (*at - *expiry).num_microseconds().unwrap_or(0) as f64 / 1000.0;
        if *expiry == together {
            together_lags.push(lag)
        } else {
            single_lags.push(lag)
        }
    }
    println!(
        "revocation lag (expiry -> native RoleBinding deleted, as seen by a watcher), with {} other grants active:",
        n - expected
    );
    summary(&format!("{simultaneous} simultaneous expiries"), together_lags.clone());
    summary(
        &format!("{singles} single expiries, {} ms apart", args.spacing_ms),
        single_lags.clone(),
    );
    let all_gone = together_lags.iter().cloned().fold(0.0, f64::max);
    println!(
        "  all {} simultaneous expiries revoked within {:.0} ms",
        together_lags.len(),
        all_gone
    );
    let single_p99 = percentile_of(single_lags.clone(), 99.0);
    target(
        "revocation lag of single expiries, p99",
        format!("{single_p99:.1} ms"),
        "< 100 ms",
        single_p99 < 100.0,
    );
    target(
        &format!("{} simultaneous expiries, all revoked within", together_lags.len()),
        format!("{all_gone:.0} ms"),
        "2 s for 1,000",
        all_gone < 2000.0 && seen.len() >= expected,
    );
    println!(
        "revoked {}/{expected} (missing: {})",
        seen.len(),
        expected - seen.len().min(expected)
    );
    println!("operator resident memory with {n} bindings in {workspaces} workspaces:");
    println!("  peak while the {n} grants were created and activated: {rss_loaded:.1} MiB");
    println!("  after a restart, in sync (5 s after ready): {rss_restart:.1} MiB");
    println!(
        "  peak after the restart, through the expiries: {:.1} MiB",
        op.peak_rss_mib()
    );
    if n >= 10_000 {
        target(
            "resident memory with 10,000 bindings, in sync after a restart",
            format!("{rss_restart:.1} MiB"),
            "< 64 MiB",
            rss_restart < 64.0,
        );
    }
    target(
        "API writes after a restart in sync",
        format!("{restart_writes}"),
        "0",
        restart_writes == 0.0,
    );
    op.stop();
    Ok(())
}

/// Creates the workspaces `bench-0` ... `bench-<count - 1>` as the partner,
/// their control namespaces ahead (labelled for them) as the admin.
async fn create_workspaces(admin: &Client, partner: &Client, count: usize, concurrency: usize) -> anyhow::Result<()> {
    let ws_api: Api<Workspace> = Api::all(partner.clone());
    futures::stream::iter(0..count)
        .map(|i| {
            let ws_api = ws_api.clone();
            let admin = admin.clone();
            async move {
                let name = format!("bench-{i}");
                let ns = Namespace {
                    metadata: ObjectMeta {
                        name: Some(format!("ws-{name}")),
                        labels: Some([(CONTROL_NAMESPACE_LABEL.to_owned(), name.clone())].into()),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let _ = Api::<Namespace>::all(admin).create(&PostParams::default(), &ns).await;
                let ws: Workspace = serde_json::from_value(json!({
                    "apiVersion": "foureyes.dev/v1alpha1", "kind": "Workspace", "metadata": { "name": name },
                    "spec": { "maxDuration": "24h" },
                }))
                .expect("workspace");
                ws_api.create(&PostParams::default(), &ws).await.map(|_| ())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// kube-apiserver's open watches (`apiserver_longrunning_requests` with
/// `verb="WATCH"`, summed over resources).
async fn open_watches(admin: &Client) -> anyhow::Result<f64> {
    let req = http::Request::get("/metrics").body(Vec::new())?;
    let text = admin.request_text(req).await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("apiserver_longrunning_requests{") && l.contains("verb=\"WATCH\""))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum())
}

/// The least-squares slope of `(x, y)` points, `None` with fewer than two
/// distinct `x`.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (points.len() >= 2 && sxx > 0.0).then(|| sxy / sxx)
}

/// Counts of what the soak's churn did.
#[derive(Default)]
struct Churn {
    grants: std::sync::atomic::AtomicU64,
    approvals: std::sync::atomic::AtomicU64,
    revocations: std::sync::atomic::AtomicU64,
    failures: std::sync::atomic::AtomicU64,
}

/// The soak (issue: memory must not grow after warm-up): a steady churn of
/// grants, approvals, expiries and revocations for `length`; resident
/// memory and open watches each minute, then the memory slope.
async fn soak_bench(plane: &Plane, admin: &Client, partner: &Client, length: Duration) -> anyhow::Result<()> {
    use foureyes::api::{RequestPhase, RoleRequest};
    use kube::api::{DeleteParams, Patch, PatchParams};
    use std::sync::atomic::Ordering::Relaxed;

    const WORKSPACES: usize = 10;
    const SAMPLE: Duration = Duration::from_secs(10);
    const WARM_UP_MIN: f64 = 2.0;
    println!(
        "foureyes soak: {:.0} s of churn in {WORKSPACES} workspaces",
        length.as_secs_f64()
    );
    // Finished records go after a minute, so that the objects stay steady.
    let config = plane.dir.join("soak.yaml");
    std::fs::write(
        &config,
        "partners: {users: [partner]}\nsweepInterval: 1m\nretention: 1m\n",
    )?;
    let baseline_watches = open_watches(admin).await?;
    let op = Operator::start(plane, &config, free_port(), &plane.dir.join("operator.log"))?;
    op.wait_ready().await?;

    let alice = client(plane, "alice").await?;
    let bob = client(plane, "bob").await?;
    two_manager_workspaces(partner, "soak", WORKSPACES, "2160h").await?;
    let all_bindings: Api<RoleBinding> = Api::all(admin.clone());
    let all_requests: Api<RoleRequest> = Api::all(admin.clone());
    loop {
        let active = all_bindings
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|b| b.status.as_ref().and_then(|s| s.phase) == Some(BindingPhase::Active))
            .count();
        if active >= 2 * WORKSPACES {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let churn = Arc::new(Churn::default());
    let start = Instant::now();
    let deadline = start + length;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_sample = start;
    let mut samples: Vec<(f64, f64)> = vec![];
    let mut i = 0usize;
    println!("  min    RSS MiB  watches (operator)  grants  approvals  revocations  bindings A/E/R/P  requests");
    while Instant::now() < deadline {
        tick.tick().await;
        let ns = format!("ws-soak-{}", i % WORKSPACES);
        // A partner's grant that expires by itself.
        {
            let (partner, ns, churn) = (partner.clone(), ns.clone(), churn.clone());
            tokio::spawn(async move {
                let b: RoleBinding = serde_json::from_value(json!({
                    "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
                    "metadata": { "name": format!("expire-{i}"), "namespace": ns },
                    "spec": {
                        "subject": { "kind": "User", "name": format!("oncall-{}@example.com", i % 50) },
                        "workspaceRole": "member", "duration": "20s",
                        "justification": "soak", "grantedBy": "partner",
                    },
                }))
                .expect("binding");
                let counter = match Api::<RoleBinding>::namespaced(partner, &ns)
                    .create(&PostParams::default(), &b)
                    .await
                {
                    Ok(_) => &churn.grants,
                    Err(_) => &churn.failures,
                };
                counter.fetch_add(1, Relaxed);
            });
        }
        // A request by alice (her approval: 1/2), approved by bob.
        {
            let (alice, bob, ns, churn) = (alice.clone(), bob.clone(), ns.clone(), churn.clone());
            tokio::spawn(async move {
                let name = format!("req-{i}");
                let r: RoleRequest = serde_json::from_value(json!({
                    "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
                    "metadata": { "name": name, "namespace": ns },
                    "spec": {
                        "subject": { "kind": "User", "name": format!("dev-{}@example.com", i % 50) },
                        "workspaceRole": "member", "duration": "20s",
                        "justification": "soak", "requester": "alice",
                    },
                }))
                .expect("request");
                let bob_api = Api::<RoleRequest>::namespaced(bob, &ns);
                let approved = async {
                    Api::<RoleRequest>::namespaced(alice, &ns)
                        .create(&PostParams::default(), &r)
                        .await?;
                    for _ in 0..20 {
                        let mut r = bob_api.get(&name).await?;
                        r.spec
                            .approvals
                            .push(serde_json::from_value(json!({ "user": "bob", "decision": "Approve" }))?);
                        match bob_api.replace(&name, &PostParams::default(), &r).await {
                            Ok(_) => return Ok(()),
                            Err(kube::Error::Api(e)) if e.code == 409 => continue,
                            Err(e) => return Err(e.into()),
                        }
                    }
                    anyhow::Ok(())
                };
                let counter = match approved.await {
                    Ok(()) => &churn.approvals,
                    Err(_) => &churn.failures,
                };
                counter.fetch_add(1, Relaxed);
            });
        }
        // A longer grant, revoked after 5 s.
        {
            let (partner, ns, churn) = (partner.clone(), ns.clone(), churn.clone());
            tokio::spawn(async move {
                let name = format!("revoke-{i}");
                let b: RoleBinding = serde_json::from_value(json!({
                    "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
                    "metadata": { "name": name, "namespace": ns },
                    "spec": {
                        "subject": { "kind": "User", "name": format!("vendor-{}@example.com", i % 50) },
                        "workspaceRole": "member", "duration": "1h",
                        "justification": "soak", "grantedBy": "partner",
                    },
                }))
                .expect("binding");
                let api = Api::<RoleBinding>::namespaced(partner, &ns);
                let revoked = async {
                    api.create(&PostParams::default(), &b).await?;
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    let patch = json!({ "spec": { "revocation": { "by": "partner", "reason": "soak" } } });
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await?;
                    anyhow::Ok(())
                };
                let counter = match revoked.await {
                    Ok(()) => &churn.revocations,
                    Err(_) => &churn.failures,
                };
                counter.fetch_add(1, Relaxed);
            });
        }
        // Granted requests are done with: delete them (their bindings
        // expire and go with the retention).
        if i % 30 == 29 {
            let list = all_requests.list(&ListParams::default()).await?;
            for r in list.items {
                let done = matches!(
                    r.status.as_ref().and_then(|s| s.phase),
                    Some(RequestPhase::Granted | RequestPhase::Denied | RequestPhase::Expired)
                );
                if done && let (Some(name), Some(ns)) = (r.metadata.name, r.metadata.namespace) {
                    let _ = Api::<RoleRequest>::namespaced(alice.clone(), &ns)
                        .delete(&name, &DeleteParams::default())
                        .await;
                }
            }
        }
        i += 1;

        if Instant::now() >= next_sample {
            let minutes = start.elapsed().as_secs_f64() / 60.0;
            let rss = op.rss_mib();
            samples.push((minutes, rss * 1024.0));
            next_sample += SAMPLE;
            // Each minute, a line.
            if samples.len() % 6 == 1 {
                let watches = open_watches(admin).await?;
                let bindings = all_bindings.list(&ListParams::default()).await?.items;
                let count = |p| {
                    bindings
                        .iter()
                        .filter(|b| b.status.as_ref().and_then(|s| s.phase) == Some(p))
                        .count()
                };
                let requests = all_requests.list(&ListParams::default()).await?.items.len();
                println!(
                    "  {minutes:>4.1} {rss:>9.1}  {watches:>7.0} ({:>4.0})     {:>6}  {:>9}  {:>11}  {}/{}/{}/{}  {requests:>8}",
                    watches - baseline_watches,
                    churn.grants.load(Relaxed),
                    churn.approvals.load(Relaxed),
                    churn.revocations.load(Relaxed),
                    count(BindingPhase::Active),
                    count(BindingPhase::Expired),
                    count(BindingPhase::Revoked),
                    count(BindingPhase::Pending),
                );
            }
        }
    }
    // Let the last grants expire, then check that nothing outlived its expiry.
    tokio::time::sleep(Duration::from_secs(25)).await;
    let now = Utc::now();
    let natives: Api<NativeBinding> = Api::all(admin.clone());
    let overdue = natives
        .list(&ListParams::default().labels(GRANT_SELECTOR))
        .await?
        .items
        .iter()
        .filter(|nb| {
            nb.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(EXPIRES_ANNOTATION))
                .and_then(|s| parse_expiry(s))
                .is_some_and(|e| e + chrono::Duration::seconds(2) < now)
        })
        .count();
    let watches = open_watches(admin).await?;
    println!(
        "churn: {} grants, {} requests approved by two managers, {} revocations, {} failed calls; \
         {overdue} native bindings past their expiry at the end; {:.0} open watches ({:.0} above the baseline)",
        churn.grants.load(Relaxed),
        churn.approvals.load(Relaxed),
        churn.revocations.load(Relaxed),
        churn.failures.load(Relaxed),
        watches,
        watches - baseline_watches,
    );
    let after: Vec<(f64, f64)> = samples.iter().copied().filter(|(m, _)| *m >= WARM_UP_MIN).collect();
    let first = samples.first().map(|s| s.1 / 1024.0).unwrap_or(f64::NAN);
    let last = samples.last().map(|s| s.1 / 1024.0).unwrap_or(f64::NAN);
    match slope(&after) {
        Some(kib_per_min) => {
            let span = after.last().map(|p| p.0).unwrap_or(0.0) - after.first().map(|p| p.0).unwrap_or(0.0);
            let rise_kib = kib_per_min * span;
            // Growth: the fitted rise over the window is above 1 MiB (the
            // allocator's page-level noise is below that).
            let grew = rise_kib > 1024.0;
            println!(
                "memory: {first:.1} MiB at start, {last:.1} MiB at the end, peak {:.1} MiB; slope after {WARM_UP_MIN:.0} min of warm-up: {kib_per_min:+.1} KiB/min over {span:.1} min ({} samples): {}",
                op.peak_rss_mib(),
                after.len(),
                if grew { "GREW" } else { "did not grow" }
            );
        }
        None => println!("memory: too short to fit a slope after {WARM_UP_MIN:.0} min of warm-up"),
    }
    op.stop();
    Ok(())
}

/// Creates the workspaces `<prefix>-0` ... as the partner, each needing two
/// approvals, with alice and bob as managers for `duration` whose votes count
/// at once (no cooling-off: they are made just now).
async fn two_manager_workspaces(partner: &Client, prefix: &str, count: usize, duration: &str) -> anyhow::Result<()> {
    for i in 0..count {
        let name = format!("{prefix}-{i}");
        let ws: Workspace = serde_json::from_value(json!({
            "apiVersion": "foureyes.dev/v1alpha1", "kind": "Workspace", "metadata": { "name": name },
            "spec": { "approvalPolicy": { "workspaceRoleApprovals": 2, "projectRoleApprovals": 2, "managerCoolingOff": "0s" } },
        }))?;
        Api::<Workspace>::all(partner.clone())
            .create(&PostParams::default(), &ws)
            .await?;
        for m in ["alice", "bob"] {
            let b: RoleBinding = serde_json::from_value(json!({
                "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
                "metadata": { "name": format!("manager-{m}"), "namespace": format!("ws-{name}") },
                "spec": {
                    "subject": { "kind": "User", "name": m }, "workspaceRole": "manager", "duration": duration,
                    "justification": "benchmark", "grantedBy": "partner",
                },
            }))?;
            let api = Api::<RoleBinding>::namespaced(partner.clone(), &format!("ws-{name}"));
            // The namespace appears once the operator reconciled the
            // workspace; and right after the CRDs are installed, the API
            // server needs a moment to resolve the Lockout kind that
            // foureyes-lockouts reads (it refuses until then). Retried.
            let mut tries = 0;
            loop {
                match api.create(&PostParams::default(), &b).await {
                    Ok(_) => break,
                    Err(kube::Error::Api(e))
                        if e.code == 404 || (e.message.contains("failed to configure policy") && tries < 900) =>
                    {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(200)).await
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(())
}

/// Waits until the operator's write counter stops moving for 3 seconds.
async fn settle(op: &Operator) -> anyhow::Result<f64> {
    let mut last = op.writes().await?;
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let now = op.writes().await?;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
}

/// A lockout of one user holding `n` grants in `workspaces` workspaces
/// (DESIGN §5: all their native RBAC gone within 2 s).
async fn lockout_bench(
    admin: &Client,
    partner: &Client,
    op: &Operator,
    n: usize,
    workspaces: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    const USER: &str = "compromised@example.com";
    println!("foureyes lockout benchmark: one user holding {n} grants in {workspaces} workspaces");
    let t0 = Instant::now();
    create_workspaces(admin, partner, workspaces, concurrency).await?;
    println!("created {workspaces} workspaces in {:.1} s", t0.elapsed().as_secs_f64());
    // Others' grants alongside, one per workspace, which the lockout leaves alone.
    let t1 = Instant::now();
    futures::stream::iter(0..n + workspaces)
        .map(|i| {
            let partner = partner.clone();
            async move {
                let ws = format!("ws-bench-{}", i % workspaces);
                let user = if i < n {
                    USER.to_owned()
                } else {
                    format!("other-{i}@example.com")
                };
                let b: RoleBinding = serde_json::from_value(json!({
                    "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
                    "metadata": { "name": format!("grant-{i}"), "namespace": ws },
                    "spec": {
                        "subject": { "kind": "User", "name": user },
                        "workspaceRole": "member", "duration": "2h",
                        "justification": "benchmark", "grantedBy": "partner",
                    },
                }))
                .expect("binding");
                // Right after the CRDs are installed, the API server needs a
                // moment to resolve the Lockout kind that foureyes-lockouts
                // reads: until then it refuses (fail closed). Retried.
                let api = Api::<RoleBinding>::namespaced(partner, &ws);
                let mut tries = 0;
                loop {
                    match api.create(&PostParams::default(), &b).await {
                        Err(kube::Error::Api(e)) if e.message.contains("failed to configure policy") && tries < 900 => {
                            tries += 1;
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        other => break other.map(|_| ()),
                    }
                }
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let all: Api<RoleBinding> = Api::all(admin.clone());
    loop {
        let active = all
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|b| b.status.as_ref().and_then(|s| s.phase) == Some(BindingPhase::Active))
            .count();
        if active >= n + workspaces {
            break;
        }
        if t1.elapsed() > Duration::from_secs(600) {
            bail!("only {active}/{} grants active after 10 minutes", n + workspaces);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "all {} grants active after {:.1} s",
        n + workspaces,
        t1.elapsed().as_secs_f64()
    );
    let before = settle(op).await?;

    // A watcher records when each of the user's native bindings goes.
    let gone: Arc<tokio::sync::Mutex<Vec<Instant>>> = Default::default();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    {
        let gone = gone.clone();
        let api: Api<NativeBinding> = Api::all(admin.clone());
        tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default().labels(GRANT_SELECTOR)).boxed();
            let mut ready = Some(ready_tx);
            while let Ok(Some(ev)) = stream.try_next().await {
                match ev {
                    watcher::Event::InitDone => {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(());
                        }
                    }
                    watcher::Event::Delete(nb) => {
                        let ours = nb.subjects.iter().flatten().any(|s| s.name == USER);
                        if ours {
                            gone.lock().await.push(Instant::now());
                        }
                    }
                    _ => {}
                }
            }
        });
    }
    let _ = ready_rx.await;

    let locked = Instant::now();
    let lockout: foureyes::api::Lockout = serde_json::from_value(json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "Lockout",
        "metadata": { "name": "bench-lockout" },
        "spec": { "subject": { "kind": "User", "name": USER }, "reason": "benchmark", "createdBy": "partner" },
    }))?;
    Api::<foureyes::api::Lockout>::all(partner.clone())
        .create(&PostParams::default(), &lockout)
        .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while gone.lock().await.len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut times = gone.lock().await.clone();
    times.sort();
    let last = times.last().map(|t| t.duration_since(locked));
    if !times.is_empty() {
        let at = |q: f64| {
            let i = ((times.len() - 1) as f64 * q).round() as usize;
            times[i].duration_since(locked).as_secs_f64() * 1000.0
        };
        println!(
            "  native RoleBindings gone after: first {:.0} ms, 10% {:.0} ms, 50% {:.0} ms, 90% {:.0} ms",
            at(0.0),
            at(0.1),
            at(0.5),
            at(0.9)
        );
    }
    // The records (statuses, history, events, the lockout's status) follow.
    let lockouts: Api<foureyes::api::Lockout> = Api::all(admin.clone());
    let deadline = Instant::now() + Duration::from_secs(120);
    let enforced = loop {
        let l = lockouts.get("bench-lockout").await?;
        let s = l.status.unwrap_or_default();
        if s.revoked as usize >= n && s.remaining == 0 {
            break Some(locked.elapsed());
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let after = settle(op).await?;
    let others_active = all
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|b| {
            !b.spec.subject.name.starts_with("compromised")
                && b.status.as_ref().and_then(|s| s.phase) == Some(BindingPhase::Active)
        })
        .count();
    println!("lockout of one user holding {n} grants in {workspaces} workspaces:");
    match last {
        Some(d) if times.len() >= n => println!(
            "  all {n} native RoleBindings gone {:.0} ms after the Lockout was created (target: under 2 s)",
            d.as_secs_f64() * 1000.0
        ),
        _ => println!("  only {}/{n} native RoleBindings gone after 60 s", times.len()),
    }
    if let Some(d) = enforced {
        println!(
            "  every revocation recorded (the Lockout reports {n} revoked, none remaining) after {:.1} s",
            d.as_secs_f64()
        );
    }
    println!(
        "  API writes: {} in all ({:.2} per revoked grant, events and history included)",
        after - before,
        (after - before) / n as f64
    );
    for (labels, v) in op.writes_by_kind().await? {
        println!("  writes {labels}: {v} (since the operator started)");
    }
    println!("  other users' grants still active: {others_active}/{workspaces}");
    Ok(())
}

/// `--crash` and `--standby` (DESIGN §5): the leader is SIGKILLed 300 ms
/// after `n` simultaneous expiries and started again at once, or frozen a
/// second before them with a standby running; prints when the last native
/// binding went, after the restart or after the expiry.
#[allow(clippy::too_many_arguments)]
async fn fault_bench(
    plane: &Plane,
    admin: &Client,
    config: &Path,
    op: Operator,
    together: DateTime<Utc>,
    n: usize,
    deletions: &Deletions,
    args: &Args,
) -> anyhow::Result<()> {
    let until = |t: DateTime<Utc>| async move {
        if let Ok(d) = (t - Utc::now()).to_std() {
            tokio::time::sleep(d).await;
        }
    };
    let natives: Api<NativeBinding> = Api::all(admin.clone());
    let count = || async {
        natives
            .list_metadata(&ListParams::default().labels(GRANT_SELECTOR))
            .await
            .map(|l| l.items.len())
            .unwrap_or(usize::MAX)
    };
    let before = count().await;
    let (reference, others) = if args.crash {
        until(together + chrono::Duration::milliseconds(300)).await;
        op.kill();
        let killed_at = Utc::now();
        let left = count().await;
        let restarted = Utc::now();
        let again = Operator::start(plane, config, free_port(), &plane.dir.join("operator-crash.log"))?;
        println!(
            "SIGKILL {} ms after {n} simultaneous expiries: {} of them still in place; restarted at once",
            (killed_at - together).num_milliseconds(),
            left.saturating_sub(before - n)
        );
        (restarted, vec![again])
    } else {
        let standby = Operator::start(plane, config, free_port(), &plane.dir.join("operator-standby.log"))?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        until(together - chrono::Duration::seconds(1)).await;
        op.freeze();
        println!("leader frozen (SIGSTOP) 1 s before {n} simultaneous expiries; a standby runs");
        (together, vec![op, standby])
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while deletions.lock().await.values().filter(|(e, _)| *e == together).count() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen: Vec<DateTime<Utc>> = deletions
        .lock()
        .await
        .values()
        .filter(|(e, _)| *e == together)
        .map(|(_, at)| *at)
        .collect();
    let last = seen.iter().max().copied();
    match last {
        Some(last) => println!(
            "  the last of {}/{n} native bindings removed {:.2} s after the {}",
            seen.len(),
            (last - reference).num_milliseconds() as f64 / 1000.0,
            if args.crash { "restart" } else { "expiry" }
        ),
        None => println!("  no native binding removed"),
    }
    for op in others {
        op.stop();
    }
    Ok(())
}

/// Approval → native RBAC latency with `n` requests in flight (DESIGN §5).
async fn requests_bench(
    plane: &Plane,
    admin: &Client,
    partner: &Client,
    op: &Operator,
    args: &Args,
) -> anyhow::Result<()> {
    let (n, singles, concurrency) = (args.requests, args.singles, args.concurrency);
    use foureyes::api::{RequestPhase, RoleRequest};
    use foureyes::wire::BINDING_LABEL;

    let alice = client(plane, "alice").await?;
    let bob = client(plane, "bob").await?;
    let workspaces = (n / 100).max(1);
    two_manager_workspaces(partner, "rq", workspaces, "2h").await?;
    let all_bindings: Api<RoleBinding> = Api::all(admin.clone());
    loop {
        let active = all_bindings
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|b| b.status.as_ref().and_then(|s| s.phase) == Some(BindingPhase::Active))
            .count();
        if active >= 2 * workspaces {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("{workspaces} workspaces with two managers each");

    // n requests by alice (counted as her approval): 1/2 each, and the
    // singles to approve one at a time while the n are in flight.
    let t0 = Instant::now();
    futures::stream::iter(0..n + singles)
        .map(|i| {
            let alice = alice.clone();
            async move {
                let ns = format!("ws-rq-{}", i % workspaces);
                let r: RoleRequest = serde_json::from_value(json!({
                    "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
                    "metadata": { "name": format!("req-{i}"), "namespace": ns },
                    "spec": {
                        "subject": { "kind": "User", "name": format!("oncall-{i}@example.com") },
                        "workspaceRole": "member", "duration": "1h",
                        "justification": "benchmark", "requester": "alice",
                    },
                }))
                .expect("request");
                Api::<RoleRequest>::namespaced(alice, &ns)
                    .create(&PostParams::default(), &r)
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let requests: Api<RoleRequest> = Api::all(admin.clone());
    loop {
        let pending = requests
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|r| r.status.as_ref().and_then(|s| s.approvals.as_deref()) == Some("1/2"))
            .count();
        if pending >= n + singles {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    println!("{n} requests pending at 1/2 after {:.1} s", t0.elapsed().as_secs_f64());
    let writes_before = settle(op).await?;
    let by_kind_before = op.writes_by_kind().await?;

    // Watch native bindings appear.
    let seen: Arc<tokio::sync::Mutex<HashMap<String, Instant>>> = Default::default();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    {
        let seen = seen.clone();
        let api: Api<NativeBinding> = Api::all(admin.clone());
        tokio::spawn(async move {
            let mut ready_tx = Some(ready_tx);
            let mut stream = watcher(api, watcher::Config::default().labels(GRANT_SELECTOR)).boxed();
            while let Ok(Some(ev)) = stream.try_next().await {
                match ev {
                    watcher::Event::InitDone => {
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    watcher::Event::Apply(nb) | watcher::Event::InitApply(nb) => {
                        let at = Instant::now();
                        let key = format!(
                            "{}/{}",
                            nb.metadata.namespace.clone().unwrap_or_default(),
                            nb.metadata
                                .labels
                                .as_ref()
                                .and_then(|l| l.get(BINDING_LABEL))
                                .cloned()
                                .unwrap_or_default()
                        );
                        seen.lock().await.entry(key).or_insert(at);
                    }
                    _ => {}
                }
            }
        });
    }
    ready_rx.await?;

    // bob approves the singles one at a time, `spacing_ms` apart, while the
    // n others are in flight.
    // When each approval's write was answered (wall clock), and how long it took.
    let answered: Arc<std::sync::Mutex<Answered>> = Default::default();
    let approve = |i: usize| {
        let bob = bob.clone();
        let answered = answered.clone();
        async move {
            let ns = format!("ws-rq-{}", i % workspaces);
            let name = format!("req-{i}");
            let patch = json!({ "spec": { "approvals": [{ "user": "bob", "decision": "Approve" }] } });
            let started = Instant::now();
            Api::<RoleRequest>::namespaced(bob, &ns)
                .patch(
                    &name,
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(patch),
                )
                .await?;
            answered.lock().unwrap_or_else(|e| e.into_inner()).insert(
                format!("{ns}/{name}"),
                (Utc::now(), started.elapsed().as_secs_f64() * 1000.0),
            );
            Ok::<_, kube::Error>((format!("{ns}/{name}"), started))
        }
    };
    let latencies = |sent: &HashMap<String, Instant>, seen: &HashMap<String, Instant>| -> Vec<f64> {
        sent.iter()
            .filter_map(|(key, at)| Some(seen.get(key)?.saturating_duration_since(*at).as_secs_f64() * 1000.0))
            .collect()
    };
    let api_before = apiserver_durations(admin).await?;
    let mut tick = tokio::time::interval(Duration::from_millis(args.spacing_ms.max(1)));
    let mut paced = tokio::task::JoinSet::new();
    for i in n..n + singles {
        tick.tick().await;
        paced.spawn(approve(i));
    }
    let mut sent = HashMap::new();
    while let Some(r) = paced.join_next().await {
        let (key, at) = r??;
        sent.insert(key, at);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let in_place = seen.lock().await;
        if sent.keys().all(|k| in_place.contains_key(k)) {
            break;
        }
        drop(in_place);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let single = latencies(&sent, &seen.lock().await.clone());
    println!(
        "one approval every {} ms with {n} requests in flight ({} of {singles} in place):",
        args.spacing_ms,
        single.len()
    );
    summary("approval latency", single.clone());
    let api_after = apiserver_durations(admin).await?;
    let seen_now = seen.lock().await.clone();
    let answered_now = answered.lock().unwrap_or_else(|e| e.into_inner()).clone();
    approval_breakdown(&plane.dir.join("operator.log"), &answered_now, &sent, &seen_now);
    println!("  the API server's own request durations during the single approvals (all clients):");
    for (call, (sum, count)) in &api_after {
        let (sum0, count0) = api_before.get(call).copied().unwrap_or((0.0, 0.0));
        let n = count - count0;
        if n >= 1.0 && !call.starts_with("WATCH") {
            println!("    {call:<58} n={n:<6} mean={:>6.1} ms", (sum - sum0) / n * 1000.0);
        }
    }
    settle(op).await?;
    let by_kind_singles = op.writes_by_kind().await?;
    let singles_writes = spent(&by_kind_before, &by_kind_singles);
    print_writes("for the single approvals", &singles_writes, singles);
    let single_p99 = percentile_of(single, 99.0);
    target(
        &format!("single approval -> native RBAC, p99 with {n} in flight"),
        format!("{single_p99:.1} ms"),
        "< 25 ms",
        single_p99 < 25.0,
    );

    // Then bob approves all n at once.
    let t1 = Instant::now();
    let sent: HashMap<String, Instant> = futures::stream::iter(0..n)
        .map(approve)
        .buffer_unordered(concurrency.max(64))
        .try_collect()
        .await?;
    println!("{n} approvals sent in {:.1} s", t1.elapsed().as_secs_f64());
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.lock().await.len() < n + singles + 2 * workspaces && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_in_place = t1.elapsed().as_secs_f64();
    println!("all in place {all_in_place:.1} s after the first approval");
    let burst = latencies(&sent, &seen.lock().await.clone());
    println!(
        "{n} approvals at once (as seen by a watcher), {} of {n} in place:",
        burst.len()
    );
    let burst_in_place = burst.len();
    summary("approval latency", burst);
    target(
        &format!("{n} approvals at once, all in place within"),
        format!("{all_in_place:.1} s"),
        "8 s for 1,000",
        all_in_place < 8.0 && burst_in_place == n,
    );
    settle(op).await?;
    let burst_writes = spent(&by_kind_singles, &op.writes_by_kind().await?);
    print_writes("for the approvals at once", &burst_writes, n);
    let granted = requests
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|r| r.status.as_ref().and_then(|s| s.phase) == Some(RequestPhase::Granted))
        .count();
    println!("{granted}/{} requests Granted", n + singles);
    let per_request = (op.writes().await? - writes_before) / (n + singles) as f64;
    println!("API writes per approved request (all kinds, events and history included): {per_request:.2}");
    let per_single: f64 = singles_writes.values().sum::<f64>() / singles.max(1) as f64;
    let per_burst: f64 = burst_writes.values().sum::<f64>() / n.max(1) as f64;
    target(
        "API writes per approved request, single approvals",
        format!("{per_single:.2}"),
        "<= 5",
        per_single <= 5.0,
    );
    target(
        "API writes per approved request, approvals at once",
        format!("{per_burst:.2}"),
        "<= 5",
        per_burst <= 5.0,
    );
    target(
        "API writes per approved request, all",
        format!("{per_request:.2}"),
        "<= 5",
        per_request <= 5.0,
    );
    println!("operator peak resident memory: {:.1} MiB", op.peak_rss_mib());
    Ok(())
}

/// The API server's `apiserver_request_duration_seconds` (sum, count), by
/// `VERB group/resource[/subresource]`.
async fn apiserver_durations(admin: &Client) -> anyhow::Result<std::collections::BTreeMap<String, (f64, f64)>> {
    let text = admin.request_text(http::Request::get("/metrics").body(vec![])?).await?;
    let mut out: std::collections::BTreeMap<String, (f64, f64)> = Default::default();
    for line in text.lines() {
        let (is_sum, rest) = match (
            line.strip_prefix("apiserver_request_duration_seconds_sum{"),
            line.strip_prefix("apiserver_request_duration_seconds_count{"),
        ) {
            (Some(rest), _) => (true, rest),
            (_, Some(rest)) => (false, rest),
            _ => continue,
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_owned())
                .unwrap_or_default()
        };
        let sub = label("subresource");
        let key = format!(
            "{} {}/{}{}",
            label("verb"),
            label("group"),
            label("resource"),
            if sub.is_empty() {
                String::new()
            } else {
                format!("/{sub}")
            }
        );
        let e = out.entry(key).or_default();
        if is_sum {
            e.0 += value;
        } else {
            e.1 += value;
        }
    }
    Ok(out)
}

/// When each approval's write was answered (wall clock), and how long it
/// took (ms), by `namespace/name`.
type Answered = HashMap<String, (DateTime<Utc>, f64)>;

/// Where the time of the single approvals went: from the operator's log
/// (its `approval applied` and `native RBAC in place` lines, at debug level)
/// and the benchmark's own clocks. Prints p50/p99 of each step.
fn approval_breakdown(
    log: &Path,
    answered: &Answered,
    sent: &HashMap<String, Instant>,
    seen: &HashMap<String, Instant>,
) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let field = |line: &str, name: &str| -> Option<String> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .map(|v| v.trim_matches('"').to_owned())
    };
    let us = |line: &str, name: &str| {
        field(line, name)
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v / 1000.0)
    };
    let mut steps: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    for line in text.lines() {
        if line.contains("approval applied") {
            let Some(key) = field(line, "request") else { continue };
            let Some((answer_at, write_ms)) = answered.get(&key) else {
                continue;
            };
            if !sent.contains_key(&key) {
                continue;
            }
            steps
                .entry("1 vote's write (client, sent -> answered)")
                .or_default()
                .push(*write_ms);
            let (Some(waited), Some(total)) = (us(line, "waited_us"), us(line, "total_us")) else {
                continue;
            };
            // The log line's time is the end of the pass: the watch brought
            // the vote `total + waited` before it.
            let logged = line
                .split_whitespace()
                .next()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            if let Some(logged) = logged {
                let arrived = logged - chrono::Duration::microseconds(((total + waited) * 1000.0) as i64);
                steps
                    .entry("2 watch delivery of the vote (answered -> operator's watch)")
                    .or_default()
                    .push((arrived - *answer_at).num_microseconds().unwrap_or(0) as f64 / 1000.0);
            }
            steps
                .entry("3 queued for the request's reconcile")
                .or_default()
                .push(waited);
            for (name, label) in [
                ("decide_us", "4 gather and decide"),
                ("create_us", "5 create the RoleBinding (API call)"),
                ("activate_us", "6 activate it: native RBAC, record, status"),
                ("record_us", "  (alongside 5-6) the request's history record"),
                ("status_us", "7 the request's status (API call)"),
                ("total_us", "  the request's pass in all"),
            ] {
                if let Some(v) = us(line, name) {
                    steps.entry(label).or_default().push(v);
                }
            }
        } else if line.contains("native RBAC in place") {
            let Some(key) = field(line, "binding") else { continue };
            if sent.contains_key(&key)
                && let Some(v) = us(line, "natives_us")
            {
                steps
                    .entry("  (in 6) the native RoleBinding's apply (API call)")
                    .or_default()
                    .push(v);
            }
        }
    }
    let total: Vec<f64> = sent
        .iter()
        .filter_map(|(k, at)| Some(seen.get(k)?.saturating_duration_since(*at).as_secs_f64() * 1000.0))
        .collect();
    steps.insert("  vote sent -> native RoleBinding seen by a watcher", total);
    println!("  where the time of the single approvals goes (p50 / p99, ms):");
    for (step, values) in steps {
        println!(
            "    {step:<62} {:>7.1} / {:>7.1}  (n={})",
            percentile_of(values.clone(), 50.0),
            percentile_of(values.clone(), 99.0),
            values.len()
        );
    }
}

/// The history benchmark: N appends to one chain as the operator's identity,
/// with the admission policies in place (DESIGN §4).
async fn history_bench(n: usize, concurrency: usize) -> anyhow::Result<()> {
    use foureyes::audit::history::{self, Chain, EntryObject, History, NewEntry};
    println!("foureyes history benchmark: {n} appends per chain");
    let plane = start_plane("foureyes-bench-history")?;
    let ns = "ws-bench-history";
    plane.kubectl_ok("admin", &["create", "namespace", ns], None)?;
    let operator = client(&plane, "operator").await?;
    let appender = Arc::new(History::new(operator.clone()));
    let entry = |task: usize, i: usize| {
        NewEntry::new(
            EntryObject {
                kind: "RoleBinding".into(),
                name: format!("grant-{task}-{i}"),
                uid: format!("00000000-0000-4000-8000-{task:04}{i:08}"),
            },
            history::action::GRANTED,
            "alice@example.com",
        )
        .subject("user dave@example.com")
        .role("checkout/admin")
        .details("until 2026-01-01T12:00:00Z (GrantedByManager) in payments-checkout; justification: INC-4711")
    };

    // One at a time: each append waits for the previous one (a lone reconciler).
    let chain = Chain::project("sequential");
    let t = Instant::now();
    for i in 0..n {
        appender.append(ns, "bench-history", &chain, entry(0, i)).await?;
    }
    report("one at a time", n, t.elapsed(), &operator, ns, &chain).await?;

    // From many tasks at once: appends waiting for the chain are batched.
    let chain = Chain::project("concurrent");
    let t = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let appender = appender.clone();
            let chain = chain.clone();
            let e = entry(1 + i % concurrency, i);
            async move { appender.append(ns, "bench-history", &chain, e).await.map(|_| ()) }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    report(
        &format!("{concurrency} concurrent tasks"),
        n,
        t.elapsed(),
        &operator,
        ns,
        &chain,
    )
    .await?;
    Ok(())
}

async fn report(
    what: &str,
    n: usize,
    took: Duration,
    client: &Client,
    ns: &str,
    chain: &foureyes::audit::history::Chain,
) -> anyhow::Result<()> {
    use foureyes::audit::history;
    let t = Instant::now();
    let chunks = history::read_chunks(client, ns, chain).await?;
    let verified = history::verify(chain, &chunks).map_err(|b| anyhow::anyhow!("{b}"))?;
    let verify_took = t.elapsed();
    if verified.entries.len() != n {
        bail!("{} entries in the chain, {n} appended", verified.entries.len());
    }
    let bytes: usize = chunks.iter().map(|c| history::data_size(&c.data)).sum();
    println!(
        "  {what:<22} {n} appends in {:.2} s: {:.0} appends/s; {} chunks; {:.0} bytes per 1,000 entries; read and verified in {} ms",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        chunks.len(),
        bytes as f64 * 1000.0 / n as f64,
        verify_took.as_millis()
    );
    Ok(())
}
