use chrono::{Duration, TimeZone, Utc};

use super::*;
use serde_json::json;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
}

fn ws(generation: i64, status: Option<WorkspaceStatus>) -> Workspace {
    let mut w: Workspace = serde_json::from_value(json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "Workspace",
        "metadata": {"name": "payments", "uid": "ws-uid", "generation": generation},
        "spec": {},
    }))
    .unwrap();
    w.status = status;
    w
}

fn ready_status(generation: i64) -> WorkspaceStatus {
    let mut s = WorkspaceStatus {
        observed_generation: Some(generation),
        namespace: Some("ws-payments".into()),
        ..Default::default()
    };
    set_condition(
        &mut s.conditions,
        Condition::new(
            READY,
            ConditionStatus::True,
            "Ready",
            "in place",
            Some(generation),
            now(),
        ),
    );
    s
}

fn binding(subject: &str, role: Option<WorkspaceRole>, project: Option<&str>, active: bool) -> RoleBinding {
    let expires = now() + Duration::hours(1);
    let mut spec = json!({
        "subject": {"kind": "User", "name": subject},
        "expiresAt": expires, "justification": "on call", "grantedBy": "root",
    });
    match (role, project) {
        (Some(WorkspaceRole::Manager), _) => spec["workspaceRole"] = json!("manager"),
        (Some(WorkspaceRole::Member), _) => spec["workspaceRole"] = json!("member"),
        (None, p) => {
            spec["project"] = json!(p);
            spec["projectRole"] = json!("reader");
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
        "metadata": {"name": subject, "namespace": "ws-payments", "uid": format!("uid-{subject}")},
        "spec": spec,
        "status": {"phase": if active { "Active" } else { "Expired" }, "expiresAt": expires},
    }))
    .unwrap()
}

fn reasons(ts: &[Transition]) -> Vec<&'static str> {
    ts.iter().map(|t| t.kind.reason()).collect()
}

#[test]
fn counts_each_subject_once_per_role_and_only_active_bindings() {
    let bindings = [
        binding("alice", Some(WorkspaceRole::Manager), None, true),
        binding("alice", Some(WorkspaceRole::Manager), None, true),
        binding("bob", Some(WorkspaceRole::Member), None, true),
        binding("carol", Some(WorkspaceRole::Manager), None, false),
        binding("dave", None, Some("app"), true),
    ];
    assert_eq!(
        counts(&bindings, now()),
        Counts {
            managers: 1,
            members: 1,
            active: 4
        }
    );
}

#[test]
fn a_created_control_namespace_makes_the_workspace_ready_and_starts_its_chain() {
    let d = decide_workspace(&ws(1, None), Some(&Claimed::Created), Counts::default(), now());
    assert!(d.set_up);
    assert!(d.status.is_ready());
    assert_eq!(d.status.namespace.as_deref(), Some("ws-payments"));
    assert_eq!(reasons(&d.happened), [reason::NAMESPACE_READY, "WorkspaceCreated"]);
}

#[test]
fn a_taken_namespace_is_not_held_and_is_announced_once() {
    let taken = Claimed::Taken("ws-payments is the control namespace of another workspace".into());
    let first = decide_workspace(&ws(1, None), Some(&taken), Counts::default(), now());
    assert!(!first.set_up);
    assert!(!first.status.is_ready());
    assert_eq!(first.status.namespace, None);
    assert_eq!(reasons(&first.happened), [reason::NAMESPACE_TAKEN]);
    assert!(first.happened[0].kind.is_warning());
    // The same conflict again: no second event.
    let again = decide_workspace(&ws(1, Some(first.status)), Some(&taken), Counts::default(), now());
    assert!(again.happened.is_empty());
}

/// A workspace whose control namespace someone deleted (it stays
/// `Terminating` while the history protects it) is not Ready, says why, and
/// still holds the namespace so that its grants keep being revoked and
/// recorded.
#[test]
fn a_terminating_control_namespace_makes_the_workspace_not_ready() {
    let d = decide_workspace(
        &ws(1, Some(ready_status(1))),
        Some(&Claimed::Terminating),
        Counts::default(),
        now(),
    );
    assert!(!d.status.is_ready());
    let ready = find_condition(&d.status.conditions, READY).unwrap();
    assert_eq!(ready.reason, reason::NAMESPACE_TERMINATING);
    assert!(ready.message.contains("being deleted"));
    assert_eq!(d.status.namespace.as_deref(), Some("ws-payments"));
    assert!(!d.set_up, "nothing is created in a terminating namespace");
    assert_eq!(reasons(&d.happened), [reason::NAMESPACE_TERMINATING]);
}

#[test]
fn a_verified_workspace_refreshes_counts_only_and_a_new_generation_is_recorded() {
    let counts = Counts {
        managers: 2,
        members: 0,
        active: 3,
    };
    let d = decide_workspace(&ws(1, Some(ready_status(1))), None, counts, now());
    assert!(!d.set_up);
    assert!(d.happened.is_empty());
    assert_eq!((d.status.managers, d.status.active_bindings), (2, 3));
    let changed = decide_workspace(&ws(2, Some(ready_status(1))), Some(&Claimed::Held), counts, now());
    assert_eq!(reasons(&changed.happened), ["WorkspaceChanged"]);
    assert_eq!(changed.status.observed_generation, Some(2));
}

fn project(namespaces: &[&str], status: Option<ProjectStatus>) -> Project {
    let mut p: Project = serde_json::from_value(json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "Project",
        "metadata": {"name": "app", "namespace": "ws-payments", "uid": "p-uid", "generation": 1},
        "spec": {"namespaces": namespaces},
    }))
    .unwrap();
    p.status = status;
    p
}

#[test]
fn a_project_without_its_workspace_waits_and_records_nothing() {
    let d = decide_project(&project(&["app-dev"], None), None, &[], [], now());
    assert_eq!(
        find_condition(&d.status.conditions, READY).unwrap().reason,
        reason::WORKSPACE_NOT_FOUND
    );
    assert!(d.happened.is_empty() && d.release.is_empty());
}

#[test]
fn a_project_claims_its_namespaces_and_counts_its_active_bindings() {
    let claims = [
        ("app-dev".to_owned(), Claimed::Created),
        ("app-prod".to_owned(), Claimed::Adopted),
    ];
    let bindings = [
        binding("dave", None, Some("app"), true),
        binding("erin", None, Some("other"), true),
        binding("alice", Some(WorkspaceRole::Manager), None, true),
    ];
    let d = decide_project(
        &project(&["app-prod", "app-dev"], None),
        Some("payments"),
        &claims,
        &bindings,
        now(),
    );
    assert_eq!(d.status.namespaces, ["app-dev", "app-prod"]);
    assert!(find_condition(&d.status.conditions, READY).unwrap().status == ConditionStatus::True);
    assert_eq!(d.status.active_bindings, 1);
    assert_eq!(
        reasons(&d.happened),
        ["ProjectCreated", reason::NAMESPACE_CREATED, reason::NAMESPACE_ADOPTED]
    );
}

/// Only a namespace removed from the spec is released for deletion; one
/// taken by someone else since is let go without being deleted.
#[test]
fn released_namespaces_are_deleted_only_when_they_left_the_spec() {
    let held = ProjectStatus {
        namespaces: vec!["app-dev".into(), "app-old".into(), "app-prod".into()],
        observed_generation: Some(1),
        ..Default::default()
    };
    let claims = [
        ("app-dev".to_owned(), Claimed::Held),
        (
            "app-prod".to_owned(),
            Claimed::Taken("app-prod belongs to another project".into()),
        ),
    ];
    let d = decide_project(
        &project(&["app-dev", "app-prod"], Some(held)),
        Some("payments"),
        &claims,
        [],
        now(),
    );
    assert_eq!(
        d.release,
        [("app-old".to_owned(), true), ("app-prod".to_owned(), false)]
    );
    assert_eq!(d.status.namespaces, ["app-dev"]);
    let ready = find_condition(&d.status.conditions, READY).unwrap();
    assert_eq!(
        (ready.status, ready.reason.as_str()),
        (ConditionStatus::False, reason::NAMESPACE_TAKEN)
    );
    assert!(reasons(&d.happened).contains(&reason::NAMESPACE_TAKEN));
}
