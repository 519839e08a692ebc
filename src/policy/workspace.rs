//! The decisions of the workspace and project reconcilers, like the
//! binding's and the request's: given what claiming the namespaces came to
//! and the bindings of the workspace, what the status says and what happened.
//! The reconcilers claim the namespaces (the API calls), call these, record
//! and announce the transitions, and write the status.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::lifecycle;
use super::managers::is_active;
use super::transition::{Actor, Kind, Transition, reason};
use crate::api::conditions::{Condition, ConditionStatus, READY, find_condition, set_condition};
use crate::api::{Project, ProjectStatus, RoleBinding, SubjectKind, Workspace, WorkspaceRole, WorkspaceStatus};

/// What claiming a namespace came to, after the claim was acted on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claimed {
    /// Created by this pass.
    Created,
    /// Taken over by this pass: it carried the claimant's labels and no uid.
    Adopted,
    /// Already the claimant's (by uid).
    Held,
    /// The claimant's, but being deleted (someone deleted the namespace;
    /// the history in it keeps it `Terminating`).
    Terminating,
    /// Claimed by another workspace or project (by uid): nothing of it is touched.
    Taken(String),
    /// May not be used: a system namespace, or an existing one not labelled
    /// for the claimant.
    Refused(String),
}

impl Claimed {
    /// Whether the claimant holds the namespace.
    pub fn is_held(&self) -> bool {
        matches!(
            self,
            Claimed::Created | Claimed::Adopted | Claimed::Held | Claimed::Terminating
        )
    }

    /// Whether the claimant holds the namespace and can create in it.
    pub fn is_usable(&self) -> bool {
        matches!(self, Claimed::Created | Claimed::Adopted | Claimed::Held)
    }

    /// Why it cannot be used, as a condition reason and a message.
    fn problem(&self, namespace: &str) -> Option<(&'static str, String)> {
        match self {
            Claimed::Taken(why) => Some((reason::NAMESPACE_TAKEN, why.clone())),
            Claimed::Refused(why) => Some((reason::NAMESPACE_REFUSED, why.clone())),
            Claimed::Terminating => Some((
                reason::NAMESPACE_TERMINATING,
                format!(
                    "namespace {namespace} is being deleted: nothing new can be created in it; access granted there keeps being revoked and recorded, and the history in it is kept"
                ),
            )),
            Claimed::Created | Claimed::Adopted | Claimed::Held => None,
        }
    }
}

/// The active bindings of a workspace, counted for its status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Subjects holding an active `manager` binding.
    pub managers: i32,
    /// Subjects holding an active `member` binding.
    pub members: i32,
    /// Active bindings of any role.
    pub active: i32,
}

/// Counts the active bindings of a workspace (a subject once per role).
pub fn counts<'a>(bindings: impl IntoIterator<Item = &'a RoleBinding>, now: DateTime<Utc>) -> Counts {
    let mut managers = BTreeSet::new();
    let mut members = BTreeSet::new();
    let mut active = 0;
    for b in bindings.into_iter().filter(|b| is_active(b, now)) {
        active += 1;
        let key = (b.spec.subject.kind == SubjectKind::Group, b.spec.subject.name.as_str());
        match b.spec.workspace_role {
            Some(WorkspaceRole::Manager) => managers.insert(key),
            Some(WorkspaceRole::Member) => members.insert(key),
            None => false,
        };
    }
    Counts {
        managers: managers.len() as i32,
        members: members.len() as i32,
        active,
    }
}

/// What the workspace reconciler does.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkspaceDecision {
    /// The status to write (its chain heads as before: the reconciler
    /// mirrors the appender's).
    pub status: WorkspaceStatus,
    /// Put the manager, member and auditor Roles and the auditor binding in
    /// the control namespace.
    pub set_up: bool,
    /// What happened: the history entries to append before the status is
    /// written, and the events to publish after.
    pub happened: Vec<Transition>,
}

/// Decides a workspace's status from what claiming its control namespace
/// came to (`None`: not looked at, because this process found it and the
/// Roles in place at this generation and no watch saw them change since) and
/// the counts of its bindings.
pub fn decide_workspace(
    ws: &Workspace,
    claimed: Option<&Claimed>,
    counts: Counts,
    now: DateTime<Utc>,
) -> WorkspaceDecision {
    let previous = ws.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    status.observed_generation = ws.metadata.generation;
    let ns = ws.control_namespace();
    let was_ready = ws.is_ready();
    let mut happened = vec![];
    let problem = claimed.and_then(|c| c.problem(&ns));
    let set_up = claimed.is_some() && problem.is_none();
    if let Some(claimed) = claimed {
        let ready = match problem {
            Some((why, message)) => {
                if !matches!(find_condition(&previous.conditions, READY),
                    Some(c) if c.reason == why && c.message == message)
                {
                    happened.push(namespace_unusable(why, message.clone()));
                }
                Condition::new(READY, ConditionStatus::False, why, message, ws.metadata.generation, now)
            }
            None => {
                if *claimed == Claimed::Created {
                    happened.push(namespace_claimed(
                        reason::NAMESPACE_READY,
                        format!("control namespace {ns} created"),
                    ));
                }
                Condition::new(
                    READY,
                    ConditionStatus::True,
                    "Ready",
                    format!("control namespace {ns} in place"),
                    ws.metadata.generation,
                    now,
                )
            }
        };
        set_condition(&mut status.conditions, ready);
        // Not this workspace's: nothing of it resolves to this workspace.
        status.namespace = claimed.is_held().then(|| ns.clone());
    }
    if status.namespace.is_some() {
        status.managers = counts.managers;
        status.members = counts.members;
        status.active_bindings = counts.active;
    }
    // The chain's first entry when the workspace first becomes ready; a
    // changed spec (approval policy, caps) is recorded before the status says
    // it was observed.
    if status.is_ready() && !was_ready {
        happened.push(lifecycle::workspace_created(ws));
    } else if status.namespace.is_some() && was_ready && previous.observed_generation != ws.metadata.generation {
        happened.push(lifecycle::workspace_changed(ws));
    }
    WorkspaceDecision {
        set_up,
        status,
        happened,
    }
}

/// What the project reconciler does.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectDecision {
    /// The status to write.
    pub status: ProjectStatus,
    /// Tenant namespaces it stopped holding: its grants there end; `true`
    /// when the namespace left the spec (deleted if this project created it).
    pub release: Vec<(String, bool)>,
    /// What happened (history before the status, events after).
    pub happened: Vec<Transition>,
}

/// The project's chain records it when first seen in its workspace and at
/// every change of its spec, before the status says it was observed.
pub fn project_recorded(p: &Project) -> Option<Transition> {
    let previous = p.status.as_ref();
    let seen = previous
        .and_then(|s| find_condition(&s.conditions, READY))
        .is_some_and(|c| c.reason != reason::WORKSPACE_NOT_FOUND);
    match previous.and_then(|s| s.observed_generation) {
        _ if !seen => Some(lifecycle::project_created(p)),
        Some(g) if Some(g) != p.metadata.generation => Some(lifecycle::project_changed(p)),
        _ => None,
    }
}

/// Decides a project's status from what claiming each tenant namespace of
/// its spec came to (`None` for its workspace: none holds the namespace it
/// lives in) and its bindings.
pub fn decide_project<'a>(
    p: &Project,
    workspace: Option<&str>,
    claims: &[(String, Claimed)],
    bindings: impl IntoIterator<Item = &'a RoleBinding>,
    now: DateTime<Utc>,
) -> ProjectDecision {
    let previous = p.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    status.observed_generation = p.metadata.generation;
    let generation = p.metadata.generation;
    let previous_ready = find_condition(&previous.conditions, READY);
    let Some(_) = workspace else {
        set_condition(
            &mut status.conditions,
            Condition::new(
                READY,
                ConditionStatus::False,
                reason::WORKSPACE_NOT_FOUND,
                format!(
                    "no workspace has {} as its control namespace",
                    p.metadata.namespace.as_deref().unwrap_or_default()
                ),
                generation,
                now,
            ),
        );
        return ProjectDecision {
            status,
            release: vec![],
            happened: vec![],
        };
    };
    let mut happened: Vec<Transition> = project_recorded(p).into_iter().collect();
    let mut held: Vec<String> = vec![];
    let mut problems = vec![];
    let mut taken = false;
    for (tenant, claimed) in claims {
        match claimed {
            Claimed::Created => happened.push(namespace_claimed(
                reason::NAMESPACE_CREATED,
                format!("tenant namespace {tenant} created"),
            )),
            Claimed::Adopted => happened.push(namespace_claimed(
                reason::NAMESPACE_ADOPTED,
                format!("tenant namespace {tenant} adopted (it carried this project's labels)"),
            )),
            Claimed::Taken(why) => {
                taken = true;
                problems.push(why.clone());
            }
            Claimed::Refused(why) => problems.push(why.clone()),
            Claimed::Held | Claimed::Terminating => {}
        }
        if claimed.is_held() {
            held.push(tenant.clone());
        }
    }
    held.sort();
    // Namespaces this project no longer holds: its grants there end. Only a
    // namespace removed from the spec is released and deleted (if this very
    // project created it); one that is refused now (claimed by someone else,
    // relabelled) is never deleted.
    let release = previous
        .namespaces
        .iter()
        .filter(|n| !held.contains(n))
        .map(|n| (n.clone(), !p.spec.namespaces.contains(n)))
        .collect();
    status.namespaces = held.clone();
    let ready = if problems.is_empty() {
        Condition::new(
            READY,
            ConditionStatus::True,
            "NamespacesClaimed",
            format!("tenant namespaces: {}", held.join(", ")),
            generation,
            now,
        )
    } else {
        let why = if taken {
            reason::NAMESPACE_TAKEN
        } else {
            reason::NAMESPACE_REFUSED
        };
        let message = problems.join("; ");
        if previous_ready.is_none_or(|c| c.message != message) {
            happened.push(namespace_unusable(why, message.clone()));
        }
        Condition::new(READY, ConditionStatus::False, why, message, generation, now)
    };
    set_condition(&mut status.conditions, ready);
    let name = p.metadata.name.as_deref().unwrap_or_default();
    status.active_bindings = bindings
        .into_iter()
        .filter(|b| b.spec.project.as_deref() == Some(name) && is_active(b, now))
        .count() as i32;
    ProjectDecision {
        status,
        release,
        happened,
    }
}

fn namespace_claimed(why: &'static str, message: String) -> Transition {
    lifecycle::of(Kind::NamespaceClaimed { reason: why, message }, Actor::Operator)
}

fn namespace_unusable(why: &'static str, message: String) -> Transition {
    lifecycle::of(Kind::NamespaceUnusable { reason: why, message }, Actor::Operator)
}

#[cfg(test)]
mod tests;
