//! Which tenant namespaces a project may claim (DESIGN §2, invariant 5).

use crate::wire::{CONTROL_NAMESPACE_LABEL, PROJECT_LABEL, PROJECT_UID_LABEL, WORKSPACE_LABEL, WORKSPACE_UID_LABEL};
use std::collections::BTreeMap;

/// What is known about a namespace a project wants.
#[derive(Clone, Debug, Default)]
pub struct NamespaceFacts<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its labels, when it exists.
    pub labels: Option<&'a BTreeMap<String, String>>,
    /// Whether the configuration protects it (system namespaces).
    pub protected: bool,
}

/// What to do with a namespace a workspace or project wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamespaceClaim {
    /// It does not exist: create it with the claimant's labels.
    Create,
    /// It exists and already carries the claimant's uid: keep it.
    Keep,
    /// It exists, carries the claimant's names but no uid (labelled before
    /// the claimant existed, for example by GitOps, or by an older version):
    /// take it by adding the claimant's uid.
    Adopt,
    /// Another workspace or project claimed it (by uid): condition
    /// `NamespaceTaken`; nothing of the other claimant is touched.
    Taken(String),
    /// It may not be claimed; the message says why.
    Refuse(String),
}

impl NamespaceClaim {
    /// Whether the claimant holds the namespace (now or once created).
    pub fn is_held(&self) -> bool {
        matches!(
            self,
            NamespaceClaim::Create | NamespaceClaim::Keep | NamespaceClaim::Adopt
        )
    }
}

/// Decides whether workspace `workspace` (its label value) with `uid` may
/// use `ns` as its control namespace: create it, keep it when it carries the
/// workspace's uid, or adopt one labelled for this workspace by name and not
/// yet claimed by any uid. An existing namespace without these labels is
/// never taken over, nor a tenant or system namespace (DESIGN §2, invariants
/// 5 and 9).
pub fn claim_control_namespace(workspace: &str, uid: &str, ns: &NamespaceFacts<'_>) -> NamespaceClaim {
    if ns.protected {
        return NamespaceClaim::Refuse(format!("{} is a protected system namespace", ns.name));
    }
    let Some(labels) = ns.labels else {
        return NamespaceClaim::Create;
    };
    if let Some(owner) = labels
        .get(WORKSPACE_UID_LABEL)
        .filter(|_| labels.contains_key(CONTROL_NAMESPACE_LABEL))
    {
        return if owner == uid {
            NamespaceClaim::Keep
        } else {
            NamespaceClaim::Taken(format!(
                "{} is the control namespace of another workspace (uid {owner}); nothing of it is touched",
                ns.name
            ))
        };
    }
    if let Some(p) = labels.get(PROJECT_LABEL) {
        return NamespaceClaim::Taken(format!("{} is a tenant namespace of project {p}", ns.name));
    }
    match labels.get(CONTROL_NAMESPACE_LABEL) {
        Some(w) if w == workspace => NamespaceClaim::Adopt,
        Some(w) => NamespaceClaim::Taken(format!("{} is the control namespace of workspace {w}", ns.name)),
        None => NamespaceClaim::Refuse(format!(
            "{} exists and is not labelled for this workspace: an existing namespace is used only when labelled {CONTROL_NAMESPACE_LABEL}={workspace}",
            ns.name
        )),
    }
}

/// Decides whether project `project` (label value) with `uid`, of workspace
/// `workspace` (label value), may claim a tenant namespace: it may create one
/// that does not exist, keep one that carries its uid, or adopt one labelled
/// with its names and no uid; never a system namespace, a workspace's
/// control namespace, or a namespace of another project or workspace.
pub fn claim_namespace(workspace: &str, project: &str, uid: &str, ns: &NamespaceFacts<'_>) -> NamespaceClaim {
    if ns.protected {
        return NamespaceClaim::Refuse(format!("{} is a protected system namespace", ns.name));
    }
    let Some(labels) = ns.labels else {
        return NamespaceClaim::Create;
    };
    if let Some(owner) = labels.get(CONTROL_NAMESPACE_LABEL) {
        return NamespaceClaim::Taken(format!("{} is the control namespace of workspace {owner}", ns.name));
    }
    if let Some(owner) = labels.get(PROJECT_UID_LABEL) {
        return if owner == uid {
            NamespaceClaim::Keep
        } else {
            let named = match (labels.get(PROJECT_LABEL), labels.get(WORKSPACE_LABEL)) {
                (Some(p), Some(w)) => format!("project {p} of workspace {w}"),
                _ => "another project".to_owned(),
            };
            NamespaceClaim::Taken(format!(
                "{} belongs to {named} (uid {owner}); nothing of it is touched",
                ns.name
            ))
        };
    }
    match (labels.get(WORKSPACE_LABEL), labels.get(PROJECT_LABEL)) {
        (Some(w), Some(p)) if w == workspace && p == project => NamespaceClaim::Adopt,
        (Some(w), Some(p)) => NamespaceClaim::Taken(format!("{} belongs to project {p} of workspace {w}", ns.name)),
        (Some(w), None) => NamespaceClaim::Taken(format!("{} belongs to workspace {w}", ns.name)),
        (None, _) => NamespaceClaim::Refuse(format!(
            "{} exists and does not carry this project's labels ({WORKSPACE_LABEL}={workspace}, {PROJECT_LABEL}={project})",
            ns.name
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn claim(labels: Option<&BTreeMap<String, String>>, protected: bool) -> NamespaceClaim {
        claim_namespace(
            "payments",
            "checkout",
            "uid-1",
            &NamespaceFacts {
                name: "ns",
                labels,
                protected,
            },
        )
    }

    #[test]
    fn creates_missing_and_adopts_own() {
        assert_eq!(claim(None, false), NamespaceClaim::Create);
        let own = labels(&[(WORKSPACE_LABEL, "payments"), (PROJECT_LABEL, "checkout")]);
        assert_eq!(claim(Some(&own), false), NamespaceClaim::Adopt);
        let mut stamped = own.clone();
        stamped.insert(PROJECT_UID_LABEL.into(), "uid-1".into());
        assert_eq!(claim(Some(&stamped), false), NamespaceClaim::Keep);
    }

    /// SECURITY F20/F8: a re-created project of the same name (another uid)
    /// does not inherit the namespaces of the old one.
    #[test]
    fn a_namespace_with_another_uid_is_taken_whatever_its_names() {
        let mut old = labels(&[(WORKSPACE_LABEL, "payments"), (PROJECT_LABEL, "checkout")]);
        old.insert(PROJECT_UID_LABEL.into(), "uid-0".into());
        assert!(matches!(claim(Some(&old), false), NamespaceClaim::Taken(m) if m.contains("uid-0")));
    }

    fn control(labels: Option<&BTreeMap<String, String>>) -> NamespaceClaim {
        claim_control_namespace(
            "payments",
            "ws-uid",
            &NamespaceFacts {
                name: "ws-payments",
                labels,
                protected: false,
            },
        )
    }

    /// SECURITY F4, F9: control namespaces are claimed by uid; an existing
    /// namespace is never taken over unless labelled for the workspace.
    #[test]
    fn control_namespaces_are_claimed_by_uid() {
        assert_eq!(control(None), NamespaceClaim::Create);
        let named = labels(&[(CONTROL_NAMESPACE_LABEL, "payments")]);
        assert_eq!(control(Some(&named)), NamespaceClaim::Adopt);
        let mut mine = named.clone();
        mine.insert(WORKSPACE_UID_LABEL.into(), "ws-uid".into());
        assert_eq!(control(Some(&mine)), NamespaceClaim::Keep);
        // A second workspace naming the same namespace, whatever its name.
        let mut other = named.clone();
        other.insert(WORKSPACE_UID_LABEL.into(), "other-uid".into());
        assert!(matches!(control(Some(&other)), NamespaceClaim::Taken(_)));
        let foreign = labels(&[(CONTROL_NAMESPACE_LABEL, "aaa")]);
        assert!(matches!(control(Some(&foreign)), NamespaceClaim::Taken(_)));
        // Any existing unlabelled namespace (vault, argocd, ...) is refused.
        assert!(matches!(control(Some(&labels(&[]))), NamespaceClaim::Refuse(m) if m.contains("not labelled")));
        let tenant = labels(&[(WORKSPACE_LABEL, "payments"), (PROJECT_LABEL, "checkout")]);
        assert!(matches!(control(Some(&tenant)), NamespaceClaim::Taken(_)));
        let protected = claim_control_namespace(
            "payments",
            "ws-uid",
            &NamespaceFacts {
                name: "kube-system",
                labels: None,
                protected: true,
            },
        );
        assert!(matches!(protected, NamespaceClaim::Refuse(_)));
    }

    #[test]
    fn refuses_system_foreign_and_unlabelled_namespaces() {
        assert!(matches!(claim(None, true), NamespaceClaim::Refuse(m) if m.contains("protected")));
        let own = labels(&[(WORKSPACE_LABEL, "payments"), (PROJECT_LABEL, "checkout")]);
        assert!(
            matches!(claim(Some(&own), true), NamespaceClaim::Refuse(_)),
            "protection wins over labels"
        );
        let other_project = labels(&[(WORKSPACE_LABEL, "payments"), (PROJECT_LABEL, "ledger")]);
        assert!(matches!(claim(Some(&other_project), false), NamespaceClaim::Taken(m) if m.contains("ledger")));
        let other_ws = labels(&[(WORKSPACE_LABEL, "search"), (PROJECT_LABEL, "checkout")]);
        assert!(matches!(claim(Some(&other_ws), false), NamespaceClaim::Taken(m) if m.contains("search")));
        let ws_only = labels(&[(WORKSPACE_LABEL, "payments")]);
        assert!(matches!(claim(Some(&ws_only), false), NamespaceClaim::Taken(_)));
        let control = labels(&[
            (CONTROL_NAMESPACE_LABEL, "payments"),
            (WORKSPACE_LABEL, "payments"),
            (PROJECT_LABEL, "checkout"),
        ]);
        assert!(matches!(claim(Some(&control), false), NamespaceClaim::Taken(m) if m.contains("control namespace")));
        assert!(matches!(claim(Some(&labels(&[])), false), NamespaceClaim::Refuse(m) if m.contains("does not carry")));
    }
}
