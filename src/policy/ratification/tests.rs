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
fn no_ratification_without_break_glass_or_with_the_window_off() {
    let c = Case::new(&[("bob", Verdict::Ratify)]);
    let none = decide_ratification(&RatificationFacts {
        starts: None,
        ..facts(&c)
    });
    assert_eq!(none.status, None);
    let off = decide_ratification(&RatificationFacts {
        window: Some(Duration::zero()),
        ..facts(&c)
    });
    assert_eq!(off.status, None);
}

fn facts(c: &Case) -> RatificationFacts<'_> {
    RatificationFacts {
        spec: &c.spec,
        previous: c.previous.as_ref(),
        starts: Some(PARTNER),
        window: Some(Duration::hours(4)),
        on_unratified: c.on_unratified,
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
