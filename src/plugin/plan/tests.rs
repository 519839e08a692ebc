use chrono::{Duration, TimeZone};
use serde_json::json;

use super::*;
use crate::api::documents::parse_documents;
use crate::api::{RoleBindingStatus, WorkspaceStatus};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn examples(file: &str) -> Vec<Object> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(file);
    parse_documents(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The live world of the examples: workspace payments (project roles need
/// 2 approvals, workspace roles 1, cap 8h, break-glass on), project checkout,
/// alice and bob active managers.
fn payments() -> World {
    let mut world = World::default();
    for o in examples("00-workspace.yaml")
        .into_iter()
        .chain(examples("01-project-and-managers.yaml"))
    {
        match o {
            Object::Workspace(mut ws) => {
                ws.status = Some(WorkspaceStatus {
                    namespace: Some("ws-payments".into()),
                    ..Default::default()
                });
                world.workspaces.push(*ws);
            }
            Object::Project(p) => world.projects.push(*p),
            Object::RoleBinding(mut b) => {
                b.status = Some(active_until(now() + Duration::days(80)));
                world.bindings.push(*b);
            }
            Object::RoleRequest(r) => world.requests.push(*r),
            Object::Lockout(_) => {}
        }
    }
    world
}

fn active_until(t: DateTime<Utc>) -> RoleBindingStatus {
    RoleBindingStatus {
        phase: Some(BindingPhase::Active),
        expires_at: Some(t),
        ..Default::default()
    }
}

fn judge<'a>(world: &'a World, config: &'a Config) -> Judge<'a> {
    Judge {
        world,
        config,
        default_ns: "default",
        now: now(),
    }
}

fn objects(yaml: &str) -> Vec<Object> {
    parse_documents(yaml).unwrap()
}

fn binding(granted_by: &str, subject: &str, role: serde_json::Value, duration: &str) -> String {
    let mut spec = json!({ "subject": { "kind": "User", "name": subject }, "duration": duration,
                           "justification": "INC-1", "grantedBy": granted_by });
    spec.as_object_mut().unwrap().extend(role.as_object().unwrap().clone());
    serde_yaml::to_string(&json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
        "metadata": { "name": "b", "namespace": "ws-payments" }, "spec": spec,
    }))
    .unwrap()
}

fn request(requester: &str, subject: &str, role: serde_json::Value, duration: &str) -> String {
    let mut spec = json!({ "subject": { "kind": "User", "name": subject }, "duration": duration,
                           "justification": "INC-1", "requester": requester });
    spec.as_object_mut().unwrap().extend(role.as_object().unwrap().clone());
    serde_yaml::to_string(&json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
        "metadata": { "name": "r", "namespace": "ws-payments" }, "spec": spec,
    }))
    .unwrap()
}

fn refusal(item: &PlanItem) -> &str {
    match &item.outcome {
        Outcome::Refused { reason, .. } => reason,
        other => panic!("not refused: {other:?}"),
    }
}

#[test]
fn the_emergency_user_example_takes_effect_and_asks_two_managers() {
    let world = payments();
    let config = Config::default();
    let items = plan(&judge(&world, &config), &examples("02-emergency-user.yaml"));
    assert_eq!(items.len(), 2);
    let member = &items[0];
    assert_eq!((member.kind.as_str(), member.role.as_str()), ("RoleBinding", "member"));
    assert_eq!(
        member.outcome,
        Outcome::Active {
            authorization: "GrantedByManager".into()
        }
    );
    assert_eq!(member.quorum, Some(1));
    assert_eq!(member.approvers, ["alice", "bob"]);
    assert_eq!(member.effective.as_deref(), Some("8h"));
    let req = &items[1];
    assert_eq!(
        req.outcome,
        Outcome::NeedsApproval {
            required: 2,
            approved: 1
        }
    );
    let votes = req.votes.as_ref().unwrap();
    assert_eq!(votes.counted, ["alice"], "the requester's implicit approval");
    assert_eq!(votes.can_still_approve, ["bob"]);
    assert!(votes.reachable);
    assert_eq!(votes.phase, RequestPhase::Pending);
    assert_eq!(req.role, "checkout/admin");
    assert_eq!(req.approvers, ["alice", "bob"]);
    assert_eq!(req.partner_break_glass, Some(true));
    assert_eq!(req.max_duration.as_deref(), Some("8h"));
    assert_eq!(req.effective.as_deref(), Some("2h"));
    assert!(
        req.notes.iter().any(|n| n.contains("requester alice is a manager")),
        "{:?}",
        req.notes
    );
}

#[test]
fn a_managers_direct_project_grant_is_refused_under_four_eyes() {
    let world = payments();
    let config = Config::default();
    let objs = objects(&binding(
        "alice",
        "dave",
        json!({"project": "checkout", "projectRole": "admin"}),
        "2h",
    ));
    let items = plan(&judge(&world, &config), &objs);
    assert_eq!(refusal(&items[0]), "NotAuthorized");
    assert_eq!(items[0].quorum, Some(2));
    assert!(
        items[0].notes.iter().any(|n| n.contains("kubectl access request dave")),
        "{:?}",
        items[0].notes
    );
}

#[test]
fn the_subject_is_not_an_approver() {
    let world = payments();
    let config = Config::default();
    let objs = objects(&request(
        "bob",
        "bob",
        json!({"project": "checkout", "projectRole": "admin"}),
        "1h",
    ));
    let items = plan(&judge(&world, &config), &objs);
    assert_eq!(items[0].approvers, ["alice"]);
    assert_eq!(
        items[0].outcome,
        Outcome::QuorumUnreachable {
            required: 2,
            managers: 1
        },
        "a partner can still approve"
    );
    let votes = items[0].votes.as_ref().unwrap();
    assert!(!votes.reachable);
    assert_eq!(votes.phase, RequestPhase::QuorumUnreachable);
    assert!(!items[0].outcome.is_refused());
}

#[test]
fn an_unreachable_quorum_without_break_glass_is_refused() {
    let mut world = payments();
    world.workspaces[0].spec.approval_policy.partner_break_glass = false;
    let config = Config::default();
    let objs = objects(&request(
        "bob",
        "bob",
        json!({"project": "checkout", "projectRole": "admin"}),
        "1h",
    ));
    let items = plan(&judge(&world, &config), &objs);
    assert_eq!(refusal(&items[0]), "QuorumUnreachable");
    assert_eq!(items[0].partner_break_glass, Some(false));
}

#[test]
fn roles_are_checked_against_the_project_and_the_allow_list() {
    let mut world = payments();
    world.projects[0]
        .spec
        .role_map
        .insert("root".into(), "cluster-admin".into());
    let config: Config = serde_yaml::from_str("partners: {users: [partner]}").unwrap();
    let j = judge(&world, &config);
    let cases = [
        (json!({"project": "checkout", "projectRole": "root"}), "RoleNotAllowed"),
        (json!({"project": "checkout", "projectRole": "oncall"}), "UnknownRole"),
        (
            json!({"project": "billing", "projectRole": "reader"}),
            "ProjectNotFound",
        ),
    ];
    for (role, reason) in cases {
        let items = plan(&j, &objects(&request("alice", "dave", role.clone(), "1h")));
        assert_eq!(refusal(&items[0]), reason, "request {role}");
        let items = plan(&j, &objects(&binding("partner", "dave", role.clone(), "1h")));
        assert_eq!(refusal(&items[0]), reason, "binding {role}");
    }
}

#[test]
fn expiries_are_capped_by_the_workspace() {
    let world = payments();
    let config = Config::default();
    let j = judge(&world, &config);
    let items = plan(
        &j,
        &objects(&request("alice", "dave", json!({"workspaceRole": "member"}), "12h")),
    );
    assert_eq!(items[0].effective.as_deref(), Some("8h (capped by maxDuration)"));
    let items = plan(
        &j,
        &objects(&binding("alice", "dave", json!({"workspaceRole": "member"}), "12h")),
    );
    assert_eq!(items[0].asked, "12h");
    assert_eq!(items[0].effective.as_deref(), Some("8h"));
}

#[test]
fn partners_are_known_only_from_the_operator_configuration() {
    let world = payments();
    let role = json!({"project": "checkout", "projectRole": "user"});
    let objs = objects(&binding("pat", "erin", role, "1h"));
    let default = Config::default();
    let items = plan(&judge(&world, &default), &objs);
    assert_eq!(refusal(&items[0]), "NotAuthorized");
    assert!(
        items[0].notes.iter().any(|n| n.contains("--operator-config")),
        "{:?}",
        items[0].notes
    );
    let config: Config = serde_yaml::from_str("partners: {users: [pat]}").unwrap();
    let items = plan(&judge(&world, &config), &objs);
    assert_eq!(
        items[0].outcome,
        Outcome::Active {
            authorization: "GrantedByPartner".into()
        }
    );
}

#[test]
fn unknown_workspaces_and_expired_managers_are_seen() {
    let mut world = payments();
    let config = Config::default();
    let mut objs = objects(&binding("alice", "dave", json!({"workspaceRole": "member"}), "1h"));
    let Object::RoleBinding(b) = &mut objs[0] else { panic!() };
    b.metadata.namespace = Some("ws-nowhere".into());
    let items = plan(&judge(&world, &config), &objs);
    assert_eq!(refusal(&items[0]), "WorkspaceNotFound");
    assert_eq!(items[0].workspace, None);
    // alice's manager binding has expired: she can no longer grant.
    world.bindings[0].status = Some(active_until(now() - Duration::minutes(1)));
    let objs = objects(&binding("alice", "dave", json!({"workspaceRole": "member"}), "1h"));
    let items = plan(&judge(&world, &config), &objs);
    assert_eq!(refusal(&items[0]), "NotAuthorized");
    assert_eq!(items[0].approvers, ["bob"]);
}

#[test]
fn manifests_override_the_live_workspace_and_projects() {
    let mut world = payments();
    let mut objs = examples("00-workspace.yaml");
    let Object::Workspace(ws) = &mut objs[0] else { panic!() };
    ws.spec.approval_policy.project_role_approvals = 1;
    objs.extend(objects(&binding(
        "alice",
        "dave",
        json!({"project": "checkout", "projectRole": "admin"}),
        "2h",
    )));
    let context = overlay(&mut world, &objs);
    assert_eq!(context.len(), 1);
    assert!(context[0].contains("changes the live one"), "{context:?}");
    let config = Config::default();
    let items = plan(&judge(&world, &config), &objs);
    assert_eq!(items.len(), 1, "only bindings and requests are planned");
    assert_eq!(
        items[0].outcome,
        Outcome::Active {
            authorization: "GrantedByManager".into()
        }
    );
    // A new project in the same change is judged on the namespaces it asks for.
    let mut world = payments();
    let new = objects(
        "apiVersion: foureyes.dev/v1alpha1\nkind: Project\nmetadata: {name: billing, namespace: ws-payments}\nspec: {namespaces: [payments-billing]}\n",
    );
    overlay(&mut world, &new);
    let items = plan(
        &judge(&world, &config),
        &objects(&binding(
            "partner",
            "dave",
            json!({"project": "billing", "projectRole": "reader"}),
            "1h",
        )),
    );
    let config_partner: Config = serde_yaml::from_str("partners: {users: [partner]}").unwrap();
    assert_eq!(refusal(&items[0]), "NotAuthorized");
    let items = plan(
        &judge(&world, &config_partner),
        &objects(&binding(
            "partner",
            "dave",
            json!({"project": "billing", "projectRole": "reader"}),
            "1h",
        )),
    );
    assert!(
        matches!(items[0].outcome, Outcome::Active { .. }),
        "{:?}",
        items[0].outcome
    );
}

#[test]
fn a_revocation_in_the_manifests_ends_the_access() {
    let world = payments();
    let config = Config::default();
    let items = plan(&judge(&world, &config), &examples("06-revoke.yaml"));
    assert_eq!(items[0].outcome, Outcome::Revoked);
    assert!(!items[0].outcome.is_refused());
}

#[test]
fn the_plan_renders_for_people_and_as_json() {
    let world = payments();
    let config = Config::default();
    let mut objs = examples("02-emergency-user.yaml");
    objs.extend(objects(&binding(
        "alice",
        "dave",
        json!({"project": "checkout", "projectRole": "admin"}),
        "2h",
    )));
    let p = Plan {
        context: vec![],
        items: plan(&judge(&world, &config), &objs),
    };
    assert!(p.any_refused());
    let text = render(&p);
    assert!(
        text.starts_with(
            "RoleBinding ws-payments/member-dave: would take effect (GrantedByManager)\n  subject:     user dave\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("RoleRequest ws-payments/dave-checkout-admin: needs 2 approval(s), 1 counted so far"),
        "{text}"
    );
    assert!(text.contains("  approvers:   alice, bob\n"), "{text}");
    assert!(
        text.contains("  expiry:      asked 2h, cap 8h, effective 2h\n"),
        "{text}"
    );
    assert!(
        text.contains("RoleBinding ws-payments/b: REFUSED: NotAuthorized: workspace payments needs 2 approvals"),
        "{text}"
    );
    assert!(text.ends_with("3 object(s) planned, 1 would be refused\n"), "{text}");
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(
        json["items"][1]["outcome"],
        json!({ "verdict": "needsApproval", "required": 2, "approved": 1 })
    );
    assert_eq!(
        json["items"][1]["votes"],
        json!({ "required": 2, "counted": ["alice"], "canStillApprove": ["bob"], "reachable": true,
                "phase": "Pending", "ignored": [] })
    );
    assert!(
        text.contains("  counted:     alice (1/2)\n  can approve: bob\n  reachable:   yes\n"),
        "{text}"
    );
    assert!(text.contains("  phase:       would be Pending\n"), "{text}");
    assert_eq!(json["items"][2]["outcome"]["verdict"], "refused");
    assert_eq!(json["items"][2]["outcome"]["reason"], "NotAuthorized");
}

/// The live request of 02-emergency-user.yaml, as the operator left it:
/// pending, alice's implicit approval counted.
fn with_live_request(world: &mut World) {
    let Object::RoleRequest(mut r) = examples("02-emergency-user.yaml").remove(1) else {
        panic!()
    };
    r.metadata.uid = Some("uid-1".into());
    r.metadata.creation_timestamp = Some(crate::api::time::to_k8s(now() - Duration::minutes(5)));
    // As admission stamped it: alice filed it herself.
    r.metadata.annotations = Some([(crate::wire::CREATED_BY_ANNOTATION.to_owned(), r.spec.requester.clone())].into());
    r.status = Some(crate::api::RoleRequestStatus {
        phase: Some(RequestPhase::Pending),
        ..Default::default()
    });
    world.requests.push(*r);
}

#[test]
fn the_second_approval_example_would_grant_the_request() {
    let mut world = payments();
    with_live_request(&mut world);
    let config = Config::default();
    let items = plan(&judge(&world, &config), &examples("03-second-approval.yaml"));
    assert_eq!(
        items[0].outcome,
        Outcome::Granted {
            approved_by: vec!["alice".into(), "bob".into()],
            break_glass_by: None
        }
    );
    let votes = items[0].votes.as_ref().unwrap();
    assert_eq!(votes.phase, RequestPhase::Granted);
    assert!(votes.can_still_approve.is_empty());
    assert_eq!(items[0].effective.as_deref(), Some("2h"));
    assert!(
        items[0]
            .notes
            .iter()
            .any(|n| n.contains("groups are stamped by the API server")),
        "voter groups are unknowable here: {:?}",
        items[0].notes
    );
    assert!(
        render(&Plan {
            context: vec![],
            items: items.clone()
        })
        .contains("would be granted: approved by alice, bob")
    );
}

#[test]
fn a_partner_approving_alone_breaks_the_glass_and_votes_that_do_not_count_are_listed() {
    let world = payments();
    let partners: Config = serde_yaml::from_str("partners: {users: [partner]}").unwrap();
    let mut yaml = request(
        "erin",
        "erin",
        json!({"project": "checkout", "projectRole": "user"}),
        "12h",
    );
    yaml.push_str("  approvals:\n  - {user: erin, decision: Approve}\n  - {user: carol, decision: Approve}\n  - {user: partner, decision: Approve}\n");
    let objs = objects(&yaml);
    let items = plan(&judge(&world, &partners), &objs);
    assert_eq!(
        items[0].outcome,
        Outcome::Granted {
            approved_by: vec![],
            break_glass_by: Some("partner".into())
        }
    );
    assert_eq!(items[0].effective.as_deref(), Some("8h (capped by maxDuration)"));
    let votes = items[0].votes.as_ref().unwrap();
    assert_eq!(
        votes
            .ignored
            .iter()
            .map(|v| (v.user.as_str(), v.reason))
            .collect::<Vec<_>>(),
        [
            ("erin", crate::api::IgnoreReason::IsSubject),
            ("carol", crate::api::IgnoreReason::NotManager)
        ]
    );
    assert_eq!(votes.can_still_approve, ["alice", "bob"]);
    // Without the operator's configuration the partner is not known: the request waits.
    let items = plan(&judge(&world, &Config::default()), &objs);
    assert_eq!(
        items[0].outcome,
        Outcome::NeedsApproval {
            required: 2,
            approved: 0
        }
    );
}

#[test]
fn a_managers_deny_ends_the_request_and_a_timed_out_request_is_expired() {
    let mut world = payments();
    with_live_request(&mut world);
    let config = Config::default();
    let mut yaml = request(
        "alice",
        "dave",
        json!({"project": "checkout", "projectRole": "admin"}),
        "2h",
    );
    yaml = yaml.replace("name: r", "name: dave-checkout-admin");
    yaml.push_str("  approvals:\n  - {user: bob, decision: Deny}\n");
    let items = plan(&judge(&world, &config), &objects(&yaml));
    assert_eq!(items[0].outcome, Outcome::Denied { by: "bob".into() });
    assert!(!items[0].outcome.is_refused());
    // Still pending at creation + pendingTimeout (4h): expired, whatever the votes.
    world.requests[0].metadata.creation_timestamp = Some(crate::api::time::to_k8s(now() - Duration::hours(5)));
    let items = plan(&judge(&world, &config), &examples("03-second-approval.yaml"));
    assert_eq!(items[0].outcome, Outcome::Expired);
    assert_eq!(items[0].votes.as_ref().unwrap().phase, RequestPhase::Expired);
}
