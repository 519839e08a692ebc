//! The manifests of `crds/` on a real API server: CEL rules refuse what the
//! object alone shows to be wrong, and the identity admission policy refuses
//! any identity field that does not name the caller (DESIGN §2, invariant 3).

mod support;

use foureyes::api::{Project, RoleBinding, RoleRequest, Workspace};
use serde_json::{Value, json};
use support::{TestEnv, create_json, replace_json};

fn binding(ns: &str, name: &str, granted_by: &str) -> Value {
    json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
        "metadata": { "name": name, "namespace": ns },
        "spec": {
            "subject": { "kind": "User", "name": "dave" },
            "project": "checkout", "projectRole": "admin",
            "duration": "2h", "justification": "INC-1", "grantedBy": granted_by,
        },
    })
}

fn request(ns: &str, name: &str, requester: &str) -> Value {
    json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
        "metadata": { "name": name, "namespace": ns },
        "spec": {
            "subject": { "kind": "User", "name": "dave" },
            "project": "checkout", "projectRole": "admin",
            "duration": "2h", "justification": "INC-1", "requester": requester,
        },
    })
}

fn workspace(name: &str) -> Value {
    json!({ "apiVersion": "foureyes.dev/v1alpha1", "kind": "Workspace", "metadata": { "name": name }, "spec": {} })
}

fn project(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "Project",
        "metadata": { "name": name, "namespace": ns },
        "spec": { "namespaces": [format!("{name}-tenant")] },
    })
}

/// Applies `edit` to a copy of `base` at a JSON pointer (`None` removes it).
fn with(base: &Value, pointer: &str, value: Option<Value>) -> Value {
    let mut v = base.clone();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let obj = v.pointer_mut(parent).unwrap().as_object_mut().unwrap();
    match value {
        Some(value) => obj.insert(key.to_owned(), value),
        None => obj.remove(key),
    };
    v
}

fn expect_refused(result: Result<kube::api::DynamicObject, String>, needle: &str, case: &str) {
    match result {
        Ok(_) => panic!("{case}: accepted, expected a refusal containing {needle:?}"),
        Err(msg) => assert!(
            msg.contains(needle),
            "{case}: refusal {msg:?} does not contain {needle:?}"
        ),
    }
}

#[tokio::test]
async fn cel_rules_refuse_invalid_role_bindings() {
    let env = TestEnv::new("cel-rb").await;
    // A trusted asserter, so that only the CRD's own rules are in play.
    let api = env.dynamic::<RoleBinding>("gitops").await;
    let base = binding(&env.ns, "b", "alice");
    let create_cases: Vec<(&str, Value, &str)> = vec![
        (
            "both roles",
            with(&base, "/spec/workspaceRole", Some(json!("member"))),
            "exactly one of spec.workspaceRole or spec.projectRole",
        ),
        (
            "no role",
            with(&with(&base, "/spec/projectRole", None), "/spec/project", None),
            "exactly one of spec.workspaceRole or spec.projectRole",
        ),
        (
            "project without projectRole",
            with(
                &with(&base, "/spec/projectRole", None),
                "/spec/workspaceRole",
                Some(json!("member")),
            ),
            "spec.project and spec.projectRole must be set together",
        ),
        (
            "both expiries",
            with(&base, "/spec/expiresAt", Some(json!("2030-01-01T00:00:00Z"))),
            "exactly one of spec.expiresAt or spec.duration",
        ),
        (
            "no expiry",
            with(&base, "/spec/duration", None),
            "exactly one of spec.expiresAt or spec.duration",
        ),
        (
            "zero duration",
            with(&base, "/spec/duration", Some(json!("0s"))),
            "spec.duration must be positive and at most 2160h",
        ),
        (
            "excessive duration",
            with(&base, "/spec/duration", Some(json!("2161h"))),
            "spec.duration must be positive and at most 2160h",
        ),
        (
            "malformed duration",
            with(&base, "/spec/duration", Some(json!("two hours"))),
            "spec.duration in body should match",
        ),
        (
            "blank justification",
            with(&base, "/spec/justification", Some(json!("   "))),
            "spec.justification must not be blank",
        ),
        (
            "missing justification",
            with(&base, "/spec/justification", None),
            "spec.justification: Required value",
        ),
        (
            "system group",
            with(
                &base,
                "/spec/subject",
                Some(json!({"kind": "Group", "name": "system:authenticated"})),
            ),
            "system groups (system:...) cannot be given roles",
        ),
        (
            "system user",
            with(
                &base,
                "/spec/subject",
                Some(json!({"kind": "User", "name": "system:kube-scheduler"})),
            ),
            "system users (system:...) cannot be given roles",
        ),
        (
            "workspace role as project role",
            with(&base, "/spec/projectRole", Some(json!("manager"))),
            "manager and member are workspace roles",
        ),
        (
            "bad role name",
            with(&base, "/spec/projectRole", Some(json!("Admin!"))),
            "spec.projectRole in body should match",
        ),
    ];
    for (i, (case, value, needle)) in create_cases.into_iter().enumerate() {
        let value = with(&value, "/metadata/name", Some(json!(format!("c{i}"))));
        expect_refused(create_json(&api, value).await, needle, case);
    }

    // A service account is a legitimate subject.
    let sa = with(
        &base,
        "/spec/subject",
        Some(json!({"kind": "User", "name": "system:serviceaccount:ci:deployer"})),
    );
    create_json(&api, with(&sa, "/metadata/name", Some(json!("sa"))))
        .await
        .expect("service account subject");

    // Transition rules: create a valid binding, then try to change what is immutable.
    let created = create_json(&api, base.clone()).await.expect("valid binding");
    let current = with(
        &base,
        "/metadata/resourceVersion",
        Some(json!(created.metadata.resource_version.clone().unwrap())),
    );
    let update_cases: Vec<(&str, Value, &str)> = vec![
        (
            "subject",
            with(&current, "/spec/subject/name", Some(json!("erin"))),
            "spec.subject is immutable",
        ),
        (
            "role",
            with(&current, "/spec/projectRole", Some(json!("reader"))),
            "the role (spec.workspaceRole, spec.project, spec.projectRole) is immutable",
        ),
        (
            "project",
            with(&current, "/spec/project", Some(json!("other"))),
            "the role (spec.workspaceRole, spec.project, spec.projectRole) is immutable",
        ),
        (
            "justification",
            with(&current, "/spec/justification", Some(json!("other"))),
            "spec.justification is immutable",
        ),
        (
            "grantedBy",
            with(&current, "/spec/grantedBy", Some(json!("bob"))),
            "spec.grantedBy is immutable",
        ),
        (
            "duration",
            with(&current, "/spec/duration", Some(json!("8h"))),
            "the expiry (spec.expiresAt, spec.duration) is immutable",
        ),
        (
            "originRequest added",
            with(&current, "/spec/originRequest", Some(json!({"name": "r", "uid": "u"}))),
            "spec.originRequest is immutable",
        ),
    ];
    for (case, value, needle) in update_cases {
        expect_refused(replace_json(&api, value).await, needle, case);
    }

    // Revocation: may be added once, never changed or removed.
    let revoked = with(
        &current,
        "/spec/revocation",
        Some(json!({"by": "alice", "reason": "compromised"})),
    );
    let after = replace_json(&api, revoked.clone())
        .await
        .expect("revocation is allowed");
    let revoked = with(
        &revoked,
        "/metadata/resourceVersion",
        Some(json!(after.metadata.resource_version.unwrap())),
    );
    expect_refused(
        replace_json(&api, with(&revoked, "/spec/revocation", None)).await,
        "spec.revocation cannot be changed or removed",
        "revocation removed",
    );
    expect_refused(
        replace_json(&api, with(&revoked, "/spec/revocation/reason", Some(json!("oops")))).await,
        "spec.revocation cannot be changed or removed",
        "revocation changed",
    );
}

#[tokio::test]
async fn cel_rules_refuse_invalid_role_requests() {
    let env = TestEnv::new("cel-rr").await;
    let api = env.dynamic::<RoleRequest>("gitops").await;
    let base = request(&env.ns, "r", "alice");
    let create_cases: Vec<(&str, Value, &str)> = vec![
        (
            "both roles",
            with(&base, "/spec/workspaceRole", Some(json!("member"))),
            "exactly one of spec.workspaceRole or spec.projectRole",
        ),
        (
            "project without projectRole",
            with(
                &with(&base, "/spec/projectRole", None),
                "/spec/workspaceRole",
                Some(json!("member")),
            ),
            "spec.project and spec.projectRole must be set together",
        ),
        (
            "zero duration",
            with(&base, "/spec/duration", Some(json!("0s"))),
            "spec.duration must be positive and at most 2160h",
        ),
        (
            "excessive duration",
            with(&base, "/spec/duration", Some(json!("9000h"))),
            "spec.duration must be positive and at most 2160h",
        ),
        (
            "malformed duration",
            with(&base, "/spec/duration", Some(json!("1d"))),
            "spec.duration in body should match",
        ),
        (
            "missing duration",
            with(&base, "/spec/duration", None),
            "spec.duration: Required value",
        ),
        (
            "blank justification",
            with(&base, "/spec/justification", Some(json!("\t "))),
            "spec.justification must not be blank",
        ),
        (
            "missing justification",
            with(&base, "/spec/justification", None),
            "spec.justification: Required value",
        ),
        (
            "system group",
            with(
                &base,
                "/spec/subject",
                Some(json!({"kind": "Group", "name": "system:masters"})),
            ),
            "system groups (system:...) cannot be given roles",
        ),
        (
            "system user",
            with(
                &base,
                "/spec/subject",
                Some(json!({"kind": "User", "name": "system:admin"})),
            ),
            "system users (system:...) cannot be given roles",
        ),
        (
            "workspace role as project role",
            with(&base, "/spec/projectRole", Some(json!("member"))),
            "manager and member are workspace roles",
        ),
        (
            "too many approvals",
            with(
                &base,
                "/spec/approvals",
                Some(json!(
                    (0..33)
                        .map(|i| json!({"user": format!("u{i}"), "decision": "Approve"}))
                        .collect::<Vec<_>>()
                )),
            ),
            "must have at most 32 items",
        ),
    ];
    for (i, (case, value, needle)) in create_cases.into_iter().enumerate() {
        let value = with(&value, "/metadata/name", Some(json!(format!("c{i}"))));
        expect_refused(create_json(&api, value).await, needle, case);
    }

    let base = with(
        &base,
        "/spec/approvals",
        Some(json!([{"user": "bob", "decision": "Approve", "comment": "ok"}])),
    );
    let created = create_json(&api, base.clone()).await.expect("valid request");
    let current = with(
        &base,
        "/metadata/resourceVersion",
        Some(json!(created.metadata.resource_version.unwrap())),
    );
    let update_cases: Vec<(&str, Value, &str)> = vec![
        (
            "subject",
            with(&current, "/spec/subject/name", Some(json!("erin"))),
            "spec.subject is immutable",
        ),
        (
            "role",
            with(&current, "/spec/projectRole", Some(json!("reader"))),
            "the role (spec.workspaceRole, spec.project, spec.projectRole) is immutable",
        ),
        (
            "justification",
            with(&current, "/spec/justification", Some(json!("x"))),
            "spec.justification is immutable",
        ),
        (
            "duration",
            with(&current, "/spec/duration", Some(json!("3h"))),
            "spec.duration is immutable",
        ),
        (
            "requester",
            with(&current, "/spec/requester", Some(json!("bob"))),
            "spec.requester is immutable",
        ),
        (
            "approval removed",
            with(&current, "/spec/approvals", Some(json!([]))),
            "spec.approvals is append-only",
        ),
        (
            "approvals dropped",
            with(&current, "/spec/approvals", None),
            "spec.approvals is append-only",
        ),
        (
            "approval edited",
            with(
                &current,
                "/spec/approvals",
                Some(json!([{"user": "bob", "decision": "Deny", "comment": "ok"}])),
            ),
            "spec.approvals is append-only",
        ),
        (
            "approval replaced while appending",
            with(
                &current,
                "/spec/approvals",
                Some(json!([{"user": "carol", "decision": "Approve"}, {"user": "bob", "decision": "Approve"}])),
            ),
            "spec.approvals is append-only",
        ),
    ];
    for (case, value, needle) in update_cases {
        expect_refused(replace_json(&api, value).await, needle, case);
    }
    let appended = with(
        &current,
        "/spec/approvals",
        Some(
            json!([{"user": "bob", "decision": "Approve", "comment": "ok"}, {"user": "carol", "decision": "Approve"}]),
        ),
    );
    replace_json(&api, appended).await.expect("appending a vote is allowed");
}

#[tokio::test]
async fn cel_rules_refuse_invalid_workspaces_and_projects() {
    let env = TestEnv::new("cel-ws").await;
    let ws_api = env.dynamic::<Workspace>("gitops").await;
    let base = workspace(&env.name);
    let long = format!("{}-{}", env.name, "x".repeat(61 - env.name.len()));
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "long name",
            with(&base, "/metadata/name", Some(json!(long))),
            "a workspace name has at most 60 characters",
        ),
        (
            "system namespace",
            with(&base, "/spec/namespace", Some(json!("kube-system"))),
            "a system namespace cannot be a workspace namespace",
        ),
        (
            "zero maxDuration",
            with(&base, "/spec/maxDuration", Some(json!("0s"))),
            "spec.maxDuration must be positive and at most 2160h",
        ),
        (
            "long pendingTimeout",
            with(&base, "/spec/approvalPolicy", Some(json!({"pendingTimeout": "721h"}))),
            "spec.approvalPolicy.pendingTimeout must be positive and at most 720h",
        ),
        (
            "zero quorum",
            with(&base, "/spec/approvalPolicy", Some(json!({"projectRoleApprovals": 0}))),
            "should be greater than or equal to 1",
        ),
    ];
    for (case, value, needle) in cases {
        expect_refused(create_json(&ws_api, value).await, needle, case);
    }
    let created = create_json(&ws_api, base.clone()).await.expect("valid workspace");
    assert_eq!(
        created.data["spec"]["approvalPolicy"]["projectRoleApprovals"], 2,
        "defaults applied"
    );
    assert_eq!(created.data["spec"]["maxDuration"], "24h", "defaults applied");
    let current = with(
        &base,
        "/metadata/resourceVersion",
        Some(json!(created.metadata.resource_version.unwrap())),
    );
    expect_refused(
        replace_json(&ws_api, with(&current, "/spec/namespace", Some(json!("elsewhere")))).await,
        "spec.namespace is immutable",
        "namespace changed",
    );
    ws_api
        .delete(&env.name, &Default::default())
        .await
        .expect("delete workspace");

    let proj_api = env.dynamic::<Project>("gitops").await;
    let base = project(&env.ns, "p");
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "system namespace",
            with(&base, "/spec/namespaces", Some(json!(["default"]))),
            "system namespaces (default, kube-*) cannot be project namespaces",
        ),
        (
            "kube- namespace",
            with(&base, "/spec/namespaces", Some(json!(["kube-node-lease"]))),
            "system namespaces (default, kube-*) cannot be project namespaces",
        ),
        (
            "no namespaces",
            with(&base, "/spec/namespaces", Some(json!([]))),
            "should have at least 1 items",
        ),
        (
            "workspace role in role map",
            with(&base, "/spec/roleMap", Some(json!({"manager": "admin"}))),
            "role names are lowercase DNS labels",
        ),
        (
            "empty ClusterRole",
            with(&base, "/spec/roleMap", Some(json!({"oncall": ""}))),
            "ClusterRole names have 1 to 253 characters",
        ),
    ];
    for (case, value, needle) in cases {
        expect_refused(create_json(&proj_api, value).await, needle, case);
    }
    create_json(&proj_api, with(&base, "/spec/roleMap", Some(json!({"oncall": "edit"}))))
        .await
        .expect("valid project");
}

#[tokio::test]
async fn identity_fields_must_name_the_caller() {
    let env = TestEnv::new("ident").await;
    let rr_alice = env.dynamic::<RoleRequest>("alice").await;
    let rb_alice = env.dynamic::<RoleBinding>("alice").await;

    // requester
    expect_refused(
        create_json(&rr_alice, request(&env.ns, "forged", "bob")).await,
        "spec.requester must be your own user name (alice)",
        "forged requester",
    );
    create_json(&rr_alice, request(&env.ns, "own", "alice"))
        .await
        .expect("own requester");

    // grantedBy
    expect_refused(
        create_json(&rb_alice, binding(&env.ns, "forged", "bob")).await,
        "spec.grantedBy must be your own user name (alice)",
        "forged grantedBy",
    );
    create_json(&rb_alice, binding(&env.ns, "own", "alice"))
        .await
        .expect("own grantedBy");

    // originRequest: only the operator may claim a binding came from a request.
    let from_request = with(
        &binding(&env.ns, "from-request", "alice"),
        "/spec/originRequest",
        Some(json!({"name": "own", "uid": "x"})),
    );
    expect_refused(
        create_json(&rb_alice, from_request.clone()).await,
        "spec.originRequest can only be set by the foureyes operator",
        "forged origin",
    );
    let gitops_rb = env.dynamic::<RoleBinding>("gitops").await;
    expect_refused(
        create_json(&gitops_rb, from_request.clone()).await,
        "spec.originRequest can only be set by the foureyes operator",
        "trusted asserter claiming an origin",
    );
    let operator_rb = env.dynamic::<RoleBinding>("operator").await;
    create_json(
        &operator_rb,
        with(
            &from_request,
            "/spec/grantedBy",
            Some(json!("system:serviceaccount:foureyes-system:foureyes")),
        ),
    )
    .await
    .expect("the operator creates bindings from requests");

    // Appended approvals must name the caller, at creation and on update.
    let with_vote = |user: &str| {
        with(
            &request(&env.ns, "voted", "alice"),
            "/spec/approvals",
            Some(json!([{"user": user, "decision": "Approve"}])),
        )
    };
    expect_refused(
        create_json(&rr_alice, with_vote("bob")).await,
        "spec.approvals: a vote you add must name you (alice)",
        "forged vote at creation",
    );
    let own = rr_alice.get("own").await.unwrap();
    let rr_bob = env.dynamic::<RoleRequest>("bob").await;
    let mut forged = own.clone();
    forged.data["spec"]["approvals"] = json!([{"user": "carol", "decision": "Approve"}]);
    expect_refused(
        rr_bob
            .replace("own", &Default::default(), &forged)
            .await
            .map_err(support::refusal),
        "spec.approvals: a vote you add must name you (bob)",
        "forged vote on update",
    );
    let mut honest = own.clone();
    honest.data["spec"]["approvals"] = json!([{"user": "bob", "decision": "Approve", "comment": "LGTM"}]);
    let after_bob = rr_bob
        .replace("own", &Default::default(), &honest)
        .await
        .expect("own vote");
    // carol appends her vote after bob's: bob's stays (it is not new), carol's names carol.
    let rr_carol = env.dynamic::<RoleRequest>("carol").await;
    let mut carol_vote = after_bob.clone();
    carol_vote.data["spec"]["approvals"] =
        json!([{"user": "bob", "decision": "Approve", "comment": "LGTM"}, {"user": "carol", "decision": "Deny"}]);
    rr_carol
        .replace("own", &Default::default(), &carol_vote)
        .await
        .expect("carol appends her own vote");
    // A JSON patch that appends a forged vote is refused the same way.
    let (ok, _, stderr) = support::plane().kubectl(
        "bob",
        &[
            "patch",
            "rolerequests.foureyes.dev",
            "own",
            "-n",
            &env.ns,
            "--type=json",
            "-p",
            r#"[{"op": "add", "path": "/spec/approvals/-", "value": {"user": "erin", "decision": "Approve"}}]"#,
        ],
        None,
    );
    assert!(
        !ok && stderr.contains("spec.approvals: a vote you add must name you (bob)"),
        "forged vote by JSON patch: {stderr}"
    );

    // revocation.by
    let own_binding = rb_alice.get("own").await.unwrap();
    let rb_bob = env.dynamic::<RoleBinding>("bob").await;
    let mut forged = own_binding.clone();
    forged.data["spec"]["revocation"] = json!({"by": "alice", "reason": "compromised"});
    expect_refused(
        rb_bob
            .replace("own", &Default::default(), &forged)
            .await
            .map_err(support::refusal),
        "spec.revocation.by must be your own user name (bob)",
        "forged revoker",
    );
    let mut honest = own_binding.clone();
    honest.data["spec"]["revocation"] = json!({"by": "bob", "reason": "compromised"});
    rb_bob
        .replace("own", &Default::default(), &honest)
        .await
        .expect("own revocation");
}

#[tokio::test]
async fn a_trusted_asserter_may_assert_other_names() {
    let env = TestEnv::new("trusted").await;
    let rr = env.dynamic::<RoleRequest>("gitops").await;
    let rb = env.dynamic::<RoleBinding>("gitops").await;
    let req = with(
        &request(&env.ns, "reviewed-in-git", "alice"),
        "/spec/approvals",
        Some(json!([{"user": "bob", "decision": "Approve"}, {"user": "carol", "decision": "Approve"}])),
    );
    create_json(&rr, req)
        .await
        .expect("GitOps may assert requester and approvers");
    create_json(&rb, binding(&env.ns, "reviewed-binding", "alice"))
        .await
        .expect("GitOps may assert grantedBy");
    // ...but a user outside the group, even a cluster admin, may not.
    let admin_rr = env.dynamic::<RoleRequest>("admin").await;
    expect_refused(
        create_json(&admin_rr, request(&env.ns, "admin-forged", "alice")).await,
        "spec.requester must be your own user name (admin)",
        "cluster admin asserting another requester",
    );
}

#[tokio::test]
async fn the_creator_is_stamped_by_the_api_server_and_cannot_be_forged() {
    let env = TestEnv::new("stamp").await;
    let rb = env.dynamic::<RoleBinding>("alice").await;
    // A forged stamp at creation is overwritten with the real caller.
    let forged = with(
        &binding(&env.ns, "stamped", "alice"),
        "/metadata/annotations",
        Some(json!({"foureyes.dev/created-by": "partner", "foureyes.dev/created-by-groups": "foureyes:partners"})),
    );
    let created = create_json(&rb, forged).await.expect("create");
    let ann = created.metadata.annotations.clone().unwrap();
    assert_eq!(ann["foureyes.dev/created-by"], "alice");
    assert_eq!(ann["foureyes.dev/created-by-groups"], "system:authenticated");
    // Re-applying a manifest without the stamps keeps them.
    let mut plain = binding(&env.ns, "stamped", "alice");
    plain["metadata"]["resourceVersion"] = json!(created.metadata.resource_version.clone().unwrap());
    let kept = replace_json(&rb, plain).await.expect("replace without annotations");
    assert_eq!(kept.metadata.annotations.unwrap()["foureyes.dev/created-by"], "alice");
    // Changing them is refused (or rewritten back), for anyone but the operator.
    let mut changed = kept_clone(&rb, "stamped").await;
    changed
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert("foureyes.dev/created-by-groups".into(), "foureyes:partners".into());
    match rb.replace("stamped", &Default::default(), &changed).await {
        Ok(after) => assert_eq!(
            after.metadata.annotations.unwrap()["foureyes.dev/created-by-groups"],
            "system:authenticated",
            "the stamp was rewritten back"
        ),
        Err(err) => assert!(support::refusal(err).contains("cannot be changed")),
    }
    // The partner's own creation carries the partner group.
    let prb = env.dynamic::<RoleBinding>("partner").await;
    let by_partner = create_json(&prb, binding(&env.ns, "by-partner", "partner"))
        .await
        .expect("create as partner");
    assert!(by_partner.metadata.annotations.unwrap()["foureyes.dev/created-by-groups"].contains("foureyes:partners"));
}

async fn kept_clone(api: &kube::Api<kube::api::DynamicObject>, name: &str) -> kube::api::DynamicObject {
    let mut obj = api.get(name).await.unwrap();
    obj.metadata.managed_fields = None;
    obj
}
