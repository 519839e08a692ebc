//! The operator's own RBAC (DESIGN §2, invariant 5): least privilege, no
//! wildcards, no `escalate`, and `bind` only on the ClusterRoles that project
//! roles may map to and on the three workspace Roles, by name. Leader election
//! adds a Role in the Lease's namespace that reaches only that Lease.
//!
//! The `bind` rule on the workspace Roles (`foureyes-manager`,
//! `foureyes-member`, `foureyes-auditor`) grants nothing the operator does not
//! hold already: it writes those Roles itself, and the API server lets it
//! write only rules it holds. Without it, the API server proves for every
//! native binding of a workspace role that the operator holds each rule of
//! the Role, reading the operator's roles from storage one by one: about
//! 100 ms per binding under load, the largest part of an approval's latency.

use crate::wire::{
    AUDITOR_ROLE, LEASE_ROLE, LOCKOUT_VERB, LOCKOUT_WRITER_ROLE, MANAGER_ROLE, MEMBER_ROLE, NOTIFICATION_SECRETS_ROLE,
    OPERATOR_ROLE, SWEEP, TOKEN_FINDER_ROLE,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::ObjectMeta;

use crate::config::Config;
use crate::rbac::build::rule;

/// The Roles the operator writes in every workspace namespace.
pub const WORKSPACE_ROLES: [&str; 3] = [MANAGER_ROLE, MEMBER_ROLE, AUDITOR_ROLE];

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
        // Lockouts: read, and marked (the expired label, the finalizer);
        // never created or deleted by the operator.
        rule(
            &["foureyes.dev"],
            &["lockouts"],
            &["get", "list", "watch", "update", "patch"],
        ),
        rule(
            &["foureyes.dev"],
            &[
                "workspaces/status",
                "projects/status",
                "rolebindings/status",
                "rolerequests/status",
                "lockouts/status",
            ],
            &["get", "update", "patch"],
        ),
        // What a locked-out subject still holds outside foureyes: read only.
        rule(&["rbac.authorization.k8s.io"], &["clusterrolebindings"], &read),
        // What a requested role grants, shown to its approvers: read only.
        rule(&["rbac.authorization.k8s.io"], &["clusterroles"], &["get", "list"]),
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
        // The admission policies it trusts: checked, never written.
        rule(
            &["admissionregistration.k8s.io"],
            &[
                "validatingadmissionpolicies",
                "validatingadmissionpolicybindings",
                "mutatingadmissionpolicies",
                "mutatingadmissionpolicybindings",
            ],
            &["get"],
        ),
        // Leader election is a namespaced Role: see `operator_lease_role`.
        // Binding the workspace Roles it writes (see the module's comment).
        bind_rule("roles", WORKSPACE_ROLES.iter().map(|r| (*r).to_owned()).collect()),
        // Binding the token finder in the tenant namespaces its projects
        // hold: its only access to Secrets (see `token_finder_cluster_role`).
        bind_rule("clusterroles", vec![TOKEN_FINDER_ROLE.to_owned()]),
    ];
    let allowed: Vec<String> = config.allowed().into_iter().collect();
    if !allowed.is_empty() {
        rules.push(bind_rule("clusterroles", allowed));
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

/// `bind` on the named RBAC roles of one kind (`roles` or `clusterroles`).
fn bind_rule(resource: &str, names: Vec<String>) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec!["rbac.authorization.k8s.io".into()]),
        resources: Some(vec![resource.into()]),
        resource_names: Some(names),
        verbs: vec!["bind".into()],
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

/// What auditors need beyond each workspace namespace's auditor Role: read
/// the (cluster-scoped) Workspaces, whose status records each history
/// chain's head, so that `kubectl access history verify` can compare it.
pub fn auditor_cluster_role() -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(AUDITOR_ROLE.into()),
            labels: Some([("app.kubernetes.io/part-of".to_owned(), "foureyes".to_owned())].into()),
            ..Default::default()
        },
        rules: Some(vec![rule(
            &["foureyes.dev"],
            &["workspaces"],
            &["get", "list", "watch"],
        )]),
        ..Default::default()
    }
}

/// Binds the auditors' ClusterRole to the configured auditors.
pub fn auditor_cluster_role_binding(config: &Config) -> ClusterRoleBinding {
    let subject = |kind: &str, name: &String| Subject {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: kind.into(),
        name: name.clone(),
        namespace: None,
    };
    let subjects: Vec<Subject> = config
        .auditors
        .groups
        .iter()
        .map(|g| subject("Group", g))
        .chain(config.auditors.users.iter().map(|u| subject("User", u)))
        .collect();
    ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(AUDITOR_ROLE.into()),
            labels: Some([("app.kubernetes.io/part-of".to_owned(), "foureyes".to_owned())].into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: AUDITOR_ROLE.into(),
        },
        subjects: (!subjects.is_empty()).then_some(subjects),
    }
}

/// What partners need to lock a subject out (DESIGN §7, procedure 6):
/// write Lockouts, and the verb `lock` on them that the admission policy
/// `foureyes-lockout-writers` asks the authorizer for.
pub fn lockout_writer_cluster_role() -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(LOCKOUT_WRITER_ROLE.into()),
            labels: Some([("app.kubernetes.io/part-of".to_owned(), "foureyes".to_owned())].into()),
            ..Default::default()
        },
        rules: Some(vec![rule(
            &["foureyes.dev"],
            &["lockouts"],
            &[
                "get",
                "list",
                "watch",
                "create",
                "update",
                "patch",
                "delete",
                LOCKOUT_VERB,
            ],
        )]),
        ..Default::default()
    }
}

/// Binds the lockout writers' ClusterRole to the configured partners.
pub fn lockout_writer_cluster_role_binding(config: &Config) -> ClusterRoleBinding {
    let subject = |kind: &str, name: &String| Subject {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: kind.into(),
        name: name.clone(),
        namespace: None,
    };
    let subjects: Vec<Subject> = config
        .partners
        .groups
        .iter()
        .map(|g| subject("Group", g))
        .chain(config.partners.users.iter().map(|u| subject("User", u)))
        .collect();
    ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(LOCKOUT_WRITER_ROLE.into()),
            labels: Some([("app.kubernetes.io/part-of".to_owned(), "foureyes".to_owned())].into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: LOCKOUT_WRITER_ROLE.into(),
        },
        subjects: (!subjects.is_empty()).then_some(subjects),
    }
}

/// DESIGN §2, invariant 10: what the operator needs to find and remove the
/// ServiceAccount token Secrets a grantee made during a grant: `list` (it
/// asks for metadata only, of the type `kubernetes.io/service-account-token`)
/// and `delete` on Secrets. It holds this ClusterRole nowhere by itself: it
/// binds it (with `bind` on this name, no `escalate`) by a RoleBinding in
/// each tenant namespace its projects hold, and removes that binding when a
/// project lets the namespace go, so that it reads no Secret of any other
/// namespace.
pub fn token_finder_cluster_role() -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(TOKEN_FINDER_ROLE.into()),
            labels: Some([("app.kubernetes.io/part-of".to_owned(), "foureyes".to_owned())].into()),
            ..Default::default()
        },
        rules: Some(vec![rule(&[""], &["secrets"], &["list", "delete"])]),
        ..Default::default()
    }
}

/// The operator's Role in the Lease's namespace: create a Lease (creation
/// cannot be limited by name), and read and renew only the one named
/// `lease_name` (the lease manager writes by patch).
pub fn operator_lease_role(namespace: &str, lease_name: &str) -> Role {
    Role {
        metadata: ObjectMeta {
            name: Some(LEASE_ROLE.into()),
            namespace: Some(namespace.into()),
            labels: Some([("app.kubernetes.io/part-of".to_owned(), "foureyes".to_owned())].into()),
            ..Default::default()
        },
        rules: Some(vec![
            rule(&["coordination.k8s.io"], &["leases"], &["create"]),
            PolicyRule {
                api_groups: Some(vec!["coordination.k8s.io".into()]),
                resources: Some(vec!["leases".into()]),
                resource_names: Some(vec![lease_name.into()]),
                verbs: vec!["get".into(), "update".into(), "patch".into()],
                ..Default::default()
            },
        ]),
    }
}

/// Binds the lease Role to the operator's service account.
pub fn operator_lease_role_binding(namespace: &str, service_account: &str) -> RoleBinding {
    RoleBinding {
        metadata: ObjectMeta {
            name: Some(LEASE_ROLE.into()),
            namespace: Some(namespace.into()),
            labels: Some([("app.kubernetes.io/part-of".to_owned(), "foureyes".to_owned())].into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: LEASE_ROLE.into(),
        },
        subjects: Some(vec![Subject {
            api_group: None,
            kind: "ServiceAccount".into(),
            name: service_account.into(),
            namespace: Some(namespace.into()),
        }]),
    }
}

/// The operator's Role in its own namespace for the notification sinks:
/// `get` on exactly the Secrets they name. None without such Secrets (a
/// rule without names would reach every Secret of the namespace).
pub fn notification_secrets_role(config: &Config, namespace: &str) -> Option<Role> {
    let names: Vec<String> = config.notifications.secret_names().into_iter().collect();
    if names.is_empty() {
        return None;
    }
    Some(Role {
        metadata: ObjectMeta {
            name: Some(NOTIFICATION_SECRETS_ROLE.into()),
            namespace: Some(namespace.into()),
            labels: Some([("app.kubernetes.io/part-of".to_owned(), "foureyes".to_owned())].into()),
            ..Default::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec!["".into()]),
            resources: Some(vec!["secrets".into()]),
            resource_names: Some(names),
            verbs: vec!["get".into()],
            ..Default::default()
        }]),
    })
}

/// Binds the notification Secrets' Role to the operator's service account.
pub fn notification_secrets_role_binding(namespace: &str, service_account: &str) -> RoleBinding {
    RoleBinding {
        metadata: ObjectMeta {
            name: Some(NOTIFICATION_SECRETS_ROLE.into()),
            namespace: Some(namespace.into()),
            labels: Some([("app.kubernetes.io/part-of".to_owned(), "foureyes".to_owned())].into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: NOTIFICATION_SECRETS_ROLE.into(),
        },
        subjects: Some(vec![Subject {
            api_group: None,
            kind: "ServiceAccount".into(),
            name: service_account.into(),
            namespace: Some(namespace.into()),
        }]),
    }
}

/// The sweep's ClusterRole (`foureyes sweep --once`, run by the chart's
/// CronJob): list and delete RoleBindings, nothing else. RBAC cannot limit
/// it to the native bindings foureyes made; the admission policy
/// `foureyes-sweep` does ([`crate::manifests::policies::sweep_policy_in`]).
pub fn sweep_cluster_role() -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(SWEEP.into()),
            labels: Some([("app.kubernetes.io/part-of".to_owned(), "foureyes".to_owned())].into()),
            ..Default::default()
        },
        rules: Some(vec![rule(
            &["rbac.authorization.k8s.io"],
            &["rolebindings"],
            &["list", "delete"],
        )]),
        ..Default::default()
    }
}

/// Binds the sweep's ClusterRole to its service account in `namespace`.
pub fn sweep_cluster_role_binding(namespace: &str) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(SWEEP.into()),
            labels: Some([("app.kubernetes.io/part-of".to_owned(), "foureyes".to_owned())].into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: SWEEP.into(),
        },
        subjects: Some(vec![Subject {
            api_group: None,
            kind: "ServiceAccount".into(),
            name: SWEEP.into(),
            namespace: Some(namespace.into()),
        }]),
    }
}

/// Everything `foureyes rbac` prints, as objects with `apiVersion` and
/// `kind`: the ClusterRole, its binding, the lease Role and its binding, the
/// auditors' ClusterRole and its binding, the lockout writers' and the
/// sweep's ClusterRoles and their bindings, the token finder's ClusterRole
/// (bound by the operator itself, per tenant namespace), and, when
/// notification sinks name Secrets, the Role that reads them and its binding.
pub fn operator_rbac(
    config: &Config,
    namespace: &str,
    service_account: &str,
    lease_name: &str,
) -> Vec<serde_json::Value> {
    fn typed<T: serde::Serialize>(obj: T, kind: &str) -> serde_json::Value {
        let mut v = serde_json::to_value(obj).expect("RBAC objects serialise");
        v["apiVersion"] = "rbac.authorization.k8s.io/v1".into();
        v["kind"] = kind.into();
        v
    }
    let mut out = vec![
        typed(operator_cluster_role(config), "ClusterRole"),
        typed(
            operator_cluster_role_binding(namespace, service_account),
            "ClusterRoleBinding",
        ),
        typed(operator_lease_role(namespace, lease_name), "Role"),
        typed(operator_lease_role_binding(namespace, service_account), "RoleBinding"),
        typed(auditor_cluster_role(), "ClusterRole"),
        typed(auditor_cluster_role_binding(config), "ClusterRoleBinding"),
        typed(lockout_writer_cluster_role(), "ClusterRole"),
        typed(lockout_writer_cluster_role_binding(config), "ClusterRoleBinding"),
        typed(sweep_cluster_role(), "ClusterRole"),
        typed(sweep_cluster_role_binding(namespace), "ClusterRoleBinding"),
        typed(token_finder_cluster_role(), "ClusterRole"),
    ];
    if let Some(role) = notification_secrets_role(config, namespace) {
        out.push(typed(role, "Role"));
        out.push(typed(
            notification_secrets_role_binding(namespace, service_account),
            "RoleBinding",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_wildcards_no_escalate_and_bind_only_on_allowed_cluster_roles_and_workspace_roles() {
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
                assert_eq!(r.verbs, vec!["bind".to_owned()], "bind stands alone: {r:?}");
                let names = r.resource_names.clone().expect("bind only by name");
                match r.resources.as_deref() {
                    Some([one]) if one == "clusterroles" && names == [TOKEN_FINDER_ROLE] => {}
                    Some([one]) if one == "clusterroles" => {
                        assert_eq!(names, vec!["edit".to_owned(), "view".to_owned()])
                    }
                    Some([one]) if one == "roles" => assert_eq!(
                        names,
                        vec![
                            "foureyes-manager".to_owned(),
                            "foureyes-member".to_owned(),
                            "foureyes-auditor".to_owned()
                        ]
                    ),
                    other => panic!("bind on {other:?}"),
                }
            }
        }
        assert_eq!(rules.iter().filter(|r| r.verbs.iter().any(|v| v == "bind")).count(), 3);
        // No Secrets of its own: only through the token finder, per tenant namespace.
        assert!(
            !rules
                .iter()
                .any(|r| r.resources.iter().flatten().any(|x| x == "secrets")),
            "secrets only through the token finder"
        );
        // ClusterRoleBindings are read (what a locked-out subject holds
        // outside foureyes), never written.
        for r in rules
            .iter()
            .filter(|r| r.resources.iter().flatten().any(|x| x == "clusterrolebindings"))
        {
            assert_eq!(r.verbs, ["get", "list", "watch"], "{r:?}");
        }
        assert!(
            !rules
                .iter()
                .any(|r| r.resources.iter().flatten().any(|x| x == "leases")),
            "leases only through the namespaced Role"
        );
    }

    #[test]
    fn by_default_bind_reaches_the_foureyes_project_roles_and_the_token_finder_only() {
        let rules = operator_cluster_role(&Config::default()).rules.unwrap();
        let names: Vec<_> = rules
            .iter()
            .filter(|r| r.verbs == ["bind"] && r.resources.as_deref() == Some(&["clusterroles".to_owned()][..]))
            .flat_map(|r| r.resource_names.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "foureyes-token-finder",
                "foureyes-admin",
                "foureyes-edit",
                "foureyes-view"
            ]
        );
    }

    #[test]
    fn the_sweep_may_list_and_delete_rolebindings_and_nothing_else() {
        let rules = sweep_cluster_role().rules.unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].resources.as_deref(), Some(&["rolebindings".to_owned()][..]));
        assert_eq!(
            rules[0].api_groups.as_deref(),
            Some(&["rbac.authorization.k8s.io".to_owned()][..])
        );
        assert_eq!(rules[0].verbs, ["list", "delete"]);
        let binding = sweep_cluster_role_binding("ops");
        let subject = &binding.subjects.unwrap()[0];
        assert_eq!(
            (
                subject.kind.as_str(),
                subject.namespace.as_deref(),
                subject.name.as_str()
            ),
            ("ServiceAccount", Some("ops"), SWEEP)
        );
    }

    #[test]
    fn the_lease_role_reaches_only_its_lease() {
        let role = operator_lease_role("ops", "foureyes");
        assert_eq!(role.metadata.namespace.as_deref(), Some("ops"));
        let rules = role.rules.unwrap();
        for r in &rules {
            assert_eq!(r.resources.as_deref(), Some(&["leases".to_owned()][..]));
            assert_eq!(r.api_groups.as_deref(), Some(&["coordination.k8s.io".to_owned()][..]));
            match r.resource_names.as_deref() {
                // Creation cannot be limited by name: nothing else unnamed.
                None => assert_eq!(r.verbs, vec!["create".to_owned()]),
                Some(names) => {
                    assert_eq!(names, &["foureyes".to_owned()][..]);
                    assert!(!r.verbs.iter().any(|v| v == "*" || v == "delete" || v == "list"));
                }
            }
        }
        let binding = operator_lease_role_binding("ops", "op");
        assert_eq!(binding.role_ref.kind, "Role");
        let subject = &binding.subjects.unwrap()[0];
        assert_eq!(
            (subject.namespace.as_deref(), subject.name.as_str()),
            (Some("ops"), "op")
        );
        let all = operator_rbac(&Config::default(), "ops", "op", "foureyes");
        let kinds: Vec<_> = all.iter().map(|o| o["kind"].as_str().unwrap().to_owned()).collect();
        assert_eq!(
            kinds,
            [
                "ClusterRole",
                "ClusterRoleBinding",
                "Role",
                "RoleBinding",
                "ClusterRole",
                "ClusterRoleBinding",
                "ClusterRole",
                "ClusterRoleBinding",
                "ClusterRole",
                "ClusterRoleBinding",
                "ClusterRole"
            ]
        );
    }

    #[test]
    fn the_token_finder_lists_and_deletes_secrets_and_nothing_else() {
        let rules = token_finder_cluster_role().rules.unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].api_groups.as_deref(), Some(&["".to_owned()][..]));
        assert_eq!(rules[0].resources.as_deref(), Some(&["secrets".to_owned()][..]));
        assert_eq!(rules[0].verbs, ["list", "delete"]);
    }

    #[test]
    fn the_notification_secrets_are_read_by_name_only() {
        assert!(notification_secrets_role(&Config::default(), "ops").is_none());
        let config: Config = serde_yaml::from_str(
            r#"
notifications:
  sinks:
  - { name: a, url: "https://a", secretRef: { name: hooks, key: hmac } }
  - { name: b, format: slack, urlSecretRef: { name: slack, key: url }, secretRef: { name: hooks, key: other } }
"#,
        )
        .unwrap();
        let role = notification_secrets_role(&config, "ops").unwrap();
        assert_eq!(role.metadata.namespace.as_deref(), Some("ops"));
        let rules = role.rules.unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].resources.as_deref(), Some(&["secrets".to_owned()][..]));
        assert_eq!(rules[0].verbs, ["get"]);
        assert_eq!(
            rules[0].resource_names.as_deref(),
            Some(&["hooks".to_owned(), "slack".to_owned()][..])
        );
        let all = operator_rbac(&config, "ops", "op", "foureyes");
        assert_eq!(all.len(), 13);
        assert_eq!(all[12]["kind"], "RoleBinding");
        assert_eq!(all[12]["subjects"][0]["name"], "op");
        assert_eq!(operator_rbac(&Config::default(), "ops", "op", "foureyes").len(), 11);
    }

    #[test]
    fn partners_may_write_lockouts_and_nothing_else() {
        let config: Config = serde_yaml::from_str("partners: {users: [pat], groups: [platform]}").unwrap();
        let rules = lockout_writer_cluster_role().rules.unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].resources.as_deref(), Some(&["lockouts".to_owned()][..]));
        assert!(rules[0].verbs.iter().any(|v| v == "lock"));
        let subjects = lockout_writer_cluster_role_binding(&config).subjects.unwrap();
        let names: Vec<_> = subjects.iter().map(|s| (s.kind.as_str(), s.name.as_str())).collect();
        assert_eq!(names, [("Group", "platform"), ("User", "pat")]);
        assert!(
            lockout_writer_cluster_role_binding(&Config::default())
                .subjects
                .is_none()
        );
    }

    #[test]
    fn auditors_read_workspaces_and_nothing_else() {
        let config: Config = serde_yaml::from_str("auditors: {users: [ann], groups: [audit, sec]}").unwrap();
        let role = auditor_cluster_role();
        let rules = role.rules.unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].resources.as_deref(), Some(&["workspaces".to_owned()][..]));
        assert_eq!(rules[0].verbs, vec!["get", "list", "watch"]);
        let binding = auditor_cluster_role_binding(&config);
        let subjects: Vec<(String, String)> = binding
            .subjects
            .unwrap()
            .into_iter()
            .map(|s| (s.kind, s.name))
            .collect();
        assert_eq!(
            subjects,
            [("Group", "audit"), ("Group", "sec"), ("User", "ann")].map(|(k, n)| (k.to_owned(), n.to_owned()))
        );
        let none: Config = serde_yaml::from_str("auditors: {}").unwrap();
        assert!(auditor_cluster_role_binding(&none).subjects.is_none());
    }
}
