//! Native RBAC that foureyes did not make: every RoleBinding and
//! ClusterRoleBinding of the cluster without `app.kubernetes.io/managed-by=foureyes`,
//! kept as what it grants and to whom (nothing else), so that a Lockout can
//! tell the responder what access its subject still holds outside foureyes.
//! foureyes never changes these objects.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, RwLock};

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding as NativeBinding, RoleRef, Subject};
use kube::runtime::watcher;

use crate::api::OutsideGrant;
use crate::policy::lockout::NativeSubjects;

/// The label selector of what this table holds: everything foureyes did not make.
pub const OUTSIDE_SELECTOR: &str = "app.kubernetes.io/managed-by!=foureyes";

type Key = (String, String, String);
type Map = BTreeMap<Key, NativeSubjects>;

/// The native bindings outside foureyes, by (kind, namespace, name), fed by
/// the watches of RoleBindings and ClusterRoleBindings; a re-list replaces a
/// kind's entries at its end.
#[derive(Default)]
pub struct Outside {
    live: RwLock<Map>,
    building: Mutex<BTreeMap<&'static str, Map>>,
}

fn role(r: &RoleRef) -> String {
    format!("{}/{}", r.kind, r.name)
}

fn subjects(s: Option<&Vec<Subject>>) -> Vec<(String, String)> {
    s.into_iter()
        .flatten()
        .map(|s| (s.kind.clone(), s.name.clone()))
        .collect()
}

/// A RoleBinding as the table keeps it.
pub fn of_role_binding(b: &NativeBinding) -> NativeSubjects {
    NativeSubjects {
        grant: OutsideGrant {
            kind: "RoleBinding".into(),
            namespace: b.metadata.namespace.clone(),
            name: b.metadata.name.clone().unwrap_or_default(),
            role: role(&b.role_ref),
        },
        subjects: subjects(b.subjects.as_ref()),
    }
}

/// A ClusterRoleBinding as the table keeps it.
pub fn of_cluster_role_binding(b: &ClusterRoleBinding) -> NativeSubjects {
    NativeSubjects {
        grant: OutsideGrant {
            kind: "ClusterRoleBinding".into(),
            namespace: None,
            name: b.metadata.name.clone().unwrap_or_default(),
            role: role(&b.role_ref),
        },
        subjects: subjects(b.subjects.as_ref()),
    }
}

fn key(n: &NativeSubjects) -> Key {
    (
        n.grant.kind.clone(),
        n.grant.namespace.clone().unwrap_or_default(),
        n.grant.name.clone(),
    )
}

impl Outside {
    /// Applies one watch event of `kind` (`RoleBinding` or
    /// `ClusterRoleBinding`); returns the subjects (`kind`, `name`) whose
    /// outside access may have changed: those of the object before and after.
    pub fn observe<K>(
        &self,
        kind: &'static str,
        event: &watcher::Event<K>,
        convert: impl Fn(&K) -> NativeSubjects,
    ) -> BTreeSet<(String, String)> {
        let mut touched = BTreeSet::new();
        let live = || self.live.write().unwrap_or_else(|e| e.into_inner());
        match event {
            watcher::Event::Apply(obj) => {
                let n = convert(obj);
                touched.extend(n.subjects.iter().cloned());
                if let Some(old) = live().insert(key(&n), n) {
                    touched.extend(old.subjects);
                }
            }
            watcher::Event::Delete(obj) => {
                let n = convert(obj);
                touched.extend(n.subjects.iter().cloned());
                if let Some(old) = live().remove(&key(&n)) {
                    touched.extend(old.subjects);
                }
            }
            watcher::Event::Init => {
                self.building
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(kind, Map::new());
            }
            watcher::Event::InitApply(obj) => {
                let n = convert(obj);
                if let Some(map) = self.building.lock().unwrap_or_else(|e| e.into_inner()).get_mut(kind) {
                    map.insert(key(&n), n);
                }
            }
            watcher::Event::InitDone => {
                if let Some(fresh) = self.building.lock().unwrap_or_else(|e| e.into_inner()).remove(kind) {
                    let mut live = live();
                    live.retain(|k, _| k.0 != kind);
                    live.extend(fresh);
                }
            }
        }
        touched
    }

    /// What names `subject` directly (see [`crate::policy::lockout::outside_access`]).
    pub fn naming(&self, subject: &crate::api::Subject) -> (Vec<OutsideGrant>, usize) {
        let live = self.live.read().unwrap_or_else(|e| e.into_inner());
        crate::policy::lockout::outside_access(subject, live.values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crb(name: &str, users: &[&str]) -> ClusterRoleBinding {
        ClusterRoleBinding {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "ClusterRole".into(),
                name: "cluster-admin".into(),
            },
            subjects: Some(
                users
                    .iter()
                    .map(|u| Subject {
                        kind: "User".into(),
                        name: (*u).into(),
                        ..Default::default()
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn follows_changes_and_relists_and_reports_who_changed() {
        let t = Outside::default();
        let dave = crate::api::Subject::user("dave");
        let touched = t.observe(
            "ClusterRoleBinding",
            &watcher::Event::Apply(crb("x", &["dave"])),
            of_cluster_role_binding,
        );
        assert!(touched.contains(&("User".into(), "dave".into())));
        assert_eq!(t.naming(&dave).1, 1);
        assert_eq!(t.naming(&dave).0[0].role, "ClusterRole/cluster-admin");
        // dave is taken out: he is told of, though no longer named.
        let touched = t.observe(
            "ClusterRoleBinding",
            &watcher::Event::Apply(crb("x", &["erin"])),
            of_cluster_role_binding,
        );
        assert!(touched.contains(&("User".into(), "dave".into())));
        assert_eq!(t.naming(&dave).1, 0);
        // A re-list replaces the kind's entries at its end.
        t.observe(
            "ClusterRoleBinding",
            &watcher::Event::<ClusterRoleBinding>::Init,
            of_cluster_role_binding,
        );
        t.observe(
            "ClusterRoleBinding",
            &watcher::Event::InitApply(crb("y", &["dave"])),
            of_cluster_role_binding,
        );
        assert_eq!(t.naming(&crate::api::Subject::user("erin")).1, 1);
        t.observe(
            "ClusterRoleBinding",
            &watcher::Event::<ClusterRoleBinding>::InitDone,
            of_cluster_role_binding,
        );
        assert_eq!(t.naming(&crate::api::Subject::user("erin")).1, 0);
        assert_eq!(t.naming(&dave).0[0].name, "y");
    }
}
