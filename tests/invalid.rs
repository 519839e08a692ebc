//! Invariant 8 on a real API server: one object the operator cannot read
//! breaks no watch and stalls nothing, and a binding grants nothing while it
//! is unreadable. To store such objects the test loosens the RoleBinding CRD
//! (as an object stored under an older schema would be), so it runs in its
//! own test binary, with its own control plane.

mod support;

use std::time::Duration;

use foureyes::api::BindingPhase;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use support::world::{grant, natives_of, setup, wait_event, wait_phase};
use support::{TestEnv, can, eventually, plane};

#[tokio::test]
async fn an_unreadable_binding_breaks_nothing_and_grants_nothing() {
    let env = TestEnv::new("invalid").await;
    let tenant = setup(&env, 1, 1).await;
    let dave = json!({"kind": "User", "name": "dave"});
    let reader = json!({"project": "app", "projectRole": "reader"});
    grant(&env, "alice", "turns-bad", dave.clone(), reader.clone(), "1h").await;
    let b = wait_phase(&env, "turns-bad", BindingPhase::Active).await;
    let uid = b.metadata.uid.clone().unwrap();
    assert!(can("dave", "list", "pods", &tenant).await);

    // Loosen the schema: any subject kind and any phase are stored.
    let base = "/spec/versions/0/schema/openAPIV3Schema/properties";
    let patch = json!([
        { "op": "remove", "path": format!("{base}/spec/properties/subject/properties/kind/enum") },
        { "op": "remove", "path": format!("{base}/status/properties/phase/enum") },
    ]);
    plane().kubectl_ok(
        "admin",
        &[
            "patch",
            "crd",
            "rolebindings.foureyes.dev",
            "--type=json",
            "-p",
            &patch.to_string(),
        ],
        None,
    );

    // A new binding the operator cannot read: a Warning event, nothing granted.
    let robot = json!({"kind": "Robot", "name": "r2d2"});
    eventually("the loosened schema to apply", Duration::from_secs(20), || async {
        let text = json!({
            "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
            "metadata": { "name": "robot", "namespace": env.ns },
            "spec": { "subject": robot, "project": "app", "projectRole": "reader", "duration": "1h",
                      "justification": "INC-1", "grantedBy": "alice" },
        });
        let (ok, _, _) = plane().kubectl("alice", &["create", "-f", "-"], Some(&text.to_string()));
        ok.then_some(())
    })
    .await;
    wait_event(&env.ns, "robot", "InvalidObject").await;

    // The readable binding turns unreadable (its status is garbled, as only
    // the operator's identity may write it): it leaves the cache, and the
    // sweep takes its access away.
    plane().kubectl_ok(
        "operator",
        &[
            "patch",
            "rolebindings.foureyes.dev",
            "turns-bad",
            "-n",
            &env.ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Bogus"}}"#,
        ],
        None,
    );
    wait_event(&env.ns, "turns-bad", "InvalidObject").await;
    eventually(
        "the unreadable grant's access removed",
        Duration::from_secs(20),
        || async { natives_of(&uid).await.is_empty().then_some(()) },
    )
    .await;
    assert!(
        !can("dave", "list", "pods", &tenant).await,
        "no access while unreadable"
    );

    // Everything else goes on: a new grant in the same workspace works, and
    // the revocation of another one takes effect.
    grant(&env, "alice", "still-works", dave.clone(), reader.clone(), "1h").await;
    wait_phase(&env, "still-works", BindingPhase::Active).await;
    assert!(can("dave", "list", "pods", &tenant).await);
    Api::<foureyes::api::RoleBinding>::namespaced(support::client("alice").await, &env.ns)
        .patch(
            "still-works",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "revocation": { "by": "alice", "reason": "done" } } })),
        )
        .await
        .expect("revoke");
    wait_phase(&env, "still-works", BindingPhase::Revoked).await;
    assert!(!can("dave", "list", "pods", &tenant).await);
}
