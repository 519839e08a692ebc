//! `Project`: a project of a workspace, mapped to tenant namespaces.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::conditions::Condition;
use super::workspace::ChainHead;

/// A project of a workspace. It lives in the workspace's control namespace and
/// maps to one or more tenant namespaces, where its project roles take effect
/// as native RBAC.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "foureyes.dev",
    version = "v1alpha1",
    kind = "Project",
    namespaced,
    status = "ProjectStatus",
    shortname = "proj",
    category = "foureyes",
    derive = "PartialEq",
    doc = "A project of a workspace, mapped to the tenant namespaces where its roles take effect.",
    printcolumn(
        name = "Namespaces",
        type_ = "string",
        json_path = ".spec.namespaces",
        description = "Tenant namespaces of the project"
    ),
    printcolumn(
        name = "Bindings",
        type_ = "integer",
        json_path = ".status.activeBindings",
        description = "Active project role bindings"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct ProjectSpec {
    /// The tenant namespaces of the project. The operator creates each one,
    /// or adopts an existing one only if it already carries this project's
    /// labels; system namespaces and namespaces of other projects or
    /// workspaces are refused.
    #[schemars(
        length(min = 1, max = 32),
        inner(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")),
        extend("x-kubernetes-list-type" = "set")
    )]
    #[x_kube(validation = Rule::new(
        "self.all(n, !(n in ['default', 'kube-system', 'kube-public', 'kube-node-lease']) && !n.startsWith('kube-'))"
    ).message("spec.namespaces: system namespaces (default, kube-*) cannot be project namespaces"))]
    pub namespaces: Vec<TenantNamespace>,

    /// Project roles of this project and the ClusterRole each one grants, in
    /// addition to (or overriding) the operator's configured role map. Every
    /// ClusterRole named here must be on the operator's allow-list, or the
    /// binding that uses it is refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 16))]
    #[x_kube(validation = Rule::new(
        "self.all(k, k.matches('^[a-z][a-z0-9-]{0,62}$') && !(k in ['manager', 'member']))"
    ).message("spec.roleMap: role names are lowercase DNS labels and cannot be the workspace roles manager or member"))]
    #[x_kube(validation = Rule::new("self.all(k, self[k].size() > 0 && self[k].size() <= 253)")
        .message("spec.roleMap: ClusterRole names have 1 to 253 characters"))]
    pub role_map: BTreeMap<String, String>,

    /// A human-readable description of the project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
}

/// A namespace name (a DNS label).
pub type TenantNamespace = String;

/// The observed state of a project.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectStatus {
    /// The `metadata.generation` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The project's conditions; `Ready` summarises them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The tenant namespaces the project holds (created or adopted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub namespaces: Vec<String>,

    /// Active project role bindings.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub active_bindings: i32,

    /// The head of the project's history chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<ChainHead>,
}
