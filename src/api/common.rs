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
        if !within_go_range(s) {
            return Err(format!(
                "invalid duration {s:?}: a negative part, or longer than Go allows (2562047h47m16.854775807s)"
            ));
        }
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

/// The longest duration Go reads: 2^63 - 1 nanoseconds.
const MAX_GO_SECONDS: f64 = 9_223_372_036.854_775;

/// Whether kube's parser can read `s` without panicking: it multiplies each
/// part into a `std::time::Duration`, which panics on a negative part (the
/// `-5m` of `1h-5m`) and on a total past what it holds. Go refuses both
/// (beyond 2^63 - 1 ns), so they are refused here. Follows kube's splitting
/// into parts; at the first part kube refuses, kube decides.
fn within_go_range(s: &str) -> bool {
    let mut s = s.trim_start_matches('+').trim_start_matches('-');
    let mut total = 0.0_f64;
    while !s.is_empty() && s != "0" {
        let Some(unit_start) = s.find(|c: char| c.is_alphabetic()) else {
            return true;
        };
        let (value, rest) = s.split_at(unit_start);
        let Ok(value) = value.parse::<f64>() else {
            return true;
        };
        let (unit, next) = match rest.find(|c: char| !c.is_alphabetic()) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        s = next;
        let seconds = match unit {
            "ns" => 1e-9,
            "us" | "\u{00b5}s" | "\u{03bc}s" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return true,
        };
        if !value.is_finite() || value.is_sign_negative() {
            return false;
        }
        total += value * seconds;
        if total > MAX_GO_SECONDS {
            return false;
        }
    }
    true
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
        // Beyond what Go reads, or with a negative part: refused, not a panic.
        assert!("10000000000000000h".parse::<GoDuration>().is_err());
        assert!("2562048h".parse::<GoDuration>().is_err());
        assert!("1h-5m".parse::<GoDuration>().is_err());
        assert_eq!(
            "2562047h".parse::<GoDuration>().unwrap().get(),
            std::time::Duration::from_secs(2_562_047 * 3600)
        );
        assert!(serde_json::from_value::<GoDuration>(serde_json::json!("soon")).is_err());
    }
}
