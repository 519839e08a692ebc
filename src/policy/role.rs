//! Roles: what a binding or request asks for, and what it grants.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::{RoleBindingSpec, RoleRequestSpec, WorkspaceRole};

/// A validated role: exactly one of a workspace role or a project role.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A workspace role.
    Workspace(WorkspaceRole),
    /// A project role in a project of the workspace.
    Project {
        /// The project's name.
        project: String,
        /// The project role's name.
        role: String,
    },
}

impl Role {
    /// Reads the role fields of a spec; `None` when they are inconsistent
    /// (the CRD's rules prevent that; an object stored before them may not).
    pub fn from_fields(
        workspace_role: Option<WorkspaceRole>,
        project: Option<&String>,
        project_role: Option<&String>,
    ) -> Option<Self> {
        match (workspace_role, project, project_role) {
            (Some(r), None, None) => Some(Role::Workspace(r)),
            (None, Some(p), Some(r)) => Some(Role::Project {
                project: p.clone(),
                role: r.clone(),
            }),
            _ => None,
        }
    }

    /// The role of a binding.
    pub fn of_binding(spec: &RoleBindingSpec) -> Option<Self> {
        Self::from_fields(spec.workspace_role, spec.project.as_ref(), spec.project_role.as_ref())
    }

    /// The role of a request.
    pub fn of_request(spec: &RoleRequestSpec) -> Option<Self> {
        Self::from_fields(spec.workspace_role, spec.project.as_ref(), spec.project_role.as_ref())
    }

    /// The role in one word: `manager`, `member`, or `<project>/<role>`.
    pub fn label(&self) -> String {
        match self {
            Role::Workspace(r) => r.as_str().to_owned(),
            Role::Project { project, role } => format!("{project}/{role}"),
        }
    }

    /// Whether this is a workspace role.
    pub fn is_workspace_role(&self) -> bool {
        matches!(self, Role::Workspace(_))
    }
}

/// What a role grants in native RBAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleTarget {
    /// A Role in the workspace namespace (`foureyes-manager`, `foureyes-member`).
    WorkspaceRole(String),
    /// A ClusterRole, bound in each tenant namespace of the project.
    ClusterRole(String),
}

/// Why a project role cannot be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleError {
    /// Neither the project nor the configuration defines it.
    Unknown(String),
    /// It maps to a ClusterRole outside the allow-list.
    NotAllowed {
        /// The project role.
        role: String,
        /// The ClusterRole it maps to.
        cluster_role: String,
    },
}

/// The ClusterRole a project role grants: the project's own map first, then
/// the configuration's; it must be on the allow-list.
pub fn resolve_cluster_role(
    role: &str,
    project_map: &BTreeMap<String, String>,
    config_map: &BTreeMap<String, String>,
    allowed: &BTreeSet<String>,
) -> Result<String, RoleError> {
    let cluster_role = project_map
        .get(role)
        .or_else(|| config_map.get(role))
        .ok_or_else(|| RoleError::Unknown(role.to_owned()))?;
    if !allowed.contains(cluster_role) {
        return Err(RoleError::NotAllowed {
            role: role.to_owned(),
            cluster_role: cluster_role.clone(),
        });
    }
    Ok(cluster_role.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn roles_read_from_fields() {
        let p = "checkout".to_owned();
        let r = "admin".to_owned();
        assert_eq!(
            Role::from_fields(Some(WorkspaceRole::Manager), None, None),
            Some(Role::Workspace(WorkspaceRole::Manager))
        );
        assert_eq!(
            Role::from_fields(None, Some(&p), Some(&r)).unwrap().label(),
            "checkout/admin"
        );
        assert_eq!(Role::from_fields(Some(WorkspaceRole::Member), Some(&p), Some(&r)), None);
        assert_eq!(Role::from_fields(None, Some(&p), None), None);
        assert_eq!(Role::from_fields(None, None, None), None);
    }

    #[test]
    fn project_map_overrides_config_and_allow_list_rules() {
        let allowed: BTreeSet<String> = ["view", "edit", "admin"].iter().map(|s| s.to_string()).collect();
        let config = map(&[("reader", "view"), ("admin", "admin")]);
        assert_eq!(
            resolve_cluster_role("reader", &map(&[]), &config, &allowed),
            Ok("view".into())
        );
        assert_eq!(
            resolve_cluster_role("reader", &map(&[("reader", "edit")]), &config, &allowed),
            Ok("edit".into())
        );
        assert_eq!(
            resolve_cluster_role("oncall", &map(&[]), &config, &allowed),
            Err(RoleError::Unknown("oncall".into()))
        );
        assert_eq!(
            resolve_cluster_role("root", &map(&[("root", "cluster-admin")]), &config, &allowed),
            Err(RoleError::NotAllowed {
                role: "root".into(),
                cluster_role: "cluster-admin".into()
            })
        );
    }
}
