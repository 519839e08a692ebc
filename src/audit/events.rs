//! Event reasons. These strings are stable: auditors filter on them
//! (`kubectl get events --field-selector reason=Expired`). Normal events mark
//! the lifecycle; Warning events mark what someone should look at.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tracing::warn;

/// A binding's native RBAC was put in place (Normal).
pub const GRANTED: &str = "Granted";
/// A binding reached its expiry and its native RBAC was removed (Normal).
pub const EXPIRED: &str = "Expired";
/// A binding was revoked and its native RBAC removed (Normal).
pub const REVOKED: &str = "Revoked";
/// A finished binding's retention ended and the record was deleted (Normal).
pub const RECORD_DELETED: &str = "RecordDeleted";
/// Native RBAC of an active grant was edited or deleted by someone else and
/// was put back (Warning).
pub const DRIFT_CORRECTED: &str = "DriftCorrected";
/// Native RBAC found past its expiry at start-up or by the sweep, and removed (Warning).
pub const OVERDUE_REVOKED: &str = "OverdueRevoked";
/// A workspace's control namespace was created or taken over (Normal).
pub const NAMESPACE_READY: &str = "NamespaceReady";
/// A namespace cannot be used: a system namespace, or an existing one not
/// labelled for the claimant (Warning).
pub const NAMESPACE_REFUSED: &str = "NamespaceRefused";
/// When a project role ended, its holder had created RoleBindings in the
/// tenant namespaces during the grant; they are still in place (Warning).
pub const PERSISTENCE_FOUND: &str = "PersistenceFound";
/// Likewise, and the workspace's `persistence: Revoke` deleted them (Warning).
pub const PERSISTENCE_REMOVED: &str = "PersistenceRemoved";
/// An admission policy or binding of foureyes is missing or altered: no new
/// grant is authorised and no request decided until it is restored (Warning).
pub const ADMISSION_POLICIES_ALTERED: &str = "AdmissionPoliciesAltered";
/// A namespace is claimed by another workspace or project (by uid); nothing
/// of the other claimant is touched (Warning).
pub const NAMESPACE_TAKEN: &str = "NamespaceTaken";
/// A project created a tenant namespace (Normal).
pub const NAMESPACE_CREATED: &str = "NamespaceCreated";
/// A project adopted an existing namespace that carried its labels (Normal).
pub const NAMESPACE_ADOPTED: &str = "NamespaceAdopted";
/// A workspace was deleted and everything it granted was revoked (Normal).
pub const WORKSPACE_DELETED: &str = "WorkspaceDeleted";

/// The operator cannot read an object (it does not match the operator's
/// types: stored before a schema change, or edited around validation); it is
/// left out, and a binding grants nothing while unreadable (Warning).
pub const INVALID_OBJECT: &str = "InvalidObject";
/// A role request was seen for the first time (Normal).
pub const REQUESTED: &str = "Requested";
/// A manager's approval of a request was counted; the note says `n/m` (Normal).
pub const APPROVAL_COUNTED: &str = "ApprovalCounted";
/// A vote on a request did not count: not a manager, the subject, a second
/// vote, or after the decision (Warning).
pub const VOTE_IGNORED: &str = "VoteIgnored";
/// Enough managers approved a request (Normal).
pub const QUORUM_REACHED: &str = "QuorumReached";
/// The workspace has fewer managers than a request's quorum; only a partner
/// can approve it (Warning).
pub const QUORUM_UNREACHABLE: &str = "QuorumUnreachable";
/// A partner approved a request alone (Warning).
pub const BREAK_GLASS: &str = "BreakGlass";
/// A request was denied (Normal).
pub const DENIED: &str = "Denied";
/// A request stayed pending longer than the workspace's `pendingTimeout` (Normal).
pub const REQUEST_EXPIRED: &str = "RequestExpired";
/// The RoleBinding of an approved request was created (Normal).
pub const BINDING_CREATED: &str = "BindingCreated";

/// A request that cannot move on uses its problem's reason as a Warning
/// event: `WorkspaceNotFound`, `ProjectNotFound`, `UnknownRole`,
/// `RoleNotAllowed`, `BindingNameTaken`, `InvalidSpec`.
pub const REQUEST_PROBLEM_REASONS: &[&str] = &[
    "WorkspaceNotFound",
    "ProjectNotFound",
    "UnknownRole",
    "RoleNotAllowed",
    "BindingNameTaken",
    "InvalidSpec",
];

/// A binding not in effect uses its refusal's reason as a Warning event:
/// `NotAuthorized`, `RoleNotAllowed`, `UnknownRole`, `ProjectNotFound`,
/// `ProjectHasNoNamespaces`, `WorkspaceNotFound`,
/// `PartnerSelfAssignmentRestricted`, `OriginRequestNotApproved`, `InvalidSpec`
/// (see [`crate::policy::Refusal::reason`]).
pub const REFUSAL_REASONS: &[&str] = &[
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

/// The operator's event publisher, one per process and shared by every
/// reconciler.
///
/// Warning events go through one shared kube [`Recorder`], so that a warning
/// repeated on the same object becomes one event with a growing series
/// instead of a new event each time. That recorder keeps every event it
/// published for six minutes to count such repeats. Normal events mark
/// transitions: each is published once, and its reference carries the
/// object's `resourceVersion`, which differs at every transition, so a
/// repeat could never be counted. Keeping them would cost a few kilobytes per
/// grant (37 MB while 10,000 grants start), so each Normal event is
/// published by a recorder that lives only for that call.
#[derive(Clone)]
pub struct Events {
    warnings: Recorder,
    client: Client,
    reporter: Reporter,
}

impl Events {
    /// A publisher writing as `reporter`.
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self {
            warnings: Recorder::new(client.clone(), reporter.clone()),
            client,
            reporter,
        }
    }

    /// Publishes an event; a failure is logged and otherwise ignored (events
    /// are the live view, not the record).
    pub async fn publish(&self, reference: &ObjectReference, warning: bool, reason: &str, action: &str, note: String) {
        let event = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.to_owned(),
            note: Some(note.chars().take(1024).collect()),
            action: action.to_owned(),
            secondary: None,
        };
        let published = if warning {
            self.warnings.publish(&event, reference).await
        } else {
            Recorder::new(self.client.clone(), self.reporter.clone())
                .publish(&event, reference)
                .await
        };
        if let Err(err) = published {
            warn!(%err, reason, "could not publish event");
        }
    }
}
