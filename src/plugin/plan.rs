//! `kubectl access plan -f FILE`: a dry run for a GitOps pull request.
//!
//! For each foureyes `RoleBinding` and `RoleRequest` in the manifests, it
//! says who could approve, what quorum applies, whether a partner may break
//! the glass, the cap on the expiry, and whether the operator would refuse
//! it and why. For a request it also counts the votes: who counts already
//! (the requester's implicit approval included), who can still approve,
//! whether the quorum is reachable, and the phase the request would reach.
//! The verdicts come from the operator's own pure decisions
//! ([`crate::policy::binding::decide_binding`] for the binding a request
//! becomes, [`crate::policy::quorum::decide_request`] for the votes, role
//! resolution and the allow-list) run on a snapshot of the live workspaces,
//! projects, bindings and requests, overlaid with the Workspaces and Projects
//! of the manifests (they would be applied in the same change).
//!
//! What the plugin cannot know: the operator's configuration (partners, role
//! map, allow-list) unless given with `--operator-config` (the defaults
//! otherwise), and the groups of whoever will apply the manifests or add a
//! vote: the API server stamps them at admission, so partners named only by
//! group, and voters who belong to a group subject, are recognised only for
//! votes already applied. The plan says so where it matters.

use chrono::{DateTime, Utc};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use serde::Serialize;

use super::cli::{Global, Output, PlanArgs};
use super::common::{api_err, connect, emit, emit_json};
use super::format::{fields, short_duration};
use super::{NOT_IN_EFFECT, PluginError};
use crate::api::documents::Object;
use crate::api::{
    BindingPhase, IgnoredVote, OriginRequest, RequestPhase, RoleBinding, RoleBindingSpec, RoleBindingStatus,
    RoleRequest, Subject, SubjectKind, Workspace,
};
use crate::config::Config;
use crate::policy::binding::OriginFacts;
use crate::policy::facts::{Snapshot, Vantage, binding_world, made_from};
use crate::policy::quorum::{
    ExistingBinding, Problem, RequestFacts, RequestWorkspace, decide_request, requester, voters,
};
use crate::policy::{BindingDecision, BindingFacts, Role, decide_binding};

/// The live world the plan is judged on: the listed objects, judged with
/// the operator's own gathering of facts.
pub use crate::policy::facts::{Listed as World, control_namespace};

/// Replaces live Workspaces and Projects with those of the manifests;
/// returns one line per object taken from the manifests.
pub fn overlay(world: &mut World, objects: &[Object]) -> Vec<String> {
    let mut notes = vec![];
    for o in objects {
        match o {
            Object::Workspace(ws) => {
                let name = ws.name_any();
                let live = world.workspaces.iter().position(|w| w.name_any() == name);
                let mut ws = (**ws).clone();
                if let Some(i) = live {
                    ws.status = world.workspaces[i].status.clone();
                    world.workspaces[i] = ws;
                    notes.push(format!(
                        "Workspace {name}: judged with the manifest's spec (it changes the live one)"
                    ));
                } else {
                    world.workspaces.push(ws);
                    notes.push(format!("Workspace {name}: new, judged with the manifest's spec"));
                }
            }
            Object::Project(p) => {
                let (name, ns) = (p.name_any(), p.namespace().unwrap_or_default());
                let live = world
                    .projects
                    .iter()
                    .position(|x| x.name_any() == name && x.namespace().unwrap_or_default() == ns);
                let mut p = (**p).clone();
                if let Some(i) = live {
                    p.status = world.projects[i].status.clone();
                    world.projects[i] = p;
                    notes.push(format!("Project {ns}/{name}: judged with the manifest's spec"));
                } else {
                    world.projects.push(p);
                    notes.push(format!("Project {ns}/{name}: new, judged with the manifest's spec"));
                }
            }
            _ => {}
        }
    }
    notes
}

/// What the operator would do with an object.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "verdict", rename_all = "camelCase")]
pub enum Outcome {
    /// The binding would take effect.
    Active {
        /// How it would be authorised (`GrantedByManager`, `GrantedByPartner`, ...).
        authorization: String,
    },
    /// The request waits for approvals.
    NeedsApproval {
        /// Approvals required.
        required: i32,
        /// Approvals that count already.
        approved: usize,
    },
    /// The request would be approved and its RoleBinding created.
    Granted {
        /// The managers whose approvals count.
        approved_by: Vec<String>,
        /// The partner who approved alone, if the glass is broken.
        break_glass_by: Option<String>,
    },
    /// The request waits for a partner: fewer managers than the quorum.
    QuorumUnreachable {
        /// Approvals required.
        required: i32,
        /// Managers who could approve (the subject excluded).
        managers: usize,
    },
    /// A manager's or partner's `Deny` ends the request.
    Denied {
        /// Who denied it.
        by: String,
    },
    /// It would wait for something that is not there yet (not a refusal).
    Waits {
        /// The stable reason.
        reason: String,
        /// What it waits for.
        message: String,
    },
    /// The binding ends (or stays ended): revoked.
    Revoked,
    /// The binding has expired already.
    Expired,
    /// The operator would refuse it.
    Refused {
        /// The stable reason, as in its condition and Warning event.
        reason: String,
        /// Why.
        message: String,
    },
}

impl Outcome {
    /// Whether the operator would refuse it.
    pub fn is_refused(&self) -> bool {
        matches!(self, Outcome::Refused { .. })
    }

    /// One line for people.
    pub fn summary(&self) -> String {
        match self {
            Outcome::Active { authorization } => format!("would take effect ({authorization})"),
            Outcome::NeedsApproval { required, approved } => {
                format!("needs {required} approval(s), {approved} counted so far")
            }
            Outcome::Granted {
                break_glass_by: Some(partner),
                ..
            } => format!("would be granted: break-glass, partner {partner} approved alone"),
            Outcome::Granted { approved_by, .. } => {
                format!("would be granted: approved by {}", approved_by.join(", "))
            }
            Outcome::QuorumUnreachable { required, managers } => format!(
                "quorum unreachable: {managers} manager(s) could approve, {required} needed; only a partner can approve it (break-glass)"
            ),
            Outcome::Denied { by } => format!("would be denied by {by}"),
            Outcome::Waits { reason, message } => format!("would wait: {reason}: {message}"),
            Outcome::Revoked => "revoked: its access ends at once".into(),
            Outcome::Expired => "already expired: grants nothing".into(),
            Outcome::Refused { reason, message } => format!("REFUSED: {reason}: {message}"),
        }
    }
}

/// The plan for one object.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PlanItem {
    /// `RoleBinding` or `RoleRequest`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The workspace owning the namespace, if any.
    pub workspace: Option<String>,
    /// `user dave` or `group oncall`.
    pub subject: String,
    /// `manager`, `member` or `<project>/<role>`.
    pub role: String,
    /// Whether an object of this name exists already (the manifest updates it).
    pub exists: bool,
    /// Current managers who could approve (the subject excluded).
    pub approvers: Vec<String>,
    /// Approvals required for this kind of role.
    pub quorum: Option<i32>,
    /// Whether a partner may approve alone (break-glass).
    pub partner_break_glass: Option<bool>,
    /// The workspace's cap on any grant.
    pub max_duration: Option<String>,
    /// The expiry as written.
    pub asked: String,
    /// The expiry after the cap.
    pub effective: Option<String>,
    /// What the operator would do.
    pub outcome: Outcome,
    /// For a request: how its votes would count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub votes: Option<RequestVotes>,
    /// For a project role: the ClusterRole it would bind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_role: Option<String>,
    /// For a project role: the tenant namespaces it would bind it in.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub grants_in: Vec<String>,
    /// What that ClusterRole grants there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<crate::api::Permissions>,
    /// Further remarks.
    pub notes: Vec<String>,
}

/// How a request's votes would count, as the operator's quorum decides them.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RequestVotes {
    /// Approvals required by the workspace's policy.
    pub required: i32,
    /// The managers whose approvals would count, in order (the requester's
    /// implicit approval first).
    pub counted: Vec<String>,
    /// Current managers who can still approve: the subject and those already
    /// counted excluded.
    pub can_still_approve: Vec<String>,
    /// Whether enough managers exist for the quorum; if not, only a partner
    /// can approve (break-glass).
    pub reachable: bool,
    /// The phase the request would reach (`Granted` for an approved request:
    /// the operator creates its binding at once).
    pub phase: RequestPhase,
    /// Votes that would not count, with the reason.
    pub ignored: Vec<IgnoredVote>,
}

/// The plan of a whole file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Workspaces and Projects taken from the manifests.
    pub context: Vec<String>,
    /// One entry per RoleBinding and RoleRequest.
    pub items: Vec<PlanItem>,
}

impl Plan {
    /// Whether any object would be refused.
    pub fn any_refused(&self) -> bool {
        self.items.iter().any(|i| i.outcome.is_refused())
    }
}

/// What a plan is judged against.
#[derive(Clone, Copy)]
pub struct Judge<'a> {
    /// The live world, overlaid with the manifests.
    pub world: &'a World,
    /// The operator's configuration (or the defaults).
    pub config: &'a Config,
    /// The namespace of objects that name none (as kubectl uses it).
    pub default_ns: &'a str,
    /// The current time.
    pub now: DateTime<Utc>,
}

impl Judge<'_> {
    /// Runs the operator's binding decision on a spec in the namespace.
    fn decide(
        &self,
        ns: &str,
        spec: &RoleBindingSpec,
        created: DateTime<Utc>,
        previous: Option<&RoleBindingStatus>,
        origin: Option<OriginFacts>,
    ) -> BindingDecision {
        // A change about to be applied: readiness is the operator's
        // business, and a new project's namespaces are those it asks for.
        let world = binding_world(self.world, ns, spec, self.now, Vantage::Plan);
        let facts = BindingFacts {
            spec,
            created,
            previous,
            workspace: world.workspace_facts(ns),
            project: world.project_facts(),
            origin,
            pinned_cluster_role: previous.and_then(|s| s.cluster_role.as_deref()),
            granted_by_partner: self.config.partners.contains(&spec.granted_by, &[]),
            granted_by_groups: None,
            stamps_trusted: true,
            workspace_alive: world.workspace.is_some(),
            project_alive: world.project.is_some(),
            granted_by_manager: world.is_manager(&spec.granted_by),
            // Lockouts are the operator's to apply: a plan shows the grant as
            // the approvals would have it.
            lockout: None,
            origin_break_glass: None,
            origin_approvers: &[],
            ratifiers: &[],
            locked_voters: &[],
            config: self.config,
            now: self.now,
        };
        decide_binding(&facts)
    }

    /// Current managers of the namespace's workspace, the subject excluded.
    fn approvers(&self, ns: &str, subject: &Subject) -> Vec<String> {
        self.world
            .managers(ns, self.now)
            .names()
            .filter(|m| !(subject.kind == SubjectKind::User && subject.name == **m))
            .cloned()
            .collect()
    }
}

fn workspace_fields(item: &mut PlanItem, ws: &Workspace, role: Option<&Role>) {
    let policy = &ws.spec.approval_policy;
    item.quorum = role.map(|r| {
        if r.is_workspace_role() {
            policy.workspace_role_approvals
        } else {
            policy.project_role_approvals
        }
    });
    item.partner_break_glass = Some(policy.partner_break_glass);
    item.max_duration = Some(ws.spec.max_duration.to_string());
}

/// The ClusterRole and tenant namespaces a project role's decision binds.
fn granted(item: &mut PlanItem, d: &BindingDecision) {
    for g in &d.grants {
        if let crate::policy::RoleTarget::ClusterRole(cr) = &g.target {
            item.cluster_role = Some(cr.clone());
            item.grants_in.push(g.namespace.clone());
        }
    }
}

/// Fills in what each item's ClusterRole grants, read from `cluster_roles`
/// (all of them, so that aggregation can be followed), or, when the caller
/// may not read ClusterRoles, from what the operator reported on a live
/// request; otherwise a note says why it is not shown.
pub fn fill_permissions(items: &mut [PlanItem], cluster_roles: Result<&[ClusterRole], &str>, world: &World) {
    for item in items {
        let Some(cr) = item.cluster_role.clone() else {
            continue;
        };
        let read = match cluster_roles {
            Ok(all) => all
                .iter()
                .find(|r| r.metadata.name.as_deref() == Some(cr.as_str()))
                .map(|role| {
                    crate::policy::grants::permissions(&cr, &crate::policy::grants::effective_rules(role, all))
                }),
            Err(_) => world
                .requests
                .iter()
                .find(|r| r.name_any() == item.name && r.namespace().as_deref() == Some(item.namespace.as_str()))
                .and_then(|r| r.status.as_ref()?.permissions.clone())
                .filter(|p| p.cluster_role == cr),
        };
        match (read, cluster_roles) {
            (Some(p), _) => item.permissions = Some(p),
            (None, Ok(_)) => item.notes.push(format!("ClusterRole {cr} does not exist")),
            (None, Err(why)) => item
                .notes
                .push(format!("what ClusterRole {cr} grants is not shown: {why}")),
        }
    }
}

fn outcome_of(d: &BindingDecision) -> Outcome {
    match (d.phase, &d.refusal, d.authorization) {
        (BindingPhase::Active, _, a) => Outcome::Active {
            authorization: a.map(|a| a.reason().to_owned()).unwrap_or_default(),
        },
        (BindingPhase::Revoked, _, _) => Outcome::Revoked,
        (BindingPhase::Expired, _, _) => Outcome::Expired,
        (BindingPhase::Pending, Some(r), _) if r.is_transient() => Outcome::Waits {
            reason: r.reason().into(),
            message: r.message(),
        },
        (BindingPhase::Pending, Some(r), _) => Outcome::Refused {
            reason: r.reason().into(),
            message: r.message(),
        },
        (BindingPhase::Pending, None, _) => Outcome::Waits {
            reason: "Pending".into(),
            message: "waiting for native RBAC".into(),
        },
    }
}

fn plan_binding(j: &Judge<'_>, b: &RoleBinding) -> PlanItem {
    let (world, config, now) = (j.world, j.config, j.now);
    let ns = b.namespace().unwrap_or_else(|| j.default_ns.to_owned());
    let name = b.name_any();
    let live = world
        .bindings
        .iter()
        .find(|x| x.name_any() == name && x.namespace().as_deref() == Some(ns.as_str()));
    let created = live
        .and_then(|l| l.metadata.creation_timestamp.as_ref())
        .map(crate::api::time::from_k8s)
        .unwrap_or(now);
    let role = Role::of_binding(&b.spec);
    let ws = world.workspace_of(&ns);
    let mut item = PlanItem {
        kind: "RoleBinding".into(),
        name,
        namespace: ns.clone(),
        workspace: ws.map(|w| w.name_any()),
        subject: b.spec.subject.to_string(),
        role: role.as_ref().map(Role::label).unwrap_or_else(|| "?".into()),
        exists: live.is_some(),
        approvers: j.approvers(&ns, &b.spec.subject),
        quorum: None,
        partner_break_glass: None,
        max_duration: None,
        asked: match (&b.spec.duration, &b.spec.expires_at) {
            (Some(d), _) => d.to_string(),
            (None, Some(at)) => format!("until {}", at.to_rfc3339()),
            (None, None) => "?".into(),
        },
        effective: None,
        outcome: Outcome::Waits {
            reason: String::new(),
            message: String::new(),
        },
        votes: None,
        cluster_role: None,
        grants_in: vec![],
        permissions: None,
        notes: vec![],
    };
    if let Some(ws) = ws {
        workspace_fields(&mut item, ws, role.as_ref());
    }
    let previous = live.and_then(|l| l.status.as_ref());
    let d = j.decide(&ns, &b.spec, created, previous, None);
    granted(&mut item, &d);
    item.effective = d.expires_at.map(|e| match (&b.spec.duration, e < now) {
        (_, true) => format!("ended {}", e.to_rfc3339()),
        (Some(_), false) => short_duration(e - created),
        (None, false) => format!("until {}", e.to_rfc3339()),
    });
    item.outcome = outcome_of(&d);
    if let Outcome::Refused { reason, .. } = &item.outcome
        && reason == "NotAuthorized"
    {
        if item.quorum.is_some_and(|q| q > 1) && world.managers(&ns, now).contains(&b.spec.granted_by) {
            item.notes.push(format!(
                "four eyes: file a request instead (kubectl access request {} ... -w {})",
                b.spec.subject.name,
                item.workspace.clone().unwrap_or_default()
            ));
        }
        if !config.partners.contains(&b.spec.granted_by, &[]) {
            item.notes.push(
                "partners are named in the operator's configuration: pass --operator-config to recognise them \
                 (partners named by group are recognised only when they apply it themselves)"
                    .into(),
            );
        }
    }
    if let (Some(live), false) = (live, b.spec.revocation.is_some()) {
        item.notes.push(format!(
            "updates the existing binding (phase {})",
            live.status
                .as_ref()
                .and_then(|s| s.phase)
                .map(|p| format!("{p:?}"))
                .unwrap_or_else(|| "unknown".into())
        ));
    }
    item
}

fn plan_request(j: &Judge<'_>, r: &RoleRequest) -> PlanItem {
    let (world, config, now) = (j.world, j.config, j.now);
    let ns = r.namespace().unwrap_or_else(|| j.default_ns.to_owned());
    let name = r.name_any();
    let live = world
        .requests
        .iter()
        .find(|x| x.name_any() == name && x.namespace().as_deref() == Some(ns.as_str()));
    let role = Role::of_request(&r.spec);
    let ws = world.workspace_of(&ns);
    let subject = &r.spec.subject;
    let approvers = j.approvers(&ns, subject);
    let mut item = PlanItem {
        kind: "RoleRequest".into(),
        name: name.clone(),
        namespace: ns.clone(),
        workspace: ws.map(|w| w.name_any()),
        subject: subject.to_string(),
        role: role.as_ref().map(Role::label).unwrap_or_else(|| "?".into()),
        exists: live.is_some(),
        approvers: approvers.clone(),
        quorum: None,
        partner_break_glass: None,
        max_duration: None,
        asked: r.spec.duration.to_string(),
        effective: None,
        outcome: Outcome::Waits {
            reason: String::new(),
            message: String::new(),
        },
        votes: None,
        cluster_role: None,
        grants_in: vec![],
        permissions: None,
        notes: vec![],
    };
    if let Some(ws) = ws {
        workspace_fields(&mut item, ws, role.as_ref());
    }

    // What the binding made from this request, once approved, would face:
    // the same role, project and allow-list checks as any binding.
    let spec = RoleBindingSpec {
        subject: subject.clone(),
        workspace_role: r.spec.workspace_role,
        project: r.spec.project.clone(),
        project_role: r.spec.project_role.clone(),
        expires_at: None,
        duration: Some(r.spec.duration.clone()),
        justification: r.spec.justification.clone(),
        granted_by: crate::wire::DEFAULT_OPERATOR_USER.into(),
        origin_request: Some(OriginRequest {
            name: name.clone(),
            uid: "planned".into(),
        }),
        revocation: None,
        ratifications: vec![],
    };
    let approved = Some(OriginFacts {
        uid_matches: true,
        approved: true,
        undecided: false,
    });
    let binding_decision = j.decide(&ns, &spec, now, None, approved);
    granted(&mut item, &binding_decision);
    let refusal = binding_decision.refusal.as_ref();

    // The votes, as the operator's quorum counts them on the live managers.
    let managers = world.managers(&ns, now);
    let live_uid = live.and_then(|l| l.uid());
    let annotations = live.and_then(|l| l.metadata.annotations.as_ref());
    // Groups are known only for votes the API server has stamped already.
    let stamped = live.map(|l| l.spec.approvals.len()).unwrap_or(0);
    let manager_set = managers;
    let voters = voters(&r.spec, annotations, stamped, &manager_set, config);
    // The requester's groups are known from the creator stamp once the
    // request exists; before, the request will be the caller's own (the
    // plugin files it as the caller), with groups not known yet: a group
    // subject's requester then does not count in the plan.
    let requester = match live {
        Some(_) => requester(&r.spec, annotations, &manager_set, config),
        None => {
            let own = std::collections::BTreeMap::from([(
                crate::wire::CREATED_BY_ANNOTATION.to_owned(),
                r.spec.requester.clone(),
            )]);
            let mut planned = requester(&r.spec, Some(&own), &manager_set, config);
            planned.verified &= r.spec.subject.kind != SubjectKind::Group;
            planned
        }
    };
    let existing = match Snapshot::binding(world, &ns, &name) {
        None => ExistingBinding::None,
        Some(b) => made_from(&b, live_uid.as_deref()),
    };
    let facts = RequestFacts {
        spec: &r.spec,
        created: live
            .and_then(|l| l.metadata.creation_timestamp.as_ref())
            .map(crate::api::time::from_k8s)
            .unwrap_or(now),
        previous: live.and_then(|l| l.status.as_ref()),
        workspace: ws.map(|w| RequestWorkspace {
            policy: &w.spec.approval_policy,
            max_duration: &w.spec.max_duration,
            qualifying_managers: crate::policy::quorum::qualifying_managers(&r.spec, &manager_set),
        }),
        role_problem: refusal.filter(|r| !r.is_transient()).map(|r| (r.reason(), r.message())),
        requester,
        // Lockouts are the operator's to apply (see the binding's plan).
        lockout: None,
        locked_voters: &[],
        voters: &voters,
        binding: existing,
        now,
    };
    let d = decide_request(&facts);

    // The effective duration: the binding the policy would create, or (not
    // approved yet) the expiry the binding decision caps.
    item.effective = match (&d.create_binding, binding_decision.expires_at) {
        (Some(plan), _) if plan.capped => Some(format!("{} (capped by maxDuration)", plan.duration)),
        (Some(plan), _) => Some(plan.duration.to_string()),
        (None, Some(expires)) if ws.is_some() => {
            let granted = expires - now;
            Some(if granted < r.spec.duration.to_chrono() {
                format!("{} (capped by maxDuration)", short_duration(granted))
            } else {
                r.spec.duration.to_string()
            })
        }
        _ => None,
    };

    let reachable = d.phase != RequestPhase::QuorumUnreachable;
    let phase = match d.phase {
        // The operator creates the binding right after recording the approval.
        RequestPhase::Approved if d.problem.is_none() => RequestPhase::Granted,
        p => p,
    };
    if ws.is_some() {
        item.votes = Some(RequestVotes {
            required: d.required,
            counted: d.approved_by.clone(),
            can_still_approve: approvers
                .iter()
                .filter(|m| !d.approved_by.contains(m))
                .cloned()
                .collect(),
            reachable,
            phase,
            ignored: d.ignored.clone(),
        });
    }
    let break_glass = item.partner_break_glass.unwrap_or(false);
    item.outcome = match (&d.problem, refusal.filter(|r| r.is_transient())) {
        (Some(Problem::Role(reason, message)), _) => Outcome::Refused {
            reason: (*reason).into(),
            message: message.clone(),
        },
        (Some(p), _) => Outcome::Refused {
            reason: p.reason().into(),
            message: p.message(),
        },
        (None, Some(r)) => Outcome::Waits {
            reason: r.reason().into(),
            message: r.message(),
        },
        (None, None) => match d.phase {
            RequestPhase::Approved | RequestPhase::Granted => Outcome::Granted {
                approved_by: d.approved_by.clone(),
                break_glass_by: d.break_glass_by.clone(),
            },
            RequestPhase::Denied => Outcome::Denied {
                by: d.denied_by.clone().unwrap_or_default(),
            },
            RequestPhase::Expired => Outcome::Expired,
            RequestPhase::QuorumUnreachable if break_glass => Outcome::QuorumUnreachable {
                required: d.required,
                managers: approvers.len(),
            },
            RequestPhase::QuorumUnreachable => Outcome::Refused {
                reason: "QuorumUnreachable".into(),
                message: format!(
                    "{} manager(s) could approve, {} needed, and the workspace does not allow partner break-glass",
                    approvers.len(),
                    d.required
                ),
            },
            RequestPhase::Pending => Outcome::NeedsApproval {
                required: d.required,
                approved: d.approved_by.len(),
            },
        },
    };
    if d.approved_by.first() == Some(&r.spec.requester) {
        item.notes.push(format!(
            "the requester {} is a manager: the request counts as their approval",
            r.spec.requester
        ));
    }
    if r.spec.approvals.len() > stamped {
        item.notes.push(
            "the voters' groups are stamped by the API server when the votes are applied and cannot be known here: \
             a partner named only by group, or a voter in the subject group, is not recognised in this plan"
                .into(),
        );
    }
    if let Some(phase) = live.and_then(|l| l.status.as_ref()).and_then(|s| s.phase) {
        item.notes
            .push(format!("updates the existing request (phase {phase:?})"));
    }
    item
}

/// Judges every RoleBinding and RoleRequest of the manifests. `world` must
/// already be overlaid with the manifests' Workspaces and Projects.
pub fn plan(judge: &Judge<'_>, objects: &[Object]) -> Vec<PlanItem> {
    objects
        .iter()
        .filter_map(|o| match o {
            Object::RoleBinding(b) => Some(plan_binding(judge, b)),
            Object::RoleRequest(r) => Some(plan_request(judge, r)),
            _ => None,
        })
        .collect()
}

/// The plan for people: one block per object, then a summary line.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    for c in &plan.context {
        out.push_str(&format!("{c}\n"));
    }
    if !plan.context.is_empty() {
        out.push('\n');
    }
    for i in &plan.items {
        out.push_str(&format!(
            "{} {}/{}: {}\n",
            i.kind,
            i.namespace,
            i.name,
            i.outcome.summary()
        ));
        let mut f = vec![
            ("subject", i.subject.clone()),
            ("role", i.role.clone()),
            (
                "workspace",
                i.workspace.clone().unwrap_or_else(|| "none owns this namespace".into()),
            ),
        ];
        if i.workspace.is_some() {
            f.push((
                "approvers",
                if i.approvers.is_empty() {
                    "no manager but the subject".into()
                } else {
                    i.approvers.join(", ")
                },
            ));
            if let Some(q) = i.quorum {
                f.push(("quorum", q.to_string()));
            }
            if let Some(v) = &i.votes {
                f.push((
                    "counted",
                    if v.counted.is_empty() {
                        format!("nobody yet (0/{})", v.required)
                    } else {
                        format!("{} ({}/{})", v.counted.join(", "), v.counted.len(), v.required)
                    },
                ));
                f.push((
                    "can approve",
                    if v.can_still_approve.is_empty() {
                        "no other manager".into()
                    } else {
                        v.can_still_approve.join(", ")
                    },
                ));
                f.push((
                    "reachable",
                    if v.reachable {
                        "yes".into()
                    } else {
                        "no: fewer managers than the quorum, only a partner can approve".into()
                    },
                ));
                for ignored in &v.ignored {
                    f.push(("ignored", format!("{} ({:?})", ignored.user, ignored.reason)));
                }
            }
            if let Some(bg) = i.partner_break_glass {
                f.push((
                    "break-glass",
                    if bg {
                        "allowed: a partner may approve alone".into()
                    } else {
                        "not allowed".into()
                    },
                ));
            }
            f.push((
                "expiry",
                format!(
                    "asked {}, cap {}, effective {}",
                    i.asked,
                    i.max_duration.clone().unwrap_or_default(),
                    i.effective.clone().unwrap_or_else(|| "?".into())
                ),
            ));
            if let Some(v) = &i.votes {
                f.push(("phase", format!("would be {:?}", v.phase)));
            }
        }
        for n in &i.notes {
            f.push(("note", n.clone()));
        }
        out.push_str(&fields(&f, 2));
        if let Some(p) = &i.permissions {
            out.push_str("  grants:\n");
            out.push_str(&super::format::permissions(p, &i.grants_in, 4));
        }
        out.push('\n');
    }
    let refused = plan.items.iter().filter(|i| i.outcome.is_refused()).count();
    out.push_str(&format!(
        "{} object(s) planned, {refused} would be refused\n",
        plan.items.len()
    ));
    out
}

/// Reads the manifests and the live world, and prints the plan:
/// [`NOT_IN_EFFECT`] when anything would be refused.
pub(super) async fn command(g: &Global, a: &PlanArgs) -> Result<u8, PluginError> {
    let text = if a.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| PluginError::Input(format!("reading standard input: {e}")))?
    } else {
        std::fs::read_to_string(&a.file).map_err(|e| PluginError::Input(format!("{}: {e}", a.file.display())))?
    };
    let objects = crate::api::documents::parse_documents(&text)
        .map_err(|e| PluginError::Input(format!("{}: {e}", a.file.display())))?;
    let config = match &a.operator_config {
        Some(path) => crate::config::Config::from_file(path).map_err(|e| PluginError::Input(e.to_string()))?,
        None => crate::config::Config::default(),
    };
    let (client, default_ns) = connect(g).await?;
    let mut world = World {
        workspaces: Api::<Workspace>::all(client.clone())
            .list(&ListParams::default())
            .await
            .map_err(api_err("listing workspaces"))?
            .items,
        ..Default::default()
    };
    let mut namespaces: Vec<String> = objects
        .iter()
        .filter_map(|o| match o {
            crate::api::documents::Object::Workspace(_) | crate::api::documents::Object::Lockout(_) => None,
            crate::api::documents::Object::Project(p) => p.namespace(),
            crate::api::documents::Object::RoleBinding(b) => b.namespace(),
            crate::api::documents::Object::RoleRequest(r) => r.namespace(),
        })
        .collect();
    namespaces.push(default_ns.clone());
    namespaces.sort();
    namespaces.dedup();
    namespaces.retain(|ns| world.workspace_of(ns).is_some());
    for ns in &namespaces {
        let list = ListParams::default();
        let what = format!("reading workspace namespace {ns}");
        world.projects.extend(
            Api::<crate::api::Project>::namespaced(client.clone(), ns)
                .list(&list)
                .await
                .map_err(api_err(what.clone()))?
                .items,
        );
        world.bindings.extend(
            Api::<RoleBinding>::namespaced(client.clone(), ns)
                .list(&list)
                .await
                .map_err(api_err(what.clone()))?
                .items,
        );
        world.requests.extend(
            Api::<RoleRequest>::namespaced(client.clone(), ns)
                .list(&list)
                .await
                .map_err(api_err(what))?
                .items,
        );
    }
    let context = overlay(&mut world, &objects);
    let judge = Judge {
        world: &world,
        config: &config,
        default_ns: &default_ns,
        now: Utc::now(),
    };
    let mut items = plan(&judge, &objects);
    if items.iter().any(|i| i.cluster_role.is_some()) {
        let read = Api::<ClusterRole>::all(client.clone())
            .list(&ListParams::default())
            .await;
        let why = read.as_ref().err().map(|e| match e {
            kube::Error::Api(s) => format!("cannot read ClusterRoles ({})", s.message),
            e => format!("cannot read ClusterRoles ({e})"),
        });
        let roles = read.map(|l| l.items).unwrap_or_default();
        let roles = match &why {
            None => Ok(&roles[..]),
            Some(why) => Err(why.as_str()),
        };
        fill_permissions(&mut items, roles, &world);
    }
    let p = Plan { context, items };
    if g.output == Output::Json {
        emit_json(&p);
    } else {
        emit(&render(&p));
    }
    Ok(if p.any_refused() { NOT_IN_EFFECT } else { 0 })
}

#[cfg(test)]
mod tests;
