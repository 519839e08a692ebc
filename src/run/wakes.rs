//! What wakes what: the relays (see [`relay`]) that tell a controller of a
//! change to an object its objects depend on, after the cache took the
//! change in; and whose native bindings are whose.

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher;
use tokio::sync::mpsc::UnboundedSender;

use crate::api::{Project, RoleBinding, RoleRequest, Workspace};
use crate::rbac::NativeGrant;
use crate::reconcile::index::Index;
use crate::reconcile::relay::relay;

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

/// A binding's phase or spec decides the requests of its namespace (a
/// manager's) or the one it was made from.
pub(super) fn requests_of_binding(
    tx: UnboundedSender<ObjectRef<RoleRequest>>,
    requests: Arc<Index>,
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
            for r in requests_touched_by_binding(b, &requests) {
                let _ = tx.send(r);
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

    #[test]
    fn owner_of_reads_the_annotation() {
        let mut n = NativeBinding::default();
        assert!(owner_of(&NativeGrant::from(&n)).is_none());
        n.metadata.annotations = Some([(BINDING_REF_ANNOTATION.to_owned(), "ws-a/grant".to_owned())].into());
        let r = owner_of(&NativeGrant::from(&n)).unwrap();
        assert_eq!((r.namespace.as_deref(), r.name.as_str()), (Some("ws-a"), "grant"));
    }
}
