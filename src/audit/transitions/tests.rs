use chrono::DateTime;
use serde_json::json;

use super::*;
use crate::api::conditions::{Condition, ConditionStatus, READY};
use crate::api::{BindingPhase, RequestPhase, RoleBindingStatus, RoleRequestStatus};
use crate::policy::RoleTarget;
use crate::policy::binding::{Authorization, BindingDecision, Grant, Refusal, Revoked};
use crate::policy::quorum::RequestDecision;
use crate::policy::transition::{PersistedKind, reason};
use crate::policy::{binding, lifecycle, quorum};

/// One transition of every kind, with a person as actor where a person
/// can be one. Adding a kind without listing it here fails to compile
/// (see `listed`).
fn every_kind() -> Vec<Transition> {
    let t = |kind: Kind, actor: Actor| Transition {
        kind,
        actor,
        subject: "User dave".into(),
        role: "app/admin".into(),
    };
    let alice = || Actor::User("alice".into());
    let until = Some(DateTime::UNIX_EPOCH);
    vec![
        t(
            Kind::Requested {
                duration: "2h".into(),
                required: 2,
                justification: "INC-1".into(),
                filed_by: Some("argo".into()),
            },
            alice(),
        ),
        t(
            Kind::ApprovalCounted {
                tally: "1/2".into(),
                deciding: false,
                written_by: None,
            },
            alice(),
        ),
        t(Kind::VoteIgnored(IgnoreReason::NotManager), alice()),
        t(
            Kind::QuorumReached {
                approvers: vec!["bob".into(), "alice".into()],
                tally: "2/2".into(),
            },
            alice(),
        ),
        t(
            Kind::BreakGlass {
                tally: "0/2".into(),
                written_by: None,
            },
            alice(),
        ),
        t(Kind::QuorumUnreachable { required: 2 }, Actor::Operator),
        t(Kind::Denied { tally: "1/2".into() }, alice()),
        t(Kind::RequestExpired { tally: "1/2".into() }, Actor::Operator),
        t(
            Kind::RequestProblem {
                reason: "ProjectNotFound",
                message: "no project app".into(),
            },
            Actor::Operator,
        ),
        t(
            Kind::BindingCreated {
                name: "dave".into(),
                duration: "1h".into(),
                capped_from: Some("2h".into()),
            },
            alice(),
        ),
        t(
            Kind::Granted {
                until,
                how: "GrantedByManager",
                namespaces: vec!["a-app".into()],
                justification: "INC-1".into(),
                created_by: None,
            },
            alice(),
        ),
        t(
            Kind::Expired {
                until,
                was_active: true,
                already_removed: false,
            },
            Actor::Operator,
        ),
        t(
            Kind::Revoked {
                reason: "laptop stolen".into(),
            },
            alice(),
        ),
        t(
            Kind::Refused {
                reason: "NotAuthorized",
                message: "alice may not".into(),
                created_by: None,
                recorded: true,
            },
            alice(),
        ),
        t(
            Kind::DriftCorrected {
                natives: vec!["a-app/x".into()],
            },
            Actor::Operator,
        ),
        t(
            Kind::Removed {
                why: "retention of 24h ended".into(),
                last_phase: "Expired".into(),
                retention_over: true,
            },
            Actor::Operator,
        ),
        t(
            Kind::PersistenceFound {
                found: vec![
                    Persisted {
                        kind: PersistedKind::RoleBinding,
                        namespace: "a-app".into(),
                        name: "backdoor".into(),
                    },
                    Persisted {
                        kind: PersistedKind::TokenSecret,
                        namespace: "a-app".into(),
                        name: "ci-token".into(),
                    },
                ],
                removed: true,
            },
            Actor::Operator,
        ),
        t(
            Kind::WorkspaceCreated {
                namespace: "ws-a".into(),
                policy: "approvals: 2".into(),
            },
            alice(),
        ),
        t(
            Kind::WorkspaceChanged {
                generation: 2,
                policy: "approvals: 1".into(),
            },
            alice(),
        ),
        t(
            Kind::WorkspaceDeleted {
                namespace: "ws-a".into(),
                revoked: 3,
            },
            Actor::Unknown,
        ),
        t(
            Kind::ProjectCreated {
                spec: "namespaces: a-app".into(),
            },
            alice(),
        ),
        t(
            Kind::ProjectChanged {
                generation: 2,
                spec: "namespaces: a-app, a-web".into(),
            },
            alice(),
        ),
        t(Kind::ProjectDeleted, Actor::Unknown),
        t(
            Kind::NamespaceClaimed {
                reason: reason::NAMESPACE_CREATED,
                message: "tenant namespace a-app created".into(),
            },
            Actor::Operator,
        ),
        t(
            Kind::NamespaceUnusable {
                reason: reason::NAMESPACE_TERMINATING,
                message: "namespace ws-a is being deleted".into(),
            },
            Actor::Operator,
        ),
        t(
            Kind::LockedOut {
                lockout: "dave-compromised".into(),
                reason: "INC-9 laptop stolen".into(),
            },
            alice(),
        ),
        t(
            Kind::LockoutCreated {
                lockout: "dave-compromised".into(),
                reason: "INC-9 laptop stolen".into(),
                until,
            },
            alice(),
        ),
        t(
            Kind::LockoutExpired {
                lockout: "dave-compromised".into(),
                until,
            },
            Actor::Operator,
        ),
        t(
            Kind::LockoutLifted {
                lockout: "dave-compromised".into(),
                reason: "INC-9 closed".into(),
            },
            alice(),
        ),
        t(Kind::ExpiringSoon { until }, Actor::Operator),
        t(
            Kind::BreakGlassRatified {
                partner: "pat".into(),
                comment: Some("INC-7 justified".into()),
                late: false,
            },
            alice(),
        ),
        t(
            Kind::BreakGlassObjected {
                partner: "pat".into(),
                comment: Some("no incident".into()),
            },
            alice(),
        ),
        t(
            Kind::BreakGlassUnratified {
                partner: "pat".into(),
                deadline: DateTime::UNIX_EPOCH,
                revoked: true,
                deleted: false,
            },
            Actor::Operator,
        ),
    ]
}

/// Fails to compile when a kind is added: add it to `every_kind` too.
fn listed(k: &Kind) -> usize {
    match k {
        Kind::Requested { .. } => 0,
        Kind::ApprovalCounted { .. } => 1,
        Kind::VoteIgnored(_) => 2,
        Kind::QuorumReached { .. } => 3,
        Kind::BreakGlass { .. } => 4,
        Kind::QuorumUnreachable { .. } => 5,
        Kind::Denied { .. } => 6,
        Kind::RequestExpired { .. } => 7,
        Kind::RequestProblem { .. } => 8,
        Kind::BindingCreated { .. } => 9,
        Kind::Granted { .. } => 10,
        Kind::Expired { .. } => 11,
        Kind::Revoked { .. } => 12,
        Kind::Refused { .. } => 13,
        Kind::DriftCorrected { .. } => 14,
        Kind::Removed { .. } => 15,
        Kind::PersistenceFound { .. } => 16,
        Kind::WorkspaceCreated { .. } => 17,
        Kind::WorkspaceChanged { .. } => 18,
        Kind::WorkspaceDeleted { .. } => 19,
        Kind::ProjectCreated { .. } => 20,
        Kind::ProjectChanged { .. } => 21,
        Kind::ProjectDeleted => 22,
        Kind::NamespaceClaimed { .. } => 23,
        Kind::NamespaceUnusable { .. } => 24,
        Kind::LockedOut { .. } => 25,
        Kind::LockoutCreated { .. } => 26,
        Kind::LockoutExpired { .. } => 27,
        Kind::LockoutLifted { .. } => 28,
        Kind::ExpiringSoon { .. } => 29,
        Kind::BreakGlassRatified { .. } => 30,
        Kind::BreakGlassObjected { .. } => 31,
        Kind::BreakGlassUnratified { .. } => 32,
    }
}

/// The history action that goes with an event reason.
fn action_of_reason(reason: &str) -> &str {
    match reason {
        "ApprovalCounted" => action::APPROVED,
        "NotAuthorized" => action::REFUSED,
        "RecordDeleted" => action::REMOVED,
        "PersistenceRemoved" => action::PERSISTENCE_FOUND,
        other => other,
    }
}

fn object() -> EntryObject {
    EntryObject {
        kind: "RoleBinding".into(),
        name: "dave".into(),
        uid: "u-1".into(),
    }
}

#[test]
fn every_kind_is_listed_once() {
    let mut seen: Vec<usize> = every_kind().iter().map(|t| listed(&t.kind)).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..=32).collect::<Vec<_>>());
}

/// For every kind of transition, the event and the history entry tell the
/// same story: the same reason and action, actor, subject and role.
#[test]
fn events_and_history_entries_agree_on_every_kind() {
    for t in every_kind() {
        let event = event(&t);
        let entry = entry(&t, &object());
        assert!(
            event.is_some() || entry.is_some(),
            "{t:?} makes neither an event nor an entry"
        );
        if let Some(ev) = &event {
            assert_eq!(ev.reason, t.kind.reason(), "{t:?}");
            assert_eq!(ev.warning, t.kind.is_warning(), "{t:?}");
            if let Actor::User(who) = &t.actor {
                assert!(
                    ev.note.contains(who.as_str()),
                    "the event of {t:?} names no actor: {}",
                    ev.note
                );
            }
        }
        if let Some(e) = &entry {
            assert_eq!(e.actor, actor_name(&t.actor), "{t:?}");
            assert_eq!(e.subject.as_deref(), Some("User dave"), "{t:?}");
            assert_eq!(e.role.as_deref(), Some("app/admin"), "{t:?}");
            assert!(e.key.starts_with("u-1/"), "{t:?}");
        }
        if let (Some(ev), Some(e)) = (&event, &entry) {
            assert_eq!(action_of_reason(ev.reason), e.action, "{t:?}");
        }
    }
}

fn binding(project: bool) -> RoleBinding {
    let mut spec = json!({
        "subject": { "kind": "User", "name": "dave" }, "duration": "1h",
        "justification": "INC-1", "grantedBy": "alice",
    });
    if project {
        spec["project"] = "app".into();
        spec["projectRole"] = "admin".into();
    } else {
        spec["workspaceRole"] = "member".into();
    }
    serde_json::from_value(json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
        "metadata": { "name": "dave", "namespace": "ws-a", "uid": "u-1",
                      "annotations": { "foureyes.dev/created-by": "alice" } },
        "spec": spec,
    }))
    .unwrap()
}

fn decision(phase: BindingPhase) -> BindingDecision {
    BindingDecision {
        phase,
        role: Some("app/admin".into()),
        authorization: Some(Authorization::Manager),
        refusal: None,
        expires_at: Some(DateTime::UNIX_EPOCH),
        finished_at: None,
        revoked: (phase == BindingPhase::Revoked).then(|| Revoked::By {
            user: "bob".into(),
            reason: "laptop stolen".into(),
        }),
        owners: Default::default(),
        grants: vec![Grant {
            namespace: "a-app".into(),
            target: RoleTarget::ClusterRole("admin".into()),
        }],
        wake_at: None,
        delete_record: false,
        ratification: None,
    }
}

fn status(phase: BindingPhase, reason: &str) -> RoleBindingStatus {
    RoleBindingStatus {
        phase: Some(phase),
        conditions: vec![Condition::new(
            READY,
            ConditionStatus::False,
            reason,
            "",
            None,
            DateTime::UNIX_EPOCH,
        )],
        ..Default::default()
    }
}

fn binding_entries(b: &RoleBinding, d: &BindingDecision, previous: Option<&RoleBindingStatus>) -> Vec<NewEntry> {
    entries(
        &binding::transitions(&b.spec, b.metadata.annotations.as_ref(), previous, d),
        &object_of(b),
    )
}

#[test]
fn chains_follow_the_kind_of_role() {
    assert_eq!(binding_chain(&binding(true)), Chain::project("app"));
    assert_eq!(binding_chain(&binding(false)), Chain::workspace());
}

#[test]
fn each_binding_transition_has_its_actor_and_key() {
    let b = binding(true);
    let granted = binding_entries(&b, &decision(BindingPhase::Active), None).remove(0);
    assert_eq!((granted.action.as_str(), granted.actor.as_str()), ("Granted", "alice"));
    assert_eq!(granted.key, "u-1/Granted");
    assert_eq!(granted.subject.as_deref(), Some("user dave"));
    assert_eq!(granted.role.as_deref(), Some("app/admin"));
    assert!(granted.details.contains("GrantedByManager") && granted.details.contains("a-app"));
    assert!(!granted.details.contains("created by"));
    let active = status(BindingPhase::Active, "Active");
    assert!(binding_entries(&b, &decision(BindingPhase::Active), Some(&active)).is_empty());

    let expired = binding_entries(&b, &decision(BindingPhase::Expired), Some(&active)).remove(0);
    assert_eq!(
        (expired.action.as_str(), expired.actor.as_str()),
        ("Expired", "foureyes")
    );
    assert!(expired.details.contains("access removed"));
    assert!(!expired.details.contains("removed before the operator acted"));

    // Removed by a standby, the start-up revocation or the sweep: the same
    // one entry (same key), saying so.
    let mut ts = binding::transitions(
        &b.spec,
        b.metadata.annotations.as_ref(),
        Some(&active),
        &decision(BindingPhase::Expired),
    );
    for t in &mut ts {
        if let Kind::Expired { already_removed, .. } = &mut t.kind {
            *already_removed = true;
        }
    }
    let before = entries(&ts, &object_of(&b));
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].key, expired.key);
    assert!(
        before[0].details.contains("removed before the operator acted"),
        "{}",
        before[0].details
    );
    assert!(
        event(&ts[0])
            .unwrap()
            .note
            .contains("removed before the operator acted")
    );

    let revoked = binding_entries(&b, &decision(BindingPhase::Revoked), Some(&active)).remove(0);
    assert_eq!((revoked.action.as_str(), revoked.actor.as_str()), ("Revoked", "bob"));
    assert!(revoked.details.contains("laptop stolen"));
    assert_eq!(revoked.key, "u-1/Revoked");
    let done = status(BindingPhase::Revoked, "Revoked");
    assert!(binding_entries(&b, &decision(BindingPhase::Revoked), Some(&done)).is_empty());

    // Ended because its workspace was deleted: the operator's entry.
    let mut gone = decision(BindingPhase::Revoked);
    gone.revoked = Some(Revoked::OwnerGone("its workspace (uid w-1) was deleted".into()));
    let ended = binding_entries(&b, &gone, Some(&active)).remove(0);
    assert_eq!((ended.action.as_str(), ended.actor.as_str()), ("Revoked", "foureyes"));
    assert!(ended.details.contains("workspace (uid w-1) was deleted"));
}

#[test]
fn refusals_are_recorded_once_per_reason_and_not_when_transient() {
    let mut b = binding(true);
    b.metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert("foureyes.dev/created-by".into(), "gitops".into());
    let mut d = decision(BindingPhase::Pending);
    d.authorization = None;
    d.refusal = Some(Refusal::NotAuthorized("alice may not".into()));
    let e = binding_entries(&b, &d, None).remove(0);
    assert_eq!(e.key, "u-1/Refused/NotAuthorized");
    assert_eq!(e.actor, "alice");
    assert!(e.details.contains("created by gitops"), "{}", e.details);
    let same = status(BindingPhase::Pending, "NotAuthorized");
    assert!(binding_entries(&b, &d, Some(&same)).is_empty());
    d.refusal = Some(Refusal::UnknownRole("wizard".into()));
    assert_eq!(binding_entries(&b, &d, Some(&same))[0].key, "u-1/Refused/UnknownRole");
    d.refusal = Some(Refusal::WorkspaceNotReady);
    assert!(binding::transitions(&b.spec, None, None, &d).is_empty(), "transient");
    d.refusal = Some(Refusal::WorkspaceNotFound);
    let t = binding::transitions(&b.spec, None, Some(&same), &d);
    assert!(event(&t[0]).is_some(), "said");
    assert!(entries(&t, &object_of(&b)).is_empty(), "no workspace, no chain");
}

#[test]
fn removal_and_workspace_entries() {
    let b = binding(false);
    let e = entry(
        &binding::removed(&b.spec, None, "deleted".into(), false),
        &object_of(&b),
    )
    .unwrap();
    assert_eq!(
        (e.action.as_str(), e.actor.as_str(), e.key.as_str()),
        ("Removed", "unknown", "u-1/Removed")
    );
    assert!(event(&binding::removed(&b.spec, None, "deleted".into(), false)).is_none());
    let ws: Workspace = serde_json::from_value(json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "Workspace",
        "metadata": { "name": "a", "uid": "w-1" }, "spec": {},
    }))
    .unwrap();
    assert_eq!(
        entry(&lifecycle::workspace_created(&ws), &workspace_object(&ws))
            .unwrap()
            .key,
        "w-1/WorkspaceCreated"
    );
    let d = entry(&lifecycle::workspace_deleted(&ws, 3), &workspace_object(&ws)).unwrap();
    assert_eq!(d.key, "w-1/WorkspaceDeleted");
    assert!(d.details.contains("3 native bindings revoked"));
    assert_eq!(d.subject, None);
}

fn request() -> RoleRequest {
    serde_json::from_value(json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
        "metadata": { "name": "dave-admin", "namespace": "ws-a", "uid": "r-1" },
        "spec": {
            "subject": { "kind": "User", "name": "dave" }, "project": "app", "projectRole": "admin",
            "duration": "2h", "justification": "INC-2", "requester": "alice",
        },
    }))
    .unwrap()
}

fn request_decision(phase: RequestPhase, approved_by: &[&str]) -> RequestDecision {
    RequestDecision {
        phase,
        required: 2,
        approved_by: approved_by.iter().map(|s| s.to_string()).collect(),
        ignored: vec![],
        denied_by: None,
        break_glass_by: None,
        decided_at: None,
        decided_on_votes: None,
        pending_until: None,
        create_binding: None,
        problem: None,
        wake_at: None,
        lockout: None,
        counts_from: None,
    }
}

fn request_entries(r: &RoleRequest, previous: Option<&RoleRequestStatus>, d: &RequestDecision) -> Vec<NewEntry> {
    entries(
        &quorum::transitions(&r.spec, r.metadata.annotations.as_ref(), previous, d),
        &object_of(r),
    )
}

fn summary(entries: &[NewEntry]) -> Vec<(String, String, String)> {
    entries
        .iter()
        .map(|e| (e.action.clone(), e.actor.clone(), e.key.clone()))
        .collect()
}

#[test]
fn a_request_records_itself_each_approval_and_its_decision_once() {
    let r = request();
    assert_eq!(request_chain(&r), Chain::project("app"));
    let first = request_decision(RequestPhase::Pending, &["alice"]);
    let e = request_entries(&r, None, &first);
    assert_eq!(
        summary(&e),
        vec![
            ("Requested".into(), "alice".into(), "r-1/Requested".into()),
            ("Approved".into(), "alice".into(), "r-1/Approved/alice".into()),
        ]
    );
    assert_eq!(e[0].role.as_deref(), Some("app/admin"));
    let pending = RoleRequestStatus {
        phase: Some(RequestPhase::Pending),
        approved_by: vec!["alice".into()],
        ..Default::default()
    };
    assert!(request_entries(&r, Some(&pending), &first).is_empty(), "nothing new");
    let done = request_decision(RequestPhase::Approved, &["alice", "bob"]);
    let ts = quorum::transitions(&r.spec, None, Some(&pending), &done);
    assert_eq!(
        summary(&entries(&ts, &object_of(&r))),
        vec![
            ("Approved".into(), "bob".into(), "r-1/Approved/bob".into()),
            ("QuorumReached".into(), "bob".into(), "r-1/QuorumReached".into()),
        ]
    );
    // The deciding approval is announced by QuorumReached alone.
    let reasons: Vec<&str> = ts.iter().filter_map(event).map(|e| e.reason).collect();
    assert_eq!(reasons, vec!["QuorumReached"]);
    // With the binding it created, still one event: the decision names the
    // votes and the binding, which is its related object.
    let plan = quorum::BindingPlan {
        duration: "1h".parse().unwrap(),
        capped: false,
        granted_by: "bob".into(),
    };
    let mut told = ts.clone();
    told.push(quorum::binding_created(&r.spec, "r-1", &plan));
    let published = events(&told);
    assert_eq!(published.len(), 1, "{published:#?}");
    let (e, related) = &published[0];
    assert_eq!(e.reason, reason::QUORUM_REACHED);
    assert_eq!(related.as_deref(), Some("r-1"));
    assert!(
        e.note
            .starts_with("approved by alice, bob (2/2); RoleBinding r-1 created for 1h"),
        "{}",
        e.note
    );
    // Alone, a binding's creation is still told.
    let alone = events(&told[told.len() - 1..]);
    assert_eq!(alone.len(), 1);
    assert_eq!(
        (alone[0].0.reason, alone[0].1.as_deref()),
        (reason::BINDING_CREATED, None)
    );
    // Approved -> Granted records nothing more (the binding records its grant).
    let approved = RoleRequestStatus {
        phase: Some(RequestPhase::Approved),
        approved_by: vec!["alice".into(), "bob".into()],
        ..Default::default()
    };
    let granted = request_decision(RequestPhase::Granted, &["alice", "bob"]);
    assert!(quorum::transitions(&r.spec, None, Some(&approved), &granted).is_empty());
}

#[test]
fn break_glass_denial_timeout_and_unreachable_quorum_have_their_actors() {
    let r = request();
    let pending = RoleRequestStatus {
        phase: Some(RequestPhase::Pending),
        ..Default::default()
    };
    let mut glass = request_decision(RequestPhase::Approved, &[]);
    glass.break_glass_by = Some("pat".into());
    assert_eq!(
        summary(&request_entries(&r, Some(&pending), &glass)),
        vec![("BreakGlass".into(), "pat".into(), "r-1/BreakGlass".into())]
    );
    let mut denied = request_decision(RequestPhase::Denied, &[]);
    denied.denied_by = Some("bob".into());
    assert_eq!(summary(&request_entries(&r, Some(&pending), &denied))[0].1, "bob");
    let expired = request_decision(RequestPhase::Expired, &[]);
    assert_eq!(
        summary(&request_entries(&r, Some(&pending), &expired)),
        vec![("RequestExpired".into(), "foureyes".into(), "r-1/RequestExpired".into())]
    );
    let unreachable = request_decision(RequestPhase::QuorumUnreachable, &[]);
    assert_eq!(
        summary(&request_entries(&r, Some(&pending), &unreachable))[0].0,
        "QuorumUnreachable"
    );
}

/// SECURITY F12: what a trusted asserter wrote in someone's name says so.
#[test]
fn asserted_requests_and_votes_name_their_writer() {
    let mut r: RoleRequest = request();
    r.metadata.annotations = Some(
        [
            ("foureyes.dev/created-by".to_owned(), "argo".to_owned()),
            (
                "foureyes.dev/votes".to_owned(),
                "0\t1\tgitops\targo\n1\t2\tteam\tbob\n".to_owned(),
            ),
        ]
        .into(),
    );
    r.spec.approvals = serde_json::from_value(json!([
        { "user": "pat", "decision": "Approve" },
        { "user": "bob", "decision": "Approve" },
    ]))
    .unwrap();
    let mut d = request_decision(RequestPhase::Approved, &["alice", "bob"]);
    d.break_glass_by = Some("pat".into());
    let e = request_entries(&r, None, &d);
    let details = |action: &str| e.iter().find(|x| x.action == action).unwrap().details.clone();
    assert!(details("Requested").contains("filed in their name by argo"));
    assert!(details("BreakGlass").contains("written in their name by argo"));
    let bob = e.iter().find(|x| x.action == "Approved" && x.actor == "bob").unwrap();
    assert!(!bob.details.contains("written in their name"), "bob wrote his own");
}

#[test]
fn persistence_found_names_the_kind_of_each_object() {
    let t = every_kind()
        .into_iter()
        .find(|t| matches!(t.kind, Kind::PersistenceFound { .. }))
        .unwrap();
    let e = event(&t).unwrap();
    assert_eq!(e.reason, "PersistenceRemoved");
    assert!(
        e.note
            .ends_with("(deleted): RoleBinding a-app/backdoor, token Secret a-app/ci-token"),
        "{}",
        e.note
    );
    let object = EntryObject {
        kind: "RoleBinding".into(),
        name: "dave-admin".into(),
        uid: "u".into(),
    };
    let entry = entry(&t, &object).unwrap();
    assert_eq!(
        entry.details,
        "created by the holder during the grant: RoleBinding a-app/backdoor, token Secret a-app/ci-token; deleted (persistence: Revoke)"
    );
}

/// Each kind of transition, alone in its pass, sends the notification
/// listed here or none; every notification repeats its transition's event.
#[test]
fn notifications_repeat_the_event_of_the_transitions_that_call_for_one() {
    let partner_grant = Transition {
        kind: Kind::Granted {
            until: Some(DateTime::UNIX_EPOCH),
            how: "GrantedByPartner",
            namespaces: vec!["a-app".into()],
            justification: "INC-1".into(),
            created_by: None,
        },
        actor: Actor::User("pat".into()),
        subject: "User dave".into(),
        role: "app/admin".into(),
    };
    let mut sent = vec![];
    for t in every_kind().into_iter().chain([partner_grant]) {
        let notices = notices(std::slice::from_ref(&t));
        assert!(notices.len() <= 1, "{t:?}");
        for n in notices {
            assert!(crate::config::NOTIFICATION_TYPES.contains(&n.kind), "{}", n.kind);
            assert_eq!(Some(&n.event), event(&t).as_ref(), "{t:?}");
            assert_eq!(n.actor, actor_name(&t.actor));
            assert_eq!((n.subject.as_str(), n.role.as_str()), ("User dave", "app/admin"));
            sent.push(n.kind);
        }
    }
    assert_eq!(
        sent,
        [
            "request.pending",
            "request.breakglass",
            "request.quorumunreachable",
            "lockout.created",
            "binding.expiring",
            "binding.objected",
            "binding.unratified",
            "binding.breakglass"
        ]
    );
}

/// A new request is announced as waiting for approval only when it is:
/// not when the same pass approves, denies or strands it.
#[test]
fn a_request_decided_in_its_first_pass_is_not_announced_as_pending() {
    let r = request();
    let pending = request_decision(RequestPhase::Pending, &["bob"]);
    let ts = quorum::transitions(&r.spec, None, None, &pending);
    let n = notices(&ts);
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].kind, "request.pending");
    assert_eq!(n[0].event.reason, reason::REQUESTED);
    assert_eq!(n[0].details["requiredApprovals"], 2);
    assert_eq!(n[0].details["duration"], "2h");

    let approved = request_decision(RequestPhase::Approved, &["bob", "carol"]);
    let ts = quorum::transitions(&r.spec, None, None, &approved);
    assert!(notices(&ts).is_empty(), "{ts:?}");

    let unreachable = request_decision(RequestPhase::QuorumUnreachable, &[]);
    let kinds: Vec<_> = notices(&quorum::transitions(&r.spec, None, None, &unreachable))
        .iter()
        .map(|n| n.kind)
        .collect();
    assert_eq!(kinds, ["request.quorumunreachable"]);
    // Later passes do not announce it again.
    let previous = RoleRequestStatus {
        phase: Some(RequestPhase::Pending),
        approved_by: vec!["bob".into()],
        ..Default::default()
    };
    assert!(notices(&quorum::transitions(&r.spec, None, Some(&previous), &pending)).is_empty());
}
