//! `Workspace`: a team's unit of ownership.

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::GoDuration;
use super::conditions::Condition;

/// The namespace prefix of a workspace whose `spec.namespace` is not set.
pub const DEFAULT_NAMESPACE_PREFIX: &str = "ws-";

fn default_approvals() -> i32 {
    2
}
fn default_true() -> bool {
    true
}
fn default_pending_timeout() -> GoDuration {
    "24h".parse().expect("constant duration")
}
fn default_manager_cooling_off() -> GoDuration {
    "1h".parse().expect("constant duration")
}
fn default_max_duration() -> GoDuration {
    "24h".parse().expect("constant duration")
}

/// A team's unit of ownership. It owns a control namespace (by default
/// `ws-<name>`) where its projects, role bindings, role requests and history
/// live, and it holds the approval policy for them.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "foureyes.dev",
    version = "v1alpha1",
    kind = "Workspace",
    status = "WorkspaceStatus",
    shortname = "ws",
    category = "foureyes",
    derive = "PartialEq",
    doc = "A team's unit of ownership: owns a control namespace and holds the approval policy.",
    printcolumn(name = "Namespace", type_ = "string", json_path = ".status.namespace", description = "The workspace's control namespace"),
    printcolumn(name = "Managers", type_ = "integer", json_path = ".status.managers", description = "Active manager bindings"),
    printcolumn(name = "Quorum", type_ = "integer", json_path = ".spec.approvalPolicy.projectRoleApprovals", description = "Approvals needed for a project role"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.size() <= 60").message("metadata.name: a workspace name has at most 60 characters, so that ws-<name> is a valid namespace name"),
    validation = Rule::new("has(self.spec.__namespace__) || !self.metadata.name.contains('.')").message("metadata.name: a workspace name with dots needs spec.namespace, since ws-<name> would not be a valid namespace name"),
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "(has(self.__namespace__) ? self.__namespace__ : '') == (has(oldSelf.__namespace__) ? oldSelf.__namespace__ : '')"
).message("spec.namespace is immutable"))]
pub struct WorkspaceSpec {
    /// The control namespace where the workspace's objects and history live.
    /// Defaults to `ws-<workspace name>`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    #[x_kube(validation = Rule::new(
        "!(self in ['default', 'kube-system', 'kube-public', 'kube-node-lease']) && !self.startsWith('kube-')"
    ).message("spec.namespace: a system namespace cannot be a workspace namespace"))]
    pub namespace: Option<String>,

    /// A human-readable description of the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,

    /// How many workspace managers must approve a role request.
    #[serde(default)]
    pub approval_policy: ApprovalPolicy,

    /// The longest a role binding of this workspace may last (a Go duration
    /// such as `8h`). Longer requests are capped to it. Defaults to `24h`.
    #[serde(default = "default_max_duration")]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s') && duration(self) <= duration('2160h')")
        .message("spec.maxDuration must be positive and at most 2160h (90 days)"))]
    pub max_duration: GoDuration,

    /// When true, a partner may add themselves to this workspace only as a
    /// `member`, never as a `manager`.
    #[serde(default)]
    pub restrict_partner_self_assignment: bool,

    /// What the operator does, when a project role ends, with the
    /// RoleBindings and ServiceAccount token Secrets its holder created in
    /// the project's tenant namespaces while they held it (access they could
    /// keep past the end): `Report`
    /// (a Warning event `PersistenceFound` and a history entry) or `Revoke`
    /// (delete them, and report that). Defaults to `Report`.
    #[serde(default)]
    pub persistence: Persistence,
}

/// What to do with access a grantee made for themselves during a grant.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum Persistence {
    /// Report it: a Warning event and a history entry.
    #[default]
    Report,
    /// Delete it, and report that.
    Revoke,
}

/// How many approvals a request needs, and what a partner may do alone.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalPolicy {
    /// Approvals from distinct workspace managers needed to grant a workspace
    /// role (`manager` or `member`). 1 lets a manager grant alone.
    #[serde(default = "default_approvals")]
    #[schemars(range(min = 1, max = 10))]
    pub workspace_role_approvals: i32,

    /// Approvals from distinct workspace managers needed to grant a project role.
    /// 1 lets a manager grant alone.
    #[serde(default = "default_approvals")]
    #[schemars(range(min = 1, max = 10))]
    pub project_role_approvals: i32,

    /// Whether a partner may approve a pending request alone (break-glass).
    #[serde(default = "default_true")]
    pub partner_break_glass: bool,

    /// How long a request may stay pending before it expires (a Go duration
    /// such as `30m`). Defaults to `24h`.
    #[serde(default = "default_pending_timeout")]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s') && duration(self) <= duration('720h')")
        .message("spec.approvalPolicy.pendingTimeout must be positive and at most 720h (30 days)"))]
    pub pending_timeout: GoDuration,

    /// How long a new manager waits before their approvals count (a Go
    /// duration; `0s` turns it off). Defaults to `1h`: making a friend a
    /// manager and approving together right away does not work. A partner's
    /// break-glass is not affected.
    #[serde(default = "default_manager_cooling_off")]
    #[x_kube(validation = Rule::new("duration(self) >= duration('0s') && duration(self) <= duration('720h')")
        .message("spec.approvalPolicy.managerCoolingOff must be between 0s and 720h (30 days)"))]
    pub manager_cooling_off: GoDuration,

    /// Break-glass must be ratified after the fact: a partner's approval
    /// alone, or a partner's direct grant of a project role, waits for a
    /// manager of the workspace (neither its subject nor the partner) to
    /// ratify it (`kubectl access ratify`) or object to it (an objection
    /// revokes it at once). Defaults to a `24h` window and `Flag`.
    #[serde(default)]
    pub break_glass_ratification: BreakGlassRatification,
}

fn default_ratification_window() -> GoDuration {
    "24h".parse().expect("constant duration")
}

/// How long a break-glass grant waits for a manager's ratification, and
/// what happens when none comes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BreakGlassRatification {
    /// How long after the grant was authorised a manager may ratify it
    /// before it is `Unratified` (a positive Go duration such as `4h`, at
    /// most `720h`; it cannot be turned off). Defaults to `24h`. A
    /// ratification or objection still counts after the window.
    #[serde(default = "default_ratification_window")]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s') && duration(self) <= duration('720h')")
        .message("spec.approvalPolicy.breakGlassRatification.window must be positive and at most 720h (30 days)"))]
    pub window: GoDuration,

    /// What happens to a grant unratified at the end of the window: `Flag`
    /// (a Warning event `BreakGlassUnratified`, a history entry and a
    /// notification) or `Revoke` (the same, and the access ends). Defaults
    /// to `Flag`. Fixed for each grant when its ratification starts.
    #[serde(default)]
    pub on_unratified: OnUnratified,
}

impl Default for BreakGlassRatification {
    fn default() -> Self {
        Self {
            window: default_ratification_window(),
            on_unratified: OnUnratified::default(),
        }
    }
}

/// What happens to a break-glass grant nobody ratified in time.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum OnUnratified {
    /// Say so: a Warning event, a history entry, a notification.
    #[default]
    Flag,
    /// Say so, and revoke the grant.
    Revoke,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        Self {
            workspace_role_approvals: default_approvals(),
            project_role_approvals: default_approvals(),
            partner_break_glass: true,
            pending_timeout: default_pending_timeout(),
            manager_cooling_off: default_manager_cooling_off(),
            break_glass_ratification: BreakGlassRatification::default(),
        }
    }
}

/// The observed state of a workspace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceStatus {
    /// The `metadata.generation` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The workspace's conditions; `Ready` summarises them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The control namespace in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,

    /// Subjects holding an active `manager` binding.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub managers: i32,

    /// Subjects holding an active `member` binding.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub members: i32,

    /// Active bindings of the workspace, of any role.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub active_bindings: i32,

    /// The head of each history chain of the workspace (the `workspace`
    /// chain and one `project-<name>` chain per project), as the operator last
    /// wrote or read it: a verifier compares a chain's last entry with it to
    /// tell a truncated chain from a complete one. Updated together with the
    /// counts, so it may lag the newest entry by a moment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1024), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["chain"]))]
    pub history: Vec<ChainHead>,
}

/// The last entry of a history chain, mirrored so that a verifier can tell a
/// truncated chain from a complete one.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainHead {
    /// The chain: `workspace`, or `project-<name>`.
    #[schemars(length(max = 229))]
    pub chain: String,
    /// The ConfigMap holding the newest entries.
    #[schemars(length(max = 253))]
    pub chunk: String,
    /// The sequence number of the newest entry.
    pub sequence: i64,
    /// The hash of the newest entry (hex).
    #[schemars(length(max = 128))]
    pub hash: String,
    /// When the newest entry was written.
    pub time: DateTime<Utc>,
}

impl Workspace {
    /// The control namespace: `spec.namespace`, or `ws-<name>`.
    pub fn control_namespace(&self) -> String {
        match &self.spec.namespace {
            Some(ns) => ns.clone(),
            None => format!("{DEFAULT_NAMESPACE_PREFIX}{}", kube::ResourceExt::name_any(self)),
        }
    }

    /// Whether the status reports the workspace `Ready` (its namespace and
    /// Roles in place).
    pub fn is_ready(&self) -> bool {
        self.status.as_ref().is_some_and(WorkspaceStatus::is_ready)
    }
}

impl WorkspaceStatus {
    /// Whether the `Ready` condition is true.
    pub fn is_ready(&self) -> bool {
        super::conditions::find_condition(&self.conditions, super::conditions::READY)
            .is_some_and(|c| c.status == super::ConditionStatus::True)
    }
}
