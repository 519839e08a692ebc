//! Break-glass ratified after the fact (DESIGN §7, procedure 7) on a real
//! API server: a partner's direct project grant, or approval alone, waits
//! for a workspace manager's verdict. An objection revokes it at once;
//! nobody in time flags it, or revokes it under `onUnratified: Revoke`; the
//! subject and the partner never ratify, and nobody ratifies in another's
//! name.

mod support;

use foureyes::api::{BindingPhase, IgnoreReason, RatificationState, RequestPhase, RoleBinding, RoleRequest};
use kube::api::PostParams;
use serde_json::json;
use std::time::Duration;
use support::world::{
    app_history_until, events_for, grant, more_managers, phase, setup, update_workspace, vote_as, wait_condition,
    wait_event, wait_phase, wait_request,
};
use support::{TestEnv, can, client, eventually, refusal};

/// Appends a verdict as `as_user` naming `user` (the caller, unless
/// forging), conditional on the version read.
async fn verdict_as(env: &TestEnv, as_user: &str, user: &str, name: &str, verdict: &str) -> Result<(), String> {
    let api = env.api::<RoleBinding>(as_user).await;
    for _ in 0..10 {
        let mut b = api.get(name).await.map_err(|e| e.to_string())?;
        b.spec.ratifications.push(
            serde_json::from_value(
                json!({ "user": user, "verdict": verdict, "comment": format!("{as_user}: {verdict}") }),
            )
            .unwrap(),
        );
        match api.replace(name, &PostParams::default(), &b).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(refusal(e)),
        }
    }
    Err("conflict after 10 attempts".into())
}

/// Waits until the binding's ratification satisfies `check`.
async fn wait_ratification(
    env: &TestEnv,
    name: &str,
    what: &str,
    check: impl Fn(&foureyes::api::RatificationStatus) -> bool,
) -> RoleBinding {
    let api = env.api::<RoleBinding>("admin").await;
    eventually(&format!("{name}: {what}"), Duration::from_secs(30), || async {
        let b = api.get(name).await.ok()?;
        let ok = b.status.as_ref()?.ratification.as_ref().is_some_and(&check);
        ok.then_some(b)
    })
    .await
}

fn ignored(b: &RoleBinding) -> Vec<(String, IgnoreReason)> {
    b.status
        .as_ref()
        .and_then(|s| s.ratification.as_ref())
        .map(|r| r.ignored.iter().map(|v| (v.user.clone(), v.reason)).collect())
        .unwrap_or_default()
}

/// The (action, actor) of every history entry about `object` in project
/// `app`'s chain, once it holds `action`.
async fn history_with(env: &TestEnv, object: &str, action: &str) -> Vec<(String, String)> {
    let what = format!("a history entry {action} about {object}");
    app_history_until(env, object, &what, |entries| entries.iter().any(|(a, _)| a == action)).await
}

#[tokio::test]
async fn an_objection_revokes_at_once_and_neither_subject_nor_partner_ratifies() {
    let env = TestEnv::new("bg-object").await;
    let tenant = setup(&env, 1, 2).await;
    // dave is a manager too, so that RBAC lets him write bindings: only the
    // operator's reading stops him from ratifying his own break-glass.
    more_managers(&env, &["bob", "dave"]).await;
    grant(
        &env,
        "partner",
        "glass",
        json!({"kind": "User", "name": "dave"}),
        json!({"project": "app", "projectRole": "admin"}),
        "1h",
    )
    .await;
    let b = wait_phase(&env, "glass", BindingPhase::Active).await;
    let r = b
        .status
        .as_ref()
        .unwrap()
        .ratification
        .clone()
        .expect("ratification started");
    assert_eq!(r.state, RatificationState::Awaiting);
    assert_eq!(r.break_glass_by, "partner");
    wait_condition(&env, "glass", "Ratified", "Awaiting").await;
    assert!(can("dave", "create", "configmaps", &tenant).await);

    // The subject and the partner cannot even append a verdict (admission
    // refuses it by name; the operator would ignore it anyway).
    for who in ["dave", "partner"] {
        let refused = verdict_as(&env, who, who, "glass", "Ratify").await.unwrap_err();
        assert!(
            refused.contains("neither the subject nor the one who granted it"),
            "{who}: {refused}"
        );
    }
    // erin, no manager: refused, or admitted and never counted.
    if verdict_as(&env, "erin", "erin", "glass", "Ratify").await.is_ok() {
        let b = wait_ratification(&env, "glass", "erin's verdict ignored", |r| !r.ignored.is_empty()).await;
        assert_eq!(ignored(&b), [("erin".to_owned(), IgnoreReason::NotManager)]);
    }
    // Nobody ratifies in another's name: dave writing bob's, bob writing
    // alice's, are refused by admission.
    let forged = verdict_as(&env, "dave", "bob", "glass", "Ratify").await.unwrap_err();
    assert!(forged.contains("must name you (dave)"), "{forged}");
    let forged = verdict_as(&env, "bob", "alice", "glass", "Object").await.unwrap_err();
    assert!(forged.contains("must name you (bob)"), "{forged}");
    // alice ratifies once; she cannot add a second verdict, nor edit hers.
    verdict_as(&env, "alice", "alice", "glass", "Ratify").await.unwrap();
    let twice = verdict_as(&env, "alice", "alice", "glass", "Object").await.unwrap_err();
    assert!(twice.contains("one verdict per person"), "{twice}");
    let api = env.api::<RoleBinding>("bob").await;
    let mut b = api.get("glass").await.unwrap();
    b.spec.ratifications[0].verdict = foureyes::api::Verdict::Object;
    let edited = refusal(api.replace("glass", &PostParams::default(), &b).await.unwrap_err());
    assert!(edited.contains("append-only"), "{edited}");
    let b = wait_ratification(&env, "glass", "ratified by alice", |r| {
        r.state == RatificationState::Ratified
    })
    .await;
    assert_eq!(b.status.unwrap().ratification.unwrap().by.as_deref(), Some("alice"));
    wait_event(&env.ns, "glass", "BreakGlassRatified").await;

    // Another break-glass grant: bob objects, and it is revoked at once.
    grant(
        &env,
        "partner",
        "glass2",
        json!({"kind": "User", "name": "erin"}),
        json!({"project": "app", "projectRole": "admin"}),
        "1h",
    )
    .await;
    wait_phase(&env, "glass2", BindingPhase::Active).await;
    assert!(can("erin", "create", "configmaps", &tenant).await);
    verdict_as(&env, "bob", "bob", "glass2", "Object").await.unwrap();
    let b = wait_phase(&env, "glass2", BindingPhase::Revoked).await;
    let r = b.status.as_ref().unwrap().ratification.clone().unwrap();
    assert_eq!((r.state, r.by.as_deref()), (RatificationState::Objected, Some("bob")));
    assert!(r.at.is_some() && r.revoked);
    wait_event(&env.ns, "glass2", "BreakGlassObjected").await;
    let entries = history_with(&env, "glass2", "Revoked").await;
    assert!(
        entries.contains(&("BreakGlassObjected".into(), "bob".into())),
        "{entries:?}"
    );
    assert!(entries.contains(&("Revoked".into(), "bob".into())), "{entries:?}");
    assert!(!can("erin", "create", "configmaps", &tenant).await);
    // dave still holds the ratified grant.
    assert!(can("dave", "create", "configmaps", &tenant).await);
}

#[tokio::test]
async fn unratified_break_glass_is_flagged_a_late_ratification_clears_it_and_revoke_ends_it() {
    let env = TestEnv::new("bg-unratified").await;
    let tenant = setup(&env, 1, 2).await;
    update_workspace(
        &env.name,
        json!({ "approvalPolicy": { "breakGlassRatification": { "window": "4s" } } }),
        |ws| ws.spec.approval_policy.break_glass_ratification.window.as_str() == "4s",
    )
    .await;
    grant(
        &env,
        "partner",
        "flagged",
        json!({"kind": "User", "name": "dave"}),
        json!({"project": "app", "projectRole": "admin"}),
        "1h",
    )
    .await;
    wait_phase(&env, "flagged", BindingPhase::Active).await;
    let b = wait_condition(&env, "flagged", "Ratified", "Unratified").await;
    assert_eq!(
        b.status.as_ref().unwrap().phase,
        Some(BindingPhase::Active),
        "Flag keeps the grant"
    );
    assert!(can("dave", "create", "configmaps", &tenant).await);
    wait_event(&env.ns, "flagged", "BreakGlassUnratified").await;
    let entries = history_with(&env, "flagged", "BreakGlassUnratified").await;
    assert!(
        entries.contains(&("BreakGlassUnratified".into(), "foureyes".into())),
        "{entries:?}"
    );

    // alice ratifies late: it counts, and says so.
    verdict_as(&env, "alice", "alice", "flagged", "Ratify").await.unwrap();
    let b = wait_ratification(&env, "flagged", "ratified late", |r| {
        r.state == RatificationState::Ratified
    })
    .await;
    assert_eq!(b.status.unwrap().ratification.unwrap().by.as_deref(), Some("alice"));
    wait_event(&env.ns, "flagged", "BreakGlassRatified").await;

    // Under Revoke, an unratified grant ends at the end of the window.
    update_workspace(
        &env.name,
        json!({ "approvalPolicy": { "breakGlassRatification": { "window": "4s", "onUnratified": "Revoke" } } }),
        |ws| ws.spec.approval_policy.break_glass_ratification.on_unratified == foureyes::api::OnUnratified::Revoke,
    )
    .await;
    grant(
        &env,
        "partner",
        "revoked",
        json!({"kind": "User", "name": "erin"}),
        json!({"project": "app", "projectRole": "admin"}),
        "1h",
    )
    .await;
    wait_phase(&env, "revoked", BindingPhase::Active).await;
    assert!(can("erin", "create", "configmaps", &tenant).await);
    let b = wait_phase(&env, "revoked", BindingPhase::Revoked).await;
    let r = b.status.unwrap().ratification.unwrap();
    assert_eq!(r.state, RatificationState::Unratified);
    assert!(r.revoked);
    assert!(!can("erin", "create", "configmaps", &tenant).await);
    let entries = history_with(&env, "revoked", "Revoked").await;
    assert!(
        entries.contains(&("BreakGlassUnratified".into(), "foureyes".into())),
        "{entries:?}"
    );
    assert!(entries.contains(&("Revoked".into(), "foureyes".into())), "{entries:?}");
    let events = events_for(&env.ns, "revoked").await;
    assert!(events.iter().any(|e| e == "BreakGlassUnratified"), "{events:?}");
}

#[tokio::test]
async fn a_partners_approval_alone_awaits_ratification_and_a_managers_grant_does_not() {
    let env = TestEnv::new("bg-request").await;
    setup(&env, 1, 2).await;
    // Only a partner can approve: alice is the only manager, two are needed.
    let r: RoleRequest = serde_json::from_value(json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
        "metadata": { "name": "alone", "namespace": env.ns },
        "spec": { "subject": { "kind": "User", "name": "dave" }, "project": "app", "projectRole": "admin",
                  "duration": "1h", "justification": "INC-9", "requester": "alice" },
    }))
    .unwrap();
    env.api::<RoleRequest>("alice")
        .await
        .create(&PostParams::default(), &r)
        .await
        .unwrap();
    wait_request(&env, "alone", "quorum unreachable", |r| {
        phase(r) == Some(RequestPhase::QuorumUnreachable)
    })
    .await;
    vote_as(&env, "partner", "partner", "alone", "Approve").await.unwrap();
    let b = wait_phase(&env, "alone", BindingPhase::Active).await;
    let r = b.status.unwrap().ratification.expect("ratification started");
    assert_eq!(
        (r.state, r.break_glass_by.as_str()),
        (RatificationState::Awaiting, "partner")
    );
    // alice's own request counted as her approval: her verdict is no second
    // pair of eyes. bob's is.
    verdict_as(&env, "alice", "alice", "alone", "Ratify").await.unwrap();
    let b = wait_ratification(&env, "alone", "alice's verdict ignored", |r| !r.ignored.is_empty()).await;
    assert_eq!(ignored(&b), [("alice".to_owned(), IgnoreReason::Duplicate)]);
    more_managers(&env, &["bob"]).await;
    verdict_as(&env, "bob", "bob", "alone", "Ratify").await.unwrap();
    let b = wait_ratification(&env, "alone", "ratified", |r| r.state == RatificationState::Ratified).await;
    assert_eq!(b.status.unwrap().ratification.unwrap().by.as_deref(), Some("bob"));

    // A manager's own grant of a workspace role (quorum 1) is no break-glass.
    grant(
        &env,
        "alice",
        "member-erin",
        json!({"kind": "User", "name": "erin"}),
        json!({"workspaceRole": "member"}),
        "1h",
    )
    .await;
    let b = wait_phase(&env, "member-erin", BindingPhase::Active).await;
    assert!(b.status.unwrap().ratification.is_none());
}

/// DESIGN §2, invariant 11 for the new entry point: while a lockout lasts,
/// no verdict by the locked user, nor in their name by a trusted asserter,
/// is admitted. (mallory, reached by impersonation, is locked here so that
/// no other test's user is; she is impersonated in `system:masters`, so
/// that RBAC lets every write through to admission once the lockout has
/// revoked her manager binding.)
#[tokio::test]
async fn a_locked_out_manager_cannot_ratify_nor_can_anyone_in_their_name() {
    use foureyes::api::Lockout;
    use kube::core::{ApiResource, DynamicObject};
    let env = TestEnv::new("bg-locked").await;
    setup(&env, 1, 2).await;
    more_managers(&env, &["mallory"]).await;
    grant(
        &env,
        "partner",
        "glass",
        json!({"kind": "User", "name": "dave"}),
        json!({"project": "app", "projectRole": "admin"}),
        "1h",
    )
    .await;
    wait_phase(&env, "glass", BindingPhase::Active).await;
    let lockouts: kube::Api<DynamicObject> =
        kube::Api::all_with(client("partner").await, &ApiResource::erase::<Lockout>(&()));
    let name = format!("{}-mallory", env.name);
    support::create_json(
        &lockouts,
        json!({
            "apiVersion": "foureyes.dev/v1alpha1", "kind": "Lockout",
            "metadata": { "name": name },
            "spec": { "subject": { "kind": "User", "name": "mallory" }, "reason": "INC-9: phished", "createdBy": "partner" },
        }),
    )
    .await
    .unwrap();

    // Admission learns of the lockout within moments: probe with a
    // harmless write until it is refused, then try the verdicts.
    let requests =
        kube::Api::<RoleRequest>::namespaced(support::client_as("mallory", &["system:masters"]).await, &env.ns);
    eventually("mallory's writes refused", Duration::from_secs(20), || async {
        let probe: RoleRequest = serde_json::from_value(json!({
            "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
            "metadata": { "generateName": "probe-", "namespace": env.ns },
            "spec": { "subject": { "kind": "User", "name": "erin" }, "workspaceRole": "member",
                      "duration": "1h", "justification": "probe", "requester": "mallory" },
        }))
        .unwrap();
        match requests.create(&PostParams::default(), &probe).await {
            Err(e) => refusal(e).contains("locked out").then_some(()),
            Ok(created) => {
                let _ = requests
                    .delete(&created.metadata.name.unwrap(), &Default::default())
                    .await;
                None
            }
        }
    })
    .await;
    let mallory =
        kube::Api::<RoleBinding>::namespaced(support::client_as("mallory", &["system:masters"]).await, &env.ns);
    let mut b = mallory.get("glass").await.unwrap();
    b.spec
        .ratifications
        .push(serde_json::from_value(json!({ "user": "mallory", "verdict": "Ratify" })).unwrap());
    let own = refusal(
        mallory
            .replace("glass", &PostParams::default(), &b)
            .await
            .expect_err("a locked-out manager's verdict was admitted"),
    );
    assert!(own.contains("locked out"), "{own}");
    let asserted = verdict_as(&env, "gitops", "mallory", "glass", "Ratify")
        .await
        .unwrap_err();
    assert!(
        asserted.contains("a ratification in their name is refused"),
        "{asserted}"
    );
    // The same trusted asserter may write in alice's name: the refusal above
    // is the lockout's.
    verdict_as(&env, "gitops", "alice", "glass", "Ratify").await.unwrap();
    let b = wait_ratification(&env, "glass", "ratified for alice", |r| {
        r.state == RatificationState::Ratified
    })
    .await;
    assert_eq!(b.status.unwrap().ratification.unwrap().by.as_deref(), Some("alice"));
    lockouts.delete(&name, &Default::default()).await.unwrap();
}
