//! `Lockout`: a subject shut out of everything foureyes grants, at once and
//! everywhere, until lifted (deleted) or expired (an account compromise).

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{GoDuration, Subject};
use super::conditions::Condition;

/// A subject (user or group) shut out of everything foureyes grants, in
/// every workspace, in one step: while it lasts, every foureyes binding of
/// the subject is revoked, every pending request for them is denied, their
/// votes stop counting, and the admission policy `foureyes-lockouts` refuses
/// new bindings, requests and votes for or by them.
///
/// Lifting it (deleting it) or its expiry restores nothing: access must be
/// granted again, through the usual approvals. Only partners and cluster
/// administrators may create, change or delete a lockout (RBAC and the
/// admission policy `foureyes-lockout-writers`). Its spec cannot change:
/// lift it and create another.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "foureyes.dev",
    version = "v1alpha1",
    kind = "Lockout",
    status = "LockoutStatus",
    shortname = "lo",
    category = "foureyes",
    derive = "PartialEq",
    doc = "A subject shut out of everything foureyes grants, at once and everywhere, until lifted or expired.",
    printcolumn(name = "Subject", type_ = "string", json_path = ".spec.subject.name"),
    printcolumn(
        name = "Kind",
        type_ = "string",
        json_path = ".spec.subject.kind",
        description = "User or Group"
    ),
    printcolumn(
        name = "Expires",
        type_ = "string",
        json_path = ".status.expiresAt",
        description = "empty: until lifted"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf")
    .message("a lockout's spec is immutable: lift it (delete it) and create another"))]
#[x_kube(validation = Rule::new("!(has(self.expiresAt) && has(self.duration))")
    .message("at most one of spec.expiresAt or spec.duration may be set"))]
pub struct LockoutSpec {
    /// The user or group locked out, exactly as the API server authenticates
    /// them. A user lockout also stops their votes and their own writes; a
    /// group lockout hits the bindings and requests whose subject is that
    /// group, and the writes of callers in it.
    pub subject: Subject,

    /// Why (an incident or ticket reference). Named in every revocation,
    /// refusal and history entry.
    #[schemars(length(min = 1, max = 1024))]
    #[x_kube(validation = Rule::new("self.trim().size() > 0").message("spec.reason must not be blank"))]
    pub reason: String,

    /// When the lockout ends by itself (RFC 3339). Without it (and without
    /// `duration`) the lockout lasts until it is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        with = "Option<String>",
        extend("format" = "date-time"),
        regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")
    )]
    pub expires_at: Option<DateTime<Utc>>,

    /// How long the lockout lasts from its creation (a Go duration such as
    /// `24h`), instead of `expiresAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s') && duration(self) <= duration('8760h')")
        .message("spec.duration must be positive and at most 8760h (a year)"))]
    pub duration: Option<GoDuration>,

    /// The user who created the lockout. The admission policy requires it to
    /// equal the caller's authenticated user name (unless the caller is a
    /// trusted asserter or the operator).
    #[schemars(length(min = 1, max = 253))]
    pub created_by: String,
}

/// Whether a lockout is in force.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum LockoutPhase {
    /// In force: the subject's foureyes access is revoked and new access refused.
    Active,
    /// Past its expiry: it refuses nothing any more (and restored nothing).
    Expired,
}

/// A native RBAC binding, not made by foureyes, that names the subject directly.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutsideGrant {
    /// `RoleBinding` or `ClusterRoleBinding`.
    #[schemars(length(max = 32))]
    pub kind: String,
    /// The RoleBinding's namespace (none for a ClusterRoleBinding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
    /// Its name.
    #[schemars(length(max = 253))]
    pub name: String,
    /// What it grants: `ClusterRole/<name>` or `Role/<name>`.
    #[schemars(length(max = 300))]
    pub role: String,
}

/// The observed state of a lockout.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LockoutStatus {
    /// The `metadata.generation` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The lockout's conditions: `Ready` is true once none of the subject's
    /// foureyes access remains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// `Active` or `Expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<LockoutPhase>,

    /// The effective expiry (`expiresAt`, or creation plus `duration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,

    /// Foureyes bindings this lockout revoked.
    #[serde(default)]
    pub revoked: i32,

    /// Pending requests for the subject that this lockout ended (`Denied`,
    /// reason `LockedOut`).
    #[serde(default)]
    pub ended_requests: i32,

    /// Foureyes bindings of the subject still in effect (revocation under
    /// way); 0 once the lockout is enforced.
    #[serde(default)]
    pub remaining: i32,

    /// The workspaces the lockout touched (where the subject held or asked
    /// for a role, or voted): each history records the lockout.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 4096), extend("x-kubernetes-list-type" = "set"))]
    pub workspaces: Vec<String>,

    /// Native RoleBindings and ClusterRoleBindings that name the subject
    /// directly and were not made by foureyes: access the lockout does not
    /// remove (foureyes never touches them). At most 256 are listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub outside_access: Vec<OutsideGrant>,

    /// How many such bindings exist in all (more than listed when over 256).
    #[serde(default)]
    pub outside_access_count: i32,
}
