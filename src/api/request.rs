//! `RoleRequest`: a request for a role that needs the consent of managers.

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{GoDuration, Subject, WorkspaceRole};
use super::conditions::Condition;

/// Most votes a request can carry.
pub const MAX_APPROVALS: usize = 32;

/// A request, with a justification and a duration, for a workspace or project
/// role. It becomes a `RoleBinding` of the same name once enough workspace
/// managers approve (or a partner breaks the glass).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "foureyes.dev",
    version = "v1alpha1",
    kind = "RoleRequest",
    namespaced,
    status = "RoleRequestStatus",
    shortname = "rr",
    category = "foureyes",
    derive = "PartialEq",
    doc = "A request for a workspace or project role, granted once enough workspace managers approve.",
    printcolumn(name = "Subject", type_ = "string", json_path = ".spec.subject.name"),
    printcolumn(name = "Project", type_ = "string", json_path = ".spec.project"),
    printcolumn(
        name = "Role",
        type_ = "string",
        json_path = ".status.role",
        description = "workspace role, or project role"
    ),
    printcolumn(
        name = "Approvals",
        type_ = "string",
        json_path = ".status.approvals",
        description = "counted approvals / required"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(
        name = "Grants",
        type_ = "string",
        json_path = ".status.permissions.summary",
        description = "what the project role grants in each tenant namespace",
        priority = 1
    ),
    validation = Rule::new(
        "!has(oldSelf.status) || !has(oldSelf.status.phase) || !(oldSelf.status.phase in ['Approved', 'Granted', 'Denied', 'Expired']) || self.spec == oldSelf.spec"
    ).message("the request is decided: its spec, including spec.approvals, can no longer change"),
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.workspaceRole) != has(self.projectRole)")
    .message("exactly one of spec.workspaceRole or spec.projectRole must be set"))]
#[x_kube(validation = Rule::new("has(self.project) == has(self.projectRole)")
    .message("spec.project and spec.projectRole must be set together"))]
#[x_kube(validation = Rule::new("self.subject == oldSelf.subject").message("spec.subject is immutable"))]
#[x_kube(validation = Rule::new(
    "!has(self.workspaceRole) || self.workspaceRole != 'manager' || self.subject.kind != 'User' || !self.subject.name.startsWith('system:serviceaccount:')"
).message("a ServiceAccount cannot be a workspace manager: everyone who can mint its tokens would vote as it"))]
#[x_kube(validation = Rule::new(
    "(has(self.workspaceRole) ? self.workspaceRole : '') == (has(oldSelf.workspaceRole) ? oldSelf.workspaceRole : '') && (has(self.project) ? self.project : '') == (has(oldSelf.project) ? oldSelf.project : '') && (has(self.projectRole) ? self.projectRole : '') == (has(oldSelf.projectRole) ? oldSelf.projectRole : '')"
).message("the role (spec.workspaceRole, spec.project, spec.projectRole) is immutable"))]
#[x_kube(validation = Rule::new("self.justification == oldSelf.justification").message("spec.justification is immutable"))]
#[x_kube(validation = Rule::new("self.duration == oldSelf.duration").message("spec.duration is immutable"))]
#[x_kube(validation = Rule::new("self.requester == oldSelf.requester").message("spec.requester is immutable"))]
#[x_kube(validation = Rule::new(
    "self.approvals.size() >= oldSelf.approvals.size() && oldSelf.approvals.all(a, self.approvals.indexOf(a) == oldSelf.approvals.indexOf(a))"
).message("spec.approvals is append-only: existing approvals cannot be edited, reordered or removed"))]
#[x_kube(validation = Rule::new("self.approvals.all(a, self.approvals.indexOf(a) == self.approvals.lastIndexOf(a))")
    .message("spec.approvals: the same vote cannot appear twice"))]
pub struct RoleRequestSpec {
    /// The user or group who would hold the role.
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

    /// How long the role should last once granted (a Go duration such as
    /// `30m` or `4h`); capped by the workspace's `maxDuration`.
    #[x_kube(validation = Rule::new("duration(self) > duration('0s') && duration(self) <= duration('2160h')")
        .message("spec.duration must be positive and at most 2160h (90 days)"))]
    pub duration: GoDuration,

    /// Why the role is needed (an incident or ticket reference). Immutable.
    #[schemars(length(min = 1, max = 1024))]
    #[x_kube(validation = Rule::new("self.trim().size() > 0").message("spec.justification must not be blank"))]
    pub justification: String,

    /// The user who made the request. The admission policy requires it to
    /// equal the caller's authenticated user name (unless the caller is a
    /// trusted asserter). When the requester is a workspace manager and not
    /// the subject, the request counts as their approval. Immutable.
    #[schemars(length(min = 1, max = 253))]
    pub requester: String,

    /// Votes on the request, append-only. The admission policy requires each
    /// newly appended vote's `user` to equal the caller's user name.
    #[serde(default)]
    #[schemars(length(max = 32), extend("x-kubernetes-list-type" = "atomic"))]
    pub approvals: Vec<Approval>,
}

/// A vote on a request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// The voter; must equal the caller's authenticated user name.
    #[schemars(length(min = 1, max = 253))]
    pub user: String,
    /// `Approve` or `Deny`. A manager's `Deny` ends the request.
    pub decision: Decision,
    /// An optional comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub comment: Option<String>,
    /// When the vote was cast, as the voter's client saw it (RFC 3339). The
    /// operator records its own observation time in the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // `date-time` and a strict pattern: the API server's date-time check
    // alone accepts strings that no RFC 3339 parser reads, and one such
    // time would leave the whole object unreadable to the operator.
    #[schemars(
        with = "Option<String>",
        extend("format" = "date-time"),
        regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")
    )]
    pub time: Option<DateTime<Utc>>,
}

/// A voter's decision.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum Decision {
    /// Consent to the request.
    Approve,
    /// Refuse the request; a manager's refusal ends it.
    Deny,
}

/// The lifecycle phase of a request.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum RequestPhase {
    /// Waiting for approvals.
    Pending,
    /// Enough approvals; the binding is being created.
    Approved,
    /// The binding exists.
    Granted,
    /// A manager denied it.
    Denied,
    /// It stayed pending longer than the workspace's `pendingTimeout`.
    Expired,
    /// Still pending, but the workspace has fewer managers than its quorum;
    /// only a partner can approve it.
    QuorumUnreachable,
}

/// Why a vote was not counted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum IgnoreReason {
    /// The voter is not a workspace manager (nor a partner).
    NotManager,
    /// The voter is the subject of the request.
    IsSubject,
    /// The voter had already voted (on a break-glass grant made from a
    /// request: their approval of the request counted already).
    Duplicate,
    /// The vote arrived after the request was decided or timed out.
    TooLate,
    /// The API server did not verify that the voter cast it (no admission
    /// stamp names them as its writer), or, for a group subject, with which
    /// groups: its author may be in the subject group.
    Unverified,
    /// The voter is locked out (a `Lockout` names them or their group), or
    /// was when the vote was last evaluated: it never counts again.
    LockedOut,
    /// The voter became a manager less than the workspace's
    /// `managerCoolingOff` ago: the vote counts once that has passed (if the
    /// request is still pending then).
    CoolingOff,
    /// The voter is the partner whose break-glass is being ratified: nobody
    /// ratifies their own.
    BrokeGlass,
}

/// A vote that did not count.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct IgnoredVote {
    /// The voter.
    #[schemars(length(max = 253))]
    pub user: String,
    /// Why the vote was not counted.
    pub reason: IgnoreReason,
}

/// The observed state of a request.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleRequestStatus {
    /// The `metadata.generation` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The request's conditions (`QuorumReached`, `QuorumUnreachable`, `Ready`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The lifecycle phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RequestPhase>,

    /// The role in one word: the workspace role, or `<project>/<projectRole>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,

    /// Counted approvals over required approvals, for example `1/2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<String>,

    /// Approvals required by the workspace's policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<i32>,

    /// The managers whose approvals counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 33))]
    pub approved_by: Vec<String>,

    /// Votes that did not count, each with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 33))]
    pub ignored: Vec<IgnoredVote>,

    /// The manager who denied the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_by: Option<String>,

    /// The partner who approved alone (break-glass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass_by: Option<String>,

    /// The RoleBinding created from this request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,

    /// The ClusterRole the project role resolved to when the request was
    /// approved: its binding grants that, whatever the role map says later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub cluster_role: Option<String>,

    /// When the request was decided (granted, denied or expired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,

    /// How many entries of `spec.approvals` the decision took into account;
    /// votes after them arrived too late and are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_on_votes: Option<i32>,
    /// When a still-pending request expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_until: Option<DateTime<Utc>>,
    /// The Lockout that ended this request (phase `Denied`, reason
    /// `LockedOut`), if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub lockout: Option<String>,
    /// What the requested project role grants in each tenant namespace, as
    /// the operator read it from the ClusterRole the role maps to (its
    /// aggregation followed): what the approvers sign. Fixed from the
    /// approval on, like `clusterRole`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Permissions>,
}

/// What a ClusterRole grants in a namespace it is bound in.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Permissions {
    /// The ClusterRole read.
    #[schemars(length(max = 253))]
    pub cluster_role: String,
    /// One line: how many resources it reads and writes, and what is
    /// dangerous in it.
    #[schemars(length(max = 512))]
    pub summary: String,
    /// The dangerous permissions it holds (`secrets read`, `exec/attach`,
    /// `RBAC writes`, `impersonate`, `token creation`, `everything`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub dangerous: Vec<String>,
    /// The verbs by resource (`group/resource`, the core group without a
    /// prefix; `(named)` when only some objects by name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1024))]
    pub resources: Vec<ResourceVerbs>,
}

/// The verbs a role holds on one resource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceVerbs {
    /// `group/resource`, or `resource` in the core group.
    #[schemars(length(max = 512))]
    pub resource: String,
    /// The verbs, `*` for all.
    #[schemars(length(max = 32))]
    pub verbs: Vec<String>,
    /// Whether this resource's verbs are among the dangerous ones.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dangerous: bool,
}
