//! Which tenant namespaces a project may claim (DESIGN §2, invariant 5).

use std::collections::BTreeMap;

/// The label naming the workspace that owns a namespace.
pub const WORKSPACE_LABEL: &str = "foureyes.dev/workspace";
/// The label naming the project that owns a tenant namespace.
pub const PROJECT_LABEL: &str = "foureyes.dev/project";
/// The label marking a workspace's control namespace.
pub const CONTROL_NAMESPACE_LABEL: &str = "foureyes.dev/control-namespace";
/// The label saying the operator created a namespace (rather than adopting it).
pub const CREATED_BY_LABEL: &str = "foureyes.dev/created-by";

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

/// What to do with a namespace a project wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamespaceClaim {
    /// It does not exist: create it with the project's labels.
    Create,
    /// It exists and already carries this project's labels: keep it.
    Adopt,
    /// It may not be claimed; the message says why.
    Refuse(String),
}

/// Decides whether project `project` of workspace `workspace` may claim a
/// namespace: it may create one that does not exist, or keep one that carries
/// its own labels; never a system namespace, a workspace's control namespace,
/// or a namespace of another project or workspace.
pub fn claim_namespace(workspace: &str, project: &str, ns: &NamespaceFacts<'_>) -> NamespaceClaim {
    if ns.protected {
        return NamespaceClaim::Refuse(format!("{} is a protected system namespace", ns.name));
    }
    let Some(labels) = ns.labels else {
        return NamespaceClaim::Create;
    };
    if let Some(owner) = labels.get(CONTROL_NAMESPACE_LABEL) {
        return NamespaceClaim::Refuse(format!("{} is the control namespace of workspace {owner}", ns.name));
    }
    match (labels.get(WORKSPACE_LABEL), labels.get(PROJECT_LABEL)) {
        (Some(w), Some(p)) if w == workspace && p == project => NamespaceClaim::Adopt,
        (Some(w), Some(p)) => NamespaceClaim::Refuse(format!("{} belongs to project {p} of workspace {w}", ns.name)),
        (Some(w), None) => NamespaceClaim::Refuse(format!("{} belongs to workspace {w}", ns.name)),
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
        assert!(matches!(claim(Some(&other_project), false), NamespaceClaim::Refuse(m) if m.contains("ledger")));
        let other_ws = labels(&[(WORKSPACE_LABEL, "search"), (PROJECT_LABEL, "checkout")]);
        assert!(matches!(claim(Some(&other_ws), false), NamespaceClaim::Refuse(m) if m.contains("search")));
        let ws_only = labels(&[(WORKSPACE_LABEL, "payments")]);
        assert!(matches!(claim(Some(&ws_only), false), NamespaceClaim::Refuse(_)));
        let control = labels(&[
            (CONTROL_NAMESPACE_LABEL, "payments"),
            (WORKSPACE_LABEL, "payments"),
            (PROJECT_LABEL, "checkout"),
        ]);
        assert!(matches!(claim(Some(&control), false), NamespaceClaim::Refuse(m) if m.contains("control namespace")));
        assert!(matches!(claim(Some(&labels(&[])), false), NamespaceClaim::Refuse(m) if m.contains("does not carry")));
    }
}
