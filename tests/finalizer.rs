//! SECURITY F17: a binding deleted after its finalizer was stripped keeps no
//! access: the operator sees the deletion and removes the native RBAC at
//! once, not at the next sweep (which this operator runs only hourly).

mod support;

use std::time::{Duration, Instant};

use foureyes::api::conditions::{ConditionStatus, READY, find_condition};
use foureyes::api::{BindingPhase, RoleBinding, Workspace};
use foureyes::audit::history::{Chain, read_chain};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
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

/// A workspace whose control namespace an administrator deletes says so at
/// once: the namespace stays `Terminating` (its history is protected), and
/// the workspace reports `Ready=False`, reason `NamespaceTerminating`.
#[tokio::test]
async fn a_terminating_control_namespace_makes_the_workspace_not_ready() {
    let env = TestEnv::new("nsdel").await;
    support::world::setup(&env, 1, 1).await;
    let workspaces = Api::<Workspace>::all(client("admin").await);
    eventually("the workspace ready", Duration::from_secs(30), || async {
        workspaces.get(&env.name).await.ok()?.is_ready().then_some(())
    })
    .await;
    Api::<Namespace>::all(client("admin").await)
        .delete(&env.ns, &DeleteParams::default())
        .await
        .expect("delete the control namespace");
    let ready = eventually("Ready=False, NamespaceTerminating", Duration::from_secs(15), || async {
        let ws = workspaces.get(&env.name).await.ok()?;
        let ready = find_condition(&ws.status?.conditions, READY)?.clone();
        (ready.reason == "NamespaceTerminating").then_some(ready)
    })
    .await;
    assert_eq!(ready.status, ConditionStatus::False);
    assert!(ready.message.contains(&env.ns), "{}", ready.message);
}
