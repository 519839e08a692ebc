//! Attacks on the invariants of DESIGN §2, performed on a real API server as
//! the attacker's identity (a static token, or impersonation from the admin
//! where the attack needs a group), each asserting that it fails. Each test
//! names the finding of the security review it proves closed.

mod support;

use std::time::Duration;

use foureyes::api::{BindingPhase, IgnoreReason, RequestPhase, RoleBinding, RoleRequest, Workspace};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{Role as NativeRole, RoleBinding as NativeBinding};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use serde_json::json;
use support::world::{
    events_for, grant, ignored, more_managers, natives_of, phase, setup, update_workspace, vote_as, wait_condition,
    wait_phase, wait_request,
};
use support::{TestEnv, client, client_as, create_json, eventually, plane, refusal};

/// A request for `subject`, project role `reader` in `app`, filed through
/// `api` (whose caller must be `requester`).
fn request_json(env: &TestEnv, name: &str, subject: serde_json::Value, requester: &str) -> serde_json::Value {
    json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
        "metadata": { "name": name, "namespace": env.ns },
        "spec": {
            "subject": subject, "project": "app", "projectRole": "reader",
            "duration": "1h", "justification": "INC-42", "requester": requester,
        },
    })
}

fn dynamic<K: kube::Resource<DynamicType = ()>>(c: kube::Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(c, ns, &ApiResource::erase::<K>(&()))
}

/// Appends `vote` to the request through `api`; returns the refusal if any.
async fn append_vote(api: &Api<DynamicObject>, name: &str, vote: serde_json::Value) -> Result<(), String> {
    for _ in 0..10 {
        let mut r = api.get(name).await.map_err(refusal)?;
        r.data["spec"]["approvals"]
            .as_array_mut()
            .expect("approvals")
            .push(vote.clone());
        match api.replace(name, &PostParams::default(), &r).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(refusal(e)),
        }
    }
    Err("conflict after 10 attempts".into())
}

fn approved_by(r: &RoleRequest) -> Vec<String> {
    r.status.as_ref().map(|s| s.approved_by.clone()).unwrap_or_default()
}

/// F2: a manager who asks for a role for a group she is in does not count
/// as its first approval: one other manager is not four eyes.
#[tokio::test]
async fn f2_a_requester_in_the_subject_group_does_not_count() {
    let env = TestEnv::new("sec-f2").await;
    setup(&env, 2, 2).await;
    more_managers(&env, &["bob"]).await;
    let group = format!("{}-oncall", env.name);
    let alice = client_as("alice", &[&group]).await;
    let body = request_json(&env, "for-my-group", json!({"kind": "Group", "name": group}), "alice");
    create_json(&dynamic::<RoleRequest>(alice, &env.ns), body)
        .await
        .expect("alice files the request");
    vote_as(&env, "bob", "bob", "for-my-group", "Approve").await.unwrap();
    let r = wait_request(&env, "for-my-group", "bob's approval counted", |r| {
        approved_by(r).contains(&"bob".to_owned())
    })
    .await;
    assert_eq!(approved_by(&r), vec!["bob"], "alice is in the subject group");
    assert_eq!(phase(&r), Some(RequestPhase::Pending));
    let binding = env
        .api::<RoleBinding>("admin")
        .await
        .get_opt("for-my-group")
        .await
        .unwrap();
    assert!(binding.is_none(), "no access from one independent approval");
}

/// F3, F15: re-appending someone else's vote is refused at admission (the
/// copy would carry the copier's stamp); a vote in another's name by a
/// trusted asserter never counts for a group subject; the same vote twice is
/// refused.
#[tokio::test]
async fn f3_a_copied_vote_adds_nothing() {
    let env = TestEnv::new("sec-f3").await;
    setup(&env, 2, 2).await;
    more_managers(&env, &["bob", "carol"]).await;
    let group = format!("{}-oncall", env.name);
    let body = request_json(&env, "grp", json!({"kind": "Group", "name": group}), "erin");
    create_json(&env.dynamic::<RoleRequest>("erin").await, body)
        .await
        .unwrap();
    // bob, a manager in the subject group, approves: ignored as the subject.
    let bob = dynamic::<RoleRequest>(client_as("bob", &[&group]).await, &env.ns);
    append_vote(&bob, "grp", json!({"user": "bob", "decision": "Approve"}))
        .await
        .unwrap();
    wait_request(&env, "grp", "bob ignored", |r| {
        ignored(r).contains(&("bob".into(), IgnoreReason::IsSubject))
    })
    .await;
    // carol copies bob's vote: refused (it is not hers, and not new).
    let carol = env.dynamic::<RoleRequest>("carol").await;
    let copy = append_vote(&carol, "grp", json!({"user": "bob", "decision": "Approve"})).await;
    let err = copy.expect_err("a copy of bob's vote must be refused");
    assert!(
        err.contains("must name you") || err.contains("cannot appear twice"),
        "{err}"
    );
    // The GitOps asserter may write votes in others' names, but for a group
    // subject such a vote's author may be in the group: it does not count.
    let gitops = env.dynamic::<RoleRequest>("gitops").await;
    append_vote(
        &gitops,
        "grp",
        json!({"user": "bob", "decision": "Approve", "comment": "from Git"}),
    )
    .await
    .unwrap();
    let r = wait_request(&env, "grp", "the asserted vote ignored", |r| {
        ignored(r).contains(&("bob".into(), IgnoreReason::Unverified))
    })
    .await;
    assert!(approved_by(&r).is_empty(), "{:?}", r.status);
    assert_eq!(phase(&r), Some(RequestPhase::Pending));
    // F15: the same vote twice, even one's own, is refused.
    let twice = json!({"user": "erin", "decision": "Approve", "comment": "x"});
    let mut body = request_json(&env, "twice", json!({"kind": "User", "name": "dave"}), "erin");
    body["spec"]["approvals"] = json!([twice, twice]);
    let err = create_json(&env.dynamic::<RoleRequest>("erin").await, body)
        .await
        .expect_err("duplicate votes must be refused");
    assert!(err.contains("cannot appear twice"), "{err}");
}

/// F11: a ServiceAccount is never a manager (everyone who can mint its
/// tokens would vote as it), and a partner restricted from self-assignment
/// cannot make a group they are in manager.
#[tokio::test]
async fn f11_no_service_account_managers_and_no_self_assignment_through_a_group() {
    let env = TestEnv::new("sec-f11").await;
    setup(&env, 1, 1).await;
    let sa = json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
        "metadata": { "name": "bot-manager", "namespace": env.ns },
        "spec": {
            "subject": { "kind": "User", "name": "system:serviceaccount:team-ci:bot" },
            "workspaceRole": "manager", "duration": "1h", "justification": "x", "grantedBy": "partner",
        },
    });
    let err = create_json(&env.dynamic::<RoleBinding>("partner").await, sa)
        .await
        .expect_err("an SA manager must be refused");
    assert!(err.contains("ServiceAccount cannot be a workspace manager"), "{err}");

    update_workspace(&env.name, json!({ "restrictPartnerSelfAssignment": true }), |ws| {
        ws.spec.restrict_partner_self_assignment
    })
    .await;
    // "partner" authenticates with the group foureyes:partners.
    grant(
        &env,
        "partner",
        "partners-manage",
        json!({"kind": "Group", "name": "foureyes:partners"}),
        json!({"workspaceRole": "manager"}),
        "1h",
    )
    .await;
    let b = wait_condition(&env, "partners-manage", "Authorized", "PartnerSelfAssignmentRestricted").await;
    assert_eq!(b.status.unwrap().phase, Some(BindingPhase::Pending));
    assert!(natives_of(b.metadata.uid.as_deref().unwrap()).await.is_empty());
}

/// F14: a group whose name carries a stamp separator cannot smuggle a
/// partner group into the creator stamp, and such names cannot be subjects.
#[tokio::test]
async fn f14_separators_in_group_names_forge_nothing() {
    let env = TestEnv::new("sec-f14").await;
    setup(&env, 2, 2).await;
    let alice = client_as("alice", &["cn=ops,foureyes:partners"]).await;
    let body = json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
        "metadata": { "name": "smuggled", "namespace": env.ns },
        "spec": {
            "subject": { "kind": "User", "name": "alice" }, "project": "app", "projectRole": "admin",
            "duration": "1h", "justification": "x", "grantedBy": "alice",
        },
    });
    let stored = create_json(&dynamic::<RoleBinding>(alice, &env.ns), body)
        .await
        .unwrap();
    let groups = stored.metadata.annotations.unwrap()["foureyes.dev/created-by-groups"].clone();
    assert!(!groups.contains("foureyes:partners"), "{groups}");
    let b = wait_condition(&env, "smuggled", "Authorized", "NotAuthorized").await;
    assert!(natives_of(b.metadata.uid.as_deref().unwrap()).await.is_empty());
    let body = request_json(&env, "comma", json!({"kind": "Group", "name": "a,b"}), "erin");
    let err = create_json(&env.dynamic::<RoleRequest>("erin").await, body)
        .await
        .expect_err("a subject with a comma must be refused");
    assert!(err.contains("commas"), "{err}");
}

/// F16: times that the API server's date-time check alone would accept but
/// no RFC 3339 parser reads are refused, so no vote can make a request
/// unreadable to the operator.
#[tokio::test]
async fn f16_unreadable_times_are_refused() {
    let env = TestEnv::new("sec-f16").await;
    // The API server's own date-time check accepts the first two; the
    // pattern refuses them (the third, an impossible date, it refused before).
    for time in [
        "2026-01-01T00:00:00x1Z",
        "2026-01-01T00:00:00Ztanything",
        "2026-02-31T00:00:00Z",
    ] {
        let mut body = request_json(&env, "odd-time", json!({"kind": "User", "name": "dave"}), "erin");
        body["spec"]["approvals"] = json!([{ "user": "erin", "decision": "Approve", "time": time }]);
        let err = create_json(&env.dynamic::<RoleRequest>("erin").await, body)
            .await
            .expect_err(time);
        assert!(err.contains("spec.approvals[0].time"), "{time}: {err}");
    }
    let binding = json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
        "metadata": { "name": "odd-expiry", "namespace": env.ns },
        "spec": {
            "subject": { "kind": "User", "name": "dave" }, "workspaceRole": "member",
            "expiresAt": "2099-01-01T00:00:00x1Z", "justification": "x", "grantedBy": "alice",
        },
    });
    let err = create_json(&env.dynamic::<RoleBinding>("alice").await, binding)
        .await
        .expect_err("odd expiresAt");
    assert!(err.contains("spec.expiresAt in body should match"), "{err}");
}

fn ready_reason(ws: &Workspace) -> Option<String> {
    ws.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.reason.clone())
}

/// F4, F20: a second workspace naming another's control namespace gets
/// `NamespaceTaken` and touches nothing of the first; deleting it writes
/// nothing there either.
#[tokio::test]
async fn f4_a_second_claimant_of_a_control_namespace_touches_nothing() {
    let env = TestEnv::new("sec-f4").await;
    let tenant = setup(&env, 1, 1).await;
    let attacker = format!("aaa-{}", env.name);
    let ws = json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "Workspace",
        "metadata": { "name": attacker },
        "spec": { "namespace": env.ns, "approvalPolicy": { "workspaceRoleApprovals": 1, "projectRoleApprovals": 1 } },
    });
    let workspaces = Api::<Workspace>::all(client("partner").await);
    workspaces
        .create(&PostParams::default(), &serde_json::from_value(ws).unwrap())
        .await
        .unwrap();
    let taken = eventually("NamespaceTaken", Duration::from_secs(20), || async {
        let w = workspaces.get(&attacker).await.ok()?;
        (ready_reason(&w).as_deref() == Some("NamespaceTaken")).then_some(w)
    })
    .await;
    assert_eq!(taken.status.unwrap().namespace, None);
    eventually("a Warning event", Duration::from_secs(20), || async {
        let evs = events_for("default", &attacker).await;
        evs.iter().any(|r| r == "NamespaceTaken").then_some(())
    })
    .await;
    // The victim is untouched: its manager, project and tenant namespace.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let alice = wait_phase(&env, "manager-alice", BindingPhase::Active).await;
    assert!(!natives_of(alice.metadata.uid.as_deref().unwrap()).await.is_empty());
    let ns = Api::<Namespace>::all(client("admin").await).get(&tenant).await.unwrap();
    assert!(ns.metadata.deletion_timestamp.is_none(), "tenant namespace kept");
    let victim = workspaces.get(&env.name).await.unwrap();
    assert_eq!(ready_reason(&victim).as_deref(), Some("Ready"));
    // Deleting the attacker changes nothing for the victim.
    let chunks = |ns: String| async move {
        Api::<ConfigMap>::namespaced(client("admin").await, &ns)
            .list(&ListParams::default().labels("foureyes.dev/history"))
            .await
            .unwrap()
            .items
            .iter()
            .map(|c| c.data.clone().unwrap_or_default().len())
            .sum::<usize>()
    };
    let before = chunks(env.ns.clone()).await;
    workspaces.delete(&attacker, &DeleteParams::default()).await.unwrap();
    eventually("the attacker gone", Duration::from_secs(20), || async {
        workspaces.get_opt(&attacker).await.unwrap().is_none().then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    wait_phase(&env, "manager-alice", BindingPhase::Active).await;
    assert!(!natives_of(alice.metadata.uid.as_deref().unwrap()).await.is_empty());
    assert_eq!(
        chunks(env.ns.clone()).await,
        before,
        "nothing recorded in the victim's history"
    );
}

/// F9: an existing namespace without foureyes labels is never adopted as a
/// control namespace: no Roles there, no labels, no reading its ConfigMaps.
#[tokio::test]
async fn f9_an_unlabelled_namespace_is_never_taken_over() {
    let name = format!("sec-f9-{}", std::process::id() % 100_000);
    let vault = format!("{name}-vault");
    plane().kubectl_ok("admin", &["create", "namespace", &vault], None);
    let ws = json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "Workspace",
        "metadata": { "name": name },
        "spec": { "namespace": vault },
    });
    support::shared_operator();
    let workspaces = Api::<Workspace>::all(client("partner").await);
    workspaces
        .create(&PostParams::default(), &serde_json::from_value(ws).unwrap())
        .await
        .unwrap();
    eventually("NamespaceRefused", Duration::from_secs(20), || async {
        let w = workspaces.get(&name).await.ok()?;
        (ready_reason(&w).as_deref() == Some("NamespaceRefused")).then_some(())
    })
    .await;
    let ns = Api::<Namespace>::all(client("admin").await).get(&vault).await.unwrap();
    assert!(
        !ns.metadata
            .labels
            .unwrap_or_default()
            .keys()
            .any(|k| k.starts_with("foureyes.dev/")),
        "no foureyes labels"
    );
    let roles = Api::<NativeRole>::namespaced(client("admin").await, &vault)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(roles.items.is_empty(), "no Roles in {vault}");
}

/// F8: deleting a workspace ends its bindings for good; a workspace
/// re-created with the same name neither takes the old namespace nor brings
/// the old grants back, even once an administrator hands the namespace over.
#[tokio::test]
async fn f8_a_recreated_workspace_grants_nothing_old() {
    let env = TestEnv::new("sec-f8").await;
    let tenant = setup(&env, 1, 1).await;
    grant(
        &env,
        "partner",
        "dave-reader",
        json!({"kind": "User", "name": "dave"}),
        json!({"project": "app", "projectRole": "reader"}),
        "2h",
    )
    .await;
    let dave = wait_phase(&env, "dave-reader", BindingPhase::Active).await;
    assert!(support::can("dave", "list", "pods", &tenant).await);
    let workspaces = Api::<Workspace>::all(client("partner").await);
    workspaces.delete(&env.name, &DeleteParams::default()).await.unwrap();
    eventually("the workspace gone", Duration::from_secs(20), || async {
        workspaces.get_opt(&env.name).await.unwrap().is_none().then_some(())
    })
    .await;
    let ended = wait_phase(&env, "dave-reader", BindingPhase::Revoked).await;
    assert!(
        ended
            .status
            .unwrap()
            .conditions
            .iter()
            .any(|c| c.message.contains("workspace")),
        "the reason names the workspace"
    );
    wait_phase(&env, "manager-alice", BindingPhase::Revoked).await;
    // Re-created with the same name: the old namespace carries the old uid.
    let ws = json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "Workspace",
        "metadata": { "name": env.name },
        "spec": { "approvalPolicy": { "workspaceRoleApprovals": 1, "projectRoleApprovals": 1 } },
    });
    workspaces
        .create(&PostParams::default(), &serde_json::from_value(ws).unwrap())
        .await
        .unwrap();
    eventually("NamespaceTaken", Duration::from_secs(20), || async {
        let w = workspaces.get(&env.name).await.ok()?;
        (ready_reason(&w).as_deref() == Some("NamespaceTaken")).then_some(())
    })
    .await;
    // An administrator hands the namespace to the new workspace.
    plane().kubectl_ok(
        "admin",
        &["label", "namespace", &env.ns, "foureyes.dev/workspace-uid-"],
        None,
    );
    eventually("the new workspace Ready", Duration::from_secs(20), || async {
        let w = workspaces.get(&env.name).await.ok()?;
        (ready_reason(&w).as_deref() == Some("Ready")).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for name in ["dave-reader", "manager-alice"] {
        let b = wait_phase(&env, name, BindingPhase::Revoked).await;
        assert!(
            natives_of(b.metadata.uid.as_deref().unwrap()).await.is_empty(),
            "{name}"
        );
    }
    assert!(!support::can("dave", "list", "pods", &tenant).await);
    let _ = dave;
}

/// F8: deleting a project ends its bindings for good: a project re-created
/// with the same name grants nothing old.
#[tokio::test]
async fn f8_a_recreated_project_grants_nothing_old() {
    let env = TestEnv::new("sec-f8p").await;
    setup(&env, 1, 1).await;
    grant(
        &env,
        "partner",
        "dave-reader",
        json!({"kind": "User", "name": "dave"}),
        json!({"project": "app", "projectRole": "reader"}),
        "2h",
    )
    .await;
    wait_phase(&env, "dave-reader", BindingPhase::Active).await;
    let projects = env.api::<foureyes::api::Project>("partner").await;
    projects.delete("app", &DeleteParams::default()).await.unwrap();
    eventually("the project gone", Duration::from_secs(20), || async {
        projects.get_opt("app").await.unwrap().is_none().then_some(())
    })
    .await;
    let b = wait_phase(&env, "dave-reader", BindingPhase::Revoked).await;
    let again = format!("{}-again", env.name);
    let project = json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "Project",
        "metadata": { "name": "app", "namespace": env.ns },
        "spec": { "namespaces": [again] },
    });
    projects
        .create(&PostParams::default(), &serde_json::from_value(project).unwrap())
        .await
        .unwrap();
    eventually("the new project's namespace", Duration::from_secs(20), || async {
        let p = projects.get("app").await.ok()?;
        (p.status?.namespaces == vec![again.clone()]).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let b2 = wait_phase(&env, "dave-reader", BindingPhase::Revoked).await;
    assert_eq!(b.metadata.uid, b2.metadata.uid);
    assert!(natives_of(b.metadata.uid.as_deref().unwrap()).await.is_empty());
    assert!(!support::can("dave", "list", "pods", &again).await);
}

/// F6: a request or binding outside any workspace's control namespace makes
/// the operator write nothing there (no undeletable history chunk).
#[tokio::test]
async fn f6_no_history_outside_control_namespaces() {
    support::shared_operator();
    let ns = format!("sec-f6-{}", std::process::id() % 100_000);
    plane().kubectl_ok("admin", &["create", "namespace", &ns], None);
    let body = json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
        "metadata": { "name": "stray", "namespace": ns },
        "spec": {
            "subject": { "kind": "User", "name": "dave" }, "workspaceRole": "member",
            "duration": "1h", "justification": "x", "requester": "dave",
        },
    });
    create_json(&dynamic::<RoleRequest>(client("dave").await, &ns), body)
        .await
        .unwrap();
    let binding = json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
        "metadata": { "name": "stray", "namespace": ns },
        "spec": {
            "subject": { "kind": "User", "name": "dave" }, "workspaceRole": "member",
            "duration": "1h", "justification": "x", "grantedBy": "dave",
        },
    });
    let bindings = dynamic::<RoleBinding>(client("dave").await, &ns);
    create_json(&bindings, binding).await.unwrap();
    let requests = Api::<RoleRequest>::namespaced(client("admin").await, &ns);
    eventually("the request seen", Duration::from_secs(20), || async {
        requests.get("stray").await.ok()?.status.map(|_| ())
    })
    .await;
    bindings.delete("stray", &DeleteParams::default()).await.unwrap();
    eventually("the binding gone", Duration::from_secs(20), || async {
        bindings.get_opt("stray").await.unwrap().is_none().then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let chunks = Api::<ConfigMap>::namespaced(client("admin").await, &ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        !chunks.items.iter().any(|c| c
            .metadata
            .name
            .as_deref()
            .unwrap_or_default()
            .starts_with("foureyes-history")),
        "history written outside a control namespace"
    );
}

/// F7: an approval that cannot become its binding (the name is taken) lapses
/// at the pending timeout; freeing the name weeks later grants nothing.
#[tokio::test]
async fn f7_a_blocked_approval_lapses() {
    let env = TestEnv::new("sec-f7").await;
    setup(&env, 2, 2).await;
    more_managers(&env, &["bob"]).await;
    update_workspace(
        &env.name,
        json!({ "approvalPolicy": { "pendingTimeout": "10s" } }),
        |ws| ws.spec.approval_policy.pending_timeout.as_str() == "10s",
    )
    .await;
    // alice squats the name with a binding that cannot activate (quorum 2).
    grant(
        &env,
        "alice",
        "dave-admin",
        json!({"kind": "User", "name": "dave"}),
        json!({"workspaceRole": "manager"}),
        "1h",
    )
    .await;
    let body = json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
        "metadata": { "name": "dave-admin", "namespace": env.ns },
        "spec": {
            "subject": { "kind": "User", "name": "dave" }, "workspaceRole": "manager",
            "duration": "1h", "justification": "INC-7", "requester": "alice",
        },
    });
    create_json(&env.dynamic::<RoleRequest>("alice").await, body)
        .await
        .unwrap();
    vote_as(&env, "bob", "bob", "dave-admin", "Approve").await.unwrap();
    wait_request(&env, "dave-admin", "blocked by the taken name", |r| {
        phase(r) == Some(RequestPhase::Approved)
    })
    .await;
    wait_request(&env, "dave-admin", "lapsed at the timeout", |r| {
        phase(r) == Some(RequestPhase::Expired)
    })
    .await;
    // The squatter frees the name; the old approval must not come back.
    env.api::<RoleBinding>("alice")
        .await
        .delete("dave-admin", &DeleteParams::default())
        .await
        .unwrap();
    let bindings = env.api::<RoleBinding>("admin").await;
    eventually("the squatter gone", Duration::from_secs(20), || async {
        bindings.get_opt("dave-admin").await.unwrap().is_none().then_some(())
    })
    .await;
    env.api::<RoleRequest>("admin")
        .await
        .patch(
            "dave-admin",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { "poke": "1" } } })),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(bindings.get_opt("dave-admin").await.unwrap().is_none());
}

/// F18: a look-alike native binding labelled as foureyes's plants no event on
/// another workspace's binding.
#[tokio::test]
async fn f18_a_lookalike_native_binding_plants_no_event() {
    let env = TestEnv::new("sec-f18").await;
    setup(&env, 1, 1).await;
    wait_phase(&env, "manager-alice", BindingPhase::Active).await;
    let mine = format!("{}-mine", env.name);
    plane().kubectl_ok("admin", &["create", "namespace", &mine], None);
    plane().kubectl_ok(
        "admin",
        &[
            "create",
            "rolebinding",
            "erin-admin",
            "-n",
            &mine,
            "--clusterrole=admin",
            "--user=erin",
        ],
        None,
    );
    let fake: NativeBinding = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {
            "name": "fake", "namespace": mine,
            "labels": {
                "app.kubernetes.io/managed-by": "foureyes",
                // Any uid: the attacker need not know the victim's.
                "foureyes.dev/binding-uid": "bogus",
            },
            "annotations": {
                "foureyes.dev/binding-ref": format!("{}/manager-alice", env.ns),
                "foureyes.dev/expires-at": "2000-01-01T00:00:00Z",
            },
        },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view" },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "x" }],
    }))
    .unwrap();
    let erin = Api::<NativeBinding>::namespaced(client("erin").await, &mine);
    eventually("erin may create RoleBindings", Duration::from_secs(10), || async {
        erin.create(&PostParams::default(), &fake).await.ok().map(|_| ())
    })
    .await;
    // The sweep (every 2 s in tests) removes it...
    eventually("the look-alike removed", Duration::from_secs(20), || async {
        erin.get_opt("fake").await.unwrap().is_none().then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // ...without a word on alice's binding.
    let events = events_for(&env.ns, "manager-alice").await;
    assert!(!events.iter().any(|r| r == "OverdueRevoked"), "{events:?}");
}

/// F19: the status of foureyes objects is the operator's alone, and the
/// admission parameters can be changed only by those who may change the
/// policies themselves.
#[tokio::test]
async fn f19_status_and_parameters_are_protected() {
    let env = TestEnv::new("sec-f19").await;
    setup(&env, 2, 2).await;
    grant(
        &env,
        "alice",
        "pending",
        json!({"kind": "User", "name": "dave"}),
        json!({"workspaceRole": "member"}),
        "1h",
    )
    .await;
    // Even the cluster administrator cannot mark it Active and authorised.
    let forged = json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
        "status": {
            "phase": "Active",
            "conditions": [{ "type": "Authorized", "status": "True", "reason": "GrantedByPartner", "message": "",
                             "lastTransitionTime": "2026-01-01T00:00:00Z" }],
        },
    });
    let err = env
        .api::<RoleBinding>("admin")
        .await
        .patch_status("pending", &PatchParams::apply("mallory").force(), &Patch::Apply(forged))
        .await
        .expect_err("a status write by someone else must be refused");
    assert!(refusal(err).contains("written only by the foureyes operator"));
    // erin, allowed to write ConfigMaps in the operator's namespace by RBAC,
    // cannot make herself a trusted asserter.
    plane().kubectl_ok(
        "admin",
        &[
            "create",
            "rolebinding",
            "erin-cm",
            "-n",
            "foureyes-system",
            "--clusterrole=edit",
            "--user=erin",
        ],
        None,
    );
    let params = Api::<ConfigMap>::namespaced(client("erin").await, "foureyes-system");
    let patch = json!({ "data": { "trustedAsserterGroups": "system:authenticated" } });
    let err = eventually("the edit reaches admission", Duration::from_secs(10), || async {
        match params
            .patch("foureyes-admission", &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Err(kube::Error::Api(e)) if e.code != 403 || e.message.contains("is a trust anchor") => Some(e),
            Err(_) => None,
            Ok(_) => panic!("erin changed the admission parameters"),
        }
    })
    .await;
    assert!(
        err.message.contains("only those who may change the admission policies"),
        "{}",
        err.message
    );
    // Nor delete them, nor change the operator's configuration (who the
    // partners are), which carries the trust-anchor label as the chart
    // installs it.
    let err = params
        .delete("foureyes-admission", &Default::default())
        .await
        .unwrap_err();
    assert!(refusal(err).contains("is a trust anchor"));
    let config: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "sec-f19-config", "namespace": "foureyes-system",
                      "labels": { "foureyes.dev/trust-anchor": "true" } },
        "data": { "config.yaml": "partners: { groups: [platform] }\n" },
    }))
    .unwrap();
    Api::<ConfigMap>::namespaced(client("admin").await, "foureyes-system")
        .create(&PostParams::default(), &config)
        .await
        .unwrap();
    let take = json!({ "data": { "config.yaml": "partners: { users: [erin] }\n" } });
    let err = params
        .patch("sec-f19-config", &PatchParams::default(), &Patch::Merge(&take))
        .await
        .unwrap_err();
    assert!(refusal(err).contains("is a trust anchor"));
    let unlabel = json!({ "metadata": { "labels": { "foureyes.dev/trust-anchor": null } } });
    let err = params
        .patch("sec-f19-config", &PatchParams::default(), &Patch::Merge(&unlabel))
        .await
        .unwrap_err();
    assert!(
        refusal(err).contains("is a trust anchor"),
        "removing the label is a change too"
    );
    // Nor, allowed to write Leases there, can she take the leader Lease (and
    // with it the bookkeeping of every expiry).
    plane().kubectl_ok(
        "admin",
        &[
            "create",
            "role",
            "erin-leases",
            "-n",
            "foureyes-system",
            "--verb=get,update,patch",
            "--resource=leases",
        ],
        None,
    );
    plane().kubectl_ok(
        "admin",
        &[
            "create",
            "rolebinding",
            "erin-leases",
            "-n",
            "foureyes-system",
            "--role=erin-leases",
            "--user=erin",
        ],
        None,
    );
    let leases = Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(client("erin").await, "foureyes-system");
    let take = json!({ "spec": { "holderIdentity": "erin" } });
    let err = eventually("the Lease write reaches admission", Duration::from_secs(10), || async {
        match leases
            .patch("foureyes", &PatchParams::default(), &Patch::Merge(&take))
            .await
        {
            Err(kube::Error::Api(e)) if e.message.contains("leader Lease") => Some(e),
            Err(_) => None,
            Ok(_) => panic!("erin took the leader Lease"),
        }
    })
    .await;
    assert!(
        err.message.contains("written only by the foureyes operator"),
        "{}",
        err.message
    );
    // Nor delete it (a new holder could then create it).
    plane().kubectl_ok(
        "admin",
        &[
            "patch",
            "role",
            "erin-leases",
            "-n",
            "foureyes-system",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/rules/0/verbs/-","value":"delete"}]"#,
        ],
        None,
    );
    let err = eventually(
        "the Lease delete reaches admission",
        Duration::from_secs(10),
        || async {
            match leases.delete("foureyes", &Default::default()).await {
                Err(kube::Error::Api(e)) if e.message.contains("leader Lease") => Some(e),
                Err(_) => None,
                Ok(_) => panic!("erin deleted the leader Lease"),
            }
        },
    )
    .await;
    assert!(
        err.message.contains("written only by the foureyes operator"),
        "{}",
        err.message
    );
}

/// F13: changes to a workspace's approval policy and to a project's spec are
/// recorded, with who made them as the API server authenticated them; that
/// stamp cannot be written by a client.
#[tokio::test]
async fn f13_policy_and_project_changes_are_recorded_with_their_author() {
    use foureyes::audit::history::{Chain, read_chain};
    let env = TestEnv::new("sec-f13").await;
    setup(&env, 2, 2).await;
    update_workspace(
        &env.name,
        json!({ "approvalPolicy": { "projectRoleApprovals": 1 } }),
        |ws| ws.spec.approval_policy.project_role_approvals == 1,
    )
    .await;
    let admin = client("admin").await;
    let changed = eventually("the policy change recorded", Duration::from_secs(20), || async {
        read_chain(&admin, &env.ns, &Chain::workspace())
            .await
            .ok()?
            .into_iter()
            .find(|e| e.action == "WorkspaceChanged")
    })
    .await;
    assert_eq!(changed.actor, "partner");
    assert!(changed.details.contains("1 for project roles"), "{}", changed.details);
    // The project: its creation and a change of its role map.
    env.api::<foureyes::api::Project>("partner")
        .await
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "roleMap": { "ops": "foureyes-view" } } })),
        )
        .await
        .unwrap();
    let entries = eventually("the project change recorded", Duration::from_secs(20), || async {
        let entries = read_chain(&admin, &env.ns, &Chain::project("app")).await.ok()?;
        entries.iter().any(|e| e.action == "ProjectChanged").then_some(entries)
    })
    .await;
    let created = entries
        .iter()
        .find(|e| e.action == "ProjectCreated")
        .expect("ProjectCreated");
    assert_eq!(created.actor, "partner");
    let change = entries.iter().find(|e| e.action == "ProjectChanged").unwrap();
    assert_eq!(change.actor, "partner");
    assert!(change.details.contains("ops=foureyes-view"), "{}", change.details);
    // A grant keeps the ClusterRole it was given: a later role-map change
    // applies to new grants only (and is recorded above).
    grant(
        &env,
        "partner",
        "dave-reader",
        json!({"kind": "User", "name": "dave"}),
        json!({"project": "app", "projectRole": "reader"}),
        "1h",
    )
    .await;
    let dave = wait_phase(&env, "dave-reader", BindingPhase::Active).await;
    assert_eq!(
        dave.status.as_ref().unwrap().cluster_role.as_deref(),
        Some("foureyes-view")
    );
    env.api::<foureyes::api::Project>("partner")
        .await
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "roleMap": { "reader": "foureyes-edit" } } })),
        )
        .await
        .unwrap();
    grant(
        &env,
        "partner",
        "erin-reader",
        json!({"kind": "User", "name": "erin"}),
        json!({"project": "app", "projectRole": "reader"}),
        "1h",
    )
    .await;
    let erin = wait_phase(&env, "erin-reader", BindingPhase::Active).await;
    assert_eq!(
        erin.status.as_ref().unwrap().cluster_role.as_deref(),
        Some("foureyes-edit")
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let natives = natives_of(dave.metadata.uid.as_deref().unwrap()).await;
    assert!(!natives.is_empty() && natives.iter().all(|n| n.role_ref.name == "foureyes-view"));
    // alice may update workspaces (by RBAC) but cannot name someone else as
    // the author of the last change: admission puts the stamp back.
    let kept = Api::<Workspace>::all(client("alice").await)
        .patch(
            &env.name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { "foureyes.dev/changed-by": "bob" } } })),
        )
        .await
        .expect("a metadata patch");
    assert_eq!(kept.metadata.annotations.unwrap()["foureyes.dev/changed-by"], "partner");
    // Nor plant one on creation.
    let planted = json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "Workspace",
        "metadata": { "name": format!("{}-planted", env.name), "annotations": { "foureyes.dev/changed-by": "bob" } },
        "spec": {},
    });
    let workspaces = Api::<DynamicObject>::all_with(client("partner").await, &ApiResource::erase::<Workspace>(&()));
    let err = create_json(&workspaces, planted)
        .await
        .expect_err("a planted changed-by");
    assert!(err.contains("changed-by"), "{err}");
}

/// F21: a binding authorised on the operator's own approval of its request
/// (the request's status write then failed while a Deny came in) does not
/// stay in force once the request's record says Denied. The race is set up
/// by writing, as the operator's identity, what the operator would have
/// written: the binding with its origin, and its Authorized status.
#[tokio::test]
async fn f21_a_grant_whose_request_ends_denied_does_not_stay() {
    let env = TestEnv::new("sec-f21").await;
    let tenant = setup(&env, 2, 2).await;
    more_managers(&env, &["bob"]).await;
    let body = request_json(&env, "race", json!({"kind": "User", "name": "dave"}), "erin");
    let r = create_json(&env.dynamic::<RoleRequest>("erin").await, body)
        .await
        .unwrap();
    let uid = r.metadata.uid.clone().unwrap();
    let binding = json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
        "metadata": { "name": "race", "namespace": env.ns },
        "spec": {
            "subject": { "kind": "User", "name": "dave" }, "project": "app", "projectRole": "reader",
            "duration": "1h", "justification": "INC-42", "grantedBy": "alice",
            "originRequest": { "name": "race", "uid": uid },
        },
    });
    create_json(&env.dynamic::<RoleBinding>("operator").await, binding)
        .await
        .unwrap();
    let latched = json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
        "status": {
            "phase": "Active",
            "conditions": [{ "type": "Authorized", "status": "True", "reason": "ApprovedRequest", "message": "",
                             "lastTransitionTime": "2026-01-01T00:00:00Z" }],
        },
    });
    env.api::<RoleBinding>("operator")
        .await
        .patch_status("race", &PatchParams::apply("foureyes").force(), &Patch::Apply(latched))
        .await
        .unwrap();
    eventually("the latched grant in force", Duration::from_secs(20), || async {
        support::can("dave", "list", "pods", &tenant).await.then_some(())
    })
    .await;
    vote_as(&env, "bob", "bob", "race", "Deny").await.unwrap();
    wait_request(&env, "race", "denied", |r| phase(r) == Some(RequestPhase::Denied)).await;
    eventually("access gone with the Deny", Duration::from_secs(20), || async {
        (!support::can("dave", "list", "pods", &tenant).await).then_some(())
    })
    .await;
    // The record follows the revocation on the operator's next pass.
    let api = env.api::<RoleBinding>("admin").await;
    eventually(
        "the binding recorded as no longer active",
        Duration::from_secs(10),
        || async {
            let b = api.get("race").await.ok()?;
            b.status
                .as_ref()
                .is_some_and(|s| s.phase != Some(BindingPhase::Active))
                .then_some(())
        },
    )
    .await;
}

/// F22: a workspace whose default namespace could not exist (a name with
/// dots) is refused at admission unless it names its namespace.
#[tokio::test]
async fn f22_a_workspace_name_with_dots_needs_its_namespace() {
    let workspaces = Api::<DynamicObject>::all_with(client("partner").await, &ApiResource::erase::<Workspace>(&()));
    let name = format!("team.sec-f22-{}", std::process::id() % 100_000);
    let ws =
        json!({ "apiVersion": "foureyes.dev/v1alpha1", "kind": "Workspace", "metadata": { "name": name }, "spec": {} });
    let err = create_json(&workspaces, ws)
        .await
        .expect_err("a dotted name without spec.namespace");
    assert!(err.contains("needs spec.namespace"), "{err}");
    let ws = json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "Workspace",
        "metadata": { "name": name }, "spec": { "namespace": format!("sec-f22-{}", std::process::id() % 100_000) },
    });
    create_json(&workspaces, ws)
        .await
        .expect("with spec.namespace it is accepted");
}
