//! Branch-by-branch tests of the quorum (DESIGN §2 invariant 4, §3), then a
//! property loop over every combination of up to three votes from five
//! kinds of voter.

use chrono::Duration;

use super::*;
use crate::api::{Approval, Subject, WorkspaceRole};

const SUBJECT: &str = "dave";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("test time").with_timezone(&Utc)
}

fn created() -> DateTime<Utc> {
    at("2026-01-01T11:00:00Z")
}

fn now() -> DateTime<Utc> {
    at("2026-01-01T12:00:00Z")
}

fn dur(s: &str) -> GoDuration {
    s.parse().expect("test duration")
}

const MANAGER: Voter = Voter {
    manager: true,
    partner: false,
    in_subject_group: false,
    verified: true,
    manager_since: None,
};
const PARTNER: Voter = Voter {
    manager: false,
    partner: true,
    in_subject_group: false,
    verified: true,
    manager_since: None,
};
const NOBODY: Voter = Voter {
    manager: false,
    partner: false,
    in_subject_group: false,
    verified: true,
    manager_since: None,
};

fn vote(user: &str, decision: Decision) -> Approval {
    Approval {
        user: user.into(),
        decision,
        comment: None,
        time: None,
    }
}

/// The facts a reconciler would gather, owned so that tests can tweak them.
struct World {
    spec: RoleRequestSpec,
    voters: Vec<Voter>,
    policy: ApprovalPolicy,
    max_duration: GoDuration,
    managers: usize,
    /// Since when each manager has been one (else `managers` long-standing ones).
    managers_since: Option<Vec<DateTime<Utc>>>,
    workspace: bool,
    requester: Voter,
    previous: Option<RoleRequestStatus>,
    role_problem: Option<(&'static str, String)>,
    binding: ExistingBinding,
    lockout: Option<crate::policy::lockout::Hit>,
    locked_voters: Vec<String>,
    now: DateTime<Utc>,
}

impl World {
    /// dave asks for `checkout/admin` for 4h; requested by erin (not a
    /// manager); the workspace needs 2 approvals and has 3 managers.
    fn new() -> Self {
        Self {
            spec: RoleRequestSpec {
                subject: Subject::user(SUBJECT),
                workspace_role: None,
                project: Some("checkout".into()),
                project_role: Some("admin".into()),
                duration: dur("4h"),
                justification: "INC-1".into(),
                requester: "erin".into(),
                approvals: vec![],
            },
            voters: vec![],
            policy: ApprovalPolicy::default(),
            max_duration: dur("24h"),
            managers: 3,
            managers_since: None,
            workspace: true,
            requester: NOBODY,
            previous: None,
            role_problem: None,
            binding: ExistingBinding::None,
            lockout: None,
            locked_voters: vec![],
            now: now(),
        }
    }

    fn requested_by_manager(mut self, who: &str) -> Self {
        self.spec.requester = who.into();
        self.requester = MANAGER;
        self
    }

    fn vote(mut self, user: &str, decision: Decision, voter: Voter) -> Self {
        self.spec.approvals.push(vote(user, decision));
        self.voters.push(voter);
        self
    }

    fn approve(self, user: &str, voter: Voter) -> Self {
        self.vote(user, Decision::Approve, voter)
    }

    /// Decides after a manager's approval by `user`.
    fn clone_approve(self, user: &str) -> RequestDecision {
        self.approve(user, MANAGER).decide()
    }

    fn decide(&self) -> RequestDecision {
        decide_request(&RequestFacts {
            spec: &self.spec,
            created: created(),
            previous: self.previous.as_ref(),
            workspace: self.workspace.then_some(RequestWorkspace {
                policy: &self.policy,
                max_duration: &self.max_duration,
                qualifying_managers: self
                    .managers_since
                    .clone()
                    .unwrap_or_else(|| vec![DateTime::<Utc>::MIN_UTC; self.managers]),
            }),
            role_problem: self.role_problem.clone(),
            requester: self.requester,
            voters: &self.voters,
            binding: self.binding,
            lockout: self.lockout.as_ref(),
            locked_voters: &self.locked_voters,
            now: self.now,
        })
    }

    /// Decides, then stores the status as the reconciler would.
    fn settle(&mut self) -> RequestDecision {
        let d = self.decide();
        self.previous = Some(request_status(
            &d,
            self.previous.as_ref(),
            Some("checkout/admin".into()),
            None,
            Some(1),
            self.now,
        ));
        d
    }
}

fn ignored(d: &RequestDecision) -> Vec<(&str, IgnoreReason)> {
    d.ignored.iter().map(|v| (v.user.as_str(), v.reason)).collect()
}

// ---------------------------------------------------------------------------
// Counting
// ---------------------------------------------------------------------------

#[test]
fn two_distinct_managers_approve() {
    let w = World::new().approve("alice", MANAGER);
    let d = w.decide();
    assert_eq!(d.phase, RequestPhase::Pending);
    assert_eq!(d.tally(), "1/2");
    assert_eq!(
        d.wake_at,
        Some(created() + Duration::hours(24)),
        "wakes at the pending timeout"
    );
    let d = w.approve("bob", MANAGER).decide();
    assert_eq!(d.phase, RequestPhase::Approved);
    assert_eq!(d.approved_by, vec!["alice", "bob"]);
    assert_eq!(d.tally(), "2/2");
    assert_eq!(d.decided_on_votes, Some(2));
    let plan = d.create_binding.expect("a binding to create");
    assert_eq!(plan.granted_by, "bob", "the approval that completed the quorum");
    assert_eq!(plan.duration, dur("4h"));
    assert!(!plan.capped);
}

#[test]
fn the_requester_counts_first_when_a_manager() {
    let d = World::new().requested_by_manager("alice").decide();
    assert_eq!(d.approved_by, vec!["alice"]);
    assert_eq!(d.phase, RequestPhase::Pending);
    let d = World::new()
        .requested_by_manager("alice")
        .approve("bob", MANAGER)
        .decide();
    assert_eq!(d.phase, RequestPhase::Approved);
    assert_eq!(d.approved_by, vec!["alice", "bob"]);
}

#[test]
fn the_requester_does_not_count_when_not_a_manager() {
    let d = World::new().approve("bob", MANAGER).decide();
    assert_eq!(d.approved_by, vec!["bob"]);
    assert_eq!(d.phase, RequestPhase::Pending);
}

#[test]
fn the_requester_voting_again_counts_once() {
    let d = World::new()
        .requested_by_manager("alice")
        .approve("alice", MANAGER)
        .decide();
    assert_eq!(d.approved_by, vec!["alice"]);
    assert_eq!(ignored(&d), vec![("alice", IgnoreReason::Duplicate)]);
    assert_eq!(d.phase, RequestPhase::Pending);
}

#[test]
fn a_manager_requesting_for_themselves_does_not_count() {
    let mut w = World::new().requested_by_manager(SUBJECT);
    w.spec.requester = SUBJECT.into();
    let d = w.decide();
    assert!(
        d.approved_by.is_empty(),
        "the subject never counts, not even as requester"
    );
}

#[test]
fn the_subject_approving_their_own_request_is_ignored() {
    let d = World::new()
        .approve(SUBJECT, MANAGER)
        .approve("alice", MANAGER)
        .decide();
    assert_eq!(d.phase, RequestPhase::Pending);
    assert_eq!(d.approved_by, vec!["alice"]);
    assert_eq!(ignored(&d), vec![(SUBJECT, IgnoreReason::IsSubject)]);
}

#[test]
fn a_member_of_the_subject_group_is_the_subject() {
    let mut w = World::new();
    w.spec.subject = Subject::group("oncall");
    let in_group = Voter {
        in_subject_group: true,
        ..MANAGER
    };
    let d = w.approve("alice", in_group).approve("bob", MANAGER).decide();
    assert_eq!(d.phase, RequestPhase::Pending);
    assert_eq!(ignored(&d), vec![("alice", IgnoreReason::IsSubject)]);
}

#[test]
fn a_group_subject_does_not_match_a_user_of_the_same_name() {
    let mut w = World::new();
    w.spec.subject = Subject::group(SUBJECT);
    let d = w.approve(SUBJECT, MANAGER).approve("bob", MANAGER).decide();
    assert_eq!(d.phase, RequestPhase::Approved, "user dave is not group dave");
}

#[test]
fn one_person_voting_twice_counts_once() {
    let d = World::new()
        .approve("alice", MANAGER)
        .approve("alice", MANAGER)
        .decide();
    assert_eq!(d.phase, RequestPhase::Pending);
    assert_eq!(d.tally(), "1/2");
    assert_eq!(ignored(&d), vec![("alice", IgnoreReason::Duplicate)]);
}

#[test]
fn a_later_deny_by_someone_who_approved_is_a_duplicate() {
    let d = World::new()
        .approve("alice", MANAGER)
        .vote("alice", Decision::Deny, MANAGER)
        .decide();
    assert_eq!(d.phase, RequestPhase::Pending);
    assert_eq!(ignored(&d), vec![("alice", IgnoreReason::Duplicate)]);
}

#[test]
fn a_non_manager_vote_is_ignored() {
    let d = World::new().approve("alice", MANAGER).approve("erin", NOBODY).decide();
    assert_eq!(d.phase, RequestPhase::Pending);
    assert_eq!(ignored(&d), vec![("erin", IgnoreReason::NotManager)]);
}

#[test]
fn a_non_manager_deny_is_ignored() {
    let d = World::new()
        .vote("erin", Decision::Deny, NOBODY)
        .approve("alice", MANAGER)
        .approve("bob", MANAGER)
        .decide();
    assert_eq!(d.phase, RequestPhase::Approved);
    assert_eq!(ignored(&d), vec![("erin", IgnoreReason::NotManager)]);
}

#[test]
fn a_manager_removed_before_the_quorum_completes_no_longer_counts() {
    // alice approved while a manager; when bob's approval arrives she is not
    // one any more: the quorum is re-checked with the managers of now.
    let d = World::new().approve("alice", NOBODY).approve("bob", MANAGER).decide();
    assert_eq!(d.phase, RequestPhase::Pending);
    assert_eq!(d.approved_by, vec!["bob"]);
    assert_eq!(ignored(&d), vec![("alice", IgnoreReason::NotManager)]);
}

#[test]
fn a_quorum_of_one_is_met_by_the_requesting_manager() {
    let mut w = World::new().requested_by_manager("alice");
    w.policy.project_role_approvals = 1;
    let d = w.decide();
    assert_eq!(d.phase, RequestPhase::Approved);
    assert_eq!(d.create_binding.map(|p| p.granted_by).as_deref(), Some("alice"));
}

#[test]
fn workspace_roles_use_their_own_quorum() {
    let mut w = World::new().approve("alice", MANAGER);
    w.spec.workspace_role = Some(WorkspaceRole::Member);
    w.spec.project = None;
    w.spec.project_role = None;
    w.policy.workspace_role_approvals = 1;
    w.policy.project_role_approvals = 3;
    let d = w.decide();
    assert_eq!(d.required, 1);
    assert_eq!(d.phase, RequestPhase::Approved);
}

// ---------------------------------------------------------------------------
// Deny
// ---------------------------------------------------------------------------

#[test]
fn a_manager_deny_ends_the_request() {
    let d = World::new()
        .approve("alice", MANAGER)
        .vote("bob", Decision::Deny, MANAGER)
        .decide();
    assert_eq!(d.phase, RequestPhase::Denied);
    assert_eq!(d.denied_by.as_deref(), Some("bob"));
    assert_eq!(d.decided_at, Some(now()));
    assert!(d.create_binding.is_none());
    assert_eq!(d.wake_at, None);
}

#[test]
fn a_deny_wins_over_approvals_seen_at_the_same_time() {
    let d = World::new()
        .vote("carol", Decision::Deny, MANAGER)
        .approve("alice", MANAGER)
        .approve("bob", MANAGER)
        .decide();
    assert_eq!(d.phase, RequestPhase::Denied);
    assert!(d.create_binding.is_none());
}

#[test]
fn a_partner_deny_ends_the_request() {
    let d = World::new().vote("pat", Decision::Deny, PARTNER).decide();
    assert_eq!(d.phase, RequestPhase::Denied);
    assert_eq!(d.denied_by.as_deref(), Some("pat"));
}

#[test]
fn the_subject_cannot_deny_on_behalf_of_managers() {
    let d = World::new().vote(SUBJECT, Decision::Deny, MANAGER).decide();
    assert_eq!(d.phase, RequestPhase::Pending);
}

// ---------------------------------------------------------------------------
// Break-glass and unreachable quorum
// ---------------------------------------------------------------------------

#[test]
fn a_partner_alone_breaks_the_glass() {
    let d = World::new().approve("pat", PARTNER).decide();
    assert_eq!(d.phase, RequestPhase::Approved);
    assert_eq!(d.break_glass_by.as_deref(), Some("pat"));
    assert!(d.approved_by.is_empty(), "the partner is not counted as a manager");
    assert_eq!(d.create_binding.map(|p| p.granted_by).as_deref(), Some("pat"));
}

#[test]
fn break_glass_can_be_switched_off() {
    let mut w = World::new().approve("pat", PARTNER);
    w.policy.partner_break_glass = false;
    let d = w.decide();
    assert_eq!(d.phase, RequestPhase::Pending);
    assert_eq!(d.break_glass_by, None);
    assert_eq!(ignored(&d), vec![("pat", IgnoreReason::NotManager)]);
}

#[test]
fn a_partner_who_is_a_manager_counts_as_a_manager_first() {
    let both = Voter {
        manager: true,
        partner: true,
        in_subject_group: false,
        verified: true,
        manager_since: None,
    };
    let d = World::new().approve("pat", both).approve("alice", MANAGER).decide();
    assert_eq!(d.phase, RequestPhase::Approved);
    assert_eq!(d.break_glass_by, None, "a quorum, not break-glass");
    let d = World::new().approve("pat", both).decide();
    assert_eq!(d.phase, RequestPhase::Approved);
    assert_eq!(
        d.break_glass_by.as_deref(),
        Some("pat"),
        "short of the quorum, the partner breaks the glass"
    );
}

#[test]
fn a_partner_cannot_break_the_glass_for_themselves() {
    let mut w = World::new();
    w.spec.subject = Subject::user("pat");
    let d = w.approve("pat", PARTNER).decide();
    assert_eq!(d.phase, RequestPhase::Pending);
    assert_eq!(ignored(&d), vec![("pat", IgnoreReason::IsSubject)]);
}

#[test]
fn too_few_managers_is_quorum_unreachable_never_a_silent_downgrade() {
    let mut w = World::new().approve("alice", MANAGER);
    w.managers = 1;
    let d = w.decide();
    assert_eq!(d.phase, RequestPhase::QuorumUnreachable);
    assert!(d.create_binding.is_none());
    let s = request_status(&d, None, None, None, Some(1), now());
    let c = find_condition(&s.conditions, QUORUM_UNREACHABLE).expect("condition");
    assert_eq!(c.status, ConditionStatus::True);
    // Then a partner breaks the glass.
    let d = w.approve("pat", PARTNER).decide();
    assert_eq!(d.phase, RequestPhase::Approved);
    assert_eq!(d.break_glass_by.as_deref(), Some("pat"));
}

#[test]
fn quorum_unreachable_clears_when_managers_are_added() {
    let mut w = World::new();
    w.managers = 1;
    assert_eq!(w.settle().phase, RequestPhase::QuorumUnreachable);
    w.managers = 2;
    let d = w.settle();
    assert_eq!(d.phase, RequestPhase::Pending);
    let c = find_condition(&w.previous.as_ref().unwrap().conditions, QUORUM_UNREACHABLE).expect("kept");
    assert_eq!(c.status, ConditionStatus::False);
}

// ---------------------------------------------------------------------------
// Timeout and finality
// ---------------------------------------------------------------------------

#[test]
fn a_request_is_never_approved_after_its_timeout() {
    let mut w = World::new().approve("alice", MANAGER).approve("bob", MANAGER);
    w.now = created() + Duration::hours(24);
    let d = w.decide();
    assert_eq!(d.phase, RequestPhase::Expired);
    assert!(d.create_binding.is_none());
    assert_eq!(d.decided_at, Some(w.now));
    w.now = created() + Duration::hours(24) - Duration::seconds(1);
    assert_eq!(
        w.decide().phase,
        RequestPhase::Approved,
        "one second before, it is approved"
    );
}

#[test]
fn the_timeout_follows_the_workspace() {
    let mut w = World::new();
    w.policy.pending_timeout = dur("30m");
    let d = w.decide();
    assert_eq!(d.phase, RequestPhase::Expired, "created an hour ago, 30m timeout");
    assert_eq!(d.pending_until, Some(created() + Duration::minutes(30)));
}

#[test]
fn votes_after_the_timeout_are_too_late() {
    let mut w = World::new().approve("alice", MANAGER);
    w.now = created() + Duration::hours(25);
    assert_eq!(w.settle().phase, RequestPhase::Expired);
    let mut w = w.approve("bob", MANAGER);
    let d = w.settle();
    assert_eq!(d.phase, RequestPhase::Expired);
    assert_eq!(ignored(&d), vec![("bob", IgnoreReason::TooLate)]);
    // Deciding again adds nothing twice.
    assert_eq!(w.decide().ignored.len(), 1);
}

#[test]
fn a_decided_request_stays_decided() {
    let mut w = World::new().vote("alice", Decision::Deny, MANAGER);
    assert_eq!(w.settle().phase, RequestPhase::Denied);
    // Votes after the deny are too late, and managers coming or going change nothing.
    let mut w = w.approve("bob", MANAGER).approve("carol", MANAGER);
    w.managers = 0;
    let d = w.settle();
    assert_eq!(d.phase, RequestPhase::Denied);
    assert_eq!(d.denied_by.as_deref(), Some("alice"));
    assert_eq!(
        ignored(&d),
        vec![("bob", IgnoreReason::TooLate), ("carol", IgnoreReason::TooLate)]
    );
    assert_eq!(d.decided_at, Some(now()));
}

#[test]
fn an_approved_request_is_granted_once_its_binding_exists() {
    let mut w = World::new().approve("alice", MANAGER).approve("bob", MANAGER);
    let d = w.settle();
    assert_eq!(d.phase, RequestPhase::Approved);
    // The operator restarts; alice is no longer a manager: the approval stands
    // (it was complete when checked) and the binding is still made.
    w.voters[0] = NOBODY;
    let d = w.settle();
    assert_eq!(d.phase, RequestPhase::Approved);
    assert_eq!(d.create_binding.as_ref().map(|p| p.granted_by.as_str()), Some("bob"));
    w.binding = ExistingBinding::Ours;
    let d = w.settle();
    assert_eq!(d.phase, RequestPhase::Granted);
    assert!(d.create_binding.is_none());
    let s = w.previous.as_ref().unwrap();
    assert_eq!(s.approvals.as_deref(), Some("2/2"));
    let ready = find_condition(&s.conditions, READY).unwrap();
    assert_eq!(
        (ready.status, ready.reason.as_str()),
        (ConditionStatus::True, "Granted")
    );
}

#[test]
fn approval_and_binding_in_one_pass_is_granted() {
    let mut w = World::new().approve("alice", MANAGER).approve("bob", MANAGER);
    w.binding = ExistingBinding::Ours;
    assert_eq!(w.decide().phase, RequestPhase::Granted);
}

#[test]
fn a_foreign_binding_with_the_same_name_is_not_taken_over() {
    let mut w = World::new().approve("alice", MANAGER).approve("bob", MANAGER);
    w.binding = ExistingBinding::Foreign;
    let d = w.decide();
    assert_eq!(d.phase, RequestPhase::Approved);
    assert!(d.create_binding.is_none());
    assert_eq!(d.problem, Some(Problem::BindingNameTaken));
}

#[test]
fn an_approval_blocked_by_a_taken_name_expires_with_the_pending_timeout() {
    let mut w = World::new().approve("alice", MANAGER).approve("bob", MANAGER);
    w.binding = ExistingBinding::Foreign;
    let d = w.settle();
    assert_eq!(d.phase, RequestPhase::Approved);
    assert_eq!(
        d.wake_at,
        Some(created() + Duration::hours(24)),
        "looks again at the timeout"
    );
    // Still blocked, a while later.
    w.now = now() + Duration::hours(2);
    assert_eq!(w.settle().phase, RequestPhase::Approved);
    // At the timeout it ends, and freeing the name afterwards grants nothing.
    w.now = created() + Duration::hours(24);
    let d = w.settle();
    assert_eq!(d.phase, RequestPhase::Expired);
    assert!(d.create_binding.is_none());
    w.binding = ExistingBinding::None;
    w.now = created() + Duration::days(30);
    let d = w.settle();
    assert_eq!(d.phase, RequestPhase::Expired);
    assert!(
        d.create_binding.is_none(),
        "weeks later, no binding from the old approval"
    );
}

// ---------------------------------------------------------------------------
// Caps and bad input
// ---------------------------------------------------------------------------

#[test]
fn the_duration_is_capped_by_the_workspace() {
    let mut w = World::new().approve("alice", MANAGER).approve("bob", MANAGER);
    w.spec.duration = dur("72h");
    w.max_duration = dur("8h");
    let plan = w.decide().create_binding.unwrap();
    assert_eq!(plan.duration, dur("8h"));
    assert!(plan.capped);
}

#[test]
fn a_role_that_cannot_be_granted_is_never_approved() {
    let mut w = World::new().approve("alice", MANAGER).approve("bob", MANAGER);
    w.role_problem = Some(("UnknownRole", "project role admin is defined nowhere".into()));
    let d = w.decide();
    assert_eq!(d.phase, RequestPhase::Pending);
    assert_eq!(d.problem.as_ref().map(Problem::reason), Some("UnknownRole"));
    assert!(d.create_binding.is_none());
    // A deny still ends it.
    let d = w.vote("carol", Decision::Deny, MANAGER).decide();
    assert_eq!(d.phase, RequestPhase::Denied);
}

#[test]
fn without_a_workspace_nothing_counts() {
    let mut w = World::new().approve("alice", MANAGER).approve("bob", MANAGER);
    w.workspace = false;
    let d = w.decide();
    assert_eq!(d.phase, RequestPhase::Pending);
    assert_eq!(d.problem, Some(Problem::WorkspaceNotFound));
    assert!(d.approved_by.is_empty());
}

#[test]
fn missing_voter_facts_count_as_nobody() {
    let mut w = World::new().approve("alice", MANAGER).approve("bob", MANAGER);
    w.voters.clear();
    let d = w.decide();
    assert_eq!(d.phase, RequestPhase::Pending);
    assert_eq!(d.ignored.len(), 2);
}

#[test]
fn an_unchanged_decision_gives_an_equal_status() {
    let mut w = World::new().approve("alice", MANAGER);
    w.settle();
    let before = w.previous.clone();
    w.now = now() + Duration::minutes(5);
    w.settle();
    assert_eq!(w.previous, before, "no timestamp of now in an unchanged status");
}

// ---------------------------------------------------------------------------
// Group subjects and unverified votes (SECURITY F2, F3, F11)
// ---------------------------------------------------------------------------

#[test]
fn a_requester_in_the_subject_group_does_not_count() {
    let mut w = World::new().requested_by_manager("alice");
    w.spec.subject = Subject::group("oncall");
    w.requester.in_subject_group = true;
    let d = w.approve("bob", MANAGER).decide();
    assert_eq!(d.approved_by, vec!["bob"], "alice asked for her own group");
    assert_eq!(d.phase, RequestPhase::Pending);
}

#[test]
fn a_requester_whose_groups_are_unknown_does_not_count_for_a_group() {
    let mut w = World::new().requested_by_manager("alice");
    w.spec.subject = Subject::group("oncall");
    w.requester.verified = false;
    let d = w.clone_approve("bob");
    assert_eq!(d.approved_by, vec!["bob"]);
    // For a user subject, an asserted requester still counts.
    let mut w = World::new().requested_by_manager("alice");
    w.requester.verified = true;
    assert_eq!(w.clone_approve("bob").approved_by, vec!["alice", "bob"]);
}

#[test]
fn an_unverified_vote_never_counts() {
    let unverified = Voter {
        verified: false,
        ..MANAGER
    };
    let d = World::new()
        .approve("alice", MANAGER)
        .approve("bob", unverified)
        .decide();
    assert_eq!(d.phase, RequestPhase::Pending);
    assert_eq!(ignored(&d), vec![("bob", IgnoreReason::Unverified)]);
    // A copy of an ignored subject-group vote is unverified, not a new vote.
    let mut w = World::new();
    w.spec.subject = Subject::group("oncall");
    let in_group = Voter {
        in_subject_group: true,
        ..MANAGER
    };
    let d = w
        .approve("bob", in_group)
        .approve("bob", unverified)
        .approve("alice", MANAGER)
        .decide();
    assert_eq!(d.approved_by, vec!["alice"]);
    assert_eq!(
        ignored(&d),
        vec![("bob", IgnoreReason::IsSubject), ("bob", IgnoreReason::Unverified)]
    );
    // An unverified partner vote breaks no glass, and an unverified deny ends nothing.
    let glass = Voter {
        verified: false,
        ..PARTNER
    };
    let d = World::new().approve("pat", glass).decide();
    assert_eq!(d.break_glass_by, None);
    let d = World::new().vote("bob", Decision::Deny, unverified).decide();
    assert_eq!(d.phase, RequestPhase::Pending);
}

// ---------------------------------------------------------------------------
// Property loop
// ---------------------------------------------------------------------------

/// Every sequence of up to three votes, each from one of five people of
/// different standing, approving or denying; with the requester a manager or
/// not; 1 to 3 managers; break-glass on or off; before and after the
/// timeout. Checks the invariants that must hold whatever happens.
#[test]
fn quorum_invariants_hold_for_every_combination() {
    let people: [(&str, Voter); 5] = [
        ("alice", MANAGER),
        ("bob", MANAGER),
        (SUBJECT, MANAGER),
        ("pat", PARTNER),
        ("erin", NOBODY),
    ];
    let mut sequences: Vec<Vec<(usize, Decision)>> = vec![vec![]];
    for _ in 0..3 {
        let longer: Vec<_> = sequences
            .iter()
            .filter(|s| s.len() == sequences.iter().map(Vec::len).max().unwrap_or(0))
            .flat_map(|s| {
                (0..people.len()).flat_map(move |p| {
                    [Decision::Approve, Decision::Deny].into_iter().map({
                        let s = s.clone();
                        move |d| {
                            let mut s = s.clone();
                            s.push((p, d));
                            s
                        }
                    })
                })
            })
            .collect();
        sequences.extend(longer);
    }
    let in_group = Voter {
        in_subject_group: true,
        ..MANAGER
    };
    let unverified = Voter {
        verified: false,
        ..MANAGER
    };
    // The requester carol: no manager; a manager; a manager in the subject
    // group; a manager whose groups are unknown.
    let requesters = [NOBODY, MANAGER, in_group, unverified];
    let mut checked = 0;
    for seq in &sequences {
        for group_subject in [false, true] {
            for requester in requesters {
                for managers in 1..=3 {
                    for break_glass in [false, true] {
                        for late in [false, true] {
                            let mut w = World::new().requested_by_manager("carol");
                            w.requester = requester;
                            if group_subject {
                                // dave is then a member of the subject group.
                                w.spec.subject = Subject::group("oncall");
                            }
                            w.managers = managers;
                            w.policy.partner_break_glass = break_glass;
                            if late {
                                w.now = created() + Duration::hours(24);
                            }
                            for (p, decision) in seq {
                                let (who, mut voter) = people[*p];
                                if group_subject && who == SUBJECT {
                                    voter = in_group;
                                }
                                w = w.vote(who, *decision, voter);
                            }
                            let d = w.decide();
                            check(&w, &d);
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 10_000, "{checked} combinations");

    /// The requester counts only as a verified manager outside the subject.
    fn requester_counts(w: &World) -> bool {
        w.requester.manager && !w.requester.in_subject_group && w.requester.verified
    }

    fn check(w: &World, d: &RequestDecision) {
        let ctx = format!("{:?} requester {} -> {d:?}", w.spec.approvals, w.spec.requester);
        // The subject never counts, nobody counts twice, only managers count.
        assert!(!d.approved_by.iter().any(|u| u == SUBJECT), "{ctx}");
        let mut distinct = d.approved_by.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), d.approved_by.len(), "{ctx}");
        assert!(
            d.approved_by
                .iter()
                .all(|u| ["alice", "bob"].contains(&u.as_str()) || (u == "carol" && requester_counts(w))),
            "{ctx}"
        );
        // Never approved after the timeout.
        if w.now >= created() + Duration::hours(24) {
            assert_eq!(d.phase, RequestPhase::Expired, "{ctx}");
        }
        // Approved means a quorum of managers or an allowed break-glass, and no deny.
        if d.phase == RequestPhase::Approved {
            let quorum = d.approved_by.len() >= d.required as usize;
            let glass = w.policy.partner_break_glass && d.break_glass_by.as_deref() == Some("pat");
            assert!(quorum || glass, "{ctx}");
            assert!(d.denied_by.is_none(), "{ctx}");
            assert!(d.create_binding.is_some(), "{ctx}");
        } else {
            assert!(d.create_binding.is_none(), "{ctx}");
        }
        // A manager's or partner's deny, not the subject's, ends it (before the timeout).
        let first_votes: Vec<&Approval> = {
            let mut seen = vec![];
            if requester_counts(w) {
                seen.push("carol");
            }
            w.spec
                .approvals
                .iter()
                .filter(|a| {
                    let first = !seen.contains(&a.user.as_str());
                    seen.push(&a.user);
                    first && a.user != SUBJECT && a.user != "erin"
                })
                .collect()
        };
        let denied = first_votes.iter().any(|a| a.decision == Decision::Deny);
        if w.now < created() + Duration::hours(24) {
            assert_eq!(d.phase == RequestPhase::Denied, denied, "{ctx}");
        }
        // Ignored votes are votes, each with the reason that fits.
        assert!(d.ignored.len() <= w.spec.approvals.len(), "{ctx}");
        for v in &d.ignored {
            let fits = match v.reason {
                IgnoreReason::IsSubject => v.user == SUBJECT,
                IgnoreReason::NotManager => v.user == "erin" || (v.user == "pat" && !w.policy.partner_break_glass),
                IgnoreReason::Duplicate => true,
                IgnoreReason::TooLate => false,
                IgnoreReason::Unverified
                | IgnoreReason::LockedOut
                | IgnoreReason::CoolingOff
                | IgnoreReason::BrokeGlass => false,
            };
            assert!(fits || v.reason == IgnoreReason::Duplicate, "{ctx}");
        }
        // Short of a quorum, fewer managers than required is reported, never approved.
        if d.phase == RequestPhase::QuorumUnreachable {
            assert!(w.managers < d.required as usize, "{ctx}");
        }
    }
}

fn lockout_hit() -> crate::policy::lockout::Hit {
    crate::policy::lockout::Hit {
        lockout: "dave-compromised".into(),
        by: "partner".into(),
        reason: "INC-9".into(),
        since: None,
    }
}

/// DESIGN §2, invariant 11: a pending request for a locked-out subject ends
/// `Denied` with the lockout named; a decided one stays as it was decided.
#[test]
fn a_pending_request_for_a_locked_out_subject_ends_denied() {
    let mut w = World::new().approve("alice", MANAGER);
    w.lockout = Some(lockout_hit());
    let d = w.decide();
    assert_eq!(d.phase, RequestPhase::Denied);
    assert_eq!(d.lockout.as_ref().map(|h| h.lockout.as_str()), Some("dave-compromised"));
    assert_eq!(d.denied_by, None);
    let s = request_status(&d, None, None, None, Some(1), now());
    assert_eq!(s.lockout.as_deref(), Some("dave-compromised"));
    let ready = find_condition(&s.conditions, READY).unwrap();
    assert_eq!(ready.reason, "LockedOut");
    let happened = transitions(&w.spec, None, None, &d);
    assert!(happened.iter().any(
        |t| matches!(&t.kind, Kind::LockedOut { lockout, .. } if lockout == "dave-compromised")
            && t.actor == Actor::User("partner".into())
    ));
    assert!(!happened.iter().any(|t| matches!(t.kind, Kind::Denied { .. })));

    // Decided since: the lifted lockout changes nothing, nothing is rewritten.
    w.previous = Some(s.clone());
    w.lockout = None;
    let kept = w.decide();
    assert_eq!(kept.phase, RequestPhase::Denied);
    assert_eq!(request_status(&kept, Some(&s), None, None, Some(1), now()), s);
}

/// A locked-out voter's votes stop counting on an open request, and never
/// count again there, even after the lockout ends.
#[test]
fn a_locked_out_voters_votes_stop_counting_for_good() {
    let mut w = World::new().requested_by_manager("alice").approve("bob", MANAGER);
    assert_eq!(w.decide().phase, RequestPhase::Approved);
    w.locked_voters = vec!["bob".into()];
    let d = w.decide();
    assert_eq!(d.phase, RequestPhase::Pending);
    assert_eq!(d.approved_by, vec!["alice".to_owned()]);
    assert!(d.ignored.contains(&IgnoredVote {
        user: "bob".into(),
        reason: IgnoreReason::LockedOut
    }));
    w.previous = Some(request_status(&d, None, None, None, Some(1), now()));
    w.locked_voters = vec![];
    let later = w.decide();
    assert_eq!(later.phase, RequestPhase::Pending, "bob's vote does not come back");

    // A locked requester's implicit approval does not count either.
    let mut r = World::new().requested_by_manager("alice");
    r.locked_voters = vec!["alice".into()];
    let d = r.decide();
    assert!(d.approved_by.is_empty());
    assert_eq!(d.ignored[0].reason, IgnoreReason::LockedOut);
}

/// A manager for `minutes` before `now()`.
fn new_manager(minutes: i64) -> Voter {
    Voter {
        manager_since: Some(now() - Duration::minutes(minutes)),
        ..MANAGER
    }
}

#[test]
fn a_new_manager_does_not_count_until_the_cooling_off_has_passed() {
    // alice has been a manager for long; bob for 5 minutes (cooling-off 1h).
    let w = World::new().approve("alice", MANAGER).approve("bob", new_manager(5));
    let d = w.decide();
    assert_eq!(d.phase, RequestPhase::Pending);
    assert_eq!(d.approved_by, ["alice"]);
    assert_eq!(
        d.ignored,
        [IgnoredVote {
            user: "bob".into(),
            reason: IgnoreReason::CoolingOff
        }]
    );
    // Woken when bob's vote counts, before the pending timeout.
    assert_eq!(d.wake_at, Some(now() + Duration::minutes(55)));

    // Once the hour has passed, the same vote counts: granted.
    let later = World {
        now: now() + Duration::minutes(55),
        ..w
    };
    let d = later.decide();
    assert_eq!(d.phase, RequestPhase::Approved);
    assert_eq!(d.approved_by, ["alice", "bob"]);
    assert!(d.ignored.is_empty());
}

#[test]
fn cooling_off_applies_to_the_requester_and_to_denials_and_can_be_turned_off() {
    let mut w = World::new().requested_by_manager("bob");
    w.requester = new_manager(5);
    let w = w.vote("carol", Decision::Deny, new_manager(1));
    let d = w.decide();
    assert_eq!(
        d.phase,
        RequestPhase::Pending,
        "a new manager's deny does not end it either"
    );
    assert_eq!(
        d.ignored
            .iter()
            .map(|v| (v.user.as_str(), v.reason))
            .collect::<Vec<_>>(),
        [("bob", IgnoreReason::CoolingOff), ("carol", IgnoreReason::CoolingOff)]
    );
    assert_eq!(
        d.wake_at,
        Some(now() + Duration::minutes(55)),
        "the earliest of the two"
    );

    let mut off = w;
    off.policy.manager_cooling_off = dur("0s");
    let d = off.decide();
    assert_eq!(d.phase, RequestPhase::Denied);
    assert_eq!(d.denied_by.as_deref(), Some("carol"));
}

#[test]
fn a_partner_in_cooling_off_still_breaks_the_glass() {
    let partner_and_new_manager = Voter {
        partner: true,
        ..new_manager(1)
    };
    let d = World::new().approve("pat", partner_and_new_manager).decide();
    assert_eq!(d.phase, RequestPhase::Approved);
    assert_eq!(d.break_glass_by.as_deref(), Some("pat"));
    assert!(d.approved_by.is_empty(), "not as a manager: {d:?}");
}

#[test]
fn managers_still_cooling_off_at_the_timeout_do_not_make_the_quorum_reachable() {
    // Two managers needed; one long-standing, two made a minute ago. The
    // request times out in 23h: with a 1h cooling-off they count toward
    // reachability, with a 30h one they do not.
    let mut w = World::new();
    w.managers_since = Some(vec![
        DateTime::<Utc>::MIN_UTC,
        now() - Duration::minutes(1),
        now() - Duration::minutes(1),
    ]);
    assert_eq!(w.decide().phase, RequestPhase::Pending);
    w.policy.manager_cooling_off = dur("30h");
    assert_eq!(w.decide().phase, RequestPhase::QuorumUnreachable);
}
