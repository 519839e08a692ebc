//! Faults around the operator (issue: what foureyes survives, measured):
//! the operator killed, frozen or cut off from the API server, the API
//! server down, and the operator Deployment broken (the sweep). Each
//! scenario ends with the same invariant check: no native RBAC past its
//! expiry beyond the bound, no orphan native RBAC, every grant and expiry in
//! the history exactly once, every chain verifies, an operator ready.
//!
//! The scenarios run one at a time (each runs its own operators, which act
//! on every workspace) with Leases of their own. They print their figures;
//! they assert only generous bounds (the benchmark measures:
//! `cargo bench --bench load -- --crash` and `-- --standby`).
//!
//! `FOUREYES_FAULTS_KILLS` sets how many random SIGKILLs the storm scenario
//! makes (default 5; the issue's figure is 20), `FOUREYES_FAULTS_SEED` its seed.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use foureyes::api::{BindingPhase, RoleBinding};
use foureyes::audit::history::{Chain, Entry, read_chunks, verify};
use foureyes::wire::{EXPIRES_ANNOTATION, GRANT_SELECTOR};
use futures::StreamExt as _;
use k8s_openapi::api::rbac::v1::RoleBinding as NativeBinding;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use support::faults::{self, Proxy};
use support::world::{setup_without_operator, wait_phase};
use support::{OPERATOR_CONFIG, Operator, TestEnv, client, client_as, eventually, plane};

/// One scenario at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The namespace of the scenarios' Leases (the operator may use any Lease
/// there; see [`lease_args`]).
const LEASES: &str = "faults-leases";

/// The sweep's user name in the tests' install (`foureyes rbac`).
const SWEEP_USER: &str = "system:serviceaccount:foureyes-system:foureyes-sweep";

/// `foureyes run` arguments for a Lease of this scenario's own: `name` in
/// [`LEASES`], lasting `duration` seconds, renewed `grace` before.
fn lease_args(name: &str, duration: u32, grace: u32) -> Vec<String> {
    static READY: std::sync::Once = std::sync::Once::new();
    READY.call_once(|| {
        let rbac = format!(
            r#"
apiVersion: v1
kind: Namespace
metadata: {{ name: {LEASES} }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{ name: faults-leases, namespace: {LEASES} }}
rules:
  - apiGroups: [coordination.k8s.io]
    resources: [leases]
    verbs: [get, create, update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{ name: faults-leases, namespace: {LEASES} }}
roleRef: {{ apiGroup: rbac.authorization.k8s.io, kind: Role, name: faults-leases }}
subjects:
  - {{ apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:serviceaccount:foureyes-system:foureyes" }}
"#
        );
        plane().kubectl_ok(
            "admin",
            &["apply", "--server-side", "--field-manager=foureyes-tests", "-f", "-"],
            Some(&rbac),
        );
    });
    vec![
        format!("--lease-namespace={LEASES}"),
        format!("--lease-name={name}"),
        format!("--lease-duration={duration}s"),
        format!("--lease-grace={grace}s"),
    ]
}

fn start(name: &str, lease: &[String], ready_when: Option<&str>) -> Operator {
    let args: Vec<&str> = lease.iter().map(String::as_str).collect();
    Operator::start_with(name, &args, ready_when)
}

const READY: Option<&str> = Some("caches synced; ready");
const STANDBY: Option<&str> = Some("standby: waiting for the leader lease");

/// Creates `n` project grants `<prefix>-<i>` for `duration` (as the
/// partner, so that any quorum allows them), 16 at a time; returns their
/// names.
async fn grants(env: &TestEnv, prefix: &str, n: usize, duration: &str) -> Vec<String> {
    let api = env.api::<RoleBinding>("partner").await;
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    futures::stream::iter(names.clone())
        .map(|name| {
            let api = api.clone();
            let duration = duration.to_owned();
            async move {
                let b: RoleBinding = serde_json::from_value(json!({
                    "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
                    "metadata": { "name": name },
                    "spec": {
                        "subject": { "kind": "User", "name": format!("user-{name}") },
                        "project": "app", "projectRole": "user",
                        "duration": duration, "justification": "INC-7", "grantedBy": "partner",
                    },
                }))
                .unwrap();
                api.create(&PostParams::default(), &b).await.expect("create grant");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    names
}

/// Waits until every named binding has `phase`; returns them by name.
async fn all_in_phase(
    env: &TestEnv,
    names: &[String],
    phase: BindingPhase,
    timeout: Duration,
) -> HashMap<String, RoleBinding> {
    let api = env.api::<RoleBinding>("admin").await;
    eventually(&format!("{} bindings {phase:?}", names.len()), timeout, || async {
        let list = api.list(&ListParams::default()).await.ok()?;
        let found: HashMap<String, RoleBinding> = list
            .items
            .into_iter()
            .filter(|b| names.contains(&b.metadata.name.clone().unwrap_or_default()))
            .filter(|b| b.status.as_ref().and_then(|s| s.phase) == Some(phase))
            .map(|b| (b.metadata.name.clone().unwrap_or_default(), b))
            .collect();
        (found.len() == names.len()).then_some(found)
    })
    .await
}

/// Waits for `wait`, starting the operator again whenever it exits, as its
/// Deployment would: a leader that cannot confirm its Lease in time (a short
/// Lease on a loaded machine) exits by design, and with nobody to start it
/// again nothing would act.
async fn restarted_while<T>(op: &mut Operator, name: &str, lease: &[String], wait: impl Future<Output = T>) -> T {
    tokio::pin!(wait);
    let mut restarts = 0;
    loop {
        tokio::select! {
            done = &mut wait => return done,
            _ = tokio::time::sleep(Duration::from_millis(500)) => if !op.running() {
                restarts += 1;
                let last = op.log_text().lines().rev().find(|l| l.contains("lost the leader lease")).map(str::to_owned);
                eprintln!("{name}: the operator exited ({}); started again", last.as_deref().unwrap_or("no reason logged"));
                *op = start(&format!("{name}-restart-{restarts}"), lease, None);
            },
        }
    }
}

/// The latest expiry of the bindings.
fn last_expiry(bindings: &HashMap<String, RoleBinding>) -> chrono::DateTime<Utc> {
    bindings
        .values()
        .filter_map(|b| b.status.as_ref()?.expires_at)
        .max()
        .expect("expiries")
}

/// The earliest expiry of the bindings.
fn first_expiry(bindings: &HashMap<String, RoleBinding>) -> chrono::DateTime<Utc> {
    bindings
        .values()
        .filter_map(|b| b.status.as_ref()?.expires_at)
        .min()
        .expect("expiries")
}

async fn sleep_until(t: chrono::DateTime<Utc>) {
    if let Ok(d) = (t - Utc::now()).to_std() {
        tokio::time::sleep(d).await;
    }
}

/// Every native binding foureyes made in `namespaces`.
async fn natives_in(namespaces: &[&str]) -> Vec<NativeBinding> {
    let mut out = vec![];
    for ns in namespaces {
        let api: Api<NativeBinding> = Api::namespaced(client("admin").await, ns);
        out.extend(
            api.list(&ListParams::default().labels(GRANT_SELECTOR))
                .await
                .expect("list native bindings")
                .items,
        );
    }
    out
}

/// The native bindings in `namespaces` past their expiry by more than `bound`.
async fn overdue_in(namespaces: &[&str], bound: Duration) -> Vec<String> {
    let now = Utc::now();
    natives_in(namespaces)
        .await
        .into_iter()
        .filter(|n| {
            let expiry = n
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(EXPIRES_ANNOTATION))
                .and_then(|s| foureyes::rbac::parse_expiry(s));
            expiry.is_none_or(|e| e + chrono::Duration::from_std(bound).unwrap() <= now)
        })
        .map(|n| n.metadata.name.unwrap_or_default())
        .collect()
}

/// Polls (every 20 ms, at most `timeout`) until no native binding in
/// `namespaces` is past its expiry; returns when that was.
async fn until_no_overdue(namespaces: &[&str], timeout: Duration) -> Instant {
    let deadline = Instant::now() + timeout;
    loop {
        let left = overdue_in(namespaces, Duration::ZERO).await;
        if left.is_empty() {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{} native bindings still past their expiry: {left:?}",
            left.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A chain's entries, verified.
async fn verified(ns: &str, chain: &Chain) -> Vec<Entry> {
    let chunks = read_chunks(&client("admin").await, ns, chain).await.unwrap();
    match verify(chain, &chunks) {
        Ok(v) => v.entries,
        Err(b) => panic!("chain {} of {ns} does not verify: {b}", chain.as_str()),
    }
}

/// The invariant check every scenario ends with: in `env`'s namespaces, no
/// native RBAC past its expiry, none without a live owner in force; both
/// chains verify; each of `names` granted once and, if `expired`, expired
/// once, in the history; an operator is ready. Returns the expiry entries.
async fn check_invariants(env: &TestEnv, tenant: &str, names: &[String], expired: bool, op: &Operator) -> Vec<Entry> {
    let (ended, running): (Vec<String>, Vec<String>) = if expired {
        (names.to_vec(), vec![])
    } else {
        (vec![], names.to_vec())
    };
    check_mixed(env, tenant, &ended, &running, op).await
}

/// [`check_invariants`] for bindings of which `ended` expired and `running`
/// are still in force.
async fn check_mixed(env: &TestEnv, tenant: &str, ended: &[String], running: &[String], op: &Operator) -> Vec<Entry> {
    let names: Vec<String> = ended.iter().chain(running).cloned().collect();
    let names = &names[..];
    let namespaces = [env.ns.as_str(), tenant];
    let late = overdue_in(&namespaces, Duration::ZERO).await;
    assert!(late.is_empty(), "native RBAC past its expiry: {late:?}");
    // No orphan: every native binding belongs to a binding in force, by uid.
    let bindings = env
        .api::<RoleBinding>("admin")
        .await
        .list(&ListParams::default())
        .await
        .unwrap();
    let live: HashMap<String, Option<BindingPhase>> = bindings
        .items
        .iter()
        .map(|b| (b.metadata.uid.clone().unwrap(), b.status.as_ref().and_then(|s| s.phase)))
        .collect();
    for n in natives_in(&namespaces).await {
        let uid = n
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("foureyes.dev/binding-uid"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            live.get(&uid).copied().flatten(),
            Some(BindingPhase::Active),
            "native binding {} has no owner in force",
            n.metadata.name.unwrap_or_default()
        );
    }
    let uids: HashMap<String, String> = bindings
        .items
        .iter()
        .filter(|b| names.contains(&b.metadata.name.clone().unwrap_or_default()))
        .map(|b| (b.metadata.uid.clone().unwrap(), b.metadata.name.clone().unwrap()))
        .collect();
    assert_eq!(uids.len(), names.len(), "every binding still there");
    // Each transition once: a crash and retry never writes an entry twice.
    // A short grant may expire before it was ever in force (under faults):
    // then it has an expiry and no grant.
    let count = |entries: &[Entry], uid: &String, action: &str| {
        entries
            .iter()
            .filter(|e| &e.object.uid == uid && e.action == action)
            .count()
    };
    let entries = eventually("every transition in the history", Duration::from_secs(60), || async {
        let entries = verified(&env.ns, &Chain::project("app")).await;
        let mut keys = std::collections::HashSet::new();
        for e in &entries {
            assert!(keys.insert(e.key.clone()), "entry {} twice: {e:?}", e.key);
        }
        let mut complete = true;
        for (uid, name) in &uids {
            let (granted, expired) = (count(&entries, uid, "Granted"), count(&entries, uid, "Expired"));
            assert!(
                granted <= 1 && expired <= 1,
                "{name}: granted {granted}, expired {expired} times"
            );
            complete &= if ended.contains(name) {
                expired == 1
            } else {
                granted == 1 && expired == 0
            };
        }
        complete.then_some(entries)
    })
    .await;
    verified(&env.ns, &Chain::workspace()).await;
    eventually("an operator ready", Duration::from_secs(60), || async {
        op.log_text().contains("caches synced; ready").then_some(())
    })
    .await;
    entries
        .into_iter()
        .filter(|e| uids.contains_key(&e.object.uid) && e.action == "Expired")
        .collect()
}

/// The number of expiries (default `default`), from `FOUREYES_FAULTS_BURST`.
fn burst(default: usize) -> usize {
    std::env::var("FOUREYES_FAULTS_BURST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Invariants 1 and 12: the leader is SIGKILLed just before a burst of
/// expiries and started again just after it; the replica removes every
/// overdue native binding at start-up, before it could take the dead
/// leader's Lease (15 s), and, once it leads, records each expiry once.
#[tokio::test]
async fn sigkill_during_a_burst_of_expiries() {
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new("crash").await;
    let lease = lease_args("crash", 15, 5);
    let first = start("crash-1", &lease, READY);
    let tenant = setup_without_operator(&env, 1, 1).await;
    let names = grants(&env, "burst", burst(60), "25s").await;
    let active = all_in_phase(&env, &names, BindingPhase::Active, Duration::from_secs(60)).await;
    // Killed just before the burst (a healthy leader revokes a burst within
    // a few hundred milliseconds, so a kill after it would find little
    // left), and started again 300 ms after its last expiry: everything is
    // overdue at the restart, and the dead leader's Lease still runs.
    let (first_at, last_at) = (first_expiry(&active), last_expiry(&active));
    sleep_until(first_at - chrono::Duration::milliseconds(200)).await;
    first.kill();
    sleep_until(last_at + chrono::Duration::milliseconds(300)).await;
    let namespaces = [env.ns.as_str(), tenant.as_str()];
    let left = overdue_in(&namespaces, Duration::ZERO).await.len();
    let restarted = Instant::now();
    let restarted_at = Utc::now();
    let second = start("crash-2", &lease, None);
    sleep_until(last_at).await;
    let gone = until_no_overdue(&namespaces, Duration::from_secs(30)).await;
    let gone_at = Utc::now() - chrono::Duration::from_std(gone.elapsed()).unwrap();
    let took = gone - restarted;
    let after_last = (gone_at - last_at.max(restarted_at)).to_std().unwrap_or_default();
    eprintln!(
        "SIGKILL just before {} expiries spread over {:.1}s, restarted 300 ms after the last: {left} overdue at the restart; \
         the last removed {:.2}s after the restart, {:.2}s after the later of the restart and the last expiry",
        names.len(),
        (last_at - first_at).num_milliseconds() as f64 / 1000.0,
        took.as_secs_f64(),
        after_last.as_secs_f64()
    );
    assert!(
        !second.log_text().contains("acquired the leader lease"),
        "removed before the restarted replica could lead (the dead leader's Lease lasts 15 s):\n{}",
        second.log_text()
    );
    assert!(after_last < Duration::from_secs(10), "took {after_last:?}");
    // Once it leads, the bookkeeping: each expiry once, chains intact.
    all_in_phase(&env, &names, BindingPhase::Expired, Duration::from_secs(60)).await;
    check_invariants(&env, &tenant, &names, true, &second).await;
}

/// Invariant 12: with the leader frozen (SIGSTOP) across a burst of
/// expiries, the standby removes the expired access on time (long before
/// it can take the frozen leader's Lease), and records nothing until it leads.
#[tokio::test]
async fn a_standby_revokes_while_the_leader_is_frozen() {
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new("frozen").await;
    let lease = lease_args("frozen", 15, 5);
    let leader = start("frozen-1", &lease, READY);
    let standby = start("frozen-2", &lease, STANDBY);
    let tenant = setup_without_operator(&env, 1, 1).await;
    let names = grants(&env, "cold", burst(60), "25s").await;
    let active = all_in_phase(&env, &names, BindingPhase::Active, Duration::from_secs(60)).await;
    let first = first_expiry(&active);
    sleep_until(first - chrono::Duration::seconds(1)).await;
    leader.freeze();
    let last = last_expiry(&active);
    sleep_until(last).await;
    let namespaces = [env.ns.as_str(), tenant.as_str()];
    let gone = until_no_overdue(&namespaces, Duration::from_secs(30)).await;
    let after = chrono::Duration::from_std(gone.elapsed()).unwrap();
    let lag = (Utc::now() - after) - last;
    eprintln!(
        "leader frozen: the standby removed {} expired native bindings, the last {:.2}s after the last expiry",
        names.len(),
        lag.num_milliseconds() as f64 / 1000.0
    );
    assert!(
        !standby.log_text().contains("acquired the leader lease"),
        "removed by the standby before it could lead:\n{}",
        standby.log_text()
    );
    assert!(lag < chrono::Duration::seconds(5), "{lag:?}");
    // The frozen leader is gone for good; the standby takes over and records.
    leader.kill();
    all_in_phase(&env, &names, BindingPhase::Expired, Duration::from_secs(60)).await;
    let expiries = check_invariants(&env, &tenant, &names, true, &standby).await;
    assert!(
        expiries
            .iter()
            .all(|e| e.details.contains("removed before the operator acted")),
        "{expiries:?}"
    );
}

/// The SIGSTOP scenario without a standby: the only operator is frozen
/// across expiries and resumed; it removes what is overdue at once and
/// records each expiry once.
#[tokio::test]
async fn a_frozen_operator_resumes_and_catches_up() {
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new("thaw").await;
    let lease = lease_args("thaw", 15, 5);
    let op = start("thaw-1", &lease, READY);
    let tenant = setup_without_operator(&env, 1, 1).await;
    let names = grants(&env, "thaw", burst(30), "15s").await;
    let active = all_in_phase(&env, &names, BindingPhase::Active, Duration::from_secs(60)).await;
    sleep_until(first_expiry(&active) - chrono::Duration::seconds(1)).await;
    op.freeze();
    sleep_until(last_expiry(&active) + chrono::Duration::seconds(3)).await;
    let resumed = Instant::now();
    op.resume();
    let namespaces = [env.ns.as_str(), tenant.as_str()];
    let gone = until_no_overdue(&namespaces, Duration::from_secs(30)).await;
    eprintln!(
        "operator frozen across {} expiries: the last removed {:.2}s after it resumed",
        names.len(),
        (gone - resumed).as_secs_f64()
    );
    all_in_phase(&env, &names, BindingPhase::Expired, Duration::from_secs(60)).await;
    assert!(op.running(), "resumed within its Lease, it still leads");
    check_invariants(&env, &tenant, &names, true, &op).await;
}

/// A kubeconfig acting as the sweep's ServiceAccount (by impersonation from
/// the admin).
fn sweep_kubeconfig() -> std::path::PathBuf {
    let path = plane().dir.join("sweep.kubeconfig");
    let admin = std::fs::read_to_string(plane().kubeconfig("admin")).unwrap();
    let mut kc: serde_yaml::Value = serde_yaml::from_str(&admin).unwrap();
    for user in kc["users"].as_sequence_mut().unwrap() {
        user["user"]["as"] = SWEEP_USER.into();
    }
    std::fs::write(&path, serde_yaml::to_string(&kc).unwrap()).unwrap();
    path
}

/// DESIGN §5: with the operator down, `foureyes sweep --once` (as its own
/// ServiceAccount) removes overdue native bindings, and may delete nothing
/// else; once the operator is back, each expiry is recorded once, saying
/// that the access had already been removed.
#[tokio::test]
async fn the_sweep_bounds_access_while_the_operator_is_down() {
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new("sweep").await;
    let lease = lease_args("sweep", 15, 5);
    let op = start("sweep-1", &lease, READY);
    let tenant = setup_without_operator(&env, 1, 1).await;
    let names = grants(&env, "swept", 10, "8s").await;
    let active = all_in_phase(&env, &names, BindingPhase::Active, Duration::from_secs(60)).await;
    op.stop();
    sleep_until(last_expiry(&active) + chrono::Duration::seconds(1)).await;
    let namespaces = [env.ns.as_str(), tenant.as_str()];
    assert_eq!(
        overdue_in(&namespaces, Duration::ZERO).await.len(),
        names.len(),
        "nobody removed them while the operator was down"
    );

    // What the sweep's identity may not delete: a RoleBinding foureyes did
    // not make, or one that only claims to be managed by foureyes.
    let admin_rbs: Api<NativeBinding> = Api::namespaced(client("admin").await, &tenant);
    for (name, labels) in [
        ("not-ours", json!({})),
        ("half-ours", json!({ "app.kubernetes.io/managed-by": "foureyes" })),
    ] {
        let rb: NativeBinding = serde_json::from_value(json!({
            "metadata": { "name": name, "labels": labels },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view" },
            "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "erin" }],
        }))
        .unwrap();
        admin_rbs.create(&PostParams::default(), &rb).await.unwrap();
    }
    let as_sweep: Api<NativeBinding> = Api::namespaced(client_as(SWEEP_USER, &[]).await, &tenant);
    for name in ["not-ours", "half-ours"] {
        // The policy takes effect shortly after it is created: asked dry first.
        eventually(
            &format!("the sweep refused {name}"),
            Duration::from_secs(30),
            || async {
                match as_sweep.delete(name, &DeleteParams::default().dry_run()).await {
                    Err(kube::Error::Api(e))
                        if e.code == 403 && e.message.contains("foureyes sweep may delete only") =>
                    {
                        Some(())
                    }
                    Err(kube::Error::Api(e)) if e.code == 403 => panic!("refused by RBAC, not the policy: {e:?}"),
                    _ => None,
                }
            },
        )
        .await;
        let err = as_sweep.delete(name, &DeleteParams::default()).await.unwrap_err();
        assert!(matches!(&err, kube::Error::Api(e) if e.code == 403), "{err:?}");
        assert!(admin_rbs.get_opt(name).await.unwrap().is_some());
    }
    assert!(!support::can(SWEEP_USER, "get", "secrets", &tenant).await);
    assert!(!support::can(SWEEP_USER, "create", "rolebindings", &tenant).await);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_foureyes"))
        .args(["sweep", "--once"])
        .env("KUBECONFIG", sweep_kubeconfig())
        .output()
        .expect("run foureyes sweep --once");
    assert!(
        out.status.success(),
        "foureyes sweep --once: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left = overdue_in(&namespaces, Duration::ZERO).await;
    assert!(left.is_empty(), "the sweep left {left:?}");
    assert!(admin_rbs.get_opt("not-ours").await.unwrap().is_some());

    let back = start("sweep-2", &lease, READY);
    all_in_phase(&env, &names, BindingPhase::Expired, Duration::from_secs(60)).await;
    let expiries = check_invariants(&env, &tenant, &names, true, &back).await;
    for e in &expiries {
        assert!(e.details.contains("removed before the operator acted"), "{e:?}");
    }
}

/// The leader cut off from the API server by a black hole (connections
/// accepted, never answered): it stops acting by its Lease's expiry and
/// exits; the standby takes over, revokes what expires meanwhile, and grants
/// what is asked meanwhile. Prints the takeover time and the longest window
/// without a replica removing overdue access.
#[tokio::test]
async fn a_black_holed_leader_gives_way() {
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new("hole").await;
    let lease = lease_args("hole", 4, 1);
    let proxy = Proxy::start();
    let args: Vec<&str> = lease.iter().map(String::as_str).collect();
    let leader = Operator::start_via("hole-1", &proxy.kubeconfig("operator"), OPERATOR_CONFIG, &args, READY);
    let standby = start("hole-2", &lease, STANDBY);
    let tenant = setup_without_operator(&env, 1, 1).await;
    let names = grants(&env, "hole", 20, "20s").await;
    let active = all_in_phase(&env, &names, BindingPhase::Active, Duration::from_secs(60)).await;
    sleep_until(first_expiry(&active) - chrono::Duration::seconds(2)).await;
    proxy.black_hole();
    let cut = Instant::now();
    // Expiring during the cut: removed by the standby's timers.
    sleep_until(last_expiry(&active)).await;
    let namespaces = [env.ns.as_str(), tenant.as_str()];
    let gone = until_no_overdue(&namespaces, Duration::from_secs(30)).await;
    let lag = Utc::now() - chrono::Duration::from_std(gone.elapsed()).unwrap() - last_expiry(&active);
    let gave_up = eventually("the cut-off leader to give up", Duration::from_secs(30), || async {
        leader
            .log_text()
            .contains("lost the leader lease")
            .then(|| cut.elapsed())
    })
    .await;
    let took_over = eventually("the standby to lead", Duration::from_secs(30), || async {
        standby
            .log_text()
            .contains("acquired the leader lease")
            .then(|| cut.elapsed())
    })
    .await;
    let serving = eventually("the standby's controllers to run", Duration::from_secs(30), || async {
        let log = standby.log_text();
        let acquired = log.find("acquired the leader lease")?;
        log[acquired..].contains("caches synced; ready").then(|| cut.elapsed())
    })
    .await;
    eventually("the cut-off leader to exit", Duration::from_secs(10), || async {
        (!leader.running()).then_some(())
    })
    .await;
    eprintln!(
        "leader black-holed: it gave up after {:.1}s, the standby led after {:.1}s and ran its controllers after {:.1}s \
         (Lease 4s, grace 1s); the expiries during the cut were removed by the standby {:.2}s after the last",
        gave_up.as_secs_f64(),
        took_over.as_secs_f64(),
        serving.as_secs_f64(),
        lag.num_milliseconds() as f64 / 1000.0
    );
    assert!(lag < chrono::Duration::seconds(5), "{lag:?}");
    assert!(
        gave_up < Duration::from_secs(8),
        "the leader kept leading for {gave_up:?}"
    );
    // Granted meanwhile, by the new leader.
    let later = grants(&env, "after-hole", 1, "1h").await;
    wait_phase(&env, &later[0], BindingPhase::Active).await;
    all_in_phase(&env, &names, BindingPhase::Expired, Duration::from_secs(60)).await;
    proxy.heal();
    check_invariants(&env, &tenant, &names, true, &standby).await;
}

/// The API server down for 20 s while grants expire, then back, with two
/// replicas (the chart's default): the leader may lose its Lease meanwhile
/// and exit (a Deployment would restart it); what expired is removed as soon
/// as the API server is back, by whichever replica's timers are first, and
/// each expiry is recorded once by the replica that leads afterwards.
#[tokio::test]
async fn the_api_server_down_across_expiries() {
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new("down").await;
    // A Lease longer than the outage, so that the leader keeps it.
    let lease = lease_args("down", 15, 5);
    let leader = start("down-1", &lease, READY);
    let standby = start("down-2", &lease, STANDBY);
    let tenant = setup_without_operator(&env, 1, 1).await;
    let names = grants(&env, "down", burst(200), "45s").await;
    let active = all_in_phase(&env, &names, BindingPhase::Active, Duration::from_secs(90)).await;
    sleep_until(first_expiry(&active) - chrono::Duration::seconds(2)).await;
    let stopped = faults::stop_apiserver();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(down.elapsed())).await;
    faults::start_apiserver(stopped);
    let back = Instant::now();
    let namespaces = [env.ns.as_str(), tenant.as_str()];
    let gone = until_no_overdue(&namespaces, Duration::from_secs(60)).await;
    eprintln!(
        "API server down {:.1}s across {} expiries: the last overdue native binding removed {:.2}s after it was back",
        (back - down).as_secs_f64(),
        names.len(),
        (gone - back).as_secs_f64()
    );
    all_in_phase(&env, &names, BindingPhase::Expired, Duration::from_secs(90)).await;
    let op = if leader.running() { &leader } else { &standby };
    check_invariants(&env, &tenant, &names, true, op).await;
}

/// etcd restarted, and compacted so that the watches must list again
/// (`410 Gone`), during a burst of grants and expiries.
#[tokio::test]
async fn etcd_restarted_and_compacted_during_a_burst() {
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new("etcd").await;
    let lease = lease_args("etcd", 40, 10);
    let op = start("etcd-1", &lease, READY);
    let tenant = setup_without_operator(&env, 1, 1).await;
    let names = grants(&env, "etcd", 40, "30s").await;
    faults::restart_etcd();
    let more = grants(&env, "etcd-more", 20, "30s").await;
    let revision = faults::compact_etcd();
    eprintln!("etcd compacted at revision {revision}");
    let all: Vec<String> = names.into_iter().chain(more).collect();
    all_in_phase(&env, &all, BindingPhase::Active, Duration::from_secs(60)).await;
    faults::compact_etcd();
    let expired = all_in_phase(&env, &all, BindingPhase::Expired, Duration::from_secs(60)).await;
    assert_eq!(expired.len(), all.len());
    assert!(op.running());
    check_invariants(&env, &tenant, &all, true, &op).await;
}

/// Files `n` role requests `<prefix>-<i>` (by bob, for a project role in a
/// workspace whose quorum is 1) and has alice approve each; returns the
/// names (the bindings made from them carry the same names).
async fn approved_requests(env: &TestEnv, prefix: &str, n: usize, duration: &str) -> Vec<String> {
    use foureyes::api::RoleRequest;
    let api = env.api::<RoleRequest>("bob").await;
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    for name in &names {
        let r: RoleRequest = serde_json::from_value(json!({
            "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
            "metadata": { "name": name },
            "spec": {
                "subject": { "kind": "User", "name": format!("user-{name}") },
                "project": "app", "projectRole": "user",
                "duration": duration, "justification": "INC-8", "requester": "bob",
            },
        }))
        .unwrap();
        api.create(&PostParams::default(), &r).await.expect("create request");
    }
    for name in &names {
        support::world::vote_as(env, "alice", "alice", name, "Approve")
            .await
            .expect("approve");
    }
    names
}

/// A small deterministic generator (the storm's kill points), seeded.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// The operator SIGKILLed at seeded random points during a storm of grants,
/// approvals and expiries, and started again at once each time: nothing is
/// lost or recorded twice, and nothing outlives its expiry.
#[tokio::test]
async fn sigkill_at_random_points_during_a_storm() {
    let _serial = SERIAL.lock().await;
    let kills: usize = std::env::var("FOUREYES_FAULTS_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut seed: u64 = std::env::var("FOUREYES_FAULTS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_f00d);
    eprintln!("storm: {kills} kills, seed {seed} (FOUREYES_FAULTS_KILLS, FOUREYES_FAULTS_SEED)");
    let env = TestEnv::new("storm").await;
    // A short Lease, so that each restart takes over soon; not so short
    // that a loaded machine makes every leader give it up (see
    // `restarted_while`).
    let lease = lease_args("storm", 6, 2);
    let mut op = start("storm-0", &lease, READY);
    let tenant = setup_without_operator(&env, 1, 1).await;
    let (mut ended, mut running) = (vec![], vec![]);
    for round in 0..kills {
        // The storm: short grants (expiring during the next rounds), long
        // grants and approved requests.
        ended.extend(grants(&env, &format!("short-{round}"), 6, "4s").await);
        running.extend(grants(&env, &format!("long-{round}"), 3, "1h").await);
        running.extend(approved_requests(&env, &format!("asked-{round}"), 2, "1h").await);
        // Killed at a random point of the next 2.5 s.
        tokio::time::sleep(Duration::from_millis(next(&mut seed) % 2500)).await;
        op.kill();
        op = start(&format!("storm-{}", round + 1), &lease, None);
    }
    let namespaces = [env.ns.as_str(), tenant.as_str()];
    // Liveness, not a bound of the design: generous, for a loaded machine
    // (the bound on access past expiry is the next check).
    let phases = [(&running, BindingPhase::Active), (&ended, BindingPhase::Expired)];
    for (names, phase) in phases {
        let wait = all_in_phase(&env, names, phase, Duration::from_secs(180));
        restarted_while(&mut op, "storm", &lease, wait).await;
    }
    let late = overdue_in(&namespaces, Duration::from_secs(2)).await;
    assert!(late.is_empty(), "{late:?}");
    check_mixed(&env, &tenant, &ended, &running, &op).await;
}

/// 200 ms added latency and dropped connections between the operator and
/// the API server, under a load of grants and expiries.
#[tokio::test]
async fn latency_and_dropped_connections_under_load() {
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new("slow").await;
    let lease = lease_args("slow", 15, 5);
    let proxy = Proxy::start();
    let args: Vec<&str> = lease.iter().map(String::as_str).collect();
    let op = Operator::start_via("slow-1", &proxy.kubeconfig("operator"), OPERATOR_CONFIG, &args, READY);
    let tenant = setup_without_operator(&env, 1, 1).await;
    proxy.slow(Duration::from_millis(200));
    proxy.drop_new(0.05);
    let started = Instant::now();
    let mut ended = vec![];
    for round in 0..3 {
        ended.extend(grants(&env, &format!("slow-{round}"), 20, "8s").await);
        proxy.cut();
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let expired = all_in_phase(&env, &ended, BindingPhase::Expired, Duration::from_secs(120)).await;
    let namespaces = [env.ns.as_str(), tenant.as_str()];
    let worst = expired
        .values()
        .filter_map(|b| {
            let s = b.status.as_ref()?;
            Some(s.finished_at? - s.expires_at?)
        })
        .max();
    eprintln!(
        "200 ms latency, 5% of new connections dropped, every connection cut 3 times: {} grants expired in {:.1}s",
        ended.len(),
        started.elapsed().as_secs_f64()
    );
    let _ = worst;
    let late = overdue_in(&namespaces, Duration::from_secs(5)).await;
    assert!(late.is_empty(), "{late:?}");
    proxy.heal();
    check_invariants(&env, &tenant, &ended, true, &op).await;
}

/// 64 concurrent writers: votes on one request (each manager once, many
/// times over) and appends to one workspace's history (64 grants at once).
#[tokio::test]
async fn sixty_four_concurrent_writers() {
    use foureyes::api::RoleRequest;
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new("crowd").await;
    let lease = lease_args("crowd", 15, 5);
    let op = start("crowd-1", &lease, READY);
    let tenant = setup_without_operator(&env, 2, 2).await;
    support::world::more_managers(&env, &["bob", "carol"]).await;
    let api = env.api::<RoleRequest>("erin").await;
    let r: RoleRequest = serde_json::from_value(json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
        "metadata": { "name": "crowded" },
        "spec": {
            "subject": { "kind": "User", "name": "dave" }, "project": "app", "projectRole": "user",
            "duration": "1h", "justification": "INC-64", "requester": "erin",
        },
    }))
    .unwrap();
    api.create(&PostParams::default(), &r).await.unwrap();
    // 64 writers: alice, bob and carol vote, each many times at once.
    let voters = ["alice", "bob", "carol"];
    futures::stream::iter(0..64)
        .map(|i| {
            let env = &env;
            async move {
                let who = voters[i % voters.len()];
                let _ = support::world::vote_as(env, who, who, "crowded", "Approve").await;
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    // And 64 grants at once: 64 writers of the same history chain.
    let names = grants(&env, "crowd", 64, "1h").await;
    all_in_phase(&env, &names, BindingPhase::Active, Duration::from_secs(90)).await;
    let granted = wait_phase(&env, "crowded", BindingPhase::Active).await;
    let approved_by = granted
        .metadata
        .annotations
        .unwrap_or_default()
        .get("foureyes.dev/approved-by")
        .cloned()
        .unwrap_or_default();
    let counted: Vec<&str> = approved_by.split(',').filter(|s| !s.is_empty()).collect();
    let distinct: std::collections::BTreeSet<&str> = counted.iter().copied().collect();
    assert!(
        counted.len() >= 2 && distinct.len() == counted.len() && distinct.iter().all(|v| voters.contains(v)),
        "each manager's approval counted once at most, and the quorum reached: {approved_by}"
    );
    let mut all = names.clone();
    all.push("crowded".into());
    check_invariants(&env, &tenant, &all, false, &op).await;
    let entries = verified(&env.ns, &Chain::project("app")).await;
    let approvals = entries.iter().filter(|e| e.action == "Approved").count();
    assert!(
        approvals <= voters.len(),
        "each voter recorded once at most: {approvals}"
    );
}
