//! The one mapping from what happened ([`Transition`]s, which the policy
//! returns with its decisions) to Kubernetes Events, history entries and
//! notifications. The reconcilers append the entries before they write the
//! status that reports the transitions (write-ahead), and publish the events
//! and queue the notifications after. A notification repeats its event's
//! reason and note.
//!
//! Actors are the identity fields that admission verified: `spec.requester`,
//! an approval's `user`, `spec.grantedBy`, `spec.revocation.by`; the
//! operator (`foureyes`) for what it decides on its own (an expiry, a
//! timeout, the end of a record's retention), and `unknown` for a plain
//! deletion (the API server does not tell who deleted an object). When the
//! authenticated writer differs from the named one (a trusted asserter such
//! as a GitOps controller), the details say so.

use kube::ResourceExt;

use super::history::{Chain, EntryObject, NewEntry, OPERATOR_ACTOR, UNKNOWN_ACTOR, action};
use crate::api::{IgnoreReason, Lockout, Project, RoleBinding, RoleRequest, Workspace};
use crate::policy::transition::{Actor, Kind, Persisted, Transition};
use crate::rbac::format_expiry;

/// What the history and the events say of an expiry whose native RBAC was
/// gone when the operator came to remove it.
pub const REMOVED_BEFORE: &str = "the native binding had already been removed before the operator acted on the expiry (by a replica's expiry timer or start-up revocation, or by `foureyes sweep`; the API server does not say which)";

/// An event to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSpec {
    /// A Warning (true) or Normal (false) event.
    pub warning: bool,
    /// The stable reason.
    pub reason: &'static str,
    /// What the operator did (the event's `action`).
    pub action: &'static str,
    /// The note.
    pub note: String,
}

/// The actor as the history and the events name it.
pub fn actor_name(actor: &Actor) -> &str {
    match actor {
        Actor::User(u) => u,
        Actor::Operator => OPERATOR_ACTOR,
        Actor::Unknown => UNKNOWN_ACTOR,
    }
}

/// `RoleBinding shop/keep, token Secret shop/ci-token`.
fn listed(found: &[Persisted]) -> String {
    found.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn suffix(label: &str, who: &Option<String>) -> String {
    who.as_ref().map(|w| format!("; {label} {w}")).unwrap_or_default()
}

/// The event a transition publishes, if any.
pub fn event(t: &Transition) -> Option<EventSpec> {
    let actor = actor_name(&t.actor);
    let (role, subject) = (&t.role, &t.subject);
    let (action, note) = match &t.kind {
        Kind::Requested { duration, required, .. } => (
            "Decide",
            format!("{role} for {subject} {duration} requested by {actor} ({required} approvals required)"),
        ),
        Kind::ApprovalCounted { deciding: true, .. } => return None,
        Kind::ApprovalCounted { tally, .. } => ("Decide", format!("approved by {actor} ({tally})")),
        Kind::VoteIgnored(why) => ("Decide", format!("vote by {actor} ignored: {}", ignored_because(*why))),
        Kind::QuorumReached { approvers, tally } => {
            ("Decide", format!("approved by {} ({tally})", approvers.join(", ")))
        }
        Kind::BreakGlass { tally, .. } => (
            "Decide",
            format!("approved alone by partner {actor} (break-glass; {tally} manager approvals)"),
        ),
        Kind::BreakGlassRatified { partner, comment, late } => (
            "Ratify",
            format!(
                "break-glass by partner {partner} ratified by {actor}{}{}",
                if *late { " after the window had ended" } else { "" },
                comment.as_ref().map(|c| format!(": {c}")).unwrap_or_default()
            ),
        ),
        Kind::BreakGlassObjected { partner, comment } => (
            "Ratify",
            format!(
                "break-glass by partner {partner} objected to by {actor}{}; {role} of {subject} revoked",
                comment.as_ref().map(|c| format!(": {c}")).unwrap_or_default()
            ),
        ),
        Kind::BreakGlassUnratified {
            partner, deleted: true, ..
        } => (
            "Ratify",
            format!(
                "{role} of {subject}, granted by partner {partner} alone (break-glass), was deleted before a manager ratified it"
            ),
        ),
        Kind::BreakGlassUnratified {
            partner,
            deadline,
            revoked,
            ..
        } => (
            "Ratify",
            format!(
                "break-glass by partner {partner} was not ratified by a manager by {}; {}",
                format_expiry(*deadline),
                if *revoked {
                    format!("{role} of {subject} revoked (onUnratified: Revoke)")
                } else {
                    "a manager can still ratify it or object (kubectl access ratify)".to_owned()
                }
            ),
        ),
        Kind::QuorumUnreachable { required } => (
            "Decide",
            format!(
                "the workspace has fewer managers (other than the subject) than the {required} approvals required; only a partner can approve it"
            ),
        ),
        Kind::Denied { tally } => ("Decide", format!("denied by {actor} ({tally})")),
        Kind::RequestExpired { tally } => ("Decide", format!("not approved within the pending timeout ({tally})")),
        Kind::RequestProblem { message, .. } => ("Decide", message.clone()),
        Kind::BindingCreated {
            name,
            duration,
            capped_from,
        } => (
            "Grant",
            format!(
                "RoleBinding {name} created for {duration}{}, granted by {actor}",
                capped_from
                    .as_ref()
                    .map(|asked| format!(" (capped from {asked} by the workspace's maxDuration)"))
                    .unwrap_or_default()
            ),
        ),
        Kind::Granted { until, how, .. } => (
            "Grant",
            format!(
                "{role} granted to {subject} until {} ({how}, granted by {actor})",
                until.map(format_expiry).unwrap_or_default()
            ),
        ),
        Kind::ExpiringSoon { until } => (
            "Remind",
            format!(
                "{role} of {subject} expires at {}",
                until.map(format_expiry).unwrap_or_default()
            ),
        ),
        Kind::Expired {
            already_removed: true, ..
        } => ("Revoke", format!("{role} of {subject} expired; {REMOVED_BEFORE}")),
        Kind::Expired { .. } => ("Revoke", format!("{role} of {subject} expired; access removed")),
        Kind::Revoked { reason } => (
            "Revoke",
            match &t.actor {
                Actor::User(by) => format!("{role} of {subject} revoked by {by}: {reason}"),
                Actor::Operator => format!("{role} of {subject} ended: {reason}"),
                Actor::Unknown => format!("{role} of {subject} revoked"),
            },
        ),
        Kind::Refused { message, .. } => (
            "Refuse",
            format!("{role} for {subject} not granted (granted by {actor}): {message}"),
        ),
        Kind::DriftCorrected { natives } => (
            "Restore",
            format!(
                "native RBAC of {role} for {subject} was changed or removed by someone else and was put back: {}",
                natives.join(", ")
            ),
        ),
        Kind::Removed {
            why,
            retention_over: true,
            ..
        } => ("Delete", why.clone()),
        Kind::Removed { .. } => return None,
        Kind::PersistenceFound { found, removed } => (
            "Revoke",
            format!(
                "{subject} created objects that carry access during the grant ({}): {}",
                if *removed { "deleted" } else { "still in place" },
                listed(found)
            ),
        ),
        Kind::WorkspaceDeleted { namespace, revoked } => (
            "Delete",
            format!(
                "workspace deleted: {revoked} native bindings revoked; namespace {namespace} kept for the auditors"
            ),
        ),
        Kind::NamespaceClaimed { message, .. } | Kind::NamespaceUnusable { message, .. } => ("Claim", message.clone()),
        Kind::LockedOut { lockout, reason } => (
            "Revoke",
            format!("{role} of {subject} ended: locked out by {actor} (Lockout {lockout}): {reason}"),
        ),
        Kind::LockoutCreated { reason, until, .. } => (
            "Lock",
            format!(
                "{subject} locked out by {actor} {}: {reason}; every foureyes binding of theirs is revoked and new ones refused",
                until
                    .map(|u| format!("until {}", format_expiry(u)))
                    .unwrap_or_else(|| "until lifted".into())
            ),
        ),
        Kind::LockoutExpired { until, .. } => (
            "Unlock",
            format!(
                "the lockout of {subject} expired at {}; nothing it ended is restored",
                until.map(format_expiry).unwrap_or_default()
            ),
        ),
        Kind::LockoutLifted { reason, .. } => (
            "Unlock",
            format!(
                "the lockout of {subject} was lifted by {actor}{}; nothing it ended is restored",
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                }
            ),
        ),
        Kind::WorkspaceCreated { .. }
        | Kind::WorkspaceChanged { .. }
        | Kind::ProjectCreated { .. }
        | Kind::ProjectChanged { .. }
        | Kind::ProjectDeleted => return None,
    };
    Some(EventSpec {
        warning: t.kind.is_warning(),
        reason: t.kind.reason(),
        action,
        note,
    })
}

/// The events the transitions of one pass over one object publish, each
/// with the name of the RoleBinding it is related to: one per transition
/// that has an event, except that an approved request's decision and the
/// creation of its binding are one event. The decision's event
/// (`QuorumReached` or `BreakGlass`) names the votes that made it and the
/// binding it created, which is its related object; `BindingCreated` is
/// published alone only where no decision of the same pass tells it.
pub fn events(ts: &[Transition]) -> Vec<(EventSpec, Option<String>)> {
    let decided = ts
        .iter()
        .any(|t| matches!(t.kind, Kind::QuorumReached { .. } | Kind::BreakGlass { .. }));
    let created = ts.iter().find_map(|t| match &t.kind {
        Kind::BindingCreated { name, .. } if decided => event(t).map(|e| (name.clone(), e.note)),
        _ => None,
    });
    ts.iter()
        .filter(|t| !(decided && matches!(t.kind, Kind::BindingCreated { .. })))
        .filter_map(|t| {
            let mut e = event(t)?;
            match (&t.kind, &created) {
                (Kind::QuorumReached { .. } | Kind::BreakGlass { .. }, Some((name, note))) => {
                    e.note = format!("{}; {note}", e.note);
                    Some((e, Some(name.clone())))
                }
                _ => Some((e, None)),
            }
        })
        .collect()
}

/// A notification to queue for the configured webhooks (see
/// [`notices`]).
#[derive(Clone, Debug, PartialEq)]
pub struct NoticeSpec {
    /// The message type, one of [`crate::config::NOTIFICATION_TYPES`]
    /// (the CloudEvents `type` is `dev.foureyes.` and this).
    pub kind: &'static str,
    /// The transition's event: its reason, and its note as the message's
    /// summary.
    pub event: EventSpec,
    /// Who made it happen, as the events and the history name them.
    pub actor: String,
    /// The subject concerned (`User alice`), empty for a lockout of none.
    pub subject: String,
    /// The role concerned in one word.
    pub role: String,
    /// What a receiver may act on: durations, counts, expiry, the lockout.
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// The notifications the transitions of one pass over one object send:
/// a request that needs approval (not one decided, refused or unreachable
/// in the same pass), a request only a partner can approve now, a partner's
/// break-glass approval or direct grant, a grant about to expire, a lockout.
pub fn notices(ts: &[Transition]) -> Vec<NoticeSpec> {
    let settled = ts.iter().any(|t| {
        matches!(
            t.kind,
            Kind::QuorumReached { .. }
                | Kind::BreakGlass { .. }
                | Kind::QuorumUnreachable { .. }
                | Kind::Denied { .. }
                | Kind::RequestExpired { .. }
                | Kind::RequestProblem { .. }
                | Kind::LockedOut { .. }
        )
    });
    ts.iter().filter_map(|t| notice(t, settled)).collect()
}

/// The notification of one transition; `settled`: the request it files was
/// also decided (or stuck) in the same pass, which says more.
fn notice(t: &Transition, settled: bool) -> Option<NoticeSpec> {
    use serde_json::json;
    let (kind, details) = match &t.kind {
        Kind::Requested {
            duration,
            required,
            justification,
            ..
        } if !settled => (
            "request.pending",
            json!({ "duration": duration, "requiredApprovals": required, "justification": justification }),
        ),
        Kind::QuorumUnreachable { required } => ("request.quorumunreachable", json!({ "requiredApprovals": required })),
        Kind::BreakGlass { tally, .. } => ("request.breakglass", json!({ "managerApprovals": tally })),
        Kind::Granted {
            until,
            how,
            namespaces,
            justification,
            ..
        } if *how == crate::policy::binding::Authorization::Partner.reason() => (
            "binding.breakglass",
            json!({ "expiresAt": until, "namespaces": namespaces, "justification": justification }),
        ),
        Kind::ExpiringSoon { until } => ("binding.expiring", json!({ "expiresAt": until })),
        Kind::LockoutCreated { lockout, reason, until } => (
            "lockout.created",
            json!({ "lockout": lockout, "reason": reason, "until": until }),
        ),
        Kind::BreakGlassUnratified {
            partner,
            deadline,
            revoked,
            deleted,
        } => (
            "binding.unratified",
            json!({ "partner": partner, "deadline": deadline, "revoked": revoked, "deleted": deleted }),
        ),
        Kind::BreakGlassObjected { partner, comment } => {
            ("binding.objected", json!({ "partner": partner, "comment": comment }))
        }
        Kind::BreakGlassRatified { .. }
        | Kind::Requested { .. }
        | Kind::ApprovalCounted { .. }
        | Kind::VoteIgnored(_)
        | Kind::QuorumReached { .. }
        | Kind::Denied { .. }
        | Kind::RequestExpired { .. }
        | Kind::RequestProblem { .. }
        | Kind::BindingCreated { .. }
        | Kind::Granted { .. }
        | Kind::Expired { .. }
        | Kind::Revoked { .. }
        | Kind::Refused { .. }
        | Kind::DriftCorrected { .. }
        | Kind::Removed { .. }
        | Kind::PersistenceFound { .. }
        | Kind::WorkspaceCreated { .. }
        | Kind::WorkspaceChanged { .. }
        | Kind::WorkspaceDeleted { .. }
        | Kind::ProjectCreated { .. }
        | Kind::ProjectChanged { .. }
        | Kind::ProjectDeleted
        | Kind::NamespaceClaimed { .. }
        | Kind::NamespaceUnusable { .. }
        | Kind::LockedOut { .. }
        | Kind::LockoutExpired { .. }
        | Kind::LockoutLifted { .. } => return None,
    };
    Some(NoticeSpec {
        kind,
        event: event(t)?,
        actor: actor_name(&t.actor).to_owned(),
        subject: t.subject.clone(),
        role: t.role.clone(),
        details: details.as_object().cloned().unwrap_or_default(),
    })
}

fn ignored_because(why: IgnoreReason) -> &'static str {
    match why {
        IgnoreReason::NotManager => "not a manager of the workspace",
        IgnoreReason::IsSubject => "the subject of the request never counts",
        IgnoreReason::Duplicate => "each person counts once",
        IgnoreReason::TooLate => "the request was already decided",
        IgnoreReason::Unverified => {
            "the API server did not verify that its author wrote it, or with which groups (the subject is a group)"
        }
        IgnoreReason::LockedOut => "the voter is locked out",
        IgnoreReason::CoolingOff => {
            "the voter became a manager too recently (the workspace's managerCoolingOff); it counts once that has passed"
        }
        IgnoreReason::BrokeGlass => "the partner who broke the glass never ratifies it",
    }
}

/// The history entry a transition of `object` writes, if the history records
/// it. Each has its own idempotency key (`<uid>/<transition>`), so recording
/// the same transition again writes nothing.
pub fn entry(t: &Transition, object: &EntryObject) -> Option<NewEntry> {
    let actor = actor_name(&t.actor);
    let (action, key, details): (&str, Option<String>, String) = match &t.kind {
        Kind::Requested {
            duration,
            required,
            justification,
            filed_by,
        } => (
            action::REQUESTED,
            None,
            format!(
                "for {duration}, {required} approvals required; justification: {justification}{}",
                suffix("filed in their name by", filed_by)
            ),
        ),
        Kind::ApprovalCounted { tally, written_by, .. } => (
            action::APPROVED,
            Some(format!("{}/{actor}", action::APPROVED)),
            format!("{tally} approvals{}", suffix("written in their name by", written_by)),
        ),
        Kind::QuorumReached { approvers, tally } => (
            action::QUORUM_REACHED,
            None,
            format!("approved by {} ({tally})", approvers.join(", ")),
        ),
        Kind::BreakGlass { tally, written_by } => (
            action::BREAK_GLASS,
            None,
            format!(
                "approved alone by a partner ({tally} manager approvals){}",
                suffix("written in their name by", written_by)
            ),
        ),
        Kind::BreakGlassRatified { partner, comment, late } => (
            action::BREAK_GLASS_RATIFIED,
            None,
            format!(
                "break-glass by partner {partner} ratified{}{}",
                if *late { " after the window had ended" } else { "" },
                comment.as_ref().map(|c| format!("; comment: {c}")).unwrap_or_default()
            ),
        ),
        Kind::BreakGlassObjected { partner, comment } => (
            action::BREAK_GLASS_OBJECTED,
            None,
            format!(
                "break-glass by partner {partner} objected to; access revoked{}",
                comment.as_ref().map(|c| format!("; comment: {c}")).unwrap_or_default()
            ),
        ),
        Kind::BreakGlassUnratified {
            partner,
            deadline,
            revoked,
            deleted,
        } => (
            action::BREAK_GLASS_UNRATIFIED,
            None,
            format!(
                "break-glass by partner {partner} not ratified by {}; {}",
                format_expiry(*deadline),
                if *deleted {
                    "the binding was deleted before a manager ratified it"
                } else if *revoked {
                    "access revoked (onUnratified: Revoke)"
                } else {
                    "flagged (onUnratified: Flag)"
                }
            ),
        ),
        Kind::QuorumUnreachable { required } => (
            action::QUORUM_UNREACHABLE,
            None,
            format!("fewer managers than the {required} approvals required; only a partner can approve"),
        ),
        Kind::Denied { tally } => (action::DENIED, None, format!("with {tally} approvals")),
        Kind::RequestExpired { tally } => (
            action::REQUEST_EXPIRED,
            None,
            format!("pending past its timeout with {tally} approvals"),
        ),
        Kind::Granted {
            until,
            how,
            namespaces,
            justification,
            created_by,
        } => (
            action::GRANTED,
            None,
            format!(
                "until {} ({how}) in {}{}; justification: {justification}",
                until.map(format_expiry).unwrap_or_default(),
                namespaces.join(", "),
                suffix("created by", created_by)
            ),
        ),
        Kind::Expired {
            until,
            was_active,
            already_removed,
        } => {
            let until = until.map(format_expiry).unwrap_or_default();
            (
                action::EXPIRED,
                None,
                if *was_active && *already_removed {
                    format!("expired at {until}; {REMOVED_BEFORE}")
                } else if *was_active {
                    format!("expired at {until}; access removed")
                } else {
                    format!("expired at {until} without having been granted")
                },
            )
        }
        Kind::Revoked { reason } => (action::REVOKED, None, format!("access removed; reason: {reason}")),
        Kind::Refused {
            reason,
            message,
            created_by,
            recorded: true,
        } => (
            action::REFUSED,
            Some(format!("{}/{reason}", action::REFUSED)),
            format!("{reason}: {message}{}", suffix("created by", created_by)),
        ),
        Kind::Removed { why, last_phase, .. } => (
            action::REMOVED,
            None,
            format!("{why}; last phase {last_phase}; native RBAC removed"),
        ),
        Kind::PersistenceFound { found, removed } => (
            action::PERSISTENCE_FOUND,
            None,
            format!(
                "created by the holder during the grant: {}; {}",
                listed(found),
                if *removed {
                    "deleted (persistence: Revoke)"
                } else {
                    "left in place (persistence: Report)"
                }
            ),
        ),
        Kind::WorkspaceCreated { namespace, policy } => (
            action::WORKSPACE_CREATED,
            None,
            format!("control namespace {namespace}; {policy}"),
        ),
        Kind::WorkspaceChanged { generation, policy } => (
            action::WORKSPACE_CHANGED,
            Some(format!("{}/{generation}", action::WORKSPACE_CHANGED)),
            format!("generation {generation}: {policy}"),
        ),
        Kind::WorkspaceDeleted { namespace, revoked } => (
            action::WORKSPACE_DELETED,
            None,
            format!("workspace deleted; {revoked} native bindings revoked; namespace {namespace} and its history kept"),
        ),
        Kind::ProjectCreated { spec } => (action::PROJECT_CREATED, None, spec.clone()),
        Kind::ProjectChanged { generation, spec } => (
            action::PROJECT_CHANGED,
            Some(format!("{}/{generation}", action::PROJECT_CHANGED)),
            format!("generation {generation}: {spec}"),
        ),
        Kind::ProjectDeleted => (
            action::PROJECT_DELETED,
            None,
            "project deleted; its native RBAC removed and its bindings ended".into(),
        ),
        Kind::LockedOut { lockout, reason } => (
            action::LOCKED_OUT,
            None,
            format!("access removed or request ended; Lockout {lockout}: {reason}"),
        ),
        Kind::LockoutCreated { lockout, reason, until } => (
            action::LOCKOUT_CREATED,
            None,
            format!(
                "Lockout {lockout} {}: {reason}",
                until
                    .map(|u| format!("until {}", format_expiry(u)))
                    .unwrap_or_else(|| "until lifted".into())
            ),
        ),
        Kind::LockoutExpired { lockout, until } => (
            action::LOCKOUT_EXPIRED,
            None,
            format!(
                "Lockout {lockout} expired at {}; nothing it ended is restored",
                until.map(format_expiry).unwrap_or_default()
            ),
        ),
        Kind::LockoutLifted { lockout, reason } => (
            action::LOCKOUT_LIFTED,
            None,
            format!(
                "Lockout {lockout} lifted{}; nothing it ended is restored",
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                }
            ),
        ),
        Kind::VoteIgnored(_)
        | Kind::RequestProblem { .. }
        | Kind::BindingCreated { .. }
        | Kind::ExpiringSoon { .. }
        | Kind::Refused { recorded: false, .. }
        | Kind::DriftCorrected { .. }
        | Kind::NamespaceClaimed { .. }
        | Kind::NamespaceUnusable { .. } => return None,
    };
    let mut e = NewEntry::new(object.clone(), action, actor).details(details);
    if let Some(key) = key {
        e = e.transition(&key);
    }
    if !t.subject.is_empty() {
        e = e.subject(t.subject.clone());
        if !t.role.is_empty() {
            e = e.role(t.role.clone());
        }
    }
    Some(e)
}

/// The entries the transitions of `object` write, in order.
pub fn entries(ts: &[Transition], object: &EntryObject) -> Vec<NewEntry> {
    ts.iter().filter_map(|t| entry(t, object)).collect()
}

/// The chain of a binding: its project's for a project role, the
/// workspace's for a workspace role.
pub fn binding_chain(b: &RoleBinding) -> Chain {
    match (&b.spec.project, &b.spec.project_role) {
        (Some(p), Some(_)) => Chain::project(p),
        _ => Chain::workspace(),
    }
}

/// The chain of a request: its project's for a project role, the
/// workspace's for a workspace role.
pub fn request_chain(r: &RoleRequest) -> Chain {
    match (&r.spec.project, &r.spec.project_role) {
        (Some(p), Some(_)) => Chain::project(p),
        _ => Chain::workspace(),
    }
}

/// An object as the object of an entry.
pub fn object_of<K: kube::Resource<DynamicType = ()>>(obj: &K) -> EntryObject {
    EntryObject {
        kind: K::kind(&()).into_owned(),
        name: obj.name_any(),
        uid: obj.uid().unwrap_or_default(),
    }
}

/// A workspace as the object of an entry.
pub fn workspace_object(ws: &Workspace) -> EntryObject {
    object_of(ws)
}

/// A lockout as the object of an entry.
pub fn lockout_object(l: &Lockout) -> EntryObject {
    object_of(l)
}

/// A project as the object of an entry.
pub fn project_object(p: &Project) -> EntryObject {
    object_of(p)
}

#[cfg(test)]
mod tests;
