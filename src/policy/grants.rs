//! What a role really grants (DESIGN §2: the approver sees what they sign).
//!
//! A project role is a ClusterRole bound in each tenant namespace. What it
//! grants there is its `rules`: for an aggregated ClusterRole the
//! aggregation controller fills them from the ClusterRoles its
//! `aggregationRule` selects, and [`effective_rules`] takes their union too,
//! so that a role read before the controller caught up shows the same.
//! [`permissions`] turns the rules into verbs by resource, marks the
//! dangerous ones and writes the one-line summary that the request's status
//! carries, the plugin prints and notifications quote.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::api::{Permissions, ResourceVerbs};

/// A kind of permission that lets its holder read what is secret, act as
/// someone else, or keep access past its expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Danger {
    /// Every verb on every resource.
    Everything,
    /// Reading Secrets (credentials of everything else in the namespace).
    SecretsRead,
    /// Running commands in, attaching to or forwarding ports of pods.
    ExecAttach,
    /// Creating or changing Roles and RoleBindings, `bind`, `escalate`.
    RbacWrites,
    /// Acting as another user, group or ServiceAccount.
    Impersonate,
    /// Minting ServiceAccount tokens (TokenRequests or token Secrets).
    TokenCreation,
}

impl Danger {
    /// How the summary and the plugin name it.
    pub fn label(self) -> &'static str {
        match self {
            Danger::Everything => "everything",
            Danger::SecretsRead => "secrets read",
            Danger::ExecAttach => "exec/attach",
            Danger::RbacWrites => "RBAC writes",
            Danger::Impersonate => "impersonate",
            Danger::TokenCreation => "token creation",
        }
    }

    const ALL: [Danger; 6] = [
        Danger::Everything,
        Danger::SecretsRead,
        Danger::ExecAttach,
        Danger::RbacWrites,
        Danger::Impersonate,
        Danger::TokenCreation,
    ];

    /// Whether one resource's verbs (`group`, `resource`) amount to this.
    fn held_by(self, group: &str, resource: &str, verbs: &BTreeSet<String>) -> bool {
        let any = |want: &[&str]| verbs.contains("*") || want.iter().any(|v| verbs.contains(*v));
        let core = group.is_empty() || group == "*";
        let is = |name: &str| resource == name || resource == "*";
        match self {
            Danger::Everything => group == "*" && resource == "*" && verbs.contains("*"),
            Danger::SecretsRead => core && is("secrets") && any(&["get", "list", "watch"]),
            Danger::ExecAttach => {
                core && (is("pods/exec") || is("pods/attach") || is("pods/portforward")) && any(&["create", "get"])
            }
            Danger::RbacWrites => {
                (group == "rbac.authorization.k8s.io" || group == "*")
                    && (is("roles") || is("rolebindings") || is("clusterroles") || is("clusterrolebindings"))
                    && any(&[
                        "create",
                        "update",
                        "patch",
                        "delete",
                        "deletecollection",
                        "bind",
                        "escalate",
                    ])
            }
            Danger::Impersonate => any(&["impersonate"]),
            Danger::TokenCreation => {
                core && (is("serviceaccounts/token") || is("secrets")) && any(&["create", "update", "patch"])
            }
        }
    }
}

/// The rules a ClusterRole grants: its own, and, for an aggregated one, those
/// of every ClusterRole in `all` its `aggregationRule` selects (followed
/// through aggregated roles it selects; each role once).
pub fn effective_rules<'a>(role: &'a ClusterRole, all: &'a [ClusterRole]) -> Vec<&'a PolicyRule> {
    let mut rules = vec![];
    let mut seen = BTreeSet::new();
    let mut todo = vec![role];
    while let Some(r) = todo.pop() {
        if !seen.insert(r.metadata.name.as_deref().unwrap_or_default()) {
            continue;
        }
        rules.extend(r.rules.iter().flatten());
        let selectors = r
            .aggregation_rule
            .as_ref()
            .and_then(|a| a.cluster_role_selectors.as_ref());
        for selector in selectors.into_iter().flatten() {
            todo.extend(all.iter().filter(|c| selects(selector, c)));
        }
    }
    rules
}

/// Whether a label selector selects a ClusterRole (an empty selector
/// selects nothing here: the aggregation controller ignores it too).
fn selects(selector: &LabelSelector, role: &ClusterRole) -> bool {
    let empty = BTreeMap::new();
    let labels = role.metadata.labels.as_ref().unwrap_or(&empty);
    let labels_match = selector
        .match_labels
        .as_ref()
        .is_none_or(|want| want.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let expressions_match = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    let constrains = selector.match_labels.as_ref().is_some_and(|m| !m.is_empty())
        || selector.match_expressions.as_ref().is_some_and(|m| !m.is_empty());
    constrains && labels_match && expressions_match
}

/// The usual order of verbs: reads, writes, then the rest by name.
fn verb_rank(v: &str) -> (usize, &str) {
    const ORDER: [&str; 9] = [
        "*",
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ];
    (ORDER.iter().position(|o| *o == v).unwrap_or(ORDER.len()), v)
}

/// What `rules` grant in a namespace that `cluster_role` is bound in:
/// verbs by resource (non-resource URLs are not granted by a RoleBinding and
/// are left out), the dangerous ones marked, and a one-line summary.
pub fn permissions(cluster_role: &str, rules: &[&PolicyRule]) -> Permissions {
    // (group, resource, named) -> verbs
    let mut by_resource: BTreeMap<(String, String, bool), BTreeSet<String>> = BTreeMap::new();
    for rule in rules {
        let named = rule.resource_names.as_ref().is_some_and(|n| !n.is_empty());
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                by_resource
                    .entry((group.clone(), resource.clone(), named))
                    .or_default()
                    .extend(rule.verbs.iter().cloned());
            }
        }
    }
    let mut dangerous = BTreeSet::new();
    let mut resources = vec![];
    let (mut reads, mut writes) = (BTreeSet::new(), BTreeSet::new());
    for ((group, resource, named), verbs) in &by_resource {
        let marks: Vec<Danger> = Danger::ALL
            .into_iter()
            .filter(|d| d.held_by(group, resource, verbs))
            .collect();
        dangerous.extend(marks.iter().copied());
        let key = match group.as_str() {
            "" => resource.clone(),
            g => format!("{g}/{resource}"),
        };
        let key = if *named { format!("{key} (named)") } else { key };
        if verbs.iter().any(|v| !matches!(v.as_str(), "get" | "list" | "watch")) {
            writes.insert(key.clone());
        }
        reads.insert(key.clone());
        let mut verbs: Vec<String> = if verbs.contains("*") {
            vec!["*".to_owned()]
        } else {
            verbs.iter().cloned().collect()
        };
        verbs.sort_by(|a, b| verb_rank(a).cmp(&verb_rank(b)));
        resources.push(ResourceVerbs {
            resource: key,
            verbs,
            dangerous: !marks.is_empty(),
        });
    }
    let dangerous: Vec<String> = dangerous.into_iter().map(|d| d.label().to_owned()).collect();
    let summary = match (reads.len(), writes.len()) {
        (0, _) => format!("{cluster_role}: grants nothing in a namespace"),
        (r, 0) => format!("{cluster_role}: reads {r} resources, writes none"),
        (r, w) => format!("{cluster_role}: reads {r}, writes {w} resources"),
    };
    let summary = match dangerous.as_slice() {
        [] => summary,
        d => format!("{summary}; dangerous: {}", d.join(", ")),
    };
    Permissions {
        cluster_role: cluster_role.to_owned(),
        summary,
        dangerous,
        resources,
    }
}

#[cfg(test)]
mod tests;
