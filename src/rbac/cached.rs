//! What the operator keeps in memory of a native RoleBinding it made.
//!
//! The operator watches every native binding it made (one per grant and
//! namespace, so as many as there are grants) to put back what someone else
//! changes and to sweep what outlived its owner. Keeping those objects whole
//! would cost more than the foureyes bindings themselves; a [`NativeGrant`]
//! keeps only what the operator reads (who owns it, when it expires, whether
//! it is being deleted) and a digest of what it grants, which is all that
//! [`in_sync`] needs to tell a binding in line from one to put back.

use crate::wire::{
    BINDING_LABEL, BINDING_REF_ANNOTATION, BINDING_UID_LABEL, EXPIRES_ANNOTATION, MANAGED_BY_LABEL, PROJECT_LABEL,
    PROJECT_UID_LABEL, SUBJECT_ANNOTATION, WORKSPACE_LABEL, WORKSPACE_UID_LABEL,
};
use std::borrow::Cow;

use chrono::{DateTime, Utc};
use k8s_openapi::api::rbac::v1::RoleBinding as NativeBinding;
use kube::ResourceExt as _;
use kube::runtime::reflector::Lookup;
use sha2::{Digest, Sha256};

use super::parse_expiry;

/// The labels every native binding of a grant carries ([`super::native_binding`]).
const LABELS: [&str; 5] = [
    MANAGED_BY_LABEL,
    WORKSPACE_LABEL,
    WORKSPACE_UID_LABEL,
    BINDING_LABEL,
    BINDING_UID_LABEL,
];
/// The annotations every native binding of a grant carries.
const ANNOTATIONS: [&str; 3] = [BINDING_REF_ANNOTATION, EXPIRES_ANNOTATION, SUBJECT_ANNOTATION];

/// A native binding as the operator's cache keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeGrant {
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
    /// The owning foureyes binding's uid (label `foureyes.dev/binding-uid`).
    pub owner_uid: Option<String>,
    /// The owning foureyes binding as `<namespace>/<name>` (annotation `foureyes.dev/binding-ref`).
    owner: Option<String>,
    /// The expiry (annotation `foureyes.dev/expires-at`), when readable.
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether the API server is deleting it.
    pub deleting: bool,
    digests: Digests,
}

/// Digests of what a native binding grants and says about itself: its role,
/// its subjects, and the values of the labels and annotations the operator
/// sets, without and with the optional project label.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Digests {
    grant: [u8; 16],
    grant_and_project: [u8; 16],
}

impl Digests {
    fn of(b: &NativeBinding) -> Self {
        let mut h = Sha256::new();
        let field = |h: &mut Sha256, v: Option<&str>| match v {
            // Length-prefixed, so that no two different lists of fields hash alike.
            Some(v) => {
                h.update((v.len() as u64).to_le_bytes());
                h.update(v.as_bytes());
            }
            None => h.update(u64::MAX.to_le_bytes()),
        };
        field(&mut h, b.role_ref.api_group.as_deref());
        field(&mut h, Some(&b.role_ref.kind));
        field(&mut h, Some(&b.role_ref.name));
        let subjects = b.subjects.as_deref().unwrap_or_default();
        h.update((subjects.len() as u64).to_le_bytes());
        for s in subjects {
            field(&mut h, s.api_group.as_deref());
            field(&mut h, Some(&s.kind));
            field(&mut h, Some(&s.name));
            field(&mut h, s.namespace.as_deref());
        }
        let (labels, annotations) = (b.labels(), b.annotations());
        for key in LABELS {
            field(&mut h, labels.get(key).map(String::as_str));
        }
        for key in ANNOTATIONS {
            field(&mut h, annotations.get(key).map(String::as_str));
        }
        let grant = h.clone().finalize();
        field(&mut h, labels.get(PROJECT_LABEL).map(String::as_str));
        field(&mut h, labels.get(PROJECT_UID_LABEL).map(String::as_str));
        let grant_and_project = h.finalize();
        let first16 = |d: &[u8]| -> [u8; 16] { d[..16].try_into().expect("a sha256 digest has 32 bytes") };
        Self {
            grant: first16(&grant),
            grant_and_project: first16(&grant_and_project),
        }
    }
}

impl From<&NativeBinding> for NativeGrant {
    fn from(b: &NativeBinding) -> Self {
        Self {
            namespace: b.metadata.namespace.clone().unwrap_or_default(),
            name: b.name_any(),
            uid: b.metadata.uid.clone(),
            owner_uid: b.labels().get(BINDING_UID_LABEL).cloned(),
            owner: b.annotations().get(BINDING_REF_ANNOTATION).cloned(),
            expires_at: b.annotations().get(EXPIRES_ANNOTATION).and_then(|s| parse_expiry(s)),
            deleting: b.metadata.deletion_timestamp.is_some(),
            digests: Digests::of(b),
        }
    }
}

impl NativeGrant {
    /// The owning foureyes binding's namespace and name, from its annotation.
    pub fn owner(&self) -> Option<(&str, &str)> {
        self.owner.as_deref()?.split_once('/')
    }
}

/// Whether an existing native binding already grants what `desired` grants,
/// with the labels and annotations foureyes relies on (others may add more).
///
/// `desired` is a binding built by [`super::native_binding`]: it sets every
/// label and annotation of [`LABELS`] and [`ANNOTATIONS`], and the project
/// label only for a project role.
pub fn in_sync(existing: &NativeGrant, desired: &NativeBinding) -> bool {
    let want = Digests::of(desired);
    let same = if desired.labels().contains_key(PROJECT_LABEL) {
        existing.digests.grant_and_project == want.grant_and_project
    } else {
        existing.digests.grant == want.grant
    };
    same && !existing.deleting
}

/// The cache is keyed like the native RoleBindings it stands for.
impl Lookup for NativeGrant {
    type DynamicType = ();

    fn kind(_: &()) -> Cow<'_, str> {
        "RoleBinding".into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        "rbac.authorization.k8s.io".into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        "rolebindings".into()
    }

    fn name(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.name))
    }

    fn namespace(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.namespace))
    }

    // Neither is needed to find an entry; leaving them out of the cache's
    // keys saves two strings per native binding.
    fn resource_version(&self) -> Option<Cow<'_, str>> {
        None
    }

    fn uid(&self) -> Option<Cow<'_, str>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Subject as FoureyesSubject, SubjectKind};
    use crate::policy::RoleTarget;
    use crate::policy::binding::Grant;
    use crate::rbac::{Owner, native_binding};

    fn desired(project: Option<&str>) -> NativeBinding {
        let subject = FoureyesSubject {
            kind: SubjectKind::User,
            name: "first.last@example.com".into(),
        };
        let owner = Owner {
            workspace: "payments",
            workspace_uid: Some("ws-uid"),
            project_uid: project.map(|_| "proj-uid"),
            project,
            namespace: "ws-payments",
            name: "dave-admin",
            uid: "0c6b7f9e-0000-4000-8000-000000000000",
            subject: &subject,
            expires_at: parse_expiry("2026-01-01T12:00:00Z").unwrap(),
        };
        let target = match project {
            Some(_) => RoleTarget::ClusterRole("admin".into()),
            None => RoleTarget::WorkspaceRole("foureyes-member".into()),
        };
        native_binding(
            &owner,
            &Grant {
                namespace: "payments-checkout".into(),
                target,
            },
        )
    }

    #[test]
    fn keeps_what_the_operator_reads() {
        let nb = desired(Some("checkout"));
        let g = NativeGrant::from(&nb);
        assert_eq!(g.namespace, "payments-checkout");
        assert_eq!(g.name, nb.name_any());
        assert_eq!(g.owner_uid.as_deref(), Some("0c6b7f9e-0000-4000-8000-000000000000"));
        assert_eq!(g.owner(), Some(("ws-payments", "dave-admin")));
        assert_eq!(g.expires_at, parse_expiry("2026-01-01T12:00:00Z"));
        assert!(!g.deleting);
    }

    #[test]
    fn the_digests_cover_every_label_and_annotation_the_operator_sets() {
        for nb in [desired(None), desired(Some("checkout"))] {
            for key in nb.labels().keys() {
                assert!(
                    LABELS.contains(&key.as_str()) || key == PROJECT_LABEL || key == PROJECT_UID_LABEL,
                    "label {key}"
                );
            }
            for key in nb.annotations().keys() {
                assert!(ANNOTATIONS.contains(&key.as_str()), "annotation {key}");
            }
        }
    }

    #[test]
    fn tells_a_binding_in_line_from_one_to_put_back() {
        for project in [None, Some("checkout")] {
            let nb = desired(project);
            assert!(in_sync(&NativeGrant::from(&nb), &nb));

            let mut other = nb.clone();
            other.subjects.as_mut().unwrap()[0].name = "mallory".into();
            assert!(!in_sync(&NativeGrant::from(&other), &nb), "a subject changed");

            let mut other = nb.clone();
            let mut mallory = other.subjects.as_ref().unwrap()[0].clone();
            mallory.name = "mallory".into();
            other.subjects.as_mut().unwrap().push(mallory);
            assert!(!in_sync(&NativeGrant::from(&other), &nb), "a subject added");

            let mut other = nb.clone();
            other.role_ref.name = "cluster-admin".into();
            other.role_ref.kind = "ClusterRole".into();
            assert!(!in_sync(&NativeGrant::from(&other), &nb), "the role changed");

            for key in LABELS {
                let mut other = nb.clone();
                other.metadata.labels.as_mut().unwrap().remove(key);
                assert!(!in_sync(&NativeGrant::from(&other), &nb), "label {key} removed");
            }
            for key in ANNOTATIONS {
                let mut other = nb.clone();
                other
                    .metadata
                    .annotations
                    .as_mut()
                    .unwrap()
                    .insert(key.into(), "other".into());
                assert!(!in_sync(&NativeGrant::from(&other), &nb), "annotation {key} changed");
            }

            let mut other = nb.clone();
            other.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
            assert!(!in_sync(&NativeGrant::from(&other), &nb), "being deleted");

            let mut other = nb.clone();
            other
                .metadata
                .labels
                .as_mut()
                .unwrap()
                .insert("team".into(), "x".into());
            other
                .metadata
                .annotations
                .as_mut()
                .unwrap()
                .insert("note".into(), "x".into());
            assert!(
                in_sync(&NativeGrant::from(&other), &nb),
                "labels and annotations added by others do not matter"
            );
        }
        // The project label counts where the operator sets it, and only there.
        let with = desired(Some("checkout"));
        let mut moved = with.clone();
        moved
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert(PROJECT_LABEL.into(), "other".into());
        assert!(!in_sync(&NativeGrant::from(&moved), &with));
        let without = desired(None);
        let mut added = without.clone();
        added
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert(PROJECT_LABEL.into(), "checkout".into());
        assert!(in_sync(&NativeGrant::from(&added), &without));
    }
}
