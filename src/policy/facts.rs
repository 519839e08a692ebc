//! Gathering what a decision needs, from the operator's caches or from the
//! plugin's snapshot of the cluster: one code for both, so that
//! `kubectl access plan` and `list` judge as the operator does.
//!
//! A [`Snapshot`] says what is there; [`binding_world`] and
//! [`request_world`] gather the workspace, project, managers and bindings a
//! decision looks at. What the two callers deliberately see differently is
//! an explicit parameter or left to the caller ([`Vantage`]): the plugin
//! judges a change before it is applied (a new project's namespaces are
//! those it asks for), and it cannot see the admission stamps of writes not
//! made yet.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use kube::ResourceExt;

use super::binding::{ProjectFacts, WorkspaceFacts};
use super::managers::managers;
use super::quorum::ExistingBinding;
use crate::api::{Project, RoleBinding, RoleBindingSpec, RoleRequest, Workspace};

/// Where the objects come from.
pub trait Snapshot {
    /// The workspace whose control namespace is `ns`.
    fn workspace_of(&self, ns: &str) -> Option<Arc<Workspace>>;
    /// The project `name` in `ns`, unless it is being deleted.
    fn project(&self, ns: &str, name: &str) -> Option<Arc<Project>>;
    /// The foureyes bindings in `ns`, each with its newest status.
    fn bindings_in(&self, ns: &str) -> Vec<Arc<RoleBinding>>;
    /// The binding `name` in `ns`.
    fn binding(&self, ns: &str, name: &str) -> Option<Arc<RoleBinding>>;
    /// The request `name` in `ns`.
    fn request(&self, ns: &str, name: &str) -> Option<Arc<RoleRequest>>;

    /// The users who are managers of the workspace of `ns` now.
    fn managers(&self, ns: &str, now: DateTime<Utc>) -> super::managers::Managers {
        managers(self.bindings_in(ns).iter().map(|b| b.as_ref()), now)
    }
}

/// A snapshot over listed objects: what the plugin reads from the cluster
/// (and what tests build by hand).
#[derive(Debug, Clone, Default)]
pub struct Listed {
    /// Every workspace.
    pub workspaces: Vec<Workspace>,
    /// The projects of the workspaces concerned.
    pub projects: Vec<Project>,
    /// The foureyes bindings of the workspaces concerned.
    pub bindings: Vec<RoleBinding>,
    /// The requests of the workspaces concerned (to tell a new object from an update).
    pub requests: Vec<RoleRequest>,
}

impl Listed {
    /// The workspace whose control namespace is `ns`.
    pub fn workspace_of(&self, ns: &str) -> Option<&Workspace> {
        self.workspaces.iter().find(|w| control_namespace(w) == ns)
    }
}

/// The control namespace of a workspace: as its status reports, or as its spec implies.
pub fn control_namespace(ws: &Workspace) -> String {
    ws.status
        .as_ref()
        .and_then(|s| s.namespace.clone())
        .unwrap_or_else(|| ws.control_namespace())
}

fn in_namespace<'a, K: kube::Resource>(objects: &'a [K], ns: &'a str) -> impl Iterator<Item = &'a K> {
    objects
        .iter()
        .filter(move |o| o.meta().namespace.as_deref() == Some(ns))
}

fn named<K: kube::Resource + Clone>(objects: &[K], ns: &str, name: &str) -> Option<Arc<K>> {
    in_namespace(objects, ns)
        .find(|o| o.meta().name.as_deref() == Some(name))
        .cloned()
        .map(Arc::new)
}

impl Snapshot for Listed {
    fn workspace_of(&self, ns: &str) -> Option<Arc<Workspace>> {
        Listed::workspace_of(self, ns).cloned().map(Arc::new)
    }

    fn project(&self, ns: &str, name: &str) -> Option<Arc<Project>> {
        named(&self.projects, ns, name).filter(|p| p.metadata.deletion_timestamp.is_none())
    }

    fn bindings_in(&self, ns: &str) -> Vec<Arc<RoleBinding>> {
        in_namespace(&self.bindings, ns).cloned().map(Arc::new).collect()
    }

    fn binding(&self, ns: &str, name: &str) -> Option<Arc<RoleBinding>> {
        named(&self.bindings, ns, name)
    }

    fn request(&self, ns: &str, name: &str) -> Option<Arc<RoleRequest>> {
        named(&self.requests, ns, name)
    }
}

/// How the caller looks at the world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vantage {
    /// The operator: what is in place now.
    Operator,
    /// The plugin's plan: a change about to be applied, so a project that
    /// holds no namespace yet is judged with those it asks for, and a
    /// workspace's readiness is the operator's business.
    Plan,
}

/// What a binding's decision looks at in its workspace.
pub struct BindingWorld {
    /// The workspace of the binding's namespace.
    pub workspace: Option<Arc<Workspace>>,
    workspace_name: String,
    workspace_uid: String,
    /// The binding's project (project roles).
    pub project: Option<Arc<Project>>,
    project_uid: String,
    project_namespaces: Vec<String>,
    /// The managers now.
    pub managers: super::managers::Managers,
    vantage: Vantage,
}

/// Gathers what the decision of a binding with `spec` in `ns` looks at.
pub fn binding_world(
    s: &impl Snapshot,
    ns: &str,
    spec: &RoleBindingSpec,
    now: DateTime<Utc>,
    vantage: Vantage,
) -> BindingWorld {
    let workspace = s.workspace_of(ns);
    let project = spec.project.as_ref().and_then(|p| s.project(ns, p));
    let project_namespaces = project
        .as_ref()
        .map(|p| {
            let held = p.status.as_ref().map(|s| s.namespaces.clone()).unwrap_or_default();
            match vantage {
                Vantage::Plan if held.is_empty() => p.spec.namespaces.clone(),
                _ => held,
            }
        })
        .unwrap_or_default();
    BindingWorld {
        workspace_name: workspace.as_ref().map(|w| w.name_any()).unwrap_or_default(),
        workspace_uid: workspace.as_ref().and_then(|w| w.uid()).unwrap_or_default(),
        project_uid: project.as_ref().and_then(|p| p.uid()).unwrap_or_default(),
        managers: s.managers(ns, now),
        workspace,
        project,
        project_namespaces,
        vantage,
    }
}

impl BindingWorld {
    /// The workspace as the binding decision sees it.
    pub fn workspace_facts<'a>(&'a self, ns: &'a str) -> Option<WorkspaceFacts<'a>> {
        self.workspace.as_ref().map(|w| WorkspaceFacts {
            name: &self.workspace_name,
            uid: &self.workspace_uid,
            namespace: ns,
            policy: &w.spec.approval_policy,
            max_duration: w.spec.max_duration.to_chrono(),
            restrict_partner_self_assignment: w.spec.restrict_partner_self_assignment,
            ready: self.vantage == Vantage::Plan || w.is_ready(),
        })
    }

    /// The project as the binding decision sees it.
    pub fn project_facts(&self) -> Option<ProjectFacts<'_>> {
        self.project.as_ref().map(|p| ProjectFacts {
            uid: &self.project_uid,
            namespaces: &self.project_namespaces,
            role_map: &p.spec.role_map,
        })
    }

    /// Whether `user` is a manager now.
    pub fn is_manager(&self, user: &str) -> bool {
        self.managers.contains(user)
    }

    /// The workspace's cap on any grant.
    pub fn max_duration(&self) -> Option<Duration> {
        self.workspace.as_ref().map(|w| w.spec.max_duration.to_chrono())
    }
}

/// What a request's decision looks at in its workspace.
pub struct RequestWorld {
    /// The workspace of the request's namespace.
    pub workspace: Option<Arc<Workspace>>,
    /// The managers now.
    pub managers: super::managers::Managers,
    /// The binding named after the request, and whether it was made from it.
    pub binding: ExistingBinding,
}

/// Gathers what the decision of request `r` (uid `uid`, or none yet) in
/// `ns` looks at.
pub fn request_world(
    s: &impl Snapshot,
    ns: &str,
    r: &RoleRequest,
    uid: Option<&str>,
    now: DateTime<Utc>,
) -> RequestWorld {
    RequestWorld {
        workspace: s.workspace_of(ns),
        managers: s.managers(ns, now),
        binding: match s.binding(ns, &r.name_any()) {
            None => ExistingBinding::None,
            Some(b) => made_from(&b, uid),
        },
    }
}

/// Whether `b` is the binding made from the request with `uid`.
pub fn made_from(b: &RoleBinding, uid: Option<&str>) -> ExistingBinding {
    match (&b.spec.origin_request, uid) {
        (Some(o), Some(uid)) if o.uid == uid => ExistingBinding::Ours,
        _ => ExistingBinding::Foreign,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn manager(name: &str, kind: &str) -> RoleBinding {
        serde_json::from_value(json!({
            "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
            "metadata": { "name": name.replace(':', "-"), "namespace": "ws-a" },
            "spec": { "subject": { "kind": kind, "name": name }, "workspaceRole": "manager",
                      "duration": "1h", "justification": "x", "grantedBy": "pat" },
            "status": { "phase": "Active", "expiresAt": "2999-01-01T00:00:00Z" },
        }))
        .unwrap()
    }

    fn objects() -> Listed {
        Listed {
            workspaces: vec![
                serde_json::from_value(json!({
                    "apiVersion": "foureyes.dev/v1alpha1", "kind": "Workspace",
                    "metadata": { "name": "a", "uid": "w-1" }, "spec": {},
                }))
                .unwrap(),
            ],
            projects: vec![
                serde_json::from_value(json!({
                    "apiVersion": "foureyes.dev/v1alpha1", "kind": "Project",
                    "metadata": { "name": "app", "namespace": "ws-a", "uid": "p-1" },
                    "spec": { "namespaces": ["a-app"] },
                }))
                .unwrap(),
            ],
            bindings: vec![
                manager("alice", "User"),
                manager("ops", "Group"),
                manager("system:serviceaccount:x:y", "User"),
            ],
            requests: vec![],
        }
    }

    fn spec() -> RoleBindingSpec {
        serde_json::from_value(json!({
            "subject": { "kind": "User", "name": "dave" }, "project": "app", "projectRole": "reader",
            "duration": "1h", "justification": "x", "grantedBy": "alice",
        }))
        .unwrap()
    }

    /// The operator judges what is in place; the plan judges a change about
    /// to be applied (a project that holds no namespace yet counts with the
    /// ones it asks for, and readiness is the operator's business).
    #[test]
    fn the_vantage_is_the_only_difference() {
        let (o, now) = (objects(), Utc::now());
        let operator = binding_world(&o, "ws-a", &spec(), now, Vantage::Operator);
        assert!(operator.project_facts().unwrap().namespaces.is_empty());
        assert!(!operator.workspace_facts("ws-a").unwrap().ready);
        let plan = binding_world(&o, "ws-a", &spec(), now, Vantage::Plan);
        assert_eq!(plan.project_facts().unwrap().namespaces, ["a-app".to_owned()]);
        assert!(plan.workspace_facts("ws-a").unwrap().ready);
        assert_eq!(operator.workspace_facts("ws-a").unwrap().uid, "w-1");
    }

    /// Managers are users with an active manager binding: never a group,
    /// never a ServiceAccount.
    #[test]
    fn managers_are_counted_once_for_both() {
        let (o, now) = (objects(), Utc::now());
        let world = binding_world(&o, "ws-a", &spec(), now, Vantage::Operator);
        assert_eq!(world.managers.names().collect::<Vec<_>>(), ["alice"]);
        assert!(world.is_manager("alice") && !world.is_manager("ops"));
    }
}
