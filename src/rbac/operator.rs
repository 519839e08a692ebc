//! The operator's own RBAC (DESIGN §2, invariant 5): least privilege, no
//! wildcards, no `escalate`, and `bind` only on the ClusterRoles that project
//! roles may map to, by name.

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use kube::api::ObjectMeta;

use super::build::rule;
use crate::config::Config;

/// The name of the operator's ClusterRole and ClusterRoleBinding.
pub const OPERATOR_ROLE: &str = "foureyes-operator";

/// The operator's ClusterRole for a configuration.
pub fn operator_cluster_role(config: &Config) -> ClusterRole {
    let read = ["get", "list", "watch"];
    let write = ["get", "list", "watch", "create", "update", "patch", "delete"];
    let mut rules = vec![
        // Its own kinds: finalizers and status; bindings and requests also in
        // full, because it creates bindings from requests and deletes finished
        // records, and grants managers these rights in their workspace.
        rule(
            &["foureyes.dev"],
            &["workspaces", "projects"],
            &["get", "list", "watch", "update", "patch"],
        ),
        rule(&["foureyes.dev"], &["rolebindings", "rolerequests"], &write),
        rule(
            &["foureyes.dev"],
            &[
                "workspaces/status",
                "projects/status",
                "rolebindings/status",
                "rolerequests/status",
            ],
            &["get", "update", "patch"],
        ),
        // Control and tenant namespaces.
        rule(
            &[""],
            &["namespaces"],
            &["get", "list", "watch", "create", "patch", "update", "delete"],
        ),
        // Native RBAC it materialises.
        rule(&["rbac.authorization.k8s.io"], &["roles", "rolebindings"], &write),
        // History chains: appended by conditional create and replace, never
        // patched or deleted (members read them through the workspace Roles).
        rule(&[""], &["configmaps"], &["get", "list", "watch", "create", "update"]),
        // Events: the recorder writes, members read.
        rule(
            &["events.k8s.io"],
            &["events"],
            &["get", "list", "watch", "create", "patch"],
        ),
        rule(&[""], &["events"], &read),
        // Leader election.
        rule(
            &["coordination.k8s.io"],
            &["leases"],
            &["get", "list", "watch", "create", "update", "patch"],
        ),
    ];
    let allowed: Vec<String> = config.allowed().into_iter().collect();
    if !allowed.is_empty() {
        rules.push(PolicyRule {
            api_groups: Some(vec!["rbac.authorization.k8s.io".into()]),
            resources: Some(vec!["clusterroles".into()]),
            resource_names: Some(allowed),
            verbs: vec!["bind".into()],
            ..Default::default()
        });
    }
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(OPERATOR_ROLE.into()),
            labels: Some([("app.kubernetes.io/part-of".to_owned(), "foureyes".to_owned())].into()),
            ..Default::default()
        },
        rules: Some(rules),
        ..Default::default()
    }
}

/// Binds the operator's ClusterRole to its service account.
pub fn operator_cluster_role_binding(namespace: &str, service_account: &str) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(OPERATOR_ROLE.into()),
            labels: Some([("app.kubernetes.io/part-of".to_owned(), "foureyes".to_owned())].into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: OPERATOR_ROLE.into(),
        },
        subjects: Some(vec![Subject {
            api_group: None,
            kind: "ServiceAccount".into(),
            name: service_account.into(),
            namespace: Some(namespace.into()),
        }]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_wildcards_no_escalate_and_bind_only_on_allowed_cluster_roles() {
        let config: Config = serde_yaml::from_str("roleMap: {reader: view, oncall: edit}").unwrap();
        let role = operator_cluster_role(&config);
        let rules = role.rules.unwrap();
        for r in &rules {
            assert!(
                !r.verbs
                    .iter()
                    .any(|v| v == "*" || v == "escalate" || v == "impersonate"),
                "{r:?}"
            );
            for list in [&r.api_groups, &r.resources, &r.resource_names].into_iter().flatten() {
                assert!(!list.iter().any(|x| x.contains('*')), "{r:?}");
            }
            if r.verbs.iter().any(|v| v == "bind") {
                assert_eq!(r.resources.as_deref(), Some(&["clusterroles".to_owned()][..]));
                assert_eq!(
                    r.resource_names.clone().unwrap(),
                    vec!["edit".to_owned(), "view".to_owned()]
                );
            }
        }
        assert_eq!(rules.iter().filter(|r| r.verbs.iter().any(|v| v == "bind")).count(), 1);
        assert!(
            !rules
                .iter()
                .any(|r| r.resources.iter().flatten().any(|x| x == "clusterrolebindings"))
        );
    }
}
