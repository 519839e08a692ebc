//! `RoleBinding`: one subject holding one role until an expiry time.

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{GoDuration, Subject, WorkspaceRole};
use super::conditions::Condition;

/// One subject holding one workspace role or one project role until an expiry
/// time. The operator materialises it as native RBAC only if it is authorised
/// (created from an approved request, by a partner, or by a manager where the
/// workspace needs a single approval); otherwise it stays `Pending` with a
/// condition saying why.
///
/// Its plural is the same as RBAC's: `kubectl get rolebindings` still means
/// RBAC's; reach these by the short name `frb` or by
/// `rolebindings.foureyes.dev`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "foureyes.dev",
    version = "v1alpha1",
    kind = "RoleBinding",
    namespaced,
    status = "RoleBindingStatus",
    shortname = "frb",
    category = "foureyes",
    derive = "PartialEq",
    doc = "One subject holding one workspace or project role until an expiry time.",
    printcolumn(name = "Subject", type_ = "string", json_path = ".spec.subject.name"),
    printcolumn(name = "Project", type_ = "string", json_path = ".spec.project"),
    printcolumn(
        name = "Role",
        type_ = "string",
        json_path = ".status.role",
        description = "workspace role, or project role"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Expires", type_ = "string", json_path = ".status.expiresAt"),
    printcolumn(
        name = "Ratification",
        type_ = "string",
        json_path = ".status.ratification.state",
        description = "break-glass only: Awaiting, Ratified, Unratified or Objected",
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.workspaceRole) != has(self.projectRole)")
    .message("exactly one of spec.workspaceRole or spec.projectRole must be set"))]
#[x_kube(validation = Rule::new("has(self.project) == has(self.projectRole)")
    .message("spec.project and spec.projectRole must be set together"))]
#[x_kube(validation = Rule::new("has(self.expiresAt) != has(self.duration)")
    .message("exactly one of spec.expiresAt or spec.duration must be set"))]
#[x_kube(validation = Rule::new("self.subject == oldSelf.subject").message("spec.subject is immutable"))]
#[x_kube(validation = Rule::new(
    "!has(self.workspaceRole) || self.workspaceRole != 'manager' || self.subject.kind != 'User' || !self.subject.name.startsWith('system:serviceaccount:')"
).message("a ServiceAccount cannot be a workspace manager: everyone who can mint its tokens would vote as it"))]
#[x_kube(validation = Rule::new(
    "(has(self.workspaceRole) ? self.workspaceRole : '') == (has(oldSelf.workspaceRole) ? oldSelf.workspaceRole : '') && (has(self.project) ? self.project : '') == (has(oldSelf.project) ? oldSelf.project : '') && (has(self.projectRole) ? self.projectRole : '') == (has(oldSelf.projectRole) ? oldSelf.projectRole : '')"
).message("the role (spec.workspaceRole, spec.project, spec.projectRole) is immutable"))]
#[x_kube(validation = Rule::new("self.justification == oldSelf.justification").message("spec.justification is immutable"))]
#[x_kube(validation = Rule::new("self.grantedBy == oldSelf.grantedBy").message("spec.grantedBy is immutable"))]
#[x_kube(validation = Rule::new(
    "has(self.expiresAt) == has(oldSelf.expiresAt) && has(self.duration) == has(oldSelf.duration) && (!has(self.duration) || self.duration == oldSelf.duration) && (!has(self.expiresAt) || self.expiresAt == oldSelf.expiresAt)"
)
    .message("the expiry (spec.expiresAt, spec.duration) is immutable: revoke and grant again"))]
#[x_kube(validation = Rule::new("has(self.originRequest) == has(oldSelf.originRequest) && (!has(self.originRequest) || self.originRequest == oldSelf.originRequest)")
    .message("spec.originRequest is immutable"))]
#[x_kube(validation = Rule::new("!has(oldSelf.revocation) || (has(self.revocation) && self.revocation == oldSelf.revocation)")
    .message("spec.revocation cannot be changed or removed once set"))]
#[x_kube(validation = Rule::new(
    "(has(self.ratifications) ? self.ratifications.size() : 0) >= (has(oldSelf.ratifications) ? oldSelf.ratifications.size() : 0) && (!has(oldSelf.ratifications) || oldSelf.ratifications.all(r, self.ratifications.indexOf(r) == oldSelf.ratifications.indexOf(r)))"
).message("spec.ratifications is append-only: existing entries cannot be edited, reordered or removed"))]
#[x_kube(validation = Rule::new(
    "!has(self.ratifications) || self.ratifications.all(r, self.ratifications.filter(x, x.user == r.user).size() == 1)"
).message("spec.ratifications: one verdict per person"))]
#[x_kube(validation = Rule::new(
    "!has(self.ratifications) || self.ratifications.all(r, r.user != self.grantedBy && (self.subject.kind != 'User' || r.user != self.subject.name))"
).message("spec.ratifications: neither the subject nor the one who granted it (the partner who broke the glass) ratifies a break-glass grant"))]
pub struct RoleBindingSpec {
    /// The user or group who holds the role.
    pub subject: Subject,

    /// A workspace role (`manager` or `member`). Exactly one of
    /// `workspaceRole` or `projectRole` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_role: Option<WorkspaceRole>,

    /// The project in this workspace whose tenant namespaces the project role
    /// applies to. Set together with `projectRole`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub project: Option<String>,

    /// A project role (`reader`, `user`, `admin`, or another role that the
    /// operator's configuration or the project's role map defines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z][a-z0-9-]*$"))]
    #[x_kube(validation = Rule::new("!(self in ['manager', 'member'])")
        .message("spec.projectRole: manager and member are workspace roles; use spec.workspaceRole"))]
    pub project_role: Option<String>,

    /// The absolute time at which the role ends (RFC 3339). Exactly one of
    /// `expiresAt` or `duration` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // `date-time` and a strict pattern: the API server's date-time check
    // alone accepts strings that no RFC 3339 parser reads, and one such
    // time would leave the whole object unreadable to the operator.
    #[schemars(
        with = "Option<String>",
        extend("format" = "date-time"),
        regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")
    )]
    pub expires_at: Option<DateTime<Utc>>,

    /// How long the role lasts from the binding's creation (a Go duration such
    /// as `30m` or `4h`), capped by the workspace's `maxDuration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s') && duration(self) <= duration('2160h')")
        .message("spec.duration must be positive and at most 2160h (90 days)"))]
    pub duration: Option<GoDuration>,

    /// Why the role is needed (an incident or ticket reference). Immutable.
    #[schemars(length(min = 1, max = 1024))]
    #[x_kube(validation = Rule::new("self.trim().size() > 0").message("spec.justification must not be blank"))]
    pub justification: String,

    /// The user who created the binding. The admission policy requires it to
    /// equal the caller's authenticated user name (unless the caller is a
    /// trusted asserter or the operator). Immutable.
    #[schemars(length(min = 1, max = 253))]
    pub granted_by: String,

    /// The role request this binding was created from; set only by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_request: Option<OriginRequest>,

    /// Set to end the role at once. Revocation needs no approval; once set it
    /// cannot be changed or removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<Revocation>,

    /// Managers' verdicts on a break-glass grant, append-only: `Ratify` or
    /// `Object` (an objection revokes it at once). The admission policy
    /// requires each newly appended entry's `user` to equal the caller's
    /// user name; the operator counts the first verdict of a manager who is
    /// neither the subject nor the partner who broke the glass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), extend("x-kubernetes-list-type" = "atomic"))]
    pub ratifications: Vec<Ratification>,
}

/// Most verdicts a binding can carry.
pub const MAX_RATIFICATIONS: usize = 16;

/// A manager's verdict on a break-glass grant.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ratification {
    /// Who gives the verdict; must equal the caller's authenticated user name.
    #[schemars(length(min = 1, max = 253))]
    pub user: String,
    /// `Ratify` or `Object`.
    pub verdict: Verdict,
    /// An optional comment (for an objection, why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub comment: Option<String>,
    /// When it was given, as the manager's client saw it (RFC 3339). The
    /// operator records its own observation time in the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        with = "Option<String>",
        extend("format" = "date-time"),
        regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")
    )]
    pub time: Option<DateTime<Utc>>,
}

/// A verdict on a break-glass grant.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum Verdict {
    /// The break-glass was justified: the grant stands.
    Ratify,
    /// It was not: the grant is revoked at once.
    Object,
}

/// Where a break-glass grant's ratification stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum RatificationState {
    /// Waiting for a manager's verdict, within the window.
    Awaiting,
    /// A manager ratified it.
    Ratified,
    /// The window ended without a verdict (a verdict still counts later).
    Unratified,
    /// A manager objected: the grant was revoked.
    Objected,
}

/// The ratification of a break-glass grant.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RatificationStatus {
    /// Where it stands.
    pub state: RatificationState,
    /// The partner who broke the glass.
    #[schemars(length(max = 253))]
    pub break_glass_by: String,
    /// The end of the window for a verdict.
    pub deadline: DateTime<Utc>,
    /// What happens if nobody ratifies it by the deadline, as the
    /// workspace said when it started (a later change of the workspace does
    /// not apply to it).
    #[serde(default)]
    pub on_unratified: super::workspace::OnUnratified,
    /// How many entries of `spec.ratifications` the verdict took into
    /// account; later ones came too late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_on_verdicts: Option<i32>,
    /// The manager who ratified or objected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub by: Option<String>,
    /// When the state last changed, as the operator saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// The verdict's comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub comment: Option<String>,
    /// Whether the grant was revoked for it (an objection, or `Revoke` at
    /// the end of the window).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revoked: bool,
    /// Verdicts that did not count, each with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub ignored: Vec<super::request::IgnoredVote>,
}

/// The request a binding was created from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct OriginRequest {
    /// The request's name (in the same namespace).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The request's uid, so that a re-created request of the same name is not mistaken for it.
    #[schemars(length(min = 1, max = 64))]
    pub uid: String,
}

/// Who revoked a binding, and why.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Revocation {
    /// The user who revoked; the admission policy requires it to equal the caller.
    #[schemars(length(min = 1, max = 253))]
    pub by: String,
    /// Why the role was revoked.
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
}

/// The lifecycle phase of a binding.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum BindingPhase {
    /// Not authorised, or native RBAC not yet in place.
    Pending,
    /// Native RBAC is in place.
    Active,
    /// Ended at its expiry time; native RBAC removed.
    Expired,
    /// Ended by revocation; native RBAC removed.
    Revoked,
}

/// The observed state of a binding.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleBindingStatus {
    /// The `metadata.generation` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The binding's conditions (`Authorized`, `Ready`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The lifecycle phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<BindingPhase>,

    /// The role in one word: the workspace role, or `<project>/<projectRole>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,

    /// The effective expiry, after the workspace's cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,

    /// When native RBAC was first put in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_at: Option<DateTime<Utc>>,

    /// When the binding expired or was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,

    /// The namespaces where native RBAC is in place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 33))]
    pub namespaces: Vec<String>,

    /// The uid of the workspace the binding was authorised under: should
    /// that workspace be deleted (or replaced by another of the same name),
    /// the binding ends for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub workspace_uid: Option<String>,

    /// The ClusterRole a project role grants, fixed when the grant first
    /// took effect (or when its request was approved): a later change of the
    /// role map does not change what it grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub cluster_role: Option<String>,

    /// The uid of the project it grants in, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub project_uid: Option<String>,

    /// The Lockout that revoked this binding, if one did (phase `Revoked`):
    /// lifting the lockout later restores nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub lockout: Option<String>,

    /// The ratification of a break-glass grant (a partner's approval alone,
    /// or a partner's direct project grant): who ratified or objected, and
    /// when, or that nobody did within the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratification: Option<RatificationStatus>,
}
