//! Types shared by several custom resources.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Longest subject name accepted (user names and group names).
pub const MAX_SUBJECT_NAME: usize = 253;
/// Longest justification, comment or reason accepted.
pub const MAX_TEXT: usize = 1024;

/// Whether a subject names a user or a group, as the API server authenticates them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, schemars::JsonSchema)]
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
#[x_kube(validation = Rule::new("!self.name.matches('[,[:cntrl:]]')")
    .message("subject: names with commas or control characters (tabs, line breaks) cannot be given roles (they could not be told apart in the admission stamps)"))]
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

/// A positive duration in Go's notation (`30m`, `4h`, `1h30m`), as
/// `metav1.Duration` and CEL's `duration()` read it. The text is kept as
/// written, so that what a user applied is what they read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoDuration {
    text: String,
    value: std::time::Duration,
}

impl GoDuration {
    /// The duration.
    pub fn get(&self) -> std::time::Duration {
        self.value
    }

    /// The duration as a `chrono` duration (saturating).
    pub fn to_chrono(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.value).unwrap_or(chrono::Duration::MAX)
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::str::FromStr for GoDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed: kube::core::Duration = s.parse().map_err(|e| format!("invalid duration {s:?}: {e}"))?;
        if parsed.is_negative() {
            return Err(format!("invalid duration {s:?}: must not be negative"));
        }
        Ok(Self {
            text: s.to_owned(),
            value: parsed.into(),
        })
    }
}

impl std::fmt::Display for GoDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for GoDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for GoDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "GoDuration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "maxLength": 32,
            "pattern": r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_keep_their_text() {
        let d: GoDuration = "1h30m".parse().unwrap();
        assert_eq!(d.get(), std::time::Duration::from_secs(5400));
        assert_eq!(serde_json::to_value(&d).unwrap(), "1h30m");
        assert!("-1h".parse::<GoDuration>().is_err());
        assert!("1d".parse::<GoDuration>().is_err());
        assert!(serde_json::from_value::<GoDuration>(serde_json::json!("soon")).is_err());
    }
}
