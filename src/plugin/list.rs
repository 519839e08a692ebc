//! `kubectl access list` and `whoami`: what concerns the caller, from a
//! snapshot of the workspaces they can read.

use chrono::{DateTime, Utc};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde::Serialize;
use serde_json::json;

use super::PluginError;
use super::cli::{Global, ListArgs, Output, WorkspaceArg};
use super::common::{Target, api_err, emit, emit_json, is_code, target, who};
use super::format::{Table, fields, time_left};
use super::plan;
use super::vote::is_open;
use crate::api::{RoleBinding, RoleRequest, SubjectKind, Workspace, WorkspaceRole};
use crate::policy::Role;
use crate::policy::managers::{is_active, managers};

/// One workspace as the caller sees it.
#[derive(Debug, Clone, Default)]
pub struct WorkspaceView {
    /// The workspace's name.
    pub name: String,
    /// Its control namespace.
    pub namespace: String,
    /// Its foureyes bindings.
    pub bindings: Vec<RoleBinding>,
    /// Its requests.
    pub requests: Vec<RoleRequest>,
}

/// Who is asking: their user name and groups, as the API server sees them.
#[derive(Debug, Clone, Serialize)]
pub struct Me {
    /// The user name.
    pub user: String,
    /// The groups.
    pub groups: Vec<String>,
}

impl Me {
    /// Whether a binding's or request's subject is the caller (as user or by group).
    pub fn is(&self, kind: SubjectKind, name: &str) -> bool {
        match kind {
            SubjectKind::User => name == self.user,
            SubjectKind::Group => self.groups.iter().any(|g| g == name),
        }
    }

    /// Whether the caller is a manager of the workspace now, as the
    /// operator counts managers.
    pub fn manages(&self, ws: &WorkspaceView, now: DateTime<Utc>) -> bool {
        managers(ws.bindings.iter(), now).contains(&self.user)
    }
}

/// A request, as listed.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestRow {
    /// The workspace.
    pub workspace: String,
    /// The request's name.
    pub name: String,
    /// `user dave` or `group oncall`.
    pub subject: String,
    /// `manager`, `member` or `<project>/<role>`.
    pub role: String,
    /// The duration asked for.
    pub duration: String,
    /// Who asked.
    pub requester: String,
    /// Counted over required approvals (as the operator last reported), or the votes cast.
    pub approvals: String,
    /// The phase (`Pending` until the operator has looked at it).
    pub phase: String,
    /// The justification.
    pub justification: String,
    /// What the project role grants, as the operator summarised it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grants: Option<String>,
    /// When the request times out if still pending (as the operator set it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_until: Option<DateTime<Utc>>,
}

/// An active grant, as listed.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GrantRow {
    /// The workspace.
    pub workspace: String,
    /// The binding's name.
    pub name: String,
    /// `user dave` or `group oncall`.
    pub subject: String,
    /// `manager`, `member` or `<project>/<role>`.
    pub role: String,
    /// When it ends.
    pub expires_at: Option<DateTime<Utc>>,
    /// The time left, for people (`3h12m`).
    pub time_left: String,
}

/// A break-glass grant awaiting a manager's verdict, as listed.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RatifyRow {
    /// The workspace.
    pub workspace: String,
    /// The binding's name.
    pub name: String,
    /// `user dave` or `group oncall`.
    pub subject: String,
    /// `manager`, `member` or `<project>/<role>`.
    pub role: String,
    /// The partner who broke the glass.
    pub break_glass_by: String,
    /// `Awaiting`, or `Unratified` once the window ended.
    pub state: String,
    /// The end of the window.
    pub deadline: DateTime<Utc>,
}

/// The sections of `kubectl access list`.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    /// Pending requests in workspaces the caller manages, not for the caller, not yet voted on by them.
    pub to_approve: Vec<RequestRow>,
    /// Pending requests the caller made or that are for the caller.
    pub my_requests: Vec<RequestRow>,
    /// Active grants in the listed workspaces.
    pub active_grants: Vec<GrantRow>,
    /// Break-glass grants in workspaces the caller manages that the caller
    /// may ratify (or object to).
    pub to_ratify: Vec<RatifyRow>,
}

fn role_label(
    workspace_role: Option<WorkspaceRole>,
    project: Option<&String>,
    project_role: Option<&String>,
) -> String {
    Role::from_fields(workspace_role, project, project_role)
        .map(|r| r.label())
        .unwrap_or_else(|| "?".into())
}

fn request_row(ws: &WorkspaceView, r: &RoleRequest) -> RequestRow {
    let status = r.status.as_ref();
    RequestRow {
        workspace: ws.name.clone(),
        name: r.metadata.name.clone().unwrap_or_default(),
        subject: r.spec.subject.to_string(),
        role: role_label(
            r.spec.workspace_role,
            r.spec.project.as_ref(),
            r.spec.project_role.as_ref(),
        ),
        duration: r.spec.duration.to_string(),
        requester: r.spec.requester.clone(),
        approvals: status
            .and_then(|s| s.approvals.clone())
            .unwrap_or_else(|| format!("{} vote(s)", r.spec.approvals.len())),
        phase: status
            .and_then(|s| s.phase)
            .map(|p| format!("{p:?}"))
            .unwrap_or_else(|| "Pending".into()),
        justification: r.spec.justification.clone(),
        grants: status.and_then(|s| s.permissions.as_ref()).map(|p| p.summary.clone()),
        pending_until: status.and_then(|s| s.pending_until),
    }
}

/// Sorts the caller's world into the three sections.
pub fn listing(me: &Me, workspaces: &[WorkspaceView], now: DateTime<Utc>) -> Listing {
    let mut out = Listing::default();
    for ws in workspaces {
        let manager = me.manages(ws, now);
        for r in &ws.requests {
            if !is_open(r.status.as_ref().and_then(|s| s.phase)) || r.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let for_me = me.is(r.spec.subject.kind, &r.spec.subject.name);
            if for_me || r.spec.requester == me.user {
                out.my_requests.push(request_row(ws, r));
            }
            let voted = r.spec.approvals.iter().any(|a| a.user == me.user);
            let subject_is_me = r.spec.subject.kind == SubjectKind::User && r.spec.subject.name == me.user;
            if manager && !subject_is_me && !voted {
                out.to_approve.push(request_row(ws, r));
            }
        }
        for b in ws.bindings.iter().filter(|_| manager) {
            let Some(r) = b.status.as_ref().and_then(|s| s.ratification.as_ref()) else {
                continue;
            };
            if super::ratify::check_ratify(b, &me.user).is_ok() {
                out.to_ratify.push(RatifyRow {
                    workspace: ws.name.clone(),
                    name: b.metadata.name.clone().unwrap_or_default(),
                    subject: b.spec.subject.to_string(),
                    role: role_label(
                        b.spec.workspace_role,
                        b.spec.project.as_ref(),
                        b.spec.project_role.as_ref(),
                    ),
                    break_glass_by: r.break_glass_by.clone(),
                    state: format!("{:?}", r.state),
                    deadline: r.deadline,
                });
            }
        }
        for b in ws.bindings.iter().filter(|b| is_active(b, now)) {
            let expires_at = b.status.as_ref().and_then(|s| s.expires_at);
            out.active_grants.push(GrantRow {
                workspace: ws.name.clone(),
                name: b.metadata.name.clone().unwrap_or_default(),
                subject: b.spec.subject.to_string(),
                role: role_label(
                    b.spec.workspace_role,
                    b.spec.project.as_ref(),
                    b.spec.project_role.as_ref(),
                ),
                expires_at,
                time_left: expires_at.map(|e| time_left(e, now)).unwrap_or_default(),
            });
        }
    }
    out.active_grants
        .sort_by(|a, b| (&a.workspace, a.expires_at).cmp(&(&b.workspace, b.expires_at)));
    out
}

/// The listing for people: three titled tables (or a line saying a section is empty).
pub fn render_listing(l: &Listing) -> String {
    fn requests(rows: &[RequestRow]) -> String {
        let mut t = Table::new(&[
            "workspace",
            "name",
            "subject",
            "role",
            "for",
            "requester",
            "approvals",
            "phase",
            "justification",
        ]);
        for r in rows {
            t.row(vec![
                r.workspace.clone(),
                r.name.clone(),
                r.subject.clone(),
                r.role.clone(),
                r.duration.clone(),
                r.requester.clone(),
                r.approvals.clone(),
                r.phase.clone(),
                r.justification.clone(),
            ]);
        }
        let mut out = t.render();
        for r in rows {
            if let Some(g) = &r.grants {
                out.push_str(&format!("  {} grants {g}\n", r.name));
            }
        }
        out
    }
    let mut out = String::new();
    out.push_str("Requests you can approve:\n");
    if l.to_approve.is_empty() {
        out.push_str("  none\n");
    } else {
        out.push_str(&requests(&l.to_approve));
    }
    out.push_str("\nYour pending requests:\n");
    if l.my_requests.is_empty() {
        out.push_str("  none\n");
    } else {
        out.push_str(&requests(&l.my_requests));
    }
    out.push_str("\nActive grants:\n");
    if l.active_grants.is_empty() {
        out.push_str("  none\n");
    } else {
        let mut t = Table::new(&["workspace", "name", "subject", "role", "expires", "left"]);
        for g in &l.active_grants {
            t.row(vec![
                g.workspace.clone(),
                g.name.clone(),
                g.subject.clone(),
                g.role.clone(),
                g.expires_at.map(|e| e.to_rfc3339()).unwrap_or_default(),
                g.time_left.clone(),
            ]);
        }
        out.push_str(&t.render());
    }
    // Shown only when there is one: break-glass is rare.
    if !l.to_ratify.is_empty() {
        out.push_str("\nBreak-glass grants you can ratify (kubectl access ratify NAME, or --object):\n");
        let mut t = Table::new(&["workspace", "name", "subject", "role", "partner", "state", "until"]);
        for r in &l.to_ratify {
            t.row(vec![
                r.workspace.clone(),
                r.name.clone(),
                r.subject.clone(),
                r.role.clone(),
                r.break_glass_by.clone(),
                r.state.clone(),
                r.deadline.to_rfc3339(),
            ]);
        }
        out.push_str(&t.render());
    }
    out
}

/// One of the caller's active roles, for `whoami`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MyRole {
    /// The workspace.
    pub workspace: String,
    /// `manager`, `member` or `<project>/<role>`.
    pub role: String,
    /// `user` when bound by name, `group <name>` when through a group.
    pub via: String,
    /// The binding's name.
    pub binding: String,
    /// The time left.
    pub time_left: String,
}

/// The caller's active roles in the given workspaces.
pub fn my_roles(me: &Me, workspaces: &[WorkspaceView], now: DateTime<Utc>) -> Vec<MyRole> {
    let mut out = vec![];
    for ws in workspaces {
        for b in ws.bindings.iter().filter(|b| is_active(b, now)) {
            if !me.is(b.spec.subject.kind, &b.spec.subject.name) {
                continue;
            }
            out.push(MyRole {
                workspace: ws.name.clone(),
                role: role_label(
                    b.spec.workspace_role,
                    b.spec.project.as_ref(),
                    b.spec.project_role.as_ref(),
                ),
                via: match b.spec.subject.kind {
                    SubjectKind::User => "user".into(),
                    SubjectKind::Group => format!("group {}", b.spec.subject.name),
                },
                binding: b.metadata.name.clone().unwrap_or_default(),
                time_left: b
                    .status
                    .as_ref()
                    .and_then(|s| s.expires_at)
                    .map(|e| time_left(e, now))
                    .unwrap_or_default(),
            });
        }
    }
    out
}

/// `kubectl access list`: the caller's requests, votes and grants.
pub(super) async fn command(client: &Client, g: &Global, a: &ListArgs) -> Result<u8, PluginError> {
    let me = who(client).await?;
    let v = views(client, g, &a.workspace, a.all_workspaces).await?;
    let l = listing(&me, &v, Utc::now());
    if g.output == Output::Json {
        emit_json(&l);
    } else {
        emit(&render_listing(&l));
    }
    Ok(0)
}

/// `kubectl access whoami`: who the API server says the caller is, and their
/// active roles.
pub(super) async fn whoami(client: &Client, g: &Global) -> Result<u8, PluginError> {
    let me = who(client).await?;
    let (roles, note) = match views(client, g, &WorkspaceArg { workspace: None }, true).await {
        Ok(v) => (my_roles(&me, &v, Utc::now()), None),
        Err(e) => (vec![], Some(format!("your workspace roles are unknown: {e}"))),
    };
    const PARTNER: &str = "not knowable from here: partners are named in the operator's configuration";
    if g.output == Output::Json {
        emit_json(&json!({ "user": me.user, "groups": me.groups, "roles": roles, "partner": null, "note": note }));
        return Ok(0);
    }
    let mut out = fields(
        &[
            ("user", me.user.clone()),
            ("groups", me.groups.join(", ")),
            ("partner", PARTNER.into()),
        ],
        0,
    );
    out.push('\n');
    if let Some(n) = note {
        out.push_str(&format!("{n}\n"));
    } else if roles.is_empty() {
        out.push_str("no active foureyes roles in the workspaces you can read\n");
    } else {
        let mut t = Table::new(&["workspace", "role", "via", "binding", "left"]);
        for r in &roles {
            t.row(vec![
                r.workspace.clone(),
                r.role.clone(),
                r.via.clone(),
                r.binding.clone(),
                r.time_left.clone(),
            ]);
        }
        out.push_str(&t.render());
    }
    emit(&out);
    Ok(0)
}

/// The workspaces a listing covers: one, or all the caller can read.
pub(super) async fn views(
    client: &Client,
    g: &Global,
    w: &WorkspaceArg,
    all: bool,
) -> Result<Vec<WorkspaceView>, PluginError> {
    let targets = if !all && (w.workspace.is_some() || g.namespace.is_some()) {
        vec![target(client, g, w).await?]
    } else {
        Api::<Workspace>::all(client.clone())
            .list(&ListParams::default())
            .await
            .map_err(api_err(
                "listing workspaces (pass -w WORKSPACE if you may not list them)",
            ))?
            .items
            .iter()
            .map(|ws| Target {
                workspace: ws.name_any(),
                namespace: plan::control_namespace(ws),
                by_namespace: false,
            })
            .collect()
    };
    let single = targets.len() == 1;
    let mut out = vec![];
    for t in targets {
        let bindings = Api::<RoleBinding>::namespaced(client.clone(), &t.namespace)
            .list(&ListParams::default())
            .await;
        let requests = Api::<RoleRequest>::namespaced(client.clone(), &t.namespace)
            .list(&ListParams::default())
            .await;
        match (bindings, requests) {
            (Ok(b), Ok(r)) => out.push(WorkspaceView {
                name: t.workspace,
                namespace: t.namespace,
                bindings: b.items,
                requests: r.items,
            }),
            // Workspaces the caller may not read are left out of an overview...
            (Err(e), _) | (_, Err(e)) if !single && is_code(&e, 403) => {}
            // ...but asked for by name, that is an error.
            (Err(e), _) | (_, Err(e)) => {
                return Err(api_err(format!("reading workspace {} ({})", t.workspace, t.namespace))(
                    e,
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Approval, BindingPhase, Decision, RequestPhase, RoleBindingStatus, RoleRequestStatus};
    use chrono::{Duration, TimeZone};
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    fn binding(name: &str, subject: (&str, &str), role: serde_json::Value, left: Option<i64>) -> RoleBinding {
        let mut spec = json!({ "subject": { "kind": subject.0, "name": subject.1 }, "duration": "8h",
                               "justification": "INC-1", "grantedBy": "partner" });
        spec.as_object_mut().unwrap().extend(role.as_object().unwrap().clone());
        let mut b: RoleBinding = serde_json::from_value(json!({
            "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
            "metadata": { "name": name, "namespace": "ws-a" }, "spec": spec,
        }))
        .unwrap();
        b.status = Some(RoleBindingStatus {
            phase: Some(if left.is_some() {
                BindingPhase::Active
            } else {
                BindingPhase::Pending
            }),
            expires_at: left.map(|m| now() + Duration::minutes(m)),
            ..Default::default()
        });
        b
    }

    fn request(
        name: &str,
        subject: &str,
        requester: &str,
        voters: &[&str],
        phase: Option<RequestPhase>,
    ) -> RoleRequest {
        let mut r: RoleRequest = serde_json::from_value(json!({
            "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
            "metadata": { "name": name, "namespace": "ws-a" },
            "spec": { "subject": { "kind": "User", "name": subject }, "project": "app", "projectRole": "admin",
                      "duration": "2h", "justification": "INC-1", "requester": requester },
        }))
        .unwrap();
        r.spec.approvals = voters
            .iter()
            .map(|u| Approval {
                user: (*u).into(),
                decision: Decision::Approve,
                comment: None,
                time: None,
            })
            .collect();
        r.status = phase.map(|p| RoleRequestStatus {
            phase: Some(p),
            approvals: Some("1/2".into()),
            ..Default::default()
        });
        r
    }

    fn world() -> Vec<WorkspaceView> {
        vec![WorkspaceView {
            name: "a".into(),
            namespace: "ws-a".into(),
            bindings: vec![
                binding(
                    "alice-mgr",
                    ("User", "alice"),
                    json!({"workspaceRole": "manager"}),
                    Some(600),
                ),
                binding(
                    "dave-user",
                    ("User", "dave"),
                    json!({"project": "app", "projectRole": "user"}),
                    Some(192),
                ),
                binding(
                    "oncall-read",
                    ("Group", "oncall"),
                    json!({"project": "app", "projectRole": "reader"}),
                    Some(30),
                ),
                binding(
                    "erin-pending",
                    ("User", "erin"),
                    json!({"workspaceRole": "member"}),
                    None,
                ),
            ],
            requests: vec![
                request("dave-admin", "dave", "dave", &[], None),
                request("erin-admin", "erin", "erin", &["alice"], Some(RequestPhase::Pending)),
                request("alice-admin", "alice", "alice", &[], Some(RequestPhase::Pending)),
                request("old", "dave", "dave", &[], Some(RequestPhase::Granted)),
            ],
        }]
    }

    fn names<T>(rows: &[T], f: impl Fn(&T) -> &str) -> Vec<String> {
        rows.iter().map(|r| f(r).to_owned()).collect()
    }

    #[test]
    fn a_manager_sees_what_to_approve_but_not_their_own_or_voted_requests() {
        let alice = Me {
            user: "alice".into(),
            groups: vec![],
        };
        let l = listing(&alice, &world(), now());
        assert_eq!(names(&l.to_approve, |r| &r.name), ["dave-admin"]);
        assert_eq!(names(&l.my_requests, |r| &r.name), ["alice-admin"]);
        assert_eq!(
            names(&l.active_grants, |g| &g.name),
            ["oncall-read", "dave-user", "alice-mgr"],
            "active only, soonest first"
        );
        assert_eq!(l.active_grants[1].time_left, "3h12m");
    }

    #[test]
    fn a_non_manager_sees_only_their_own_requests() {
        let dave = Me {
            user: "dave".into(),
            groups: vec!["oncall".into()],
        };
        let l = listing(&dave, &world(), now());
        assert!(l.to_approve.is_empty());
        assert_eq!(names(&l.my_requests, |r| &r.name), ["dave-admin"]);
        assert_eq!(l.my_requests[0].phase, "Pending");
        assert_eq!(l.my_requests[0].approvals, "0 vote(s)");
        let roles = my_roles(&dave, &world(), now());
        assert_eq!(names(&roles, |r| &r.role), ["app/user", "app/reader"]);
        assert_eq!(roles[1].via, "group oncall");
    }

    #[test]
    fn the_listing_renders_three_sections() {
        let alice = Me {
            user: "alice".into(),
            groups: vec![],
        };
        let text = render_listing(&listing(&alice, &world(), now()));
        assert!(text.starts_with("Requests you can approve:\nWORKSPACE"), "{text}");
        assert!(text.contains("\nYour pending requests:\nWORKSPACE"), "{text}");
        assert!(text.contains("dave-user     user dave"), "{text}");
        assert!(text.contains("3h12m"), "{text}");
        let empty = render_listing(&Listing::default());
        assert_eq!(
            empty,
            "Requests you can approve:\n  none\n\nYour pending requests:\n  none\n\nActive grants:\n  none\n"
        );
    }
}
