//! Building native RBAC objects (pure).

use crate::wire::{
    AUDITOR_ROLE, BINDING_LABEL, BINDING_REF_ANNOTATION, BINDING_UID_LABEL, EXPIRES_ANNOTATION, MANAGED_BY,
    MANAGED_BY_LABEL, MANAGER_ROLE, MEMBER_ROLE, PROJECT_LABEL, PROJECT_UID_LABEL, SUBJECT_ANNOTATION,
    TOKEN_FINDER_ROLE, WORKSPACE_LABEL, WORKSPACE_UID_LABEL,
};
use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role as NativeRole, RoleBinding as NativeBinding, RoleRef, Subject};
use kube::api::ObjectMeta;
use sha2::{Digest, Sha256};

use crate::api::{Subject as FoureyesSubject, SubjectKind};
use crate::policy::RoleTarget;
use crate::policy::binding::Grant;

/// A valid label value for any string: itself when it is one made of
/// letters, digits, `-` and `.` (every object name is), otherwise a readable
/// prefix, `_` and 128 bits of its SHA-256 (label values have at most 63
/// characters). The underscore appears in no literal value, so no name can be
/// chosen to equal another string's hashed value, and the hash is too long
/// for two strings to be found that share one (DESIGN §2, invariant 5).
pub fn label_value(s: &str) -> String {
    let literal = s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        && s.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && s.chars().last().is_none_or(|c| c.is_ascii_alphanumeric());
    if literal {
        return s.to_owned();
    }
    let prefix: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        .take(30)
        .collect();
    let prefix = prefix.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let digest = Sha256::digest(s.as_bytes());
    let hash: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{}_{hash}", if prefix.is_empty() { "h" } else { prefix })
}

fn short_hash(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The native RoleBinding's name for a foureyes binding: deterministic, so a
/// retry finds it, and different for a re-created binding of the same name.
pub fn native_name(binding_namespace: &str, binding_name: &str, uid: &str) -> String {
    let base: String = binding_name.chars().take(200).collect();
    format!(
        "foureyes.{base}.{}",
        short_hash(&format!("{binding_namespace}/{binding_name}/{uid}"))
    )
}

/// What a native binding is for.
#[derive(Clone, Debug)]
pub struct Owner<'a> {
    /// The workspace.
    pub workspace: &'a str,
    /// The workspace's uid.
    pub workspace_uid: Option<&'a str>,
    /// The project, for project roles.
    pub project: Option<&'a str>,
    /// The project's uid.
    pub project_uid: Option<&'a str>,
    /// The foureyes binding's namespace.
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its uid.
    pub uid: &'a str,
    /// Its subject.
    pub subject: &'a FoureyesSubject,
    /// Its effective expiry.
    pub expires_at: DateTime<Utc>,
}

/// Formats an expiry for the annotation (millisecond precision, like the spec).
pub fn format_expiry(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Reads the expiry annotation.
pub fn parse_expiry(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

fn native_subject(s: &FoureyesSubject) -> Subject {
    Subject {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: match s.kind {
            SubjectKind::User => "User".into(),
            SubjectKind::Group => "Group".into(),
        },
        name: s.name.clone(),
        namespace: None,
    }
}

/// The native RoleBinding for one grant of a foureyes binding.
pub fn native_binding(owner: &Owner<'_>, grant: &Grant) -> NativeBinding {
    let mut labels = BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
        (WORKSPACE_LABEL.to_owned(), label_value(owner.workspace)),
        (BINDING_LABEL.to_owned(), label_value(owner.name)),
        (BINDING_UID_LABEL.to_owned(), owner.uid.to_owned()),
    ]);
    if let Some(p) = owner.project {
        labels.insert(PROJECT_LABEL.to_owned(), label_value(p));
    }
    // Cleanup after a workspace or project is deleted selects by uid, never
    // by name: a later owner of the same name shares nothing with it.
    if let Some(u) = owner.workspace_uid {
        labels.insert(WORKSPACE_UID_LABEL.to_owned(), u.to_owned());
    }
    if let Some(u) = owner.project_uid {
        labels.insert(PROJECT_UID_LABEL.to_owned(), u.to_owned());
    }
    let annotations = BTreeMap::from([
        (
            BINDING_REF_ANNOTATION.to_owned(),
            format!("{}/{}", owner.namespace, owner.name),
        ),
        (EXPIRES_ANNOTATION.to_owned(), format_expiry(owner.expires_at)),
        (SUBJECT_ANNOTATION.to_owned(), owner.subject.to_string()),
    ]);
    let role_ref = match &grant.target {
        RoleTarget::WorkspaceRole(name) => RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: name.clone(),
        },
        RoleTarget::ClusterRole(name) => RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: name.clone(),
        },
    };
    NativeBinding {
        metadata: ObjectMeta {
            name: Some(native_name(owner.namespace, owner.name, owner.uid)),
            namespace: Some(grant.namespace.clone()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..Default::default()
        },
        role_ref,
        subjects: Some(vec![native_subject(owner.subject)]),
    }
}

/// A policy rule for API groups, resources and verbs.
pub(crate) fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(groups.iter().map(|s| s.to_string()).collect()),
        resources: Some(resources.iter().map(|s| s.to_string()).collect()),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["get", "list", "watch", "create", "update", "patch", "delete"];

/// The rules of the workspace Roles. Managers create and revoke bindings and
/// requests and vote; members and auditors read the workspace's objects,
/// events and history. Nobody but the operator writes status or history.
pub fn workspace_role_rules(role: &str) -> Vec<PolicyRule> {
    let read_all = vec![
        rule(&["foureyes.dev"], &["projects", "rolebindings", "rolerequests"], READ),
        rule(&["", "events.k8s.io"], &["events"], READ),
        rule(&[""], &["configmaps"], READ),
    ];
    match role {
        MANAGER_ROLE => {
            let mut rules = vec![rule(&["foureyes.dev"], &["rolebindings", "rolerequests"], WRITE)];
            rules.extend(read_all);
            rules
        }
        _ => read_all,
    }
}

/// The three Roles of a workspace namespace.
pub fn workspace_roles(workspace: &str, namespace: &str) -> Vec<NativeRole> {
    [MANAGER_ROLE, MEMBER_ROLE, AUDITOR_ROLE]
        .into_iter()
        .map(|name| NativeRole {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                labels: Some(BTreeMap::from([
                    (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
                    (WORKSPACE_LABEL.to_owned(), label_value(workspace)),
                ])),
                ..Default::default()
            },
            rules: Some(workspace_role_rules(name)),
        })
        .collect()
}

/// The binding of the configured auditors to the auditor Role of a workspace.
pub fn auditor_binding(workspace: &str, namespace: &str, auditors: &crate::config::Principals) -> NativeBinding {
    let subjects = auditors
        .users
        .iter()
        .map(|u| native_subject(&FoureyesSubject::user(u)))
        .chain(
            auditors
                .groups
                .iter()
                .map(|g| native_subject(&FoureyesSubject::group(g))),
        )
        .collect();
    NativeBinding {
        metadata: ObjectMeta {
            name: Some(AUDITOR_ROLE.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
                (WORKSPACE_LABEL.to_owned(), label_value(workspace)),
            ])),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: AUDITOR_ROLE.into(),
        },
        subjects: Some(subjects),
    }
}

/// The RoleBinding that lets the operator find (list, by metadata) and
/// delete the ServiceAccount token Secrets of one tenant namespace, held by
/// the project of uid `project_uid` (DESIGN §2, invariant 10): the shipped
/// ClusterRole `foureyes-token-finder`, bound to `operator` (the subjects of
/// the operator's own ClusterRoleBinding) in that namespace only, so that
/// the operator never reads the Secrets of any other namespace.
pub fn token_finder_binding(tenant: &str, project_uid: &str, operator: Vec<Subject>) -> NativeBinding {
    NativeBinding {
        metadata: ObjectMeta {
            name: Some(TOKEN_FINDER_ROLE.to_owned()),
            namespace: Some(tenant.to_owned()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
                (PROJECT_UID_LABEL.to_owned(), project_uid.to_owned()),
            ])),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: TOKEN_FINDER_ROLE.into(),
        },
        subjects: Some(operator),
    }
}

/// Whether a live token finder binding is the one wanted (same role, same
/// subjects, same project), so that an unchanged one is not written again.
pub fn token_finder_in_place(live: &NativeBinding, wanted: &NativeBinding) -> bool {
    let project = |b: &NativeBinding| {
        b.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(PROJECT_UID_LABEL))
            .cloned()
    };
    live.role_ref == wanted.role_ref && live.subjects == wanted.subjects && project(live) == project(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_finder_is_bound_in_one_namespace_for_one_project() {
        let op = vec![Subject {
            api_group: None,
            kind: "ServiceAccount".into(),
            name: "foureyes".into(),
            namespace: Some("foureyes-system".into()),
        }];
        let b = token_finder_binding("shop", "p-1", op.clone());
        assert_eq!(b.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(
            (b.role_ref.kind.as_str(), b.role_ref.name.as_str()),
            ("ClusterRole", TOKEN_FINDER_ROLE)
        );
        let labels = b.metadata.labels.clone().unwrap();
        assert_eq!(labels[PROJECT_UID_LABEL], "p-1");
        assert!(
            !labels.contains_key(BINDING_UID_LABEL),
            "no grant's binding: the sweep and the grant watch leave it alone"
        );
        assert!(token_finder_in_place(
            &b,
            &token_finder_binding("shop", "p-1", op.clone())
        ));
        assert!(!token_finder_in_place(&b, &token_finder_binding("shop", "p-2", op)));
        assert!(!token_finder_in_place(&b, &token_finder_binding("shop", "p-1", vec![])));
    }

    #[test]
    fn label_values_are_always_valid() {
        assert_eq!(label_value("payments"), "payments");
        let email = label_value("first.last@example.com");
        assert!(email.len() <= 63 && !email.contains('@'), "{email}");
        let long = label_value(&"x".repeat(200));
        assert!(long.len() <= 63, "{long}");
        assert_ne!(
            label_value(&"x".repeat(200)),
            label_value(&"x".repeat(201)),
            "hash keeps them apart"
        );
        assert_eq!(label_value("@@@").len(), 34);
        assert!(label_value("a_b").contains('_') && label_value("a_b") != "a_b");
        assert_eq!(label_value("-a-"), label_value("-a-"));
        assert!(label_value("-a-").starts_with('a'));
    }

    /// SECURITY F20: a partner could name a workspace after another's hashed
    /// label value (`<40 characters>-<12 hex>` before); no literal name can
    /// now equal a hashed value.
    #[test]
    fn no_name_equals_another_strings_hashed_label_value() {
        let long = format!("{}-payments", "a".repeat(60));
        let hashed = label_value(&long);
        assert_ne!(hashed, long);
        // The hashed value, taken as a name, is not a valid object name
        // (it has an underscore) and is hashed in turn, never kept literally.
        assert_ne!(label_value(&hashed), hashed);
        // What the old scheme produced as a hashed value is now a literal
        // name that stays itself, and so cannot equal the new hashed value.
        let old_style = format!("{}-{}", &long[..40], "0123456789ab");
        assert_eq!(label_value(&old_style), old_style);
        assert_ne!(label_value(&old_style), hashed);
        assert_eq!(hashed.split('_').nth(1).map(str::len), Some(32), "128 bits of hash");
    }

    #[test]
    fn native_names_are_deterministic_and_uid_specific() {
        let a = native_name("ws-p", "grant", "uid-1");
        assert_eq!(a, native_name("ws-p", "grant", "uid-1"));
        assert_ne!(a, native_name("ws-p", "grant", "uid-2"));
        assert_ne!(a, native_name("ws-q", "grant", "uid-1"));
        assert!(native_name("ws-p", &"n".repeat(253), "u").len() <= 253);
    }

    #[test]
    fn native_binding_carries_labels_annotations_and_no_user_name_in_labels() {
        let subject = FoureyesSubject::user("first.last@example.com");
        let owner = Owner {
            workspace: "payments",
            workspace_uid: Some("ws-uid"),
            project_uid: None,
            project: Some("checkout"),
            namespace: "ws-payments",
            name: "dave-admin",
            uid: "0c6b7f9e-0000-4000-8000-000000000000",
            subject: &subject,
            expires_at: parse_expiry("2026-01-01T12:00:00Z").unwrap(),
        };
        let grant = Grant {
            namespace: "payments-checkout".into(),
            target: RoleTarget::ClusterRole("admin".into()),
        };
        let nb = native_binding(&owner, &grant);
        let labels = nb.metadata.labels.clone().unwrap();
        assert_eq!(labels[BINDING_UID_LABEL], owner.uid);
        assert_eq!(labels[PROJECT_LABEL], "checkout");
        assert!(labels.values().all(|v| !v.contains('@')));
        let ann = nb.metadata.annotations.clone().unwrap();
        assert_eq!(ann[EXPIRES_ANNOTATION], "2026-01-01T12:00:00Z");
        assert_eq!(ann[BINDING_REF_ANNOTATION], "ws-payments/dave-admin");
        assert_eq!(nb.role_ref.kind, "ClusterRole");
        assert_eq!(nb.subjects.as_ref().unwrap()[0].name, "first.last@example.com");
    }

    #[test]
    fn only_managers_write_and_nobody_writes_status_or_history() {
        let manager = workspace_role_rules(MANAGER_ROLE);
        let member = workspace_role_rules(MEMBER_ROLE);
        let writes = |rules: &[PolicyRule]| {
            rules
                .iter()
                .any(|r| r.verbs.iter().any(|v| v == "create" || v == "update"))
        };
        assert!(writes(&manager) && !writes(&member) && !writes(&workspace_role_rules(AUDITOR_ROLE)));
        for r in manager.iter().chain(member.iter()) {
            let resources = r.resources.clone().unwrap_or_default();
            assert!(!resources.iter().any(|x| x.contains("/status") || x == "*"));
            if r.verbs.iter().any(|v| v == "create") {
                assert!(
                    !resources.contains(&"configmaps".to_owned()),
                    "history is written only by the operator"
                );
            }
        }
    }
}
