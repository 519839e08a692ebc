//! The four-eyes quorum: how a `RoleRequest` is decided (DESIGN §2, §3).
//!
//! The rules, in the order they are applied:
//! 1. A decided request (`Approved`, `Granted`, `Denied`, `Expired`) stays
//!    decided; votes after the decision are ignored as `TooLate`.
//! 2. A request still pending at `creation + pendingTimeout` expires, whatever
//!    votes it carries: it is never approved after its timeout.
//! 3. The requester counts as the first approval when they are a current
//!    manager and not the subject; for a group subject, only when the creator
//!    stamp shows their groups and they are not in the group.
//! 4. Votes are read in order. The subject's votes never count (`IsSubject`),
//!    nor those of members of a subject group (by the groups the API server
//!    stamped); a vote the API server did not stamp as written by its own
//!    author (`Unverified`) never counts, and one a trusted asserter wrote in
//!    someone's name counts only for a user subject (for a group subject its
//!    author may be in the group); each person counts once, their first vote
//!    (`Duplicate`); only current managers count (`NotManager`; never a
//!    group, never a ServiceAccount), re-checked at every evaluation, so a
//!    manager removed before the quorum completes no longer counts.
//! 5. A `Deny` from a manager (or a partner) ends the request, and wins over
//!    approvals evaluated at the same time.
//! 6. Enough approvals grant it. Otherwise a partner's approval grants it alone
//!    where the workspace allows break-glass (a partner who is also a manager
//!    counts as a manager first).
//! 7. When the workspace has fewer managers than its quorum (not counting the
//!    subject), the request is `QuorumUnreachable`: never silently approved
//!    with fewer, waiting for a partner, more managers, or the timeout.
//! 8. A manager counts only once they have been one for the workspace's
//!    `managerCoolingOff` (`CoolingOff` until then; the vote counts when it
//!    has passed), and toward the quorum being reachable only when that
//!    passes before the pending timeout. A partner's break-glass is not
//!    affected.
//! 9. An approval that cannot become its binding (a binding of that name
//!    exists and was not made from it) lapses at the pending timeout
//!    (`Expired`): it never grants later, whoever frees the name.

use chrono::{DateTime, Utc};

use std::collections::BTreeMap;

use super::identity::vote_writer;
use super::role::Role;
use super::transition::{Actor, Kind, Transition, user};
use crate::api::conditions::{Condition, READY, find_condition, set_condition};
use crate::api::{
    ApprovalPolicy, ConditionStatus, Decision, GoDuration, IgnoreReason, IgnoredVote, RequestPhase, RoleRequestSpec,
    RoleRequestStatus, SubjectKind,
};
use crate::wire::CREATED_BY_ANNOTATION;

/// What is known about one vote's author, in the order of `spec.approvals`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Voter {
    /// Holds an active manager binding in the workspace now.
    pub manager: bool,
    /// Is a partner (by user name, or by the groups stamped at admission).
    pub partner: bool,
    /// Belongs to the subject group (when the subject is a group), per the
    /// groups stamped at admission.
    pub in_subject_group: bool,
    /// Enough is verified about the author to count the vote: the API
    /// server stamped it as the voter's own (with their groups), or, for a
    /// user subject, a trusted asserter wrote it. A vote whose groups are
    /// unknown never counts for a group subject: its voter may be in it.
    pub verified: bool,
    /// Since when they have been a manager (when they are one).
    pub manager_since: Option<DateTime<Utc>>,
}

/// The workspace, as a request sees it.
#[derive(Clone, Debug)]
pub struct RequestWorkspace<'a> {
    /// The approval policy.
    pub policy: &'a ApprovalPolicy,
    /// The longest a binding may last.
    pub max_duration: &'a GoDuration,
    /// Since when each user with an active manager binding, the subject
    /// excluded, has been a manager.
    pub qualifying_managers: Vec<DateTime<Utc>>,
}

/// The binding named after the request, if one exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExistingBinding {
    /// No binding of that name.
    None,
    /// The binding this request created (its `originRequest` names this request's uid).
    Ours,
    /// A binding of that name that this request did not create.
    Foreign,
}

/// The snapshot a request decision is taken on.
#[derive(Clone, Debug)]
pub struct RequestFacts<'a> {
    /// The request's spec.
    pub spec: &'a RoleRequestSpec,
    /// When the request was created (start of the pending timeout).
    pub created: DateTime<Utc>,
    /// The status as last written.
    pub previous: Option<&'a RoleRequestStatus>,
    /// The workspace, if it exists.
    pub workspace: Option<RequestWorkspace<'a>>,
    /// Why the requested role cannot be granted, if it cannot (unknown
    /// project, unknown role, role outside the allow-list): `(reason, message)`.
    pub role_problem: Option<(&'static str, String)>,
    /// What is known about the requester, who counts as the first approval
    /// when a verified manager who is not (and may not be) in the subject.
    pub requester: Voter,
    /// One entry per `spec.approvals` entry.
    pub voters: &'a [Voter],
    /// The binding named after the request.
    pub binding: ExistingBinding,
    /// The lockout in force on the request's subject: a request still
    /// pending ends `Denied` (DESIGN §2, invariant 11).
    pub lockout: Option<&'a super::lockout::Hit>,
    /// Voters (the requester, vote authors) locked out now: their votes do
    /// not count (`LockedOut`), and never again on this request.
    pub locked_voters: &'a [String],
    /// The current time.
    pub now: DateTime<Utc>,
}

/// Why a request cannot move on, shown as its `Ready` condition and a Warning event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The namespace belongs to no workspace.
    WorkspaceNotFound,
    /// The role cannot be granted: `(reason, message)`.
    Role(&'static str, String),
    /// A binding with the request's name exists and was not made from it.
    BindingNameTaken,
}

impl Problem {
    /// The condition and event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Problem::WorkspaceNotFound => "WorkspaceNotFound",
            Problem::Role(reason, _) => reason,
            Problem::BindingNameTaken => "BindingNameTaken",
        }
    }

    /// A message for people.
    pub fn message(&self) -> String {
        match self {
            Problem::WorkspaceNotFound => "the namespace belongs to no workspace".into(),
            Problem::Role(_, message) => message.clone(),
            Problem::BindingNameTaken => {
                "a RoleBinding with this request's name exists and was not created from it; the approved role cannot be granted under that name".into()
            }
        }
    }
}

/// The binding to create from an approved request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingPlan {
    /// The requested duration, capped by the workspace's `maxDuration`.
    pub duration: GoDuration,
    /// Whether the cap shortened it.
    pub capped: bool,
    /// Who granted it: the partner who broke the glass, or the manager whose
    /// approval completed the quorum.
    pub granted_by: String,
}

/// What should be true of a request.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestDecision {
    /// The phase.
    pub phase: RequestPhase,
    /// Approvals required by the workspace's policy (0 when unknown).
    pub required: i32,
    /// The managers whose approvals count, in order.
    pub approved_by: Vec<String>,
    /// Votes that do not count, with the reason.
    pub ignored: Vec<IgnoredVote>,
    /// Who denied it.
    pub denied_by: Option<String>,
    /// The partner who approved alone.
    pub break_glass_by: Option<String>,
    /// When it was decided.
    pub decided_at: Option<DateTime<Utc>>,
    /// How many votes the decision took into account.
    pub decided_on_votes: Option<i32>,
    /// When a pending request times out.
    pub pending_until: Option<DateTime<Utc>>,
    /// The binding to create (phase `Approved`, no binding yet).
    pub create_binding: Option<BindingPlan>,
    /// What keeps it from moving on.
    pub problem: Option<Problem>,
    /// When to look again without any change (the pending timeout).
    pub wake_at: Option<DateTime<Utc>>,
    /// The lockout that ended it now (phase `Denied`).
    pub lockout: Option<super::lockout::Hit>,
    /// When the first vote held back by its voter's cooling-off counts.
    pub counts_from: Option<DateTime<Utc>>,
}

impl RequestDecision {
    /// `n/m` as shown in the printer column.
    pub fn tally(&self) -> String {
        format!("{}/{}", self.approved_by.len(), self.required)
    }
}

/// What is known about each vote's author: whether a current manager (user
/// names in `managers`), a partner, or in the subject group, by user name and
/// by the groups the API server stamped for the first `stamped` votes (votes
/// not applied yet have no stamp: they are taken as the caller's own, with
/// no groups, as the plugin's plan shows them).
pub fn voters(
    spec: &RoleRequestSpec,
    annotations: Option<&std::collections::BTreeMap<String, String>>,
    stamped: usize,
    managers: &super::managers::Managers,
    config: &crate::config::Config,
) -> Vec<Voter> {
    use crate::policy::identity::{VoteStamp, vote_stamp};
    spec.approvals
        .iter()
        .enumerate()
        .map(|(i, vote)| {
            let stamp = if i < stamped {
                vote_stamp(annotations, i, &vote.user, &config.trusted_asserters)
            } else {
                VoteStamp::Own(vec![])
            };
            let groups = match &stamp {
                VoteStamp::Own(groups) => Some(groups.as_slice()),
                VoteStamp::Asserted | VoteStamp::Unverified => None,
            };
            voter(
                &spec.subject,
                &vote.user,
                groups,
                stamp != VoteStamp::Unverified,
                managers,
                config,
            )
        })
        .collect()
}

/// What is known about the requester: their groups come from the creator
/// stamp when they created the request themselves.
pub fn requester(
    spec: &RoleRequestSpec,
    annotations: Option<&std::collections::BTreeMap<String, String>>,
    managers: &super::managers::Managers,
    config: &crate::config::Config,
) -> Voter {
    let groups = crate::policy::identity::creator_groups(annotations, &spec.requester);
    let stamped =
        crate::policy::identity::written_by_self_or_asserter(annotations, &spec.requester, &config.trusted_asserters);
    voter(
        &spec.subject,
        &spec.requester,
        groups.as_deref(),
        stamped,
        managers,
        config,
    )
}

/// One author of a vote on `subject`'s role (an approval, or a verdict on
/// a break-glass grant): `groups` as the API server stamped them (`None`:
/// unknown); `stamped` whether the stamp names them (or a trusted asserter)
/// at all.
pub fn voter(
    subject: &crate::api::Subject,
    user: &str,
    groups: Option<&[String]>,
    stamped: bool,
    managers: &super::managers::Managers,
    config: &crate::config::Config,
) -> Voter {
    let group_subject = subject.kind == SubjectKind::Group;
    let manager = managers.contains(user) && !crate::policy::identity::is_service_account(user);
    Voter {
        manager,
        manager_since: managers.since(user).filter(|_| manager),
        partner: config.partners.contains(user, groups.unwrap_or_default()),
        in_subject_group: group_subject && groups.is_some_and(|g| g.contains(&subject.name)),
        verified: stamped && (groups.is_some() || !group_subject),
    }
}

/// The managers who could approve: all of them but the subject.
pub fn qualifying_managers(spec: &RoleRequestSpec, managers: &super::managers::Managers) -> Vec<DateTime<Utc>> {
    let subject = &spec.subject;
    managers
        .iter()
        .filter(|(m, _)| !(subject.kind == SubjectKind::User && **m == subject.name))
        .map(|(_, since)| since)
        .collect()
}

/// The managers (`managers`: who is one now) whose approval of the request
/// would count: all but the subject.
pub fn approvers<'a>(
    spec: &'a RoleRequestSpec,
    managers: &'a super::managers::Managers,
) -> impl Iterator<Item = &'a String> + 'a {
    let subject = &spec.subject;
    managers
        .names()
        .filter(move |m| !(subject.kind == SubjectKind::User && **m == subject.name))
}

/// Those of the [`approvers`] whose approval has not counted yet: who a
/// request still waits for (the notification of a new request names them).
pub fn awaited_approvers(
    spec: &RoleRequestSpec,
    managers: &super::managers::Managers,
    d: &RequestDecision,
) -> Vec<String> {
    approvers(spec, managers)
        .filter(|m| !d.approved_by.contains(m))
        .cloned()
        .collect()
}

/// Whether a phase is final for the votes: nothing after it counts.
pub fn is_decided(phase: Option<RequestPhase>) -> bool {
    matches!(
        phase,
        Some(RequestPhase::Approved | RequestPhase::Granted | RequestPhase::Denied | RequestPhase::Expired)
    )
}

/// Decides a request. Pure: same facts, same decision.
pub fn decide_request(facts: &RequestFacts<'_>) -> RequestDecision {
    let previous_phase = facts.previous.and_then(|s| s.phase);
    if is_decided(previous_phase)
        && let Some(previous) = facts.previous
    {
        return keep_decision(facts, previous);
    }

    let mut d = RequestDecision {
        phase: RequestPhase::Pending,
        required: 0,
        approved_by: vec![],
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
    };
    let votes = facts.spec.approvals.len();
    if let Some(hit) = facts.lockout {
        // The subject is locked out: ended at once, whatever the votes say.
        if let Some(ws) = &facts.workspace {
            d.required = if facts.spec.workspace_role.is_some() {
                ws.policy.workspace_role_approvals
            } else {
                ws.policy.project_role_approvals
            }
            .max(1);
            d.pending_until = Some(pending_deadline(facts.created, &ws.policy.pending_timeout));
            tally(facts, &mut d, votes);
        }
        d.denied_by = None;
        d.phase = RequestPhase::Denied;
        d.decided_at = Some(facts.now);
        d.decided_on_votes = Some(votes as i32);
        d.lockout = Some(hit.clone());
        return d;
    }
    let Some(ws) = &facts.workspace else {
        // Votes are tallied when the workspace is known; without it nothing counts.
        d.problem = Some(Problem::WorkspaceNotFound);
        return d;
    };
    let role_is_workspace = facts.spec.workspace_role.is_some();
    d.required = if role_is_workspace {
        ws.policy.workspace_role_approvals
    } else {
        ws.policy.project_role_approvals
    }
    .max(1);
    let deadline = pending_deadline(facts.created, &ws.policy.pending_timeout);
    d.pending_until = Some(deadline);
    if facts.now >= deadline {
        d.phase = RequestPhase::Expired;
        d.decided_at = Some(facts.now);
        d.decided_on_votes = Some(votes as i32);
        tally(facts, &mut d, votes);
        d.break_glass_by = None;
        d.denied_by = None;
        return d;
    }
    d.wake_at = Some(deadline);

    let partner_approvals = tally(facts, &mut d, votes);
    if !ws.policy.partner_break_glass {
        // Without break-glass a partner's approval is just a non-manager's.
        d.ignored.extend(
            partner_approvals
                .iter()
                .filter(|(_, counted)| !counted)
                .map(|(user, _)| IgnoredVote {
                    user: user.clone(),
                    reason: IgnoreReason::NotManager,
                }),
        );
    }
    if d.denied_by.is_some() {
        // Denied: what the role would have needed no longer matters (and a
        // decided request reports no problem of its role on later passes).
        d.phase = RequestPhase::Denied;
        d.decided_at = Some(facts.now);
        d.decided_on_votes = Some(votes as i32);
        d.wake_at = None;
        return d;
    }
    if let Some((reason, message)) = &facts.role_problem {
        d.problem = Some(Problem::Role(reason, message.clone()));
    }
    let quorum = d.approved_by.len() >= d.required as usize;
    let approver = if quorum {
        d.approved_by.last().cloned()
    } else if ws.policy.partner_break_glass
        && let Some((partner, _)) = partner_approvals.into_iter().next()
    {
        d.break_glass_by = Some(partner.clone());
        Some(partner)
    } else {
        None
    };
    match approver {
        // An approved request for a role that cannot be granted stays pending:
        // approving it would only create a refused binding.
        Some(granted_by) if d.problem.is_none() => {
            d.phase = RequestPhase::Approved;
            d.decided_at = Some(facts.now);
            d.decided_on_votes = Some(votes as i32);
            d.wake_at = None;
            d.create_binding = Some(binding_plan(&facts.spec.duration, ws.max_duration, granted_by));
            finish_approval(facts, &mut d);
        }
        _ => {
            d.break_glass_by = None;
            // Managers count toward it only if their cooling-off ends
            // before the request times out.
            let cooling_off = ws.policy.manager_cooling_off.to_chrono();
            let eligible_in_time = ws
                .qualifying_managers
                .iter()
                .filter(|since| since.checked_add_signed(cooling_off).is_some_and(|at| at < deadline))
                .count();
            if eligible_in_time < d.required as usize {
                d.phase = RequestPhase::QuorumUnreachable;
            }
            // Look again when a vote held back by its cooling-off counts.
            if let Some(at) = d.counts_from.filter(|at| *at < deadline) {
                d.wake_at = Some(at);
            }
        }
    }
    d
}

/// When a request created at `created` times out: saturating, so that no
/// creation time or timeout, however far out, panics the operator.
fn pending_deadline(created: DateTime<Utc>, timeout: &GoDuration) -> DateTime<Utc> {
    created
        .checked_add_signed(timeout.to_chrono())
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Counts the requester and the first `votes` votes into `d`; returns the
/// partners' approvals in order, each with whether it also counted as a manager's.
fn tally(facts: &RequestFacts<'_>, d: &mut RequestDecision, votes: usize) -> Vec<(String, bool)> {
    let spec = facts.spec;
    let is_subject_user = |user: &str| spec.subject.kind == SubjectKind::User && spec.subject.name == user;
    let mut seen: Vec<&str> = vec![];
    // Locked out now, or when last evaluated: never counts again here.
    let locked = |user: &str| {
        facts.locked_voters.iter().any(|u| u == user)
            || facts.previous.is_some_and(|p| {
                p.ignored
                    .iter()
                    .any(|v| v.user == user && v.reason == IgnoreReason::LockedOut)
            })
    };
    // A manager for less than the cooling-off: not yet an approver (until when).
    let cooling_off = facts
        .workspace
        .as_ref()
        .map(|w| w.policy.manager_cooling_off.to_chrono())
        .unwrap_or_default();
    let cooling = |v: &Voter| {
        v.manager_since
            .and_then(|since| since.checked_add_signed(cooling_off))
            .filter(|at| *at > facts.now)
    };
    let r = facts.requester;
    if r.manager && r.verified && !r.in_subject_group && !is_subject_user(&spec.requester) {
        let reason = if locked(&spec.requester) {
            Some(IgnoreReason::LockedOut)
        } else if let Some(at) = cooling(&r) {
            d.counts_from = Some(d.counts_from.map_or(at, |c| c.min(at)));
            Some(IgnoreReason::CoolingOff)
        } else {
            None
        };
        match reason {
            Some(reason) => d.ignored.push(IgnoredVote {
                user: spec.requester.clone(),
                reason,
            }),
            None => d.approved_by.push(spec.requester.clone()),
        }
        seen.push(&spec.requester);
    }
    let mut partner_approvals = vec![];
    for (i, vote) in spec.approvals.iter().enumerate() {
        let voter = facts.voters.get(i).copied().unwrap_or_default();
        let reason = if i >= votes {
            Some(IgnoreReason::TooLate)
        } else if locked(&vote.user) {
            Some(IgnoreReason::LockedOut)
        } else if is_subject_user(&vote.user) || voter.in_subject_group {
            Some(IgnoreReason::IsSubject)
        } else if !voter.verified {
            Some(IgnoreReason::Unverified)
        } else if seen.contains(&vote.user.as_str()) {
            Some(IgnoreReason::Duplicate)
        } else if !voter.manager && !voter.partner {
            Some(IgnoreReason::NotManager)
        } else if let (Some(at), false) = (cooling(&voter), voter.partner) {
            d.counts_from = Some(d.counts_from.map_or(at, |c| c.min(at)));
            Some(IgnoreReason::CoolingOff)
        } else {
            None
        };
        // A partner who is a manager in cooling-off acts as a partner only.
        let voter = Voter {
            manager: voter.manager && cooling(&voter).is_none(),
            ..voter
        };
        if let Some(reason) = reason {
            d.ignored.push(IgnoredVote {
                user: vote.user.clone(),
                reason,
            });
            continue;
        }
        seen.push(&vote.user);
        match (vote.decision, voter.manager) {
            (Decision::Deny, _) => {
                d.denied_by.get_or_insert_with(|| vote.user.clone());
            }
            (Decision::Approve, true) => {
                d.approved_by.push(vote.user.clone());
                if voter.partner {
                    partner_approvals.push((vote.user.clone(), true));
                }
            }
            (Decision::Approve, false) => partner_approvals.push((vote.user.clone(), false)),
        }
    }
    partner_approvals
}

/// Keeps a decided request as it was decided; only late votes are added.
fn keep_decision(facts: &RequestFacts<'_>, previous: &RoleRequestStatus) -> RequestDecision {
    let considered = previous
        .decided_on_votes
        .map(|n| n.max(0) as usize)
        .unwrap_or(facts.spec.approvals.len());
    let mut ignored = previous.ignored.clone();
    let already_late = ignored.iter().filter(|v| v.reason == IgnoreReason::TooLate).count();
    for vote in facts.spec.approvals.iter().skip(considered).skip(already_late) {
        ignored.push(IgnoredVote {
            user: vote.user.clone(),
            reason: IgnoreReason::TooLate,
        });
    }
    let mut d = RequestDecision {
        phase: previous.phase.unwrap_or(RequestPhase::Pending),
        required: previous.required.unwrap_or_default(),
        approved_by: previous.approved_by.clone(),
        ignored,
        denied_by: previous.denied_by.clone(),
        break_glass_by: previous.break_glass_by.clone(),
        decided_at: previous.decided_at,
        decided_on_votes: Some(considered as i32),
        pending_until: previous.pending_until,
        create_binding: None,
        problem: None,
        wake_at: None,
        lockout: None,
        counts_from: None,
    };
    // An approval that lapsed because its binding's name was taken keeps
    // saying so.
    if d.phase == RequestPhase::Expired
        && facts.binding == ExistingBinding::Foreign
        && find_condition(&previous.conditions, READY).is_some_and(|c| c.reason == Problem::BindingNameTaken.reason())
    {
        d.problem = Some(Problem::BindingNameTaken);
    }
    if d.phase == RequestPhase::Approved
        && facts.binding != ExistingBinding::Ours
        && let Some(deadline) = previous.pending_until
    {
        // An approval holds until the pending timeout, no longer: one that
        // could not become its binding by then (its name taken) never grants
        // anything later, whoever frees the name.
        if facts.now >= deadline {
            d.phase = RequestPhase::Expired;
            d.problem = (facts.binding == ExistingBinding::Foreign).then_some(Problem::BindingNameTaken);
            return d;
        }
        d.wake_at = Some(deadline);
    }
    if d.phase == RequestPhase::Approved {
        // Decided, binding not confirmed yet: create it (again: idempotent).
        let granted_by = previous
            .break_glass_by
            .clone()
            .or_else(|| previous.approved_by.last().cloned())
            .unwrap_or_else(|| facts.spec.requester.clone());
        if let Some(ws) = &facts.workspace {
            d.create_binding = Some(binding_plan(&facts.spec.duration, ws.max_duration, granted_by));
        } else if facts.binding != ExistingBinding::Ours {
            // Its binding exists: granted, whatever became of the workspace
            // since (as the next pass, on `Granted`, reports it).
            d.problem = Some(Problem::WorkspaceNotFound);
        }
        finish_approval(facts, &mut d);
    }
    d
}

/// The binding of an approved request: the requested duration, capped by the
/// workspace's `maxDuration`.
fn binding_plan(requested: &GoDuration, max_duration: &GoDuration, granted_by: String) -> BindingPlan {
    let capped = requested.get() > max_duration.get();
    BindingPlan {
        duration: if capped {
            max_duration.clone()
        } else {
            requested.clone()
        },
        capped,
        granted_by,
    }
}

/// An approved request is granted once its binding exists.
fn finish_approval(facts: &RequestFacts<'_>, d: &mut RequestDecision) {
    match facts.binding {
        ExistingBinding::Ours => {
            d.phase = RequestPhase::Granted;
            d.create_binding = None;
        }
        ExistingBinding::Foreign => {
            d.create_binding = None;
            d.problem = Some(Problem::BindingNameTaken);
            // Looked at again at the pending timeout, when the approval lapses.
            d.wake_at = d.pending_until;
        }
        ExistingBinding::None => {}
    }
}

/// Condition type: whether enough managers approved.
pub const QUORUM_REACHED: &str = "QuorumReached";
/// Condition type: set while the workspace has fewer managers than the quorum.
pub const QUORUM_UNREACHABLE: &str = "QuorumUnreachable";

/// The status that reports a decision, starting from the previous one so
/// that unchanged conditions keep their transition times (and an unchanged
/// status compares equal and is not written).
pub fn request_status(
    d: &RequestDecision,
    previous: Option<&RoleRequestStatus>,
    role: Option<String>,
    binding: Option<String>,
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> RoleRequestStatus {
    let mut s = previous.cloned().unwrap_or_default();
    s.observed_generation = generation;
    s.phase = Some(d.phase);
    s.role = role;
    s.approvals = Some(d.tally());
    s.required = Some(d.required);
    s.approved_by = d.approved_by.clone();
    s.ignored = d.ignored.clone();
    s.denied_by = d.denied_by.clone();
    s.break_glass_by = d.break_glass_by.clone();
    s.binding = binding.or(s.binding);
    s.decided_at = d.decided_at;
    s.decided_on_votes = d.decided_on_votes;
    s.pending_until = d.pending_until;
    if let Some(hit) = &d.lockout {
        s.lockout = Some(hit.lockout.clone());
    }

    let quorum = match (d.phase, &d.break_glass_by) {
        (_, Some(partner)) => Some((
            ConditionStatus::False,
            "BreakGlass",
            format!("approved alone by partner {partner}"),
        )),
        (RequestPhase::Approved | RequestPhase::Granted, None) => Some((
            ConditionStatus::True,
            "QuorumReached",
            format!("approved by {} ({})", d.approved_by.join(", "), d.tally()),
        )),
        (RequestPhase::Pending | RequestPhase::QuorumUnreachable, None) if d.required > 0 => Some((
            ConditionStatus::False,
            "WaitingForApprovals",
            format!(
                "{} of {} approvals from distinct managers",
                d.approved_by.len(),
                d.required
            ),
        )),
        _ => None,
    };
    if let Some((status, reason, message)) = quorum {
        set_condition(
            &mut s.conditions,
            Condition::new(QUORUM_REACHED, status, reason, message, generation, now),
        );
    }
    let unreachable = if d.phase == RequestPhase::QuorumUnreachable {
        Condition::new(
            QUORUM_UNREACHABLE,
            ConditionStatus::True,
            "NotEnoughManagers",
            format!(
                "the workspace has fewer managers (other than the subject) than the {} approvals required; only a partner can approve it",
                d.required
            ),
            generation,
            now,
        )
    } else {
        Condition::new(
            QUORUM_UNREACHABLE,
            ConditionStatus::False,
            "EnoughManagers",
            "",
            generation,
            now,
        )
    };
    if d.phase == RequestPhase::QuorumUnreachable || find_condition(&s.conditions, QUORUM_UNREACHABLE).is_some() {
        set_condition(&mut s.conditions, unreachable);
    }
    let (status, reason, message) = match (&d.problem, d.phase) {
        (Some(p), _) => (ConditionStatus::False, p.reason(), p.message()),
        (None, RequestPhase::Granted) => (
            ConditionStatus::True,
            "Granted",
            format!("RoleBinding {} created", s.binding.clone().unwrap_or_default()),
        ),
        (None, RequestPhase::Approved) => (
            ConditionStatus::False,
            "Approved",
            "approved; creating the RoleBinding".to_owned(),
        ),
        (None, RequestPhase::Denied) if s.lockout.is_some() => (
            ConditionStatus::False,
            super::transition::reason::LOCKED_OUT,
            format!(
                "ended: its subject is locked out (Lockout {})",
                s.lockout.clone().unwrap_or_default()
            ),
        ),
        (None, RequestPhase::Denied) => (
            ConditionStatus::False,
            "Denied",
            format!("denied by {}", d.denied_by.clone().unwrap_or_default()),
        ),
        (None, RequestPhase::Expired) => (
            ConditionStatus::False,
            "Expired",
            "pending longer than the workspace's pendingTimeout".to_owned(),
        ),
        (None, RequestPhase::Pending | RequestPhase::QuorumUnreachable) => (
            ConditionStatus::False,
            "Pending",
            format!("waiting for approvals ({})", d.tally()),
        ),
    };
    let ready = Condition::new(READY, status, reason, message, generation, now);
    set_condition(&mut s.conditions, ready);
    s
}

/// What a request's transition from the `previous` status to `d` made
/// happen, in order: the request itself (actor: the requester), each newly
/// counted approval (the approver), each newly ignored vote (the voter),
/// then the decision: quorum reached (the manager whose approval completed
/// it), break-glass (the partner), denied (who denied), unreachable quorum
/// and timeout (the operator), and a new problem. Only what is new, so that
/// deciding the same thing twice makes no transition.
pub fn transitions(
    spec: &RoleRequestSpec,
    annotations: Option<&BTreeMap<String, String>>,
    previous: Option<&RoleRequestStatus>,
    d: &RequestDecision,
) -> Vec<Transition> {
    let role = Role::of_request(spec).map(|r| r.label()).unwrap_or_default();
    let mut out = vec![];
    let mut say = |kind: Kind, actor: Actor| {
        out.push(Transition {
            kind,
            actor,
            subject: spec.subject.to_string(),
            role: role.clone(),
        })
    };
    // A trusted asserter may write in someone's name: the record says who
    // really wrote it (SECURITY F12).
    let written_by = |user: &str| -> Option<String> {
        spec.approvals
            .iter()
            .position(|a| a.user == user)
            .and_then(|i| vote_writer(annotations, i))
            .filter(|writer| writer != user)
    };
    let before = previous.and_then(|s| s.phase);
    if previous.is_none() {
        let filed_by = annotations
            .and_then(|a| a.get(CREATED_BY_ANNOTATION))
            .filter(|creator| **creator != spec.requester)
            .cloned();
        say(
            Kind::Requested {
                duration: spec.duration.as_str().to_owned(),
                required: d.required,
                justification: spec.justification.clone(),
                filed_by,
            },
            user(&spec.requester),
        );
    }
    let deciding = before != Some(d.phase)
        && matches!(d.phase, RequestPhase::Approved | RequestPhase::Granted)
        && !is_decided(before);
    let counted: &[String] = previous.map(|s| s.approved_by.as_slice()).unwrap_or_default();
    for (i, approver) in d.approved_by.iter().enumerate() {
        if !counted.contains(approver) {
            say(
                Kind::ApprovalCounted {
                    tally: format!("{}/{}", i + 1, d.required),
                    deciding: deciding && d.break_glass_by.is_none(),
                    written_by: written_by(approver),
                },
                user(approver),
            );
        }
    }
    let old_ignored: &[IgnoredVote] = previous.map(|s| s.ignored.as_slice()).unwrap_or_default();
    for vote in d.ignored.iter().filter(|v| !old_ignored.contains(v)) {
        say(Kind::VoteIgnored(vote.reason), user(&vote.user));
    }
    if before != Some(d.phase) {
        match d.phase {
            RequestPhase::Approved | RequestPhase::Granted if deciding => match &d.break_glass_by {
                Some(partner) => say(
                    Kind::BreakGlass {
                        tally: d.tally(),
                        written_by: written_by(partner),
                    },
                    user(partner),
                ),
                None => say(
                    Kind::QuorumReached {
                        approvers: d.approved_by.clone(),
                        tally: d.tally(),
                    },
                    d.approved_by.last().map(|u| user(u)).unwrap_or(Actor::Operator),
                ),
            },
            RequestPhase::QuorumUnreachable => say(Kind::QuorumUnreachable { required: d.required }, Actor::Operator),
            RequestPhase::Denied if d.lockout.is_some() => {
                let hit = d.lockout.clone().unwrap_or_else(|| super::lockout::Hit {
                    lockout: String::new(),
                    by: String::new(),
                    reason: String::new(),
                    since: None,
                });
                say(
                    Kind::LockedOut {
                        lockout: hit.lockout,
                        reason: hit.reason,
                    },
                    if hit.by.is_empty() {
                        Actor::Operator
                    } else {
                        user(&hit.by)
                    },
                )
            }
            RequestPhase::Denied => say(
                Kind::Denied { tally: d.tally() },
                d.denied_by.as_deref().map(user).unwrap_or(Actor::Unknown),
            ),
            RequestPhase::Expired => say(Kind::RequestExpired { tally: d.tally() }, Actor::Operator),
            _ => {}
        }
    }
    let old_problem = previous
        .and_then(|s| find_condition(&s.conditions, READY))
        .filter(|c| c.status == ConditionStatus::False)
        .map(|c| c.reason.as_str());
    if let Some(p) = &d.problem
        && old_problem != Some(p.reason())
    {
        say(
            Kind::RequestProblem {
                reason: p.reason(),
                message: p.message(),
            },
            Actor::Operator,
        );
    }
    out
}

/// The binding of an approved request was created from `plan`.
pub fn binding_created(spec: &RoleRequestSpec, name: &str, plan: &BindingPlan) -> Transition {
    Transition {
        kind: Kind::BindingCreated {
            name: name.to_owned(),
            duration: plan.duration.as_str().to_owned(),
            capped_from: plan.capped.then(|| spec.duration.as_str().to_owned()),
        },
        actor: user(&plan.granted_by),
        subject: spec.subject.to_string(),
        role: Role::of_request(spec).map(|r| r.label()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;
