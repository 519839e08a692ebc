//! Notifications on a real API server (DESIGN §5; `docs/notifications.md`):
//! a local HTTPS receiver, trusted through the sink's `caBundle`, gets a
//! correctly signed CloudEvent for a new request naming the managers who can
//! approve it; and a sink that accepts connections and never answers does
//! not delay the approval path (measured: approval → Active, with and
//! without it).

#[path = "support/receiver.rs"]
mod receiver;
mod support;

use std::time::{Duration, Instant};

use foureyes::api::{BindingPhase, RequestPhase, RoleBinding, RoleRequest};
use kube::api::PostParams;
use receiver::{Receiver, black_hole};
use serde_json::json;
use support::world::{more_managers, phase, setup_without_operator, vote_as, wait_request};
use support::{OPERATOR_CONFIG, Operator, TestEnv, eventually, plane};

const KEY: &str = "notification-test-key";
const SECRET: &str = "foureyes-notifications";

/// The test configuration with notification sinks (YAML values).
fn config_with(sinks: serde_json::Value) -> String {
    let mut config: serde_yaml::Value = serde_yaml::from_str(OPERATOR_CONFIG).unwrap();
    config["notifications"] = serde_yaml::to_value(json!({ "sinks": sinks })).unwrap();
    serde_yaml::to_string(&config).unwrap()
}

/// The Secret with the signing key, and the operator's RBAC to read it
/// (what `foureyes rbac` prints for this configuration).
fn install_secret_and_rbac(config: &str) {
    let plane = plane();
    let _ = plane.kubectl("admin", &["create", "namespace", "foureyes-system"], None);
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{ name: {SECRET}, namespace: foureyes-system }}\nstringData: {{ hmac: {KEY} }}\n"
    );
    plane.kubectl_ok("admin", &["apply", "-f", "-"], Some(&secret));
    let file = plane.dir.join("notifications-config.yaml");
    std::fs::write(&file, config).unwrap();
    let rbac = std::process::Command::new(env!("CARGO_BIN_EXE_foureyes"))
        .args(["rbac", "--config"])
        .arg(&file)
        .output()
        .expect("foureyes rbac");
    assert!(rbac.status.success(), "{}", String::from_utf8_lossy(&rbac.stderr));
    let rbac = String::from_utf8_lossy(&rbac.stdout).into_owned();
    assert!(rbac.contains("foureyes-notification-secrets"), "{rbac}");
    plane.kubectl_ok(
        "admin",
        &["apply", "--server-side", "--field-manager=foureyes-tests", "-f", "-"],
        Some(&rbac),
    );
}

/// Files a request as alice (a manager: her request is the first approval)
/// for dave to be admin of project `app`.
async fn request(env: &TestEnv, name: &str) {
    let r: RoleRequest = serde_json::from_value(json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
        "metadata": { "name": name, "namespace": env.ns },
        "spec": {
            "subject": { "kind": "User", "name": "dave" }, "project": "app", "projectRole": "admin",
            "duration": "2h", "justification": "INC-7: checkout is down", "requester": "alice",
        },
    }))
    .unwrap();
    env.api::<RoleRequest>("alice")
        .await
        .create(&PostParams::default(), &r)
        .await
        .expect("create request");
}

/// Files `rounds` requests; for each, once pending at 1/2, bob's approval is
/// timed until its binding is Active. Returns the latencies in ms.
async fn approval_latencies(env: &TestEnv, prefix: &str, rounds: usize) -> Vec<f64> {
    let bindings = env.api::<RoleBinding>("admin").await;
    let mut out = vec![];
    for i in 0..rounds {
        let name = format!("{prefix}-{i}");
        request(env, &name).await;
        wait_request(env, &name, "pending at 1/2", |r| {
            phase(r) == Some(RequestPhase::Pending)
                && r.status.as_ref().and_then(|s| s.approvals.as_deref()) == Some("1/2")
        })
        .await;
        let started = Instant::now();
        vote_as(env, "bob", "bob", &name, "Approve")
            .await
            .expect("bob approves");
        loop {
            if bindings
                .get_opt(&name)
                .await
                .ok()
                .flatten()
                .and_then(|b| b.status)
                .and_then(|s| s.phase)
                == Some(BindingPhase::Active)
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{name} never became Active"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        out.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    out
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::test]
async fn a_new_request_is_announced_signed_and_a_dead_receiver_does_not_slow_approvals() {
    let env = TestEnv::new("notify").await;
    let receiver = Receiver::start().await;
    let (hole, accepted) = black_hole().await;
    let good = json!({
        "name": "receiver", "url": receiver.url, "caBundle": receiver.ca_pem,
        "secretRef": { "name": SECRET, "key": "hmac" },
    });
    let config = config_with(json!([good.clone()]));
    install_secret_and_rbac(&config);
    let op = Operator::start_configured("notify", &config, &[], Some("caches synced; ready"));
    setup_without_operator(&env, 1, 2).await;
    more_managers(&env, &["bob", "carol"]).await;

    // A new request: the receiver gets one signed CloudEvent naming who can
    // approve it (the managers but the requester, whose request counts,
    // and the subject).
    let filed = Instant::now();
    request(&env, "dave-admin").await;
    let event = eventually("the CloudEvent of the new request", Duration::from_secs(20), || async {
        receiver.received().into_iter().find(|r| {
            r.json()["type"] == "dev.foureyes.request.pending" && r.json()["data"]["object"]["name"] == "dave-admin"
        })
    })
    .await;
    println!(
        "request filed -> CloudEvent received: {:.0} ms",
        event.at.duration_since(filed).as_secs_f64() * 1000.0
    );
    let signature = event.header("x-foureyes-signature").expect("a signature header");
    assert!(
        foureyes::notify::sender::verify(KEY.as_bytes(), &event.body, &signature),
        "the signature verifies with the Secret's key"
    );
    assert!(!foureyes::notify::sender::verify(
        b"another key",
        &event.body,
        &signature
    ));
    assert!(
        event
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/cloudevents+json")),
        "{}",
        event.head
    );
    let ce = event.json();
    assert_eq!(ce["specversion"], "1.0");
    assert_eq!(ce["source"], "/foureyes");
    assert_eq!(ce["subject"], format!("namespaces/{}/rolerequests/dave-admin", env.ns));
    let uid = env
        .api::<RoleRequest>("admin")
        .await
        .get("dave-admin")
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    assert_eq!(ce["id"], format!("{uid}/Requested"));
    let data = &ce["data"];
    assert_eq!(data["approvers"], json!(["bob", "carol"]), "{data}");
    assert_eq!(data["workspace"], env.name.as_str());
    assert_eq!(data["actor"], "alice");
    assert_eq!(data["subject"], "user dave");
    assert_eq!(data["role"], "app/admin");
    assert_eq!(data["requiredApprovals"], 2);
    assert_eq!(data["justification"], "INC-7: checkout is down");

    // The approval path, with only the good receiver...
    let without = approval_latencies(&env, "calm", 5).await;
    op.stop();

    // ...and with a sink that never answers besides it.
    let config = config_with(json!([
        good,
        { "name": "hole", "format": "slack", "url": hole, "timeout": "10s", "maxAttempts": 3 },
    ]));
    let op = Operator::start_configured("notify-hole", &config, &[], Some("caches synced; ready"));
    let with = approval_latencies(&env, "hole", 5).await;
    eventually("the black hole to be called", Duration::from_secs(20), || async {
        (accepted.load(std::sync::atomic::Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    let (m0, m1) = (median(&without), median(&with));
    println!("approval -> Active without the black hole: median {m0:.0} ms, all {without:.0?}");
    println!("approval -> Active with the black hole:    median {m1:.0} ms, all {with:.0?}");
    assert!(
        with.iter().all(|ms| *ms < 2000.0),
        "a receiver that never answers delays approvals: {with:?}"
    );
    assert!(
        m1 < m0 + 500.0,
        "median {m1:.0} ms with the black hole, {m0:.0} ms without"
    );
    // The good receiver got the later requests' messages meanwhile.
    eventually("the last request's CloudEvent", Duration::from_secs(20), || async {
        receiver
            .received()
            .iter()
            .any(|r| r.json()["data"]["object"]["name"] == "hole-4")
            .then_some(())
    })
    .await;
    drop(op);
}
