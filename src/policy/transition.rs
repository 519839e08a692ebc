//! What happened, as data: every decision of the policy returns the
//! transitions it makes, and `crate::audit` maps this one list to Kubernetes
//! Events, to history entries and to notifications. Nothing else derives
//! events, history entries or notifications.
//!
//! The event reasons are defined here once ([`reason`]); they are stable,
//! auditors filter on them (`kubectl get events --field-selector
//! reason=Expired`).

use chrono::{DateTime, Utc};

use crate::api::IgnoreReason;

/// The stable event reasons. Normal events mark the lifecycle; Warning
/// events mark what someone should look at.
pub mod reason {
    /// A role request was seen for the first time (Normal).
    pub const REQUESTED: &str = "Requested";
    /// A manager's approval of a request was counted; the note says `n/m` (Normal).
    pub const APPROVAL_COUNTED: &str = "ApprovalCounted";
    /// A vote on a request did not count: not a manager, the subject, a
    /// second vote, after the decision, or unverified (Warning).
    pub const VOTE_IGNORED: &str = "VoteIgnored";
    /// Enough managers approved a request (Normal).
    pub const QUORUM_REACHED: &str = "QuorumReached";
    /// The workspace has fewer managers than a request's quorum; only a
    /// partner can approve it (Warning).
    pub const QUORUM_UNREACHABLE: &str = "QuorumUnreachable";
    /// A partner approved a request alone (Warning).
    pub const BREAK_GLASS: &str = "BreakGlass";
    /// A manager ratified a break-glass grant after the fact (Normal).
    pub const BREAK_GLASS_RATIFIED: &str = "BreakGlassRatified";
    /// A manager objected to a break-glass grant: it was revoked (Warning).
    pub const BREAK_GLASS_OBJECTED: &str = "BreakGlassObjected";
    /// Nobody ratified a break-glass grant within the workspace's window
    /// (Warning; with `onUnratified: Revoke` the grant was revoked).
    pub const BREAK_GLASS_UNRATIFIED: &str = "BreakGlassUnratified";
    /// A request was denied (Normal).
    pub const DENIED: &str = "Denied";
    /// A request stayed pending longer than the workspace's `pendingTimeout` (Normal).
    pub const REQUEST_EXPIRED: &str = "RequestExpired";
    /// The RoleBinding of an approved request was created (Normal).
    pub const BINDING_CREATED: &str = "BindingCreated";
    /// A binding's native RBAC was put in place (Normal).
    pub const GRANTED: &str = "Granted";
    /// A grant in force ends within the configured lead time
    /// (`notifications.expiryLeadTime`) (Normal; not recorded in the history).
    pub const EXPIRING_SOON: &str = "ExpiringSoon";
    /// A binding reached its expiry and its native RBAC was removed (Normal).
    pub const EXPIRED: &str = "Expired";
    /// A binding was revoked and its native RBAC removed (Normal).
    pub const REVOKED: &str = "Revoked";
    /// A finished binding's retention ended and the record was deleted (Normal).
    pub const RECORD_DELETED: &str = "RecordDeleted";
    /// Native RBAC of an active grant was edited or deleted by someone else
    /// and was put back (Warning).
    pub const DRIFT_CORRECTED: &str = "DriftCorrected";
    /// When a project role ended, its holder had created RoleBindings or
    /// ServiceAccount token Secrets in the tenant namespaces during the
    /// grant; they are still in place (Warning).
    pub const PERSISTENCE_FOUND: &str = "PersistenceFound";
    /// Likewise, and the workspace's `persistence: Revoke` deleted them (Warning).
    pub const PERSISTENCE_REMOVED: &str = "PersistenceRemoved";
    /// A Lockout was created: its subject loses everything foureyes granted
    /// (Warning).
    pub const LOCKOUT_CREATED: &str = "LockoutCreated";
    /// A binding was revoked, or a pending request ended, because its
    /// subject is locked out (Warning).
    pub const LOCKED_OUT: &str = "LockedOut";
    /// A Lockout reached its expiry: it refuses nothing any more and
    /// restored nothing (Normal).
    pub const LOCKOUT_EXPIRED: &str = "LockoutExpired";
    /// A Lockout was lifted (deleted); nothing it ended is restored (Warning).
    pub const LOCKOUT_LIFTED: &str = "LockoutLifted";
    /// A workspace was deleted and everything it granted was revoked (Normal).
    pub const WORKSPACE_DELETED: &str = "WorkspaceDeleted";
    /// Native RBAC found past its expiry at start-up or by the sweep, and
    /// removed (Warning).
    pub const OVERDUE_REVOKED: &str = "OverdueRevoked";
    /// A workspace's control namespace was created or taken over (Normal).
    pub const NAMESPACE_READY: &str = "NamespaceReady";
    /// A namespace cannot be used: a system namespace, or an existing one
    /// not labelled for the claimant (Warning).
    pub const NAMESPACE_REFUSED: &str = "NamespaceRefused";
    /// A namespace is claimed by another workspace or project (by uid);
    /// nothing of the other claimant is touched (Warning).
    pub const NAMESPACE_TAKEN: &str = "NamespaceTaken";
    /// A workspace's or project's namespace is being deleted: nothing new
    /// can be created in it (Warning; the workspace is not Ready).
    pub const NAMESPACE_TERMINATING: &str = "NamespaceTerminating";
    /// A project's control namespace is held by no workspace (the project's
    /// Ready condition).
    pub const WORKSPACE_NOT_FOUND: &str = "WorkspaceNotFound";
    /// A project created a tenant namespace (Normal).
    pub const NAMESPACE_CREATED: &str = "NamespaceCreated";
    /// A project adopted an existing namespace that carried its labels (Normal).
    pub const NAMESPACE_ADOPTED: &str = "NamespaceAdopted";
    /// An admission policy or binding of foureyes is missing or altered: no
    /// new grant is authorised and no request decided until it is restored
    /// (Warning).
    pub const ADMISSION_POLICIES_ALTERED: &str = "AdmissionPoliciesAltered";
    /// The operator cannot read an object (it does not match the operator's
    /// types: stored before a schema change, or edited around validation);
    /// it is left out, and a binding grants nothing while unreadable (Warning).
    pub const INVALID_OBJECT: &str = "InvalidObject";

    /// A request that cannot move on uses its problem's reason as a Warning
    /// event.
    pub const REQUEST_PROBLEMS: &[&str] = &[
        "WorkspaceNotFound",
        "ProjectNotFound",
        "UnknownRole",
        "RoleNotAllowed",
        "BindingNameTaken",
        "InvalidSpec",
    ];

    /// A binding not in effect uses its refusal's reason as a Warning event
    /// (see [`crate::policy::Refusal::reason`]).
    pub const REFUSALS: &[&str] = &[
        "NotAuthorized",
        "RoleNotAllowed",
        "UnknownRole",
        "ProjectNotFound",
        "ProjectHasNoNamespaces",
        "WorkspaceNotFound",
        "PartnerSelfAssignmentRestricted",
        "OriginRequestNotApproved",
        "InvalidSpec",
    ];
}

/// The kinds of object a grantee can create in a tenant namespace that
/// carry access after the grant ends, and that the operator looks for then.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PersistedKind {
    /// A native RoleBinding.
    RoleBinding,
    /// A Secret of type `kubernetes.io/service-account-token`: a token that
    /// lasts as long as the Secret.
    TokenSecret,
}

impl std::fmt::Display for PersistedKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PersistedKind::RoleBinding => "RoleBinding",
            PersistedKind::TokenSecret => "token Secret",
        })
    }
}

/// One object a grantee created during the grant that carries access.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Persisted {
    /// What kind of object.
    pub kind: PersistedKind,
    /// Its namespace (a tenant namespace of the project).
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl std::fmt::Display for Persisted {
    /// `RoleBinding shop/keep`, `token Secret shop/ci-token`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// Who made a transition happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A person (or client), as admission verified their name.
    User(String),
    /// The operator, on its own (an expiry, a timeout, an owner gone).
    Operator,
    /// Nobody can tell (a plain deletion: the API server does not say who).
    Unknown,
}

/// One transition: what happened, by whom, to which subject and role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// What happened, with its details.
    pub kind: Kind,
    /// Who did it.
    pub actor: Actor,
    /// The subject concerned (`User alice`), empty for a workspace or project.
    pub subject: String,
    /// The role concerned in one word (`manager`, `app/admin`), empty for a
    /// workspace or project.
    pub role: String,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A request was filed.
    Requested {
        /// The duration asked for.
        duration: String,
        /// Approvals required.
        required: i32,
        /// Why.
        justification: String,
        /// Who really wrote it, when a trusted asserter filed it in the
        /// requester's name.
        filed_by: Option<String>,
    },
    /// An approval counted (the actor approved).
    ApprovalCounted {
        /// `n/m` after this approval.
        tally: String,
        /// This approval completes the quorum (the `QuorumReached` that
        /// follows names every approver).
        deciding: bool,
        /// Who really appended it, when not the approver.
        written_by: Option<String>,
    },
    /// A vote did not count (the actor voted).
    VoteIgnored(IgnoreReason),
    /// Enough managers approved (the actor's approval completed it).
    QuorumReached {
        /// Every approver, in order.
        approvers: Vec<String>,
        /// `n/m`.
        tally: String,
    },
    /// A partner approved alone (the actor).
    BreakGlass {
        /// Manager approvals so far, `n/m`.
        tally: String,
        /// Who really appended the partner's vote, when not the partner.
        written_by: Option<String>,
    },
    /// A manager ratified a break-glass grant (the actor).
    BreakGlassRatified {
        /// The partner who broke the glass.
        partner: String,
        /// The manager's comment.
        comment: Option<String>,
        /// After the window had ended unratified.
        late: bool,
    },
    /// A manager objected to a break-glass grant (the actor): it ends now.
    BreakGlassObjected {
        /// The partner who broke the glass.
        partner: String,
        /// The manager's comment.
        comment: Option<String>,
    },
    /// Nobody ratified a break-glass grant within the window.
    BreakGlassUnratified {
        /// The partner who broke the glass.
        partner: String,
        /// The end of the window.
        deadline: DateTime<Utc>,
        /// Whether the grant is revoked for it (`onUnratified: Revoke`).
        revoked: bool,
        /// The binding was deleted before anyone ratified it.
        deleted: bool,
    },
    /// Fewer qualifying managers than the quorum.
    QuorumUnreachable {
        /// Approvals required.
        required: i32,
    },
    /// A manager denied the request (the actor).
    Denied {
        /// Approvals at the time, `n/m`.
        tally: String,
    },
    /// Pending past the workspace's timeout.
    RequestExpired {
        /// Approvals at the time, `n/m`.
        tally: String,
    },
    /// The request cannot move on.
    RequestProblem {
        /// One of [`reason::REQUEST_PROBLEMS`].
        reason: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The binding of an approved request was created (the actor: who it is
    /// granted by).
    BindingCreated {
        /// Its name.
        name: String,
        /// Its duration.
        duration: String,
        /// The duration asked for, when the workspace's maxDuration capped it.
        capped_from: Option<String>,
    },
    /// A binding's native RBAC is in place (the actor: `grantedBy`).
    Granted {
        /// Until when.
        until: Option<DateTime<Utc>>,
        /// How it was authorised.
        how: &'static str,
        /// The namespaces it takes effect in.
        namespaces: Vec<String>,
        /// Why.
        justification: String,
        /// Who really created it, when a trusted asserter wrote `grantedBy`.
        created_by: Option<String>,
    },
    /// A grant in force ends within the lead time: once per grant and
    /// process (a new leader may say it again).
    ExpiringSoon {
        /// When it ends.
        until: Option<DateTime<Utc>>,
    },
    /// A binding reached its expiry.
    Expired {
        /// When.
        until: Option<DateTime<Utc>>,
        /// Whether it had been in effect (else it ends without having been
        /// granted).
        was_active: bool,
        /// Whether its native RBAC was already gone when the operator came
        /// to remove it: removed by a standby replica, by the start-up
        /// revocation, by `foureyes sweep` while the operator was down, or by
        /// someone else (the API server does not say who deletes an object).
        already_removed: bool,
    },
    /// A binding was revoked (the actor: who revoked it, or the operator).
    Revoked {
        /// Why.
        reason: String,
    },
    /// A binding is not in effect, for a reason someone should look at.
    Refused {
        /// One of [`reason::REFUSALS`].
        reason: &'static str,
        /// What is wrong.
        message: String,
        /// Who really created it, when a trusted asserter wrote `grantedBy`.
        created_by: Option<String>,
        /// Whether the history records it (not without a workspace).
        recorded: bool,
    },
    /// Native RBAC of an active grant had been changed by someone else and
    /// was put back.
    DriftCorrected {
        /// The native bindings put back, `namespace/name`.
        natives: Vec<String>,
    },
    /// A binding record was deleted: by the operator at the end of its
    /// retention, or by someone.
    Removed {
        /// Why, in words.
        why: String,
        /// Its last phase.
        last_phase: String,
        /// The operator deleted it (end of retention).
        retention_over: bool,
    },
    /// When a project role ended, its holder had created objects that
    /// carry access (RoleBindings, ServiceAccount token Secrets) in its
    /// tenant namespaces during the grant.
    PersistenceFound {
        /// Each of them.
        found: Vec<Persisted>,
        /// Whether the operator deleted them (`persistence: Revoke`).
        removed: bool,
    },
    /// A workspace's control namespace is in place (the chain's first entry).
    WorkspaceCreated {
        /// The control namespace.
        namespace: String,
        /// The approval policy in words.
        policy: String,
    },
    /// A workspace's spec changed.
    WorkspaceChanged {
        /// The new generation.
        generation: i64,
        /// The approval policy in words.
        policy: String,
    },
    /// A workspace was deleted.
    WorkspaceDeleted {
        /// The control namespace (kept, with the history).
        namespace: String,
        /// Native bindings revoked.
        revoked: usize,
    },
    /// A namespace was created or taken over for a workspace or project.
    NamespaceClaimed {
        /// [`reason::NAMESPACE_READY`], [`reason::NAMESPACE_CREATED`] or
        /// [`reason::NAMESPACE_ADOPTED`].
        reason: &'static str,
        /// What was claimed, in words.
        message: String,
    },
    /// A namespace a workspace or project wants cannot be used.
    NamespaceUnusable {
        /// [`reason::NAMESPACE_TAKEN`], [`reason::NAMESPACE_REFUSED`] or
        /// [`reason::NAMESPACE_TERMINATING`].
        reason: &'static str,
        /// Why.
        message: String,
    },
    /// A project exists (its chain's first entry).
    ProjectCreated {
        /// Its spec in words.
        spec: String,
    },
    /// A project's spec changed.
    ProjectChanged {
        /// The new generation.
        generation: i64,
        /// Its spec in words.
        spec: String,
    },
    /// A project was deleted.
    ProjectDeleted,
    /// A binding was revoked, or a pending request ended (`Denied`), because
    /// its subject is locked out (the actor: who created the lockout).
    LockedOut {
        /// The Lockout's name.
        lockout: String,
        /// The lockout's reason.
        reason: String,
    },
    /// A Lockout was created (the actor: who created it).
    LockoutCreated {
        /// The Lockout's name.
        lockout: String,
        /// Its reason.
        reason: String,
        /// Its expiry (none: until lifted).
        until: Option<DateTime<Utc>>,
    },
    /// A Lockout reached its expiry.
    LockoutExpired {
        /// The Lockout's name.
        lockout: String,
        /// When.
        until: Option<DateTime<Utc>>,
    },
    /// A Lockout was lifted (the actor: who lifted it, when they said so).
    LockoutLifted {
        /// The Lockout's name.
        lockout: String,
        /// Why, when the lifter said so.
        reason: String,
    },
}

impl Kind {
    /// The event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Kind::Requested { .. } => reason::REQUESTED,
            Kind::ApprovalCounted { .. } => reason::APPROVAL_COUNTED,
            Kind::VoteIgnored(_) => reason::VOTE_IGNORED,
            Kind::QuorumReached { .. } => reason::QUORUM_REACHED,
            Kind::BreakGlass { .. } => reason::BREAK_GLASS,
            Kind::BreakGlassRatified { .. } => reason::BREAK_GLASS_RATIFIED,
            Kind::BreakGlassObjected { .. } => reason::BREAK_GLASS_OBJECTED,
            Kind::BreakGlassUnratified { .. } => reason::BREAK_GLASS_UNRATIFIED,
            Kind::QuorumUnreachable { .. } => reason::QUORUM_UNREACHABLE,
            Kind::Denied { .. } => reason::DENIED,
            Kind::RequestExpired { .. } => reason::REQUEST_EXPIRED,
            Kind::RequestProblem { reason, .. }
            | Kind::Refused { reason, .. }
            | Kind::NamespaceClaimed { reason, .. }
            | Kind::NamespaceUnusable { reason, .. } => reason,
            Kind::BindingCreated { .. } => reason::BINDING_CREATED,
            Kind::Granted { .. } => reason::GRANTED,
            Kind::ExpiringSoon { .. } => reason::EXPIRING_SOON,
            Kind::Expired { .. } => reason::EXPIRED,
            Kind::Revoked { .. } => reason::REVOKED,
            Kind::DriftCorrected { .. } => reason::DRIFT_CORRECTED,
            Kind::Removed { .. } => reason::RECORD_DELETED,
            Kind::PersistenceFound { removed: false, .. } => reason::PERSISTENCE_FOUND,
            Kind::PersistenceFound { removed: true, .. } => reason::PERSISTENCE_REMOVED,
            Kind::WorkspaceDeleted { .. } => reason::WORKSPACE_DELETED,
            Kind::WorkspaceCreated { .. } => "WorkspaceCreated",
            Kind::WorkspaceChanged { .. } => "WorkspaceChanged",
            Kind::ProjectCreated { .. } => "ProjectCreated",
            Kind::ProjectChanged { .. } => "ProjectChanged",
            Kind::ProjectDeleted => "ProjectDeleted",
            Kind::LockedOut { .. } => reason::LOCKED_OUT,
            Kind::LockoutCreated { .. } => reason::LOCKOUT_CREATED,
            Kind::LockoutExpired { .. } => reason::LOCKOUT_EXPIRED,
            Kind::LockoutLifted { .. } => reason::LOCKOUT_LIFTED,
        }
    }

    /// Whether its event is a Warning (someone should look at it).
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            Kind::VoteIgnored(_)
                | Kind::BreakGlass { .. }
                | Kind::BreakGlassObjected { .. }
                | Kind::BreakGlassUnratified { .. }
                | Kind::QuorumUnreachable { .. }
                | Kind::RequestProblem { .. }
                | Kind::Refused { .. }
                | Kind::DriftCorrected { .. }
                | Kind::PersistenceFound { .. }
                | Kind::NamespaceUnusable { .. }
                | Kind::LockedOut { .. }
                | Kind::LockoutCreated { .. }
                | Kind::LockoutLifted { .. }
        )
    }
}

/// A user's name as an actor.
pub fn user(name: &str) -> Actor {
    Actor::User(name.to_owned())
}
