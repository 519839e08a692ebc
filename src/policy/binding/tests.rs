//! Branch-by-branch tests of the pure binding policy (DESIGN §2 invariant 6,
//! §3 lifecycle): authorisation, its latch, expiry and its cap, revocation,
//! retention, native RBAC targets, bad input, and the status that goes with a
//! decision. No I/O: every test builds a [`World`] (the facts a reconciler
//! would gather) and looks at the decision.

use crate::wire::{MANAGER_ROLE, MEMBER_ROLE};
use std::collections::BTreeSet;

use super::*;
use crate::api::{GoDuration, OriginRequest, Revocation, Subject};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const WS: &str = "payments";
const WS_NS: &str = "ws-payments";
const PROJECT: &str = "checkout";
const TENANT_NS: &str = "payments-checkout";
const SUBJECT: &str = "dave";
const GRANTER: &str = "alice";
const ORIGIN_UID: &str = "0b6f3c1e-request-uid";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("test time").with_timezone(&Utc)
}

/// The fixed "now" of every test unless it moves the clock.
fn now() -> DateTime<Utc> {
    at("2026-01-01T12:00:00Z")
}

/// When the binding was created: an hour before `now`.
fn created() -> DateTime<Utc> {
    at("2026-01-01T11:00:00Z")
}

fn hours(h: i64) -> Duration {
    Duration::hours(h)
}

fn mins(m: i64) -> Duration {
    Duration::minutes(m)
}

fn secs(s: i64) -> Duration {
    Duration::seconds(s)
}

/// The default retention of `Config::default()` (168h).
fn retention() -> Duration {
    hours(168)
}

fn policy(workspace_quorum: i32, project_quorum: i32) -> ApprovalPolicy {
    ApprovalPolicy {
        workspace_role_approvals: workspace_quorum,
        project_role_approvals: project_quorum,
        ..ApprovalPolicy::default()
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A spec builder: user `dave`, granted by `alice`, lasting 4h.
#[derive(Clone)]
struct Spec(RoleBindingSpec);

impl Spec {
    fn base() -> Self {
        Spec(RoleBindingSpec {
            subject: Subject::user(SUBJECT),
            workspace_role: None,
            project: None,
            project_role: None,
            expires_at: None,
            duration: Some("4h".parse().unwrap()),
            justification: "INC-4711: checkout is down".into(),
            granted_by: GRANTER.into(),
            origin_request: None,
            revocation: None,
            ratifications: vec![],
        })
    }

    fn workspace(role: WorkspaceRole) -> Self {
        let mut s = Self::base();
        s.0.workspace_role = Some(role);
        s
    }

    fn manager() -> Self {
        Self::workspace(WorkspaceRole::Manager)
    }

    fn member() -> Self {
        Self::workspace(WorkspaceRole::Member)
    }

    /// A project role in project `checkout`.
    fn project(role: &str) -> Self {
        let mut s = Self::base();
        s.0.project = Some(PROJECT.into());
        s.0.project_role = Some(role.into());
        s
    }

    fn subject(mut self, subject: Subject) -> Self {
        self.0.subject = subject;
        self
    }

    fn granted_by(mut self, by: &str) -> Self {
        self.0.granted_by = by.into();
        self
    }

    fn duration(mut self, d: &str) -> Self {
        self.0.duration = Some(d.parse().unwrap());
        self.0.expires_at = None;
        self
    }

    fn expires_at(mut self, t: DateTime<Utc>) -> Self {
        self.0.expires_at = Some(t);
        self.0.duration = None;
        self
    }

    fn no_expiry(mut self) -> Self {
        self.0.expires_at = None;
        self.0.duration = None;
        self
    }

    fn origin(mut self) -> Self {
        self.0.origin_request = Some(OriginRequest {
            name: "dave-checkout".into(),
            uid: ORIGIN_UID.into(),
        });
        self
    }

    fn revoked(mut self) -> Self {
        self.0.revocation = Some(Revocation {
            by: "bob".into(),
            reason: "compromised account".into(),
        });
        self
    }

    fn build(self) -> RoleBindingSpec {
        self.0
    }
}

/// What the workspace contributes to the facts.
struct Ws {
    uid: String,
    policy: ApprovalPolicy,
    max_duration: Duration,
    restrict: bool,
}

/// What the project contributes to the facts.
struct Proj {
    uid: String,
    namespaces: Vec<String>,
    role_map: BTreeMap<String, String>,
}

/// The workspace facts: `payments`, namespace `ws-payments`.
fn workspace_facts(ws: &Ws) -> WorkspaceFacts<'_> {
    WorkspaceFacts {
        name: WS,
        uid: &ws.uid,
        namespace: WS_NS,
        policy: &ws.policy,
        max_duration: ws.max_duration,
        restrict_partner_self_assignment: ws.restrict,
        ready: true,
    }
}

/// Everything a decision is taken on, owned, so that tests can tweak it.
struct World {
    spec: RoleBindingSpec,
    created: DateTime<Utc>,
    previous: Option<RoleBindingStatus>,
    workspace: Option<Ws>,
    project: Option<Proj>,
    origin: Option<OriginFacts>,
    partner: bool,
    pinned: Option<String>,
    granted_by_groups: Option<Vec<String>>,
    stamps_trusted: bool,
    workspace_alive: Option<bool>,
    manager: bool,
    lockout: Option<crate::policy::lockout::Hit>,
    origin_break_glass: Option<String>,
    ratifiers: Vec<crate::policy::quorum::Voter>,
    config: Config,
    now: DateTime<Utc>,
}

impl World {
    /// A healthy world: the workspace exists (quorum 1 for both kinds, 8h
    /// cap, no restriction), the project holds `payments-checkout`, and the
    /// granter is a manager and not a partner.
    fn new(spec: Spec) -> Self {
        World {
            spec: spec.build(),
            created: created(),
            previous: None,
            workspace: Some(Ws {
                uid: "ws-uid-1".into(),
                policy: policy(1, 1),
                max_duration: hours(8),
                restrict: false,
            }),
            project: Some(Proj {
                uid: "proj-uid-1".into(),
                namespaces: strings(&[TENANT_NS]),
                role_map: BTreeMap::new(),
            }),
            origin: None,
            partner: false,
            pinned: None,
            granted_by_groups: Some(vec![]),
            stamps_trusted: true,
            workspace_alive: None,
            manager: true,
            lockout: None,
            origin_break_glass: None,
            ratifiers: vec![],
            config: Config::default(),
            now: now(),
        }
    }

    fn ws(&mut self) -> &mut Ws {
        self.workspace.as_mut().expect("workspace present")
    }

    fn proj(&mut self) -> &mut Proj {
        self.project.as_mut().expect("project present")
    }

    fn quorums(mut self, workspace: i32, project: i32) -> Self {
        self.ws().policy = policy(workspace, project);
        self
    }

    fn partner(mut self, partner: bool) -> Self {
        self.partner = partner;
        self
    }

    fn manager(mut self, manager: bool) -> Self {
        self.manager = manager;
        self
    }

    fn restrict(mut self, restrict: bool) -> Self {
        self.ws().restrict = restrict;
        self
    }

    fn origin(mut self, origin: Option<OriginFacts>) -> Self {
        self.origin = origin;
        self
    }

    fn previous(mut self, previous: RoleBindingStatus) -> Self {
        self.previous = Some(previous);
        self
    }

    fn at(mut self, now: DateTime<Utc>) -> Self {
        self.now = now;
        self
    }

    fn facts(&self) -> BindingFacts<'_> {
        BindingFacts {
            spec: &self.spec,
            created: self.created,
            previous: self.previous.as_ref(),
            workspace: self.workspace.as_ref().map(workspace_facts),
            project: self.project.as_ref().map(|p| ProjectFacts {
                uid: &p.uid,
                namespaces: &p.namespaces,
                role_map: &p.role_map,
            }),
            origin: self.origin,
            pinned_cluster_role: self.pinned.as_deref(),
            granted_by_partner: self.partner,
            granted_by_groups: self.granted_by_groups.clone(),
            stamps_trusted: self.stamps_trusted,
            granted_by_manager: self.manager,
            lockout: self.lockout.as_ref(),
            workspace_alive: self.workspace_alive.unwrap_or_else(|| {
                let recorded = self.previous.as_ref().and_then(|p| p.workspace_uid.as_deref());
                self.workspace
                    .as_ref()
                    .is_some_and(|w| recorded.is_none_or(|u| u == w.uid))
            }),
            project_alive: {
                let recorded = self.previous.as_ref().and_then(|p| p.project_uid.as_deref());
                self.project
                    .as_ref()
                    .is_some_and(|p| recorded.is_none_or(|u| u == p.uid))
            },
            origin_break_glass: self.origin_break_glass.as_deref(),
            origin_approvers: &[],
            ratifiers: &self.ratifiers,
            locked_voters: &[],
            config: &self.config,
            now: self.now,
        }
    }

    fn decide(&self) -> BindingDecision {
        decide_binding(&self.facts())
    }

    /// The decision and the status written for it (generation 1).
    fn status(&self) -> (BindingDecision, RoleBindingStatus) {
        let d = self.decide();
        let s = binding_status(&d, self.previous.as_ref(), Some(1), self.now);
        (d, s)
    }
}

const APPROVED: OriginFacts = OriginFacts {
    uid_matches: true,
    approved: true,
    undecided: false,
};
const NOT_APPROVED: OriginFacts = OriginFacts {
    uid_matches: true,
    approved: false,
    undecided: false,
};
const OTHER_UID: OriginFacts = OriginFacts {
    uid_matches: false,
    approved: true,
    undecided: false,
};
const NEITHER: OriginFacts = OriginFacts {
    uid_matches: false,
    approved: false,
    undecided: false,
};
/// The request exists, still pending: its approval is not recorded yet.
const UNDECIDED: OriginFacts = OriginFacts {
    uid_matches: true,
    approved: false,
    undecided: true,
};

/// A previous status holding only an `Authorized` condition.
fn with_authorized(status: ConditionStatus, reason: &str) -> RoleBindingStatus {
    RoleBindingStatus {
        conditions: vec![Condition::new(AUTHORIZED, status, reason, "", Some(1), created())],
        ..RoleBindingStatus::default()
    }
}

/// A previous status in a phase, optionally finished at a time.
fn in_phase(phase: BindingPhase, finished_at: Option<DateTime<Utc>>) -> RoleBindingStatus {
    RoleBindingStatus {
        phase: Some(phase),
        finished_at,
        ..RoleBindingStatus::default()
    }
}

fn manager_grant() -> Grant {
    Grant {
        namespace: WS_NS.into(),
        target: RoleTarget::WorkspaceRole(MANAGER_ROLE.into()),
    }
}

fn member_grant() -> Grant {
    Grant {
        namespace: WS_NS.into(),
        target: RoleTarget::WorkspaceRole(MEMBER_ROLE.into()),
    }
}

fn cluster_grant(ns: &str, cluster_role: &str) -> Grant {
    Grant {
        namespace: ns.into(),
        target: RoleTarget::ClusterRole(cluster_role.into()),
    }
}

#[track_caller]
fn assert_active(d: &BindingDecision, authorization: Authorization) {
    assert_eq!(d.phase, BindingPhase::Active, "{d:#?}");
    assert_eq!(d.authorization, Some(authorization), "{d:#?}");
    assert_eq!(d.refusal, None, "{d:#?}");
    assert!(!d.grants.is_empty(), "{d:#?}");
    assert_eq!(d.finished_at, None, "{d:#?}");
    assert!(!d.delete_record, "{d:#?}");
}

#[track_caller]
fn assert_pending(d: &BindingDecision, reason: &str) {
    assert_eq!(d.phase, BindingPhase::Pending, "{d:#?}");
    assert!(d.grants.is_empty(), "a pending binding grants nothing: {d:#?}");
    assert_eq!(d.refusal.as_ref().map(Refusal::reason), Some(reason), "{d:#?}");
    assert_eq!(d.finished_at, None, "{d:#?}");
    assert!(!d.delete_record, "{d:#?}");
}

#[track_caller]
fn assert_finished(d: &BindingDecision, phase: BindingPhase, finished_at: DateTime<Utc>) {
    assert_eq!(d.phase, phase, "{d:#?}");
    assert!(d.grants.is_empty(), "a finished binding grants nothing: {d:#?}");
    assert_eq!(d.refusal, None, "{d:#?}");
    assert_eq!(d.finished_at, Some(finished_at), "{d:#?}");
}

#[track_caller]
fn condition<'a>(s: &'a RoleBindingStatus, type_: &str) -> &'a Condition {
    find_condition(&s.conditions, type_).unwrap_or_else(|| panic!("no {type_} condition in {s:#?}"))
}

// ---------------------------------------------------------------------------
// Authorisation (DESIGN §2 invariant 6)
// ---------------------------------------------------------------------------

#[test]
fn partner_grant_of_a_workspace_role_is_active_even_with_quorum_two() {
    let d = World::new(Spec::member())
        .quorums(2, 2)
        .manager(false)
        .partner(true)
        .decide();
    assert_active(&d, Authorization::Partner);
    assert_eq!(d.grants, vec![member_grant()]);
}

#[test]
fn partner_grant_of_a_project_role_is_active_even_with_quorum_two() {
    let d = World::new(Spec::project("admin"))
        .quorums(2, 2)
        .manager(false)
        .partner(true)
        .decide();
    assert_active(&d, Authorization::Partner);
    assert_eq!(d.grants, vec![cluster_grant(TENANT_NS, "foureyes-admin")]);
}

#[test]
fn manager_grant_of_a_workspace_role_uses_the_workspace_quorum() {
    // Workspace quorum 1, project quorum 2: workspace roles may be granted directly.
    for spec in [Spec::manager(), Spec::member()] {
        let d = World::new(spec).quorums(1, 2).decide();
        assert_active(&d, Authorization::Manager);
    }
    // Workspace quorum 2, project quorum 1: they may not.
    for spec in [Spec::manager(), Spec::member()] {
        let d = World::new(spec).quorums(2, 1).decide();
        assert_pending(&d, "NotAuthorized");
        assert_eq!(d.authorization, None);
        assert_eq!(
            d.refusal,
            Some(Refusal::NotAuthorized(
                "workspace payments needs 2 approvals for workspace roles: a manager cannot grant one directly; \
                 file a RoleRequest"
                    .into()
            ))
        );
    }
}

#[test]
fn manager_grant_of_a_project_role_uses_the_project_quorum() {
    let d = World::new(Spec::project("reader")).quorums(2, 1).decide();
    assert_active(&d, Authorization::Manager);
    assert_eq!(d.grants, vec![cluster_grant(TENANT_NS, "foureyes-view")]);

    let d = World::new(Spec::project("reader")).quorums(1, 2).decide();
    assert_pending(&d, "NotAuthorized");
    assert_eq!(d.authorization, None);
    let Some(Refusal::NotAuthorized(m)) = &d.refusal else {
        panic!("{d:#?}")
    };
    assert!(m.contains("needs 2 approvals for project roles"), "{m}");
}

#[test]
fn manager_grant_with_a_larger_quorum_is_refused() {
    for q in [2, 3, 10] {
        let d = World::new(Spec::manager()).quorums(q, q).decide();
        assert_pending(&d, "NotAuthorized");
        let Some(Refusal::NotAuthorized(m)) = &d.refusal else {
            panic!("{d:#?}")
        };
        assert!(m.contains(&format!("needs {q} approvals")), "{m}");
    }
}

#[test]
fn neither_partner_nor_manager_is_refused_even_with_quorum_one() {
    for spec in [Spec::manager(), Spec::member(), Spec::project("reader")] {
        let d = World::new(spec.granted_by("mallory"))
            .quorums(1, 1)
            .manager(false)
            .decide();
        assert_pending(&d, "NotAuthorized");
        assert_eq!(
            d.refusal,
            Some(Refusal::NotAuthorized(
                "mallory is neither a partner nor a manager of workspace payments".into()
            ))
        );
        // Still wakes up at the expiry, to record that it expired.
        assert_eq!(d.wake_at, Some(created() + hours(4)));
        assert_eq!(d.expires_at, Some(created() + hours(4)));
    }
}

#[test]
fn approved_request_with_matching_uid_authorises_whoever_created_it() {
    // The operator creates bindings from requests; the quorum was met on the request.
    for spec in [Spec::manager(), Spec::project("admin")] {
        let d = World::new(spec.origin().granted_by("foureyes"))
            .quorums(2, 2)
            .manager(false)
            .origin(Some(APPROVED))
            .decide();
        assert_active(&d, Authorization::ApprovedRequest);
    }
}

#[test]
fn origin_request_that_is_missing_or_mismatched_or_unapproved_is_refused_even_for_a_partner() {
    for origin in [None, Some(NOT_APPROVED), Some(OTHER_UID), Some(NEITHER)] {
        for spec in [Spec::manager(), Spec::member(), Spec::project("reader")] {
            // Partner and manager with quorum 1: any other path would authorise it.
            let d = World::new(spec.origin())
                .quorums(1, 1)
                .partner(true)
                .manager(true)
                .origin(origin)
                .decide();
            assert_pending(&d, "OriginRequestNotApproved");
            assert_eq!(d.refusal, Some(Refusal::OriginRequestNotApproved));
            assert_eq!(d.authorization, None, "origin {origin:?}");
        }
    }
}

#[test]
fn a_binding_whose_request_is_still_undecided_waits_without_a_refusal() {
    for spec in [Spec::manager(), Spec::project("reader")] {
        let d = World::new(spec.origin())
            .quorums(1, 1)
            .partner(true)
            .manager(true)
            .origin(Some(UNDECIDED))
            .decide();
        assert_eq!(d.phase, BindingPhase::Pending);
        assert_eq!(d.refusal, Some(Refusal::OriginRequestPending));
        assert!(
            d.refusal.as_ref().is_some_and(Refusal::is_transient),
            "a wait, not a Warning"
        );
        assert!(d.grants.is_empty() && d.authorization.is_none());
    }
    // Another request's uid is refused even when that one is pending.
    let other = OriginFacts {
        uid_matches: false,
        ..UNDECIDED
    };
    let d = World::new(Spec::manager().origin()).origin(Some(other)).decide();
    assert_eq!(d.refusal, Some(Refusal::OriginRequestNotApproved));
}

#[test]
fn origin_facts_without_a_claimed_origin_request_authorise_nothing() {
    // A found, approved request counts only if the binding claims to come from it.
    let d = World::new(Spec::manager())
        .quorums(2, 2)
        .manager(false)
        .origin(Some(APPROVED))
        .decide();
    assert_pending(&d, "NotAuthorized");
}

#[test]
fn partner_self_assignment_as_manager_is_refused_when_restricted() {
    let d = World::new(Spec::manager().granted_by(SUBJECT))
        .partner(true)
        .manager(false)
        .restrict(true)
        .decide();
    assert_pending(&d, "PartnerSelfAssignmentRestricted");
    assert_eq!(d.refusal, Some(Refusal::PartnerSelfAssignmentRestricted));
    assert_eq!(d.authorization, None);
    assert_eq!(d.wake_at, d.expires_at);
}

#[test]
fn partner_self_assignment_restriction_is_not_bypassed_by_also_being_a_manager() {
    // The partner check comes first: a partner who is also a manager in a
    // quorum-1 workspace still cannot make themselves manager when restricted.
    let d = World::new(Spec::manager().granted_by(SUBJECT))
        .quorums(1, 1)
        .partner(true)
        .manager(true)
        .restrict(true)
        .decide();
    assert_pending(&d, "PartnerSelfAssignmentRestricted");
}

#[test]
fn partner_self_assignment_as_member_or_project_role_is_allowed_when_restricted() {
    for spec in [Spec::member(), Spec::project("admin")] {
        let d = World::new(spec.granted_by(SUBJECT))
            .partner(true)
            .manager(false)
            .restrict(true)
            .decide();
        assert_active(&d, Authorization::Partner);
    }
}

#[test]
fn partner_self_assignment_as_manager_is_allowed_when_not_restricted() {
    let d = World::new(Spec::manager().granted_by(SUBJECT))
        .partner(true)
        .manager(false)
        .restrict(false)
        .decide();
    assert_active(&d, Authorization::Partner);
    assert_eq!(d.grants, vec![manager_grant()]);
}

#[test]
fn partner_making_someone_else_manager_is_allowed_when_restricted() {
    let d = World::new(Spec::manager().granted_by("pat"))
        .partner(true)
        .manager(false)
        .restrict(true)
        .decide();
    assert_active(&d, Authorization::Partner);
}

#[test]
fn group_subject_named_like_the_partner_is_not_a_self_assignment() {
    let spec = Spec::manager().subject(Subject::group("pat")).granted_by("pat");
    let d = World::new(spec).partner(true).manager(false).restrict(true).decide();
    assert_active(&d, Authorization::Partner);
}

#[test]
fn authorize_can_be_called_on_its_own() {
    let w = World::new(Spec::project("reader")).quorums(2, 1);
    let facts = w.facts();
    let role = Role::of_binding(facts.spec).unwrap();
    let ws = facts.workspace.clone().unwrap();
    assert_eq!(authorize(&facts, &role, &ws), Ok(Authorization::Manager));

    let w = World::new(Spec::project("reader")).quorums(1, 2);
    let facts = w.facts();
    let ws = facts.workspace.clone().unwrap();
    assert!(matches!(authorize(&facts, &role, &ws), Err(Refusal::NotAuthorized(_))));
}

// ---------------------------------------------------------------------------
// The authorisation latch
// ---------------------------------------------------------------------------

#[test]
fn authorised_once_stays_authorised_when_the_granter_loses_their_role() {
    for reason in ["GrantedByManager", "GrantedByPartner", "ApprovedRequest"] {
        let expected = match reason {
            "GrantedByManager" => Authorization::Manager,
            "GrantedByPartner" => Authorization::Partner,
            _ => Authorization::ApprovedRequest,
        };
        // The granter is now nobody and the workspace now needs two approvals.
        let d = World::new(Spec::manager())
            .quorums(2, 2)
            .manager(false)
            .partner(false)
            .previous(with_authorized(ConditionStatus::True, reason))
            .decide();
        assert_active(&d, expected);
    }
}

#[test]
fn authorised_once_from_a_request_stays_authorised_when_the_request_is_gone() {
    let d = World::new(Spec::project("reader").origin())
        .quorums(2, 2)
        .manager(false)
        .origin(None)
        .previous(with_authorized(ConditionStatus::True, "ApprovedRequest"))
        .decide();
    assert_active(&d, Authorization::ApprovedRequest);
}

#[test]
fn authorised_once_stays_authorised_when_the_workspace_restricts_later() {
    let d = World::new(Spec::manager().granted_by(SUBJECT))
        .partner(true)
        .manager(false)
        .restrict(true)
        .previous(with_authorized(ConditionStatus::True, "GrantedByPartner"))
        .decide();
    assert_active(&d, Authorization::Partner);
}

#[test]
fn previously_unauthorised_is_evaluated_again() {
    // Was refused; the workspace now needs a single approval.
    let d = World::new(Spec::manager())
        .quorums(1, 1)
        .previous(with_authorized(ConditionStatus::False, "NotAuthorized"))
        .decide();
    assert_active(&d, Authorization::Manager);

    // Was refused and still is.
    let d = World::new(Spec::manager())
        .quorums(2, 2)
        .previous(with_authorized(ConditionStatus::False, "NotAuthorized"))
        .decide();
    assert_pending(&d, "NotAuthorized");

    // An origin request approved since.
    let d = World::new(Spec::manager().origin())
        .quorums(2, 2)
        .manager(false)
        .origin(Some(APPROVED))
        .previous(with_authorized(ConditionStatus::False, "OriginRequestNotApproved"))
        .decide();
    assert_active(&d, Authorization::ApprovedRequest);
}

#[test]
fn only_a_true_authorized_condition_with_a_known_reason_latches() {
    let unauthorised = |previous: RoleBindingStatus| {
        World::new(Spec::manager())
            .quorums(2, 2)
            .manager(false)
            .previous(previous)
            .decide()
    };
    // Unknown status, unknown reason, wrong condition type, no conditions.
    assert_pending(
        &unauthorised(with_authorized(ConditionStatus::Unknown, "GrantedByManager")),
        "NotAuthorized",
    );
    assert_pending(
        &unauthorised(with_authorized(ConditionStatus::True, "Whatever")),
        "NotAuthorized",
    );
    let ready_only = RoleBindingStatus {
        phase: Some(BindingPhase::Active),
        conditions: vec![Condition::new(
            READY,
            ConditionStatus::True,
            "GrantedByManager",
            "",
            Some(1),
            created(),
        )],
        ..RoleBindingStatus::default()
    };
    assert_pending(&unauthorised(ready_only), "NotAuthorized");
    // A previous phase Active alone is not an authorisation either.
    assert_pending(&unauthorised(in_phase(BindingPhase::Active, None)), "NotAuthorized");
}

// ---------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------

#[test]
fn effective_expiry_from_duration_or_absolute_time() {
    let c = created();
    let d = Spec::manager().duration("90m").build();
    assert_eq!(effective_expiry(&d, c, None), Some(c + mins(90)));
    assert_eq!(effective_expiry(&d, c, Some(hours(8))), Some(c + mins(90)));
    assert_eq!(effective_expiry(&d, c, Some(hours(1))), Some(c + hours(1)));

    let e = Spec::manager().expires_at(c + hours(3)).build();
    assert_eq!(effective_expiry(&e, c, None), Some(c + hours(3)));
    assert_eq!(effective_expiry(&e, c, Some(hours(8))), Some(c + hours(3)));
    assert_eq!(effective_expiry(&e, c, Some(hours(2))), Some(c + hours(2)));
    // Exactly at the cap.
    assert_eq!(effective_expiry(&e, c, Some(hours(3))), Some(c + hours(3)));

    // An absolute expiry before creation is kept as is (it is already over).
    let past = Spec::manager().expires_at(c - hours(1)).build();
    assert_eq!(effective_expiry(&past, c, Some(hours(8))), Some(c - hours(1)));

    assert_eq!(
        effective_expiry(&Spec::manager().no_expiry().build(), c, Some(hours(8))),
        None
    );
}

#[test]
fn effective_expiry_prefers_expires_at_when_both_are_set() {
    // The CRD refuses both; an object stored before the rules still gets an answer.
    let mut both = Spec::manager().expires_at(created() + hours(2)).build();
    both.duration = Some("1h".parse().unwrap());
    assert_eq!(effective_expiry(&both, created(), None), Some(created() + hours(2)));
    assert_eq!(
        effective_expiry(&both, created(), Some(hours(1))),
        Some(created() + hours(1))
    );
}

#[test]
fn effective_expiry_saturates_instead_of_panicking() {
    let huge = Spec::manager().duration("2562047h").build();
    let uncapped = effective_expiry(&huge, created(), None).unwrap();
    assert!(uncapped > created() + hours(24 * 365 * 100), "{uncapped}");
    assert_eq!(
        effective_expiry(&huge, created(), Some(hours(8))),
        Some(created() + hours(8))
    );
    // A cap so large that creation + cap overflows is no cap.
    let late = DateTime::<Utc>::MAX_UTC - hours(1);
    assert_eq!(
        effective_expiry(&huge, late, Some(Duration::MAX)),
        Some(DateTime::<Utc>::MAX_UTC)
    );
}

#[test]
fn duration_is_counted_from_creation() {
    let d = World::new(Spec::manager().duration("4h")).decide();
    assert_active(&d, Authorization::Manager);
    assert_eq!(d.expires_at, Some(created() + hours(4)));
    assert_eq!(d.wake_at, Some(created() + hours(4)));
}

#[test]
fn expires_at_is_used_as_given_within_the_cap() {
    let d = World::new(Spec::manager().expires_at(created() + hours(6))).decide();
    assert_active(&d, Authorization::Manager);
    assert_eq!(d.expires_at, Some(created() + hours(6)));
    assert_eq!(d.wake_at, Some(created() + hours(6)));
}

#[test]
fn a_long_duration_is_capped_at_max_duration() {
    let d = World::new(Spec::manager().duration("24h")).decide();
    assert_active(&d, Authorization::Manager);
    assert_eq!(d.expires_at, Some(created() + hours(8)));
    assert_eq!(d.wake_at, Some(created() + hours(8)));
}

#[test]
fn a_far_expires_at_is_capped_at_max_duration() {
    let d = World::new(Spec::manager().expires_at(created() + hours(24 * 30))).decide();
    assert_active(&d, Authorization::Manager);
    assert_eq!(d.expires_at, Some(created() + hours(8)));
}

#[test]
fn lowering_max_duration_shortens_an_active_binding() {
    let mut w = World::new(Spec::manager().duration("8h"));
    let (_, first) = w.status();
    assert_eq!(first.expires_at, Some(created() + hours(8)));
    w.previous = Some(first);
    w.ws().max_duration = hours(2);
    let d = w.decide();
    assert_active(&d, Authorization::Manager);
    assert_eq!(d.expires_at, Some(created() + hours(2)));
    // And once past the new cap, it is over (at the new cap, not at `now`).
    let d = w.at(created() + hours(3)).decide();
    assert_finished(&d, BindingPhase::Expired, created() + hours(2));
}

#[test]
fn an_expiry_in_the_past_at_creation_is_expired_with_no_grants() {
    let d = World::new(Spec::manager().expires_at(created() - hours(1)))
        .at(created())
        .decide();
    assert_finished(&d, BindingPhase::Expired, created() - hours(1));
    assert_eq!(d.expires_at, Some(created() - hours(1)));
    assert_eq!(d.wake_at, Some(created() - hours(1) + retention()));
    assert!(!d.delete_record);
}

#[test]
fn at_the_expiry_instant_it_is_expired() {
    let expiry = created() + hours(4);
    let d = World::new(Spec::manager()).at(expiry).decide();
    assert_finished(&d, BindingPhase::Expired, expiry);
    assert_eq!(d.wake_at, Some(expiry + retention()));
    // Keeps the authorisation it had, for the record.
    assert_eq!(d.authorization, None, "no previous status: nothing to keep");
    let d = World::new(Spec::manager())
        .previous(with_authorized(ConditionStatus::True, "GrantedByManager"))
        .at(expiry)
        .decide();
    assert_eq!(d.authorization, Some(Authorization::Manager));
}

#[test]
fn one_second_before_the_expiry_it_is_active_and_wakes_at_the_expiry() {
    let expiry = created() + hours(4);
    let d = World::new(Spec::manager()).at(expiry - secs(1)).decide();
    assert_active(&d, Authorization::Manager);
    assert_eq!(d.wake_at, Some(expiry));
    assert_eq!(d.expires_at, Some(expiry));
}

#[test]
fn an_expiry_observed_late_finished_at_the_expiry_time() {
    // The operator was down: it sees the expiry three hours late.
    let expiry = created() + hours(4);
    let late = expiry + hours(3);
    let d = World::new(Spec::manager())
        .previous(RoleBindingStatus {
            phase: Some(BindingPhase::Active),
            expires_at: Some(expiry),
            ..with_authorized(ConditionStatus::True, "GrantedByManager")
        })
        .at(late)
        .decide();
    assert_finished(&d, BindingPhase::Expired, expiry);
    assert_eq!(d.wake_at, Some(expiry + retention()));
}

#[test]
fn an_unauthorised_binding_still_expires() {
    let d = World::new(Spec::manager())
        .quorums(2, 2)
        .at(created() + hours(5))
        .decide();
    assert_finished(&d, BindingPhase::Expired, created() + hours(4));
}

#[test]
fn without_its_workspace_the_published_expiry_is_kept() {
    // Capped to 8h while the workspace existed; the workspace is gone now, so
    // the cap is unknown: the expiry written in the status still holds, and
    // the spec's 24h does not come back.
    let previous = RoleBindingStatus {
        phase: Some(BindingPhase::Active),
        expires_at: Some(created() + hours(8)),
        ..with_authorized(ConditionStatus::True, "GrantedByManager")
    };
    let mut w = World::new(Spec::manager().duration("24h"))
        .previous(previous)
        .at(created() + hours(9));
    w.workspace = None;
    let d = w.decide();
    assert_finished(&d, BindingPhase::Expired, created() + hours(8));
    assert_eq!(d.expires_at, Some(created() + hours(8)));
}

// ---------------------------------------------------------------------------
// Revocation and finished records
// ---------------------------------------------------------------------------

#[test]
fn a_revoked_binding_grants_nothing_even_when_authorised_and_unexpired() {
    for spec in [Spec::manager(), Spec::member(), Spec::project("admin")] {
        let d = World::new(spec.revoked())
            .partner(true)
            .previous(RoleBindingStatus {
                phase: Some(BindingPhase::Active),
                ..with_authorized(ConditionStatus::True, "GrantedByPartner")
            })
            .decide();
        assert_finished(&d, BindingPhase::Revoked, now());
        assert_eq!(d.wake_at, Some(now() + retention()));
        assert!(!d.delete_record);
        assert_eq!(d.authorization, Some(Authorization::Partner));
    }
}

#[test]
fn revocation_wins_over_expiry_and_over_bad_input() {
    // Revoked after the expiry time but before the operator saw the expiry.
    let d = World::new(Spec::manager().revoked()).at(created() + hours(5)).decide();
    assert_finished(&d, BindingPhase::Revoked, created() + hours(5));

    // Invalid spec, missing workspace: still just revoked, no panic.
    let mut w = World::new(Spec::manager().revoked().no_expiry());
    w.spec.project = Some(PROJECT.into());
    w.spec.project_role = Some("reader".into());
    w.workspace = None;
    let d = w.decide();
    assert_finished(&d, BindingPhase::Revoked, now());
}

#[test]
fn a_revocation_keeps_the_time_it_was_first_seen() {
    let first_seen = now() - hours(2);
    let d = World::new(Spec::manager().revoked())
        .previous(in_phase(BindingPhase::Revoked, Some(first_seen)))
        .decide();
    assert_finished(&d, BindingPhase::Revoked, first_seen);
    assert_eq!(d.wake_at, Some(first_seen + retention()));
}

#[test]
fn previously_revoked_stays_revoked() {
    // Whatever the spec says now (revocation cannot be removed, but be safe).
    let first_seen = now() - hours(1);
    let d = World::new(Spec::manager())
        .partner(true)
        .previous(in_phase(BindingPhase::Revoked, Some(first_seen)))
        .decide();
    assert_finished(&d, BindingPhase::Revoked, first_seen);
}

#[test]
fn previously_expired_stays_expired() {
    // The expiry recomputed from the spec is in the future again (say the
    // clock or the cap moved): the record stays finished.
    let expired_at = now() - mins(10);
    let d = World::new(Spec::manager())
        .partner(true)
        .previous(in_phase(BindingPhase::Expired, Some(expired_at)))
        .decide();
    assert_finished(&d, BindingPhase::Expired, expired_at);
    assert_eq!(d.wake_at, Some(expired_at + retention()));
}

#[test]
fn previously_finished_without_a_recorded_time_gets_one() {
    let d = World::new(Spec::manager())
        .previous(in_phase(BindingPhase::Revoked, None))
        .decide();
    assert_finished(&d, BindingPhase::Revoked, now());
    // Expired with an expiry still ahead: it finished now, not in the future.
    let d = World::new(Spec::manager())
        .previous(in_phase(BindingPhase::Expired, None))
        .decide();
    assert_finished(&d, BindingPhase::Expired, now());
}

// ---------------------------------------------------------------------------
// Retention
// ---------------------------------------------------------------------------

#[test]
fn a_finished_record_is_kept_during_retention() {
    for phase in [BindingPhase::Expired, BindingPhase::Revoked] {
        let finished = now() - hours(167);
        let d = World::new(Spec::manager())
            .previous(in_phase(phase, Some(finished)))
            .decide();
        assert_finished(&d, phase, finished);
        assert!(!d.delete_record);
        assert_eq!(d.wake_at, Some(finished + retention()));
        assert_eq!(d.wake_at, Some(now() + hours(1)));
    }
}

#[test]
fn a_finished_record_is_deleted_when_retention_ends() {
    for phase in [BindingPhase::Expired, BindingPhase::Revoked] {
        // Exactly at the end, and long after.
        for finished in [now() - retention(), now() - retention() - hours(100)] {
            let d = World::new(Spec::manager())
                .previous(in_phase(phase, Some(finished)))
                .decide();
            assert_finished(&d, phase, finished);
            assert!(d.delete_record, "{d:#?}");
            assert_eq!(d.wake_at, None);
        }
        // One second before the end: kept.
        let d = World::new(Spec::manager())
            .previous(in_phase(phase, Some(now() - retention() + secs(1))))
            .decide();
        assert!(!d.delete_record);
        assert_eq!(d.wake_at, Some(now() + secs(1)));
    }
}

#[test]
fn an_expiry_seen_after_the_whole_retention_is_deleted_at_once() {
    let expiry = created() + hours(4);
    let d = World::new(Spec::manager()).at(expiry + retention() + hours(1)).decide();
    assert_finished(&d, BindingPhase::Expired, expiry);
    assert!(d.delete_record);
    assert_eq!(d.wake_at, None);
}

#[test]
fn retention_comes_from_the_configuration() {
    let mut w = World::new(Spec::manager().revoked());
    w.config.retention = "1h".parse::<GoDuration>().unwrap();
    let d = w.decide();
    assert_eq!(d.wake_at, Some(now() + hours(1)));
    let d = w
        .previous(in_phase(BindingPhase::Revoked, Some(now() - hours(1))))
        .decide();
    assert!(d.delete_record);
}

// ---------------------------------------------------------------------------
// Targets: what native RBAC an active binding has
// ---------------------------------------------------------------------------

#[test]
fn a_manager_gets_the_manager_role_in_the_workspace_namespace() {
    let d = World::new(Spec::manager()).decide();
    assert_active(&d, Authorization::Manager);
    assert_eq!(d.grants, vec![manager_grant()]);
    assert_eq!(d.role.as_deref(), Some("manager"));
}

#[test]
fn a_member_gets_the_member_role_in_the_workspace_namespace() {
    let d = World::new(Spec::member()).decide();
    assert_active(&d, Authorization::Manager);
    assert_eq!(d.grants, vec![member_grant()]);
    assert_eq!(d.role.as_deref(), Some("member"));
}

#[test]
fn workspace_roles_do_not_need_the_project() {
    let mut w = World::new(Spec::manager());
    w.project = None;
    assert_eq!(w.decide().grants, vec![manager_grant()]);
}

#[test]
fn a_project_role_is_bound_in_every_tenant_namespace_to_its_cluster_role() {
    for (role, cluster_role) in [
        ("reader", "foureyes-view"),
        ("user", "foureyes-edit"),
        ("admin", "foureyes-admin"),
    ] {
        let mut w = World::new(Spec::project(role));
        w.proj().namespaces = strings(&["payments-checkout", "payments-checkout-eu"]);
        let d = w.decide();
        assert_active(&d, Authorization::Manager);
        assert_eq!(
            d.grants,
            vec![
                cluster_grant("payments-checkout", cluster_role),
                cluster_grant("payments-checkout-eu", cluster_role)
            ]
        );
        assert_eq!(d.role, Some(format!("checkout/{role}")));
    }
}

#[test]
fn the_project_role_map_overrides_and_extends_the_configuration() {
    let mut w = World::new(Spec::project("reader"));
    w.proj().role_map = map(&[("reader", "foureyes-edit"), ("oncall", "foureyes-admin")]);
    assert_eq!(w.decide().grants, vec![cluster_grant(TENANT_NS, "foureyes-edit")]);
    w.spec.project_role = Some("oncall".into());
    assert_eq!(w.decide().grants, vec![cluster_grant(TENANT_NS, "foureyes-admin")]);
}

#[test]
fn an_unknown_project_role_is_refused() {
    let d = World::new(Spec::project("oncall")).decide();
    assert_pending(&d, "UnknownRole");
    assert_eq!(d.refusal, Some(Refusal::UnknownRole("oncall".into())));
    // It was authorised; what it asks for does not exist.
    assert_eq!(d.authorization, Some(Authorization::Manager));
    assert_eq!(d.wake_at, d.expires_at);
}

#[test]
fn a_project_role_mapped_outside_the_allow_list_is_refused() {
    let mut w = World::new(Spec::project("root")).partner(true);
    w.proj().role_map = map(&[("root", "cluster-admin")]);
    let d = w.decide();
    assert_pending(&d, "RoleNotAllowed");
    assert_eq!(
        d.refusal,
        Some(Refusal::RoleNotAllowed {
            role: "root".into(),
            cluster_role: "cluster-admin".into()
        })
    );
    // Overriding a configured role with a forbidden ClusterRole is refused too.
    let mut w = World::new(Spec::project("reader"));
    w.proj().role_map = map(&[("reader", "cluster-admin")]);
    assert_pending(&w.decide(), "RoleNotAllowed");
}

#[test]
fn an_explicit_allow_list_is_honoured() {
    let mut w = World::new(Spec::project("user"));
    w.config.allowed_cluster_roles = Some(BTreeSet::from(["foureyes-view".to_owned()]));
    let d = w.decide();
    assert_eq!(
        d.refusal,
        Some(Refusal::RoleNotAllowed {
            role: "user".into(),
            cluster_role: "foureyes-edit".into()
        })
    );
    w.spec.project_role = Some("reader".into());
    assert_eq!(w.decide().grants, vec![cluster_grant(TENANT_NS, "foureyes-view")]);
}

#[test]
fn a_missing_project_is_refused() {
    let mut w = World::new(Spec::project("reader"));
    w.project = None;
    let d = w.decide();
    assert_pending(&d, "ProjectNotFound");
    assert_eq!(d.refusal, Some(Refusal::ProjectNotFound(PROJECT.into())));
}

#[test]
fn a_project_without_namespaces_is_refused() {
    let mut w = World::new(Spec::project("reader"));
    w.proj().namespaces.clear();
    let d = w.decide();
    assert_pending(&d, "ProjectHasNoNamespaces");
    assert_eq!(d.refusal, Some(Refusal::ProjectHasNoNamespaces(PROJECT.into())));
}

#[test]
fn authorisation_is_judged_before_what_is_granted() {
    let mut w = World::new(Spec::project("reader")).quorums(2, 2);
    w.project = None;
    assert_pending(&w.decide(), "NotAuthorized");
}

#[test]
fn a_missing_workspace_grants_nothing_even_if_previously_active() {
    for spec in [Spec::manager(), Spec::project("reader")] {
        let previous = RoleBindingStatus {
            phase: Some(BindingPhase::Active),
            expires_at: Some(created() + hours(4)),
            activated_at: Some(created()),
            namespaces: strings(&[TENANT_NS]),
            ..with_authorized(ConditionStatus::True, "GrantedByManager")
        };
        let mut w = World::new(spec).partner(true).previous(previous);
        w.workspace = None;
        let d = w.decide();
        // Its workspace is gone: the binding ends for good (SECURITY F8), so
        // that a workspace re-created with the same name grants nothing old.
        assert_eq!(d.phase, BindingPhase::Revoked);
        assert!(matches!(&d.revoked, Some(Revoked::OwnerGone(_))));
        assert!(d.grants.is_empty());
        assert_eq!(
            d.authorization,
            Some(Authorization::Manager),
            "the latch is kept for the record"
        );
        assert_eq!(d.expires_at, Some(created() + hours(4)));
        assert!(d.wake_at.is_some(), "a record until its retention ends");
    }
    // And with no history at all.
    let mut w = World::new(Spec::member()).partner(true);
    w.workspace = None;
    assert_pending(&w.decide(), "WorkspaceNotFound");
}

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

#[test]
fn both_roles_set_is_an_invalid_spec() {
    let mut w = World::new(Spec::manager()).partner(true);
    w.spec.project = Some(PROJECT.into());
    w.spec.project_role = Some("reader".into());
    let d = w.decide();
    assert_pending(&d, "InvalidSpec");
    assert_eq!(d.role, None);
    assert_eq!(d.authorization, None);
    let Some(Refusal::InvalidSpec(m)) = &d.refusal else {
        panic!("{d:#?}")
    };
    assert!(m.contains("workspaceRole"), "{m}");
}

#[test]
fn no_role_or_half_a_project_role_is_an_invalid_spec() {
    let mut none = World::new(Spec::base()).partner(true);
    assert_pending(&none.decide(), "InvalidSpec");
    none.spec.project = Some(PROJECT.into());
    assert_pending(&none.decide(), "InvalidSpec");
    none.spec.project = None;
    none.spec.project_role = Some("reader".into());
    assert_pending(&none.decide(), "InvalidSpec");
    // Invalid role and no workspace: the spec is the first complaint, no panic.
    none.workspace = None;
    assert_pending(&none.decide(), "InvalidSpec");
}

#[test]
fn no_expiry_is_an_invalid_spec() {
    for spec in [Spec::manager(), Spec::project("reader")] {
        let d = World::new(spec.no_expiry()).partner(true).decide();
        assert_pending(&d, "InvalidSpec");
        assert_eq!(d.expires_at, None);
        assert_eq!(d.wake_at, None);
        assert_eq!(d.authorization, None, "nothing is authorised without an end");
        let Some(Refusal::InvalidSpec(m)) = &d.refusal else {
            panic!("{d:#?}")
        };
        assert!(m.contains("expiresAt"), "{m}");
    }
}

#[test]
fn both_expiries_set_does_not_panic_and_stays_capped() {
    let mut w = World::new(Spec::manager().expires_at(created() + hours(100)));
    w.spec.duration = Some("1h".parse().unwrap());
    let d = w.decide();
    assert!(d.expires_at.unwrap() <= created() + hours(8), "{d:#?}");
}

#[test]
fn an_absurd_duration_is_capped_and_does_not_panic() {
    let d = World::new(Spec::manager().duration("2562047h")).decide();
    assert_active(&d, Authorization::Manager);
    assert_eq!(d.expires_at, Some(created() + hours(8)));
}

// ---------------------------------------------------------------------------
// Refusal and authorisation vocabulary
// ---------------------------------------------------------------------------

#[test]
fn refusal_reasons_are_stable_and_classified() {
    let all = [
        (Refusal::InvalidSpec("x".into()), "InvalidSpec", false),
        (Refusal::WorkspaceNotFound, "WorkspaceNotFound", false),
        (Refusal::ProjectNotFound("checkout".into()), "ProjectNotFound", false),
        (
            Refusal::ProjectHasNoNamespaces("checkout".into()),
            "ProjectHasNoNamespaces",
            false,
        ),
        (Refusal::UnknownRole("oncall".into()), "UnknownRole", false),
        (
            Refusal::RoleNotAllowed {
                role: "root".into(),
                cluster_role: "cluster-admin".into(),
            },
            "RoleNotAllowed",
            false,
        ),
        (Refusal::NotAuthorized("nope".into()), "NotAuthorized", true),
        (
            Refusal::PartnerSelfAssignmentRestricted,
            "PartnerSelfAssignmentRestricted",
            true,
        ),
        (Refusal::OriginRequestNotApproved, "OriginRequestNotApproved", true),
    ];
    for (refusal, reason, is_auth) in all {
        assert_eq!(refusal.reason(), reason);
        assert_eq!(refusal.is_authorization(), is_auth, "{refusal:?}");
        assert!(!refusal.message().is_empty(), "{refusal:?}");
    }
    assert!(
        Refusal::ProjectNotFound("checkout".into())
            .message()
            .contains("checkout")
    );
    assert!(Refusal::UnknownRole("oncall".into()).message().contains("oncall"));
    let m = Refusal::RoleNotAllowed {
        role: "root".into(),
        cluster_role: "cluster-admin".into(),
    }
    .message();
    assert!(m.contains("root") && m.contains("cluster-admin"), "{m}");
    assert_eq!(Refusal::NotAuthorized("exactly this".into()).message(), "exactly this");
    assert_eq!(Refusal::InvalidSpec("why".into()).message(), "invalid spec: why");

    assert_eq!(Authorization::ApprovedRequest.reason(), "ApprovedRequest");
    assert_eq!(Authorization::Partner.reason(), "GrantedByPartner");
    assert_eq!(Authorization::Manager.reason(), "GrantedByManager");
}

// ---------------------------------------------------------------------------
// binding_status
// ---------------------------------------------------------------------------

#[test]
fn an_active_binding_reports_ready_and_authorised() {
    let (d, s) = World::new(Spec::project("reader")).status();
    assert_active(&d, Authorization::Manager);
    assert_eq!(s.observed_generation, Some(1));
    assert_eq!(s.phase, Some(BindingPhase::Active));
    assert_eq!(s.role.as_deref(), Some("checkout/reader"));
    assert_eq!(s.expires_at, Some(created() + hours(4)));
    assert_eq!(s.activated_at, Some(now()));
    assert_eq!(s.finished_at, None);
    assert_eq!(s.namespaces, strings(&[TENANT_NS]));

    let ready = condition(&s, READY);
    assert_eq!(ready.status, ConditionStatus::True);
    assert_eq!(ready.reason, "Active");
    assert_eq!(ready.message, "native RBAC in place in payments-checkout");
    assert_eq!(ready.last_transition_time, now());
    assert_eq!(ready.observed_generation, Some(1));

    let auth = condition(&s, AUTHORIZED);
    assert_eq!(auth.status, ConditionStatus::True);
    assert_eq!(auth.reason, "GrantedByManager");
    assert_eq!(auth.last_transition_time, now());
    assert_eq!(s.conditions.len(), 2);
}

#[test]
fn the_authorized_condition_names_how() {
    let (_, s) = World::new(Spec::manager()).partner(true).status();
    assert_eq!(condition(&s, AUTHORIZED).reason, "GrantedByPartner");
    let (_, s) = World::new(Spec::manager().origin()).origin(Some(APPROVED)).status();
    assert_eq!(condition(&s, AUTHORIZED).reason, "ApprovedRequest");
}

#[test]
fn an_unchanged_status_compares_equal_later() {
    let d = World::new(Spec::manager()).decide();
    let first = binding_status(&d, None, Some(1), now());
    let second = binding_status(&d, Some(&first), Some(1), now() + mins(10));
    assert_eq!(second, first);
}

#[test]
fn a_reconcile_loop_on_an_unchanged_world_writes_nothing() {
    for world in [
        World::new(Spec::manager()),
        World::new(Spec::project("reader")).quorums(1, 2),
        World::new(Spec::project("nope")),
        World::new(Spec::manager().revoked()),
    ] {
        let (_, first) = world.status();
        let later = world.previous(first.clone()).at(now() + mins(30));
        let (_, second) = later.status();
        assert_eq!(second, first);
    }
}

#[test]
fn activated_at_is_set_once_and_kept() {
    let mut w = World::new(Spec::manager());
    let (_, first) = w.status();
    assert_eq!(first.activated_at, Some(now()));
    w.previous = Some(first);
    w.now = now() + hours(1);
    let (_, second) = w.status();
    assert_eq!(second.activated_at, Some(now()));
    // Kept when it expires, too.
    w.previous = Some(second);
    w.now = created() + hours(4);
    let (d, third) = w.status();
    assert_eq!(d.phase, BindingPhase::Expired);
    assert_eq!(third.activated_at, Some(now()));
    assert_eq!(third.finished_at, Some(created() + hours(4)));
}

#[test]
fn activated_at_is_not_set_while_pending() {
    let (_, s) = World::new(Spec::manager()).quorums(2, 2).status();
    assert_eq!(s.activated_at, None);
}

#[test]
fn namespaces_are_sorted_and_deduplicated() {
    let grant = |ns: &str| cluster_grant(ns, "view");
    let d = BindingDecision {
        phase: BindingPhase::Active,
        role: Some("checkout/reader".into()),
        authorization: Some(Authorization::Partner),
        refusal: None,
        expires_at: Some(created() + hours(4)),
        finished_at: None,
        revoked: None,
        owners: Default::default(),
        grants: vec![grant("b"), grant("a"), grant("b"), grant("c"), grant("a")],
        wake_at: Some(created() + hours(4)),
        delete_record: false,
        ratification: None,
    };
    let s = binding_status(&d, None, None, now());
    assert_eq!(s.namespaces, strings(&["a", "b", "c"]));
    assert_eq!(condition(&s, READY).message, "native RBAC in place in a, b, c");

    // Through the policy.
    let mut w = World::new(Spec::project("reader"));
    w.proj().namespaces = strings(&["payments-z", "payments-a", "payments-z"]);
    let (_, s) = w.status();
    assert_eq!(s.namespaces, strings(&["payments-a", "payments-z"]));
}

#[test]
fn a_refused_binding_reports_why() {
    let (d, s) = World::new(Spec::manager()).quorums(2, 2).status();
    let refusal = d.refusal.clone().unwrap();
    assert_eq!(s.phase, Some(BindingPhase::Pending));
    assert!(s.namespaces.is_empty());
    let ready = condition(&s, READY);
    assert_eq!(ready.status, ConditionStatus::False);
    assert_eq!(ready.reason, "NotAuthorized");
    assert_eq!(ready.message, refusal.message());
    let auth = condition(&s, AUTHORIZED);
    assert_eq!(auth.status, ConditionStatus::False);
    assert_eq!(auth.reason, "NotAuthorized");
    assert_eq!(auth.message, refusal.message());

    for (world, reason) in [
        (
            World::new(Spec::manager().granted_by(SUBJECT))
                .partner(true)
                .restrict(true),
            "PartnerSelfAssignmentRestricted",
        ),
        (
            World::new(Spec::manager().origin()).origin(None),
            "OriginRequestNotApproved",
        ),
    ] {
        let (_, s) = world.status();
        assert_eq!(condition(&s, READY).reason, reason);
        assert_eq!(condition(&s, AUTHORIZED).status, ConditionStatus::False);
        assert_eq!(condition(&s, AUTHORIZED).reason, reason);
    }
}

#[test]
fn the_authorized_condition_is_false_only_for_authorisation_refusals() {
    // Authorised, but the project is missing: Authorized True, Ready False.
    let mut w = World::new(Spec::project("reader"));
    w.project = None;
    let (_, s) = w.status();
    assert_eq!(condition(&s, AUTHORIZED).status, ConditionStatus::True);
    assert_eq!(condition(&s, READY).status, ConditionStatus::False);
    assert_eq!(condition(&s, READY).reason, "ProjectNotFound");

    // Not yet judged (no workspace, bad spec): no Authorized condition at all.
    let mut w = World::new(Spec::manager());
    w.workspace = None;
    let (_, s) = w.status();
    assert!(find_condition(&s.conditions, AUTHORIZED).is_none(), "{s:#?}");
    assert_eq!(condition(&s, READY).reason, "WorkspaceNotFound");

    let (_, s) = World::new(Spec::manager().no_expiry()).status();
    assert!(find_condition(&s.conditions, AUTHORIZED).is_none(), "{s:#?}");
    assert_eq!(condition(&s, READY).reason, "InvalidSpec");

    let (_, s) = World::new(Spec::project("oncall")).status();
    assert_eq!(condition(&s, AUTHORIZED).status, ConditionStatus::True);
    assert_eq!(condition(&s, READY).reason, "UnknownRole");
}

#[test]
fn becoming_authorised_moves_the_transition_times() {
    let t0 = now();
    let t1 = now() + mins(20);
    let mut w = World::new(Spec::manager()).quorums(2, 2);
    let (_, pending) = w.status();
    assert_eq!(condition(&pending, AUTHORIZED).last_transition_time, t0);
    assert_eq!(condition(&pending, READY).last_transition_time, t0);

    w.ws().policy = policy(1, 1);
    let (d, active) = w.previous(pending).at(t1).status();
    assert_active(&d, Authorization::Manager);
    assert_eq!(condition(&active, AUTHORIZED).status, ConditionStatus::True);
    assert_eq!(condition(&active, AUTHORIZED).last_transition_time, t1);
    assert_eq!(condition(&active, READY).status, ConditionStatus::True);
    assert_eq!(condition(&active, READY).last_transition_time, t1);
    assert_eq!(active.activated_at, Some(t1));
}

#[test]
fn a_new_reason_with_the_same_status_keeps_the_transition_time() {
    // metav1 semantics: lastTransitionTime moves only when the status flips.
    let t0 = now();
    let mut w = World::new(Spec::project("reader")).quorums(2, 2);
    let (_, first) = w.status();
    assert_eq!(condition(&first, READY).reason, "NotAuthorized");
    w.ws().policy = policy(2, 1);
    w.project = None;
    let (_, second) = w.previous(first).at(t0 + hours(1)).status();
    let ready = condition(&second, READY);
    assert_eq!(ready.reason, "ProjectNotFound");
    assert_eq!(ready.status, ConditionStatus::False);
    assert_eq!(ready.last_transition_time, t0);
    assert_eq!(condition(&second, AUTHORIZED).last_transition_time, t0 + hours(1));
}

#[test]
fn finished_bindings_report_why_and_hold_no_namespaces() {
    let mut w = World::new(Spec::project("reader"));
    let (_, active) = w.status();
    assert_eq!(active.namespaces, strings(&[TENANT_NS]));
    w.previous = Some(active);

    w.now = created() + hours(6);
    let (_, expired) = w.status();
    assert_eq!(expired.phase, Some(BindingPhase::Expired));
    assert!(expired.namespaces.is_empty());
    assert_eq!(expired.finished_at, Some(created() + hours(4)));
    let ready = condition(&expired, READY);
    assert_eq!(
        (ready.status, ready.reason.as_str()),
        (ConditionStatus::False, "Expired")
    );
    assert_eq!(ready.last_transition_time, created() + hours(6));
    // The authorisation is kept for the record.
    assert_eq!(condition(&expired, AUTHORIZED).status, ConditionStatus::True);
    assert_eq!(condition(&expired, AUTHORIZED).last_transition_time, now());

    let mut w = World::new(Spec::project("reader"));
    let (_, active) = w.status();
    w.previous = Some(active);
    w.spec.revocation = Some(Revocation {
        by: "bob".into(),
        reason: "compromised".into(),
    });
    w.now = now() + mins(5);
    let (_, revoked) = w.status();
    assert_eq!(revoked.phase, Some(BindingPhase::Revoked));
    assert!(revoked.namespaces.is_empty());
    assert_eq!(revoked.finished_at, Some(now() + mins(5)));
    let ready = condition(&revoked, READY);
    assert_eq!(
        (ready.status, ready.reason.as_str()),
        (ConditionStatus::False, "Revoked")
    );
}

#[test]
fn a_pending_decision_without_a_refusal_waits() {
    let d = BindingDecision {
        phase: BindingPhase::Pending,
        role: Some("manager".into()),
        authorization: Some(Authorization::Manager),
        refusal: None,
        expires_at: None,
        finished_at: None,
        revoked: None,
        owners: Default::default(),
        grants: vec![],
        wake_at: None,
        delete_record: false,
        ratification: None,
    };
    let s = binding_status(&d, None, Some(3), now());
    let ready = condition(&s, READY);
    assert_eq!(
        (ready.status, ready.reason.as_str()),
        (ConditionStatus::False, "Pending")
    );
    assert_eq!(ready.observed_generation, Some(3));
    assert_eq!(s.observed_generation, Some(3));
}

#[test]
fn a_status_from_an_older_binding_is_overwritten_not_merged() {
    // Stale fields (namespaces, finished_at, expires_at) follow the decision.
    let previous = RoleBindingStatus {
        phase: Some(BindingPhase::Active),
        namespaces: strings(&["stale"]),
        finished_at: Some(created()),
        expires_at: Some(created() + hours(99)),
        ..RoleBindingStatus::default()
    };
    let d = World::new(Spec::manager()).quorums(2, 2).decide();
    let s = binding_status(&d, Some(&previous), Some(2), now());
    assert!(s.namespaces.is_empty());
    assert_eq!(s.finished_at, None);
    assert_eq!(s.expires_at, Some(created() + hours(4)));
    assert_eq!(s.observed_generation, Some(2));
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum RoleKind {
    Manager,
    Member,
    Project,
}

impl RoleKind {
    fn spec(self) -> Spec {
        match self {
            RoleKind::Manager => Spec::manager(),
            RoleKind::Member => Spec::member(),
            RoleKind::Project => Spec::project("admin"),
        }
    }
}

/// (spec.originRequest set, what was found)
const ORIGINS: [(bool, Option<OriginFacts>); 8] = [
    (false, None),
    (false, Some(APPROVED)),
    (true, None),
    (true, Some(APPROVED)),
    (true, Some(NOT_APPROVED)),
    (true, Some(OTHER_UID)),
    (true, Some(NEITHER)),
    (true, Some(UNDECIDED)),
];

#[test]
fn property_grants_only_when_authorised() {
    let mut cases = 0;
    let mut granted = 0;
    for partner in [false, true] {
        for manager in [false, true] {
            for ws_quorum in [1, 2] {
                for project_quorum in [1, 2] {
                    for kind in [RoleKind::Manager, RoleKind::Member, RoleKind::Project] {
                        for (claimed, origin) in ORIGINS {
                            for restrict in [false, true] {
                                for self_assigned in [false, true] {
                                    cases += 1;
                                    let mut spec =
                                        kind.spec().granted_by(if self_assigned { SUBJECT } else { GRANTER });
                                    if claimed {
                                        spec = spec.origin();
                                    }
                                    let world = World::new(spec)
                                        .quorums(ws_quorum, project_quorum)
                                        .partner(partner)
                                        .manager(manager)
                                        .restrict(restrict)
                                        .origin(origin);
                                    let (d, s) = world.status();
                                    let case = format!(
                                        "partner={partner} manager={manager} quorums={ws_quorum}/{project_quorum} \
                                         kind={kind:?} claimed={claimed} origin={origin:?} restrict={restrict} \
                                         self={self_assigned}: {d:#?}"
                                    );

                                    let origin_ok = origin == Some(APPROVED);
                                    let quorum = if kind == RoleKind::Project {
                                        project_quorum
                                    } else {
                                        ws_quorum
                                    };
                                    let restricted_self = restrict && self_assigned && kind == RoleKind::Manager;
                                    let manager_ok = manager && quorum == 1;
                                    let partner_ok = partner && !restricted_self;

                                    // The invariant (DESIGN §2, 6): grants only if authorised.
                                    let may = if claimed { origin_ok } else { partner_ok || manager_ok };
                                    if !d.grants.is_empty() {
                                        assert!(may, "granted without authority: {case}");
                                    }
                                    if claimed && !origin_ok {
                                        assert!(d.grants.is_empty(), "unapproved origin granted: {case}");
                                    }

                                    // The exact model: a partner's grant is judged as a
                                    // partner's (a restricted self-assignment is refused
                                    // even if the partner is also a manager).
                                    let exact = if claimed {
                                        origin_ok
                                    } else if partner {
                                        partner_ok
                                    } else {
                                        manager_ok
                                    };
                                    assert_eq!(!d.grants.is_empty(), exact, "{case}");
                                    assert_eq!(d.phase == BindingPhase::Active, exact, "{case}");
                                    assert_eq!(d.authorization.is_some(), exact, "{case}");
                                    if exact {
                                        granted += 1;
                                        assert_eq!(d.refusal, None, "{case}");
                                        assert_eq!(condition(&s, READY).status, ConditionStatus::True, "{case}");
                                        assert_eq!(condition(&s, AUTHORIZED).status, ConditionStatus::True, "{case}");
                                        assert_eq!(d.wake_at, d.expires_at, "{case}");
                                    } else if claimed && origin == Some(UNDECIDED) {
                                        // A moment's wait for the approval, not a refusal.
                                        assert_eq!(d.refusal, Some(Refusal::OriginRequestPending), "{case}");
                                        assert_eq!(condition(&s, READY).status, ConditionStatus::False, "{case}");
                                    } else {
                                        let r = d.refusal.as_ref().expect("a refusal says why");
                                        assert!(r.is_authorization(), "{case}");
                                        assert_eq!(condition(&s, READY).status, ConditionStatus::False, "{case}");
                                        assert_eq!(condition(&s, AUTHORIZED).status, ConditionStatus::False, "{case}");
                                        assert_eq!(condition(&s, AUTHORIZED).reason, r.reason(), "{case}");
                                    }
                                    // Never anything when revoked or expired, whoever granted it.
                                    let revoked = World::new(kind.spec().revoked())
                                        .quorums(ws_quorum, project_quorum)
                                        .partner(partner)
                                        .manager(manager)
                                        .restrict(restrict)
                                        .origin(origin)
                                        .decide();
                                    assert!(revoked.grants.is_empty(), "{case}");
                                    let expired = World::new(kind.spec().granted_by(world.spec.granted_by.as_str()))
                                        .quorums(ws_quorum, project_quorum)
                                        .partner(partner)
                                        .manager(manager)
                                        .restrict(restrict)
                                        .origin(origin)
                                        .at(created() + hours(4))
                                        .decide();
                                    assert!(expired.grants.is_empty(), "{case}");
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(cases, 2 * 2 * 2 * 2 * 3 * ORIGINS.len() * 2 * 2);
    assert!(
        granted > 0 && granted < cases,
        "both outcomes are exercised ({granted}/{cases})"
    );
}

#[test]
fn property_the_latch_is_the_only_other_way_in() {
    // Previous statuses: none, or an Authorized condition of every kind.
    let mut previous: Vec<Option<RoleBindingStatus>> = vec![None];
    for status in [ConditionStatus::True, ConditionStatus::False, ConditionStatus::Unknown] {
        for reason in [
            "ApprovedRequest",
            "GrantedByPartner",
            "GrantedByManager",
            "NotAuthorized",
            "PartnerSelfAssignmentRestricted",
            "OriginRequestNotApproved",
            "",
        ] {
            previous.push(Some(with_authorized(status, reason)));
        }
    }
    for prev in previous {
        let latched = prev.as_ref().is_some_and(|p| {
            let c = &p.conditions[0];
            c.status == ConditionStatus::True
                && ["ApprovedRequest", "GrantedByPartner", "GrantedByManager"].contains(&c.reason.as_str())
        });
        for partner in [false, true] {
            for manager in [false, true] {
                for (claimed, origin) in ORIGINS {
                    for kind in [RoleKind::Manager, RoleKind::Project] {
                        let mut spec = kind.spec();
                        if claimed {
                            spec = spec.origin();
                        }
                        let mut world = World::new(spec)
                            .quorums(2, 2)
                            .partner(partner)
                            .manager(manager)
                            .origin(origin);
                        world.previous = prev.clone();
                        let d = world.decide();
                        // The latch holds, but a request-made one whose
                        // request records another decision (SECURITY F21).
                        let latch_holds = latched
                            && !(prev
                                .as_ref()
                                .is_some_and(|p| p.conditions[0].reason == "ApprovedRequest")
                                && origin == Some(NOT_APPROVED));
                        let may = latch_holds || if claimed { origin == Some(APPROVED) } else { partner };
                        assert_eq!(
                            !d.grants.is_empty(),
                            may,
                            "prev={prev:?} partner={partner} manager={manager} claimed={claimed} origin={origin:?} kind={kind:?}: {d:#?}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn property_no_grant_outlives_its_expiry_or_the_cap() {
    let specs = [
        Spec::manager().duration("30m"),
        Spec::manager().duration("4h"),
        Spec::project("reader").duration("8h"),
        Spec::project("reader").duration("24h"),
        Spec::member().expires_at(created() + hours(2)),
        Spec::member().expires_at(created() + hours(100)),
        Spec::manager().expires_at(created() - hours(1)),
    ];
    for spec in specs {
        for cap_h in [1, 8, 24] {
            // From before creation (clock skew) to well past every expiry.
            for offset in (-60..=26 * 60).step_by(13) {
                let mut w = World::new(spec.clone()).partner(true).at(created() + mins(offset));
                w.ws().max_duration = hours(cap_h);
                let d = w.decide();
                let expiry = d.expires_at.expect("every spec here has an expiry");
                assert!(expiry <= created() + hours(cap_h), "{d:#?}");
                if w.now < expiry {
                    assert_active(&d, Authorization::Partner);
                    assert_eq!(d.wake_at, Some(expiry), "a timer at the expiry instant");
                } else {
                    assert_finished(&d, BindingPhase::Expired, expiry);
                    assert_eq!(d.wake_at, Some(expiry + retention()));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Former suspected bugs and open questions, now settled
// ---------------------------------------------------------------------------

#[test]
fn raising_max_duration_does_not_extend_a_published_expiry() {
    // Asked for 24h while the workspace capped at 8h: published created+8h.
    let mut w = World::new(Spec::manager().duration("24h"));
    let (_, first) = w.status();
    assert_eq!(first.expires_at, Some(created() + hours(8)));
    // The operator is down at created+8h; meanwhile the workspace raises its cap.
    w.previous = Some(first);
    w.ws().max_duration = hours(24);
    w.now = created() + hours(9);
    let d = w.decide();
    assert_eq!(d.expires_at, Some(created() + hours(8)), "{d:#?}");
    assert_finished(&d, BindingPhase::Expired, created() + hours(8));
}

#[test]
fn an_expired_record_stays_expired_when_revoked_later() {
    let expired_at = created() + hours(4);
    let d = World::new(Spec::manager().revoked())
        .previous(in_phase(BindingPhase::Expired, Some(expired_at)))
        .at(created() + hours(5))
        .decide();
    assert_finished(&d, BindingPhase::Expired, expired_at);
}

#[test]
fn partner_cannot_grant_others_directly_when_break_glass_is_disabled() {
    let mut w = World::new(Spec::project("admin"))
        .quorums(2, 2)
        .partner(true)
        .manager(false);
    w.ws().policy.partner_break_glass = false;
    let d = w.decide();
    assert_pending(&d, "NotAuthorized");
    // Self-assignment stays a partner's own right.
    let mut w = World::new(Spec::member().granted_by(SUBJECT))
        .quorums(2, 2)
        .partner(true)
        .manager(false);
    w.ws().policy.partner_break_glass = false;
    assert_active(&w.decide(), Authorization::Partner);
    // Workspace roles for others too (setting up the managers).
    let mut w = World::new(Spec::manager()).quorums(2, 2).partner(true).manager(false);
    w.ws().policy.partner_break_glass = false;
    assert_active(&w.decide(), Authorization::Partner);
}

#[test]
fn a_workspace_role_waits_for_the_workspace_roles_to_exist() {
    let mut w = World::new(Spec::manager()).partner(true);
    let world_facts = w.facts();
    let mut ws = world_facts.workspace.clone().unwrap();
    ws.ready = false;
    let facts = BindingFacts {
        workspace: Some(ws),
        ..world_facts
    };
    let d = decide_binding(&facts);
    assert_eq!(d.phase, BindingPhase::Pending);
    assert_eq!(d.refusal, Some(Refusal::WorkspaceNotReady));
    assert!(d.refusal.as_ref().unwrap().is_transient());
    assert!(d.grants.is_empty());
    let _ = &mut w;
}

/// SECURITY F10: without the admission policies, nothing new is authorised;
/// what was authorised stays, and still expires.
#[test]
fn nothing_new_is_authorised_while_the_admission_policies_are_untrusted() {
    let mut w = World::new(Spec::project("admin")).partner(true);
    w.stamps_trusted = false;
    let d = w.decide();
    assert_eq!(d.phase, BindingPhase::Pending);
    assert_eq!(d.refusal, Some(Refusal::AdmissionPoliciesUntrusted));
    w.stamps_trusted = true;
    let (d, s) = w.status();
    assert_eq!(d.phase, BindingPhase::Active);
    let mut w = w.previous(s);
    w.stamps_trusted = false;
    assert_eq!(w.decide().phase, BindingPhase::Active, "an authorised grant stays");
}

/// SECURITY F8: a binding authorised under one workspace (or project) uid
/// ends for good when that owner is gone or replaced.
#[test]
fn a_binding_ends_for_good_when_its_owner_is_gone_or_replaced() {
    let w = World::new(Spec::project("admin")).partner(true);
    let (d, s) = w.status();
    assert_eq!(d.phase, BindingPhase::Active);
    assert_eq!(s.workspace_uid.as_deref(), Some("ws-uid-1"));
    let mut gone = World::new(Spec::project("admin")).partner(true).previous(s.clone());
    gone.workspace = None;
    let d = gone.decide();
    assert_eq!(d.phase, BindingPhase::Revoked);
    assert!(matches!(&d.revoked, Some(Revoked::OwnerGone(m)) if m.contains("workspace")));
    assert!(d.grants.is_empty());
    let mut replaced = World::new(Spec::project("admin")).partner(true).previous(s.clone());
    replaced.ws().uid = "ws-uid-2".into();
    assert_eq!(replaced.decide().phase, BindingPhase::Revoked);
}

/// SECURITY F11: a partner restricted to member cannot make a group they
/// are in (or may be in) manager.
#[test]
fn self_assignment_covers_the_partners_groups() {
    let group = || {
        let mut spec = Spec::manager();
        spec.0.subject = crate::api::Subject::group("platform");
        spec
    };
    let restricted = |groups: Option<Vec<String>>| {
        let mut w = World::new(group()).manager(false).partner(true);
        w.ws().restrict = true;
        w.granted_by_groups = groups;
        w.decide().refusal
    };
    assert_eq!(
        restricted(Some(vec!["platform".into()])),
        Some(Refusal::PartnerSelfAssignmentRestricted)
    );
    assert_eq!(
        restricted(None),
        Some(Refusal::PartnerSelfAssignmentRestricted),
        "groups unknown"
    );
    assert_eq!(restricted(Some(vec!["other".into()])), None);
}

/// SECURITY F13: a project role grants the ClusterRole it was approved (or
/// first granted) for, whatever the role map says later; one the
/// configuration no longer allows grants nothing.
#[test]
fn a_grant_keeps_the_cluster_role_it_was_approved_for() {
    let mut w = World::new(Spec::project("reader"));
    w.pinned = Some("foureyes-view".into());
    w.proj().role_map.insert("reader".into(), "foureyes-edit".into());
    let (d, s) = w.status();
    assert_eq!(d.grants, vec![cluster_grant(TENANT_NS, "foureyes-view")]);
    assert_eq!(s.cluster_role.as_deref(), Some("foureyes-view"));
    let mut w = World::new(Spec::project("reader"));
    w.pinned = Some("cluster-admin".into());
    assert!(matches!(w.decide().refusal, Some(Refusal::RoleNotAllowed { .. })));
    // Without a pin, the role map decides, and the status pins it.
    let (_, s) = World::new(Spec::project("reader")).status();
    assert!(s.cluster_role.is_some());
}

/// SECURITY F21: a binding authorised on the operator's own approval loses
/// it if the request's record ends up otherwise decided (a Deny that won the
/// race with a failed status write); a request deleted later takes nothing.
#[test]
fn an_approval_the_request_does_not_record_does_not_stay_latched() {
    let mut w = World::new(Spec::project("admin").origin());
    w.origin = Some(APPROVED);
    let (d, s) = w.status();
    assert_active(&d, Authorization::ApprovedRequest);
    let mut w = w.previous(s.clone());
    w.origin = Some(OriginFacts {
        uid_matches: true,
        approved: false,
        undecided: false,
    });
    let d = w.decide();
    assert_eq!(d.refusal, Some(Refusal::OriginRequestNotApproved));
    assert!(d.grants.is_empty());
    // The request deleted: the grant stays.
    let mut w = World::new(Spec::project("admin").origin()).previous(s);
    w.origin = None;
    assert_active(&w.decide(), Authorization::ApprovedRequest);
}

/// A workspace that exists but does not resolve for a moment (its namespace
/// relabelled, say) takes its bindings' access away until it resolves again,
/// without ending them (the review of the F8 fix).
#[test]
fn a_workspace_that_does_not_resolve_for_a_moment_ends_nothing() {
    let (_, s) = World::new(Spec::project("admin")).partner(true).status();
    let mut w = World::new(Spec::project("admin")).partner(true).previous(s.clone());
    w.workspace = None;
    w.workspace_alive = Some(true);
    let d = w.decide();
    assert_eq!(d.phase, BindingPhase::Pending);
    assert!(d.grants.is_empty());
    assert_eq!(d.refusal, Some(Refusal::WorkspaceNotFound));
    let back = World::new(Spec::project("admin")).partner(true).previous(s);
    assert_eq!(back.decide().phase, BindingPhase::Active);
}

/// A binding created together with its workspace, before the workspace
/// claimed its namespace, waits for it (transient: nothing written, no
/// Warning) instead of being refused; once in effect, a workspace that
/// stops resolving still refuses it as before.
#[test]
fn a_new_binding_waits_for_a_workspace_still_claiming_its_namespace() {
    let mut w = World::new(Spec::member()).partner(true);
    w.workspace = None;
    w.workspace_alive = Some(true);
    let d = w.decide();
    assert_eq!(d.phase, BindingPhase::Pending);
    assert!(d.grants.is_empty());
    assert_eq!(d.refusal, Some(Refusal::WorkspaceNotReady));
    assert!(d.refusal.as_ref().is_some_and(Refusal::is_transient));
    // No workspace names the namespace at all: refused.
    w.workspace_alive = Some(false);
    assert_eq!(w.decide().refusal, Some(Refusal::WorkspaceNotFound));
}

fn lockout_hit() -> crate::policy::lockout::Hit {
    crate::policy::lockout::Hit {
        lockout: "dave-compromised".into(),
        by: "partner".into(),
        reason: "INC-9 laptop stolen".into(),
        since: None,
    }
}

/// DESIGN §2, invariant 11: an active grant of a locked-out subject ends
/// `Revoked`, naming the lockout, and stays so once the lockout is gone.
#[test]
fn a_locked_out_subject_loses_an_active_binding_for_good() {
    let mut w = World::new(Spec::member()).partner(true);
    let (active, status) = w.status();
    assert_active(&active, Authorization::Partner);
    w = w.previous(status);
    w.lockout = Some(lockout_hit());
    let (d, locked) = w.status();
    assert_eq!(d.phase, BindingPhase::Revoked);
    assert!(d.grants.is_empty());
    assert!(matches!(&d.revoked, Some(Revoked::LockedOut(h)) if h.lockout == "dave-compromised"));
    assert_eq!(locked.lockout.as_deref(), Some("dave-compromised"));
    let ready = condition(&locked, READY);
    assert_eq!(ready.reason, "LockedOut");
    assert!(ready.message.contains("dave-compromised"), "{}", ready.message);
    let happened = transitions(&w.spec, None, w.previous.as_ref(), &d);
    assert_eq!(happened.len(), 1);
    assert!(matches!(&happened[0].kind, Kind::LockedOut { lockout, .. } if lockout == "dave-compromised"));
    assert_eq!(happened[0].actor, Actor::User("partner".into()));

    // The lockout is lifted: nothing comes back, and nothing is written again.
    w.previous = Some(locked.clone());
    w.lockout = None;
    let (after, again) = w.status();
    assert_eq!(after.phase, BindingPhase::Revoked);
    assert!(after.grants.is_empty());
    assert_eq!(again, locked, "an unchanged record is not written again");
    assert!(transitions(&w.spec, None, Some(&locked), &after).is_empty());
}

/// A binding not in effect yet never takes effect after a lockout either;
/// an expired one stays expired; a person's revocation keeps its author.
#[test]
fn a_lockout_ends_pending_bindings_and_leaves_finished_ones_as_they_ended() {
    let mut pending = World::new(Spec::project("admin")).quorums(2, 2);
    assert_pending(&pending.decide(), "NotAuthorized");
    pending.lockout = Some(lockout_hit());
    assert_eq!(pending.decide().phase, BindingPhase::Revoked);

    let mut expired = World::new(Spec::member()).partner(true).at(created() + hours(5));
    expired.lockout = Some(lockout_hit());
    assert_eq!(expired.decide().phase, BindingPhase::Expired);

    let mut revoked = World::new(Spec::member().revoked()).partner(true);
    revoked.lockout = Some(lockout_hit());
    let d = revoked.decide();
    assert_eq!(d.phase, BindingPhase::Revoked);
    assert!(matches!(d.revoked, Some(Revoked::By { .. })));

    // Revoked earlier for another reason: a later lockout does not claim it.
    let mut gone = World::new(Spec::member()).partner(true);
    let (_, status) = gone.status();
    gone = gone.previous(RoleBindingStatus {
        phase: Some(BindingPhase::Revoked),
        finished_at: Some(now()),
        ..status
    });
    gone.lockout = Some(lockout_hit());
    let (d, s) = gone.status();
    assert!(matches!(d.revoked, Some(Revoked::OwnerGone(_))));
    assert_eq!(s.lockout, None);
}

#[test]
fn an_expiry_reminder_is_due_lead_time_before_the_end_of_a_longer_grant() {
    let active = |expires_at: DateTime<Utc>| BindingDecision {
        phase: BindingPhase::Active,
        role: Some(MANAGER_ROLE.into()),
        authorization: Some(Authorization::Partner),
        refusal: None,
        expires_at: Some(expires_at),
        finished_at: None,
        revoked: None,
        owners: Default::default(),
        grants: vec![],
        wake_at: Some(expires_at),
        delete_record: false,
        ratification: None,
    };
    let since = created();
    let d = active(created() + hours(4));
    let lead = mins(15);
    assert_eq!(
        expiry_reminder_at(&d, Some(created()), lead, since),
        Some(created() + hours(4) - mins(15))
    );
    // A grant shorter than the lead time gets none.
    let short = active(created() + mins(10));
    assert_eq!(expiry_reminder_at(&short, Some(created()), lead, since), None);
    // Nor one not in force, nor one never activated.
    let mut expired = active(created() + hours(4));
    expired.phase = BindingPhase::Expired;
    assert_eq!(expiry_reminder_at(&expired, Some(created()), lead, since), None);
    assert_eq!(expiry_reminder_at(&d, None, lead, since), None);
    // Due before this process acted: another leader sent it, or nobody led.
    assert_eq!(
        expiry_reminder_at(&d, Some(created()), lead, created() + hours(4)),
        None
    );
    let t = expiring_soon(&Spec::manager().0, &d);
    assert_eq!(t.kind, Kind::ExpiringSoon { until: d.expires_at });
    assert_eq!(t.actor, Actor::Operator);
    assert_eq!(t.role, "manager");
}

/// DESIGN §7, procedure 7: a partner's direct project grant is break-glass;
/// its ratification starts when it first takes effect, and an objection
/// ends it at once, for good.
#[test]
fn a_partners_direct_project_grant_awaits_ratification_and_an_objection_revokes_it() {
    let w = World::new(Spec::project("admin"))
        .quorums(2, 2)
        .partner(true)
        .manager(false);
    let (d, s) = w.status();
    assert_eq!(d.phase, BindingPhase::Active);
    let r = s.ratification.clone().expect("ratification started");
    assert_eq!(r.state, crate::api::RatificationState::Awaiting);
    assert_eq!(r.deadline, now() + hours(24));
    assert!(d.wake_at.is_some_and(|w| w <= r.deadline));
    let ratified = find_condition(&s.conditions, "Ratified").unwrap();
    assert_eq!(
        (ratified.status, ratified.reason.as_str()),
        (ConditionStatus::False, "Awaiting")
    );

    // bob, a manager, objects: revoked now, with bob as the actor.
    let mut w = w.previous(s).at(now() + Duration::minutes(5));
    w.spec.ratifications = vec![crate::api::Ratification {
        user: "bob".into(),
        verdict: crate::api::Verdict::Object,
        comment: Some("no incident".into()),
        time: None,
    }];
    w.ratifiers = vec![crate::policy::quorum::Voter {
        manager: true,
        verified: true,
        ..Default::default()
    }];
    let (d, s) = w.status();
    assert_eq!(d.phase, BindingPhase::Revoked);
    assert!(d.grants.is_empty());
    let ts = transitions(&w.spec, None, w.previous.as_ref(), &d);
    let kinds: Vec<&str> = ts.iter().map(|t| t.kind.reason()).collect();
    assert_eq!(kinds, ["BreakGlassObjected", "Revoked"]);
    assert_eq!(ts[1].actor, crate::policy::transition::user("bob"));
    // Later passes keep it revoked, for the same reason, and write nothing new.
    let w = w.previous(s.clone()).at(now() + Duration::minutes(6));
    let (d, s2) = w.status();
    assert_eq!(d.phase, BindingPhase::Revoked);
    assert!(matches!(d.revoked, Some(Revoked::Ratification(_))));
    assert_eq!(s2, s);
}

#[test]
fn break_glass_through_a_request_awaits_ratification_and_others_do_not() {
    // The partner approved the request alone.
    let mut w = World::new(Spec::project("admin"))
        .quorums(2, 2)
        .origin(Some(APPROVED))
        .manager(false);
    w.spec.origin_request = Some(crate::api::OriginRequest {
        name: "r".into(),
        uid: "u".into(),
    });
    w.origin_break_glass = Some("pat".into());
    let (_, s) = w.status();
    assert_eq!(s.ratification.unwrap().break_glass_by, "pat");
    // Two managers approved it: nothing to ratify.
    w.origin_break_glass = None;
    assert!(w.status().1.ratification.is_none());
    // A partner adding a workspace role, or a manager granting alone where
    // one approval is enough, is no break-glass.
    let w = World::new(Spec::manager()).partner(true).manager(false);
    assert!(w.status().1.ratification.is_none());
    let w = World::new(Spec::project("admin"))
        .quorums(1, 1)
        .partner(true)
        .manager(true);
    assert!(w.status().1.ratification.is_none());
    // A grant in effect before ratification existed needs none.
    let w = World::new(Spec::project("admin"))
        .quorums(2, 2)
        .partner(true)
        .manager(false);
    let (_, mut s) = w.status();
    s.ratification = None;
    let (_, s) = w.previous(s).at(now() + hours(30)).status();
    assert!(s.ratification.is_none());
}

#[test]
fn an_unratified_grant_is_revoked_at_the_deadline_under_revoke() {
    let mut w = World::new(Spec::project("admin"))
        .quorums(2, 2)
        .partner(true)
        .manager(false);
    w.ws().policy.break_glass_ratification = crate::api::BreakGlassRatification {
        window: "1h".parse().unwrap(),
        on_unratified: crate::api::OnUnratified::Revoke,
    };
    let (d, s) = w.status();
    assert_eq!(d.wake_at, Some(now() + hours(1)));
    let w = w.previous(s).at(now() + hours(1));
    let (d, s) = w.status();
    assert_eq!(d.phase, BindingPhase::Revoked);
    assert_eq!(s.ratification.unwrap().state, crate::api::RatificationState::Unratified);
    let ts = transitions(&w.spec, None, w.previous.as_ref(), &d);
    let kinds: Vec<&str> = ts.iter().map(|t| t.kind.reason()).collect();
    assert_eq!(kinds, ["BreakGlassUnratified", "Revoked"]);
}

#[test]
fn a_finished_record_awaiting_ratification_outlives_its_retention() {
    let mut w = World::new(Spec::project("admin"))
        .quorums(2, 2)
        .partner(true)
        .manager(false);
    w.ws().policy.break_glass_ratification.window = "720h".parse().unwrap();
    let (_, s) = w.status();
    // Expired long ago, retention (168h) over, the window (720h) not.
    let w = w.previous(s).at(now() + hours(200));
    let (d, s) = w.status();
    assert_eq!(d.phase, BindingPhase::Expired);
    assert!(!d.delete_record);
    assert_eq!(d.wake_at, Some(now() + hours(720)));
    // Unratified at the end of the window: then it goes.
    let (d, _) = w.previous(s).at(now() + hours(720)).status();
    assert!(d.delete_record);
}

/// An objection made before the grant took effect ends it before it does,
/// and a status that says so keeps it ended.
#[test]
fn an_objection_before_the_grant_takes_effect_ends_it_before_it_does() {
    let mut w = World::new(Spec::project("admin"))
        .quorums(2, 2)
        .partner(true)
        .manager(false);
    w.proj().namespaces.clear();
    let (d, s) = w.status();
    assert_eq!(d.refusal, Some(Refusal::ProjectHasNoNamespaces("checkout".into())));
    assert_eq!(
        s.ratification.as_ref().unwrap().state,
        crate::api::RatificationState::Awaiting
    );
    let mut w = w.previous(s).at(now() + Duration::minutes(1));
    w.spec.ratifications = vec![crate::api::Ratification {
        user: "bob".into(),
        verdict: crate::api::Verdict::Object,
        comment: None,
        time: None,
    }];
    w.ratifiers = vec![crate::policy::quorum::Voter {
        manager: true,
        verified: true,
        ..Default::default()
    }];
    w.proj().namespaces = strings(&[TENANT_NS]);
    let (d, _) = w.status();
    assert_eq!(d.phase, BindingPhase::Revoked);
    assert!(d.grants.is_empty());

    // Objected at its very first authorisation: never in effect.
    let mut w = World::new(Spec::project("admin"))
        .quorums(2, 2)
        .partner(true)
        .manager(false);
    w.spec.ratifications = vec![crate::api::Ratification {
        user: "bob".into(),
        verdict: crate::api::Verdict::Object,
        comment: None,
        time: None,
    }];
    w.ratifiers = vec![crate::policy::quorum::Voter {
        manager: true,
        verified: true,
        ..Default::default()
    }];
    let (d, s) = w.status();
    assert_eq!(d.phase, BindingPhase::Revoked);
    assert!(d.grants.is_empty());
    assert!(s.activated_at.is_none());
    assert!(matches!(d.revoked, Some(Revoked::Ratification(_))));
}
