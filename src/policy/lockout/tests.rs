use super::*;
use crate::api::conditions::find_condition;
use crate::api::{Approval, Decision};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("test time").with_timezone(&Utc)
}

fn created() -> DateTime<Utc> {
    at("2026-01-01T12:00:00Z")
}

fn lockout(name: &str, subject: Subject, duration: Option<&str>) -> Lockout {
    let mut l = Lockout::new(
        name,
        LockoutSpec {
            subject,
            reason: "INC-9 laptop stolen".into(),
            expires_at: None,
            duration: duration.map(|d| d.parse().unwrap()),
            created_by: "partner".into(),
        },
    );
    l.metadata.creation_timestamp = Some(crate::api::time::to_k8s(created()));
    l
}

#[test]
fn a_lockout_is_in_force_until_its_expiry_or_for_good() {
    let l = lockout("a", Subject::user("dave"), Some("1h"));
    assert_eq!(effective_expiry(&l.spec, created()), Some(at("2026-01-01T13:00:00Z")));
    assert!(in_force(&l.spec, created(), at("2026-01-01T12:59:59Z")));
    assert!(!in_force(&l.spec, created(), at("2026-01-01T13:00:00Z")));
    let mut until = l.spec.clone();
    until.duration = None;
    until.expires_at = Some(at("2026-01-02T00:00:00Z"));
    assert_eq!(effective_expiry(&until, created()), until.expires_at);
    let forever = lockout("b", Subject::user("dave"), None);
    assert!(in_force(&forever.spec, created(), at("2099-01-01T00:00:00Z")));
}

#[test]
fn in_force_finds_subjects_and_callers_by_user_and_group() {
    let all = [
        lockout("user", Subject::user("dave"), Some("1h")),
        lockout("group", Subject::group("contractors"), None),
        lockout("old", Subject::user("erin"), Some("1m")),
    ];
    let locks = InForce::new(&all, at("2026-01-01T12:30:00Z"));
    assert_eq!(locks.subject(&Subject::user("dave")).unwrap().lockout, "user");
    assert!(locks.subject(&Subject::group("dave")).is_none(), "kinds are told apart");
    assert!(locks.subject(&Subject::user("erin")).is_none(), "expired");
    assert_eq!(locks.subject(&Subject::group("contractors")).unwrap().lockout, "group");
    assert_eq!(locks.caller("dave", None).unwrap().lockout, "user");
    assert_eq!(
        locks
            .caller("frank", Some(&["contractors".to_owned()]))
            .unwrap()
            .lockout,
        "group"
    );
    assert!(locks.caller("frank", None).is_none());
    let hit = locks.subject(&Subject::user("dave")).unwrap();
    assert_eq!(
        hit.describe(),
        "locked out by partner (Lockout user): INC-9 laptop stolen"
    );
    assert!(
        InForce::new(&all, at("2026-01-01T14:00:00Z"))
            .subject(&Subject::user("dave"))
            .is_none()
    );
}

#[test]
fn locked_voters_are_found_by_name_and_by_stamped_groups() {
    let all = [
        lockout("user", Subject::user("dave"), None),
        lockout("g", Subject::group("ops"), None),
    ];
    let locks = InForce::new(&all, created());
    let spec = RoleRequestSpec {
        subject: Subject::user("erin"),
        workspace_role: Some(crate::api::WorkspaceRole::Member),
        project: None,
        project_role: None,
        duration: "1h".parse().unwrap(),
        justification: "x".into(),
        requester: "dave".into(),
        approvals: vec![
            Approval {
                user: "bob".into(),
                decision: Decision::Approve,
                comment: None,
                time: None,
            },
            Approval {
                user: "carol".into(),
                decision: Decision::Approve,
                comment: None,
                time: None,
            },
        ],
    };
    let annotations: BTreeMap<String, String> = [(
        crate::wire::VOTES_ANNOTATION.to_owned(),
        "0\t1\tteam\tbob\n1\t2\tops,team\tcarol\n".to_owned(),
    )]
    .into();
    let locked = locked_voters(&spec, Some(&annotations), &Principals::default(), &locks);
    assert_eq!(locked.into_iter().collect::<Vec<_>>(), vec!["carol", "dave"]);
    assert!(locked_voters(&spec, None, &Principals::default(), &InForce::default()).is_empty());
}

#[test]
fn outside_access_lists_what_names_the_subject_directly() {
    let native = |kind: &str, name: &str, subjects: &[(&str, &str)]| NativeSubjects {
        grant: OutsideGrant {
            kind: kind.into(),
            namespace: (kind == "RoleBinding").then(|| "team".to_owned()),
            name: name.into(),
            role: "ClusterRole/admin".into(),
        },
        subjects: subjects.iter().map(|(k, n)| (k.to_string(), n.to_string())).collect(),
    };
    let all = [
        native("ClusterRoleBinding", "dave-admin", &[("User", "dave")]),
        native("RoleBinding", "ops", &[("Group", "dave"), ("User", "erin")]),
        native("RoleBinding", "mixed", &[("User", "erin"), ("User", "dave")]),
    ];
    let (listed, total) = outside_access(&Subject::user("dave"), &all);
    assert_eq!(total, 2);
    assert_eq!(
        listed.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
        vec!["dave-admin", "mixed"]
    );
    assert_eq!(outside_access(&Subject::group("dave"), &all).1, 1);
}

fn facts<'a>(
    spec: &'a LockoutSpec,
    previous: Option<&'a LockoutStatus>,
    held: &'a [Held<'a>],
    asked: &'a [Asked<'a>],
    now: DateTime<Utc>,
) -> LockoutFacts<'a> {
    LockoutFacts {
        name: "dave-compromised",
        spec,
        created: created(),
        generation: Some(1),
        previous,
        marked_expired: false,
        held,
        asked,
        outside: (vec![], 0),
        now,
    }
}

#[test]
fn the_status_counts_what_was_revoked_and_what_remains() {
    let l = lockout("dave-compromised", Subject::user("dave"), Some("1h"));
    let now = at("2026-01-01T12:00:01Z");
    let held = [
        Held {
            workspace: "payments",
            phase: Some(BindingPhase::Active),
            lockout: None,
        },
        Held {
            workspace: "shop",
            phase: Some(BindingPhase::Revoked),
            lockout: Some("dave-compromised"),
        },
        Held {
            workspace: "old",
            phase: Some(BindingPhase::Expired),
            lockout: None,
        },
    ];
    let asked = [Asked {
        workspace: "payments",
        phase: Some(RequestPhase::Pending),
        lockout: None,
    }];
    let d = decide_lockout(&facts(&l.spec, None, &held, &asked, now));
    assert!(d.in_force);
    assert!(!d.mark_expired);
    assert_eq!(d.wake_at, Some(at("2026-01-01T13:00:00Z")));
    assert_eq!(
        (d.status.revoked, d.status.remaining, d.status.ended_requests),
        (1, 1, 0)
    );
    assert_eq!(
        d.status.workspaces,
        vec!["payments", "shop"],
        "not where nothing was open"
    );
    let ready = find_condition(&d.status.conditions, READY).unwrap();
    assert_eq!(
        (ready.status, ready.reason.as_str()),
        (ConditionStatus::False, "Revoking")
    );
    assert!(matches!(
        d.happened[..],
        [Transition {
            kind: Kind::LockoutCreated { .. },
            ..
        }]
    ));
    assert_eq!(d.record.len(), 2, "the creation is recorded in each touched workspace");

    // Everything revoked: enforced; nothing new to record.
    let done = [
        Held {
            workspace: "payments",
            phase: Some(BindingPhase::Revoked),
            lockout: Some("dave-compromised"),
        },
        held[1].clone(),
    ];
    let ended = [Asked {
        workspace: "payments",
        phase: Some(RequestPhase::Denied),
        lockout: Some("dave-compromised"),
    }];
    let d2 = decide_lockout(&facts(&l.spec, Some(&d.status), &done, &ended, now));
    assert_eq!(
        (d2.status.revoked, d2.status.remaining, d2.status.ended_requests),
        (2, 0, 1)
    );
    let ready = find_condition(&d2.status.conditions, READY).unwrap();
    assert_eq!(
        (ready.status, ready.reason.as_str()),
        (ConditionStatus::True, "Enforced")
    );
    assert!(d2.happened.is_empty() && d2.record.is_empty());
    assert_eq!(
        decide_lockout(&facts(&l.spec, Some(&d2.status), &done, &ended, now)).status,
        d2.status
    );

    // Past the expiry: marked, recorded once per touched workspace; restores nothing.
    let later = at("2026-01-01T13:00:00Z");
    let d3 = decide_lockout(&facts(&l.spec, Some(&d2.status), &done, &ended, later));
    assert!(!d3.in_force && d3.mark_expired);
    assert_eq!(d3.status.phase, Some(LockoutPhase::Expired));
    assert_eq!(d3.record.len(), 2);
    assert!(matches!(
        d3.happened[..],
        [Transition {
            kind: Kind::LockoutExpired { .. },
            ..
        }]
    ));
    let d4 = decide_lockout(&LockoutFacts {
        marked_expired: true,
        ..facts(&l.spec, Some(&d3.status), &done, &ended, later)
    });
    assert!(!d4.mark_expired && d4.happened.is_empty() && d4.record.is_empty());
    // A binding granted again after the expiry is not the lockout's business.
    let again = [Held {
        workspace: "elsewhere",
        phase: Some(BindingPhase::Active),
        lockout: None,
    }];
    assert!(
        !decide_lockout(&facts(&l.spec, Some(&d3.status), &again, &[], later))
            .status
            .workspaces
            .contains(&"elsewhere".to_owned())
    );
}

#[test]
fn lifting_names_who_lifted_it_when_known() {
    let l = lockout("x", Subject::user("dave"), None);
    let t = lifted("x", &l.spec, Some("partner"), Some("INC-9 closed"));
    assert_eq!(t.actor, Actor::User("partner".into()));
    assert_eq!(lifted("x", &l.spec, None, None).actor, Actor::Unknown);
}
