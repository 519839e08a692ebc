//! The transitions of workspaces and projects: created (the first entry of
//! their chain), changed (one per generation), deleted.

use super::transition::{Actor, Kind, Transition, user};
use crate::api::{Project, Workspace};
use crate::wire::{CHANGED_BY_ANNOTATION, CREATED_BY_ANNOTATION};

/// A transition of no subject and role: of a workspace, project or namespace.
pub(super) fn of(kind: Kind, actor: Actor) -> Transition {
    Transition {
        kind,
        actor,
        subject: String::new(),
        role: String::new(),
    }
}

/// Who an admission stamp names, if any.
fn stamped<K: kube::Resource>(obj: &K, key: &str) -> Actor {
    obj.meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(|u| user(u))
        .unwrap_or(Actor::Unknown)
}

/// The workspace's control namespace is in place (its creator: the
/// admission stamp).
pub fn workspace_created(ws: &Workspace) -> Transition {
    of(
        Kind::WorkspaceCreated {
            namespace: ws.control_namespace(),
            policy: workspace_policy(ws),
        },
        stamped(ws, CREATED_BY_ANNOTATION),
    )
}

/// The workspace's spec changed, as it is now, by whoever the admission
/// stamp names.
pub fn workspace_changed(ws: &Workspace) -> Transition {
    of(
        Kind::WorkspaceChanged {
            generation: ws.metadata.generation.unwrap_or_default(),
            policy: workspace_policy(ws),
        },
        stamped(ws, CHANGED_BY_ANNOTATION),
    )
}

/// The workspace was deleted and `revoked` native bindings were removed (who
/// deleted it, the API server does not say).
pub fn workspace_deleted(ws: &Workspace, revoked: usize) -> Transition {
    of(
        Kind::WorkspaceDeleted {
            namespace: ws.control_namespace(),
            revoked,
        },
        Actor::Unknown,
    )
}

/// The workspace's approval policy in words.
fn workspace_policy(ws: &Workspace) -> String {
    let p = &ws.spec.approval_policy;
    format!(
        "approvals: {} for workspace roles, {} for project roles; partner break-glass {}; pending timeout {}; max duration {}; partner self-assignment {}",
        p.workspace_role_approvals,
        p.project_role_approvals,
        if p.partner_break_glass {
            "allowed"
        } else {
            "not allowed"
        },
        p.pending_timeout,
        ws.spec.max_duration,
        if ws.spec.restrict_partner_self_assignment {
            "as member only"
        } else {
            "allowed"
        }
    )
}

/// The project exists, with its spec.
pub fn project_created(p: &Project) -> Transition {
    of(
        Kind::ProjectCreated { spec: project_spec(p) },
        stamped(p, CREATED_BY_ANNOTATION),
    )
}

/// The project's spec changed.
pub fn project_changed(p: &Project) -> Transition {
    of(
        Kind::ProjectChanged {
            generation: p.metadata.generation.unwrap_or_default(),
            spec: project_spec(p),
        },
        stamped(p, CHANGED_BY_ANNOTATION),
    )
}

/// The project was deleted and its grants ended.
pub fn project_deleted(_p: &Project) -> Transition {
    of(Kind::ProjectDeleted, Actor::Unknown)
}

fn project_spec(p: &Project) -> String {
    let roles: Vec<String> = p.spec.role_map.iter().map(|(r, c)| format!("{r}={c}")).collect();
    format!(
        "namespaces: {}; role map: {}",
        p.spec.namespaces.join(", "),
        if roles.is_empty() {
            "the configuration's".to_owned()
        } else {
            roles.join(", ")
        }
    )
}
