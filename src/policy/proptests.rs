//! Property-based tests of the policy (DESIGN §2, invariant 8: bad input
//! never panics the operator): arbitrary specs, votes, statuses, names,
//! durations and times, extreme ones included, fed to every decision. The
//! properties are the rules themselves, checked on whatever comes in: a
//! decision never panics and is the same when taken twice; the subject never
//! counts as an approver, nor anyone twice; nothing is active without an
//! authorisation, before its creation or after its expiry; every refusal,
//! problem and not-ready condition says why; deciding again on what was
//! just decided changes nothing and records nothing.
//!
//! The case counts are modest so that `cargo test --lib` stays quick;
//! `PROPTEST_CASES=10000 cargo test --lib proptests` digs deeper.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use proptest::sample::select;

use super::binding::{self, BindingFacts, OriginFacts, ProjectFacts, WorkspaceFacts, decide_binding, effective_expiry};
use super::lockout::{self, Asked, Held, Hit, LockoutFacts, decide_lockout};
use super::quorum::{self, ExistingBinding, RequestFacts, RequestWorkspace, Voter, decide_request};
use super::role::RoleTarget;
use super::sweep::{OwnerFacts, overdue, sweep_reason};
use super::workspace::{Claimed, Counts, decide_project, decide_workspace};
use super::{identity, namespaces};
use crate::api::conditions::{ConditionStatus, READY, find_condition};
use crate::api::{
    Approval, ApprovalPolicy, BindingPhase, Decision, GoDuration, IgnoreReason, IgnoredVote, LockoutSpec,
    OriginRequest, Project, RequestPhase, Revocation, RoleBindingSpec, RoleRequestSpec, RoleRequestStatus, Subject,
    SubjectKind, Workspace, WorkspaceRole,
};
use crate::config::{Config, Principals};
use crate::wire::{CREATED_BY_ANNOTATION, CREATED_BY_GROUPS_ANNOTATION, VOTES_ANNOTATION};

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// 2026-01-01T00:00:00Z: the ordinary times lie within ten days of it.
const BASE: i64 = 1_767_225_600;

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A name: mostly from a small pool, so that voters, subjects, requesters
/// and managers collide often; sometimes anything at all.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(vec![
            "alice", "bob", "carol", "dave", "partner", "ops", "system:serviceaccount:ci:deployer", "",
        ])
        .prop_map(str::to_owned),
        1 => "\\PC{0,16}",
        1 => any::<String>(),
    ]
}

/// A time: mostly ordinary, sometimes at the very ends of what chrono holds.
fn time() -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        12 => (BASE - 864_000..BASE + 864_000).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap()),
        1 => Just(DateTime::<Utc>::MIN_UTC),
        1 => Just(DateTime::<Utc>::MAX_UTC),
    ]
}

/// A duration as a user could write it: ordinary ones, zero, and ones far
/// beyond any cap (objects stored before the CRD's rules, say).
fn go_duration() -> impl Strategy<Value = GoDuration> {
    prop_oneof![
        8 => (0u64..100_000, select(vec!["ns", "ms", "s", "m", "h"])).prop_map(|(n, u)| format!("{n}{u}")),
        1 => Just("0s".to_owned()),
        1 => Just("2562047h".to_owned()),
        1 => Just("2562047h47m16.854775807s".to_owned()),
        1 => (1u64..u64::MAX).prop_map(|n| format!("{n}h")),
    ]
    .prop_filter_map("a duration that parses", |s| s.parse::<GoDuration>().ok())
}

fn subject() -> impl Strategy<Value = Subject> {
    (any::<bool>(), name()).prop_map(|(group, name)| Subject {
        kind: if group { SubjectKind::Group } else { SubjectKind::User },
        name,
    })
}

/// The role fields of a spec: consistent (a workspace role, or a project
/// and a project role) or not (what only an object stored before the CRD's
/// rules can hold).
fn role_fields() -> impl Strategy<Value = (Option<WorkspaceRole>, Option<String>, Option<String>)> {
    let workspace_role = prop_oneof![Just(WorkspaceRole::Manager), Just(WorkspaceRole::Member)];
    let project = select(vec!["app", "web", "other"]).prop_map(str::to_owned);
    let project_role = prop_oneof![
        4 => select(vec!["reader", "user", "admin", "root", "oncall"]).prop_map(str::to_owned),
        1 => name(),
    ];
    prop_oneof![
        4 => workspace_role.clone().prop_map(|r| (Some(r), None::<String>, None::<String>)),
        4 => (project.clone(), project_role.clone()).prop_map(|(p, r)| (None::<WorkspaceRole>, Some(p), Some(r))),
        1 => (
            proptest::option::of(workspace_role),
            proptest::option::of(project),
            proptest::option::of(project_role)
        ),
    ]
}

fn decision() -> impl Strategy<Value = Decision> {
    prop_oneof![3 => Just(Decision::Approve), 1 => Just(Decision::Deny)]
}

fn approval() -> impl Strategy<Value = Approval> {
    (name(), decision()).prop_map(|(user, decision)| Approval {
        user,
        decision,
        comment: None,
        time: None,
    })
}

fn voter() -> impl Strategy<Value = Voter> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(time()),
    )
        .prop_map(|(manager, partner, in_subject_group, verified, since)| Voter {
            manager,
            partner,
            in_subject_group,
            verified,
            manager_since: since.filter(|_| manager),
        })
}

fn policy() -> impl Strategy<Value = ApprovalPolicy> {
    (-2i32..12, -2i32..12, any::<bool>(), go_duration(), go_duration()).prop_map(
        |(w, p, break_glass, timeout, cooling_off)| ApprovalPolicy {
            workspace_role_approvals: w,
            project_role_approvals: p,
            partner_break_glass: break_glass,
            pending_timeout: timeout,
            manager_cooling_off: cooling_off,
            break_glass_ratification: Default::default(),
        },
    )
}

fn request_spec() -> impl Strategy<Value = RoleRequestSpec> {
    (
        subject(),
        role_fields(),
        go_duration(),
        "\\PC{0,20}",
        name(),
        proptest::collection::vec(approval(), 0..8),
    )
        .prop_map(
            |(subject, (workspace_role, project, project_role), duration, justification, requester, approvals)| {
                RoleRequestSpec {
                    subject,
                    workspace_role,
                    project,
                    project_role,
                    duration,
                    justification,
                    requester,
                    approvals,
                }
            },
        )
}

fn request_phase() -> impl Strategy<Value = RequestPhase> {
    select(vec![
        RequestPhase::Pending,
        RequestPhase::Approved,
        RequestPhase::Granted,
        RequestPhase::Denied,
        RequestPhase::Expired,
        RequestPhase::QuorumUnreachable,
    ])
}

fn ignore_reason() -> impl Strategy<Value = IgnoreReason> {
    select(vec![
        IgnoreReason::NotManager,
        IgnoreReason::IsSubject,
        IgnoreReason::Duplicate,
        IgnoreReason::TooLate,
        IgnoreReason::Unverified,
        IgnoreReason::LockedOut,
    ])
}

/// A status as the operator may have left it (or an older version, or a
/// partial write): any phase, counts and times.
fn request_status() -> impl Strategy<Value = RoleRequestStatus> {
    (
        proptest::option::of(request_phase()),
        proptest::option::of(any::<i32>()),
        proptest::option::of(any::<i32>()),
        proptest::collection::vec(name(), 0..3),
        proptest::collection::vec((name(), ignore_reason()), 0..3),
        proptest::option::of(name()),
        proptest::option::of(time()),
    )
        .prop_map(
            |(phase, required, decided_on_votes, approved_by, ignored, break_glass_by, pending_until)| {
                RoleRequestStatus {
                    phase,
                    required,
                    decided_on_votes,
                    approved_by,
                    ignored: ignored
                        .into_iter()
                        .map(|(user, reason)| IgnoredVote { user, reason })
                        .collect(),
                    break_glass_by,
                    pending_until,
                    ..Default::default()
                }
            },
        )
}

fn hit() -> impl Strategy<Value = Hit> {
    (name(), name(), "\\PC{0,12}", proptest::option::of(time())).prop_map(|(lockout, by, reason, since)| Hit {
        lockout,
        by,
        reason,
        since,
    })
}

fn existing_binding() -> impl Strategy<Value = ExistingBinding> {
    select(vec![
        ExistingBinding::None,
        ExistingBinding::Ours,
        ExistingBinding::Foreign,
    ])
}

/// Everything a request decision is taken on, owned.
#[derive(Clone, Debug)]
struct RequestWorld {
    spec: RoleRequestSpec,
    created: DateTime<Utc>,
    previous: Option<RoleRequestStatus>,
    workspace: Option<(ApprovalPolicy, GoDuration, Vec<DateTime<Utc>>)>,
    role_problem: Option<(&'static str, String)>,
    requester: Voter,
    voters: Vec<Voter>,
    binding: ExistingBinding,
    lockout: Option<Hit>,
    locked_voters: Vec<String>,
    now: DateTime<Utc>,
}

impl RequestWorld {
    fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            spec: &self.spec,
            created: self.created,
            previous: self.previous.as_ref(),
            workspace: self.workspace.as_ref().map(|(policy, max, managers)| RequestWorkspace {
                policy,
                max_duration: max,
                qualifying_managers: managers.clone(),
            }),
            role_problem: self.role_problem.clone(),
            requester: self.requester,
            voters: &self.voters,
            binding: self.binding,
            lockout: self.lockout.as_ref(),
            locked_voters: &self.locked_voters,
            now: self.now,
        }
    }
}

/// When a decision is taken: at the creation, a little after, or at any time at all.
#[derive(Clone, Debug)]
enum Later {
    Same,
    After(i64),
    At(DateTime<Utc>),
}

fn request_world() -> impl Strategy<Value = RequestWorld> {
    let role_problem = prop_oneof![
        Just(("UnknownRole", "project role x is defined nowhere".to_owned())),
        Just(("ProjectNotFound", "project x does not exist".to_owned())),
    ];
    (
        request_spec(),
        time(),
        prop_oneof![3 => Just(None), 1 => request_status().prop_map(Some)],
        proptest::option::of((policy(), go_duration(), proptest::collection::vec(time(), 0..6))),
        prop_oneof![4 => Just(None), 1 => role_problem.prop_map(Some)],
        voter(),
        proptest::collection::vec(voter(), 0..9),
        existing_binding(),
        prop_oneof![5 => Just(None), 1 => hit().prop_map(Some)],
        proptest::collection::vec(name(), 0..2),
        prop_oneof![
            3 => Just(Later::Same),
            1 => (0i64..200_000).prop_map(Later::After),
            1 => time().prop_map(Later::At),
        ],
    )
        .prop_map(
            |(spec, created, previous, workspace, role_problem, requester, voters, binding, lockout, locked, later)| {
                // Mostly a little after the creation, sometimes anywhere.
                let now = match later {
                    Later::Same => created,
                    Later::After(s) => created.checked_add_signed(Duration::seconds(s)).unwrap_or(created),
                    Later::At(t) => t,
                };
                RequestWorld {
                    spec,
                    created,
                    previous,
                    workspace,
                    role_problem,
                    requester,
                    voters,
                    binding,
                    lockout,
                    locked_voters: locked,
                    now,
                }
            },
        )
}

// ---------------------------------------------------------------------------
// Requests: the quorum (DESIGN §2, invariant 4)
// ---------------------------------------------------------------------------

fn is_subject_user(spec: &RoleRequestSpec, user: &str) -> bool {
    spec.subject.kind == SubjectKind::User && spec.subject.name == user
}

proptest! {
    #![proptest_config(cases(512))]

    /// Any request, in any world: a decision, the same one twice, in which
    /// the subject never approves, nobody counts twice, only managers
    /// count, and nothing is approved without a quorum or a partner.
    #[test]
    fn a_request_decision_never_panics_and_keeps_the_quorum_rules(w in request_world()) {
        let d = decide_request(&w.facts());
        prop_assert_eq!(&d, &decide_request(&w.facts()), "the same facts, another decision");
        let fresh = w.previous.as_ref().and_then(|p| p.phase).is_none_or(|p| !quorum::is_decided(Some(p)));
        if fresh {
            // A manager for less than the cooling-off never counts as one.
            let cooling_off = w.workspace.as_ref().map(|(p, ..)| p.manager_cooling_off.to_chrono()).unwrap_or_default();
            let cooling = |x: &Voter| {
                x.manager_since.and_then(|s| s.checked_add_signed(cooling_off)).is_some_and(|at| at > w.now)
            };
            let mut seen = BTreeSet::new();
            for a in &d.approved_by {
                prop_assert!(!is_subject_user(&w.spec, a), "the subject {a} counted as an approver");
                prop_assert!(seen.insert(a), "{a} counted twice");
                prop_assert!(!w.locked_voters.contains(a), "locked-out {a} counted");
                let as_requester = *a == w.spec.requester
                    && w.requester.manager
                    && w.requester.verified
                    && !cooling(&w.requester);
                let as_voter = w.spec.approvals.iter().enumerate().any(|(i, v)| {
                    v.user == *a && v.decision == Decision::Approve
                        && w.voters.get(i).is_some_and(|x| x.manager && x.verified && !x.in_subject_group && !cooling(x))
                });
                prop_assert!(as_requester || as_voter, "{a} counted without being a verified manager who approved");
            }
            if let Some(denier) = &d.denied_by {
                prop_assert!(!is_subject_user(&w.spec, denier), "the subject denied it");
                prop_assert!(w.spec.approvals.iter().any(|v| v.user == *denier && v.decision == Decision::Deny));
            }
            for v in &d.ignored {
                prop_assert!(
                    v.user == w.spec.requester || w.spec.approvals.iter().any(|a| a.user == v.user),
                    "ignored vote of {} who did not vote", v.user
                );
            }
            if matches!(d.phase, RequestPhase::Approved | RequestPhase::Granted) {
                prop_assert!(w.lockout.is_none(), "approved for a locked-out subject");
                prop_assert!(w.workspace.is_some());
                prop_assert!(d.required >= 1, "approved with a quorum of {}", d.required);
                match &d.break_glass_by {
                    Some(p) => {
                        let (policy, ..) = w.workspace.as_ref().unwrap();
                        prop_assert!(policy.partner_break_glass, "break-glass where the workspace forbids it");
                        prop_assert!(w.spec.approvals.iter().enumerate().any(|(i, v)| {
                            v.user == *p && v.decision == Decision::Approve
                                && w.voters.get(i).is_some_and(|x| x.partner && x.verified && !x.in_subject_group)
                        }), "break-glass by {p}, who is no verified partner that approved");
                        prop_assert!(!is_subject_user(&w.spec, p), "the subject broke the glass");
                    }
                    None => prop_assert!(d.approved_by.len() >= d.required as usize, "approved {} short of {}", d.tally(), d.required),
                }
                prop_assert!(d.problem.is_none() || d.phase == RequestPhase::Approved);
            }
            if let Some(plan) = &d.create_binding {
                let (_, max, _) = w.workspace.as_ref().unwrap();
                prop_assert!(plan.duration.get() <= max.get(), "the binding outlasts the workspace's cap");
                prop_assert!(plan.duration.get() <= w.spec.duration.get(), "the binding outlasts the request");
                // (Empty names cannot pass admission; the generator makes them anyway.)
                prop_assert!(!plan.granted_by.is_empty() || w.spec.requester.is_empty() || d.approved_by.iter().any(String::is_empty) || d.break_glass_by.as_deref() == Some(""));
            }
            if d.phase == RequestPhase::Pending || d.phase == RequestPhase::QuorumUnreachable {
                prop_assert!(d.create_binding.is_none());
                prop_assert!(d.pending_until.is_none_or(|until| w.now < until), "pending past its timeout");
            }
        }
    }

    /// Every problem and every state of a request says why, in a condition
    /// with a reason and a message; deciding again on the status just
    /// written changes nothing and records nothing.
    #[test]
    fn a_request_says_why_and_a_second_pass_changes_nothing(w in request_world()) {
        let d = decide_request(&w.facts());
        if let Some(p) = &d.problem {
            prop_assert!(!p.reason().is_empty() && !p.message().is_empty(), "a problem without a reason: {p:?}");
        }
        let status = quorum::request_status(&d, w.previous.as_ref(), None, None, Some(1), w.now);
        let ready = find_condition(&status.conditions, READY);
        prop_assert!(ready.is_some(), "no Ready condition");
        let ready = ready.unwrap();
        prop_assert!(!ready.reason.is_empty() && !ready.message.is_empty(), "Ready without a reason: {ready:?}");
        prop_assert!(
            (ready.status == ConditionStatus::True) == (d.phase == RequestPhase::Granted && d.problem.is_none())
        );
        for c in &status.conditions {
            prop_assert!(!c.reason.is_empty(), "condition {} without a reason", c.type_);
        }
        for t in quorum::transitions(&w.spec, None, w.previous.as_ref(), &d) {
            prop_assert!(!t.kind.reason().is_empty());
        }

        let mut again = w.clone();
        again.previous = Some(status.clone());
        let d2 = decide_request(&again.facts());
        prop_assert_eq!(d2.phase, d.phase, "a second pass changed the phase");
        prop_assert_eq!(&d2.approved_by, &d.approved_by);
        let status2 = quorum::request_status(&d2, Some(&status), None, None, Some(1), w.now);
        prop_assert_eq!(&status2, &status, "a second pass rewrote the status");
        let replayed = quorum::transitions(&w.spec, None, Some(&status), &d2);
        prop_assert!(replayed.is_empty(), "a second pass recorded {replayed:?}");
    }

    /// Whatever the annotations say (stamps forged, truncated, garbage),
    /// reading them never panics, and a vote counts as someone's own only
    /// when a stamp line names that very user as its writer.
    #[test]
    fn identity_stamps_read_any_annotation(
        created_by in proptest::option::of(name()),
        groups in proptest::option::of("\\PC{0,30}"),
        votes in proptest::option::of(proptest::collection::vec(
            ("[0-9]{0,3}|\\PC{0,4}", "[0-9]{0,3}|\\PC{0,4}", "\\PC{0,12}", name()),
            0..4,
        )),
        index in 0usize..10,
        user in name(),
    ) {
        let mut a = BTreeMap::new();
        if let Some(c) = created_by { a.insert(CREATED_BY_ANNOTATION.to_owned(), c); }
        if let Some(g) = groups { a.insert(CREATED_BY_GROUPS_ANNOTATION.to_owned(), g); }
        if let Some(lines) = &votes {
            let text: Vec<String> = lines.iter().map(|(f, t, g, w)| format!("{f}\t{t}\t{g}\t{w}")).collect();
            a.insert(VOTES_ANNOTATION.to_owned(), text.join("\n"));
        }
        let asserters = Principals { users: BTreeSet::new(), groups: BTreeSet::from(["gitops".to_owned()]) };
        let stamp = identity::vote_stamp(Some(&a), index, &user, &asserters);
        let writer = identity::vote_writer(Some(&a), index);
        if let identity::VoteStamp::Own(_) = stamp {
            prop_assert_eq!(writer.as_deref(), Some(user.as_str()), "own vote without a stamp naming its writer");
        }
        if writer.is_none() {
            prop_assert_eq!(stamp, identity::VoteStamp::Unverified);
        }
        let own = identity::creator_groups(Some(&a), &user);
        if own.is_some() {
            prop_assert_eq!(a.get(CREATED_BY_ANNOTATION), Some(&user));
            prop_assert!(identity::written_by_self_or_asserter(Some(&a), &user, &asserters));
        }
        for g in own.unwrap_or_default() {
            prop_assert!(!g.is_empty() && !g.contains(','));
        }
    }
}

// ---------------------------------------------------------------------------
// Bindings: authorisation, expiry, revocation (DESIGN §2, invariants 1, 5, 6, 11)
// ---------------------------------------------------------------------------

/// Everything a binding decision is taken on, owned.
#[derive(Clone, Debug)]
struct BindingWorld {
    spec: RoleBindingSpec,
    created: DateTime<Utc>,
    previous: Option<crate::api::RoleBindingStatus>,
    workspace: Option<(ApprovalPolicy, GoDuration, bool, bool)>,
    project: Option<(Vec<String>, BTreeMap<String, String>)>,
    origin: Option<OriginFacts>,
    pinned: Option<String>,
    granted_by_partner: bool,
    granted_by_groups: Option<Vec<String>>,
    granted_by_manager: bool,
    workspace_alive: bool,
    project_alive: bool,
    stamps_trusted: bool,
    lockout: Option<Hit>,
    config: Config,
    now: DateTime<Utc>,
}

impl BindingWorld {
    fn facts(&self) -> BindingFacts<'_> {
        BindingFacts {
            spec: &self.spec,
            created: self.created,
            previous: self.previous.as_ref(),
            workspace: self
                .workspace
                .as_ref()
                .map(|(policy, max, restrict, ready)| WorkspaceFacts {
                    name: "payments",
                    uid: "ws-uid",
                    namespace: "ws-payments",
                    policy,
                    max_duration: max.to_chrono(),
                    restrict_partner_self_assignment: *restrict,
                    ready: *ready,
                }),
            project: self.project.as_ref().map(|(namespaces, role_map)| ProjectFacts {
                uid: "project-uid",
                namespaces,
                role_map,
            }),
            origin: self.origin,
            pinned_cluster_role: self.pinned.as_deref(),
            granted_by_partner: self.granted_by_partner,
            granted_by_groups: self.granted_by_groups.clone(),
            granted_by_manager: self.granted_by_manager,
            workspace_alive: self.workspace_alive,
            project_alive: self.project_alive,
            stamps_trusted: self.stamps_trusted,
            lockout: self.lockout.as_ref(),
            origin_break_glass: None,
            origin_approvers: &[],
            ratifiers: &[],
            locked_voters: &[],
            config: &self.config,
            now: self.now,
        }
    }
}

fn binding_spec() -> impl Strategy<Value = RoleBindingSpec> {
    (
        subject(),
        role_fields(),
        prop_oneof![
            3 => go_duration().prop_map(|d| (None::<DateTime<Utc>>, Some(d))),
            2 => time().prop_map(|t| (Some(t), None::<GoDuration>)),
            1 => (proptest::option::of(time()), proptest::option::of(go_duration())),
        ],
        "\\PC{0,20}",
        name(),
        proptest::option::of((name(), name())),
        proptest::option::of((name(), "\\PC{0,12}")),
    )
        .prop_map(
            |(
                subject,
                (workspace_role, project, project_role),
                (expires_at, duration),
                justification,
                granted_by,
                origin,
                revocation,
            )| {
                RoleBindingSpec {
                    subject,
                    workspace_role,
                    project,
                    project_role,
                    expires_at,
                    duration,
                    justification,
                    granted_by,
                    origin_request: origin.map(|(name, uid)| OriginRequest { name, uid }),
                    revocation: revocation.map(|(by, reason)| Revocation { by, reason }),
                    ratifications: vec![],
                }
            },
        )
}

fn binding_world() -> impl Strategy<Value = BindingWorld> {
    let role_map = proptest::collection::btree_map(
        select(vec!["reader", "user", "admin", "root", "oncall"]).prop_map(str::to_owned),
        select(vec!["foureyes-view", "foureyes-edit", "cluster-admin", "view", ""]).prop_map(str::to_owned),
        0..3,
    );
    let project = (proptest::collection::vec(name(), 0..3), role_map);
    let origin =
        (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(uid_matches, approved, undecided)| OriginFacts {
            uid_matches,
            approved,
            undecided,
        });
    let flags = (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    );
    (
        (binding_spec(), time()),
        proptest::option::of((policy(), go_duration(), any::<bool>(), any::<bool>())),
        proptest::option::of(project),
        proptest::option::of(origin),
        proptest::option::of(select(vec!["foureyes-view", "cluster-admin", "edit"]).prop_map(str::to_owned)),
        (flags, proptest::option::of(proptest::collection::vec(name(), 0..3))),
        prop_oneof![5 => Just(None), 1 => hit().prop_map(Some)],
        prop_oneof![3 => (0i64..200_000).prop_map(Some), 1 => Just(None)],
    )
        .prop_map(
            |((spec, created), workspace, project, origin, pinned, (flags, groups), lockout, later)| {
                let (partner, manager, ws_alive, project_alive, trusted) = flags;
                let now = later
                    .and_then(|s| created.checked_add_signed(Duration::seconds(s)))
                    .unwrap_or(created);
                let workspace_alive = ws_alive || workspace.is_some();
                let project_alive = project_alive || project.is_some();
                BindingWorld {
                    spec,
                    created,
                    previous: None,
                    workspace,
                    project,
                    origin,
                    pinned,
                    granted_by_partner: partner,
                    granted_by_groups: groups,
                    granted_by_manager: manager,
                    // What resolves is alive; what does not may be gone.
                    workspace_alive,
                    project_alive,
                    stamps_trusted: trusted,
                    lockout,
                    config: Config::default(),
                    now,
                }
            },
        )
}

proptest! {
    #![proptest_config(cases(512))]

    /// Any binding, in any world: the same decision twice; active only when
    /// authorised, unrevoked, not locked out, within its expiry and its
    /// workspace's cap, and only onto allowed ClusterRoles; otherwise no
    /// native RBAC at all, and a pending binding always says why.
    #[test]
    fn a_binding_decision_never_panics_and_grants_only_what_is_authorised(w in binding_world()) {
        let d = decide_binding(&w.facts());
        prop_assert_eq!(&d, &decide_binding(&w.facts()), "the same facts, another decision");
        match d.phase {
            BindingPhase::Active => {
                prop_assert!(d.authorization.is_some() && d.refusal.is_none());
                prop_assert!(w.spec.revocation.is_none(), "active though revoked");
                prop_assert!(w.lockout.is_none(), "active though its subject is locked out");
                prop_assert!(w.workspace.is_some() && w.workspace_alive);
                prop_assert!(w.stamps_trusted, "authorised while the admission stamps are untrusted");
                prop_assert!(!d.grants.is_empty(), "active without native RBAC");
                let expiry = d.expires_at.expect("an active binding has an expiry");
                prop_assert!(w.now < expiry, "active at or after its expiry");
                let (_, max, ..) = w.workspace.as_ref().unwrap();
                if let Some(cap) = w.created.checked_add_signed(max.to_chrono()) {
                    prop_assert!(expiry <= cap, "active past the workspace's cap");
                }
                let allowed = w.config.allowed();
                for g in &d.grants {
                    match &g.target {
                        RoleTarget::ClusterRole(c) => prop_assert!(allowed.contains(c), "bound to {c}, off the allow-list"),
                        RoleTarget::WorkspaceRole(_) => prop_assert_eq!(g.namespace.as_str(), "ws-payments"),
                    }
                }
                if w.spec.origin_request.is_none() && !w.granted_by_partner {
                    prop_assert!(w.granted_by_manager, "granted directly by someone neither partner nor manager");
                }
            }
            BindingPhase::Pending => {
                prop_assert!(d.grants.is_empty());
                let r = d.refusal.as_ref();
                prop_assert!(r.is_some(), "pending without a reason");
                let r = r.unwrap();
                prop_assert!(!r.reason().is_empty() && !r.message().trim().is_empty(), "a refusal without a reason: {r:?}");
            }
            BindingPhase::Expired | BindingPhase::Revoked => {
                prop_assert!(d.grants.is_empty());
                prop_assert!(d.finished_at.is_some());
                if d.phase == BindingPhase::Revoked {
                    prop_assert!(d.revoked.is_some(), "revoked without saying by whom or why");
                }
            }
        }
        if let (Some(e), Some(_)) = (d.expires_at, &w.workspace) {
            let computed = effective_expiry(&w.spec, w.created, w.workspace.as_ref().map(|ws| ws.1.to_chrono()));
            prop_assert_eq!(Some(e), computed);
        }
    }

    /// The status of any decision has a Ready condition that says why, true
    /// exactly when the binding is active; every refusal recorded names its
    /// reason; and deciding again on the status just written (at the same
    /// moment) changes nothing and records nothing.
    #[test]
    fn a_binding_says_why_and_a_second_pass_changes_nothing(w in binding_world()) {
        let d = decide_binding(&w.facts());
        let status = binding::binding_status(&d, None, Some(1), w.now);
        let ready = find_condition(&status.conditions, READY).cloned();
        prop_assert!(ready.is_some(), "no Ready condition");
        let ready = ready.unwrap();
        prop_assert!(!ready.reason.is_empty() && !ready.message.is_empty(), "Ready without a reason: {ready:?}");
        prop_assert_eq!(ready.status == ConditionStatus::True, d.phase == BindingPhase::Active);
        for t in binding::transitions(&w.spec, None, None, &d) {
            prop_assert!(!t.kind.reason().is_empty());
            if let super::transition::Kind::Refused { reason, message, .. } = &t.kind {
                prop_assert!(!reason.is_empty() && !message.trim().is_empty());
            }
        }

        let mut again = w.clone();
        again.previous = Some(status.clone());
        let d2 = decide_binding(&again.facts());
        prop_assert_eq!(d2.phase, d.phase, "a second pass changed the phase");
        let status2 = binding::binding_status(&d2, Some(&status), Some(1), w.now);
        prop_assert_eq!(&status2, &status, "a second pass rewrote the status");
        let replayed = binding::transitions(&w.spec, None, Some(&status), &d2);
        prop_assert!(replayed.is_empty(), "a second pass recorded {replayed:?}");
    }

    /// Time moves on from a decision: a finished binding stays finished, an
    /// expiry once published never moves later, and an authorisation
    /// stays (unless the request it came from is now recorded as refused).
    #[test]
    fn a_binding_never_comes_back_nor_outlives_its_published_expiry(w in binding_world(), later in 0i64..400_000) {
        let d = decide_binding(&w.facts());
        let status = binding::binding_status(&d, None, Some(1), w.now);
        let mut next = w.clone();
        next.previous = Some(status);
        next.now = w.now.checked_add_signed(Duration::seconds(later)).unwrap_or(w.now);
        let d2 = decide_binding(&next.facts());
        if matches!(d.phase, BindingPhase::Expired | BindingPhase::Revoked) {
            prop_assert_eq!(d2.phase, d.phase, "a finished binding came back");
        }
        if let (Some(before), Some(after)) = (d.expires_at, d2.expires_at) {
            prop_assert!(after <= before, "the expiry moved from {before} to {after}");
        }
        if d2.phase == BindingPhase::Active {
            prop_assert!(next.now < d2.expires_at.unwrap());
        }
    }
}

// ---------------------------------------------------------------------------
// Workspaces, projects and namespaces (DESIGN §2, invariants 5 and 9)
// ---------------------------------------------------------------------------

fn claimed() -> impl Strategy<Value = Claimed> {
    prop_oneof![
        Just(Claimed::Created),
        Just(Claimed::Adopted),
        Just(Claimed::Held),
        Just(Claimed::Terminating),
        "\\PC{1,20}".prop_map(Claimed::Taken),
        "\\PC{1,20}".prop_map(Claimed::Refused),
    ]
}

/// What the next pass finds after acting on `c`: what it created or
/// adopted, it holds.
fn settled(c: &Claimed) -> Claimed {
    match c {
        Claimed::Created | Claimed::Adopted => Claimed::Held,
        other => other.clone(),
    }
}

fn k8s_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9]([-a-z0-9.]{0,40}[a-z0-9])?",
        1 => name(),
    ]
}

fn workspace_object() -> impl Strategy<Value = Workspace> {
    (
        k8s_name(),
        proptest::option::of(k8s_name()),
        proptest::option::of(1i64..5),
    )
        .prop_map(|(name, ns, generation)| {
            let mut spec = serde_json::json!({});
            if let Some(ns) = ns {
                spec["namespace"] = serde_json::json!(ns);
            }
            serde_json::from_value(serde_json::json!({
                "apiVersion": "foureyes.dev/v1alpha1", "kind": "Workspace",
                "metadata": { "name": name, "uid": "ws-uid", "generation": generation },
                "spec": spec,
            }))
            .expect("workspace")
        })
}

fn counts() -> impl Strategy<Value = Counts> {
    (0i32..5, 0i32..5, 0i32..10).prop_map(|(managers, members, active)| Counts {
        managers,
        members,
        active,
    })
}

proptest! {
    #![proptest_config(cases(256))]

    /// Whatever claiming its control namespace came to: the workspace says
    /// why it is not ready, holds no namespace that is not its own, and a
    /// second pass over what was just decided records nothing new.
    #[test]
    fn a_workspace_decision_says_why_and_settles(
        ws in workspace_object(),
        claim in proptest::option::of(claimed()),
        counts in counts(),
        now in time(),
    ) {
        let d = decide_workspace(&ws, claim.as_ref(), counts, now);
        prop_assert_eq!(&d, &decide_workspace(&ws, claim.as_ref(), counts, now));
        if let Some(c) = &claim {
            let ready = find_condition(&d.status.conditions, READY).cloned();
            prop_assert!(ready.is_some(), "no Ready condition");
            let ready = ready.unwrap();
            prop_assert!(!ready.reason.is_empty() && !ready.message.is_empty(), "Ready without a reason: {ready:?}");
            let usable = matches!(c, Claimed::Created | Claimed::Adopted | Claimed::Held);
            prop_assert_eq!(ready.status == ConditionStatus::True, usable);
            prop_assert_eq!(d.set_up, usable);
            prop_assert_eq!(d.status.namespace.is_some(), c.is_held(), "holds a namespace that is not its own");
        }
        for t in &d.happened {
            prop_assert!(!t.kind.reason().is_empty());
        }
        let mut next = ws.clone();
        next.status = Some(d.status.clone());
        let claim2 = claim.as_ref().map(settled);
        let d2 = decide_workspace(&next, claim2.as_ref(), counts, now);
        prop_assert!(d2.happened.is_empty(), "a second pass recorded {:?}", d2.happened);
        prop_assert_eq!(&d2.status, &d.status, "a second pass rewrote the status");
    }

    /// Whatever its tenant namespaces' claims came to: the project holds
    /// only what it claimed, releases only what it no longer holds, says
    /// why when one is refused or taken, and settles on a second pass.
    #[test]
    fn a_project_decision_holds_only_its_own_and_settles(
        name in k8s_name(),
        spec_namespaces in proptest::collection::vec(k8s_name(), 0..4),
        claims in proptest::collection::vec((k8s_name(), claimed()), 0..4),
        previously in proptest::collection::vec(k8s_name(), 0..3),
        in_workspace in any::<bool>(),
        now in time(),
    ) {
        let mut p: Project = serde_json::from_value(serde_json::json!({
            "apiVersion": "foureyes.dev/v1alpha1", "kind": "Project",
            "metadata": { "name": name, "namespace": "ws-payments", "uid": "p-uid", "generation": 1 },
            "spec": { "namespaces": spec_namespaces },
        }))
        .expect("project");
        p.status = Some(crate::api::ProjectStatus { namespaces: previously.clone(), ..Default::default() });
        let workspace = in_workspace.then_some("payments");
        let d = decide_project(&p, workspace, &claims, [], now);
        let ready = find_condition(&d.status.conditions, READY).cloned();
        prop_assert!(ready.is_some(), "no Ready condition");
        let ready = ready.unwrap();
        prop_assert!(!ready.reason.is_empty(), "Ready without a reason");
        if ready.status != ConditionStatus::True {
            prop_assert!(!ready.message.is_empty(), "not ready without a message");
        }
        if workspace.is_some() {
            for ns in &d.status.namespaces {
                prop_assert!(claims.iter().any(|(n, c)| n == ns && c.is_held()), "holds {ns}, not claimed");
            }
            for (ns, _) in &d.release {
                prop_assert!(previously.contains(ns) && !d.status.namespaces.contains(ns), "released {ns}, still held or never held");
            }
            let problem = claims.iter().any(|(_, c)| matches!(c, Claimed::Taken(_) | Claimed::Refused(_)));
            prop_assert_eq!(ready.status == ConditionStatus::True, !problem);
        }
        let mut next = p.clone();
        next.status = Some(d.status.clone());
        let claims2: Vec<(String, Claimed)> = claims.iter().map(|(n, c)| (n.clone(), settled(c))).collect();
        let d2 = decide_project(&next, workspace, &claims2, [], now);
        prop_assert!(d2.happened.is_empty(), "a second pass recorded {:?}", d2.happened);
        prop_assert!(d2.release.is_empty(), "a second pass released {:?}", d2.release);
    }

    /// Whatever labels a namespace carries: a protected one is never
    /// claimed, one of another claimant (by uid) is never kept or adopted,
    /// and every refusal says why.
    #[test]
    fn namespace_claims_never_take_what_is_not_theirs(
        ns in k8s_name(),
        labels in proptest::option::of(proptest::collection::btree_map(
            select(vec![
                crate::wire::CONTROL_NAMESPACE_LABEL, crate::wire::WORKSPACE_LABEL, crate::wire::PROJECT_LABEL,
                crate::wire::WORKSPACE_UID_LABEL, crate::wire::PROJECT_UID_LABEL, "team",
            ]).prop_map(str::to_owned),
            select(vec!["payments", "app", "ws-uid", "p-uid", "other-uid", ""]).prop_map(str::to_owned),
            0..5,
        )),
        protected in any::<bool>(),
    ) {
        use crate::wire::{CONTROL_NAMESPACE_LABEL, PROJECT_LABEL, PROJECT_UID_LABEL, WORKSPACE_LABEL, WORKSPACE_UID_LABEL};
        use namespaces::NamespaceClaim::{Adopt, Create, Keep, Refuse, Taken};
        let facts = namespaces::NamespaceFacts { name: &ns, labels: labels.as_ref(), protected };
        let label = |k: &str| labels.as_ref().and_then(|l| l.get(k)).map(String::as_str);
        let tenant = namespaces::claim_namespace("payments", "app", "p-uid", &facts);
        let control = namespaces::claim_control_namespace("payments", "ws-uid", &facts);
        for claim in [&tenant, &control] {
            if protected {
                prop_assert!(matches!(claim, Refuse(_)), "claimed protected {ns}: {claim:?}");
            }
            prop_assert_eq!(matches!(claim, Create), labels.is_none() && !protected);
            if let Taken(why) | Refuse(why) = claim {
                prop_assert!(!why.is_empty());
            }
        }
        match &tenant {
            Keep => prop_assert_eq!(label(PROJECT_UID_LABEL), Some("p-uid")),
            Adopt => {
                prop_assert!(label(PROJECT_UID_LABEL).is_none() && label(CONTROL_NAMESPACE_LABEL).is_none());
                prop_assert_eq!((label(WORKSPACE_LABEL), label(PROJECT_LABEL)), (Some("payments"), Some("app")));
            }
            _ => {}
        }
        match &control {
            Keep => {
                prop_assert_eq!(label(WORKSPACE_UID_LABEL), Some("ws-uid"));
                prop_assert!(label(CONTROL_NAMESPACE_LABEL).is_some());
            }
            Adopt => {
                prop_assert_eq!(label(CONTROL_NAMESPACE_LABEL), Some("payments"));
                prop_assert!(label(WORKSPACE_UID_LABEL).is_none() && label(PROJECT_LABEL).is_none());
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------
// Lockouts and the sweep (DESIGN §2, invariants 1, 2, 11, 12)
// ---------------------------------------------------------------------------

fn binding_phase() -> impl Strategy<Value = Option<BindingPhase>> {
    proptest::option::of(select(vec![
        BindingPhase::Pending,
        BindingPhase::Active,
        BindingPhase::Expired,
        BindingPhase::Revoked,
    ]))
}

proptest! {
    #![proptest_config(cases(256))]

    /// Any lockout, at any time, over any bindings and requests: in force
    /// exactly until its expiry, marked expired only after it, its status
    /// says why, and a second pass records nothing new.
    #[test]
    fn a_lockout_decision_never_panics_and_settles(
        name in name(),
        subject in subject(),
        reason in "\\PC{1,20}",
        expiry in prop_oneof![
            Just((None::<DateTime<Utc>>, None::<GoDuration>)),
            time().prop_map(|t| (Some(t), None::<GoDuration>)),
            go_duration().prop_map(|d| (None::<DateTime<Utc>>, Some(d))),
        ],
        created in time(),
        after in prop_oneof![(0i64..400_000).prop_map(Some), Just(None)],
        held in proptest::collection::vec((select(vec!["a", "b", "c"]), binding_phase(), any::<bool>()), 0..5),
        asked in proptest::collection::vec((select(vec!["a", "b", "d"]), proptest::option::of(request_phase()), any::<bool>()), 0..5),
        marked in any::<bool>(),
    ) {
        let spec = LockoutSpec { subject, reason, expires_at: expiry.0, duration: expiry.1, created_by: "partner".into() };
        let now = after.and_then(|s| created.checked_add_signed(Duration::seconds(s))).unwrap_or(created);
        let held: Vec<Held<'_>> = held.iter().map(|(ws, phase, mine)| Held {
            workspace: ws, phase: *phase, lockout: mine.then_some(name.as_str()),
        }).collect();
        let asked: Vec<Asked<'_>> = asked.iter().map(|(ws, phase, mine)| Asked {
            workspace: ws, phase: *phase, lockout: mine.then_some(name.as_str()),
        }).collect();
        let facts = LockoutFacts {
            name: &name, spec: &spec, created, generation: Some(1), previous: None, marked_expired: marked,
            held: &held, asked: &asked, outside: (vec![], 0), now,
        };
        let d = decide_lockout(&facts);
        prop_assert_eq!(&d, &decide_lockout(&facts));
        let expires = lockout::effective_expiry(&spec, created);
        prop_assert_eq!(d.in_force, expires.is_none_or(|e| now < e));
        prop_assert_eq!(d.in_force, lockout::in_force(&spec, created, now));
        prop_assert!(!d.mark_expired || !d.in_force, "marked expired while in force");
        prop_assert!(d.wake_at.is_none() || d.in_force);
        let ready = find_condition(&d.status.conditions, READY).cloned();
        prop_assert!(ready.is_some_and(|c| !c.reason.is_empty() && !c.message.is_empty()), "Ready without a reason");
        let again = LockoutFacts { previous: Some(&d.status), marked_expired: marked || d.mark_expired, ..facts };
        let d2 = decide_lockout(&again);
        prop_assert!(d2.happened.is_empty(), "a second pass announced {:?}", d2.happened);
        prop_assert!(d2.record.is_empty(), "a second pass recorded {:?}", d2.record);
        prop_assert!(!d2.mark_expired);
    }

    /// The sweep keeps a native binding only while its owner is present,
    /// the same one (by uid), unfinished, and its expiry readable and ahead.
    #[test]
    fn the_sweep_never_keeps_overdue_or_orphaned_access(
        gone in any::<bool>(),
        uid in proptest::option::of(select(vec!["u1", "u2"])),
        labelled in proptest::option::of(select(vec!["u1", "u2"])),
        phase in binding_phase(),
        expiry in proptest::option::of(time()),
        now in time(),
    ) {
        let owner = if gone { OwnerFacts::Gone } else { OwnerFacts::Present { uid, phase } };
        let why = sweep_reason(owner, labelled, expiry, now);
        let keep = !gone && uid == labelled
            && !matches!(phase, Some(BindingPhase::Expired | BindingPhase::Revoked))
            && !overdue(expiry, now);
        prop_assert_eq!(why.is_none(), keep);
        prop_assert!(why.is_none_or(|r| !r.is_empty()));
        if expiry.is_some_and(|e| e <= now) || expiry.is_none() {
            prop_assert!(why.is_some(), "kept access past its expiry");
        }
    }
}

// ---------------------------------------------------------------------------
// Durations (what every spec's `duration`, `maxDuration` and
// `pendingTimeout` is read with)
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(cases(1024))]

    /// Any text parses or is refused with a message, never a panic; what
    /// parses is kept as written, reads back the same, and is never negative.
    #[test]
    fn durations_parse_any_text(text in prop_oneof![
        "\\PC{0,24}",
        "-?([0-9]{1,25}(\\.[0-9]{0,12})?(ns|us|µs|ms|s|m|h|d)?){1,4}",
    ]) {
        match text.parse::<GoDuration>() {
            Ok(d) => {
                prop_assert_eq!(d.as_str(), text.as_str());
                prop_assert_eq!(d.to_string(), text.clone());
                let again: GoDuration = d.as_str().parse().unwrap();
                prop_assert_eq!(again.get(), d.get());
                prop_assert!(d.to_chrono() >= Duration::zero());
                let json = serde_json::to_value(&d).unwrap();
                let back: GoDuration = serde_json::from_value(json).unwrap();
                prop_assert_eq!(back, d);
            }
            Err(message) => prop_assert!(!message.is_empty()),
        }
    }

    /// Go's notation: a sum of parts, each read in its unit.
    #[test]
    fn durations_add_up_their_parts(h in 0u64..10_000, m in 0u64..10_000, s in 0u64..10_000) {
        let d: GoDuration = format!("{h}h{m}m{s}s").parse().unwrap();
        prop_assert_eq!(d.get(), std::time::Duration::from_secs(h * 3600 + m * 60 + s));
    }
}
