use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::policy::quorum::Voter;

const PARTNER: &str = "pat";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// A grant of `app/admin` to alice, with these verdicts.
fn spec(verdicts: &[(&str, Verdict)]) -> RoleBindingSpec {
    let mut s: RoleBindingSpec = serde_json::from_value(json!({
        "subject": { "kind": "User", "name": "alice" }, "project": "app", "projectRole": "admin",
        "duration": "4h", "justification": "INC-7", "grantedBy": PARTNER,
    }))
    .unwrap();
    s.ratifications = verdicts
        .iter()
        .map(|(user, verdict)| crate::api::Ratification {
            user: (*user).to_owned(),
            verdict: *verdict,
            comment: Some(format!("{user} says {verdict:?}")),
            time: None,
        })
        .collect();
    s
}

fn manager() -> Voter {
    Voter {
        manager: true,
        verified: true,
        manager_since: Some(t0() - Duration::days(30)),
        ..Voter::default()
    }
}

struct Case {
    spec: RoleBindingSpec,
    voters: Vec<Voter>,
    locked: Vec<String>,
    approvers: Vec<String>,
    on_unratified: OnUnratified,
    previous: Option<RatificationStatus>,
    now: DateTime<Utc>,
}

impl Case {
    fn new(verdicts: &[(&str, Verdict)]) -> Self {
        Case {
            voters: verdicts.iter().map(|_| manager()).collect(),
            spec: spec(verdicts),
            locked: vec![],
            approvers: vec![],
            on_unratified: OnUnratified::Flag,
            previous: None,
            now: t0(),
        }
    }

    /// Decides, starting the ratification when there is none yet.
    fn decide(&self) -> RatificationDecision {
        decide_ratification(&RatificationFacts {
            spec: &self.spec,
            previous: self.previous.as_ref(),
            starts: Some(PARTNER),
            window: Some(Duration::hours(4)),
            on_unratified: self.on_unratified,
            approvers: &self.approvers,
            voters: &self.voters,
            locked_voters: &self.locked,
            cooling_off: Duration::hours(1),
            now: self.now,
        })
    }

    /// Decides, then keeps the result as the previous status.
    fn step(&mut self) -> (RatificationDecision, Vec<Transition>) {
        let d = self.decide();
        let ts = transitions(&self.spec, "app/admin", self.previous.as_ref(), &d);
        self.previous = d.status.clone();
        (d, ts)
    }
}

fn reasons(ts: &[Transition]) -> Vec<&'static str> {
    ts.iter().map(|t| t.kind.reason()).collect()
}

#[test]
fn it_starts_awaiting_with_the_deadline_fixed_at_the_start() {
    let mut c = Case::new(&[]);
    let (d, ts) = c.step();
    let s = d.status.unwrap();
    assert_eq!(s.state, RatificationState::Awaiting);
    assert_eq!(s.deadline, t0() + Duration::hours(4));
    assert_eq!(s.break_glass_by, PARTNER);
    assert_eq!(d.wake_at, Some(t0() + Duration::hours(4)));
    assert!(d.revoke.is_none() && ts.is_empty());
    // Later passes keep the deadline, whatever the window says now.
    c.now = t0() + Duration::hours(1);
    assert_eq!(c.decide().status.unwrap().deadline, t0() + Duration::hours(4));
}

#[test]
fn no_ratification_without_break_glass_or_a_workspace_and_never_a_zero_window() {
    let c = Case::new(&[("bob", Verdict::Ratify)]);
    let none = decide_ratification(&RatificationFacts {
        starts: None,
        ..facts(&c)
    });
    assert_eq!(none.status, None);
    let no_workspace = decide_ratification(&RatificationFacts {
        window: None,
        ..facts(&c)
    });
    assert_eq!(no_workspace.status, None);
    // A window stored as 0s (before the CRD's rule) is a second.
    let zero = decide_ratification(&RatificationFacts {
        window: Some(Duration::zero()),
        spec: &spec(&[]),
        ..facts(&c)
    });
    assert_eq!(zero.status.unwrap().deadline, t0() + Duration::seconds(1));
}

fn facts(c: &Case) -> RatificationFacts<'_> {
    RatificationFacts {
        spec: &c.spec,
        previous: c.previous.as_ref(),
        starts: Some(PARTNER),
        window: Some(Duration::hours(4)),
        on_unratified: c.on_unratified,
        approvers: &c.approvers,
        voters: &c.voters,
        locked_voters: &c.locked,
        cooling_off: Duration::hours(1),
        now: c.now,
    }
}

#[test]
fn a_managers_ratification_settles_it_with_who_and_when() {
    let mut c = Case::new(&[]);
    c.step();
    c.spec = spec(&[("bob", Verdict::Ratify), ("carol", Verdict::Object)]);
    c.voters = vec![manager(), manager()];
    c.now = t0() + Duration::minutes(20);
    let (d, ts) = c.step();
    let s = d.status.unwrap();
    assert_eq!(s.state, RatificationState::Ratified);
    assert_eq!(s.by.as_deref(), Some("bob"));
    assert_eq!(s.at, Some(t0() + Duration::minutes(20)));
    assert!(d.revoke.is_none() && !s.revoked);
    // carol's objection came after: too late.
    assert_eq!(s.ignored[0].user, "carol");
    assert_eq!(s.ignored[0].reason, IgnoreReason::TooLate);
    assert_eq!(reasons(&ts), ["VoteIgnored", "BreakGlassRatified"]);
    assert_eq!(ts[1].actor, user("bob"));
    assert_eq!(d.wake_at, None);
    // Nothing more happens on later passes, past the deadline included.
    c.now = t0() + Duration::hours(9);
    let (d, ts) = c.step();
    assert_eq!(d.status.unwrap().state, RatificationState::Ratified);
    assert!(ts.is_empty());
}

#[test]
fn an_objection_revokes_at_once() {
    let mut c = Case::new(&[("bob", Verdict::Object)]);
    let (d, ts) = c.step();
    assert_eq!(d.status.as_ref().unwrap().state, RatificationState::Objected);
    assert!(d.status.as_ref().unwrap().revoked);
    assert_eq!(
        d.revoke,
        Some(RatificationRevoke::Objected {
            by: "bob".into(),
            comment: Some("bob says Object".into())
        })
    );
    assert_eq!(reasons(&ts), ["BreakGlassObjected"]);
    assert!(ts[0].kind.is_warning());
    // Once recorded, the status says it revoked.
    assert!(revoked_by(c.previous.as_ref()).is_some());
}

#[test]
fn the_subject_the_partner_and_non_managers_never_count() {
    // (Admission refuses the subject's and the partner's verdicts by name;
    // the operator ignores them whatever got stored.)
    let mut c = Case::new(&[
        ("alice", Verdict::Ratify),
        (PARTNER, Verdict::Ratify),
        ("erin", Verdict::Ratify),
        ("mallory", Verdict::Ratify),
        ("dan", Verdict::Ratify),
    ]);
    c.voters[2].manager = false; // erin: not a manager
    c.voters[3].verified = false; // mallory: no stamp names her
    c.locked = vec!["dan".into()];
    let (d, ts) = c.step();
    let s = d.status.unwrap();
    assert_eq!(s.state, RatificationState::Awaiting);
    let why: Vec<(&str, IgnoreReason)> = s.ignored.iter().map(|v| (v.user.as_str(), v.reason)).collect();
    assert_eq!(
        why,
        [
            ("alice", IgnoreReason::IsSubject),
            (PARTNER, IgnoreReason::BrokeGlass),
            ("erin", IgnoreReason::NotManager),
            ("mallory", IgnoreReason::Unverified),
            ("dan", IgnoreReason::LockedOut),
        ]
    );
    assert_eq!(reasons(&ts), ["VoteIgnored"; 5]);
    // A member of a subject group is the subject too.
    let mut g = Case::new(&[("bob", Verdict::Ratify)]);
    g.voters[0].in_subject_group = true;
    let s = g.decide().status.unwrap();
    assert_eq!(s.ignored[0].reason, IgnoreReason::IsSubject);
}

#[test]
fn the_partner_never_ratifies_even_as_a_manager() {
    let c = Case::new(&[(PARTNER, Verdict::Ratify)]);
    let s = c.decide().status.unwrap();
    assert_eq!(s.state, RatificationState::Awaiting);
    assert_eq!(s.ignored[0].reason, IgnoreReason::BrokeGlass);
}

#[test]
fn a_new_manager_is_held_back_until_the_cooling_off_has_passed() {
    let mut c = Case::new(&[("nina", Verdict::Ratify)]);
    c.voters[0].manager_since = Some(t0() - Duration::minutes(10));
    let (d, ts) = c.step();
    assert_eq!(d.status.as_ref().unwrap().state, RatificationState::Awaiting);
    assert!(d.status.as_ref().unwrap().ignored.is_empty() && ts.is_empty());
    assert_eq!(d.wake_at, Some(t0() + Duration::minutes(50)));
    c.now = t0() + Duration::minutes(50);
    let (d, _) = c.step();
    assert_eq!(d.status.unwrap().by.as_deref(), Some("nina"));
}

/// A brand-new manager's verdict does not hold back an established
/// manager's: made a manager by the partner, nina cannot pre-empt bob's
/// objection by ratifying first.
#[test]
fn a_new_managers_verdict_does_not_hold_back_the_others() {
    let mut c = Case::new(&[("nina", Verdict::Ratify), ("bob", Verdict::Object)]);
    c.voters[0].manager_since = Some(t0() - Duration::minutes(10));
    let (d, _) = c.step();
    let s = d.status.unwrap();
    assert_eq!((s.state, s.by.as_deref()), (RatificationState::Objected, Some("bob")));
    assert!(d.revoke.is_some());
    // Once nina's cooling-off has passed, her earlier verdict changes nothing.
    c.now = t0() + Duration::hours(2);
    let (d, ts) = c.step();
    assert_eq!(d.status.unwrap().by.as_deref(), Some("bob"));
    assert!(ts.is_empty());
}

/// Whose approval of the request already counted is no second pair of eyes.
#[test]
fn an_approver_of_the_request_does_not_ratify_its_break_glass() {
    let mut c = Case::new(&[("alice", Verdict::Ratify)]);
    c.spec.subject.name = "dave".into();
    c.approvers = vec!["alice".into()];
    let s = c.decide().status.unwrap();
    assert_eq!(s.state, RatificationState::Awaiting);
    assert_eq!(s.ignored[0].reason, IgnoreReason::Duplicate);
}

/// Once a lockout is lifted, the verdict counts like any other.
#[test]
fn a_verdict_counts_once_its_authors_lockout_is_lifted() {
    let mut c = Case::new(&[("bob", Verdict::Ratify)]);
    c.locked = vec!["bob".into()];
    let (d, _) = c.step();
    assert_eq!(d.status.unwrap().ignored[0].reason, IgnoreReason::LockedOut);
    c.locked = vec![];
    let (d, ts) = c.step();
    assert_eq!(d.status.unwrap().state, RatificationState::Ratified);
    assert_eq!(reasons(&ts), ["BreakGlassRatified"]);
}

#[test]
fn unratified_at_the_deadline_is_flagged_and_a_late_ratification_still_counts() {
    let mut c = Case::new(&[]);
    c.step();
    c.now = t0() + Duration::hours(4);
    let (d, ts) = c.step();
    let s = d.status.unwrap();
    assert_eq!(s.state, RatificationState::Unratified);
    assert!(!s.revoked && d.revoke.is_none());
    assert_eq!(reasons(&ts), ["BreakGlassUnratified"]);
    assert!(ts[0].kind.is_warning());
    assert_eq!(ts[0].actor, Actor::Operator);
    // Said once.
    let (_, ts) = c.step();
    assert!(ts.is_empty());
    // A manager ratifies late: the flag is cleared, and it says so.
    c.spec = spec(&[("bob", Verdict::Ratify)]);
    c.voters = vec![manager()];
    c.now = t0() + Duration::hours(6);
    let (d, ts) = c.step();
    assert_eq!(d.status.unwrap().state, RatificationState::Ratified);
    assert!(matches!(ts[0].kind, Kind::BreakGlassRatified { late: true, .. }));
}

#[test]
fn unratified_under_revoke_ends_the_grant() {
    let mut c = Case::new(&[]);
    c.on_unratified = OnUnratified::Revoke;
    c.step();
    c.now = t0() + Duration::hours(4) - Duration::seconds(1);
    assert!(c.step().0.revoke.is_none());
    c.now = t0() + Duration::hours(4);
    let (d, ts) = c.step();
    assert_eq!(d.revoke, Some(RatificationRevoke::Unratified));
    assert!(d.status.as_ref().unwrap().revoked);
    assert!(matches!(ts[0].kind, Kind::BreakGlassUnratified { revoked: true, .. }));
    assert_eq!(revoked_by(c.previous.as_ref()), Some(RatificationRevoke::Unratified));
}

/// Deleting the binding does not hide that nobody ratified it.
#[test]
fn a_deletion_while_awaiting_is_reported_as_unratified() {
    let mut c = Case::new(&[]);
    let (d, _) = c.step();
    let t = deleted_unratified(&c.spec, "app/admin", d.status.as_ref()).expect("reported");
    assert!(matches!(t.kind, Kind::BreakGlassUnratified { deleted: true, .. }));
    assert!(t.kind.is_warning());
    assert_eq!(t.actor, Actor::Unknown);
    // Settled ones, or none, are not.
    c.spec = spec(&[("bob", Verdict::Ratify)]);
    c.voters = vec![manager()];
    let (d, _) = c.step();
    assert!(deleted_unratified(&c.spec, "app/admin", d.status.as_ref()).is_none());
    assert!(deleted_unratified(&c.spec, "app/admin", None).is_none());
}
