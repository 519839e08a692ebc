//! Types shared by several custom resources.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Longest subject name accepted (user names and group names).
pub const MAX_SUBJECT_NAME: usize = 253;
/// Longest justification, comment or reason accepted.
pub const MAX_TEXT: usize = 1024;

/// Whether a subject names a user or a group, as the API server authenticates them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum SubjectKind {
    /// A user name as authenticated by the API server (for example `jane@example.com`).
    User,
    /// A group name as authenticated by the API server.
    Group,
}

/// The user or group who holds, or asks for, a role.
///
/// System identities are refused: granting to a `system:` group (for example
/// `system:authenticated`) would hand the role to everyone in it. Service
/// accounts (`system:serviceaccount:<namespace>:<name>`) are allowed as users.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, KubeSchema)]
#[x_kube(validation = Rule::new(
    "self.kind != 'Group' || !self.name.startsWith('system:')"
).message("subject: system groups (system:...) cannot be given roles"))]
#[x_kube(validation = Rule::new(
    "self.kind != 'User' || !self.name.startsWith('system:') || self.name.startsWith('system:serviceaccount:')"
).message("subject: system users (system:...) cannot be given roles, except service accounts"))]
pub struct Subject {
    /// `User` or `Group`.
    pub kind: SubjectKind,
    /// The user or group name exactly as the API server authenticates it.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

impl Subject {
    /// A user subject.
    pub fn user(name: impl Into<String>) -> Self {
        Self {
            kind: SubjectKind::User,
            name: name.into(),
        }
    }

    /// A group subject.
    pub fn group(name: impl Into<String>) -> Self {
        Self {
            kind: SubjectKind::Group,
            name: name.into(),
        }
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            SubjectKind::User => write!(f, "user {}", self.name),
            SubjectKind::Group => write!(f, "group {}", self.name),
        }
    }
}

/// A role that applies to the whole workspace.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceRole {
    /// Creates and revokes bindings and requests in the workspace namespace, and approves or denies requests.
    Manager,
    /// Reads the workspace's objects and history.
    Member,
}

impl WorkspaceRole {
    /// The role's name as written in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkspaceRole::Manager => "manager",
            WorkspaceRole::Member => "member",
        }
    }
}

impl std::fmt::Display for WorkspaceRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
