//! `kubectl access approve` and `deny`: the checks the plugin makes before
//! it votes on a request, the patch it sends, and the command.
//!
//! The API server and the operator remain the judges (the admission policy
//! ties the vote to the caller, the CRD keeps approvals append-only, the
//! operator counts each manager once and never the subject). These checks
//! only spare people a write that would be refused or ignored, and tell them
//! why.

use chrono::{DateTime, Utc};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::PluginError;
use super::cli::{Global, Output, VoteArgs};
use super::common::{Target, api_err, emit, emit_json, is_code, target, who};
use crate::api::request::MAX_APPROVALS;
use crate::api::{Approval, Decision, RequestPhase, RoleRequest, SubjectKind};

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

/// Casts the caller's vote (retrying while the request changes under it).
pub(super) async fn command(client: &Client, g: &Global, a: &VoteArgs, decision: Decision) -> Result<u8, PluginError> {
    let me = who(client).await?;
    let t = target(client, g, &a.workspace).await?;
    if decision == Decision::Approve && g.output != Output::Json {
        let r = get_request(client, &t, &a.name).await?;
        check_vote(&r, &me.user).map_err(|refusal| PluginError::Declined(refusal.message(&a.name, &me.user)))?;
        emit(&what_you_sign(client, &t.namespace, &r).await);
    }
    let (updated, ballot) = cast(client, &t, &a.name, &me.user, decision, a.comment.clone()).await?;
    let done = match decision {
        Decision::Approve => "approved",
        Decision::Deny => "denied",
    };
    let status = updated.status.clone().unwrap_or_default();
    if g.output == Output::Json {
        emit_json(&json!({
            "name": a.name, "namespace": t.namespace, "vote": ballot,
            "votes": updated.spec.approvals.len(), "phase": status.phase, "approvals": status.approvals,
        }));
    } else {
        emit(&format!(
            "{done} request {} in {} as {}\nvotes so far: {}\nthe operator counts managers' votes once each; \
             follow it with kubectl get rr {} -n {}\n",
            a.name,
            t.namespace,
            me.user,
            voters(&updated),
            a.name,
            t.namespace
        ));
    }
    Ok(0)
}

/// The votes cast on a request, for people: `alice (Approve), bob (Deny)`.
pub(super) fn voters(r: &RoleRequest) -> String {
    let v: Vec<String> = r
        .spec
        .approvals
        .iter()
        .map(|v| format!("{} ({:?})", v.user, v.decision))
        .collect();
    v.join(", ")
}

async fn get_request(client: &Client, t: &Target, name: &str) -> Result<RoleRequest, PluginError> {
    let api = Api::<RoleRequest>::namespaced(client.clone(), &t.namespace);
    match api.get(name).await {
        Ok(r) => Ok(r),
        Err(e) if is_code(&e, 404) => Err(PluginError::NotFound(format!(
            "request {name} not found in {}: list them with kubectl access list {}",
            t.namespace,
            t.flag()
        ))),
        Err(e) => Err(api_err(format!("reading request {name}"))(e)),
    }
}

/// Casts `me`'s vote on the request `name` after [`check_vote`], retrying
/// while the request changes under it; returns the request as written and
/// the vote. What the command and the console share.
pub(super) async fn cast(
    client: &Client,
    t: &Target,
    name: &str,
    me: &str,
    decision: Decision,
    comment: Option<String>,
) -> Result<(RoleRequest, Approval), PluginError> {
    let api = Api::<RoleRequest>::namespaced(client.clone(), &t.namespace);
    let mut last_rv = None;
    for _ in 0..5 {
        let r = get_request(client, t, name).await?;
        check_vote(&r, me).map_err(|refusal| PluginError::Declined(refusal.message(name, me)))?;
        let rv = r.resource_version().unwrap_or_default();
        let ballot = vote(me, decision, comment.clone(), Utc::now());
        let patch = serde_json::from_value(vote_patch(&r, &rv, &ballot))
            .map_err(|e| PluginError::Input(format!("building the patch: {e}")))?;
        match api
            .patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
            .await
        {
            Ok(updated) => return Ok((updated, ballot)),
            // Someone else changed the request in between: look again.
            Err(e) if is_code(&e, 409) => continue,
            Err(e) if is_code(&e, 422) && last_rv.as_ref() != Some(&rv) => {
                last_rv = Some(rv);
                continue;
            }
            Err(e) => return Err(api_err(format!("voting on request {name}"))(e)),
        }
    }
    Err(PluginError::Refused(format!(
        "request {name} kept changing while voting on it: try again"
    )))
}

/// What a workspace role grants, for the approver.
pub const WORKSPACE_ROLE_GRANTS: &str = "a workspace role: the workspace's own objects, no tenant namespace";

/// What approving `r` grants, printed before the vote is written: the
/// operator's reading of the role's ClusterRole, in the project's tenant
/// namespaces.
async fn what_you_sign(client: &Client, ns: &str, r: &RoleRequest) -> String {
    let role = crate::policy::Role::of_request(&r.spec)
        .map(|r| r.label())
        .unwrap_or_default();
    let head = format!("approving {role} for {} ({}):\n", r.spec.subject, r.spec.duration);
    let Some(project) = &r.spec.project else {
        return format!("{head}  {WORKSPACE_ROLE_GRANTS}\n");
    };
    let Some(p) = r.status.as_ref().and_then(|s| s.permissions.as_ref()) else {
        return head + "  what the role grants is not known yet: the operator has not read its ClusterRole\n";
    };
    let namespaces = Api::<crate::api::Project>::namespaced(client.clone(), ns)
        .get(project)
        .await
        .map(|p| p.spec.namespaces)
        .unwrap_or_default();
    head + &super::format::permissions(p, &namespaces, 2)
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
}
