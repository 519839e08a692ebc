//! Role requests on a real API server (DESIGN §2, §3): the four-eyes quorum
//! acting as three managers (alice, bob, carol), the subject (dave), a
//! non-member (erin) and a partner; denial, timeouts, an unreachable quorum
//! and break-glass, and partner self-assignment.

mod support;

use std::time::Duration;

use foureyes::api::{BindingPhase, IgnoreReason, RequestPhase, RoleBinding, RoleRequest};
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use support::world::{
    app_history_until, grant, ignored, more_managers, natives_of, phase, setup, update_workspace, vote_as,
    wait_condition, wait_event, wait_phase, wait_request,
};
use support::{TestEnv, can, client, eventually};

/// Files a request as `as_user` (who is the requester) for `subject`.
async fn request(env: &TestEnv, as_user: &str, name: &str, subject: &str, role: serde_json::Value, duration: &str) {
    let mut spec = json!({
        "subject": { "kind": "User", "name": subject },
        "duration": duration,
        "justification": "INC-7: checkout is down",
        "requester": as_user,
    });
    spec.as_object_mut().unwrap().extend(role.as_object().unwrap().clone());
    let r: RoleRequest = serde_json::from_value(json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
        "metadata": { "name": name, "namespace": env.ns }, "spec": spec,
    }))
    .unwrap();
    env.api::<RoleRequest>(as_user)
        .await
        .create(&PostParams::default(), &r)
        .await
        .expect("create request");
}

async fn vote(env: &TestEnv, as_user: &str, name: &str, decision: &str) {
    vote_as(env, as_user, as_user, name, decision)
        .await
        .unwrap_or_else(|e| panic!("{as_user} votes {decision} on {name}: {e}"));
}

fn tally(r: &RoleRequest) -> String {
    r.status.as_ref().and_then(|s| s.approvals.clone()).unwrap_or_default()
}

/// The (action, actor) of every history entry about `object` in the chain of
/// project `app`, once it holds at least `at_least` of them.
async fn history_of(env: &TestEnv, object: &str, at_least: usize) -> Vec<(String, String)> {
    let what = format!("{at_least} history entries about {object}");
    app_history_until(env, object, &what, |entries| entries.len() >= at_least).await
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

const ADMIN_ROLE: fn() -> serde_json::Value = || json!({"project": "app", "projectRole": "admin"});

#[tokio::test]
async fn four_eyes_end_to_end_with_ignored_votes() {
    let env = TestEnv::new("rq-4eyes").await;
    let tenant = setup(&env, 1, 2).await;
    more_managers(&env, &["bob", "carol"]).await;

    // The subject asks for themselves: the request does not count as anyone's approval.
    request(&env, "dave", "dave-admin", "dave", ADMIN_ROLE(), "2h").await;
    let r = wait_request(&env, "dave-admin", "pending 0/2", |r| {
        phase(r) == Some(RequestPhase::Pending) && tally(r) == "0/2"
    })
    .await;
    assert!(r.status.unwrap().pending_until.is_some());
    wait_event(&env.ns, "dave-admin", "Requested").await;

    // The subject approving their own request is ignored; so is a non-member.
    vote(&env, "dave", "dave-admin", "Approve").await;
    vote(&env, "erin", "dave-admin", "Approve").await;
    // alice votes twice: counted once (the very same vote twice is refused
    // at admission; a second vote with its own comment is ignored).
    vote(&env, "alice", "dave-admin", "Approve").await;
    let same = vote_as(&env, "alice", "alice", "dave-admin", "Approve").await;
    assert!(
        same.as_ref().is_err_and(|e| e.contains("cannot appear twice")),
        "{same:?}"
    );
    // (The operator writes the status meanwhile: read again on a conflict.)
    let api = env.api::<RoleRequest>("alice").await;
    for attempt in 1.. {
        let mut r = api.get("dave-admin").await.unwrap();
        r.spec.approvals.push(
            serde_json::from_value(json!({ "user": "alice", "decision": "Approve", "comment": "again" })).unwrap(),
        );
        match api.replace("dave-admin", &PostParams::default(), &r).await {
            Ok(_) => break,
            Err(kube::Error::Api(e)) if e.code == 409 && attempt < 10 => continue,
            Err(e) => panic!("alice's second vote: {e}"),
        }
    }
    let r = wait_request(&env, "dave-admin", "1/2 with three ignored votes", |r| {
        tally(r) == "1/2" && ignored(r).len() == 3
    })
    .await;
    assert_eq!(
        ignored(&r),
        vec![
            ("dave".to_owned(), IgnoreReason::IsSubject),
            ("erin".to_owned(), IgnoreReason::NotManager),
            ("alice".to_owned(), IgnoreReason::Duplicate),
        ]
    );
    assert_eq!(phase(&r), Some(RequestPhase::Pending));
    assert!(!can("dave", "create", "configmaps", &tenant).await, "no access at 1/2");
    wait_event(&env.ns, "dave-admin", "VoteIgnored").await;

    // A forged approver is refused at admission.
    let forged = vote_as(&env, "erin", "bob", "dave-admin", "Approve").await;
    assert!(
        forged.as_ref().is_err_and(|e| e.contains("must name you")),
        "a vote in someone else's name: {forged:?}"
    );

    // The second manager completes the quorum: the binding exists and works.
    vote(&env, "bob", "dave-admin", "Approve").await;
    let r = wait_request(&env, "dave-admin", "granted", |r| {
        phase(r) == Some(RequestPhase::Granted)
    })
    .await;
    let s = r.status.clone().unwrap();
    assert_eq!(s.approved_by, vec!["alice", "bob"]);
    assert_eq!(s.approvals.as_deref(), Some("2/2"));
    assert_eq!(s.binding.as_deref(), Some("dave-admin"));
    let b = wait_phase(&env, "dave-admin", BindingPhase::Active).await;
    assert_eq!(
        b.spec.origin_request.as_ref().map(|o| o.uid.clone()),
        r.metadata.uid.clone(),
        "the binding names the request it came from"
    );
    assert_eq!(
        b.spec.granted_by, "bob",
        "granted by the approval that completed the quorum"
    );
    assert!(
        can("dave", "create", "configmaps", &tenant).await,
        "access once approved"
    );
    for reason in ["ApprovalCounted", "QuorumReached"] {
        wait_event(&env.ns, "dave-admin", reason).await;
    }
    // The decision's one event names the votes and the binding it created,
    // which is its related object (no event of its own for the creation).
    let events = kube::Api::<k8s_openapi::api::events::v1::Event>::namespaced(client("admin").await, &env.ns)
        .list(&Default::default())
        .await
        .unwrap();
    let decided = events
        .items
        .iter()
        .find(|e| {
            e.reason.as_deref() == Some("QuorumReached")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("dave-admin")
        })
        .expect("the QuorumReached event");
    assert_eq!(
        decided.related.as_ref().map(|r| (r.kind.as_deref(), r.name.as_deref())),
        Some((Some("RoleBinding"), Some("dave-admin")))
    );
    let note = decided.note.as_deref().unwrap_or_default();
    assert!(
        note.starts_with("approved by alice, bob (2/2); RoleBinding dave-admin created for 2h"),
        "{note}"
    );

    // The history records who did what, request and binding alike.
    assert_eq!(
        history_of(&env, "dave-admin", 5).await,
        pairs(&[
            ("Requested", "dave"),
            ("Approved", "alice"),
            ("Approved", "bob"),
            ("QuorumReached", "bob"),
            ("Granted", "bob"),
        ])
    );

    // A decided request cannot be voted on or edited any more.
    let late = vote_as(&env, "carol", "carol", "dave-admin", "Deny").await;
    assert!(
        late.as_ref().is_err_and(|e| e.contains("decided")),
        "a vote after the decision: {late:?}"
    );
    assert!(can("dave", "create", "configmaps", &tenant).await);
}

#[tokio::test]
async fn a_manager_request_counts_as_the_first_approval() {
    let env = TestEnv::new("rq-first").await;
    let tenant = setup(&env, 1, 2).await;
    more_managers(&env, &["bob"]).await;
    request(
        &env,
        "alice",
        "for-dave",
        "dave",
        json!({"project": "app", "projectRole": "user"}),
        "1h",
    )
    .await;
    // The approvers see what they sign: what the role's ClusterRole grants.
    let r = wait_request(&env, "for-dave", "1/2 from the requester, with what it grants", |r| {
        tally(r) == "1/2" && r.status.as_ref().is_some_and(|s| s.permissions.is_some())
    })
    .await;
    let signed = r.status.unwrap().permissions.unwrap();
    assert_eq!(signed.cluster_role, "foureyes-edit");
    assert!(
        signed.summary.starts_with("foureyes-edit: reads "),
        "{}",
        signed.summary
    );
    let verbs = |resource: &str| {
        signed
            .resources
            .iter()
            .find(|r| r.resource == resource)
            .map(|r| r.verbs.clone())
            .unwrap_or_default()
    };
    assert!(verbs("configmaps").contains(&"create".to_owned()), "{signed:?}");
    assert!(verbs("apps/deployments").contains(&"delete".to_owned()), "{signed:?}");
    for never in ["RBAC writes", "impersonate", "token creation", "everything"] {
        assert!(!signed.dangerous.contains(&never.to_owned()), "{never}: {signed:?}");
    }
    vote(&env, "bob", "for-dave", "Approve").await;
    let r = wait_request(&env, "for-dave", "granted", |r| phase(r) == Some(RequestPhase::Granted)).await;
    assert_eq!(
        r.status.unwrap().permissions,
        Some(signed),
        "fixed from the approval on"
    );
    wait_phase(&env, "for-dave", BindingPhase::Active).await;
    assert!(can("dave", "create", "configmaps", &tenant).await);
}

#[tokio::test]
async fn a_deny_ends_the_request() {
    let env = TestEnv::new("rq-deny").await;
    let tenant = setup(&env, 1, 2).await;
    more_managers(&env, &["bob"]).await;
    request(&env, "dave", "denied", "dave", ADMIN_ROLE(), "1h").await;
    vote(&env, "alice", "denied", "Approve").await;
    vote(&env, "bob", "denied", "Deny").await;
    let r = wait_request(&env, "denied", "denied", |r| phase(r) == Some(RequestPhase::Denied)).await;
    assert_eq!(r.status.unwrap().denied_by.as_deref(), Some("bob"));
    wait_event(&env.ns, "denied", "Denied").await;
    let entries = history_of(&env, "denied", 3).await;
    assert_eq!(
        entries.last(),
        Some(&("Denied".to_owned(), "bob".to_owned())),
        "{entries:?}"
    );
    assert!(
        env.api::<RoleBinding>("admin")
            .await
            .get_opt("denied")
            .await
            .unwrap()
            .is_none(),
        "no binding for a denied request"
    );
    assert!(!can("dave", "create", "configmaps", &tenant).await);
}

#[tokio::test]
async fn a_request_times_out_and_late_votes_are_refused() {
    let env = TestEnv::new("rq-timeout").await;
    let tenant = setup(&env, 1, 2).await;
    more_managers(&env, &["bob"]).await;
    update_workspace(
        &env.name,
        json!({ "approvalPolicy": { "pendingTimeout": "4s" } }),
        |ws| ws.spec.approval_policy.pending_timeout.as_str() == "4s",
    )
    .await;
    request(&env, "dave", "slow", "dave", ADMIN_ROLE(), "1h").await;
    vote(&env, "alice", "slow", "Approve").await;
    let r = wait_request(&env, "slow", "expired", |r| phase(r) == Some(RequestPhase::Expired)).await;
    wait_event(&env.ns, "slow", "RequestExpired").await;
    let late = vote_as(&env, "bob", "bob", "slow", "Approve").await;
    assert!(late.is_err(), "a vote after the timeout is refused at admission");
    assert_eq!(phase(&r), Some(RequestPhase::Expired));
    assert!(
        env.api::<RoleBinding>("admin")
            .await
            .get_opt("slow")
            .await
            .unwrap()
            .is_none()
    );
    assert!(!can("dave", "create", "configmaps", &tenant).await);
}

#[tokio::test]
async fn quorum_unreachable_then_partner_break_glass() {
    let env = TestEnv::new("rq-glass").await;
    let tenant = setup(&env, 1, 2).await; // alice is the only manager; two are needed
    request(&env, "alice", "glass", "dave", ADMIN_ROLE(), "30m").await;
    let r = wait_request(&env, "glass", "quorum unreachable", |r| {
        phase(r) == Some(RequestPhase::QuorumUnreachable)
    })
    .await;
    assert_eq!(tally(&r), "1/2", "never silently downgraded to one approval");
    assert!(
        r.status
            .unwrap()
            .conditions
            .iter()
            .any(|c| c.type_ == "QuorumUnreachable" && c.status == foureyes::api::ConditionStatus::True)
    );
    wait_event(&env.ns, "glass", "QuorumUnreachable").await;
    assert!(!can("dave", "create", "configmaps", &tenant).await);

    // The partner (recognised by group, from the admission stamp) approves alone.
    vote(&env, "partner", "glass", "Approve").await;
    let r = wait_request(&env, "glass", "granted", |r| phase(r) == Some(RequestPhase::Granted)).await;
    assert_eq!(r.status.unwrap().break_glass_by.as_deref(), Some("partner"));
    wait_event(&env.ns, "glass", "BreakGlass").await;
    wait_phase(&env, "glass", BindingPhase::Active).await;
    assert_eq!(
        history_of(&env, "glass", 5).await,
        pairs(&[
            ("Requested", "alice"),
            ("Approved", "alice"),
            ("QuorumUnreachable", "foureyes"),
            ("BreakGlass", "partner"),
            ("Granted", "partner"),
        ])
    );
    assert!(can("dave", "create", "configmaps", &tenant).await);
}

#[tokio::test]
async fn without_break_glass_a_partner_vote_does_not_count() {
    let env = TestEnv::new("rq-noglass").await;
    setup(&env, 1, 2).await;
    update_workspace(
        &env.name,
        json!({ "approvalPolicy": { "partnerBreakGlass": false } }),
        |ws| !ws.spec.approval_policy.partner_break_glass,
    )
    .await;
    request(&env, "erin", "no-glass", "dave", ADMIN_ROLE(), "30m").await;
    vote(&env, "partner", "no-glass", "Approve").await;
    let r = wait_request(&env, "no-glass", "partner vote ignored", |r| !ignored(r).is_empty()).await;
    assert_eq!(ignored(&r), vec![("partner".to_owned(), IgnoreReason::NotManager)]);
    assert_eq!(phase(&r), Some(RequestPhase::QuorumUnreachable));
}

#[tokio::test]
async fn a_manager_removed_before_the_quorum_completes_no_longer_counts() {
    let env = TestEnv::new("rq-removed").await;
    let tenant = setup(&env, 1, 2).await;
    more_managers(&env, &["bob", "carol"]).await;
    request(&env, "dave", "removal", "dave", ADMIN_ROLE(), "1h").await;
    vote(&env, "alice", "removal", "Approve").await;
    wait_request(&env, "removal", "1/2", |r| tally(r) == "1/2").await;

    // alice loses the manager role (revoked by the partner).
    env.api::<RoleBinding>("partner")
        .await
        .patch(
            "manager-alice",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "revocation": { "by": "partner", "reason": "left the team" } } })),
        )
        .await
        .expect("revoke alice");
    wait_phase(&env, "manager-alice", BindingPhase::Revoked).await;
    let r = wait_request(&env, "removal", "alice no longer counts", |r| tally(r) == "0/2").await;
    assert_eq!(ignored(&r), vec![("alice".to_owned(), IgnoreReason::NotManager)]);

    vote(&env, "bob", "removal", "Approve").await;
    let r = wait_request(&env, "removal", "1/2 with bob", |r| tally(r) == "1/2").await;
    assert_eq!(phase(&r), Some(RequestPhase::Pending), "bob alone is not a quorum");
    assert!(!can("dave", "create", "configmaps", &tenant).await);
    vote(&env, "carol", "removal", "Approve").await;
    let r = wait_request(&env, "removal", "granted", |r| phase(r) == Some(RequestPhase::Granted)).await;
    assert_eq!(r.status.unwrap().approved_by, vec!["bob", "carol"]);
    wait_phase(&env, "removal", BindingPhase::Active).await;
    assert!(can("dave", "create", "configmaps", &tenant).await);
}

#[tokio::test]
async fn a_request_is_capped_by_the_workspace_max_duration() {
    let env = TestEnv::new("rq-cap").await;
    setup(&env, 1, 1).await;
    update_workspace(&env.name, json!({ "maxDuration": "1h" }), |ws| {
        ws.spec.max_duration.as_str() == "1h"
    })
    .await;
    // Quorum 1: alice's request is her approval.
    request(
        &env,
        "alice",
        "long",
        "dave",
        json!({"project": "app", "projectRole": "reader"}),
        "72h",
    )
    .await;
    let b = wait_phase(&env, "long", BindingPhase::Active).await;
    assert_eq!(
        b.spec.duration.as_ref().map(|d| d.as_str().to_owned()).as_deref(),
        Some("1h")
    );
    let s = b.status.unwrap();
    let lasts = s.expires_at.unwrap() - s.activated_at.unwrap();
    assert!(lasts <= chrono::Duration::hours(1), "capped to 1h: {lasts}");
}

#[tokio::test]
async fn a_request_for_an_unknown_project_is_never_approved() {
    let env = TestEnv::new("rq-unknown").await;
    setup(&env, 1, 1).await;
    request(
        &env,
        "alice",
        "nowhere",
        "dave",
        json!({"project": "ghost", "projectRole": "user"}),
        "1h",
    )
    .await;
    let r = wait_request(&env, "nowhere", "a ProjectNotFound condition", |r| {
        r.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.reason == "ProjectNotFound")
        })
    })
    .await;
    assert_eq!(phase(&r), Some(RequestPhase::Pending));
    wait_event(&env.ns, "nowhere", "ProjectNotFound").await;
    assert!(
        env.api::<RoleBinding>("admin")
            .await
            .get_opt("nowhere")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_partner_adds_themselves_as_manager_unless_restricted_to_member() {
    let env = TestEnv::new("rq-self").await;
    setup(&env, 1, 2).await;
    grant(
        &env,
        "partner",
        "partner-manager",
        json!({"kind": "User", "name": "partner"}),
        json!({"workspaceRole": "manager"}),
        "30m",
    )
    .await;
    let b = wait_phase(&env, "partner-manager", BindingPhase::Active).await;
    assert!(!natives_of(b.metadata.uid.as_deref().unwrap()).await.is_empty());

    let restricted = TestEnv::new("rq-selfr").await;
    setup(&restricted, 1, 2).await;
    update_workspace(
        &restricted.name,
        json!({ "restrictPartnerSelfAssignment": true }),
        |ws| ws.spec.restrict_partner_self_assignment,
    )
    .await;
    for role in ["manager", "member"] {
        grant(
            &restricted,
            "partner",
            &format!("partner-{role}"),
            json!({"kind": "User", "name": "partner"}),
            json!({ "workspaceRole": role }),
            "30m",
        )
        .await;
    }
    wait_phase(&restricted, "partner-member", BindingPhase::Active).await;
    let refused = wait_condition(
        &restricted,
        "partner-manager",
        "Authorized",
        "PartnerSelfAssignmentRestricted",
    )
    .await;
    assert_eq!(refused.status.unwrap().phase, Some(BindingPhase::Pending));
    assert!(natives_of(refused.metadata.uid.as_deref().unwrap()).await.is_empty());
}

#[tokio::test]
async fn a_forged_vote_stamp_is_replaced_by_the_api_server() {
    let env = TestEnv::new("rq-forge").await;
    let tenant = setup(&env, 1, 2).await;
    // erin claims, in the annotation, to have voted as a member of the partner group.
    let forged = "0\t1\tfoureyes:partners\terin\n";
    let r: RoleRequest = serde_json::from_value(json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
        "metadata": {
            "name": "forged", "namespace": env.ns,
            "annotations": { "foureyes.dev/votes": forged, "foureyes.dev/created-by-groups": "foureyes:partners" },
        },
        "spec": {
            "subject": { "kind": "User", "name": "dave" }, "project": "app", "projectRole": "admin",
            "duration": "1h", "justification": "INC-9", "requester": "erin",
            "approvals": [{ "user": "erin", "decision": "Approve" }],
        },
    }))
    .unwrap();
    let stored = env
        .api::<RoleRequest>("erin")
        .await
        .create(&PostParams::default(), &r)
        .await
        .expect("create request");
    let stamp = stored
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("foureyes.dev/votes"))
        .cloned()
        .unwrap_or_default();
    assert!(stamp.starts_with("0\t1\t") && stamp.ends_with("\terin\n"), "{stamp:?}");
    assert!(
        !stamp.contains("foureyes:partners"),
        "the forged groups were kept: {stamp:?}"
    );
    let r = wait_request(&env, "forged", "erin's vote ignored", |r| !ignored(r).is_empty()).await;
    assert_eq!(ignored(&r), vec![("erin".to_owned(), IgnoreReason::NotManager)]);
    assert_eq!(r.status.unwrap().break_glass_by, None);
    // A later write cannot rewrite it either.
    let api = env.api::<RoleRequest>("erin").await;
    let after = eventually("replace the request", Duration::from_secs(10), || async {
        let mut edited = api.get("forged").await.ok()?;
        edited
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert("foureyes.dev/votes".into(), forged.into());
        api.replace("forged", &PostParams::default(), &edited).await.ok()
    })
    .await;
    assert_eq!(
        after.metadata.annotations.unwrap().get("foureyes.dev/votes"),
        Some(&stamp)
    );
    assert!(!can("dave", "create", "configmaps", &tenant).await);
}

#[tokio::test]
async fn a_new_managers_approval_counts_only_after_the_cooling_off() {
    let env = TestEnv::new("rq-cool").await;
    let tenant = setup(&env, 1, 2).await;
    update_workspace(
        &env.name,
        json!({ "approvalPolicy": { "managerCoolingOff": "6s" } }),
        |ws| ws.spec.approval_policy.manager_cooling_off.as_str() == "6s",
    )
    .await;
    // bob is made a manager now; erin (not a manager) asks for dave.
    more_managers(&env, &["bob"]).await;
    request(&env, "erin", "cool", "dave", ADMIN_ROLE(), "1h").await;
    vote(&env, "bob", "cool", "Approve").await;
    vote(&env, "alice", "cool", "Approve").await;
    let r = wait_request(&env, "cool", "bob's approval held back", |r| {
        ignored(r).contains(&("bob".to_owned(), IgnoreReason::CoolingOff))
    })
    .await;
    assert_ne!(phase(&r), Some(RequestPhase::Granted), "no grant while bob cools off");
    assert!(!can("dave", "create", "configmaps", &tenant).await);
    wait_event(&env.ns, "cool", "VoteIgnored").await;

    // Once bob has been a manager for 6 s the same vote counts: granted,
    // without anyone voting again, and not before then.
    let r = wait_request(&env, "cool", "granted", |r| phase(r) == Some(RequestPhase::Granted)).await;
    let s = r.status.unwrap();
    assert_eq!(s.approved_by, ["bob", "alice"]);
    assert!(s.ignored.is_empty(), "{:?}", s.ignored);
    let bob_since = env
        .api::<RoleBinding>("admin")
        .await
        .get("manager-bob")
        .await
        .unwrap()
        .status
        .and_then(|s| s.activated_at)
        .unwrap();
    let decided = s.decided_at.unwrap();
    assert!(
        decided >= bob_since + chrono::Duration::seconds(6),
        "decided at {decided}, bob a manager since {bob_since}"
    );
    wait_phase(&env, "cool", BindingPhase::Active).await;
    assert!(can("dave", "create", "configmaps", &tenant).await);
}
