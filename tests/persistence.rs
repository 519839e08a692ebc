//! DESIGN §2, invariant 10 (SECURITY F5): a grant of a wide role (here the
//! built-in `admin` or `edit`, which a platform team may map a project role
//! to) lets its holder create access that outlives it: RoleBindings,
//! ServiceAccount token Secrets, tokens from the TokenRequest API. When the
//! grant ends, the operator finds the RoleBindings and token Secrets the
//! holder created during it: deleted under the workspace's
//! `persistence: Revoke`, reported under `Report`; what others created, and
//! other Secrets, are left alone. Tokens from the TokenRequest API are
//! bounded when they are minted. This operator allows `admin` and `edit`,
//! so it runs in its own test binary, shared by the tests here.

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use foureyes::api::{BindingPhase, Persistence};
use foureyes::audit::history::{Chain, read_chain};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding as NativeBinding;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use support::world::{events_for, grant, setup_without_operator, update_workspace, wait_phase};
use support::{OPERATOR_CONFIG, Operator, TestEnv, client, eventually, plane, refusal};

/// The operator of this binary, with project roles `owner` (the built-in
/// `admin`) and `editor` (the built-in `edit`), and its RBAC for them.
fn operator() {
    static OPERATOR: OnceLock<std::sync::Mutex<Operator>> = OnceLock::new();
    OPERATOR.get_or_init(|| {
        let config = format!(
            "{OPERATOR_CONFIG}roleMap: {{ reader: foureyes-view, user: foureyes-edit, admin: foureyes-admin, owner: admin, editor: edit }}\n"
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
        std::sync::Mutex::new(Operator::start_configured(
            "persist",
            &config,
            &[],
            Some("caches synced; ready"),
        ))
    });
}

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
    operator();
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
    assert!(
        entry.details.contains(&format!("RoleBinding {tenant}/keep")),
        "{}",
        entry.details
    );
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

/// A Secret of `type` in `ns`, for the ServiceAccount `robot` when it is a
/// token Secret.
fn secret(name: &str, ns: &str, type_: &str) -> Secret {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": name, "namespace": ns,
                      "annotations": { "kubernetes.io/service-account.name": "robot" } },
        "type": type_,
    }))
    .unwrap()
}

const TOKEN: &str = "kubernetes.io/service-account-token";

/// `user` creates a Secret in `ns` (retried while their grant's RBAC is
/// being put in place); returns it as stored.
async fn create_secret(user: &str, s: &Secret) -> Secret {
    let ns = s.metadata.namespace.clone().unwrap();
    let api = Api::<Secret>::namespaced(client(user).await, &ns);
    eventually(
        &format!("{user} creates {}", s.metadata.name.clone().unwrap()),
        Duration::from_secs(20),
        || async { api.create(&PostParams::default(), s).await.ok() },
    )
    .await
}

fn annotation(s: &Secret, key: &str) -> Option<String> {
    s.metadata.annotations.as_ref()?.get(key).cloned()
}

async fn secret_exists(ns: &str, name: &str) -> bool {
    Api::<Secret>::namespaced(client("admin").await, ns)
        .get_opt(name)
        .await
        .unwrap()
        .is_some()
}

/// The grantee of `edit` (which allows writing Secrets) creates a token
/// Secret for a ServiceAccount of the tenant namespace, a credential that
/// lasts as long as the Secret: the API server stamps them as its creator,
/// whatever they write over it, and at the grant's end it is deleted under
/// `Revoke`, reported and left under `Report`. Another Secret of theirs is
/// not stamped and is left alone, as is a token Secret someone else made.
#[tokio::test]
async fn token_secrets_a_grantee_made_are_removed_or_reported() {
    operator();
    let env = TestEnv::new("tokens").await;
    let tenant = setup_without_operator(&env, 1, 1).await;
    update_workspace(&env.name, json!({ "persistence": "Revoke" }), |ws| {
        ws.spec.persistence == Persistence::Revoke
    })
    .await;
    grant(
        &env,
        "partner",
        "dave-editor",
        json!({"kind": "User", "name": "dave"}),
        json!({"project": "app", "projectRole": "editor"}),
        "12s",
    )
    .await;
    wait_phase(&env, "dave-editor", BindingPhase::Active).await;
    let token = create_secret("dave", &secret("dave-token", &tenant, TOKEN)).await;
    assert_eq!(annotation(&token, "foureyes.dev/created-by").as_deref(), Some("dave"));
    assert!(
        annotation(&token, "foureyes.dev/created-by-groups").is_some_and(|g| g.contains("system:authenticated")),
        "{:?}",
        token.metadata.annotations
    );
    // He cannot write another creator over the stamp.
    let stored = Api::<Secret>::namespaced(client("dave").await, &tenant)
        .patch(
            "dave-token",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { "foureyes.dev/created-by": "carol" } } })),
        )
        .await
        .unwrap();
    assert_eq!(annotation(&stored, "foureyes.dev/created-by").as_deref(), Some("dave"));
    // Any other Secret is not the policy's business: not stamped, not touched.
    let other = create_secret("dave", &secret("dave-config", &tenant, "Opaque")).await;
    assert_eq!(annotation(&other, "foureyes.dev/created-by"), None, "not stamped");
    let theirs = create_secret("admin", &secret("robot-token", &tenant, TOKEN)).await;
    assert_eq!(annotation(&theirs, "foureyes.dev/created-by").as_deref(), Some("admin"));

    wait_phase(&env, "dave-editor", BindingPhase::Expired).await;
    eventually("dave's token Secret deleted", Duration::from_secs(20), || async {
        (!secret_exists(&tenant, "dave-token").await).then_some(())
    })
    .await;
    assert!(
        secret_exists(&tenant, "dave-config").await,
        "not a token Secret: left alone"
    );
    assert!(
        secret_exists(&tenant, "robot-token").await,
        "someone else's: left alone"
    );
    let admin = client("admin").await;
    let record = |name: &'static str| {
        let admin = admin.clone();
        let env_ns = env.ns.clone();
        async move {
            eventually("the record", Duration::from_secs(20), || async {
                read_chain(&admin, &env_ns, &Chain::project("app"))
                    .await
                    .ok()?
                    .into_iter()
                    .find(|e| e.action == "PersistenceFound" && e.object.name == name)
            })
            .await
        }
    };
    let entry = record("dave-editor").await;
    assert!(
        entry.details.contains(&format!("token Secret {tenant}/dave-token"))
            && entry.details.contains("deleted (persistence: Revoke)")
            && !entry.details.contains("dave-config")
            && !entry.details.contains("robot-token"),
        "{}",
        entry.details
    );
    assert!(
        events_for(&env.ns, "dave-editor")
            .await
            .iter()
            .any(|r| r == "PersistenceRemoved")
    );

    // Under Report, erin's token Secret stays, and the Warning says so.
    update_workspace(&env.name, json!({ "persistence": "Report" }), |ws| {
        ws.spec.persistence == Persistence::Report
    })
    .await;
    grant(
        &env,
        "partner",
        "erin-editor",
        json!({"kind": "User", "name": "erin"}),
        json!({"project": "app", "projectRole": "editor"}),
        "10s",
    )
    .await;
    wait_phase(&env, "erin-editor", BindingPhase::Active).await;
    create_secret("erin", &secret("erin-token", &tenant, TOKEN)).await;
    wait_phase(&env, "erin-editor", BindingPhase::Expired).await;
    eventually("the Warning", Duration::from_secs(20), || async {
        events_for(&env.ns, "erin-editor")
            .await
            .iter()
            .any(|r| r == "PersistenceFound")
            .then_some(())
    })
    .await;
    let entry = record("erin-editor").await;
    assert!(
        entry.details.contains(&format!("token Secret {tenant}/erin-token"))
            && entry.details.contains("left in place (persistence: Report)"),
        "{}",
        entry.details
    );
    assert!(secret_exists(&tenant, "erin-token").await, "reported, not deleted");
}

/// Asks for a token of the ServiceAccount `robot` in `ns` as `user`,
/// lasting `seconds` (the API server's default when `None`).
async fn token_request(user: &str, ns: &str, seconds: Option<i64>) -> Result<TokenRequest, String> {
    let api = Api::<ServiceAccount>::namespaced(client(user).await, ns);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: seconds,
            ..Default::default()
        }),
        ..Default::default()
    };
    api.create_token_request("robot", &PostParams::default(), &request)
        .await
        .map_err(refusal)
}

/// A token from the TokenRequest API is stored nowhere: the grantee of
/// `edit` (which allows `create` on `serviceaccounts/token`) may mint one
/// in a tenant namespace only for ten minutes at most, so that it cannot
/// outlive the grant by more. A cluster administrator may mint longer ones.
#[tokio::test]
async fn a_grantees_long_token_request_is_refused() {
    operator();
    let env = TestEnv::new("tokenreq").await;
    let tenant = setup_without_operator(&env, 1, 1).await;
    Api::<ServiceAccount>::namespaced(client("admin").await, &tenant)
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": { "name": "robot" } }),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    grant(
        &env,
        "partner",
        "dave-editor",
        json!({"kind": "User", "name": "dave"}),
        json!({"project": "app", "projectRole": "editor"}),
        "1h",
    )
    .await;
    wait_phase(&env, "dave-editor", BindingPhase::Active).await;
    // The ten-minute token, once his grant's RBAC is in place.
    let short = eventually("dave mints a 600 s token", Duration::from_secs(20), || async {
        token_request("dave", &tenant, Some(600)).await.ok()
    })
    .await;
    assert!(short.status.and_then(|s| s.token).is_some_and(|t| !t.is_empty()));
    // A year, an hour, and the API server's default: refused, saying why.
    for seconds in [Some(365 * 24 * 3600), Some(3600), Some(601), None] {
        let err = token_request("dave", &tenant, seconds).await.unwrap_err();
        assert!(
            err.contains("last at most 600 seconds") && err.contains("dave asked for"),
            "{seconds:?}: {err}"
        );
    }
    // A cluster administrator (who may lock people out, as partners do) is
    // not bounded.
    let long = token_request("admin", &tenant, Some(3600))
        .await
        .expect("the admin's hour");
    assert!(long.status.and_then(|s| s.token).is_some_and(|t| !t.is_empty()));
}
