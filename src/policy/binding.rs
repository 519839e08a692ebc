//! The lifecycle of a foureyes `RoleBinding`: whether it is authorised
//! (DESIGN §2, invariant 6), when it expires, what native RBAC it should have
//! right now, and when to look at it again.

use crate::wire::{CREATED_BY_ANNOTATION, MANAGER_ROLE, MEMBER_ROLE};
use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::role::{Role, RoleError, RoleTarget, resolve_cluster_role};
use super::transition::{Actor, Kind, Persisted, Transition, user};
use crate::api::conditions::{Condition, ConditionStatus, READY, find_condition, set_condition};
use crate::api::{ApprovalPolicy, BindingPhase, RoleBindingSpec, RoleBindingStatus, SubjectKind, WorkspaceRole};
use crate::config::Config;

/// The condition saying whether a binding is authorised.
pub const AUTHORIZED: &str = "Authorized";

/// What is known about the binding's workspace.
#[derive(Clone, Debug)]
pub struct WorkspaceFacts<'a> {
    /// The workspace's name.
    pub name: &'a str,
    /// Its uid: a binding authorised under one workspace never acts under
    /// another of the same name.
    pub uid: &'a str,
    /// Its control namespace.
    pub namespace: &'a str,
    /// Its approval policy.
    pub policy: &'a ApprovalPolicy,
    /// Its cap on any grant.
    pub max_duration: Duration,
    /// Whether partners may add themselves only as members.
    pub restrict_partner_self_assignment: bool,
    /// Whether the workspace's control namespace and Roles are in place.
    pub ready: bool,
}

/// What is known about the binding's project (for project roles).
#[derive(Clone, Debug)]
pub struct ProjectFacts<'a> {
    /// The project's uid.
    pub uid: &'a str,
    /// The tenant namespaces the project holds.
    pub namespaces: &'a [String],
    /// The project's own role map.
    pub role_map: &'a BTreeMap<String, String>,
}

/// What is known about the request a binding claims to come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OriginFacts {
    /// The request exists with the uid the binding names.
    pub uid_matches: bool,
    /// The request was approved (phase `Approved` or `Granted`).
    pub approved: bool,
    /// The request is still undecided: the operator creates a request's
    /// binding before it records the approval, so this is a moment's wait,
    /// not a refusal.
    pub undecided: bool,
}

/// The snapshot a binding decision is taken on.
#[derive(Clone, Debug)]
pub struct BindingFacts<'a> {
    /// The binding's spec.
    pub spec: &'a RoleBindingSpec,
    /// When the binding was created (start of `duration`).
    pub created: DateTime<Utc>,
    /// The status as last written.
    pub previous: Option<&'a RoleBindingStatus>,
    /// The workspace, if it exists.
    pub workspace: Option<WorkspaceFacts<'a>>,
    /// The project, if the role is a project role and the project exists.
    pub project: Option<ProjectFacts<'a>>,
    /// The origin request, when `spec.originRequest` is set (`None` if not found).
    pub origin: Option<OriginFacts>,
    /// The ClusterRole a project role is fixed to: the binding's own, once
    /// in effect, or the one its request was approved for.
    pub pinned_cluster_role: Option<&'a str>,
    /// Whether `grantedBy` is a partner.
    pub granted_by_partner: bool,
    /// The groups the API server authenticated the creator with, when the
    /// creator is `grantedBy` (from the creator stamp); `None` when unknown.
    pub granted_by_groups: Option<Vec<String>>,
    /// Whether `grantedBy` holds an active manager binding in the workspace.
    pub granted_by_manager: bool,
    /// Whether the workspace the binding was authorised under still exists
    /// (by the uid its status records; without one, any workspace of this
    /// namespace), even if it does not resolve right now.
    pub workspace_alive: bool,
    /// Likewise for its project (project roles).
    pub project_alive: bool,
    /// Whether the admission policies that verify identities and stamp
    /// groups are in place unaltered: without them no new grant is
    /// authorised (what is authorised stays; expiry and revocation go on).
    pub stamps_trusted: bool,
    /// The lockout in force on the binding's subject, if any: an unfinished
    /// binding then ends `Revoked` for good (DESIGN §2, invariant 11).
    pub lockout: Option<&'a super::lockout::Hit>,
    /// The partner who approved the origin request alone (break-glass),
    /// per the request's status.
    pub origin_break_glass: Option<&'a str>,
    /// Who counted as approvers of the origin request (their verdict on its
    /// break-glass would be no second pair of eyes).
    pub origin_approvers: &'a [String],
    /// What is known about the author of each of `spec.ratifications`.
    pub ratifiers: &'a [super::quorum::Voter],
    /// Users locked out now: their verdicts do not count.
    pub locked_voters: &'a [String],
    /// The operator's configuration.
    pub config: &'a Config,
    /// The current time.
    pub now: DateTime<Utc>,
}

/// How a binding was authorised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authorization {
    /// Created by the operator from an approved request.
    ApprovedRequest,
    /// Created by a partner.
    Partner,
    /// Created by a manager where the workspace needs a single approval.
    Manager,
}

impl Authorization {
    /// The condition reason.
    pub fn reason(self) -> &'static str {
        match self {
            Authorization::ApprovedRequest => "ApprovedRequest",
            Authorization::Partner => "GrantedByPartner",
            Authorization::Manager => "GrantedByManager",
        }
    }
}

/// Why a binding is not in effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The spec is inconsistent (stored before the CRD's rules).
    InvalidSpec(String),
    /// The namespace belongs to no workspace.
    WorkspaceNotFound,
    /// The workspace's namespace and Roles are not in place yet.
    WorkspaceNotReady,
    /// The project does not exist in the workspace.
    ProjectNotFound(String),
    /// The project holds no tenant namespace yet.
    ProjectHasNoNamespaces(String),
    /// The project role is defined nowhere.
    UnknownRole(String),
    /// The project role maps to a ClusterRole outside the allow-list.
    RoleNotAllowed {
        /// The project role.
        role: String,
        /// The ClusterRole.
        cluster_role: String,
    },
    /// Nobody with the right to grant it created it.
    NotAuthorized(String),
    /// A partner tried to make themselves manager where that is restricted.
    PartnerSelfAssignmentRestricted,
    /// The request it comes from does not show its approval yet.
    OriginRequestPending,
    /// The admission policies are missing or altered: identities and group
    /// stamps cannot be trusted, so nothing new is authorised.
    AdmissionPoliciesUntrusted,
    /// The request it claims to come from is missing or not approved.
    OriginRequestNotApproved,
}

impl Refusal {
    /// The stable reason, used in conditions and Warning events.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::InvalidSpec(_) => "InvalidSpec",
            Refusal::WorkspaceNotFound => "WorkspaceNotFound",
            Refusal::WorkspaceNotReady => "WorkspaceNotReady",
            Refusal::ProjectNotFound(_) => "ProjectNotFound",
            Refusal::ProjectHasNoNamespaces(_) => "ProjectHasNoNamespaces",
            Refusal::UnknownRole(_) => "UnknownRole",
            Refusal::RoleNotAllowed { .. } => "RoleNotAllowed",
            Refusal::NotAuthorized(_) => "NotAuthorized",
            Refusal::PartnerSelfAssignmentRestricted => "PartnerSelfAssignmentRestricted",
            Refusal::OriginRequestNotApproved => "OriginRequestNotApproved",
            Refusal::OriginRequestPending => "OriginRequestPending",
            Refusal::AdmissionPoliciesUntrusted => "AdmissionPoliciesUntrusted",
        }
    }

    /// A message for people.
    pub fn message(&self) -> String {
        match self {
            Refusal::InvalidSpec(m) => format!("invalid spec: {m}"),
            Refusal::WorkspaceNotFound => "no workspace has this namespace as its control namespace".into(),
            Refusal::WorkspaceNotReady => "the workspace's namespace and Roles are not in place yet".into(),
            Refusal::ProjectNotFound(p) => format!("project {p} does not exist in this workspace"),
            Refusal::ProjectHasNoNamespaces(p) => format!("project {p} holds no tenant namespace yet"),
            Refusal::UnknownRole(r) => {
                format!(
                    "project role {r} is defined neither by the project's roleMap nor by the operator's configuration"
                )
            }
            Refusal::RoleNotAllowed { role, cluster_role } => {
                format!(
                    "project role {role} maps to ClusterRole {cluster_role}, which is not on the operator's allow-list"
                )
            }
            Refusal::NotAuthorized(m) => m.clone(),
            Refusal::PartnerSelfAssignmentRestricted => {
                "this workspace restricts partners to adding themselves as member, not manager".into()
            }
            Refusal::OriginRequestPending => "waiting for the request's approval to be recorded".into(),
            Refusal::AdmissionPoliciesUntrusted => {
                "the foureyes admission policies are missing or altered: no grant is authorised until they are restored"
                    .into()
            }
            Refusal::OriginRequestNotApproved => {
                "spec.originRequest names a request that does not exist, has another uid, or is not approved".into()
            }
        }
    }

    /// Whether the refusal only says "not yet" (the world is still being set
    /// up); such refusals get no Warning event.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Refusal::WorkspaceNotReady
                | Refusal::ProjectHasNoNamespaces(_)
                | Refusal::OriginRequestPending
                | Refusal::AdmissionPoliciesUntrusted
        )
    }

    /// Whether the refusal is about who granted it (rather than what).
    pub fn is_authorization(&self) -> bool {
        matches!(
            self,
            Refusal::NotAuthorized(_) | Refusal::PartnerSelfAssignmentRestricted | Refusal::OriginRequestNotApproved
        )
    }
}

impl From<RoleError> for Refusal {
    /// A project role that does not resolve is refused for that reason.
    fn from(e: RoleError) -> Self {
        match e {
            RoleError::Unknown(r) => Refusal::UnknownRole(r),
            RoleError::NotAllowed { role, cluster_role } => Refusal::RoleNotAllowed { role, cluster_role },
        }
    }
}

/// Why a binding was revoked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revoked {
    /// By a person, through `spec.revocation`.
    By {
        /// The user (verified at admission).
        user: String,
        /// Their reason.
        reason: String,
    },
    /// Its workspace or project was deleted (or replaced by another of the
    /// same name): the operator ended it for good.
    OwnerGone(String),
    /// Its subject is locked out: ended for good, whatever becomes of the
    /// lockout. (Once recorded, only the lockout's name is kept: `by` and
    /// `reason` may then be empty.)
    LockedOut(super::lockout::Hit),
    /// A break-glass grant a manager objected to, or that nobody ratified
    /// in time where the workspace revokes such grants.
    Ratification(super::ratification::RatificationRevoke),
}

impl Revoked {
    /// Who revoked it (`None`: the operator, on its own).
    pub fn actor(&self) -> Option<&str> {
        match self {
            Revoked::By { user, .. } => Some(user),
            Revoked::OwnerGone(_) => None,
            Revoked::LockedOut(hit) => (!hit.by.is_empty()).then_some(hit.by.as_str()),
            Revoked::Ratification(r) => r.actor(),
        }
    }

    /// Why.
    pub fn reason(&self) -> String {
        match self {
            Revoked::By { reason, .. } => reason.clone(),
            Revoked::OwnerGone(why) => why.clone(),
            Revoked::LockedOut(hit) => hit.reason.clone(),
            Revoked::Ratification(r) => r.reason(),
        }
    }
}

/// The uids of the workspace and project a binding belongs to, as its
/// status records them once it is authorised.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Owners {
    /// The workspace's uid.
    pub workspace: Option<String>,
    /// The project's uid (project roles, once the project was seen).
    pub project: Option<String>,
}

/// One native RoleBinding that should exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Where.
    pub namespace: String,
    /// To what.
    pub target: RoleTarget,
}

/// What should be true of a binding now.
#[derive(Clone, Debug, PartialEq)]
pub struct BindingDecision {
    /// The phase.
    pub phase: BindingPhase,
    /// The role in one word.
    pub role: Option<String>,
    /// How it was authorised, if it was.
    pub authorization: Option<Authorization>,
    /// Why it is not in effect, if it is not (and not finished).
    pub refusal: Option<Refusal>,
    /// The effective expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it finished (expired or revoked).
    pub finished_at: Option<DateTime<Utc>>,
    /// Who or what revoked it (phase `Revoked`).
    pub revoked: Option<Revoked>,
    /// The uids of the workspace and project it was authorised under, to
    /// record in the status.
    pub owners: Owners,
    /// The native RoleBindings that should exist now; empty unless `Active`.
    pub grants: Vec<Grant>,
    /// When to decide again (expiry, or end of retention).
    pub wake_at: Option<DateTime<Utc>>,
    /// The record's retention is over: delete the foureyes binding.
    pub delete_record: bool,
    /// The ratification of a break-glass grant, if it needs one.
    pub ratification: Option<crate::api::RatificationStatus>,
}

/// The effective expiry: the spec's (absolute, or creation + duration),
/// capped at creation + the workspace's `maxDuration`.
pub fn effective_expiry(
    spec: &RoleBindingSpec,
    created: DateTime<Utc>,
    cap: Option<Duration>,
) -> Option<DateTime<Utc>> {
    let asked = match (&spec.expires_at, &spec.duration) {
        (Some(at), _) => *at,
        (None, Some(d)) => created
            .checked_add_signed(d.to_chrono())
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
        (None, None) => return None,
    };
    Some(match cap.and_then(|c| created.checked_add_signed(c)) {
        Some(limit) if limit < asked => limit,
        _ => asked,
    })
}

fn was_authorized(previous: Option<&RoleBindingStatus>) -> Option<Authorization> {
    let cond = find_condition(&previous?.conditions, AUTHORIZED)?;
    if cond.status != ConditionStatus::True {
        return None;
    }
    [
        Authorization::ApprovedRequest,
        Authorization::Partner,
        Authorization::Manager,
    ]
    .into_iter()
    .find(|a| a.reason() == cond.reason)
}

/// DESIGN §2, invariant 6: a binding takes effect only if it was created by
/// the operator from an approved request, by a partner, or by a manager in a
/// workspace whose quorum for that kind of role is 1. A partner's direct
/// grant of a project role is break-glass: refused where the workspace sets
/// `partnerBreakGlass: false`; workspace roles a partner may always grant
/// (within `restrictPartnerSelfAssignment`). Once authorised, a
/// binding stays authorised (losing the granter's role later does not undo
/// their grant); an unauthorised one is evaluated again on every change.
pub fn authorize(facts: &BindingFacts<'_>, role: &Role, ws: &WorkspaceFacts<'_>) -> Result<Authorization, Refusal> {
    if let Some(a) = was_authorized(facts.previous) {
        // Latched, but for one case: a binding made from a request that the
        // request's own record now shows as decided otherwise (denied or
        // expired). That happens only when the operator authorised the
        // binding on its own approval and the request's status write then
        // failed while a Deny came in (SECURITY F21): the record wins.
        let denied_since = matches!(
            facts.origin,
            Some(OriginFacts {
                uid_matches: true,
                approved: false,
                undecided: false,
            })
        );
        if a == Authorization::ApprovedRequest && denied_since {
            return Err(Refusal::OriginRequestNotApproved);
        }
        return Ok(a);
    }
    if !facts.stamps_trusted {
        return Err(Refusal::AdmissionPoliciesUntrusted);
    }
    let spec = facts.spec;
    if spec.origin_request.is_some() {
        return match facts.origin {
            Some(OriginFacts {
                uid_matches: true,
                approved: true,
                ..
            }) => Ok(Authorization::ApprovedRequest),
            Some(OriginFacts {
                uid_matches: true,
                undecided: true,
                ..
            }) => Err(Refusal::OriginRequestPending),
            _ => Err(Refusal::OriginRequestNotApproved),
        };
    }
    if facts.granted_by_partner {
        // Self-assigned: to the partner by name, or to a group the partner is
        // in (or may be in: their groups are unknown when someone else wrote
        // the binding in their name).
        let self_assigned = match spec.subject.kind {
            SubjectKind::User => spec.subject.name == spec.granted_by,
            SubjectKind::Group => facts
                .granted_by_groups
                .as_ref()
                .is_none_or(|groups| groups.contains(&spec.subject.name)),
        };
        if self_assigned && ws.restrict_partner_self_assignment && *role == Role::Workspace(WorkspaceRole::Manager) {
            return Err(Refusal::PartnerSelfAssignmentRestricted);
        }
        // Partners always manage workspace roles (they set up the managers and
        // may add themselves); a project role granted directly by a partner is
        // break-glass, which the workspace may switch off.
        if role.is_workspace_role() || ws.policy.partner_break_glass {
            return Ok(Authorization::Partner);
        }
        if !facts.granted_by_manager {
            return Err(Refusal::NotAuthorized(format!(
                "workspace {} does not allow partner break-glass: a partner cannot grant project roles directly",
                ws.name
            )));
        }
    }
    let quorum = if role.is_workspace_role() {
        ws.policy.workspace_role_approvals
    } else {
        ws.policy.project_role_approvals
    };
    let kind = if role.is_workspace_role() {
        "workspace"
    } else {
        "project"
    };
    match (facts.granted_by_manager, quorum) {
        (true, q) if q <= 1 => Ok(Authorization::Manager),
        (true, q) => Err(Refusal::NotAuthorized(format!(
            "workspace {} needs {q} approvals for {kind} roles: a manager cannot grant one directly; file a RoleRequest",
            ws.name
        ))),
        (false, _) => Err(Refusal::NotAuthorized(format!(
            "{} is neither a partner nor a manager of workspace {}",
            spec.granted_by, ws.name
        ))),
    }
}

/// Whether the workspace or project the binding was authorised under is
/// gone (deleted, or replaced by another of the same name): then the binding
/// ends for good, and a re-created owner grants nothing old (DESIGN §2,
/// invariants 2 and 6). The message says which.
fn owner_gone(facts: &BindingFacts<'_>, recorded: &Owners) -> Option<String> {
    // Gone means deleted (or replaced by another of the same name), never
    // merely not resolving for a moment (a namespace relabelled, say): the
    // binding then waits, without access, and comes back with its owner.
    match &recorded.workspace {
        Some(uid) if !facts.workspace_alive => return Some(format!("its workspace (uid {uid}) was deleted")),
        // Authorised before the uid was recorded: its workspace is gone.
        None if !facts.workspace_alive && was_authorized(facts.previous).is_some() => {
            return Some("its workspace was deleted".to_owned());
        }
        _ => {}
    }
    let name = facts.spec.project.as_deref().unwrap_or_default();
    let was_active = facts.previous.and_then(|s| s.phase) == Some(BindingPhase::Active);
    match &recorded.project {
        Some(uid) if !facts.project_alive => Some(format!("its project {name} (uid {uid}) was deleted")),
        None if facts.spec.project.is_some() && !facts.project_alive && was_active => {
            Some(format!("its project {name} was deleted"))
        }
        _ => None,
    }
}

/// Whether a binding holds (or held) access under its workspace: authorised
/// and not finished. A workspace being deleted waits for these to end before
/// its final history entry.
pub fn holds_access(status: Option<&RoleBindingStatus>) -> bool {
    was_authorized(status).is_some()
        && !matches!(
            status.and_then(|s| s.phase),
            Some(BindingPhase::Expired | BindingPhase::Revoked)
        )
}

fn targets(facts: &BindingFacts<'_>, role: &Role, ws: &WorkspaceFacts<'_>) -> Result<Vec<Grant>, Refusal> {
    match role {
        Role::Workspace(r) => {
            if !ws.ready {
                return Err(Refusal::WorkspaceNotReady);
            }
            let name = match r {
                WorkspaceRole::Manager => MANAGER_ROLE,
                WorkspaceRole::Member => MEMBER_ROLE,
            };
            Ok(vec![Grant {
                namespace: ws.namespace.to_owned(),
                target: RoleTarget::WorkspaceRole(name.to_owned()),
            }])
        }
        Role::Project { project, role } => {
            let p = facts
                .project
                .as_ref()
                .ok_or_else(|| Refusal::ProjectNotFound(project.clone()))?;
            let allowed = facts.config.allowed();
            let cluster_role = match facts.pinned_cluster_role {
                // What was approved (or first granted) is what it grants, as
                // long as the configuration still allows it.
                Some(pinned) if allowed.contains(pinned) => pinned.to_owned(),
                Some(pinned) => {
                    return Err(Refusal::RoleNotAllowed {
                        role: role.clone(),
                        cluster_role: pinned.to_owned(),
                    });
                }
                None => {
                    resolve_cluster_role(role, p.role_map, &facts.config.role_map, &allowed).map_err(Refusal::from)?
                }
            };
            if p.namespaces.is_empty() {
                return Err(Refusal::ProjectHasNoNamespaces(project.clone()));
            }
            Ok(p.namespaces
                .iter()
                .map(|ns| Grant {
                    namespace: ns.clone(),
                    target: RoleTarget::ClusterRole(cluster_role.clone()),
                })
                .collect())
        }
    }
}

/// Decides what should be true of a binding now.
pub fn decide_binding(facts: &BindingFacts<'_>) -> BindingDecision {
    let retention = facts.config.retention.to_chrono();
    let previous_phase = facts.previous.and_then(|s| s.phase);
    let role = Role::of_binding(facts.spec);
    let cap = facts.workspace.as_ref().map(|w| w.max_duration);
    // An expiry once published is never extended (raising the workspace's cap
    // later does not lengthen a grant); it may only come earlier.
    let published = facts.previous.and_then(|s| s.expires_at);
    let computed = effective_expiry(facts.spec, facts.created, cap);
    let expires_at = match (published, computed) {
        (Some(p), Some(c)) => Some(p.min(c)),
        (p, c) => c.or(p),
    };
    let recorded = Owners {
        workspace: facts.previous.and_then(|s| s.workspace_uid.clone()),
        project: facts.previous.and_then(|s| s.project_uid.clone()),
    };
    let owner_gone = owner_gone(facts, &recorded);
    let previous_ratification = facts.previous.and_then(|s| s.ratification.as_ref());
    let ratification = ratify(facts, previous_ratification, None);
    let mut d = BindingDecision {
        phase: BindingPhase::Pending,
        role: role.as_ref().map(Role::label),
        authorization: was_authorized(facts.previous),
        refusal: None,
        expires_at,
        finished_at: None,
        revoked: None,
        owners: recorded.clone(),
        grants: vec![],
        wake_at: None,
        delete_record: false,
        ratification: ratification.status.clone(),
    };

    // Finished bindings stay finished; they are records until retention ends.
    // The first way a binding ended is the one it keeps.
    let finished = if matches!(previous_phase, Some(BindingPhase::Expired | BindingPhase::Revoked)) {
        previous_phase
    } else if facts.spec.revocation.is_some() {
        Some(BindingPhase::Revoked)
    } else if expires_at.is_some_and(|e| e <= facts.now) {
        Some(BindingPhase::Expired)
    } else if facts.lockout.is_some()
        || owner_gone.is_some()
        || ratification.revoke.is_some()
        || super::ratification::revoked_by(previous_ratification).is_some()
    {
        Some(BindingPhase::Revoked)
    } else {
        None
    };
    if finished == Some(BindingPhase::Revoked) {
        let recorded_lockout = facts.previous.and_then(|s| s.lockout.as_ref());
        d.revoked = Some(
            match (&facts.spec.revocation, previous_phase, recorded_lockout, facts.lockout) {
                (Some(r), ..) => Revoked::By {
                    user: r.by.clone(),
                    reason: r.reason.clone(),
                },
                // Ended before: as it ended (a lockout lifted since changes nothing).
                (None, Some(BindingPhase::Revoked), Some(name), _) => Revoked::LockedOut(super::lockout::Hit {
                    lockout: name.clone(),
                    by: String::new(),
                    reason: String::new(),
                    since: None,
                }),
                (None, Some(BindingPhase::Revoked), None, _) => {
                    match super::ratification::revoked_by(previous_ratification) {
                        Some(r) => Revoked::Ratification(r),
                        None => Revoked::OwnerGone(owner_gone.unwrap_or_default()),
                    }
                }
                (None, _, _, Some(hit)) => Revoked::LockedOut(hit.clone()),
                (None, _, _, None) => match (
                    ratification
                        .revoke
                        .clone()
                        .or_else(|| super::ratification::revoked_by(previous_ratification)),
                    owner_gone,
                ) {
                    (_, Some(why)) => Revoked::OwnerGone(why),
                    (Some(r), None) => Revoked::Ratification(r),
                    (None, None) => Revoked::OwnerGone(String::new()),
                },
            },
        );
    }
    if let Some(phase) = finished {
        let at = facts.previous.and_then(|s| s.finished_at).unwrap_or(match phase {
            // An expiry happened at the expiry time, even if seen later.
            BindingPhase::Expired => expires_at.unwrap_or(facts.now).min(facts.now),
            _ => facts.now,
        });
        let end = at.checked_add_signed(retention).unwrap_or(DateTime::<Utc>::MAX_UTC);
        d.phase = phase;
        d.finished_at = Some(at);
        // A record whose break-glass still awaits its verdict stays until
        // the window ends, whatever the retention.
        let awaiting = ratification
            .status
            .as_ref()
            .is_some_and(|r| r.state == crate::api::RatificationState::Awaiting);
        d.delete_record = end <= facts.now && !awaiting;
        d.wake_at = earliest((end > facts.now).then_some(end), ratification.wake_at);
        return d;
    }

    let Some(role) = role else {
        d.refusal = Some(Refusal::InvalidSpec(
            "exactly one of workspaceRole or project and projectRole".into(),
        ));
        return d;
    };
    let Some(ws) = facts.workspace.as_ref() else {
        // A binding never in effect next to a workspace that names this
        // namespace but has not claimed it yet (created together) waits for
        // it, as for one whose Roles are not in place yet, rather than
        // being refused.
        d.refusal = Some(match facts.previous.and_then(|p| p.phase) {
            None | Some(BindingPhase::Pending) if facts.workspace_alive => Refusal::WorkspaceNotReady,
            _ => Refusal::WorkspaceNotFound,
        });
        return d;
    };
    d.wake_at = earliest(expires_at, ratification.wake_at);
    if expires_at.is_none() {
        d.refusal = Some(Refusal::InvalidSpec("exactly one of expiresAt or duration".into()));
        return d;
    }
    match authorize(facts, &role, ws) {
        Ok(a) => {
            d.authorization = Some(a);
            d.owners.workspace = Some(ws.uid.to_owned());
            if let Some(p) = &facts.project {
                d.owners.project = Some(p.uid.to_owned());
            }
        }
        Err(r) => {
            d.refusal = Some(r);
            return d;
        }
    }
    match targets(facts, &role, ws) {
        Ok(grants) => {
            d.phase = BindingPhase::Active;
            d.grants = grants;
        }
        Err(r) => d.refusal = Some(r),
    }
    // A break-glass grant authorised for the first time: its ratification
    // starts now (an objection already there ends it before it takes effect).
    let first_authorized = was_authorized(facts.previous).is_none();
    if first_authorized && previous_ratification.is_none() {
        let broke_glass = match d.authorization {
            Some(Authorization::ApprovedRequest) => facts.origin_break_glass,
            // A partner's direct grant of a project role, unless they could
            // have made it as a manager alone.
            Some(Authorization::Partner)
                if !(role.is_workspace_role()
                    || (facts.granted_by_manager && ws.policy.project_role_approvals <= 1)) =>
            {
                Some(facts.spec.granted_by.as_str())
            }
            _ => None,
        };
        if let Some(partner) = broke_glass {
            let started = ratify(facts, None, Some(partner));
            d.ratification = started.status;
            d.wake_at = earliest(d.wake_at, started.wake_at);
            if let Some(r) = started.revoke {
                d.phase = BindingPhase::Revoked;
                d.revoked = Some(Revoked::Ratification(r));
                d.grants = vec![];
                d.refusal = None;
                d.finished_at = Some(facts.now);
            }
        }
    }
    d
}

/// The earlier of two instants, either of which may be absent.
fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The ratification of a break-glass grant, from `previous`, or starting
/// now (`starts`: the partner who broke the glass).
fn ratify(
    facts: &BindingFacts<'_>,
    previous: Option<&crate::api::RatificationStatus>,
    starts: Option<&str>,
) -> super::ratification::RatificationDecision {
    let policy = facts.workspace.as_ref().map(|w| w.policy);
    super::ratification::decide_ratification(&super::ratification::RatificationFacts {
        spec: facts.spec,
        previous,
        starts,
        window: policy.map(|p| p.break_glass_ratification.window.to_chrono()),
        on_unratified: policy
            .map(|p| p.break_glass_ratification.on_unratified)
            .unwrap_or_default(),
        approvers: facts.origin_approvers,
        voters: facts.ratifiers,
        locked_voters: facts.locked_voters,
        cooling_off: policy.map(|p| p.manager_cooling_off.to_chrono()).unwrap_or_default(),
        now: facts.now,
    })
}

/// What a binding's transition from `previous` to `decision` made happen:
/// granted (active), expired, revoked, or refused for a new reason that is
/// not transient ("not yet"). Only what is new.
pub fn transitions(
    spec: &RoleBindingSpec,
    annotations: Option<&BTreeMap<String, String>>,
    previous: Option<&RoleBindingStatus>,
    decision: &BindingDecision,
) -> Vec<Transition> {
    let role = Role::of_binding(spec).map(|r| r.label()).unwrap_or_default();
    let ratified = super::ratification::transitions(
        spec,
        &role,
        previous.and_then(|s| s.ratification.as_ref()),
        &super::ratification::RatificationDecision {
            status: decision.ratification.clone(),
            revoke: None,
            wake_at: None,
        },
    );
    let mut out = ratified;
    out.extend(phase_transitions(spec, annotations, previous, decision));
    out
}

/// What the change of phase made happen (see [`transitions`]).
fn phase_transitions(
    spec: &RoleBindingSpec,
    annotations: Option<&BTreeMap<String, String>>,
    previous: Option<&RoleBindingStatus>,
    decision: &BindingDecision,
) -> Vec<Transition> {
    let previous_phase = previous.and_then(|s| s.phase);
    let created_by = annotations
        .and_then(|a| a.get(CREATED_BY_ANNOTATION))
        .filter(|creator| **creator != spec.granted_by)
        .cloned();
    let kind = match (previous_phase, decision.phase) {
        (p, BindingPhase::Active) if p != Some(BindingPhase::Active) => {
            let mut namespaces: Vec<String> = decision.grants.iter().map(|g| g.namespace.clone()).collect();
            namespaces.sort_unstable();
            namespaces.dedup();
            (
                Kind::Granted {
                    until: decision.expires_at,
                    how: decision.authorization.map(|a| a.reason()).unwrap_or_default(),
                    namespaces,
                    justification: spec.justification.clone(),
                    created_by,
                },
                user(&spec.granted_by),
            )
        }
        (p, BindingPhase::Expired) if p != Some(BindingPhase::Expired) => (
            Kind::Expired {
                until: decision.expires_at,
                was_active: p == Some(BindingPhase::Active),
                // Only the one who removes the native RBAC knows (the reconciler).
                already_removed: false,
            },
            Actor::Operator,
        ),
        (p, BindingPhase::Revoked) if p != Some(BindingPhase::Revoked) => match &decision.revoked {
            Some(Revoked::LockedOut(hit)) => (
                Kind::LockedOut {
                    lockout: hit.lockout.clone(),
                    reason: hit.reason.clone(),
                },
                if hit.by.is_empty() {
                    Actor::Operator
                } else {
                    user(&hit.by)
                },
            ),
            Some(r) => (
                Kind::Revoked { reason: r.reason() },
                r.actor().map(user).unwrap_or(Actor::Operator),
            ),
            None => (Kind::Revoked { reason: String::new() }, Actor::Unknown),
        },
        (_, BindingPhase::Pending) => {
            let Some(r) = decision.refusal.as_ref().filter(|r| !r.is_transient()) else {
                return vec![];
            };
            let previous_reason = previous
                .and_then(|s| find_condition(&s.conditions, READY))
                .map(|c| c.reason.as_str());
            if previous_reason == Some(r.reason()) {
                return vec![];
            }
            (
                Kind::Refused {
                    reason: r.reason(),
                    message: r.message(),
                    created_by,
                    // Without a workspace there is no chain to record into
                    // (after a workspace's deletion, its final entry says
                    // what became of its bindings).
                    recorded: !matches!(r, Refusal::WorkspaceNotFound),
                },
                user(&spec.granted_by),
            )
        }
        _ => return vec![],
    };
    vec![about(spec, kind.0, kind.1)]
}

fn about(spec: &RoleBindingSpec, kind: Kind, actor: Actor) -> Transition {
    Transition {
        kind,
        actor,
        subject: spec.subject.to_string(),
        role: Role::of_binding(spec).map(|r| r.label()).unwrap_or_default(),
    }
}

/// Native RBAC of an active grant (`natives`, `namespace/name`) had been
/// changed or removed by someone else and was put back.
pub fn drift_corrected(spec: &RoleBindingSpec, natives: Vec<String>) -> Transition {
    about(spec, Kind::DriftCorrected { natives }, Actor::Operator)
}

/// When a grant in force is about to expire, for a reminder `lead` before
/// its expiry: only for a grant already in force then (one shorter than the
/// lead time gets none: its grant said when it ends), and only when this
/// process has acted since that instant (`acting_since`), so that a new
/// leader or a restart does not repeat reminders (one due while nobody led
/// is not sent). `None` when there is none to send.
pub fn expiry_reminder_at(
    decision: &BindingDecision,
    activated_at: Option<DateTime<Utc>>,
    lead: Duration,
    acting_since: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if decision.phase != BindingPhase::Active {
        return None;
    }
    let at = decision.expires_at?.checked_sub_signed(lead)?;
    (activated_at.is_some_and(|a| a < at) && at >= acting_since).then_some(at)
}

/// The reminder that a grant in force ends soon (see [`expiry_reminder_at`]).
pub fn expiring_soon(spec: &RoleBindingSpec, decision: &BindingDecision) -> Transition {
    about(
        spec,
        Kind::ExpiringSoon {
            until: decision.expires_at,
        },
        Actor::Operator,
    )
}

/// A binding record was deleted, `why`: by the operator when its retention
/// is over, otherwise by someone the API server does not name.
pub fn removed(
    spec: &RoleBindingSpec,
    status: Option<&RoleBindingStatus>,
    why: String,
    retention_over: bool,
) -> Transition {
    let last_phase = status
        .and_then(|s| s.phase)
        .map(|p| format!("{p:?}"))
        .unwrap_or_else(|| "Pending".into());
    let actor = if retention_over {
        Actor::Operator
    } else {
        Actor::Unknown
    };
    about(
        spec,
        Kind::Removed {
            why,
            last_phase,
            retention_over,
        },
        actor,
    )
}

/// When a project role ended, its holder had created `found` during the
/// grant; `removed` when the operator deleted them.
pub fn persistence_found(spec: &RoleBindingSpec, found: Vec<Persisted>, removed: bool) -> Transition {
    about(spec, Kind::PersistenceFound { found, removed }, Actor::Operator)
}

/// The status that goes with a decision, starting from the previous one so
/// that unchanged conditions keep their transition times (and an unchanged
/// status compares equal and is not written).
pub fn binding_status(
    decision: &BindingDecision,
    previous: Option<&RoleBindingStatus>,
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> RoleBindingStatus {
    let mut s = previous.cloned().unwrap_or_default();
    s.observed_generation = generation;
    s.phase = Some(decision.phase);
    s.role = decision.role.clone();
    s.expires_at = decision.expires_at;
    s.finished_at = decision.finished_at;
    if decision.phase == BindingPhase::Active && s.cluster_role.is_none() {
        s.cluster_role = decision.grants.iter().find_map(|g| match &g.target {
            RoleTarget::ClusterRole(c) => Some(c.clone()),
            RoleTarget::WorkspaceRole(_) => None,
        });
    }
    s.workspace_uid = decision.owners.workspace.clone();
    s.project_uid = decision.owners.project.clone();
    if let Some(Revoked::LockedOut(hit)) = &decision.revoked {
        s.lockout = Some(hit.lockout.clone());
    }
    if decision.phase == BindingPhase::Active && s.activated_at.is_none() {
        s.activated_at = Some(now);
    }
    let mut namespaces: Vec<String> = decision.grants.iter().map(|g| g.namespace.clone()).collect();
    namespaces.sort();
    namespaces.dedup();
    s.namespaces = namespaces;

    let auth = match (&decision.authorization, &decision.refusal) {
        (Some(a), _) => Some(Condition::new(
            AUTHORIZED,
            ConditionStatus::True,
            a.reason(),
            "",
            generation,
            now,
        )),
        (None, Some(r)) if r.is_authorization() => Some(Condition::new(
            AUTHORIZED,
            ConditionStatus::False,
            r.reason(),
            r.message(),
            generation,
            now,
        )),
        _ => None,
    };
    if let Some(c) = auth {
        set_condition(&mut s.conditions, c);
    }
    let ready = match (decision.phase, &decision.refusal) {
        (BindingPhase::Active, _) => Condition::new(
            READY,
            ConditionStatus::True,
            "Active",
            format!("native RBAC in place in {}", s.namespaces.join(", ")),
            generation,
            now,
        ),
        (BindingPhase::Expired, _) => Condition::new(
            READY,
            ConditionStatus::False,
            "Expired",
            "the role expired; access removed",
            generation,
            now,
        ),
        (BindingPhase::Revoked, _) if matches!(decision.revoked, Some(Revoked::LockedOut(_))) => Condition::new(
            READY,
            ConditionStatus::False,
            super::transition::reason::LOCKED_OUT,
            format!(
                "revoked: its subject is locked out (Lockout {}); access removed, and nothing is restored when the lockout ends",
                s.lockout.clone().unwrap_or_default()
            ),
            generation,
            now,
        ),
        (BindingPhase::Revoked, _) => Condition::new(
            READY,
            ConditionStatus::False,
            "Revoked",
            match &decision.revoked {
                Some(Revoked::OwnerGone(why)) => format!("the role ended: {why}; access removed"),
                Some(Revoked::Ratification(r)) => format!("revoked: {}; access removed", r.reason()),
                _ => "the role was revoked; access removed".to_owned(),
            },
            generation,
            now,
        ),
        (BindingPhase::Pending, Some(r)) => {
            Condition::new(READY, ConditionStatus::False, r.reason(), r.message(), generation, now)
        }
        (BindingPhase::Pending, None) => Condition::new(
            READY,
            ConditionStatus::False,
            "Pending",
            "waiting for native RBAC",
            generation,
            now,
        ),
    };
    set_condition(&mut s.conditions, ready);
    s.ratification = decision.ratification.clone();
    if let Some(r) = &s.ratification {
        set_condition(&mut s.conditions, ratified_condition(r, generation, now));
    }
    s
}

/// The condition saying where a break-glass grant's ratification stands.
pub const RATIFIED: &str = "Ratified";

fn ratified_condition(r: &crate::api::RatificationStatus, generation: Option<i64>, now: DateTime<Utc>) -> Condition {
    use crate::api::RatificationState as S;
    let by = r.by.as_deref().unwrap_or_default();
    let (status, reason, message) = match r.state {
        S::Awaiting => (
            ConditionStatus::False,
            "Awaiting",
            format!(
                "break-glass by partner {}: waiting for a manager to ratify it or object, until {}",
                r.break_glass_by,
                r.deadline.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        ),
        S::Ratified => (
            ConditionStatus::True,
            "Ratified",
            format!("break-glass by partner {} ratified by {by}", r.break_glass_by),
        ),
        S::Unratified => (
            ConditionStatus::False,
            "Unratified",
            format!(
                "break-glass by partner {} not ratified by {}{}",
                r.break_glass_by,
                r.deadline.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                if r.revoked { "; revoked" } else { "" }
            ),
        ),
        S::Objected => (
            ConditionStatus::False,
            "Objected",
            format!(
                "break-glass by partner {} objected to by {by}; revoked",
                r.break_glass_by
            ),
        ),
    };
    Condition::new(RATIFIED, status, reason, message, generation, now)
}

#[cfg(test)]
mod tests;
