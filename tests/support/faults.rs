//! The fault harness: what goes wrong around the operator, on the real
//! control plane and on loopback only.
//!
//! - [`restart_apiserver`], [`stop_apiserver`] / [`start_apiserver`]: the
//!   same kube-apiserver (same flags, ports and etcd) stopped and started;
//! - [`restart_etcd`]: etcd stopped and started on the same data;
//! - [`compact_etcd`]: etcd compacted to its current revision, so that
//!   watches resuming from an older resourceVersion get `410 Gone` and relist;
//! - [`Proxy`]: a TCP proxy between the operator and the API server that a
//!   test can slow down (added latency), cut (drop every connection, or a
//!   share of new ones) or black-hole (accept and never answer);
//! - SIGKILL, SIGSTOP and SIGCONT of the operator ([`super::Operator`]).
//!
//! Every wait is bounded.

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::plane;

/// A process of the control plane, by its name in the plane's `pids` file.
fn pid_of(name: &str) -> u32 {
    let pids = std::fs::read_to_string(plane().dir.join("pids")).expect("the control plane's pids");
    pids.lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(n, _)| *n == name)
        .filter_map(|(_, p)| p.trim().parse::<u32>().ok())
        .rfind(|p| alive(*p))
        .unwrap_or_else(|| panic!("no running {name} in the control plane"))
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// A stopped control-plane process: how to start it again.
pub struct Stopped {
    name: String,
    argv: Vec<String>,
}

/// Stops a control-plane process (SIGTERM, then SIGKILL after 10 s) and
/// returns how to start it again (its command line, read from /proc).
fn stop(name: &str) -> Stopped {
    let pid = pid_of(name);
    let argv: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
        .expect("cmdline")
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    signal(pid, "TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        if Instant::now() > deadline {
            signal(pid, "KILL");
        }
        assert!(
            Instant::now() < deadline + Duration::from_secs(5),
            "{name} (pid {pid}) does not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Stopped {
        name: name.to_owned(),
        argv,
    }
}

/// Starts a stopped process again, detached, its output appended to its log
/// and its pid to the plane's `pids` (so that the plane stops it).
fn start(stopped: &Stopped) {
    let dir = &plane().dir;
    let log = dir.join(match stopped.name.as_str() {
        "kube-apiserver" => "apiserver.log",
        other => return start_with_log(stopped, dir.join(format!("{other}.log"))),
    });
    start_with_log(stopped, log)
}

fn start_with_log(stopped: &Stopped, log: PathBuf) {
    let dir = &plane().dir;
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"log=$1; shift; setsid "$@" </dev/null >>"$log" 2>&1 & echo $!"#)
        .arg("start")
        .arg(&log)
        .args(&stopped.argv)
        .output()
        .expect("start a control-plane process");
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(pid.parse::<u32>().is_ok(), "no pid for {}: {out:?}", stopped.name);
    let mut pids = std::fs::OpenOptions::new().append(true).open(dir.join("pids")).unwrap();
    writeln!(pids, "{} {pid}", stopped.name).unwrap();
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid}");
}

/// Waits until the API server answers `/readyz` with `ok` (at most 60 s).
pub fn wait_apiserver_ready() {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (ok, out, _) = plane().kubectl("admin", &["get", "--raw", "/readyz", "--request-timeout=5s"], None);
        if ok && out.trim() == "ok" {
            break;
        }
        assert!(Instant::now() < deadline, "the API server is not ready again");
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_policies_configured(deadline);
}

/// A restarted API server answers `/readyz` before its admission policies
/// can resolve their `paramKind` (the `Lockout` resource): until then they
/// refuse every request they match with "failed to configure policy".
/// Waits until a dry-run that the policies match gets past that.
fn wait_policies_configured(deadline: Instant) {
    let probe = super::probe_binding("probe-restarted");
    loop {
        let (ok, _, stderr) = plane().kubectl("alice", &["create", "--dry-run=server", "-f", "-"], Some(&probe));
        if ok || !stderr.contains("failed to configure policy") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the admission policies are not configured again: {stderr}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Stops kube-apiserver (etcd keeps running).
pub fn stop_apiserver() -> Stopped {
    stop("kube-apiserver")
}

/// Starts kube-apiserver again as it was, and waits until it is ready.
pub fn start_apiserver(stopped: Stopped) {
    start(&stopped);
    wait_apiserver_ready();
}

/// Stops etcd and starts it again on the same data; waits until the API
/// server is ready again.
pub fn restart_etcd() {
    let stopped = stop("etcd");
    start(&stopped);
    wait_apiserver_ready();
}

/// etcd's client address (from the API server's `--etcd-servers`).
fn etcd_addr() -> SocketAddr {
    let pid = pid_of("kube-apiserver");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let url = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .find_map(|a| a.strip_prefix("--etcd-servers=").map(str::to_owned))
        .expect("--etcd-servers");
    url.trim_start_matches("http://")
        .parse()
        .expect("etcd on a loopback address")
}

/// POSTs JSON to etcd's v3 HTTP gateway; returns the response body.
fn etcd_post(path: &str, body: &str) -> String {
    let addr = etcd_addr();
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to etcd");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("etcd's answer");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "etcd {path}: {response}");
    body.to_owned()
}

/// Compacts etcd to its current revision: every watch that resumes from an
/// older resourceVersion gets `410 Gone` and must list again. Returns the
/// revision.
pub fn compact_etcd() -> u64 {
    let range = etcd_post("/v3/kv/range", r#"{"key":"AA==","limit":1}"#);
    let v: serde_json::Value = serde_json::from_str(&range).expect("etcd range JSON");
    let revision: u64 = v["header"]["revision"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .expect("etcd revision");
    etcd_post(
        "/v3/kv/compaction",
        &format!(r#"{{"revision":"{revision}","physical":true}}"#),
    );
    revision
}

/// The API server's address (from the admin kubeconfig).
pub fn apiserver_addr() -> SocketAddr {
    let kc = std::fs::read_to_string(plane().kubeconfig("admin")).unwrap();
    kc.lines()
        .find_map(|l| l.trim().strip_prefix("server: https://"))
        .expect("server in the kubeconfig")
        .parse()
        .expect("a loopback address")
}

/// What the proxy does with traffic.
#[derive(Default)]
struct ProxyState {
    /// Added to each forwarded chunk, in milliseconds.
    latency_ms: AtomicU64,
    /// New connections are accepted, and nothing is forwarded either way.
    black_hole: AtomicBool,
    /// Bumped to drop every open connection.
    generation: AtomicU32,
    /// Drop this share of new connections at once (per mille).
    drop_per_mille: AtomicU32,
    /// Connections accepted so far (to pick which to drop, deterministically).
    accepted: AtomicU32,
}

/// A TCP proxy on loopback in front of the API server. It runs on a thread
/// of its own, so that a test blocking its own runtime does not stall it.
pub struct Proxy {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<ProxyState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy to the API server on a free loopback port.
    pub fn start() -> Self {
        let upstream = apiserver_addr();
        let state = Arc::new(ProxyState::default());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn({
            let state = state.clone();
            move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the proxy's runtime");
                rt.block_on(async move {
                    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
                    addr_tx.send(listener.local_addr().unwrap()).unwrap();
                    tokio::select! {
                        _ = accept(listener, upstream, state) => {}
                        _ = stop_rx => {}
                    }
                });
            }
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the proxy's address");
        Self {
            addr,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// A kubeconfig for `identity` that goes through this proxy.
    pub fn kubeconfig(&self, identity: &str) -> PathBuf {
        let original = std::fs::read_to_string(plane().kubeconfig(identity)).unwrap();
        let through = original.replace(
            &format!("server: https://{}", apiserver_addr()),
            &format!("server: https://{}", self.addr),
        );
        let path = plane()
            .dir
            .join(format!("proxy-{}-{identity}.kubeconfig", self.addr.port()));
        std::fs::write(&path, through).unwrap();
        path
    }

    /// Adds `latency` to every chunk forwarded, both ways.
    pub fn slow(&self, latency: Duration) {
        self.state
            .latency_ms
            .store(latency.as_millis() as u64, Ordering::SeqCst);
    }

    /// Drops every open connection (new ones go through).
    pub fn cut(&self) {
        self.state.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Drops this share (0.0 to 1.0) of new connections at once.
    pub fn drop_new(&self, share: f64) {
        self.state
            .drop_per_mille
            .store((share * 1000.0).round() as u32, Ordering::SeqCst);
    }

    /// Accepts connections and never answers, on new and open connections:
    /// what is sent meanwhile is swallowed, and never arrives later.
    pub fn black_hole(&self) {
        self.state.black_hole.store(true, Ordering::SeqCst);
    }

    /// Back to forwarding everything at once, without added latency.
    pub fn heal(&self) {
        self.state.black_hole.store(false, Ordering::SeqCst);
        self.state.latency_ms.store(0, Ordering::SeqCst);
        self.state.drop_per_mille.store(0, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections and forwards each (or drops it, see
/// [`Proxy::drop_new`]).
async fn accept(listener: TcpListener, upstream: SocketAddr, state: Arc<ProxyState>) {
    while let Ok((client, _)) = listener.accept().await {
        let n = state.accepted.fetch_add(1, Ordering::Relaxed);
        // Spread the drops evenly: connection n is dropped when the running
        // share crosses a whole connection.
        let per_mille = state.drop_per_mille.load(Ordering::Relaxed);
        if per_mille > 0 && (n + 1) * per_mille / 1000 != n * per_mille / 1000 {
            drop(client);
            continue;
        }
        tokio::spawn(forward(client, upstream, state.clone()));
    }
}

/// Forwards one connection both ways until either side closes, the proxy is
/// cut, or it fails.
async fn forward(client: TcpStream, upstream: SocketAddr, state: Arc<ProxyState>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let generation = state.generation.load(Ordering::SeqCst);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = pump(cr, sw, state.clone(), generation);
    let down = pump(sr, cw, state.clone(), generation);
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    state: Arc<ProxyState>,
    generation: u32,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let cut = || state.generation.load(Ordering::SeqCst) != generation;
        let n = tokio::select! {
            n = from.read(&mut buf) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                if cut() { return; }
                continue;
            }
        };
        // Black-holed: the bytes are swallowed (the connection stays open
        // and nothing answers); none of them arrives later.
        if state.black_hole.load(Ordering::SeqCst) {
            continue;
        }
        let latency = state.latency_ms.load(Ordering::SeqCst);
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        if cut() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
