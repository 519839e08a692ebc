//! SECURITY F17: a binding deleted after its finalizer was stripped keeps no
//! access: the operator sees the deletion and removes the native RBAC at
//! once, not at the next sweep (which this operator runs only hourly).

mod support;

use std::time::{Duration, Instant};

use foureyes::api::{BindingPhase, RoleBinding};
use foureyes::audit::history::{Chain, read_chain};
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use support::world::{grant, natives_of, setup_without_operator, wait_phase};
use support::{OPERATOR_CONFIG, Operator, TestEnv, can, client, eventually};

#[tokio::test]
async fn stripping_the_finalizer_does_not_keep_access() {
    let config = OPERATOR_CONFIG.replace("sweepInterval: 2s", "sweepInterval: 1h");
    let _operator = Operator::start_configured("no-sweep", &config, &[], Some("caches synced; ready"));
    let env = TestEnv::new("strip").await;
    let tenant = setup_without_operator(&env, 1, 1).await;
    grant(
        &env,
        "partner",
        "dave-reader",
        json!({"kind": "User", "name": "dave"}),
        json!({"project": "app", "projectRole": "reader"}),
        "2h",
    )
    .await;
    let b = wait_phase(&env, "dave-reader", BindingPhase::Active).await;
    let uid = b.metadata.uid.clone().unwrap();
    assert!(!natives_of(&uid).await.is_empty());
    assert!(can("dave", "list", "pods", &tenant).await);
    // alice, a manager, strips the finalizer and deletes the binding.
    let api = env.api::<RoleBinding>("alice").await;
    api.patch(
        "dave-reader",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "finalizers": null } })),
    )
    .await
    .expect("strip the finalizer");
    api.delete("dave-reader", &DeleteParams::default())
        .await
        .expect("delete");
    let deleted = Instant::now();
    eventually("the native RBAC gone", Duration::from_secs(10), || async {
        natives_of(&uid).await.is_empty().then_some(())
    })
    .await;
    let took = deleted.elapsed();
    assert!(took < Duration::from_secs(5), "removed after {took:?}, not at once");
    assert!(!can("dave", "list", "pods", &tenant).await);
    // The removal is recorded, its actor unknown.
    let admin = client("admin").await;
    let entries = eventually("the removal recorded", Duration::from_secs(10), || async {
        let entries = read_chain(&admin, &env.ns, &Chain::project("app")).await.ok()?;
        entries
            .into_iter()
            .find(|e| e.object.uid == uid && e.action == "Removed")
    })
    .await;
    assert_eq!(entries.actor, "unknown");
}
