//! Two replicas with leader election: the leader is killed without warning
//! (SIGKILL, so it does not release the Lease), and the other replica takes
//! over once the Lease expires and grants access again.
//!
//! Prints the failover time; asserts only a generous bound (this is not a
//! timing test). Then a leader that finds another holder in its Lease exits.

mod support;

use std::time::{Duration, Instant};

use foureyes::api::BindingPhase;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::world::{grant, natives_of, setup_without_operator, wait_phase};
use support::{Operator, TestEnv, client, eventually};

/// A short Lease, so that the test is quick: renewed every 2 s, expired 3 s
/// after the last renewal.
const LEASE: &[&str] = &["--lease-duration=3s", "--lease-grace=1s"];

/// GET `path` from an operator's metrics address (from its log); returns
/// the status line and the body.
async fn http_get(op: &Operator, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let log = op.log_text();
    let addr = log
        .lines()
        .find(|l| l.contains("serving /metrics"))
        .and_then(|l| l.split("address=").nth(1))
        .map(|a| a.trim().to_owned())
        .expect("metrics address in the log");
    let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.lines().next().unwrap_or_default().to_owned(), body.to_owned())
}

async fn holder() -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client("admin").await, "foureyes-system");
    leases.get("foureyes").await.ok()?.spec?.holder_identity
}

#[tokio::test]
async fn the_standby_takes_over_when_the_leader_is_killed() {
    let env = TestEnv::new("failover").await;
    let one = Operator::start_with("one", LEASE, Some("caches synced; ready"));
    let two = Operator::start_with("two", LEASE, Some("standby: waiting for the leader lease"));
    assert_eq!(holder().await.as_deref(), Some("one"));
    let tenant = setup_without_operator(&env, 1, 1).await;
    assert!(
        !two.log_text().contains("acquired the leader lease"),
        "the standby waits while the leader renews"
    );
    assert!(
        !two.log_text().contains("watching workspaces"),
        "the standby runs no controller"
    );
    // The standby is ready (it can take over) and says it is not the leader.
    let (status, _) = http_get(&two, "/readyz").await;
    assert!(status.contains(" 200 "), "{status}");
    let (_, metrics) = http_get(&two, "/metrics").await;
    assert!(metrics.contains("foureyes_leader 0"), "{metrics}");
    let (_, metrics) = http_get(&one, "/metrics").await;
    assert!(metrics.contains("foureyes_leader 1"), "{metrics}");

    // The leader dies without releasing the Lease.
    one.kill();
    let killed = Instant::now();
    grant(
        &env,
        "alice",
        "dave-user",
        json!({"kind": "User", "name": "dave"}),
        json!({"project": "app", "projectRole": "user"}),
        "1h",
    )
    .await;
    let acquired = eventually("the standby to hold the lease", Duration::from_secs(60), || async {
        (holder().await.as_deref() == Some("two")).then(|| killed.elapsed())
    })
    .await;
    let b = wait_phase(&env, "dave-user", BindingPhase::Active).await;
    let uid = b.metadata.uid.clone().unwrap();
    let granted = eventually("the native binding", Duration::from_secs(60), || async {
        (natives_of(&uid).await.len() == 1).then(|| killed.elapsed())
    })
    .await;
    eprintln!(
        "failover (lease 3s, grace 1s): the standby held the lease {:.1}s after the leader was killed, \
         and the new grant in {tenant} was in place {:.1}s after",
        acquired.as_secs_f64(),
        granted.as_secs_f64()
    );
    assert!(granted < Duration::from_secs(45), "failover took {granted:?}");
    let log = two.log_text();
    let took_over = log.find("acquired the leader lease").expect("the standby took over");
    let watching = log.find("watching workspaces").expect("controllers started");
    assert!(took_over < watching, "controllers only after the lease:\n{log}");

    // A leader that finds another holder in its Lease (as when a paused
    // replica resumes after losing it) stops at once and exits non-zero. The
    // other holder is another replica, with the operator's identity: nobody
    // else may write the Lease (foureyes-lease).
    let leases: Api<Lease> = Api::namespaced(client("operator").await, "foureyes-system");
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let patch = json!({"spec": {"holderIdentity": "intruder", "renewTime": now}});
    leases
        .patch("foureyes", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch the lease");
    eventually("the leader to exit", Duration::from_secs(20), || async {
        two.log_text().contains("Error: lost the leader lease").then_some(())
    })
    .await;
}
