//! Survive bad objects (DESIGN §2, invariant 8): a watched object that does
//! not deserialise into our types must not break the watch, nor the cache,
//! for the others.
//!
//! Watches read `DeserializeGuard<K>`; [`unguard`] turns their events back
//! into events of `K`, reporting each unreadable object once. An object that
//! turns unreadable leaves the cache (a `Delete` of its last readable
//! version), so that nothing is decided on a stale copy of it: for a
//! binding, this means that the sweep removes its native RBAC. An access
//! tool fails closed: what the operator cannot read grants nothing.

use kube::Resource;
use kube::core::DeserializeGuard;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::Event;

/// Maps a guarded watch event to an event of `K`. `cached` looks up the last
/// readable version of an object (for a `Delete`); `invalid` is told about
/// every unreadable object seen.
pub fn unguard<K>(
    event: Event<DeserializeGuard<K>>,
    cached: impl Fn(&ObjectRef<K>) -> Option<K>,
    mut invalid: impl FnMut(&InvalidObject),
) -> Option<Event<K>>
where
    K: Resource<DynamicType = ()> + Clone,
{
    let last_readable = |bad: &InvalidObject| {
        let name = bad.metadata.name.clone().unwrap_or_default();
        let key = match bad.metadata.namespace.as_deref() {
            Some(ns) => ObjectRef::new(&name).within(ns),
            None => ObjectRef::new(&name),
        };
        cached(&key).map(Event::Delete)
    };
    match event {
        Event::Init => Some(Event::Init),
        Event::InitDone => Some(Event::InitDone),
        Event::InitApply(DeserializeGuard(Ok(k))) => Some(Event::InitApply(k)),
        // Left out of a re-list, the object leaves the cache at InitDone.
        Event::InitApply(DeserializeGuard(Err(bad))) => {
            invalid(&bad);
            None
        }
        Event::Apply(DeserializeGuard(Ok(k))) => Some(Event::Apply(k)),
        Event::Apply(DeserializeGuard(Err(bad))) => {
            invalid(&bad);
            last_readable(&bad)
        }
        Event::Delete(DeserializeGuard(Ok(k))) => Some(Event::Delete(k)),
        Event::Delete(DeserializeGuard(Err(bad))) => last_readable(&bad),
    }
}

/// A short description of an unreadable object, for logs and events.
pub fn describe_invalid(bad: &InvalidObject) -> String {
    let name = bad.metadata.name.clone().unwrap_or_default();
    match bad.metadata.namespace.as_deref() {
        Some(ns) => format!("{ns}/{name}"),
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RoleBinding;
    use serde_json::json;

    fn guarded(spec: serde_json::Value) -> DeserializeGuard<RoleBinding> {
        serde_json::from_value(json!({
            "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
            "metadata": { "name": "b", "namespace": "ws-a", "uid": "u1", "resourceVersion": "7" },
            "spec": spec,
        }))
        .expect("a guard always deserialises")
    }

    fn good() -> serde_json::Value {
        json!({
            "subject": { "kind": "User", "name": "dave" }, "workspaceRole": "member",
            "duration": "1h", "justification": "x", "grantedBy": "alice",
        })
    }

    fn bad() -> serde_json::Value {
        json!({
            "subject": { "kind": "Robot", "name": "dave" }, "workspaceRole": "member",
            "duration": "1h", "justification": "x", "grantedBy": "alice",
        })
    }

    #[test]
    fn readable_objects_pass_unreadable_ones_are_reported() {
        let mut seen = vec![];
        let e = unguard(
            Event::Apply(guarded(good())),
            |_| None,
            |b| seen.push(describe_invalid(b)),
        );
        assert!(matches!(e, Some(Event::Apply(_))));
        let e = unguard(
            Event::InitApply(guarded(bad())),
            |_| None,
            |b| seen.push(describe_invalid(b)),
        );
        assert!(e.is_none(), "left out of the re-list");
        assert_eq!(seen, vec!["ws-a/b"]);
        assert!(matches!(
            unguard(Event::<DeserializeGuard<RoleBinding>>::InitDone, |_| None, |_| {}),
            Some(Event::InitDone)
        ));
    }

    #[test]
    fn an_object_that_turns_unreadable_leaves_the_cache() {
        let DeserializeGuard(Ok(last)) = guarded(good()) else {
            panic!("readable")
        };
        let mut reported = 0;
        let e = unguard(
            Event::Apply(guarded(bad())),
            |key| (key.name == "b" && key.namespace.as_deref() == Some("ws-a")).then(|| last.clone()),
            |_| reported += 1,
        );
        assert!(matches!(e, Some(Event::Delete(b)) if b.spec.subject.name == "dave"));
        assert_eq!(reported, 1);
        // Never cached: nothing to remove.
        assert!(unguard(Event::Apply(guarded(bad())), |_| None, |_| {}).is_none());
        // Deleted while unreadable: its last readable version leaves too.
        assert!(matches!(
            unguard(Event::Delete(guarded(bad())), |_| Some(last.clone()), |_| {}),
            Some(Event::Delete(_))
        ));
    }
}
