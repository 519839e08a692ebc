//! The access engine on a real API server, acting as different users: roles
//! become native RBAC, and go away exactly at expiry (DESIGN §2, §3).

mod support;

use std::time::{Duration, Instant};

use foureyes::api::{BindingPhase, Project, RoleBinding, Workspace};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::RoleBinding as NativeBinding;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use support::world::{grant, natives_of, setup, wait_event, wait_phase};
use support::{TestEnv, can, client, eventually};

const SELECTOR: &str = "app.kubernetes.io/managed-by=foureyes,foureyes.dev/binding-uid";

#[tokio::test]
async fn a_manager_grant_turns_access_on_and_off_at_expiry() {
    let env = TestEnv::new("flip").await;
    let tenant = setup(&env, 1, 1).await;
    assert!(
        !can("dave", "create", "configmaps", &tenant).await,
        "no access before the grant"
    );
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
    let status = b.status.clone().unwrap();
    assert_eq!(status.role.as_deref(), Some("app/user"));
    assert_eq!(status.namespaces, vec![tenant.clone()]);
    assert!(
        can("dave", "create", "configmaps", &tenant).await,
        "access while the grant is active"
    );
    assert!(
        !can("dave", "create", "configmaps", &env.ns).await,
        "a project role does not reach the workspace namespace"
    );
    let expires = status.expires_at.unwrap();
    wait_event(&env.ns, "dave-user", "Granted").await;

    // Revoked at the expiry instant (a timer, not a poll).
    let b = wait_phase(&env, "dave-user", BindingPhase::Expired).await;
    let seen = chrono::Utc::now();
    assert!(
        !can("dave", "create", "configmaps", &tenant).await,
        "no access after the expiry"
    );
    assert!(natives_of(b.metadata.uid.as_deref().unwrap()).await.is_empty());
    let lag = (seen - expires).num_milliseconds();
    assert!(lag < 5_000, "revoked {lag} ms after expiry");
    assert_eq!(
        b.status.unwrap().finished_at,
        Some(expires),
        "expired at the expiry time"
    );
    wait_event(&env.ns, "dave-user", "Expired").await;
}

#[tokio::test]
async fn overlapping_grants_each_hold_until_their_own_expiry() {
    let env = TestEnv::new("overlap").await;
    let tenant = setup(&env, 1, 1).await;
    let dave = json!({"kind": "User", "name": "dave"});
    let role = json!({"project": "app", "projectRole": "reader"});
    grant(&env, "alice", "short", dave.clone(), role.clone(), "5s").await;
    grant(&env, "alice", "long", dave.clone(), role.clone(), "15s").await;
    let short = wait_phase(&env, "short", BindingPhase::Active).await;
    let long = wait_phase(&env, "long", BindingPhase::Active).await;
    let (a, b) = (
        natives_of(short.metadata.uid.as_deref().unwrap()).await,
        natives_of(long.metadata.uid.as_deref().unwrap()).await,
    );
    assert_eq!((a.len(), b.len()), (1, 1), "one native binding each");
    assert_ne!(a[0].metadata.name, b[0].metadata.name);
    wait_phase(&env, "short", BindingPhase::Expired).await;
    assert!(
        can("dave", "list", "pods", &tenant).await,
        "the longer grant still holds"
    );
    assert_eq!(natives_of(long.metadata.uid.as_deref().unwrap()).await.len(), 1);
    wait_phase(&env, "long", BindingPhase::Expired).await;
    assert!(!can("dave", "list", "pods", &tenant).await);
}

#[tokio::test]
async fn in_a_four_eyes_workspace_a_managers_direct_binding_stays_inactive() {
    let env = TestEnv::new("foureyes").await;
    let tenant = setup(&env, 1, 2).await;
    grant(
        &env,
        "alice",
        "dave-admin",
        json!({"kind": "User", "name": "dave"}),
        json!({"project": "app", "projectRole": "admin"}),
        "1h",
    )
    .await;
    let api = env.api::<RoleBinding>("admin").await;
    let b = eventually("a refusal", Duration::from_secs(20), || async {
        let b = api.get("dave-admin").await.ok()?;
        b.status
            .as_ref()?
            .conditions
            .iter()
            .any(|c| c.type_ == "Authorized" && c.reason == "NotAuthorized")
            .then_some(b)
    })
    .await;
    assert_eq!(b.status.as_ref().unwrap().phase, Some(BindingPhase::Pending));
    assert!(natives_of(b.metadata.uid.as_deref().unwrap()).await.is_empty());
    assert!(!can("dave", "create", "configmaps", &tenant).await);
    wait_event(&env.ns, "dave-admin", "NotAuthorized").await;
    // Someone who is not a manager gets nothing either, even for a workspace role.
    grant(
        &env,
        "bob",
        "bob-self",
        json!({"kind": "User", "name": "bob"}),
        json!({"workspaceRole": "manager"}),
        "1h",
    )
    .await;
    wait_event(&env.ns, "bob-self", "NotAuthorized").await;
    let bob = env.api::<RoleBinding>("admin").await.get("bob-self").await.unwrap();
    assert!(natives_of(bob.metadata.uid.as_deref().unwrap()).await.is_empty());
    assert!(
        !can("bob", "list", "configmaps", &env.ns).await,
        "bob did not become manager"
    );
    // A partner's direct grant is break-glass and takes effect.
    grant(
        &env,
        "partner",
        "dave-admin-bg",
        json!({"kind": "User", "name": "dave"}),
        json!({"project": "app", "projectRole": "admin"}),
        "1h",
    )
    .await;
    wait_phase(&env, "dave-admin-bg", BindingPhase::Active).await;
    assert!(can("dave", "create", "configmaps", &tenant).await);
}

#[tokio::test]
async fn a_role_outside_the_allow_list_is_refused() {
    let env = TestEnv::new("allow").await;
    let tenant = setup(&env, 1, 1).await;
    grant(
        &env,
        "alice",
        "root",
        json!({"kind": "User", "name": "dave"}),
        json!({"project": "app", "projectRole": "root"}),
        "1h",
    )
    .await;
    wait_event(&env.ns, "root", "RoleNotAllowed").await;
    grant(
        &env,
        "alice",
        "unknown",
        json!({"kind": "User", "name": "dave"}),
        json!({"project": "app", "projectRole": "wizard"}),
        "1h",
    )
    .await;
    wait_event(&env.ns, "unknown", "UnknownRole").await;
    assert!(!can("dave", "delete", "nodes", "").await);
    assert!(!can("dave", "get", "pods", &tenant).await);
    let b = env.api::<RoleBinding>("admin").await.get("root").await.unwrap();
    assert_eq!(b.status.unwrap().phase, Some(BindingPhase::Pending));
}

#[tokio::test]
async fn a_project_cannot_claim_system_or_foreign_namespaces() {
    let env = TestEnv::new("claim").await;
    let tenant = setup(&env, 1, 1).await;
    let projects = env.api::<Project>("partner").await;
    // A namespace protected by the configuration (kube-* and default are refused at admission).
    let protected: Project = serde_json::from_value(json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "Project",
        "metadata": { "name": "sneaky", "namespace": env.ns },
        "spec": { "namespaces": ["foureyes-system", tenant, env.ns, "foureyes-probe"] },
    }))
    .unwrap();
    projects.create(&PostParams::default(), &protected).await.unwrap();
    let admin_projects = env.api::<Project>("admin").await;
    let p = eventually("refusal", Duration::from_secs(20), || async {
        let p = admin_projects.get("sneaky").await.ok()?;
        let ready = p
            .status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")?
            .clone();
        // Other claimants' namespaces among them: `NamespaceTaken`.
        (ready.reason == "NamespaceTaken").then_some((p, ready))
    })
    .await;
    let msg = &p.1.message;
    assert!(msg.contains("foureyes-system is a protected system namespace"), "{msg}");
    assert!(msg.contains(&format!("{tenant} belongs to project app")), "{msg}");
    assert!(msg.contains("control namespace of workspace"), "{msg}");
    assert!(msg.contains("foureyes-probe exists and does not carry"), "{msg}");
    assert!(p.0.status.unwrap().namespaces.is_empty(), "nothing claimed");
    wait_event(&env.ns, "sneaky", "NamespaceTaken").await;
    // kube-system is refused before it is even stored.
    let mut ks = protected.clone();
    ks.metadata.name = Some("kube".into());
    ks.spec.namespaces = vec!["kube-system".into()];
    let err = projects.create(&PostParams::default(), &ks).await.unwrap_err();
    assert!(support::refusal(err).contains("system namespaces"));
    // The other project's namespace kept its owner's labels.
    let ns = Api::<Namespace>::all(client("admin").await).get(&tenant).await.unwrap();
    assert_eq!(ns.metadata.labels.unwrap()["foureyes.dev/project"], "app");
}

#[tokio::test]
async fn deleting_a_binding_a_project_or_a_workspace_leaves_no_native_rbac() {
    let env = TestEnv::new("cleanup").await;
    let tenant = setup(&env, 1, 1).await;
    let dave = json!({"kind": "User", "name": "dave"});
    grant(
        &env,
        "alice",
        "one",
        dave.clone(),
        json!({"project": "app", "projectRole": "reader"}),
        "1h",
    )
    .await;
    grant(
        &env,
        "alice",
        "two",
        dave.clone(),
        json!({"project": "app", "projectRole": "user"}),
        "1h",
    )
    .await;
    grant(
        &env,
        "alice",
        "three",
        dave.clone(),
        json!({"workspaceRole": "member"}),
        "1h",
    )
    .await;
    let one = wait_phase(&env, "one", BindingPhase::Active).await;
    let two = wait_phase(&env, "two", BindingPhase::Active).await;
    let three = wait_phase(&env, "three", BindingPhase::Active).await;
    let bindings = env.api::<RoleBinding>("alice").await;

    // A binding.
    bindings.delete("one", &DeleteParams::default()).await.unwrap();
    let uid = one.metadata.uid.clone().unwrap();
    eventually("binding one gone", Duration::from_secs(20), || async {
        let gone = bindings.get_opt("one").await.ok()?.is_none();
        (gone && natives_of(&uid).await.is_empty()).then_some(())
    })
    .await;
    assert!(
        can("dave", "create", "configmaps", &tenant).await,
        "binding two still grants"
    );

    // A project: its tenant namespace's grants go, and the namespace it created is deleted.
    env.api::<Project>("partner")
        .await
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    let uid_two = two.metadata.uid.clone().unwrap();
    eventually("project grants gone", Duration::from_secs(20), || async {
        natives_of(&uid_two).await.is_empty().then_some(())
    })
    .await;
    assert!(!can("dave", "create", "configmaps", &tenant).await);
    // The binding may end (its project is going) before the project's own
    // cleanup reaches the namespace: wait for that.
    let namespaces = Api::<Namespace>::all(client("admin").await);
    eventually(
        "the namespace the project created is being deleted",
        Duration::from_secs(20),
        || async {
            let ns = namespaces.get_opt(&tenant).await.ok()?;
            ns.is_none_or(|n| n.metadata.deletion_timestamp.is_some()).then_some(())
        },
    )
    .await;

    // A workspace: everything it granted is revoked; its namespace stays.
    assert!(
        can("alice", "list", "configmaps", &env.ns).await,
        "alice is manager (reads the history)"
    );
    assert!(can("dave", "list", "configmaps", &env.ns).await, "dave is member");
    Api::<Workspace>::all(client("partner").await)
        .delete(&env.name, &DeleteParams::default())
        .await
        .unwrap();
    let uid_three = three.metadata.uid.clone().unwrap();
    eventually("workspace grants gone", Duration::from_secs(20), || async {
        let ws_gone = Api::<Workspace>::all(client("admin").await)
            .get_opt(&env.name)
            .await
            .ok()?
            .is_none();
        (ws_gone && natives_of(&uid_three).await.is_empty()).then_some(())
    })
    .await;
    let left = Api::<NativeBinding>::all(client("admin").await)
        .list(&ListParams::default().labels(&format!("{SELECTOR},foureyes.dev/workspace={}", env.name)))
        .await
        .unwrap();
    assert!(
        left.items.is_empty(),
        "no native RBAC of the workspace left: {:?}",
        left.items.iter().map(|i| &i.metadata.name).collect::<Vec<_>>()
    );
    assert!(
        !can("alice", "list", "configmaps", &env.ns).await,
        "alice's manager role went with the workspace"
    );
    let ns = Api::<Namespace>::all(client("admin").await).get(&env.ns).await.unwrap();
    assert!(
        ns.metadata.deletion_timestamp.is_none(),
        "the workspace namespace stays for the auditors"
    );
}

#[tokio::test]
async fn edited_native_rbac_of_an_active_grant_is_put_back() {
    let env = TestEnv::new("drift").await;
    let tenant = setup(&env, 1, 1).await;
    grant(
        &env,
        "alice",
        "dave-user",
        json!({"kind": "User", "name": "dave"}),
        json!({"project": "app", "projectRole": "user"}),
        "1h",
    )
    .await;
    let b = wait_phase(&env, "dave-user", BindingPhase::Active).await;
    let uid = b.metadata.uid.clone().unwrap();
    let native = natives_of(&uid).await.remove(0);
    let api = Api::<NativeBinding>::namespaced(client("admin").await, &tenant);
    api.delete(native.metadata.name.as_deref().unwrap(), &DeleteParams::default())
        .await
        .unwrap();
    eventually("native binding restored", Duration::from_secs(20), || async {
        (natives_of(&uid).await.len() == 1).then_some(())
    })
    .await;
    wait_event(&env.ns, "dave-user", "DriftCorrected").await;
    // An edit that swaps the subject is reverted too.
    let mut edited = natives_of(&uid).await.remove(0);
    edited.subjects.as_mut().unwrap()[0].name = "mallory".into();
    edited.metadata.managed_fields = None;
    api.replace(
        edited.metadata.name.as_deref().unwrap(),
        &PostParams::default(),
        &edited,
    )
    .await
    .unwrap();
    eventually("subject restored", Duration::from_secs(20), || async {
        let n = natives_of(&uid).await.pop()?;
        (n.subjects?[0].name == "dave").then_some(())
    })
    .await;
    assert!(!can("mallory", "create", "configmaps", &tenant).await);
    assert!(can("dave", "create", "configmaps", &tenant).await);
}

#[tokio::test]
async fn the_sweep_removes_native_rbac_without_a_live_owner() {
    let env = TestEnv::new("sweep").await;
    let tenant = setup(&env, 1, 1).await;
    let orphan: NativeBinding = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {
            "name": "foureyes.orphan.000000000000", "namespace": tenant,
            "labels": { "app.kubernetes.io/managed-by": "foureyes", "foureyes.dev/binding-uid": "00000000-dead-beef-0000-000000000000",
                        "foureyes.dev/workspace": env.name },
            "annotations": { "foureyes.dev/binding-ref": format!("{}/vanished", env.ns), "foureyes.dev/expires-at": "2099-01-01T00:00:00Z" },
        },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view" },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory" }],
    }))
    .unwrap();
    let api = Api::<NativeBinding>::namespaced(client("admin").await, &tenant);
    api.create(&PostParams::default(), &orphan).await.unwrap();
    let started = Instant::now();
    eventually("orphan swept", Duration::from_secs(20), || async {
        api.get_opt("foureyes.orphan.000000000000")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    eprintln!("orphan swept after {:?}", started.elapsed());
    assert!(!can("mallory", "get", "pods", &tenant).await);
}

#[tokio::test]
async fn a_subject_with_an_email_name_and_a_long_binding_name_works() {
    let env = TestEnv::new("email").await;
    let tenant = setup(&env, 1, 1).await;
    let user = "first.middle.last-with-a-rather-long-surname@departments.example.com";
    let name = format!("emergency-{}", "x".repeat(180));
    grant(
        &env,
        "alice",
        &name,
        json!({"kind": "User", "name": user}),
        json!({"project": "app", "projectRole": "reader"}),
        "1h",
    )
    .await;
    let b = wait_phase(&env, &name, BindingPhase::Active).await;
    let natives = natives_of(b.metadata.uid.as_deref().unwrap()).await;
    assert_eq!(natives.len(), 1);
    let labels = natives[0].metadata.labels.clone().unwrap();
    assert!(labels.values().all(|v| v.len() <= 63 && !v.contains('@')), "{labels:?}");
    assert!(can(user, "list", "pods", &tenant).await);
    // A group subject works the same way.
    grant(
        &env,
        "alice",
        "oncall-group",
        json!({"kind": "Group", "name": "oncall@example.com"}),
        json!({"project": "app", "projectRole": "reader"}),
        "1h",
    )
    .await;
    wait_phase(&env, "oncall-group", BindingPhase::Active).await;
}

#[tokio::test]
async fn revocation_takes_effect_at_once_and_keeps_the_record() {
    let env = TestEnv::new("revoke").await;
    let tenant = setup(&env, 1, 1).await;
    grant(
        &env,
        "alice",
        "dave-user",
        json!({"kind": "User", "name": "dave"}),
        json!({"project": "app", "projectRole": "user"}),
        "1h",
    )
    .await;
    wait_phase(&env, "dave-user", BindingPhase::Active).await;
    assert!(can("dave", "create", "configmaps", &tenant).await);
    let api = env.api::<RoleBinding>("alice").await;
    let mut b = api.get("dave-user").await.unwrap();
    b.spec.revocation = Some(foureyes::api::Revocation {
        by: "alice".into(),
        reason: "laptop stolen".into(),
    });
    b.metadata.managed_fields = None;
    api.replace("dave-user", &PostParams::default(), &b).await.unwrap();
    let b = wait_phase(&env, "dave-user", BindingPhase::Revoked).await;
    assert!(!can("dave", "create", "configmaps", &tenant).await);
    assert!(natives_of(b.metadata.uid.as_deref().unwrap()).await.is_empty());
    wait_event(&env.ns, "dave-user", "Revoked").await;
}

#[tokio::test]
async fn changes_to_a_workspace_or_a_project_reach_their_bindings() {
    let env = TestEnv::new("relay").await;
    let tenant = setup(&env, 1, 2).await;
    grant(
        &env,
        "alice",
        "dave-admin",
        json!({"kind": "User", "name": "dave"}),
        json!({"project": "app", "projectRole": "admin"}),
        "1h",
    )
    .await;
    wait_event(&env.ns, "dave-admin", "NotAuthorized").await;
    assert!(!can("dave", "create", "configmaps", &tenant).await);

    // The workspace's policy now lets one manager grant project roles: the
    // waiting binding is decided again and becomes active.
    let patch = kube::api::Patch::Merge(json!({ "spec": { "approvalPolicy": { "projectRoleApprovals": 1 } } }));
    Api::<Workspace>::all(client("partner").await)
        .patch(&env.name, &kube::api::PatchParams::default(), &patch)
        .await
        .unwrap();
    let b = wait_phase(&env, "dave-admin", BindingPhase::Active).await;
    assert!(can("dave", "create", "configmaps", &tenant).await);

    // The project moves to another namespace: the grant follows it.
    let extra = format!("{}-extra", env.name);
    let patch = kube::api::Patch::Merge(json!({ "spec": { "namespaces": [extra] } }));
    env.api::<Project>("partner")
        .await
        .patch("app", &kube::api::PatchParams::default(), &patch)
        .await
        .unwrap();
    eventually("the grant follows the project", Duration::from_secs(30), || async {
        (can("dave", "create", "configmaps", &extra).await && !can("dave", "create", "configmaps", &tenant).await)
            .then_some(())
    })
    .await;
    let natives = natives_of(b.metadata.uid.as_deref().unwrap()).await;
    assert_eq!(
        natives
            .iter()
            .map(|n| n.metadata.namespace.clone().unwrap())
            .collect::<Vec<_>>(),
        vec![extra]
    );
}

/// Invariant 5, from the API server's side: acting as the operator's
/// identity (its RBAC as `foureyes rbac` prints it), native RBAC can bind the
/// workspace Roles it writes and the allowed ClusterRoles, and nothing wider.
#[tokio::test]
async fn the_operators_rbac_binds_only_what_it_may_grant() {
    use k8s_openapi::api::rbac::v1::Role;
    let env = TestEnv::new("operator-rbac").await;
    let admin = client("admin").await;
    let operator = client("operator").await;
    // A Role the operator did not write, wider than what it holds.
    let wider: Role = serde_json::from_value(json!({
        "metadata": { "name": "wider", "namespace": env.ns },
        "rules": [{ "apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"] }],
    }))
    .unwrap();
    Api::<Role>::namespaced(admin, &env.ns)
        .create(&PostParams::default(), &wider)
        .await
        .unwrap();
    let bind = |name: &str, kind: &str, role: &str| -> NativeBinding {
        serde_json::from_value(json!({
            "metadata": { "name": name, "namespace": env.ns },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role },
            "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory" }],
        }))
        .unwrap()
    };
    let natives = Api::<NativeBinding>::namespaced(operator.clone(), &env.ns);
    // The built-in edit is not an allowed ClusterRole any more (by default).
    for (kind, role) in [
        ("ClusterRole", "cluster-admin"),
        ("ClusterRole", "edit"),
        ("Role", "wider"),
    ] {
        match natives
            .create(&PostParams::default(), &bind(&format!("to-{role}"), kind, role))
            .await
        {
            Err(kube::Error::Api(e)) => assert_eq!(e.code, 403, "binding {kind} {role}: {e:?}"),
            other => panic!("the operator bound {kind} {role}: {other:?}"),
        }
    }
    // Nor can it write itself a wider Role to bind.
    let mut own = wider.clone();
    own.metadata.name = Some("foureyes-member".into());
    match Api::<Role>::namespaced(operator, &env.ns)
        .create(&PostParams::default(), &own)
        .await
    {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 403, "{e:?}"),
        other => panic!("the operator wrote a Role wider than its own: {other:?}"),
    }
    // What it does: bind an allowed ClusterRole.
    natives
        .create(&PostParams::default(), &bind("to-view", "ClusterRole", "foureyes-view"))
        .await
        .expect("the operator binds an allowed ClusterRole");
    assert!(!can("mallory", "get", "secrets", &env.ns).await);
}

/// A workspace Role edited by someone else is put back: at the workspace's
/// next reconcile once a sweep interval (2 s here) has passed since the
/// operator last found it in place.
#[tokio::test]
async fn an_edited_workspace_role_is_put_back() {
    use k8s_openapi::api::rbac::v1::Role;
    let env = TestEnv::new("role-drift").await;
    setup(&env, 1, 1).await;
    let roles = Api::<Role>::namespaced(client("admin").await, &env.ns);
    let want = foureyes::rbac::workspace_roles(&env.name, &env.ns)
        .into_iter()
        .find(|r| r.metadata.name.as_deref() == Some("foureyes-member"))
        .unwrap()
        .rules;
    let member_role_in_place = |what: &'static str| {
        let (roles, want) = (roles.clone(), want.clone());
        eventually(what, Duration::from_secs(20), move || {
            let (roles, want) = (roles.clone(), want.clone());
            async move {
                let role = roles.get_opt("foureyes-member").await.unwrap()?;
                (role.rules == want).then_some(())
            }
        })
    };
    member_role_in_place("the member Role").await;
    let patch = kube::api::Patch::Merge(json!({ "rules": [] }));
    roles
        .patch("foureyes-member", &kube::api::PatchParams::default(), &patch)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Any change the workspace sees (here a new member) reconciles it.
    grant(
        &env,
        "alice",
        "erin-member",
        json!({"kind": "User", "name": "erin"}),
        json!({"workspaceRole": "member"}),
        "1h",
    )
    .await;
    wait_phase(&env, "erin-member", BindingPhase::Active).await;
    member_role_in_place("the member Role put back").await;
}

/// A grant whose native RoleBinding was made for another ClusterRole (the
/// role map changed before the grant's ClusterRole was fixed in its status,
/// as for grants made before an upgrade) gets its native binding replaced:
/// a roleRef cannot change, and the apply must not fail forever while the
/// old role stays granted.
#[tokio::test]
async fn a_native_binding_of_another_role_is_replaced() {
    use kube::api::{Patch, PatchParams};
    let env = TestEnv::new("reref").await;
    let tenant = setup(&env, 1, 1).await;
    grant(
        &env,
        "partner",
        "dave-reader",
        json!({"kind": "User", "name": "dave"}),
        json!({"project": "app", "projectRole": "reader"}),
        "1h",
    )
    .await;
    let b = wait_phase(&env, "dave-reader", BindingPhase::Active).await;
    let uid = b.metadata.uid.clone().unwrap();
    assert!(
        natives_of(&uid)
            .await
            .iter()
            .all(|n| n.role_ref.name == "foureyes-view")
    );
    assert!(!can("dave", "create", "configmaps", &tenant).await);
    env.api::<Project>("partner")
        .await
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "roleMap": { "reader": "foureyes-edit" } } })),
        )
        .await
        .unwrap();
    // The status of an older operator, which fixed no ClusterRole.
    env.api::<RoleBinding>("operator")
        .await
        .patch_status(
            "dave-reader",
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "clusterRole": null } })),
        )
        .await
        .unwrap();
    eventually("the native binding replaced", Duration::from_secs(20), || async {
        let natives = natives_of(&uid).await;
        (!natives.is_empty() && natives.iter().all(|n| n.role_ref.name == "foureyes-edit")).then_some(())
    })
    .await;
    assert!(can("dave", "create", "configmaps", &tenant).await);
}

/// Bindings granted by someone who has only just become a manager take
/// effect: those waiting when the manager's binding turns Active, and those
/// created the moment the manager sees it Active (before the operator's cache
/// may show it). Whatever refused them on a cache without the manager, the
/// cache's news of the manager wakes them again.
#[tokio::test]
async fn grants_by_a_manager_who_just_became_one_take_effect() {
    let env = TestEnv::new("newmgr").await;
    setup(&env, 1, 1).await;
    let dave = || json!({"kind": "User", "name": "dave"});
    let reader = || json!({"project": "app", "projectRole": "reader"});
    for i in 0..10 {
        grant(&env, "carol", &format!("early-{i}"), dave(), reader(), "1h").await;
    }
    for i in 0..10 {
        support::world::wait_condition(&env, &format!("early-{i}"), "Authorized", "NotAuthorized").await;
    }
    grant(
        &env,
        "partner",
        "manager-carol",
        json!({"kind": "User", "name": "carol"}),
        json!({"workspaceRole": "manager"}),
        "1h",
    )
    .await;
    // Carol sees her binding Active as soon as the API server has it.
    let api = env.api::<RoleBinding>("carol").await;
    eventually("carol's binding Active", Duration::from_secs(30), || async {
        let b = api.get("manager-carol").await.ok()?;
        (b.status?.phase == Some(BindingPhase::Active)).then_some(())
    })
    .await;
    let late: Vec<String> = (0..10).map(|i| format!("late-{i}")).collect();
    futures::future::join_all(
        late.iter()
            .map(|name| grant(&env, "carol", name, dave(), reader(), "1h")),
    )
    .await;
    let names: Vec<String> = (0..10).map(|i| format!("early-{i}")).chain(late).collect();
    let admin = env.api::<RoleBinding>("admin").await;
    eventually("every grant by carol Active", Duration::from_secs(15), || async {
        let mut pending = vec![];
        for name in &names {
            let b = admin.get(name).await.ok()?;
            if b.status.and_then(|s| s.phase) != Some(BindingPhase::Active) {
                pending.push(name.clone());
            }
        }
        if !pending.is_empty() {
            eprintln!("not active yet: {pending:?}");
        }
        pending.is_empty().then_some(())
    })
    .await;
}

/// The workspace's own objects are watched: an edited Role or a deleted
/// auditor binding is put back at once, with nothing else happening in the
/// workspace.
#[tokio::test]
async fn the_workspace_objects_are_put_back_as_soon_as_they_change() {
    use k8s_openapi::api::rbac::v1::Role;
    let env = TestEnv::new("ws-watch").await;
    setup(&env, 1, 1).await;
    let roles = Api::<Role>::namespaced(client("admin").await, &env.ns);
    let natives = Api::<NativeBinding>::namespaced(client("admin").await, &env.ns);
    let patch = kube::api::Patch::Merge(json!({ "rules": [] }));
    roles
        .patch("foureyes-member", &kube::api::PatchParams::default(), &patch)
        .await
        .unwrap();
    natives
        .delete("foureyes-auditor", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the member Role and the auditor binding put back",
        Duration::from_secs(8),
        || async {
            let role = roles.get_opt("foureyes-member").await.ok()??;
            let auditors = natives.get_opt("foureyes-auditor").await.ok()??;
            (role.rules.is_some_and(|r| !r.is_empty()) && auditors.subjects.is_some()).then_some(())
        },
    )
    .await;
}
