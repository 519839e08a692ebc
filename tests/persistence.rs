//! DESIGN §2, invariant 10 (SECURITY F5): a grant of a wide role (here the
//! built-in `admin`, which a platform team may map a project role to) lets
//! its holder create RoleBindings that outlive it. When the grant ends, the
//! operator finds what the holder created during it: deleted under the
//! workspace's `persistence: Revoke`, reported under `Report`; what others
//! created is left alone. This operator allows `admin`, so it runs in its
//! own test binary.

mod support;

use std::time::Duration;

use foureyes::api::{BindingPhase, Persistence};
use foureyes::audit::history::{Chain, read_chain};
use k8s_openapi::api::rbac::v1::RoleBinding as NativeBinding;
use kube::api::{Api, PostParams};
use serde_json::json;
use support::world::{events_for, grant, setup_without_operator, update_workspace, wait_phase};
use support::{OPERATOR_CONFIG, Operator, TestEnv, client, eventually, plane};

fn keep(name: &str, ns: &str, user: &str) -> NativeBinding {
    serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": { "name": name, "namespace": ns },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin" },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user }],
    }))
    .unwrap()
}

/// `user` (holding `admin` in `ns` through a grant) copies their access,
/// and tries to hide it: the label foureyes puts on its own, and another
/// creator written over the admission stamp.
async fn copy_access(user: &str, name: &str, ns: &str) {
    let api = Api::<NativeBinding>::namespaced(client(user).await, ns);
    let mut copy = keep(name, ns, user);
    copy.metadata.labels = Some([("app.kubernetes.io/managed-by".to_owned(), "foureyes".to_owned())].into());
    eventually(&format!("{user} creates {name}"), Duration::from_secs(20), || async {
        api.create(&PostParams::default(), &copy).await.ok().map(|_| ())
    })
    .await;
    let disguise = json!({ "metadata": { "annotations": { "foureyes.dev/created-by": "carol" } } });
    let stored = api
        .patch(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&disguise),
        )
        .await
        .unwrap();
    assert_eq!(
        stored.metadata.annotations.unwrap()["foureyes.dev/created-by"],
        user,
        "the stamp is kept"
    );
}

async fn exists(ns: &str, name: &str) -> bool {
    Api::<NativeBinding>::namespaced(client("admin").await, ns)
        .get_opt(name)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn access_a_grantee_made_for_themselves_is_removed_or_reported() {
    let config = format!(
        "{OPERATOR_CONFIG}roleMap: {{ reader: foureyes-view, user: foureyes-edit, admin: foureyes-admin, owner: admin }}\n"
    );
    let path = plane().dir.join("operator-config-persist.yaml");
    std::fs::write(&path, &config).unwrap();
    let rbac = std::process::Command::new(env!("CARGO_BIN_EXE_foureyes"))
        .args(["rbac", "--config"])
        .arg(&path)
        .output()
        .expect("foureyes rbac");
    assert!(rbac.status.success());
    plane().kubectl_ok(
        "admin",
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=foureyes-tests",
            "-f",
            "-",
        ],
        Some(&String::from_utf8_lossy(&rbac.stdout)),
    );
    let _operator = Operator::start_configured("persist", &config, &[], Some("caches synced; ready"));
    let env = TestEnv::new("persist").await;
    let tenant = setup_without_operator(&env, 1, 1).await;
    update_workspace(&env.name, json!({ "persistence": "Revoke" }), |ws| {
        ws.spec.persistence == Persistence::Revoke
    })
    .await;

    // dave holds admin for a few seconds and copies it; someone else's
    // RoleBinding in the same namespace is not his.
    grant(
        &env,
        "partner",
        "dave-owner",
        json!({"kind": "User", "name": "dave"}),
        json!({"project": "app", "projectRole": "owner"}),
        "12s",
    )
    .await;
    wait_phase(&env, "dave-owner", BindingPhase::Active).await;
    copy_access("dave", "keep", &tenant).await;
    Api::<NativeBinding>::namespaced(client("admin").await, &tenant)
        .create(&PostParams::default(), &keep("the-admins", &tenant, "carol"))
        .await
        .unwrap();
    wait_phase(&env, "dave-owner", BindingPhase::Expired).await;
    eventually("dave's copy deleted", Duration::from_secs(20), || async {
        (!exists(&tenant, "keep").await).then_some(())
    })
    .await;
    assert!(exists(&tenant, "the-admins").await, "someone else's is left alone");
    let admin = client("admin").await;
    let entry = eventually("the record", Duration::from_secs(20), || async {
        read_chain(&admin, &env.ns, &Chain::project("app"))
            .await
            .ok()?
            .into_iter()
            .find(|e| e.action == "PersistenceFound" && e.object.name == "dave-owner")
    })
    .await;
    assert!(entry.details.contains(&format!("{tenant}/keep")), "{}", entry.details);
    assert!(entry.details.contains("deleted"), "{}", entry.details);
    assert!(
        events_for(&env.ns, "dave-owner")
            .await
            .iter()
            .any(|r| r == "PersistenceRemoved")
    );

    // Under Report, erin's copy stays, and the Warning says so.
    update_workspace(&env.name, json!({ "persistence": "Report" }), |ws| {
        ws.spec.persistence == Persistence::Report
    })
    .await;
    grant(
        &env,
        "partner",
        "erin-owner",
        json!({"kind": "User", "name": "erin"}),
        json!({"project": "app", "projectRole": "owner"}),
        "10s",
    )
    .await;
    wait_phase(&env, "erin-owner", BindingPhase::Active).await;
    copy_access("erin", "erin-keep", &tenant).await;
    wait_phase(&env, "erin-owner", BindingPhase::Expired).await;
    eventually("the Warning", Duration::from_secs(20), || async {
        events_for(&env.ns, "erin-owner")
            .await
            .iter()
            .any(|r| r == "PersistenceFound")
            .then_some(())
    })
    .await;
    assert!(exists(&tenant, "erin-keep").await, "reported, not deleted");
}
