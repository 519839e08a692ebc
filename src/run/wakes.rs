//! What wakes what: the relays (see [`relay`]) that tell a controller of a
//! change to an object its objects depend on, after the cache took the
//! change in; and whose native bindings are whose.

use std::sync::Arc;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{Role as NativeRole, RoleBinding as NativeBinding};
use kube::ResourceExt;
use kube::api::{Api, ObjectMeta, PartialObjectMeta};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::sync::mpsc::UnboundedSender;

use crate::api::{Lockout, Project, RoleBinding, RoleRequest, SubjectKind, Workspace};
use crate::rbac::NativeGrant;
use crate::reconcile::Context;
use crate::reconcile::index::Index;
use crate::reconcile::relay::relay;
use crate::wire::{BINDING_UID_LABEL, CONTROL_NAMESPACE_LABEL, MANAGED_BY, MANAGED_BY_LABEL, WORKSPACE_LABEL};

/// Bindings gone from the API server, to reap what they left behind.
pub(super) fn deleted_bindings(
    tx: UnboundedSender<RoleBinding>,
) -> impl FnMut(&Result<watcher::Event<RoleBinding>, watcher::Error>) + Send + 'static {
    move |event| {
        if let Ok(watcher::Event::Delete(b)) = event {
            let _ = tx.send(b.clone());
        }
    }
}

/// What a binding's change decides, once the cache shows it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Woken {
    /// Requests to decide again.
    pub requests: Vec<ObjectRef<RoleRequest>>,
    /// Bindings to decide again.
    pub bindings: Vec<ObjectRef<RoleBinding>>,
    /// Workspaces whose counts changed.
    pub workspaces: Vec<ObjectRef<Workspace>>,
}

/// The indexes and caches that say who depends on a binding.
pub(super) struct BindingDependents {
    /// Requests by namespace.
    pub requests: Arc<Index>,
    /// Foureyes bindings by namespace.
    pub bindings: Arc<Index>,
    /// The foureyes bindings.
    pub store: reflector::Store<RoleBinding>,
    /// Workspaces by control namespace.
    pub workspaces: Arc<Index>,
}

impl BindingDependents {
    /// Who depends on `b`, which just changed: the requests of its
    /// namespace for a manager's binding (the quorum may change), the request
    /// it was made from; for a manager's binding, the bindings of its
    /// namespace not in effect yet (whether its holder may grant changed);
    /// the workspace of its namespace (its counts).
    pub fn of(&self, b: &RoleBinding) -> Woken {
        let ns = b.namespace().unwrap_or_default();
        let bindings = if b.spec.workspace_role == Some(crate::api::WorkspaceRole::Manager) {
            self.bindings
                .get(&ns)
                .into_iter()
                .map(|name| ObjectRef::new(&name).within(&ns))
                .filter(|r| {
                    self.store.get(r).is_some_and(|other| {
                        other.uid() != b.uid()
                            && other
                                .status
                                .as_ref()
                                .and_then(|s| s.phase)
                                .is_none_or(|p| p == crate::api::BindingPhase::Pending)
                    })
                })
                .collect()
        } else {
            vec![]
        };
        Woken {
            requests: requests_touched_by_binding(b, &self.requests),
            bindings,
            workspaces: self
                .workspaces
                .get(&ns)
                .iter()
                .map(|name| ObjectRef::new(name))
                .collect(),
        }
    }
}

/// A binding's phase, spec or deletion decides others (see
/// [`BindingDependents::of`]); they are told once the cache shows it.
pub(super) fn dependents_of_binding(
    rr_tx: UnboundedSender<ObjectRef<RoleRequest>>,
    rb_tx: UnboundedSender<ObjectRef<RoleBinding>>,
    ws_tx: UnboundedSender<ObjectRef<Workspace>>,
    dependents: BindingDependents,
) -> impl FnMut(&Result<watcher::Event<RoleBinding>, watcher::Error>) + Send + 'static {
    relay(
        |b: &RoleBinding| {
            (
                b.metadata.generation,
                b.status.as_ref().and_then(|s| s.phase),
                b.metadata.deletion_timestamp.is_some(),
            )
        },
        move |b| {
            let woken = dependents.of(b);
            for r in woken.requests {
                let _ = rr_tx.send(r);
            }
            for r in woken.bindings {
                let _ = rb_tx.send(r);
            }
            for r in woken.workspaces {
                let _ = ws_tx.send(r);
            }
        },
    )
}

/// A workspace's spec, readiness and deletion decide its bindings and
/// requests.
pub(super) fn dependents_of_workspace(
    rb_tx: UnboundedSender<ObjectRef<RoleBinding>>,
    rr_tx: UnboundedSender<ObjectRef<RoleRequest>>,
    bindings: Arc<Index>,
    requests: Arc<Index>,
) -> impl FnMut(&Result<watcher::Event<Workspace>, watcher::Error>) + Send + 'static {
    relay(
        |ws: &Workspace| {
            (
                ws.metadata.generation,
                ws.is_ready(),
                ws.metadata.deletion_timestamp.is_some(),
            )
        },
        move |ws: &Workspace| {
            let ns = ws.control_namespace();
            for name in bindings.get(&ns) {
                let _ = rb_tx.send(ObjectRef::new(&name).within(&ns));
            }
            for name in requests.get(&ns) {
                let _ = rr_tx.send(ObjectRef::new(&name).within(&ns));
            }
        },
    )
}

/// A workspace's projects follow every change of it.
pub(super) fn projects_of_workspace(
    tx: UnboundedSender<ObjectRef<Project>>,
    projects: Arc<Index>,
) -> impl FnMut(&Result<watcher::Event<Workspace>, watcher::Error>) + Send + 'static {
    relay(
        |ws: &Workspace| ws.metadata.resource_version.clone(),
        move |ws: &Workspace| {
            let ns = ws.control_namespace();
            for name in projects.get(&ns) {
                let _ = tx.send(ObjectRef::new(&name).within(&ns));
            }
        },
    )
}

/// A project's role map, namespaces and deletion decide its bindings.
pub(super) fn bindings_of_project(
    tx: UnboundedSender<ObjectRef<RoleBinding>>,
    bindings: reflector::Store<RoleBinding>,
    by_namespace: Arc<Index>,
) -> impl FnMut(&Result<watcher::Event<Project>, watcher::Error>) + Send + 'static {
    relay(
        |p: &Project| {
            (
                p.metadata.generation,
                p.status.as_ref().map(|s| s.namespaces.clone()),
                p.metadata.deletion_timestamp.is_some(),
            )
        },
        move |p: &Project| {
            let (ns, name) = (p.namespace().unwrap_or_default(), p.name_any());
            for b in by_namespace.get(&ns) {
                let r = ObjectRef::new(&b).within(&ns);
                if bindings
                    .get(&r)
                    .is_some_and(|b| b.spec.project.as_deref() == Some(name.as_str()))
                {
                    let _ = tx.send(r);
                }
            }
        },
    )
}

/// A request's decision decides the binding made from it (named after
/// it): its approval authorises it, another decision recorded later
/// takes that back.
pub(super) fn binding_of_request(
    tx: UnboundedSender<ObjectRef<RoleBinding>>,
) -> impl FnMut(&Result<watcher::Event<RoleRequest>, watcher::Error>) + Send + 'static {
    relay(
        |r: &RoleRequest| r.status.as_ref().and_then(|s| s.phase),
        move |r: &RoleRequest| {
            if let Some(ns) = r.namespace() {
                let _ = tx.send(ObjectRef::new(&r.name_any()).within(&ns));
            }
        },
    )
}

/// A lockout's coming, expiry mark or lifting decides the bindings of its
/// subject (they end) and every open request (its subject or a voter may be
/// locked out): they are told once the cache shows the lockout, so that
/// their reconcilers find it there. Its status changes wake nobody.
pub(super) fn dependents_of_lockout(
    rb_tx: UnboundedSender<ObjectRef<RoleBinding>>,
    rr_tx: UnboundedSender<ObjectRef<RoleRequest>>,
    bindings: reflector::Store<RoleBinding>,
    requests: reflector::Store<RoleRequest>,
) -> impl FnMut(&Result<watcher::Event<Lockout>, watcher::Error>) + Send + 'static {
    relay(
        |l: &Lockout| {
            (
                l.metadata.generation,
                l.labels().contains_key(crate::wire::LOCKOUT_EXPIRED_LABEL),
                l.metadata.deletion_timestamp.is_some(),
            )
        },
        move |l: &Lockout| {
            for b in bindings.state() {
                if b.spec.subject == l.spec.subject {
                    let _ = rb_tx.send(ObjectRef::from_obj(b.as_ref()));
                }
            }
            for r in requests.state() {
                if !crate::policy::quorum::is_decided(r.status.as_ref().and_then(|s| s.phase)) {
                    let _ = rr_tx.send(ObjectRef::from_obj(r.as_ref()));
                }
            }
        },
    )
}

/// The lockouts whose subject is `kind`/`name` (as RBAC names subject kinds).
fn lockouts_naming<'a>(
    lockouts: &'a reflector::Store<Lockout>,
    kind: &'a str,
    name: &'a str,
) -> impl Iterator<Item = ObjectRef<Lockout>> + 'a {
    lockouts.state().into_iter().filter_map(move |l| {
        let k = match l.spec.subject.kind {
            SubjectKind::User => "User",
            SubjectKind::Group => "Group",
        };
        (k == kind && l.spec.subject.name == name).then(|| ObjectRef::from_obj(l.as_ref()))
    })
}

/// A binding's phase changes what the lockouts of its subject report.
pub(super) fn lockouts_of_binding(
    tx: UnboundedSender<ObjectRef<Lockout>>,
    lockouts: reflector::Store<Lockout>,
) -> impl FnMut(&Result<watcher::Event<RoleBinding>, watcher::Error>) + Send + 'static {
    relay(
        |b: &RoleBinding| b.status.as_ref().and_then(|s| s.phase),
        move |b: &RoleBinding| {
            if lockouts.is_empty() {
                return;
            }
            for l in lockouts.state() {
                if l.spec.subject == b.spec.subject {
                    let _ = tx.send(ObjectRef::from_obj(l.as_ref()));
                }
            }
        },
    )
}

/// A request's phase changes what the lockouts of its subject (or of a
/// user who voted on it) report.
pub(super) fn lockouts_of_request(
    tx: UnboundedSender<ObjectRef<Lockout>>,
    lockouts: reflector::Store<Lockout>,
) -> impl FnMut(&Result<watcher::Event<RoleRequest>, watcher::Error>) + Send + 'static {
    relay(
        |r: &RoleRequest| r.status.as_ref().and_then(|s| s.phase),
        move |r: &RoleRequest| {
            if lockouts.is_empty() {
                return;
            }
            for l in lockouts.state() {
                let s = &l.spec.subject;
                let voted = s.kind == SubjectKind::User
                    && (r.spec.requester == s.name || r.spec.approvals.iter().any(|a| a.user == s.name));
                if r.spec.subject == *s || voted {
                    let _ = tx.send(ObjectRef::from_obj(l.as_ref()));
                }
            }
        },
    )
}

/// Native RBAC outside foureyes changed for these subjects: the lockouts
/// naming them report it.
pub(super) fn lockouts_of_subjects(
    tx: &UnboundedSender<ObjectRef<Lockout>>,
    lockouts: &reflector::Store<Lockout>,
    subjects: &std::collections::BTreeSet<(String, String)>,
) {
    for (kind, name) in subjects {
        for l in lockouts_naming(lockouts, kind, name) {
            let _ = tx.send(l);
        }
    }
}

/// The requests to decide again when a binding changes: every request of the
/// namespace for a manager binding (the quorum may change), the origin
/// request for a binding made from one.
fn requests_touched_by_binding(b: &RoleBinding, requests: &Index) -> Vec<ObjectRef<RoleRequest>> {
    let ns = b.namespace().unwrap_or_default();
    if b.spec.workspace_role == Some(crate::api::WorkspaceRole::Manager) {
        requests
            .get(&ns)
            .into_iter()
            .map(|name| ObjectRef::new(&name).within(&ns))
            .collect()
    } else {
        b.spec
            .origin_request
            .as_ref()
            .map(|o| ObjectRef::new(&o.name).within(&ns))
            .into_iter()
            .collect()
    }
}

/// The objects a workspace keeps in its control namespace: the namespace
/// itself, its Roles and its auditor binding. A change to any of them
/// (someone edited, relabelled or deleted one) makes the workspace check
/// them again, and put them back, at once: the reconciler otherwise trusts
/// what it last found in place (see `World::workspace_verified`).
pub(super) async fn workspace_objects(ctx: Arc<Context>) {
    let client = ctx.client.clone();
    let owned = format!("{MANAGED_BY_LABEL}={MANAGED_BY},{WORKSPACE_LABEL}");
    let auditors = format!("{owned},!{BINDING_UID_LABEL}");
    futures::join!(
        changes_of::<NativeRole>(&ctx, &client, &owned, |m| m.namespace.clone()),
        changes_of::<NativeBinding>(&ctx, &client, &auditors, |m| m.namespace.clone()),
        changes_of::<Namespace>(&ctx, &client, CONTROL_NAMESPACE_LABEL, |m| m.name.clone()),
    );
}

/// Watches the metadata of the objects of kind `K` that match `labels`,
/// and makes the workspace of each changed one check its objects again.
async fn changes_of<K>(
    ctx: &Arc<Context>,
    client: &kube::Client,
    labels: &str,
    namespace_of: fn(&ObjectMeta) -> Option<String>,
) where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let ctx = ctx.clone();
    watcher(
        Api::<PartialObjectMeta<K>>::all(client.clone()),
        watcher::Config::default().labels(labels),
    )
    .default_backoff()
    .inspect(relay(
        |m: &PartialObjectMeta<K>| m.metadata.resource_version.clone(),
        move |m: &PartialObjectMeta<K>| {
            if let Some(ns) = namespace_of(&m.metadata) {
                recheck_workspace_of(&ctx, &ns);
            }
        },
    ))
    .for_each(|_| futures::future::ready(()))
    .await
}

/// Makes the workspace whose control namespace is `ns` check its objects
/// again.
fn recheck_workspace_of(ctx: &Context, ns: &str) {
    for name in ctx.index.workspaces_by_namespace.get(ns) {
        if let Some(ws) = ctx.workspaces.get(&ObjectRef::new(&name)) {
            ctx.forget_workspace_verified(&ws.uid().unwrap_or_default());
            let _ = ctx.triggers.workspaces.send(ObjectRef::from_obj(ws.as_ref()));
        }
    }
}

/// The foureyes binding a native binding belongs to (from its annotation).
pub(super) fn owner_of(n: &NativeGrant) -> Option<ObjectRef<RoleBinding>> {
    let (ns, name) = n.owner()?;
    Some(ObjectRef::new(name).within(ns))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::rbac::v1::RoleBinding as NativeBinding;

    use super::*;
    use crate::wire::BINDING_REF_ANNOTATION;

    fn binding(name: &str, role: serde_json::Value, phase: Option<&str>) -> RoleBinding {
        let mut spec = serde_json::json!({
            "subject": { "kind": "User", "name": name }, "duration": "1h",
            "justification": "INC-1", "grantedBy": "carol",
        });
        spec.as_object_mut().unwrap().extend(role.as_object().unwrap().clone());
        let mut b: RoleBinding = serde_json::from_value(serde_json::json!({
            "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
            "metadata": { "name": name, "namespace": "ws-a", "uid": format!("uid-{name}") },
            "spec": spec,
        }))
        .unwrap();
        if let Some(phase) = phase {
            b.status = serde_json::from_value(serde_json::json!({ "phase": phase })).unwrap();
        }
        b
    }

    /// A manager whose binding the cache now shows Active (or gone) may
    /// authorise, or no longer authorise, the pending bindings they granted:
    /// those are decided again, after the cache took the change in (a wake
    /// sent before it would decide on the old cache, and nothing would
    /// wake them later).
    #[test]
    fn a_managers_binding_wakes_the_pending_bindings_of_its_namespace() {
        let (store, mut writer) = reflector::store::<RoleBinding>();
        let (by_namespace, requests) = (Arc::new(Index::default()), Arc::new(Index::default()));
        let manager = binding("carol", serde_json::json!({"workspaceRole": "manager"}), Some("Active"));
        let pending = binding("dave", serde_json::json!({"workspaceRole": "member"}), Some("Pending"));
        let new = binding("erin", serde_json::json!({"workspaceRole": "member"}), None);
        let active = binding("frank", serde_json::json!({"workspaceRole": "member"}), Some("Active"));
        for b in [&manager, &pending, &new, &active] {
            let event = watcher::Event::Apply(b.clone());
            writer.apply_watcher_event(&event);
            by_namespace.observe(&event, |b: &RoleBinding| Some(("ws-a".into(), b.name_any())));
        }
        let workspaces = Arc::new(Index::default());
        workspaces.observe(&watcher::Event::Apply(()), |_| Some(("ws-a".into(), "a".into())));
        let dependents = BindingDependents {
            requests,
            bindings: by_namespace,
            store,
            workspaces,
        };
        let mut woken: Vec<String> = dependents.of(&manager).bindings.into_iter().map(|r| r.name).collect();
        woken.sort();
        assert_eq!(woken, vec!["dave", "erin"]);
        assert!(
            dependents.of(&pending).bindings.is_empty(),
            "a member's binding authorises nobody"
        );
        let counted: Vec<String> = dependents.of(&pending).workspaces.into_iter().map(|r| r.name).collect();
        assert_eq!(counted, vec!["a"], "every binding counts in its workspace");
    }

    #[test]
    fn owner_of_reads_the_annotation() {
        let mut n = NativeBinding::default();
        assert!(owner_of(&NativeGrant::from(&n)).is_none());
        n.metadata.annotations = Some([(BINDING_REF_ANNOTATION.to_owned(), "ws-a/grant".to_owned())].into());
        let r = owner_of(&NativeGrant::from(&n)).unwrap();
        assert_eq!((r.namespace.as_deref(), r.name.as_str()), (Some("ws-a"), "grant"));
    }
}
