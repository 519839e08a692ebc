//! Lockouts on a real API server (DESIGN §2, invariant 11; §7, procedure 6):
//! a partner locks a person out of everything foureyes granted, in every
//! workspace, in one step; the person, their managers and a GitOps applier
//! try to get around it; it expires or is lifted and restores nothing.
//!
//! Lockouts are cluster-wide: each test locks out a subject of its own, so
//! that the tests of this binary can run in parallel.

mod support;

use std::time::{Duration, Instant};

use foureyes::api::{BindingPhase, IgnoreReason, Lockout, LockoutPhase, RequestPhase, RoleBinding, RoleRequest};
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use serde_json::json;
use support::world::{grant, ignored, more_managers, phase, setup, vote_as, wait_event, wait_phase, wait_request};
use support::{TestEnv, client, client_as, create_json, eventually, refusal};

/// Whether `user` (in `groups`) may `verb` `resource` in `namespace`, as the
/// API server's authorizer answers a SubjectAccessReview.
async fn can_as(user: &str, groups: &[&str], verb: &str, resource: &str, namespace: &str) -> bool {
    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_owned()),
            groups: Some(groups.iter().map(|g| g.to_string()).collect()),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.to_owned()),
                verb: Some(verb.to_owned()),
                resource: Some(resource.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(client("admin").await);
    let out = api
        .create(&PostParams::default(), &sar)
        .await
        .expect("SubjectAccessReview");
    out.status.is_some_and(|s| s.allowed)
}

fn lockout_json(name: &str, kind: &str, subject: &str, created_by: &str, duration: Option<&str>) -> serde_json::Value {
    let mut spec = json!({
        "subject": { "kind": kind, "name": subject },
        "reason": "INC-9: laptop stolen",
        "createdBy": created_by,
    });
    if let Some(d) = duration {
        spec["duration"] = json!(d);
    }
    json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "Lockout",
        "metadata": { "name": name }, "spec": spec,
    })
}

/// A dynamic API for Lockouts as `client`.
fn lockouts(c: kube::Client) -> Api<DynamicObject> {
    Api::all_with(c, &ApiResource::erase::<Lockout>(&()))
}

/// Creates a Lockout as `as_user`.
async fn lock(
    as_user: kube::Client,
    name: &str,
    kind: &str,
    subject: &str,
    by: &str,
    duration: Option<&str>,
) -> Result<(), String> {
    create_json(&lockouts(as_user), lockout_json(name, kind, subject, by, duration))
        .await
        .map(|_| ())
}

/// Waits until the lockout's status satisfies `check`.
async fn wait_lockout(name: &str, what: &str, check: impl Fn(&Lockout) -> bool) -> Lockout {
    let api = Api::<Lockout>::all(client("admin").await);
    eventually(&format!("lockout {name}: {what}"), Duration::from_secs(30), || async {
        let l = api.get(name).await.ok()?;
        check(&l).then_some(l)
    })
    .await
}

fn ready_reason(l: &Lockout) -> Option<String> {
    l.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.reason.clone())
}

fn request_json(env: &TestEnv, name: &str, subject: serde_json::Value, requester: &str) -> serde_json::Value {
    json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
        "metadata": { "name": name, "namespace": env.ns },
        "spec": { "subject": subject, "projectRole": "reader", "project": "app", "duration": "1h",
                  "justification": "INC-9", "requester": requester },
    })
}

fn binding_json(env: &TestEnv, name: &str, subject: serde_json::Value, granted_by: &str) -> serde_json::Value {
    json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
        "metadata": { "name": name, "namespace": env.ns },
        "spec": { "subject": subject, "workspaceRole": "member", "duration": "1h",
                  "justification": "INC-9", "grantedBy": granted_by },
    })
}

async fn dynamic<K: kube::Resource<DynamicType = ()>>(env: &TestEnv, identity: &str) -> Api<DynamicObject> {
    env.dynamic::<K>(identity).await
}

/// Every history entry of the workspace's chunks, as JSON text.
async fn history_text(env: &TestEnv) -> String {
    let api: Api<ConfigMap> = Api::namespaced(client("admin").await, &env.ns);
    let list = api
        .list(&ListParams::default().labels("foureyes.dev/history=true"))
        .await
        .unwrap();
    list.items
        .into_iter()
        .flat_map(|cm| cm.data.unwrap_or_default().into_values())
        .collect::<Vec<_>>()
        .join("\n")
}

async fn wait_history(env: &TestEnv, needles: &[&str]) {
    eventually(
        &format!("history of {} with {needles:?}", env.ns),
        Duration::from_secs(30),
        || async {
            let text = history_text(env).await;
            needles.iter().all(|n| text.contains(n)).then_some(())
        },
    )
    .await;
}

/// The emergency of DESIGN §7, procedure 6, as the people involved act it:
/// dave holds a workspace role and a project role in one workspace, is a
/// manager in another and has voted there, has a pending request, and is
/// named by a hand-made ClusterRoleBinding. A partner locks him out: every
/// access check for him turns to "no" in every tenant and control
/// namespace, his request ends, his vote stops counting, and nothing new
/// for him or by him is admitted. The hand-made binding is reported, not
/// touched. Lifting the lockout restores nothing.
#[tokio::test]
async fn a_partner_locks_dave_out_of_everything() {
    let one = TestEnv::new("lock-one").await;
    let two = TestEnv::new("lock-two").await;
    let tenant_one = setup(&one, 1, 2).await;
    let tenant_two = setup(&two, 1, 2).await;
    let dave = || json!({"kind": "User", "name": "dave"});
    grant(
        &one,
        "partner",
        "member-dave",
        dave(),
        json!({"workspaceRole": "member"}),
        "1h",
    )
    .await;
    grant(
        &one,
        "partner",
        "dave-reader",
        dave(),
        json!({"project": "app", "projectRole": "reader"}),
        "1h",
    )
    .await;
    grant(
        &two,
        "partner",
        "dave-reader",
        dave(),
        json!({"project": "app", "projectRole": "reader"}),
        "1h",
    )
    .await;
    more_managers(&one, &["bob"]).await;
    more_managers(&two, &["dave"]).await;
    for (env, name) in [(&one, "member-dave"), (&one, "dave-reader"), (&two, "dave-reader")] {
        wait_phase(env, name, BindingPhase::Active).await;
    }
    // dave's pending request, and his approval of erin's request in `two`.
    create_json(
        &dynamic::<RoleRequest>(&one, "dave").await,
        request_json(&one, "dave-more", dave(), "dave"),
    )
    .await
    .expect("dave's request");
    create_json(
        &dynamic::<RoleRequest>(&two, "erin").await,
        request_json(&two, "erin-reader", json!({"kind": "User", "name": "erin"}), "erin"),
    )
    .await
    .expect("erin's request");
    vote_as(&two, "dave", "dave", "erin-reader", "Approve").await.unwrap();
    wait_request(&two, "erin-reader", "dave's approval counted", |r| {
        r.status
            .as_ref()
            .is_some_and(|s| s.approved_by.contains(&"dave".to_owned()))
    })
    .await;
    wait_request(&one, "dave-more", "pending", |r| {
        phase(r) == Some(RequestPhase::Pending)
    })
    .await;
    // What dave may do through foureyes: read pods in both tenant
    // namespaces, read both control namespaces.
    let checks = [
        ("list", "pods", tenant_one.clone()),
        ("list", "pods", tenant_two.clone()),
        ("list", "configmaps", one.ns.clone()),
        ("list", "configmaps", two.ns.clone()),
    ];
    for (verb, resource, ns) in &checks {
        assert!(
            can_as("dave", &[], verb, resource, ns).await,
            "before: {verb} {resource} in {ns}"
        );
    }

    // A partner locks dave out.
    let name = format!("dave-compromised-{}", std::process::id());
    let started = Instant::now();
    lock(client("partner").await, &name, "User", "dave", "partner", None)
        .await
        .expect("a partner may lock dave out");
    eventually(
        "every access check for dave denied",
        Duration::from_secs(10),
        || async {
            for (verb, resource, ns) in &checks {
                if can_as("dave", &[], verb, resource, ns).await {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    let took = started.elapsed();
    eprintln!("lockout: every access check for dave denied {took:?} after the lockout was created");
    assert!(took < Duration::from_secs(3), "took {took:?}");

    // Every binding is Revoked, naming the lockout; the request ended; the vote stopped counting.
    for (env, b) in [
        (&one, "member-dave"),
        (&one, "dave-reader"),
        (&two, "dave-reader"),
        (&two, "manager-dave"),
    ] {
        let rb = wait_phase(env, b, BindingPhase::Revoked).await;
        let status = rb.status.unwrap();
        assert_eq!(status.lockout.as_deref(), Some(name.as_str()), "{b}");
        let ready = status.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.reason, "LockedOut");
        assert!(ready.message.contains(&name), "{}", ready.message);
    }
    let r = wait_request(&one, "dave-more", "ended", |r| phase(r) == Some(RequestPhase::Denied)).await;
    assert_eq!(r.status.unwrap().lockout.as_deref(), Some(name.as_str()));
    let r = wait_request(&two, "erin-reader", "dave's vote ignored", |r| {
        ignored(r).contains(&("dave".to_owned(), IgnoreReason::LockedOut))
    })
    .await;
    assert!(!r.status.unwrap().approved_by.contains(&"dave".to_owned()));
    wait_event(&one.ns, "member-dave", "LockedOut").await;

    // The lockout says what it did.
    let l = wait_lockout(&name, "enforced", |l| ready_reason(l).as_deref() == Some("Enforced")).await;
    let status = l.status.unwrap();
    assert_eq!(status.phase, Some(LockoutPhase::Active));
    assert_eq!((status.revoked, status.remaining, status.ended_requests), (4, 0, 1));
    let mut touched = status.workspaces.clone();
    touched.sort();
    let mut expected = vec![one.name.clone(), two.name.clone()];
    expected.sort();
    assert_eq!(touched, expected);

    // Access that foureyes did not grant, made by hand: the lockout lists it
    // (and never touches it).
    let crb_name = format!("dave-by-hand-{}", std::process::id());
    let crbs: Api<ClusterRoleBinding> = Api::all(client("admin").await);
    crbs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": { "name": crb_name },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view" },
            "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "dave" }],
        }))
        .unwrap(),
    )
    .await
    .expect("hand-made ClusterRoleBinding");
    let l = wait_lockout(&name, "the hand-made binding listed", |l| {
        l.status.as_ref().is_some_and(|s| {
            s.outside_access
                .iter()
                .any(|g| g.kind == "ClusterRoleBinding" && g.name == crb_name && g.role == "ClusterRole/view")
        })
    })
    .await;
    assert!(l.status.unwrap().outside_access_count >= 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        crbs.get_opt(&crb_name).await.unwrap().is_some(),
        "foureyes never touches it"
    );
    wait_history(&one, &["\"action\":\"LockoutCreated\"", "\"action\":\"LockedOut\""]).await;
    wait_history(&two, &["\"action\":\"LockoutCreated\"", "\"action\":\"LockedOut\""]).await;

    // Nothing new for him or by him is admitted, and the refusal names the lockout.
    let err = create_json(
        &dynamic::<RoleRequest>(&one, "dave").await,
        request_json(&one, "dave-again", dave(), "dave"),
    )
    .await
    .unwrap_err();
    assert!(err.contains(&name), "dave's new request: {err}");
    let err = create_json(
        &dynamic::<RoleBinding>(&one, "alice").await,
        binding_json(&one, "member-dave-again", dave(), "alice"),
    )
    .await
    .unwrap_err();
    assert!(
        err.contains(&name) && err.contains("no new binding"),
        "alice's binding for dave: {err}"
    );
    let err = create_json(
        &dynamic::<RoleRequest>(&one, "alice").await,
        request_json(&one, "alice-for-dave", dave(), "alice"),
    )
    .await
    .unwrap_err();
    assert!(err.contains(&name), "alice's request for dave: {err}");
    let err = vote_as(&two, "dave", "dave", "erin-reader", "Deny").await.unwrap_err();
    assert!(err.contains(&name), "dave's vote: {err}");
    // A GitOps applier may write votes in others' names, but not in his.
    let err = vote_as(&two, "gitops", "dave", "erin-reader", "Deny")
        .await
        .unwrap_err();
    assert!(
        err.contains(&name) && err.contains("vote"),
        "a vote in dave's name: {err}"
    );
    // dave declaring himself someone else changes nothing: he is still dave.
    let err = create_json(
        &dynamic::<RoleRequest>(&one, "dave").await,
        request_json(&one, "erin-by-dave", json!({"kind": "User", "name": "erin"}), "erin"),
    )
    .await
    .unwrap_err();
    assert!(err.contains(&name) || err.contains("own user name"), "{err}");
    // Others go on as before.
    create_json(
        &dynamic::<RoleRequest>(&one, "erin").await,
        request_json(&one, "erin-ok", json!({"kind": "User", "name": "erin"}), "erin"),
    )
    .await
    .expect("erin is not locked out");

    // The hand-made binding goes: the lockout's list follows.
    crbs.delete(&crb_name, &DeleteParams::default()).await.unwrap();
    wait_lockout(&name, "the hand-made binding gone from the list", |l| {
        l.status
            .as_ref()
            .is_some_and(|s| !s.outside_access.iter().any(|g| g.name == crb_name))
    })
    .await;

    // Lifted: recorded; nothing comes back.
    let partner_lockouts = lockouts(client("partner").await);
    partner_lockouts
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": {
                "foureyes.dev/lifted-by": "partner", "foureyes.dev/lifted-reason": "INC-9 closed" } } })),
        )
        .await
        .expect("the lifter names themselves");
    partner_lockouts
        .delete(&name, &DeleteParams::default())
        .await
        .expect("a partner may lift it");
    let api = Api::<Lockout>::all(client("admin").await);
    eventually("the lockout gone", Duration::from_secs(20), || async {
        api.get_opt(&name).await.ok()?.is_none().then_some(())
    })
    .await;
    wait_history(&one, &["\"action\":\"LockoutLifted\""]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let b = wait_phase(&one, "member-dave", BindingPhase::Revoked).await;
    assert_eq!(b.status.unwrap().lockout.as_deref(), Some(name.as_str()));
    assert!(
        !can_as("dave", &[], "list", "configmaps", &one.ns).await,
        "lifting restores nothing"
    );
}

/// Only partners and cluster administrators write Lockouts; identity fields
/// name the caller; a lockout cannot be edited into another, marked expired
/// by hand, aimed at the operator, or lifted by the person it locks out.
#[tokio::test]
async fn only_partners_lock_and_lift_and_nobody_gets_around_it() {
    support::shared_operator();
    let pid = std::process::id();
    let name = format!("mallory-{pid}");
    let subject = format!("mallory-{pid}");

    // alice is a manager, not a partner: she can neither create one...
    let err = lock(client("alice").await, &name, "User", &subject, "alice", None)
        .await
        .unwrap_err();
    assert!(err.contains("forbidden") || err.contains("may not"), "{err}");
    // ...nor claim a partner created it.
    let err = lock(client("alice").await, &name, "User", &subject, "partner", None)
        .await
        .unwrap_err();
    assert!(err.contains("forbidden") || err.contains("may not"), "{err}");
    // A partner cannot write another's name as its author.
    let err = lock(client("partner").await, &name, "User", &subject, "admin", None)
        .await
        .unwrap_err();
    assert!(err.contains("spec.createdBy must be your own user name"), "{err}");
    // Nor lock out the operator, which enforces lockouts.
    let err = lock(
        client("partner").await,
        &format!("op-{pid}"),
        "User",
        "system:serviceaccount:foureyes-system:foureyes",
        "partner",
        None,
    )
    .await
    .unwrap_err();
    assert!(err.contains("cannot be locked out"), "{err}");

    lock(client("partner").await, &name, "User", &subject, "partner", None)
        .await
        .expect("a partner may");
    wait_lockout(&name, "enforced", |l| ready_reason(l).as_deref() == Some("Enforced")).await;
    // A cluster administrator may too (and a partner named by group).
    lock(
        client_as("pat", &["foureyes:partners"]).await,
        &format!("{name}-by-group"),
        "User",
        &subject,
        "pat",
        None,
    )
    .await
    .expect("a partner by group may");

    // alice can neither lift nor edit it.
    let err = lockouts(client("alice").await)
        .delete(&name, &DeleteParams::default())
        .await
        .map(|_| ())
        .map_err(refusal)
        .unwrap_err();
    assert!(err.contains("forbidden") || err.contains("may not"), "{err}");
    let err = lockouts(client("alice").await)
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "foureyes.dev/lockout-expired": "true" } } })),
        )
        .await
        .map(|_| ())
        .map_err(refusal)
        .unwrap_err();
    assert!(err.contains("forbidden") || err.contains("may not"), "{err}");
    // Not even a partner may aim it at someone else, rewrite its author, or
    // mark it expired by hand.
    let partner = lockouts(client("partner").await);
    for patch in [
        json!({ "spec": { "subject": { "kind": "User", "name": "erin" } } }),
        json!({ "spec": { "createdBy": "bob" } }),
        json!({ "spec": { "duration": "1s" } }),
    ] {
        let err = partner
            .patch(&name, &PatchParams::default(), &Patch::Merge(patch.clone()))
            .await
            .map(|_| ())
            .map_err(refusal)
            .unwrap_err();
        assert!(
            err.contains("immutable") || err.contains("at most one"),
            "{patch}: {err}"
        );
    }
    let err = partner
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "foureyes.dev/lockout-expired": "true" } } })),
        )
        .await
        .map(|_| ())
        .map_err(refusal)
        .unwrap_err();
    assert!(err.contains("only by the foureyes operator"), "{err}");
    let err = partner
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { "foureyes.dev/lifted-by": "bob" } } })),
        )
        .await
        .map(|_| ())
        .map_err(refusal)
        .unwrap_err();
    assert!(err.contains("must be your own user name"), "{err}");
    // Nobody writes its status but the operator.
    let err = partner
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "phase": "Expired" } })),
        )
        .await
        .map(|_| ())
        .map_err(refusal)
        .unwrap_err();
    assert!(
        err.contains("written only by the foureyes operator") || err.contains("forbidden"),
        "{err}"
    );

    // A partner who is locked out cannot lift their own lockout (or any).
    let locked_partner = format!("pat-{pid}");
    lock(
        client("partner").await,
        &format!("{name}-pat"),
        "User",
        &locked_partner,
        "partner",
        None,
    )
    .await
    .unwrap();
    let as_locked = lockouts(client_as(&locked_partner, &["foureyes:partners"]).await);
    eventually(
        "the lockout of the partner takes effect",
        Duration::from_secs(10),
        || async {
            let err = as_locked
                .delete(&format!("{name}-pat"), &DeleteParams::default())
                .await
                .map(|_| ())
                .map_err(refusal)
                .err()?;
            err.contains("locked out").then_some(())
        },
    )
    .await;

    for n in [name.clone(), format!("{name}-by-group"), format!("{name}-pat")] {
        partner
            .delete(&n, &DeleteParams::default())
            .await
            .expect("the partner lifts it");
    }
}

/// An expired lockout refuses nothing any more, and restores nothing: the
/// binding it revoked stays revoked, and new access takes the usual path.
#[tokio::test]
async fn an_expired_lockout_stops_refusing_but_restores_nothing() {
    let env = TestEnv::new("lock-exp").await;
    setup(&env, 1, 2).await;
    let carol = || json!({"kind": "User", "name": "carol"});
    grant(
        &env,
        "partner",
        "member-carol",
        carol(),
        json!({"workspaceRole": "member"}),
        "1h",
    )
    .await;
    wait_phase(&env, "member-carol", BindingPhase::Active).await;
    let name = format!("carol-{}", std::process::id());
    lock(client("partner").await, &name, "User", "carol", "partner", Some("6s"))
        .await
        .unwrap();
    wait_phase(&env, "member-carol", BindingPhase::Revoked).await;
    let err = create_json(
        &dynamic::<RoleBinding>(&env, "alice").await,
        binding_json(&env, "member-carol-2", carol(), "alice"),
    )
    .await
    .unwrap_err();
    assert!(err.contains(&name), "{err}");

    // At the expiry the operator marks it; admission then lets new access through.
    let l = wait_lockout(&name, "expired and marked", |l| {
        l.status.as_ref().and_then(|s| s.phase) == Some(LockoutPhase::Expired)
            && l.metadata
                .labels
                .as_ref()
                .is_some_and(|x| x.contains_key("foureyes.dev/lockout-expired"))
    })
    .await;
    assert_eq!(ready_reason(&l).as_deref(), Some("Expired"));
    eventually(
        "admission lets a new binding for carol through",
        Duration::from_secs(10),
        || async {
            create_json(
                &dynamic::<RoleBinding>(&env, "alice").await,
                binding_json(&env, "member-carol-2", carol(), "alice"),
            )
            .await
            .ok()
        },
    )
    .await;
    wait_phase(&env, "member-carol-2", BindingPhase::Active).await;
    let old = wait_phase(&env, "member-carol", BindingPhase::Revoked).await;
    assert_eq!(
        old.status.unwrap().lockout.as_deref(),
        Some(name.as_str()),
        "restores nothing"
    );
    wait_history(&env, &["\"action\":\"LockoutExpired\""]).await;
    lockouts(client("partner").await)
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
}

/// A group lockout ends the bindings and requests whose subject is the
/// group, refuses new ones, and refuses the writes of callers in it.
#[tokio::test]
async fn a_group_lockout() {
    let env = TestEnv::new("lock-group").await;
    setup(&env, 1, 2).await;
    let group = format!("contractors-{}", std::process::id());
    let subject = || json!({"kind": "Group", "name": group});
    grant(
        &env,
        "partner",
        "member-contractors",
        subject(),
        json!({"workspaceRole": "member"}),
        "1h",
    )
    .await;
    wait_phase(&env, "member-contractors", BindingPhase::Active).await;
    assert!(can_as("frank", &[&group], "list", "configmaps", &env.ns).await);
    create_json(
        &dynamic::<RoleRequest>(&env, "alice").await,
        request_json(&env, "contractors-reader", subject(), "alice"),
    )
    .await
    .unwrap();

    let name = format!("contractors-{}", std::process::id());
    lock(client("partner").await, &name, "Group", &group, "partner", None)
        .await
        .unwrap();
    wait_phase(&env, "member-contractors", BindingPhase::Revoked).await;
    eventually("the group's access gone", Duration::from_secs(10), || async {
        (!can_as("frank", &[&group], "list", "configmaps", &env.ns).await).then_some(())
    })
    .await;
    let r = wait_request(&env, "contractors-reader", "ended", |r| {
        phase(r) == Some(RequestPhase::Denied)
    })
    .await;
    assert_eq!(r.status.unwrap().lockout.as_deref(), Some(name.as_str()));
    let err = create_json(
        &dynamic::<RoleBinding>(&env, "alice").await,
        binding_json(&env, "member-contractors-2", subject(), "alice"),
    )
    .await
    .unwrap_err();
    assert!(err.contains(&name), "{err}");
    // A member of the group (a partner among them) is refused as a caller.
    let as_member = Api::<DynamicObject>::namespaced_with(
        client_as("partner", &[&group]).await,
        &env.ns,
        &ApiResource::erase::<RoleRequest>(&()),
    );
    let err = create_json(
        &as_member,
        request_json(&env, "by-a-member", json!({"kind": "User", "name": "erin"}), "partner"),
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("you (partner) are locked out") && err.contains(&name),
        "{err}"
    );
    wait_lockout(&name, "enforced", |l| ready_reason(l).as_deref() == Some("Enforced")).await;
    lockouts(client("partner").await)
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
}
