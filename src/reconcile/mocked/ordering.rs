//! The ordering rules, request by request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::{Caches, NS, manager, mock_client, object, path_of, workspace};
use crate::api::{RoleBinding, RoleRequest};
use crate::reconcile::scaffold;

const HISTORY_LIST: &str = "GET /api/v1/namespaces/ws-team/configmaps";
const HISTORY_WRITE: &str = "POST /api/v1/namespaces/ws-team/configmaps";
const EVENT: &str = "POST /apis/events.k8s.io/v1/namespaces/ws-team/events";

fn objects<K: kube::Resource<DynamicType = ()> + serde::Serialize>(obj: &K) -> BTreeMap<String, Value> {
    BTreeMap::from([(path_of(obj), serde_json::to_value(obj).unwrap())])
}

/// Asserts the sequence of a transition's record: the history (its head
/// read, then the write), then the status that reports it, then its events
/// and nothing else.
fn recorded_then_status(lines: &[String], status: &str) {
    assert_eq!(lines[..3], [HISTORY_LIST, HISTORY_WRITE, status], "{lines:#?}");
    assert!(lines.len() > 3 && lines[3..].iter().all(|l| l == EVENT), "{lines:#?}");
}

/// alice's member grant, active until ten seconds ago, and its native binding.
fn expired_grant() -> (RoleBinding, k8s_openapi::api::rbac::v1::RoleBinding) {
    let expired = Utc::now() - chrono::Duration::seconds(10);
    let b: RoleBinding = object(json!({
        "apiVersion": "foureyes.dev/v1alpha1",
        "kind": "RoleBinding",
        "metadata": {"name": "alice-member", "namespace": NS, "uid": "b-uid", "resourceVersion": "7", "generation": 1, "finalizers": [crate::wire::FINALIZER]},
        "spec": {"subject": {"kind": "User", "name": "alice"}, "workspaceRole": "member", "expiresAt": expired, "justification": "incident", "grantedBy": "bob"},
        "status": {"phase": "Active", "expiresAt": expired, "activatedAt": expired - chrono::Duration::hours(1), "workspaceUid": "ws-uid", "namespaces": [NS]},
    }));
    let native = object(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "foureyes-alice-member", "namespace": NS, "uid": "native-uid", "labels": {crate::wire::BINDING_UID_LABEL: "b-uid"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "foureyes-member"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}],
    }));
    (b, native)
}

#[tokio::test]
async fn an_expired_grant_is_revoked_before_it_is_recorded() {
    let (b, native) = expired_grant();
    let (client, api) = mock_client(objects(&b));
    let ctx = Caches::new()
        .workspace(workspace(2))
        .binding(b.clone())
        .native(&native)
        .context(client);

    // The first pass removes the access and nothing else...
    let action = scaffold::reconcile(Arc::new(b.clone()), ctx.clone()).await.unwrap();
    assert_eq!(
        api.lines(),
        ["DELETE /apis/rbac.authorization.k8s.io/v1/namespaces/ws-team/rolebindings/foureyes-alice-member"]
    );
    assert_eq!(action, Action::requeue(Duration::ZERO), "the record follows at once");
    api.clear();

    // ...the next records it: the history, then the status, then the event.
    scaffold::reconcile(Arc::new(b), ctx).await.unwrap();
    let calls = api.calls();
    let lines = api.lines();
    recorded_then_status(
        &lines,
        "PATCH /apis/foureyes.dev/v1alpha1/namespaces/ws-team/rolebindings/alice-member/status",
    );
    let history = calls[1].body["data"].to_string();
    assert!(history.contains("Expired") && history.contains("b-uid"), "{history}");
    assert_eq!(calls[2].body["status"]["phase"], "Expired");
    assert!(calls[3..].iter().any(|c| c.body["reason"] == "Expired"), "{calls:#?}");
}

/// alice's request for the member role, with the given votes, each stamped
/// by its voter at admission.
fn request_with(votes: &[(&str, &str)]) -> RoleRequest {
    let approvals: Vec<Value> = votes
        .iter()
        .map(|(user, decision)| json!({"user": user, "decision": decision}))
        .collect();
    let stamp: Vec<String> = votes
        .iter()
        .enumerate()
        .map(|(i, (user, _))| format!("{i}\t{}\t\t{user}", i + 1))
        .collect();
    object(json!({
        "apiVersion": "foureyes.dev/v1alpha1",
        "kind": "RoleRequest",
        "metadata": {
            "name": "alice-member", "namespace": NS, "uid": "r-uid", "resourceVersion": "3", "generation": 1,
            "creationTimestamp": Utc::now() - chrono::Duration::minutes(1),
            "annotations": {
                crate::wire::CREATED_BY_ANNOTATION: "alice",
                crate::wire::CREATED_BY_GROUPS_ANNOTATION: "",
                crate::wire::VOTES_ANNOTATION: stamp.join("\n"),
            },
        },
        "spec": {"subject": {"kind": "User", "name": "alice"}, "workspaceRole": "member", "duration": "1h", "justification": "incident", "requester": "alice", "approvals": approvals},
    }))
}

fn with_managers(caches: Caches) -> Caches {
    caches
        .workspace(workspace(2))
        .binding(manager("bob"))
        .binding(manager("carol"))
}

#[tokio::test]
async fn an_approval_is_recorded_and_the_binding_created_before_the_status_reports_it() {
    let r = request_with(&[("bob", "Approve"), ("carol", "Approve")]);
    let (client, api) = mock_client(objects(&r));
    let ctx = with_managers(Caches::new()).request(r.clone()).context(client);

    scaffold::reconcile(Arc::new(r), ctx).await.unwrap();
    let calls = api.calls();
    let lines = api.lines();
    let at = |line: &str| {
        lines
            .iter()
            .position(|l| l == line)
            .unwrap_or_else(|| panic!("no {line} in {lines:#?}"))
    };
    let create = "POST /apis/foureyes.dev/v1alpha1/namespaces/ws-team/rolebindings";
    let status = "PATCH /apis/foureyes.dev/v1alpha1/namespaces/ws-team/rolerequests/alice-member/status";
    let binding_status = "PATCH /apis/foureyes.dev/v1alpha1/namespaces/ws-team/rolebindings/alice-member/status";
    let native = lines
        .iter()
        .position(|l| l.starts_with("PATCH /apis/rbac.authorization.k8s.io/v1/namespaces/ws-team/rolebindings/"))
        .unwrap_or_else(|| panic!("no native binding applied: {lines:#?}"));
    // The record is under way first; the binding's creation runs alongside
    // it, so that the access does not wait for the history, and the binding
    // is activated at once from the create's response (its native binding,
    // then its status); the request's status reports the approval only once
    // all of that is done.
    assert_eq!(lines[0], HISTORY_LIST, "{lines:#?}");
    assert!(at(HISTORY_WRITE) < at(status), "{lines:#?}");
    assert!(at(create) < native && native < at(binding_status), "{lines:#?}");
    assert!(at(binding_status) < at(status), "{lines:#?}");
    assert_eq!(at(status), lines.len() - 1, "nothing after the status: {lines:#?}");
    let mut others: Vec<&str> = lines.iter().map(String::as_str).collect();
    others.retain(|l| ![HISTORY_LIST, HISTORY_WRITE, create, status, binding_status].contains(l));
    others.retain(|l| {
        !l.starts_with("PATCH /apis/rbac.authorization.k8s.io/")
            && !l.starts_with("PUT /api/v1/namespaces/ws-team/configmaps/")
    });
    assert!(others.iter().all(|l| *l == EVENT), "{lines:#?}");
    assert_eq!(lines.iter().filter(|l| *l == create).count(), 1);
    // The request's events (first seen, and the decision naming the votes
    // and the binding it created: no event of its own for the creation)
    // and the binding's activation.
    let mut reasons: Vec<(&str, &str)> = calls
        .iter()
        .filter(|c| c.body["kind"] == "Event")
        .map(|c| {
            (
                c.body["reason"].as_str().unwrap_or_default(),
                c.body["related"]["name"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [("Granted", ""), ("QuorumReached", "alice-member"), ("Requested", "")],
        "{lines:#?}"
    );

    let history = calls[at(HISTORY_WRITE)].body["data"].to_string();
    assert!(history.contains("Approved") && history.contains("r-uid"), "{history}");
    let binding = &calls[at(create)].body;
    assert_eq!(binding["metadata"]["name"], "alice-member");
    assert_eq!(binding["spec"]["originRequest"]["uid"], "r-uid");
    assert_eq!(binding["metadata"]["finalizers"], json!([crate::wire::FINALIZER]));
    let status = &calls[at(status)].body["status"];
    assert_eq!(status["phase"], "Granted", "{status:#}");
    assert_eq!(status["binding"], "alice-member", "{status:#}");
}

#[tokio::test]
async fn a_deny_among_approvals_wins_and_no_binding_is_created() {
    let r = request_with(&[("bob", "Approve"), ("carol", "Deny"), ("dave", "Approve")]);
    let (client, api) = mock_client(objects(&r));
    let ctx = with_managers(Caches::new())
        .binding(manager("dave"))
        .request(r.clone())
        .context(client);

    scaffold::reconcile(Arc::new(r), ctx).await.unwrap();
    let calls = api.calls();
    let lines = api.lines();
    recorded_then_status(
        &lines,
        "PATCH /apis/foureyes.dev/v1alpha1/namespaces/ws-team/rolerequests/alice-member/status",
    );
    assert!(
        !lines.iter().any(|l| l.contains("rolebindings")),
        "no binding: {lines:#?}"
    );
    let history = calls[1].body["data"].to_string();
    assert!(history.contains("Denied"), "{history}");
    assert_eq!(calls[2].body["status"]["phase"], "Denied");
    assert_eq!(calls[2].body["status"]["deniedBy"], "carol");
}
