//! Which history entry a transition writes (pure): the reconcilers call these
//! with what they decided and append the result before they write the status
//! that reports the transition (write-ahead).
//!
//! Actors are the identity fields that admission verified: `spec.grantedBy`
//! for a grant or a refusal, `spec.revocation.by` for a revocation, the
//! operator (`foureyes`) for an expiry or the end of a record's retention, and
//! `unknown` for a plain deletion (the API server does not tell who deleted an
//! object). When the authenticated creator (the annotation
//! `foureyes.dev/created-by`) differs from `grantedBy` (a trusted asserter
//! such as a GitOps controller), the details say so.

use crate::wire::{CHANGED_BY_ANNOTATION, CREATED_BY_ANNOTATION};
use kube::ResourceExt;

use super::history::{Chain, EntryObject, NewEntry, OPERATOR_ACTOR, UNKNOWN_ACTOR, action};
use crate::api::conditions::{READY, find_condition};

use crate::api::{
    BindingPhase, Project, RequestPhase, RoleBinding, RoleBindingStatus, RoleRequest, RoleRequestStatus, Workspace,
};
use crate::policy::binding::{BindingDecision, Refusal};
use crate::policy::quorum::{RequestDecision, is_decided};
use crate::policy::role::Role;
use crate::rbac::format_expiry;

/// The chain of a binding: its project's for a project role, the
/// workspace's for a workspace role.
pub fn binding_chain(b: &RoleBinding) -> Chain {
    match (&b.spec.project, &b.spec.project_role) {
        (Some(p), Some(_)) => Chain::project(p),
        _ => Chain::workspace(),
    }
}

/// A binding as the object of an entry.
pub fn binding_object(b: &RoleBinding) -> EntryObject {
    EntryObject {
        kind: "RoleBinding".into(),
        name: b.name_any(),
        uid: b.uid().unwrap_or_default(),
    }
}

/// The role of a binding in one word (`manager`, `app/admin`).
fn binding_role(b: &RoleBinding) -> String {
    Role::of_binding(&b.spec).map(|r| r.label()).unwrap_or_default()
}

fn base(b: &RoleBinding, action: &str, actor: &str) -> NewEntry {
    NewEntry::new(binding_object(b), action, actor)
        .subject(b.spec.subject.to_string())
        .role(binding_role(b))
}

fn asserted(b: &RoleBinding) -> String {
    match b.annotations().get(CREATED_BY_ANNOTATION) {
        Some(creator) if creator != &b.spec.granted_by => format!("; created by {creator}"),
        _ => String::new(),
    }
}

/// The entry for a binding's transition from `previous` to `decision`, if it
/// is one the history records: granted (active), expired, revoked, or
/// refused for a new reason. Transient refusals ("not yet") and
/// `WorkspaceNotFound` are not recorded.
pub fn binding_entry(
    b: &RoleBinding,
    decision: &BindingDecision,
    previous: Option<&RoleBindingStatus>,
) -> Option<NewEntry> {
    let previous_phase = previous.and_then(|s| s.phase);
    let until = decision.expires_at.map(format_expiry).unwrap_or_default();
    match (previous_phase, decision.phase) {
        (p, BindingPhase::Active) if p != Some(BindingPhase::Active) => {
            let how = decision.authorization.map(|a| a.reason()).unwrap_or_default();
            let mut namespaces: Vec<&str> = decision.grants.iter().map(|g| g.namespace.as_str()).collect();
            namespaces.sort_unstable();
            namespaces.dedup();
            Some(base(b, action::GRANTED, &b.spec.granted_by).details(format!(
                "until {until} ({how}) in {}{}; justification: {}",
                namespaces.join(", "),
                asserted(b),
                b.spec.justification
            )))
        }
        (p, BindingPhase::Expired) if p != Some(BindingPhase::Expired) => {
            let details = if p == Some(BindingPhase::Active) {
                format!("expired at {until}; access removed")
            } else {
                format!("expired at {until} without having been granted")
            };
            Some(base(b, action::EXPIRED, OPERATOR_ACTOR).details(details))
        }
        (p, BindingPhase::Revoked) if p != Some(BindingPhase::Revoked) => {
            let (by, why) = match &decision.revoked {
                Some(r) => (r.actor().unwrap_or(OPERATOR_ACTOR), r.reason()),
                None => (UNKNOWN_ACTOR, ""),
            };
            Some(base(b, action::REVOKED, by).details(format!("access removed; reason: {why}")))
        }
        (_, BindingPhase::Pending) => {
            // Without a workspace there is no chain to record into (after a
            // workspace's deletion, its final entry says what became of its
            // bindings).
            let r = decision
                .refusal
                .as_ref()
                .filter(|r| !r.is_transient() && !matches!(r, Refusal::WorkspaceNotFound))?;
            let previous_reason = previous
                .and_then(|s| find_condition(&s.conditions, READY))
                .map(|c| c.reason.as_str());
            (previous_reason != Some(r.reason())).then(|| {
                base(b, action::REFUSED, &b.spec.granted_by)
                    .transition(&format!("{}/{}", action::REFUSED, r.reason()))
                    .details(format!("{}: {}{}", r.reason(), r.message(), asserted(b)))
            })
        }
        _ => None,
    }
}

/// The entry for what the holder of `b` created during the grant (`names`),
/// deleted by the operator when `removed`.
pub fn persistence(b: &RoleBinding, names: &[String], removed: bool) -> NewEntry {
    base(b, action::PERSISTENCE_FOUND, OPERATOR_ACTOR).details(format!(
        "created by the holder during the grant: {}; {}",
        names.join(", "),
        if removed {
            "deleted (persistence: Revoke)"
        } else {
            "left in place (persistence: Report)"
        }
    ))
}

/// The entry for a deleted binding: `actor` is the operator when it deleted
/// the record itself (end of retention), `unknown` otherwise.
pub fn binding_removed(b: &RoleBinding, actor: &str, why: &str) -> NewEntry {
    let phase = b
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .map(|p| format!("{p:?}"))
        .unwrap_or_else(|| "Pending".into());
    base(b, action::REMOVED, actor).details(format!("{why}; last phase {phase}; native RBAC removed"))
}

fn workspace_object(ws: &Workspace) -> EntryObject {
    EntryObject {
        kind: "Workspace".into(),
        name: ws.name_any(),
        uid: ws.uid().unwrap_or_default(),
    }
}

/// The workspace chain's first entry: the control namespace is in place.
pub fn workspace_created(ws: &Workspace) -> NewEntry {
    let creator = annotation(ws, CREATED_BY_ANNOTATION);
    NewEntry::new(workspace_object(ws), action::WORKSPACE_CREATED, creator).details(format!(
        "control namespace {}; {}",
        ws.control_namespace(),
        workspace_policy(ws)
    ))
}

/// A change of the workspace's spec, as it is now (one entry per
/// generation), by whoever the admission stamp names.
pub fn workspace_changed(ws: &Workspace) -> NewEntry {
    let generation = ws.metadata.generation.unwrap_or_default();
    NewEntry::new(
        workspace_object(ws),
        action::WORKSPACE_CHANGED,
        annotation(ws, CHANGED_BY_ANNOTATION),
    )
    .transition(&format!("{}/{generation}", action::WORKSPACE_CHANGED))
    .details(format!("generation {generation}: {}", workspace_policy(ws)))
}

fn workspace_policy(ws: &Workspace) -> String {
    let p = &ws.spec.approval_policy;
    format!(
        "approvals: {} for workspace roles, {} for project roles; partner break-glass {}; pending timeout {}; max duration {}; partner self-assignment {}",
        p.workspace_role_approvals,
        p.project_role_approvals,
        if p.partner_break_glass {
            "allowed"
        } else {
            "not allowed"
        },
        p.pending_timeout,
        ws.spec.max_duration,
        if ws.spec.restrict_partner_self_assignment {
            "as member only"
        } else {
            "allowed"
        }
    )
}

fn annotation<'a, K: kube::Resource>(obj: &'a K, key: &str) -> &'a str {
    obj.meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
        .unwrap_or(UNKNOWN_ACTOR)
}

fn project_object(p: &Project) -> EntryObject {
    EntryObject {
        kind: "Project".into(),
        name: p.name_any(),
        uid: p.uid().unwrap_or_default(),
    }
}

fn project_spec(p: &Project) -> String {
    let roles: Vec<String> = p.spec.role_map.iter().map(|(r, c)| format!("{r}={c}")).collect();
    format!(
        "namespaces: {}; role map: {}",
        p.spec.namespaces.join(", "),
        if roles.is_empty() {
            "the configuration's".to_owned()
        } else {
            roles.join(", ")
        }
    )
}

/// The project chain's first entry: the project exists, with its spec.
pub fn project_created(p: &Project) -> NewEntry {
    NewEntry::new(
        project_object(p),
        action::PROJECT_CREATED,
        annotation(p, CREATED_BY_ANNOTATION),
    )
    .details(project_spec(p))
}

/// A change of the project's spec (one entry per generation).
pub fn project_changed(p: &Project) -> NewEntry {
    let generation = p.metadata.generation.unwrap_or_default();
    NewEntry::new(
        project_object(p),
        action::PROJECT_CHANGED,
        annotation(p, CHANGED_BY_ANNOTATION),
    )
    .transition(&format!("{}/{generation}", action::PROJECT_CHANGED))
    .details(format!("generation {generation}: {}", project_spec(p)))
}

/// The project chain's final entry: the project was deleted (who deleted
/// it, the API server does not say) and its grants ended.
pub fn project_deleted(p: &Project) -> NewEntry {
    NewEntry::new(project_object(p), action::PROJECT_DELETED, UNKNOWN_ACTOR)
        .details("project deleted; its native RBAC removed and its bindings ended")
}

/// The workspace chain's final entry: the workspace was deleted and
/// `revoked` native bindings were removed.
pub fn workspace_deleted(ws: &Workspace, revoked: usize) -> NewEntry {
    NewEntry::new(workspace_object(ws), action::WORKSPACE_DELETED, UNKNOWN_ACTOR).details(format!(
        "workspace deleted; {revoked} native bindings revoked; namespace {} and its history kept",
        ws.control_namespace()
    ))
}

/// The chain of a request: its project's for a project role, the
/// workspace's for a workspace role.
pub fn request_chain(r: &RoleRequest) -> Chain {
    match (&r.spec.project, &r.spec.project_role) {
        (Some(p), Some(_)) => Chain::project(p),
        _ => Chain::workspace(),
    }
}

/// The history entries for a request's transition from `previous` to `d`, in
/// order: the request itself (actor: the requester), each newly counted
/// approval (actor: the approver), then the decision: quorum reached (actor:
/// the manager whose approval completed it), break-glass (the partner),
/// denied (who denied), unreachable quorum and timeout (the operator). Each
/// has its own idempotency key, so recording them again writes nothing.
pub fn request_entries(r: &RoleRequest, previous: Option<&RoleRequestStatus>, d: &RequestDecision) -> Vec<NewEntry> {
    let object = EntryObject {
        kind: "RoleRequest".into(),
        name: r.name_any(),
        uid: r.uid().unwrap_or_default(),
    };
    let role = Role::of_request(&r.spec).map(|r| r.label()).unwrap_or_default();
    let entry = |action: &str, actor: &str, transition: String, details: String| {
        NewEntry::new(object.clone(), action, actor)
            .transition(&transition)
            .subject(r.spec.subject.to_string())
            .role(role.clone())
            .details(details)
    };
    // A trusted asserter may write in someone's name: the record says who
    // really wrote it (SECURITY F12).
    let annotations = r.metadata.annotations.as_ref();
    let written_by = |user: &str| -> String {
        r.spec
            .approvals
            .iter()
            .position(|a| a.user == user)
            .and_then(|i| crate::policy::identity::vote_writer(annotations, i))
            .filter(|writer| writer != user)
            .map(|writer| format!("; written in their name by {writer}"))
            .unwrap_or_default()
    };
    let mut out = vec![];
    if previous.is_none() {
        let filed_by = annotations
            .and_then(|a| a.get(CREATED_BY_ANNOTATION))
            .filter(|creator| **creator != r.spec.requester)
            .map(|creator| format!("; filed in their name by {creator}"))
            .unwrap_or_default();
        out.push(entry(
            action::REQUESTED,
            &r.spec.requester,
            "Requested".into(),
            format!(
                "for {}, {} approvals required; justification: {}{filed_by}",
                r.spec.duration.as_str(),
                d.required,
                r.spec.justification
            ),
        ));
    }
    let counted: &[String] = previous.map(|s| s.approved_by.as_slice()).unwrap_or_default();
    for (i, user) in d.approved_by.iter().enumerate() {
        if !counted.contains(user) {
            out.push(entry(
                action::APPROVED,
                user,
                format!("Approved/{user}"),
                format!("{}/{} approvals{}", i + 1, d.required, written_by(user)),
            ));
        }
    }
    let before = previous.and_then(|s| s.phase);
    if before != Some(d.phase) {
        match d.phase {
            RequestPhase::Approved | RequestPhase::Granted if !is_decided(before) => match &d.break_glass_by {
                Some(partner) => out.push(entry(
                    action::BREAK_GLASS,
                    partner,
                    "BreakGlass".into(),
                    format!(
                        "approved alone by a partner ({} manager approvals){}",
                        d.tally(),
                        written_by(partner)
                    ),
                )),
                None => out.push(entry(
                    action::QUORUM_REACHED,
                    d.approved_by.last().map(String::as_str).unwrap_or(OPERATOR_ACTOR),
                    "QuorumReached".into(),
                    format!("approved by {} ({})", d.approved_by.join(", "), d.tally()),
                )),
            },
            RequestPhase::Denied => out.push(entry(
                action::DENIED,
                d.denied_by.as_deref().unwrap_or(UNKNOWN_ACTOR),
                "Denied".into(),
                format!("with {} approvals", d.tally()),
            )),
            RequestPhase::Expired => out.push(entry(
                action::REQUEST_EXPIRED,
                OPERATOR_ACTOR,
                "RequestExpired".into(),
                format!("pending past its timeout with {} approvals", d.tally()),
            )),
            RequestPhase::QuorumUnreachable if before != Some(RequestPhase::QuorumUnreachable) => out.push(entry(
                action::QUORUM_UNREACHABLE,
                OPERATOR_ACTOR,
                // Once per request: it may come and go as managers change.
                "QuorumUnreachable".into(),
                format!(
                    "fewer managers than the {} approvals required; only a partner can approve",
                    d.required
                ),
            )),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::conditions::{Condition, ConditionStatus};
    use crate::policy::RoleTarget;
    use crate::policy::binding::{Authorization, Grant};
    use serde_json::json;

    fn binding(project: bool) -> RoleBinding {
        let mut spec = json!({
            "subject": { "kind": "User", "name": "dave" }, "duration": "1h",
            "justification": "INC-1", "grantedBy": "alice",
        });
        if project {
            spec["project"] = "app".into();
            spec["projectRole"] = "admin".into();
        } else {
            spec["workspaceRole"] = "member".into();
        }
        serde_json::from_value(json!({
            "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
            "metadata": { "name": "dave", "namespace": "ws-a", "uid": "u-1",
                          "annotations": { "foureyes.dev/created-by": "alice" } },
            "spec": spec,
        }))
        .unwrap()
    }

    fn decision(phase: BindingPhase) -> BindingDecision {
        BindingDecision {
            phase,
            role: Some("app/admin".into()),
            authorization: Some(Authorization::Manager),
            refusal: None,
            expires_at: Some(chrono::DateTime::UNIX_EPOCH),
            finished_at: None,
            revoked: (phase == BindingPhase::Revoked).then(|| crate::policy::binding::Revoked::By {
                user: "bob".into(),
                reason: "laptop stolen".into(),
            }),
            owners: Default::default(),
            grants: vec![Grant {
                namespace: "a-app".into(),
                target: RoleTarget::ClusterRole("admin".into()),
            }],
            wake_at: None,
            delete_record: false,
        }
    }

    fn status(phase: BindingPhase, reason: &str) -> RoleBindingStatus {
        RoleBindingStatus {
            phase: Some(phase),
            conditions: vec![Condition::new(
                READY,
                ConditionStatus::False,
                reason,
                "",
                None,
                chrono::DateTime::UNIX_EPOCH,
            )],
            ..Default::default()
        }
    }

    #[test]
    fn chains_follow_the_kind_of_role() {
        assert_eq!(binding_chain(&binding(true)), Chain::project("app"));
        assert_eq!(binding_chain(&binding(false)), Chain::workspace());
    }

    #[test]
    fn each_transition_has_its_actor_and_key() {
        let mut b = binding(true);
        let granted = binding_entry(&b, &decision(BindingPhase::Active), None).unwrap();
        assert_eq!((granted.action.as_str(), granted.actor.as_str()), ("Granted", "alice"));
        assert_eq!(granted.key, "u-1/Granted");
        assert_eq!(granted.subject.as_deref(), Some("user dave"));
        assert_eq!(granted.role.as_deref(), Some("app/admin"));
        assert!(granted.details.contains("GrantedByManager") && granted.details.contains("a-app"));
        assert!(!granted.details.contains("created by"));
        let active = status(BindingPhase::Active, "Active");
        assert_eq!(binding_entry(&b, &decision(BindingPhase::Active), Some(&active)), None);

        let expired = binding_entry(&b, &decision(BindingPhase::Expired), Some(&active)).unwrap();
        assert_eq!(
            (expired.action.as_str(), expired.actor.as_str()),
            ("Expired", "foureyes")
        );
        assert!(expired.details.contains("access removed"));

        b.spec.revocation = Some(crate::api::Revocation {
            by: "bob".into(),
            reason: "laptop stolen".into(),
        });
        let revoked = binding_entry(&b, &decision(BindingPhase::Revoked), Some(&active)).unwrap();
        assert_eq!((revoked.action.as_str(), revoked.actor.as_str()), ("Revoked", "bob"));
        assert!(revoked.details.contains("laptop stolen"));
        assert_eq!(revoked.key, "u-1/Revoked");
        let done = status(BindingPhase::Revoked, "Revoked");
        assert_eq!(binding_entry(&b, &decision(BindingPhase::Revoked), Some(&done)), None);

        // Ended because its workspace was deleted: the operator's entry.
        let mut gone = decision(BindingPhase::Revoked);
        gone.revoked = Some(crate::policy::binding::Revoked::OwnerGone(
            "its workspace (uid w-1) was deleted".into(),
        ));
        let ended = binding_entry(&b, &gone, Some(&active)).unwrap();
        assert_eq!((ended.action.as_str(), ended.actor.as_str()), ("Revoked", "foureyes"));
        assert!(ended.details.contains("workspace (uid w-1) was deleted"));
    }

    #[test]
    fn refusals_are_recorded_once_per_reason_and_not_when_transient() {
        let mut b = binding(true);
        b.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(CREATED_BY_ANNOTATION.into(), "gitops".into());
        let mut d = decision(BindingPhase::Pending);
        d.authorization = None;
        d.refusal = Some(Refusal::NotAuthorized("alice may not".into()));
        let e = binding_entry(&b, &d, None).unwrap();
        assert_eq!(e.key, "u-1/Refused/NotAuthorized");
        assert_eq!(e.actor, "alice");
        assert!(e.details.contains("created by gitops"), "{}", e.details);
        let same = status(BindingPhase::Pending, "NotAuthorized");
        assert_eq!(binding_entry(&b, &d, Some(&same)), None);
        d.refusal = Some(Refusal::UnknownRole("wizard".into()));
        assert_eq!(
            binding_entry(&b, &d, Some(&same)).unwrap().key,
            "u-1/Refused/UnknownRole"
        );
        d.refusal = Some(Refusal::WorkspaceNotReady);
        assert_eq!(binding_entry(&b, &d, None), None);
        d.refusal = Some(Refusal::WorkspaceNotFound);
        assert_eq!(binding_entry(&b, &d, Some(&same)), None, "no workspace, no chain");
    }

    #[test]
    fn removal_and_workspace_entries() {
        let b = binding(false);
        let e = binding_removed(&b, UNKNOWN_ACTOR, "deleted");
        assert_eq!(
            (e.action.as_str(), e.actor.as_str(), e.key.as_str()),
            ("Removed", "unknown", "u-1/Removed")
        );
        let ws: Workspace = serde_json::from_value(json!({
            "apiVersion": "foureyes.dev/v1alpha1", "kind": "Workspace",
            "metadata": { "name": "a", "uid": "w-1" }, "spec": {},
        }))
        .unwrap();
        assert_eq!(workspace_created(&ws).key, "w-1/WorkspaceCreated");
        let d = workspace_deleted(&ws, 3);
        assert_eq!(d.key, "w-1/WorkspaceDeleted");
        assert!(d.details.contains("3 native bindings revoked"));
    }

    fn request() -> RoleRequest {
        serde_json::from_value(json!({
            "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
            "metadata": { "name": "dave-admin", "namespace": "ws-a", "uid": "r-1" },
            "spec": {
                "subject": { "kind": "User", "name": "dave" }, "project": "app", "projectRole": "admin",
                "duration": "2h", "justification": "INC-2", "requester": "alice",
            },
        }))
        .unwrap()
    }

    fn request_decision(phase: RequestPhase, approved_by: &[&str]) -> RequestDecision {
        RequestDecision {
            phase,
            required: 2,
            approved_by: approved_by.iter().map(|s| s.to_string()).collect(),
            ignored: vec![],
            denied_by: None,
            break_glass_by: None,
            decided_at: None,
            decided_on_votes: None,
            pending_until: None,
            create_binding: None,
            problem: None,
            wake_at: None,
        }
    }

    fn summary(entries: &[NewEntry]) -> Vec<(String, String, String)> {
        entries
            .iter()
            .map(|e| (e.action.clone(), e.actor.clone(), e.key.clone()))
            .collect()
    }

    #[test]
    fn a_request_records_itself_each_approval_and_its_decision_once() {
        let r = request();
        assert_eq!(request_chain(&r), Chain::project("app"));
        let first = request_decision(RequestPhase::Pending, &["alice"]);
        let e = request_entries(&r, None, &first);
        assert_eq!(
            summary(&e),
            vec![
                ("Requested".into(), "alice".into(), "r-1/Requested".into()),
                ("Approved".into(), "alice".into(), "r-1/Approved/alice".into()),
            ]
        );
        assert_eq!(e[0].role.as_deref(), Some("app/admin"));
        let pending = RoleRequestStatus {
            phase: Some(RequestPhase::Pending),
            approved_by: vec!["alice".into()],
            ..Default::default()
        };
        assert!(request_entries(&r, Some(&pending), &first).is_empty(), "nothing new");
        let done = request_decision(RequestPhase::Approved, &["alice", "bob"]);
        assert_eq!(
            summary(&request_entries(&r, Some(&pending), &done)),
            vec![
                ("Approved".into(), "bob".into(), "r-1/Approved/bob".into()),
                ("QuorumReached".into(), "bob".into(), "r-1/QuorumReached".into()),
            ]
        );
        // Approved -> Granted records nothing more (the binding records its grant).
        let approved = RoleRequestStatus {
            phase: Some(RequestPhase::Approved),
            approved_by: vec!["alice".into(), "bob".into()],
            ..Default::default()
        };
        let granted = request_decision(RequestPhase::Granted, &["alice", "bob"]);
        assert!(request_entries(&r, Some(&approved), &granted).is_empty());
    }

    #[test]
    fn break_glass_denial_timeout_and_unreachable_quorum_have_their_actors() {
        let r = request();
        let pending = RoleRequestStatus {
            phase: Some(RequestPhase::Pending),
            ..Default::default()
        };
        let mut glass = request_decision(RequestPhase::Approved, &[]);
        glass.break_glass_by = Some("pat".into());
        assert_eq!(
            summary(&request_entries(&r, Some(&pending), &glass)),
            vec![("BreakGlass".into(), "pat".into(), "r-1/BreakGlass".into())]
        );
        let mut denied = request_decision(RequestPhase::Denied, &[]);
        denied.denied_by = Some("bob".into());
        assert_eq!(summary(&request_entries(&r, Some(&pending), &denied))[0].1, "bob");
        let expired = request_decision(RequestPhase::Expired, &[]);
        assert_eq!(
            summary(&request_entries(&r, Some(&pending), &expired)),
            vec![("RequestExpired".into(), "foureyes".into(), "r-1/RequestExpired".into())]
        );
        let unreachable = request_decision(RequestPhase::QuorumUnreachable, &[]);
        assert_eq!(
            summary(&request_entries(&r, Some(&pending), &unreachable))[0].0,
            "QuorumUnreachable"
        );
    }

    /// SECURITY F12: what a trusted asserter wrote in someone's name says so.
    #[test]
    fn asserted_requests_and_votes_name_their_writer() {
        let mut r: RoleRequest = request();
        r.metadata.annotations = Some(
            [
                ("foureyes.dev/created-by".to_owned(), "argo".to_owned()),
                (
                    "foureyes.dev/votes".to_owned(),
                    "0\t1\tgitops\targo\n1\t2\tteam\tbob\n".to_owned(),
                ),
            ]
            .into(),
        );
        r.spec.approvals = serde_json::from_value(json!([
            { "user": "pat", "decision": "Approve" },
            { "user": "bob", "decision": "Approve" },
        ]))
        .unwrap();
        let mut d = request_decision(RequestPhase::Approved, &["alice", "bob"]);
        d.break_glass_by = Some("pat".into());
        let e = request_entries(&r, None, &d);
        let details = |action: &str| e.iter().find(|x| x.action == action).unwrap().details.clone();
        assert!(details("Requested").contains("filed in their name by argo"));
        assert!(details("BreakGlass").contains("written in their name by argo"));
        let bob = e.iter().find(|x| x.action == "Approved" && x.actor == "bob").unwrap();
        assert!(!bob.details.contains("written in their name"), "bob wrote his own");
    }
}
