//! The custom resources of the `foureyes.dev/v1alpha1` API and their conditions.

pub mod binding;
pub mod common;
pub mod conditions;
pub mod documents;
pub mod lockout;
pub mod project;
pub mod request;
pub mod time;
pub mod workspace;

pub use binding::{
    BindingPhase, OriginRequest, Ratification, RatificationState, RatificationStatus, Revocation, RoleBinding,
    RoleBindingSpec, RoleBindingStatus, Verdict,
};
pub use common::{GoDuration, Subject, SubjectKind, WorkspaceRole};
pub use conditions::{Condition, ConditionStatus};
pub use lockout::{Lockout, LockoutPhase, LockoutSpec, LockoutStatus, OutsideGrant};
pub use project::{Project, ProjectSpec, ProjectStatus};
pub use request::{
    Approval, Decision, IgnoreReason, IgnoredVote, Permissions, RequestPhase, ResourceVerbs, RoleRequest,
    RoleRequestSpec, RoleRequestStatus,
};
pub use workspace::{
    ApprovalPolicy, BreakGlassRatification, OnUnratified, Persistence, Workspace, WorkspaceSpec, WorkspaceStatus,
};

/// The API group of every foureyes resource.
pub const GROUP: &str = "foureyes.dev";
/// The API version of every foureyes resource.
pub const VERSION: &str = "v1alpha1";
