//! Two leaders at once: leader election narrows the overlap of two acting
//! replicas but cannot close it, so every write must stay correct when two
//! operators act at the same time. Two operators without leader election
//! grant, expire and revoke; each grant has exactly one native RoleBinding
//! per namespace, and the status settles on one value that neither rewrites
//! (an expiry's end is the expiry itself; a revocation's end is when an
//! operator saw it, so two writers may each publish theirs once before they
//! agree).

mod support;

use std::time::Duration;

use foureyes::api::{BindingPhase, RoleBinding};
use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::world::{grant, natives_of, setup_without_operator, wait_phase};
use support::{Operator, TestEnv, can, eventually};

/// Samples the native bindings of `uid` for `period`: never more than one.
async fn at_most_one_native(uid: &str, period: Duration) -> usize {
    let until = std::time::Instant::now() + period;
    let mut seen = 0;
    while std::time::Instant::now() < until {
        let n = natives_of(uid).await.len();
        assert!(n <= 1, "{n} native bindings for one grant");
        seen = seen.max(n);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

/// The binding's status and resourceVersion stay the same for a while: the
/// two operators agree and neither rewrites what the other wrote.
async fn settled(env: &TestEnv, name: &str) -> RoleBinding {
    let api = env.api::<RoleBinding>("admin").await;
    eventually(&format!("{name} to settle"), Duration::from_secs(30), || async {
        let before = api.get(name).await.ok()?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = api.get(name).await.ok()?;
        (before.metadata.resource_version == after.metadata.resource_version).then_some(after)
    })
    .await
}

#[tokio::test]
async fn two_operators_at_once_grant_expire_and_revoke_once() {
    let env = TestEnv::new("overlap").await;
    let off = ["--leader-elect=false"];
    let _a = Operator::start_with("a", &off, Some("caches synced; ready"));
    let _b = Operator::start_with("b", &off, Some("caches synced; ready"));
    let tenant = setup_without_operator(&env, 1, 1).await;

    // A grant that expires.
    grant(
        &env,
        "alice",
        "dave-user",
        json!({"kind": "User", "name": "dave"}),
        json!({"project": "app", "projectRole": "user"}),
        "8s",
    )
    .await;
    let b = wait_phase(&env, "dave-user", BindingPhase::Active).await;
    let uid = b.metadata.uid.clone().unwrap();
    let expires = b.status.as_ref().and_then(|s| s.expires_at).expect("expiry published");
    assert_eq!(at_most_one_native(&uid, Duration::from_secs(2)).await, 1);
    assert!(can("dave", "create", "configmaps", &tenant).await);
    let active = settled(&env, "dave-user").await;
    let status = active.status.clone().unwrap();
    assert_eq!(status.phase, Some(BindingPhase::Active));
    assert_eq!(status.expires_at, Some(expires), "both publish the same expiry");

    let expired = wait_phase(&env, "dave-user", BindingPhase::Expired).await;
    eventually("no native RBAC after the expiry", Duration::from_secs(10), || async {
        natives_of(&uid).await.is_empty().then_some(())
    })
    .await;
    assert!(!can("dave", "create", "configmaps", &tenant).await);
    let expired_status = settled(&env, "dave-user").await.status.unwrap();
    assert_eq!(expired_status.phase, Some(BindingPhase::Expired));
    assert_eq!(expired_status.finished_at, Some(expires), "finished at the expiry");
    assert_eq!(
        expired_status.finished_at,
        expired.status.unwrap().finished_at,
        "the first end is kept"
    );

    // A grant that is revoked.
    grant(
        &env,
        "alice",
        "erin-user",
        json!({"kind": "User", "name": "erin"}),
        json!({"project": "app", "projectRole": "user"}),
        "1h",
    )
    .await;
    let b = wait_phase(&env, "erin-user", BindingPhase::Active).await;
    let uid = b.metadata.uid.clone().unwrap();
    assert_eq!(at_most_one_native(&uid, Duration::from_secs(2)).await, 1);
    let revoke = json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
        "spec": { "revocation": { "by": "alice", "reason": "overlap test" } },
    });
    env.api::<RoleBinding>("alice")
        .await
        .patch("erin-user", &PatchParams::default(), &Patch::Merge(&revoke))
        .await
        .expect("revoke");
    let revoked = wait_phase(&env, "erin-user", BindingPhase::Revoked).await;
    eventually(
        "no native RBAC after the revocation",
        Duration::from_secs(10),
        || async { natives_of(&uid).await.is_empty().then_some(()) },
    )
    .await;
    assert!(!can("erin", "create", "configmaps", &tenant).await);
    let revoked_status = settled(&env, "erin-user").await.status.unwrap();
    assert_eq!(revoked_status.phase, Some(BindingPhase::Revoked));
    // A revocation's end is the time an operator saw it: a second writer that
    // had not seen the first one's status yet may publish its own time, once,
    // milliseconds later (observed); after that both agree and it stays.
    let first = revoked.status.unwrap().finished_at.expect("finished");
    let last = revoked_status.finished_at.expect("finished");
    assert!((last - first).num_milliseconds().abs() < 2_000, "{first} then {last}");
    // Nothing comes back while both keep running (and sweeping).
    assert_eq!(at_most_one_native(&uid, Duration::from_secs(3)).await, 0);
}
