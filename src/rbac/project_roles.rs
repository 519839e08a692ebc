//! The ClusterRoles that project roles grant by default (DESIGN §2,
//! invariant 10): `foureyes-view`, `foureyes-edit` and `foureyes-admin`.
//!
//! They are the Kubernetes v1.37 built-in `view`, `edit` and `admin` (their
//! effective rules, as aggregated from `system:aggregate-to-view`, `-edit`
//! and `-admin`), minus every rule that lets a grantee make access for
//! themselves that outlives the grant:
//!
//! - writing RBAC (`roles`, `rolebindings`, `clusterroles`,
//!   `clusterrolebindings`), `bind` and `escalate`: `admin` could otherwise
//!   copy its grant into an unlabelled RoleBinding that foureyes never
//!   revokes. `foureyes-admin` keeps the *reads* of Roles and RoleBindings;
//! - `impersonate` of anything (`edit` impersonates service accounts);
//! - `create serviceaccounts/token`: a token can be minted to last far
//!   beyond the grant;
//! - writing `secrets`: a Secret of type `kubernetes.io/service-account-token`
//!   makes a token that never expires. Secrets stay readable in
//!   `foureyes-edit` and `foureyes-admin`, as in the built-ins, because
//!   ordinary work needs them; a namespace that still holds legacy
//!   service-account token Secrets exposes those tokens to anyone who can
//!   read its Secrets (map project roles to a ClusterRole without Secret reads
//!   there, or remove those Secrets).
//!
//! Everything else is kept as it is, so a grantee can still run workloads,
//! and a workload runs as a service account of the namespace: what a grantee
//! starts can outlive the grant (a CronJob, a Deployment that holds a service
//! account's token). That is not stopped by RBAC.
//!
//! The rules are written out here rather than aggregated: aggregation can only
//! add rules, never remove them, so these roles carry no aggregation labels and
//! do not pick up what other ClusterRoles aggregate into the built-ins (the
//! permissions on custom resources, for instance). A cluster that needs those
//! maps a project role to a ClusterRole of its own (`roleMap`). When the
//! cluster's Kubernetes version changes the built-ins, these lists are to be
//! derived again; a unit test checks them against a copy of the v1.37 rules
//! and an integration test checks that copy against a real API server.

use crate::wire::{ADMIN, DERIVED_FROM_ANNOTATION, EDIT, VIEW};
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::ObjectMeta;

/// One rule: every verb on every resource of every API group listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// API groups (`""` is the core group).
    pub groups: &'static [&'static str],
    /// Resources and subresources.
    pub resources: &'static [&'static str],
    /// Verbs.
    pub verbs: &'static [&'static str],
}

const fn rule(
    groups: &'static [&'static str],
    resources: &'static [&'static str],
    verbs: &'static [&'static str],
) -> Rule {
    Rule {
        groups,
        resources,
        verbs,
    }
}

// The verb sets of the Kubernetes bootstrap policy.
const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const READ_WRITE: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// `system:aggregate-to-view` (v1.37), that is `view`: nothing to remove.
pub const VIEW_RULES: &[Rule] = &[
    rule(
        &[""],
        &[
            "configmaps",
            "endpoints",
            "persistentvolumeclaims",
            "persistentvolumeclaims/status",
            "pods",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "serviceaccounts",
            "services",
            "services/status",
        ],
        READ,
    ),
    rule(
        &[""],
        &[
            "bindings",
            "limitranges",
            "namespaces/status",
            "pods/log",
            "pods/status",
            "replicationcontrollers/status",
            "resourcequotas",
            "resourcequotas/status",
        ],
        READ,
    ),
    rule(&[""], &["namespaces"], READ),
    rule(&["", "events.k8s.io"], &["events"], READ),
    rule(&["discovery.k8s.io"], &["endpointslices"], READ),
    rule(
        &["apps"],
        &[
            "controllerrevisions",
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "statefulsets",
            "statefulsets/scale",
            "statefulsets/status",
        ],
        READ,
    ),
    rule(
        &["autoscaling"],
        &["horizontalpodautoscalers", "horizontalpodautoscalers/status"],
        READ,
    ),
    rule(
        &["batch"],
        &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
        READ,
    ),
    rule(
        &["extensions"],
        &[
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "ingresses",
            "ingresses/status",
            "networkpolicies",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "replicationcontrollers/scale",
        ],
        READ,
    ),
    rule(
        &["policy"],
        &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        READ,
    ),
    rule(
        &["networking.k8s.io"],
        &["ingresses", "ingresses/status", "networkpolicies"],
        READ,
    ),
    rule(
        &["resource.k8s.io"],
        &["resourceclaims", "resourceclaims/status", "resourceclaimtemplates"],
        READ,
    ),
];

/// `system:aggregate-to-edit` (v1.37), what `edit` adds to `view`, without
/// `impersonate serviceaccounts`, `create serviceaccounts/token` and the
/// writes of `secrets` (which stay readable).
pub const EDIT_RULES: &[Rule] = &[
    rule(
        &[""],
        &[
            "pods/attach",
            "pods/exec",
            "pods/portforward",
            "pods/proxy",
            "secrets",
            "services/proxy",
        ],
        READ,
    ),
    // Left out: impersonate serviceaccounts.
    rule(
        &[""],
        &["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"],
        WRITE,
    ),
    rule(&[""], &["pods/eviction"], &["create"]),
    rule(
        &[""],
        &[
            "configmaps",
            "persistentvolumeclaims",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            // Left out: secrets.
            "serviceaccounts",
            "services",
            "services/proxy",
        ],
        WRITE,
    ),
    // Left out: create serviceaccounts/token.
    rule(&["", "events.k8s.io"], &["events"], WRITE),
    rule(
        &["apps"],
        &[
            "daemonsets",
            "deployments",
            "deployments/rollback",
            "deployments/scale",
            "replicasets",
            "replicasets/scale",
            "statefulsets",
            "statefulsets/scale",
        ],
        WRITE,
    ),
    rule(&["autoscaling"], &["horizontalpodautoscalers"], WRITE),
    rule(&["batch"], &["cronjobs", "jobs"], WRITE),
    rule(
        &["extensions"],
        &[
            "daemonsets",
            "deployments",
            "deployments/rollback",
            "deployments/scale",
            "ingresses",
            "networkpolicies",
            "replicasets",
            "replicasets/scale",
            "replicationcontrollers/scale",
        ],
        WRITE,
    ),
    rule(&["policy"], &["poddisruptionbudgets"], WRITE),
    rule(&["networking.k8s.io"], &["ingresses", "networkpolicies"], WRITE),
    rule(&["coordination.k8s.io"], &["leases"], READ_WRITE),
    rule(
        &["resource.k8s.io"],
        &["resourceclaims", "resourceclaimtemplates"],
        WRITE,
    ),
];

/// `system:aggregate-to-admin` (v1.37), what `admin` adds to `edit`, with
/// Roles and RoleBindings read-only.
pub const ADMIN_RULES: &[Rule] = &[
    rule(&["authorization.k8s.io"], &["localsubjectaccessreviews"], &["create"]),
    // Left out: create, update, patch, delete and deletecollection.
    rule(&["rbac.authorization.k8s.io"], &["rolebindings", "roles"], READ),
];

/// The names of the three ClusterRoles, from the narrowest to the widest.
pub const NAMES: [&str; 3] = [VIEW, EDIT, ADMIN];

/// The rules of one of the three ClusterRoles (by name), in order; empty for
/// any other name. As in the built-ins, each contains the narrower ones.
pub fn rules_of(name: &str) -> Vec<Rule> {
    let parts: &[&[Rule]] = match name {
        VIEW => &[VIEW_RULES],
        EDIT => &[VIEW_RULES, EDIT_RULES],
        ADMIN => &[VIEW_RULES, EDIT_RULES, ADMIN_RULES],
        _ => &[],
    };
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

/// The built-in ClusterRole that one of the three was derived from, and what
/// was left out of it.
fn derivation(name: &str) -> (&'static str, &'static str) {
    match name {
        VIEW => ("view", "nothing"),
        EDIT => (
            "edit",
            "impersonate serviceaccounts, create serviceaccounts/token, Secret writes",
        ),
        ADMIN => (
            "admin",
            "Role and RoleBinding writes, impersonate serviceaccounts, create serviceaccounts/token, Secret writes",
        ),
        _ => unreachable!("not a project ClusterRole: {name}"),
    }
}

/// Whether a grantee who may `verb` `resource` in `group` could make access
/// for themselves that outlives their grant (see the module's comment). A
/// wildcard anywhere counts as everything.
pub fn is_forbidden(group: &str, resource: &str, verb: &str) -> bool {
    let read = READ.contains(&verb);
    group == "*"
        || resource == "*"
        || verb == "*"
        || verb == "bind"
        || verb == "escalate"
        || verb.starts_with("impersonate")
        || (group == "rbac.authorization.k8s.io" && !read)
        || (group.is_empty() && resource == "serviceaccounts/token")
        || (group.is_empty() && resource == "secrets" && !read)
}

/// The three ClusterRoles, labelled as part of foureyes.
pub fn cluster_roles() -> Vec<ClusterRole> {
    NAMES
        .iter()
        .map(|name| ClusterRole {
            metadata: ObjectMeta {
                name: Some((*name).to_owned()),
                labels: Some([("app.kubernetes.io/part-of".to_owned(), "foureyes".to_owned())].into()),
                annotations: Some(
                    [(DERIVED_FROM_ANNOTATION.to_owned(), {
                        let (from, left_out) = derivation(name);
                        format!("the Kubernetes v1.37 ClusterRole {from}; left out: {left_out}")
                    })]
                    .into(),
                ),
                ..Default::default()
            },
            rules: Some(
                rules_of(name)
                    .into_iter()
                    .map(|r| PolicyRule {
                        api_groups: Some(r.groups.iter().map(|s| (*s).to_owned()).collect()),
                        resources: Some(r.resources.iter().map(|s| (*s).to_owned()).collect()),
                        verbs: r.verbs.iter().map(|s| (*s).to_owned()).collect(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            aggregation_rule: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    type Triple = (String, String, String);

    fn triples(rules: &[PolicyRule]) -> BTreeSet<Triple> {
        let mut out = BTreeSet::new();
        for r in rules {
            assert!(r.resource_names.is_none() && r.non_resource_urls.is_none(), "{r:?}");
            for g in r.api_groups.iter().flatten() {
                for res in r.resources.iter().flatten() {
                    for v in &r.verbs {
                        out.insert((g.clone(), res.clone(), v.clone()));
                    }
                }
            }
        }
        out
    }

    fn ours(name: &str) -> BTreeSet<Triple> {
        let role = cluster_roles()
            .into_iter()
            .find(|r| r.metadata.name.as_deref() == Some(name));
        triples(&role.unwrap().rules.unwrap())
    }

    #[test]
    fn no_rule_creates_rbac_binds_escalates_impersonates_mints_tokens_or_writes_secrets() {
        for name in NAMES {
            let all = ours(name);
            assert!(!all.is_empty(), "{name}");
            for (g, r, v) in &all {
                assert!(!is_forbidden(g, r, v), "{name} allows {v} {r} in {g:?}");
                assert!(!["*", "bind", "escalate"].contains(&v.as_str()), "{name}: {v}");
                assert!(!v.contains("impersonate"), "{name}: {v} {r}");
                assert!(g != "*" && r != "*", "{name}: {g} {r}");
                assert!(r != "serviceaccounts/token", "{name}: {v} {r}");
                if g == "rbac.authorization.k8s.io" || r == "secrets" {
                    assert!(["get", "list", "watch"].contains(&v.as_str()), "{name}: {v} {r}");
                }
                if g == "rbac.authorization.k8s.io" {
                    assert!(r == "roles" || r == "rolebindings", "{name}: {v} {r}");
                }
            }
        }
    }

    #[test]
    fn the_predicate_catches_every_persistence_vector() {
        for (g, r, v) in [
            ("rbac.authorization.k8s.io", "rolebindings", "create"),
            ("rbac.authorization.k8s.io", "roles", "patch"),
            ("rbac.authorization.k8s.io", "clusterroles", "bind"),
            ("rbac.authorization.k8s.io", "clusterroles", "escalate"),
            ("rbac.authorization.k8s.io", "clusterrolebindings", "update"),
            ("", "serviceaccounts", "impersonate"),
            ("", "users", "impersonate"),
            ("authentication.k8s.io", "userextras/scopes", "impersonate"),
            ("", "serviceaccounts/token", "create"),
            ("", "secrets", "create"),
            ("", "secrets", "update"),
            ("", "secrets", "patch"),
            ("", "*", "get"),
            ("apps", "deployments", "*"),
        ] {
            assert!(is_forbidden(g, r, v), "{v} {r} in {g:?}");
        }
        for (g, r, v) in [
            ("", "secrets", "get"),
            ("rbac.authorization.k8s.io", "rolebindings", "list"),
            ("", "pods/exec", "create"),
            ("", "serviceaccounts", "create"),
            ("apps", "deployments", "create"),
        ] {
            assert!(!is_forbidden(g, r, v), "{v} {r} in {g:?}");
        }
    }

    /// Each role is exactly its built-in (a copy of the v1.37 rules as the API
    /// server aggregates them) without what `is_forbidden` says, and nothing
    /// was left out that it does not say.
    #[test]
    fn each_role_is_its_built_in_minus_the_forbidden_rules() {
        let built_ins: Vec<ClusterRole> = serde_yaml::from_str(BUILT_INS).unwrap();
        for name in NAMES {
            let original = built_ins
                .iter()
                .find(|r| r.metadata.name.as_deref() == Some(derivation(name).0))
                .unwrap();
            let original = triples(original.rules.as_deref().unwrap());
            let expected: BTreeSet<Triple> = original
                .iter()
                .filter(|(g, r, v)| !is_forbidden(g, r, v))
                .cloned()
                .collect();
            let ours = ours(name);
            assert_eq!(
                ours.difference(&expected).collect::<Vec<_>>(),
                Vec::<&Triple>::new(),
                "{name} has more than its built-in"
            );
            assert_eq!(
                expected.difference(&ours).collect::<Vec<_>>(),
                Vec::<&Triple>::new(),
                "{name} lacks what its built-in allows"
            );
        }
    }

    #[test]
    fn wider_roles_contain_the_narrower_ones_and_nothing_aggregates() {
        assert!(ours(VIEW).is_subset(&ours(EDIT)));
        assert!(ours(EDIT).is_subset(&ours(ADMIN)));
        for role in cluster_roles() {
            assert!(role.aggregation_rule.is_none());
            let labels = role.metadata.labels.unwrap();
            assert_eq!(labels.len(), 1, "{labels:?}");
            assert_eq!(labels["app.kubernetes.io/part-of"], "foureyes");
        }
        assert!(rules_of("edit").is_empty());
    }

    /// The rules of the built-in `view`, `edit` and `admin` ClusterRoles of a
    /// Kubernetes v1.37 API server with its default feature gates, after
    /// aggregation (`tests/project_roles.rs` checks this copy against a real
    /// API server).
    const BUILT_INS: &str = include_str!("builtin-roles-v1.37.yaml");
}
