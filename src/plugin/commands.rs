//! The commands: gather the world from the API server, call the pure parts,
//! write the result. Exit codes: 0 done; 1 error (nothing changed, or the
//! change was refused); 2 done, but not in effect (a grant the operator does
//! not put in place, a plan with refusals).

use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::PluginError;
use super::cli::{
    ChainArgs, Cli, Command, Global, GrantArgs, HistoryArgs, HistoryCommand, ListArgs, Output, PlanArgs, RequestArgs,
    RevokeArgs, RoleArgs, VoteArgs, WorkspaceArg, WorkspaceRoleArg,
};
use super::format::{Table, fields, time_left};
use super::history;
use super::list::{self, Me, WorkspaceView};
use super::names;
use super::plan::{self, Judge, Plan, World};
use super::vote;
use crate::api::conditions::{READY, find_condition};
use crate::api::workspace::ChainHead;
use crate::api::{
    BindingPhase, Decision, RoleBinding, RoleBindingSpec, RoleRequest, RoleRequestSpec, Subject, Workspace,
    WorkspaceRole,
};
use crate::audit::history::{self as audit_history, Chain as HistoryChain, Error as HistoryError};
use crate::policy::Role;

/// Exit code: done, but not in effect.
pub const NOT_IN_EFFECT: u8 = 2;

/// Runs a command; returns the exit code on success.
pub async fn run(cli: Cli) -> Result<u8, PluginError> {
    let g = cli.global;
    if let Command::Plan(args) = &cli.command {
        return plan_cmd(&g, args).await;
    }
    let (client, _) = connect(&g).await?;
    match cli.command {
        Command::Whoami => whoami(&client, &g).await,
        Command::Grant(a) => grant(&client, &g, &a).await,
        Command::Request(a) => request(&client, &g, &a).await,
        Command::Approve(a) => cast(&client, &g, &a, Decision::Approve).await,
        Command::Deny(a) => cast(&client, &g, &a, Decision::Deny).await,
        Command::Revoke(a) => revoke(&client, &g, &a).await,
        Command::List(a) => list_cmd(&client, &g, &a).await,
        Command::History(a) => history_cmd(&client, &g, &a).await,
        Command::Plan(_) => unreachable!("handled above"),
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn emit(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().write_all(text.as_bytes());
}

fn emit_json(value: &impl serde::Serialize) {
    emit(&format!(
        "{}\n",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into())
    ));
}

/// A client for the kubeconfig, context and namespace of the command line.
pub async fn connect(g: &Global) -> Result<(Client, String), PluginError> {
    let options = KubeConfigOptions {
        context: g.context.clone(),
        ..Default::default()
    };
    let config = match (&g.kubeconfig, &g.context) {
        (Some(path), _) => {
            let kc =
                Kubeconfig::read_from(path).map_err(|e| PluginError::Connect(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| PluginError::Connect(e.to_string()))?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| PluginError::Connect(e.to_string()))?,
        (None, None) => kube::Config::infer()
            .await
            .map_err(|e| PluginError::Connect(e.to_string()))?,
    };
    let ns = g.namespace.clone().unwrap_or_else(|| config.default_namespace.clone());
    let client = Client::try_from(config).map_err(|e| PluginError::Connect(e.to_string()))?;
    Ok((client, ns))
}

/// Maps an API error to one that says what to do next.
fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> PluginError {
    let what = what.into();
    move |err| match err {
        kube::Error::Api(s) if s.is_forbidden() => PluginError::Refused(format!(
            "{what}: {}\n  the API server refused it: check your roles with kubectl access whoami, or ask a workspace manager",
            s.message
        )),
        kube::Error::Api(s) if s.is_not_found() => PluginError::NotFound(format!("{what}: {}", s.message)),
        kube::Error::Api(s) if s.is_invalid() || s.code == 400 => {
            PluginError::Refused(format!("{what}: the API server refused it: {}", s.message))
        }
        e @ (kube::Error::HyperError(_) | kube::Error::Service(_)) => PluginError::Connect(format!("{what}: {e}")),
        source => PluginError::Api { what, source },
    }
}

fn is_code(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == code)
}

/// The caller, as the API server authenticates them.
pub async fn who(client: &Client) -> Result<Me, PluginError> {
    let review = SelfSubjectReview {
        metadata: Default::default(),
        status: None,
    };
    let out = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .map_err(api_err("asking the API server who you are (SelfSubjectReview)"))?;
    let info = out.status.and_then(|s| s.user_info).unwrap_or_default();
    let user = info.username.filter(|u| !u.is_empty()).ok_or_else(|| {
        PluginError::Refused("the API server did not say who you are (no user name in the SelfSubjectReview)".into())
    })?;
    Ok(Me {
        user,
        groups: info.groups.unwrap_or_default(),
    })
}

/// The workspace a command acts in.
struct Target {
    /// The workspace's name (the namespace when given with -n).
    workspace: String,
    /// Its control namespace.
    namespace: String,
    /// Whether it was given by namespace (-n).
    by_namespace: bool,
}

impl Target {
    /// How to name it again on a command line.
    fn flag(&self) -> String {
        if self.by_namespace {
            format!("-n {}", self.namespace)
        } else {
            format!("-w {}", self.workspace)
        }
    }
}

async fn target(client: &Client, g: &Global, w: &WorkspaceArg) -> Result<Target, PluginError> {
    match (&w.workspace, &g.namespace) {
        (Some(name), _) => match Api::<Workspace>::all(client.clone()).get(name).await {
            Ok(ws) => Ok(Target {
                workspace: name.clone(),
                namespace: plan::control_namespace(&ws),
                by_namespace: false,
            }),
            Err(e) if is_code(&e, 404) => Err(PluginError::NotFound(format!(
                "workspace {name} not found: list them with kubectl get ws"
            ))),
            // Someone who may not read Workspaces still knows the convention.
            Err(e) if is_code(&e, 403) => Ok(Target {
                workspace: name.clone(),
                namespace: g
                    .namespace
                    .clone()
                    .unwrap_or_else(|| format!("{}{name}", crate::api::workspace::DEFAULT_NAMESPACE_PREFIX)),
                by_namespace: false,
            }),
            Err(e) => Err(api_err(format!("reading workspace {name}"))(e)),
        },
        (None, Some(ns)) => Ok(Target {
            workspace: ns.clone(),
            namespace: ns.clone(),
            by_namespace: true,
        }),
        (None, None) => Err(PluginError::Usage(
            "which workspace? pass -w WORKSPACE (list them with kubectl get ws) or -n NAMESPACE".into(),
        )),
    }
}

/// The workspaces a listing covers: one, or all the caller can read.
async fn views(client: &Client, g: &Global, w: &WorkspaceArg, all: bool) -> Result<Vec<WorkspaceView>, PluginError> {
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

async fn whoami(client: &Client, g: &Global) -> Result<u8, PluginError> {
    let me = who(client).await?;
    let (roles, note) = match views(client, g, &WorkspaceArg { workspace: None }, true).await {
        Ok(v) => (list::my_roles(&me, &v, Utc::now()), None),
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

fn role_fields(r: &RoleArgs) -> Result<Role, PluginError> {
    match (r.role, &r.project, &r.project_role) {
        (Some(WorkspaceRoleArg::Manager), None, None) => Ok(Role::Workspace(WorkspaceRole::Manager)),
        (Some(WorkspaceRoleArg::Member), None, None) => Ok(Role::Workspace(WorkspaceRole::Member)),
        (None, Some(p), Some(role)) => Ok(Role::Project {
            project: p.clone(),
            role: role.clone(),
        }),
        _ => Err(PluginError::Usage(
            "give either --role manager|member or --project P --project-role R".into(),
        )),
    }
}

fn role_cli(role: &Role) -> String {
    match role {
        Role::Workspace(r) => format!("--role {r}"),
        Role::Project { project, role } => format!("--project {project} --project-role {role}"),
    }
}

fn split(role: &Role) -> (Option<WorkspaceRole>, Option<String>, Option<String>) {
    match role {
        Role::Workspace(r) => (Some(*r), None, None),
        Role::Project { project, role } => (None, Some(project.clone()), Some(role.clone())),
    }
}

fn subject(name: &str, group: bool) -> Subject {
    if group {
        Subject::group(name)
    } else {
        Subject::user(name)
    }
}

fn check_name(name: &str) -> Result<(), PluginError> {
    if names::is_dns_label(name) {
        Ok(())
    } else {
        Err(PluginError::Usage(format!(
            "--name {name}: use lower-case letters, digits and '-', at most 63 characters"
        )))
    }
}

/// Creates an object under a generated name, trying another suffix if the name is taken.
async fn create_named<K>(
    api: &Api<K>,
    obj: &mut K,
    given: Option<&String>,
    base: (&str, &str),
) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    for attempt in 0..3 {
        let name = match given {
            Some(n) => n.clone(),
            None => names::generate(base.0, base.1, &names::random_suffix()),
        };
        obj.meta_mut().name = Some(name);
        match api.create(&PostParams::default(), obj).await {
            Err(e) if given.is_none() && attempt < 2 && is_code(&e, 409) => continue,
            Err(e) => return Err(e),
            Ok(created) => {
                *obj = created;
                return Ok(());
            }
        }
    }
    unreachable!("the loop returns")
}

async fn grant(client: &Client, g: &Global, a: &GrantArgs) -> Result<u8, PluginError> {
    if let Some(n) = &a.name {
        check_name(n)?;
    }
    let role = role_fields(&a.role)?;
    let me = who(client).await?;
    let t = target(client, g, &a.workspace).await?;
    let (workspace_role, project, project_role) = split(&role);
    let mut b = RoleBinding::new(
        "",
        RoleBindingSpec {
            subject: subject(&a.subject, a.group),
            workspace_role,
            project,
            project_role,
            expires_at: a.until,
            duration: a.duration.clone(),
            justification: a.reason.clone(),
            granted_by: me.user.clone(),
            origin_request: None,
            revocation: None,
        },
    );
    b.metadata.namespace = Some(t.namespace.clone());
    let api = Api::<RoleBinding>::namespaced(client.clone(), &t.namespace);
    create_named(&api, &mut b, a.name.as_ref(), (&a.subject, &role.label()))
        .await
        .map_err(api_err(format!("granting {} in {}", role.label(), t.namespace)))?;
    let name = b.name_any();

    // The operator decides; wait a little for its verdict.
    let deadline = std::time::Instant::now() + a.wait.get();
    let mut current = b.clone();
    loop {
        let settled = current.status.as_ref().is_some_and(|s| {
            s.phase.is_some_and(|p| p != BindingPhase::Pending)
                || find_condition(&s.conditions, READY).is_some_and(|c| !transient(&c.reason))
        });
        if settled || std::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Ok(b) = api.get(&name).await {
            current = b;
        }
    }
    let status = current.status.clone().unwrap_or_default();
    let ready = find_condition(&status.conditions, READY).cloned();
    let phase = status.phase;
    let now = Utc::now();
    if g.output == Output::Json {
        emit_json(&json!({
            "name": name, "namespace": t.namespace, "phase": phase,
            "reason": ready.as_ref().map(|c| c.reason.clone()),
            "message": ready.as_ref().map(|c| c.message.clone()),
            "expiresAt": status.expires_at,
        }));
    } else {
        let mut out = format!(
            "rolebinding.foureyes.dev/{name} created in {} by {}\n",
            t.namespace, me.user
        );
        match (phase, &ready) {
            (Some(BindingPhase::Active), _) => out.push_str(&format!(
                "active: {} holds {} in {}{}\n",
                current.spec.subject,
                role.label(),
                status.namespaces.join(", "),
                status
                    .expires_at
                    .map(|e| format!(" until {} ({} left)", e.to_rfc3339(), time_left(e, now)))
                    .unwrap_or_default()
            )),
            (_, Some(c)) if c.reason == "NotAuthorized" => {
                out.push_str(&format!("pending, not in effect: {}\n", c.message));
                out.push_str(&format!(
                    "  four eyes: ask for it instead (your request counts as your approval), then delete this binding:\n    \
                     kubectl access request {}{} {} {} --for {} --reason {:?}\n    kubectl delete frb {name} -n {}\n",
                    a.subject,
                    if a.group { " --group" } else { "" },
                    t.flag(),
                    role_cli(&role),
                    a.duration.as_ref().map(|d| d.to_string()).unwrap_or_else(|| "4h".into()),
                    a.reason,
                    t.namespace
                ));
            }
            (_, Some(c)) if !transient(&c.reason) => {
                out.push_str(&format!("pending, not in effect: {}: {}\n", c.reason, c.message));
            }
            _ => out.push_str(&format!(
                "waiting for the operator: check with kubectl get frb {name} -n {}\n",
                t.namespace
            )),
        }
        emit(&out);
    }
    Ok(if phase == Some(BindingPhase::Active) {
        0
    } else {
        NOT_IN_EFFECT
    })
}

fn transient(reason: &str) -> bool {
    matches!(reason, "Pending" | "WorkspaceNotReady" | "ProjectHasNoNamespaces")
}

async fn request(client: &Client, g: &Global, a: &RequestArgs) -> Result<u8, PluginError> {
    if let Some(n) = &a.name {
        check_name(n)?;
    }
    let role = role_fields(&a.role)?;
    let me = who(client).await?;
    let t = target(client, g, &a.workspace).await?;
    let subject_name = a.subject.clone().unwrap_or_else(|| me.user.clone());
    let (workspace_role, project, project_role) = split(&role);
    let mut r = RoleRequest::new(
        "",
        RoleRequestSpec {
            subject: subject(&subject_name, a.group),
            workspace_role,
            project,
            project_role,
            duration: a.duration.clone(),
            justification: a.reason.clone(),
            requester: me.user.clone(),
            approvals: vec![],
        },
    );
    r.metadata.namespace = Some(t.namespace.clone());
    let api = Api::<RoleRequest>::namespaced(client.clone(), &t.namespace);
    create_named(&api, &mut r, a.name.as_ref(), (&subject_name, &role.label()))
        .await
        .map_err(api_err(format!("requesting {} in {}", role.label(), t.namespace)))?;
    let name = r.name_any();
    // Who can approve it: the workspace's managers, the subject excluded.
    let approvers = Api::<RoleBinding>::namespaced(client.clone(), &t.namespace)
        .list(&ListParams::default())
        .await
        .ok()
        .map(|l| {
            let world = World {
                bindings: l.items,
                ..Default::default()
            };
            world
                .managers(&t.namespace, Utc::now())
                .into_iter()
                .filter(|m| !(r.spec.subject.kind == crate::api::SubjectKind::User && *m == r.spec.subject.name))
                .collect::<Vec<_>>()
        });
    if g.output == Output::Json {
        emit_json(&json!({ "name": name, "namespace": t.namespace, "requester": me.user, "approvers": approvers }));
    } else {
        let mut out = format!(
            "rolerequest.foureyes.dev/{name} created in {}: {} asks for {} for {}\n",
            t.namespace,
            r.spec.subject,
            role.label(),
            a.duration
        );
        match approvers {
            Some(m) if !m.is_empty() => out.push_str(&format!("managers who can approve: {}\n", m.join(", "))),
            Some(_) => out.push_str("no manager but the subject can approve it: only a partner can (break-glass)\n"),
            None => {}
        }
        out.push_str(&format!("approve with: kubectl access approve {name} {}\n", t.flag()));
        emit(&out);
    }
    Ok(0)
}

async fn cast(client: &Client, g: &Global, a: &VoteArgs, decision: Decision) -> Result<u8, PluginError> {
    let me = who(client).await?;
    let t = target(client, g, &a.workspace).await?;
    let api = Api::<RoleRequest>::namespaced(client.clone(), &t.namespace);
    let done = match decision {
        Decision::Approve => "approved",
        Decision::Deny => "denied",
    };
    let mut last_rv = None;
    for _ in 0..5 {
        let r = match api.get(&a.name).await {
            Ok(r) => r,
            Err(e) if is_code(&e, 404) => {
                return Err(PluginError::NotFound(format!(
                    "request {} not found in {}: list them with kubectl access list {}",
                    a.name,
                    t.namespace,
                    t.flag()
                )));
            }
            Err(e) => return Err(api_err(format!("reading request {}", a.name))(e)),
        };
        vote::check_vote(&r, &me.user).map_err(|refusal| PluginError::Declined(refusal.message(&a.name, &me.user)))?;
        let rv = r.resource_version().unwrap_or_default();
        let ballot = vote::vote(&me.user, decision, a.comment.clone(), Utc::now());
        let patch = serde_json::from_value(vote::vote_patch(&r, &rv, &ballot))
            .map_err(|e| PluginError::Input(format!("building the patch: {e}")))?;
        match api
            .patch(&a.name, &PatchParams::default(), &Patch::Json::<()>(patch))
            .await
        {
            Ok(updated) => {
                let status = updated.status.clone().unwrap_or_default();
                if g.output == Output::Json {
                    emit_json(&json!({
                        "name": a.name, "namespace": t.namespace, "vote": ballot,
                        "votes": updated.spec.approvals.len(), "phase": status.phase, "approvals": status.approvals,
                    }));
                } else {
                    let voters: Vec<String> = updated
                        .spec
                        .approvals
                        .iter()
                        .map(|v| format!("{} ({:?})", v.user, v.decision))
                        .collect();
                    emit(&format!(
                        "{done} request {} in {} as {}\nvotes so far: {}\nthe operator counts managers' votes once each; \
                         follow it with kubectl get rr {} -n {}\n",
                        a.name,
                        t.namespace,
                        me.user,
                        voters.join(", "),
                        a.name,
                        t.namespace
                    ));
                }
                return Ok(0);
            }
            // Someone else changed the request in between: look again.
            Err(e) if is_code(&e, 409) => continue,
            Err(e) if is_code(&e, 422) && last_rv.as_ref() != Some(&rv) => {
                last_rv = Some(rv);
                continue;
            }
            Err(e) => return Err(api_err(format!("voting on request {}", a.name))(e)),
        }
    }
    Err(PluginError::Refused(format!(
        "request {} kept changing while voting on it: try again",
        a.name
    )))
}

async fn revoke(client: &Client, g: &Global, a: &RevokeArgs) -> Result<u8, PluginError> {
    let me = who(client).await?;
    let t = target(client, g, &a.workspace).await?;
    let api = Api::<RoleBinding>::namespaced(client.clone(), &t.namespace);
    let mut done = None;
    for _ in 0..5 {
        let b = match api.get(&a.name).await {
            Ok(b) => b,
            Err(e) if is_code(&e, 404) => {
                return Err(PluginError::NotFound(format!(
                    "binding {} not found in {}: list them with kubectl get frb -n {}",
                    a.name, t.namespace, t.namespace
                )));
            }
            Err(e) => return Err(api_err(format!("reading binding {}", a.name))(e)),
        };
        vote::check_revoke(&b).map_err(|r| PluginError::Declined(r.message(&a.name)))?;
        let patch = vote::revoke_patch(&b.resource_version().unwrap_or_default(), &me.user, &a.reason);
        match api.patch(&a.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(b) => {
                done = Some(b);
                break;
            }
            Err(e) if is_code(&e, 409) => continue,
            Err(e) => return Err(api_err(format!("revoking binding {}", a.name))(e)),
        }
    }
    let Some(mut b) = done else {
        return Err(PluginError::Refused(format!(
            "binding {} kept changing while revoking it: try again",
            a.name
        )));
    };
    let deadline = std::time::Instant::now() + a.wait.get();
    while b.status.as_ref().and_then(|s| s.phase) != Some(BindingPhase::Revoked) && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(x) = api.get(&a.name).await {
            b = x;
        }
    }
    let revoked = b.status.as_ref().and_then(|s| s.phase) == Some(BindingPhase::Revoked);
    if g.output == Output::Json {
        emit_json(&json!({ "name": a.name, "namespace": t.namespace, "revokedBy": me.user, "confirmed": revoked }));
    } else if revoked {
        emit(&format!(
            "revoked binding {} in {} ({} no longer holds {}); the binding stays as a record\n",
            a.name,
            t.namespace,
            b.spec.subject,
            b.status.as_ref().and_then(|s| s.role.clone()).unwrap_or_default()
        ));
    } else {
        emit(&format!(
            "revocation of {} recorded; the operator has not confirmed it yet: kubectl get frb {} -n {}\n",
            a.name, a.name, t.namespace
        ));
    }
    Ok(if revoked { 0 } else { NOT_IN_EFFECT })
}

async fn list_cmd(client: &Client, g: &Global, a: &ListArgs) -> Result<u8, PluginError> {
    let me = who(client).await?;
    let v = views(client, g, &a.workspace, a.all_workspaces).await?;
    let l = list::listing(&me, &v, Utc::now());
    if g.output == Output::Json {
        emit_json(&l);
    } else {
        emit(&list::render_listing(&l));
    }
    Ok(0)
}

/// Where a workspace's history is, and the chain heads its status records
/// (or why they cannot be read).
struct HistoryTarget {
    /// Where the chains are, for people: `of workspace payments`, or `in
    /// namespace ws-payments` when the workspace is not known.
    place: String,
    namespace: String,
    heads: Result<Vec<ChainHead>, String>,
}

async fn history_target(client: &Client, g: &Global, c: &ChainArgs) -> Result<HistoryTarget, PluginError> {
    let workspaces = Api::<Workspace>::all(client.clone());
    let heads_of = |ws: &Workspace| ws.status.as_ref().map(|s| s.history.clone()).unwrap_or_default();
    match (&c.workspace, &g.namespace) {
        (Some(name), _) => match workspaces.get(name).await {
            Ok(ws) => Ok(HistoryTarget {
                place: format!("of workspace {name}"),
                namespace: plan::control_namespace(&ws),
                heads: Ok(heads_of(&ws)),
            }),
            Err(e) if is_code(&e, 404) => Err(PluginError::NotFound(format!(
                "workspace {name} not found: list them with kubectl get ws"
            ))),
            // An auditor may read the history but not the Workspace: the
            // namespace follows the convention (or -n), the head is not compared.
            Err(e) if is_code(&e, 403) => Ok(HistoryTarget {
                place: format!("of workspace {name}"),
                namespace: g
                    .namespace
                    .clone()
                    .unwrap_or_else(|| format!("{}{name}", crate::api::workspace::DEFAULT_NAMESPACE_PREFIX)),
                heads: Err(format!("you may not read the Workspace {name}")),
            }),
            Err(e) => Err(api_err(format!("reading workspace {name}"))(e)),
        },
        (None, Some(ns)) => {
            let in_ns = format!("in namespace {ns}");
            let (place, heads) = match workspaces.list(&ListParams::default()).await {
                Ok(list) => match list.items.iter().find(|ws| plan::control_namespace(ws) == *ns) {
                    Some(ws) => (format!("of workspace {}", ws.name_any()), Ok(heads_of(ws))),
                    None => (in_ns, Err(format!("no Workspace has the control namespace {ns}"))),
                },
                Err(e) if is_code(&e, 403) => (in_ns, Err("you may not list Workspaces".to_owned())),
                Err(e) => return Err(api_err("listing workspaces")(e)),
            };
            Ok(HistoryTarget {
                place,
                namespace: ns.clone(),
                heads,
            })
        }
        (None, None) => Err(PluginError::Usage(
            "which workspace? kubectl access history WORKSPACE [--project P | --all], or -n NAMESPACE".into(),
        )),
    }
}

/// Maps a history error to one that says what to do next.
fn history_err(what: String) -> impl FnOnce(HistoryError) -> PluginError {
    move |e| match e {
        HistoryError::Api {
            code: Some(403),
            message,
            ..
        } => PluginError::Refused(format!(
            "{what}: {message}\n  managers, members and auditors of the workspace may read its history: \
             check your roles with kubectl access whoami"
        )),
        HistoryError::Api {
            code: None, message, ..
        } => PluginError::Connect(format!("{what}: {message}")),
        HistoryError::InvalidChain(name) => PluginError::Usage(format!("{what}: {name:?} cannot name a history chain")),
        other => PluginError::Refused(format!("{what}: {other}")),
    }
}

/// The chains a command covers: one, or every chain of the workspace (with
/// those the status records but that have no chunk left, for verification).
async fn history_chains(client: &Client, t: &HistoryTarget, c: &ChainArgs) -> Result<Vec<HistoryChain>, PluginError> {
    if !c.all {
        return Ok(vec![match &c.project {
            Some(p) => HistoryChain::project(p),
            None => HistoryChain::workspace(),
        }]);
    }
    let mut chains = audit_history::list_chains(client, &t.namespace)
        .await
        .map_err(history_err(format!("listing the history chains in {}", t.namespace)))?;
    if let Ok(heads) = &t.heads {
        for h in heads {
            if let Ok(chain) = HistoryChain::named(&h.chain)
                && !chains.contains(&chain)
            {
                chains.push(chain);
            }
        }
    }
    if chains.is_empty() {
        return Err(PluginError::NotFound(format!(
            "no history in {}: is it the control namespace of a workspace?",
            t.namespace
        )));
    }
    Ok(chains)
}

async fn history_cmd(client: &Client, g: &Global, a: &HistoryArgs) -> Result<u8, PluginError> {
    let (c, verify) = match &a.verify {
        Some(HistoryCommand::Verify(c)) => (c, true),
        None => (&a.chain, false),
    };
    let t = history_target(client, g, c).await?;
    let chains = history_chains(client, &t, c).await?;
    let mut read = vec![];
    for chain in &chains {
        let chunks = audit_history::read_chunks(client, &t.namespace, chain)
            .await
            .map_err(history_err(format!(
                "reading {} ({})",
                history::describe(chain, &t.place),
                t.namespace
            )))?;
        read.push((chain, chunks));
    }
    if verify {
        let heads = t.heads.as_deref().map_err(String::as_str);
        let results: Vec<history::Verification> = read
            .iter()
            .map(|(chain, chunks)| history::verification(chain, chunks, heads))
            .collect();
        if g.output == Output::Json {
            if c.all {
                emit_json(&results);
            } else {
                emit_json(&results[0]);
            }
        } else {
            let text: Vec<String> = results
                .iter()
                .map(|v| history::render_verification(&t.place, v))
                .collect();
            emit(&text.join("\n"));
        }
        return Ok(if results.iter().all(|v| v.intact) { 0 } else { 1 });
    }
    let mut listed = vec![];
    for (chain, chunks) in read {
        if let Err(b) = audit_history::verify(chain, &chunks) {
            eprintln!("warning: {b}\n  kubectl access history verify shows the details");
        }
        let entries: Vec<_> = chunks
            .iter()
            .flat_map(|c| c.entries())
            .filter_map(|(_, e)| e.ok())
            .collect();
        if entries.is_empty() && g.output != Output::Json {
            eprintln!(
                "{} has no entries yet{}",
                history::describe(chain, &t.place),
                if c.all {
                    ""
                } else {
                    "; kubectl access history WORKSPACE --all shows every chain"
                }
            );
        }
        listed.push(history::ChainEntries {
            chain: chain.to_string(),
            entries,
        });
    }
    if g.output == Output::Json {
        if c.all {
            emit_json(&listed);
        } else {
            emit_json(&listed[0].entries);
        }
    } else {
        let text: Vec<String> = listed
            .iter()
            .filter(|l| !l.entries.is_empty())
            .map(|l| {
                let title = if c.all {
                    format!("{}:\n", history::describe(&l.chain, &t.place))
                } else {
                    String::new()
                };
                format!("{title}{}", history::render_entries(&l.entries))
            })
            .collect();
        emit(&text.join("\n"));
    }
    Ok(0)
}

async fn plan_cmd(g: &Global, a: &PlanArgs) -> Result<u8, PluginError> {
    let text = if a.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| PluginError::Input(format!("reading standard input: {e}")))?
    } else {
        std::fs::read_to_string(&a.file).map_err(|e| PluginError::Input(format!("{}: {e}", a.file.display())))?
    };
    let objects = crate::api::documents::parse_documents(&text)
        .map_err(|e| PluginError::Input(format!("{}: {e}", a.file.display())))?;
    let config = match &a.operator_config {
        Some(path) => crate::config::Config::from_file(path).map_err(|e| PluginError::Input(e.to_string()))?,
        None => crate::config::Config::default(),
    };
    let (client, default_ns) = connect(g).await?;
    let mut world = World {
        workspaces: Api::<Workspace>::all(client.clone())
            .list(&ListParams::default())
            .await
            .map_err(api_err("listing workspaces"))?
            .items,
        ..Default::default()
    };
    let mut namespaces: Vec<String> = objects
        .iter()
        .filter_map(|o| match o {
            crate::api::documents::Object::Workspace(_) => None,
            crate::api::documents::Object::Project(p) => p.namespace(),
            crate::api::documents::Object::RoleBinding(b) => b.namespace(),
            crate::api::documents::Object::RoleRequest(r) => r.namespace(),
        })
        .collect();
    namespaces.push(default_ns.clone());
    namespaces.sort();
    namespaces.dedup();
    namespaces.retain(|ns| world.workspace_of(ns).is_some());
    for ns in &namespaces {
        let list = ListParams::default();
        let what = format!("reading workspace namespace {ns}");
        world.projects.extend(
            Api::<crate::api::Project>::namespaced(client.clone(), ns)
                .list(&list)
                .await
                .map_err(api_err(what.clone()))?
                .items,
        );
        world.bindings.extend(
            Api::<RoleBinding>::namespaced(client.clone(), ns)
                .list(&list)
                .await
                .map_err(api_err(what.clone()))?
                .items,
        );
        world.requests.extend(
            Api::<RoleRequest>::namespaced(client.clone(), ns)
                .list(&list)
                .await
                .map_err(api_err(what))?
                .items,
        );
    }
    let context = world.overlay(&objects);
    let judge = Judge {
        world: &world,
        config: &config,
        default_ns: &default_ns,
        now: Utc::now(),
    };
    let p = Plan {
        context,
        items: plan::plan(&judge, &objects),
    };
    if g.output == Output::Json {
        emit_json(&p);
    } else {
        emit(&plan::render(&p));
    }
    Ok(if p.any_refused() { NOT_IN_EFFECT } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Box::new(
            serde_json::from_value(json!({ "status": "Failure", "code": code, "reason": reason, "message": "m" }))
                .unwrap(),
        ))
    }

    #[test]
    fn api_errors_say_what_to_do_next() {
        let e = api_err("granting")(status(403, "Forbidden"));
        assert!(matches!(e, PluginError::Refused(_)));
        assert!(e.to_string().contains("kubectl access whoami"), "{e}");
        assert!(matches!(
            api_err("x")(status(404, "NotFound")),
            PluginError::NotFound(_)
        ));
        let e = api_err("voting")(status(422, "Invalid"));
        assert_eq!(e.to_string(), "voting: the API server refused it: m");
        assert!(matches!(
            api_err("x")(status(500, "InternalError")),
            PluginError::Api { .. }
        ));
        assert!(is_code(&status(409, "Conflict"), 409));
    }

    #[test]
    fn roles_come_from_exactly_one_form() {
        let args = |role, project: Option<&str>, project_role: Option<&str>| RoleArgs {
            role,
            project: project.map(str::to_owned),
            project_role: project_role.map(str::to_owned),
        };
        assert_eq!(
            role_fields(&args(Some(WorkspaceRoleArg::Manager), None, None)).unwrap(),
            Role::Workspace(WorkspaceRole::Manager)
        );
        let r = role_fields(&args(None, Some("app"), Some("user"))).unwrap();
        assert_eq!(role_cli(&r), "--project app --project-role user");
        assert!(role_fields(&args(None, Some("app"), None)).is_err());
        assert!(role_fields(&args(Some(WorkspaceRoleArg::Member), Some("app"), Some("user"))).is_err());
        assert!(check_name("dave-app-user-x1").is_ok());
        assert!(check_name("Dave").is_err());
    }
}
