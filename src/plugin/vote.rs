//! The checks the plugin makes before it votes on a request or revokes a
//! binding, and the patches it sends.
//!
//! The API server and the operator remain the judges (the admission policy
//! ties the vote to the caller, the CRD keeps approvals append-only, the
//! operator counts each manager once and never the subject). These checks
//! only spare people a write that would be refused or ignored, and tell them
//! why.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::api::request::MAX_APPROVALS;
use crate::api::{Approval, BindingPhase, Decision, RequestPhase, RoleBinding, RoleRequest, SubjectKind};

/// Why the plugin does not cast a vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoteRefusal {
    /// The request is decided or timed out.
    Finished(RequestPhase),
    /// The voter is the request's subject.
    IsSubject,
    /// The voter has voted already.
    AlreadyVoted(Decision),
    /// The request holds the most votes it can.
    Full,
}

impl VoteRefusal {
    /// A message saying what happened and what to do instead.
    pub fn message(&self, request: &str, me: &str) -> String {
        match self {
            VoteRefusal::Finished(phase) => format!(
                "request {request} is already {phase:?}: votes no longer count; file a new request with kubectl access request"
            ),
            VoteRefusal::IsSubject => format!(
                "request {request} is for you ({me}): the subject of a request never approves it; ask a workspace manager"
            ),
            VoteRefusal::AlreadyVoted(d) => format!(
                "you ({me}) have already voted {d:?} on request {request}: each person counts once, and votes cannot be changed"
            ),
            VoteRefusal::Full => format!(
                "request {request} holds {MAX_APPROVALS} votes, the most it can: ask a partner or file a new request"
            ),
        }
    }
}

/// Whether a request's phase means votes still count.
pub fn is_open(phase: Option<RequestPhase>) -> bool {
    matches!(
        phase,
        None | Some(RequestPhase::Pending | RequestPhase::QuorumUnreachable)
    )
}

/// Whether `me` may usefully vote on `request` now.
pub fn check_vote(request: &RoleRequest, me: &str) -> Result<(), VoteRefusal> {
    let phase = request.status.as_ref().and_then(|s| s.phase);
    if let Some(p) = phase.filter(|p| !is_open(Some(*p))) {
        return Err(VoteRefusal::Finished(p));
    }
    let subject = &request.spec.subject;
    if subject.kind == SubjectKind::User && subject.name == me {
        return Err(VoteRefusal::IsSubject);
    }
    if let Some(previous) = request.spec.approvals.iter().find(|a| a.user == me) {
        return Err(VoteRefusal::AlreadyVoted(previous.decision));
    }
    if request.spec.approvals.len() >= MAX_APPROVALS {
        return Err(VoteRefusal::Full);
    }
    Ok(())
}

/// The vote `me` casts.
pub fn vote(me: &str, decision: Decision, comment: Option<String>, now: DateTime<Utc>) -> Approval {
    Approval {
        user: me.to_owned(),
        decision,
        comment: comment.filter(|c| !c.trim().is_empty()),
        time: Some(now),
    }
}

/// A JSON patch (RFC 6902) that appends `vote` to the request's approvals,
/// only if the request is still at `resource_version` (the `test`
/// operation): a vote is never added to a list that someone else changed in
/// between; the caller fetches again and retries.
pub fn vote_patch(request: &RoleRequest, resource_version: &str, vote: &Approval) -> Value {
    let vote = serde_json::to_value(vote).unwrap_or(Value::Null);
    let append = if request.spec.approvals.is_empty() {
        // The list may be absent from the stored object: add it whole.
        json!({ "op": "add", "path": "/spec/approvals", "value": [vote] })
    } else {
        json!({ "op": "add", "path": "/spec/approvals/-", "value": vote })
    };
    json!([
        { "op": "test", "path": "/metadata/resourceVersion", "value": resource_version },
        append,
    ])
}

/// Why the plugin does not revoke a binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeRefusal {
    /// Revoked already, by whom and why.
    AlreadyRevoked {
        /// Who revoked it.
        by: String,
        /// Why.
        reason: String,
    },
    /// It expired; there is no access left to take away.
    Expired,
}

impl RevokeRefusal {
    /// A message for people.
    pub fn message(&self, binding: &str) -> String {
        match self {
            RevokeRefusal::AlreadyRevoked { by, reason } => {
                format!("binding {binding} was already revoked by {by} ({reason}); nothing to do")
            }
            RevokeRefusal::Expired => format!("binding {binding} has expired; its access is already gone"),
        }
    }
}

/// Whether a binding can still be revoked.
pub fn check_revoke(binding: &RoleBinding) -> Result<(), RevokeRefusal> {
    if let Some(r) = &binding.spec.revocation {
        return Err(RevokeRefusal::AlreadyRevoked {
            by: r.by.clone(),
            reason: r.reason.clone(),
        });
    }
    match binding.status.as_ref().and_then(|s| s.phase) {
        Some(BindingPhase::Expired) => Err(RevokeRefusal::Expired),
        _ => Ok(()),
    }
}

/// A merge patch that sets the revocation, only if the binding is still at
/// `resource_version` (the API server answers Conflict otherwise).
pub fn revoke_patch(resource_version: &str, me: &str, reason: &str) -> Value {
    json!({
        "metadata": { "resourceVersion": resource_version },
        "spec": { "revocation": { "by": me, "reason": reason } },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{RoleRequestStatus, Subject};
    use chrono::TimeZone;

    fn request(subject: &str, approvals: &[(&str, Decision)], phase: Option<RequestPhase>) -> RoleRequest {
        let mut r: RoleRequest = serde_json::from_value(json!({
            "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
            "metadata": { "name": "r1", "namespace": "ws-a", "resourceVersion": "7" },
            "spec": { "subject": { "kind": "User", "name": subject }, "project": "app", "projectRole": "admin",
                      "duration": "2h", "justification": "INC-1", "requester": subject },
        }))
        .unwrap();
        r.spec.approvals = approvals
            .iter()
            .map(|(u, d)| Approval {
                user: (*u).into(),
                decision: *d,
                comment: None,
                time: None,
            })
            .collect();
        r.status = phase.map(|p| RoleRequestStatus {
            phase: Some(p),
            ..Default::default()
        });
        r
    }

    #[test]
    fn votes_are_refused_when_they_would_not_count() {
        assert_eq!(check_vote(&request("dave", &[], None), "alice"), Ok(()));
        assert_eq!(
            check_vote(&request("dave", &[], Some(RequestPhase::QuorumUnreachable)), "partner"),
            Ok(())
        );
        assert_eq!(
            check_vote(&request("dave", &[], None), "dave"),
            Err(VoteRefusal::IsSubject)
        );
        assert_eq!(
            check_vote(&request("dave", &[("alice", Decision::Approve)], None), "alice"),
            Err(VoteRefusal::AlreadyVoted(Decision::Approve))
        );
        for phase in [
            RequestPhase::Granted,
            RequestPhase::Denied,
            RequestPhase::Expired,
            RequestPhase::Approved,
        ] {
            assert_eq!(
                check_vote(&request("dave", &[], Some(phase)), "alice"),
                Err(VoteRefusal::Finished(phase))
            );
        }
        let many: Vec<(String, Decision)> = (0..MAX_APPROVALS)
            .map(|i| (format!("u{i}"), Decision::Approve))
            .collect();
        let many: Vec<(&str, Decision)> = many.iter().map(|(u, d)| (u.as_str(), *d)).collect();
        assert_eq!(
            check_vote(&request("dave", &many, None), "alice"),
            Err(VoteRefusal::Full)
        );
        // A group subject does not stop a member of the group from voting
        // (the operator decides whether such a vote counts).
        let mut r = request("dave", &[], None);
        r.spec.subject = Subject::group("oncall");
        assert_eq!(check_vote(&r, "oncall"), Ok(()));
    }

    #[test]
    fn refusals_say_what_to_do() {
        let m = VoteRefusal::Finished(RequestPhase::Granted).message("r1", "alice");
        assert!(
            m.contains("already Granted") && m.contains("kubectl access request"),
            "{m}"
        );
        assert!(
            VoteRefusal::IsSubject
                .message("r1", "dave")
                .contains("ask a workspace manager")
        );
    }

    #[test]
    fn the_vote_patch_tests_the_resource_version_and_appends() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let v = vote("alice", Decision::Approve, Some("ok".into()), now);
        assert_eq!(
            vote_patch(&request("dave", &[], None), "7", &v),
            json!([
                { "op": "test", "path": "/metadata/resourceVersion", "value": "7" },
                { "op": "add", "path": "/spec/approvals", "value": [
                    { "user": "alice", "decision": "Approve", "comment": "ok", "time": "2026-01-01T12:00:00Z" }
                ] },
            ])
        );
        let v = vote("bob", Decision::Deny, Some("  ".into()), now);
        let p = vote_patch(&request("dave", &[("alice", Decision::Approve)], None), "9", &v);
        assert_eq!(p[1]["path"], "/spec/approvals/-");
        assert_eq!(
            p[1]["value"],
            json!({ "user": "bob", "decision": "Deny", "time": "2026-01-01T12:00:00Z" })
        );
    }

    #[test]
    fn revocation_is_refused_once_access_is_gone() {
        let mut b: RoleBinding = serde_json::from_value(json!({
            "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
            "metadata": { "name": "b1", "namespace": "ws-a" },
            "spec": { "subject": { "kind": "User", "name": "dave" }, "workspaceRole": "member",
                      "duration": "2h", "justification": "INC-1", "grantedBy": "alice" },
        }))
        .unwrap();
        assert_eq!(check_revoke(&b), Ok(()));
        b.status = Some(crate::api::RoleBindingStatus {
            phase: Some(BindingPhase::Expired),
            ..Default::default()
        });
        assert_eq!(check_revoke(&b), Err(RevokeRefusal::Expired));
        b.spec.revocation = Some(crate::api::Revocation {
            by: "bob".into(),
            reason: "stolen laptop".into(),
        });
        assert!(matches!(check_revoke(&b), Err(RevokeRefusal::AlreadyRevoked { .. })));
        assert_eq!(
            revoke_patch("3", "alice", "why"),
            json!({ "metadata": { "resourceVersion": "3" }, "spec": { "revocation": { "by": "alice", "reason": "why" } } })
        );
    }
}
