//! DESIGN §2, invariant 1: no access outlives its expiry, even if the
//! operator was down at the expiry time: on start it revokes what is overdue
//! before anything else.

mod support;

use std::time::{Duration, Instant};

use foureyes::api::BindingPhase;
use serde_json::json;
use support::world::{grant, natives_of, setup_without_operator, wait_event, wait_phase};
use support::{Operator, TestEnv, can, eventually};

#[tokio::test]
async fn access_that_expired_while_the_operator_was_down_is_revoked_at_start() {
    let env = TestEnv::new("restart").await;
    let first = Operator::start("first");
    let tenant = setup_without_operator(&env, 1, 1).await;
    grant(
        &env,
        "alice",
        "dave-user",
        json!({"kind": "User", "name": "dave"}),
        json!({"project": "app", "projectRole": "user"}),
        "6s",
    )
    .await;
    let b = wait_phase(&env, "dave-user", BindingPhase::Active).await;
    let expires = b.status.as_ref().unwrap().expires_at.unwrap();
    let uid = b.metadata.uid.clone().unwrap();
    assert!(can("dave", "create", "configmaps", &tenant).await);

    // The operator goes down before the expiry...
    first.stop();
    // ...and someone who may write RoleBindings in a namespace of their own
    // plants a look-alike, named as the operator would name one of
    // manager-alice's native bindings for a uid of their choosing (SECURITY
    // F18): removed at start-up, it must plant no event on alice's binding.
    let mine = format!("{}-mine", env.name);
    support::plane().kubectl_ok("admin", &["create", "namespace", &mine], None);
    let fake = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {
            "name": foureyes::rbac::native_name(&env.ns, "manager-alice", "bogus"), "namespace": mine,
            "labels": { "app.kubernetes.io/managed-by": "foureyes", "foureyes.dev/binding-uid": "bogus" },
            "annotations": {
                "foureyes.dev/binding-ref": format!("{}/manager-alice", env.ns),
                "foureyes.dev/expires-at": "2000-01-01T00:00:00Z",
            },
        },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view" },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "x" }],
    });
    support::plane().kubectl_ok("admin", &["create", "-f", "-"], Some(&fake.to_string()));
    let until = expires + chrono::Duration::seconds(2);
    while chrono::Utc::now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // ...so the access is still there after it (this is what the start-up revocation is for).
    assert!(
        can("dave", "create", "configmaps", &tenant).await,
        "nobody revoked it while the operator was down"
    );

    let started = Instant::now();
    let second = Operator::start("second");
    assert!(
        !can("dave", "create", "configmaps", &tenant).await,
        "revoked before the operator reported ready"
    );
    assert!(natives_of(&uid).await.is_empty());
    eprintln!(
        "overdue access revoked within {:?} of starting the operator",
        started.elapsed()
    );
    let log = std::fs::read_to_string(&second.log).unwrap();
    let revoked_at = log
        .find("revoked overdue access at start-up")
        .expect("start-up revocation logged");
    let watching_at = log.find("watching workspaces").expect("controllers started");
    assert!(
        revoked_at < watching_at,
        "revocation happened before any controller ran:\n{log}"
    );
    wait_event(&env.ns, "dave-user", "OverdueRevoked").await;
    assert!(
        !support::world::events_for(&env.ns, "manager-alice")
            .await
            .iter()
            .any(|r| r == "OverdueRevoked"),
        "no event planted on manager-alice"
    );

    // The binding's record catches up: Expired, finished at the expiry time.
    let b = wait_phase(&env, "dave-user", BindingPhase::Expired).await;
    assert_eq!(b.status.unwrap().finished_at, Some(expires));
    eventually("no native RBAC", Duration::from_secs(5), || async {
        natives_of(&uid).await.is_empty().then_some(())
    })
    .await;
}
