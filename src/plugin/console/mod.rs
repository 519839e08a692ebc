//! `kubectl access console`: a web console on the user's own machine.
//!
//! It is one more client of the API server, like the other commands: it
//! holds the one kube client made from the user's kubeconfig
//! ([`super::common::connect`]) and nothing else, so every action is
//! authenticated, authorised and admitted by the API server exactly as with
//! kubectl. It calls the commands' own functions: the listing
//! ([`super::list::listing`]) for the inbox and the active grants, the vote
//! ([`super::vote::cast`]) with its checks, the request
//! ([`super::request::file`]) with its approvers, the revocation
//! ([`super::revoke::revoke`]), and the history's reading and verification
//! ([`super::history::read`], [`super::history::verification`]). A refusal
//! is shown as the message the API server returned.
//!
//! [`security`] says who may talk to it; [`pages`] renders the HTML;
//! [`live`] turns watches into server-sent events.

mod live;
mod pages;
mod security;

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Form, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use kube::Client;
use kube::api::{Api, ListParams};
use serde::Deserialize;
use tokio::sync::broadcast;

use super::PluginError;
use super::cli::{ChainArgs, ConsoleArgs, Global, WorkspaceArg};
use super::common::{Target, emit, who};
use super::history::{ChainEntries, entries_of, read as read_history, verification};
use super::list::{Listing, Me, WorkspaceView, listing, views};
use super::request::{approvers_line, file};
use super::revoke::revoke;
use super::vote::{cast, voters};
use crate::api::{BindingPhase, Decision, GoDuration, Project, Subject, Workspace, WorkspaceRole};
use crate::policy::Role;
use live::Change;
use pages::{Flash, HistoryFilter, Page, RoleChoice, WorkspaceChoices};
use security::{Guard, HEADERS, Refusal};

const CSS: &str = include_str!("console.css");
const JS: &str = include_str!("console.js");

/// The largest form the console reads.
const FORM_LIMIT: usize = 64 * 1024;

/// How long a revocation waits for the operator's confirmation.
const REVOKE_WAIT: Duration = Duration::from_secs(5);

/// One console run: the user's client and identity, the session secrets,
/// the message for the next page, the live changes.
struct Console {
    client: Client,
    global: Global,
    only: WorkspaceArg,
    me: Me,
    guard: Guard,
    flash: Mutex<Option<Flash>>,
    changes: broadcast::Sender<Change>,
}

type Shared = Arc<Console>;

/// Serves the console until Ctrl-C.
pub(super) async fn command(client: Client, global: Global, a: ConsoleArgs) -> Result<u8, PluginError> {
    let me = who(&client).await?;
    let all = a.workspace.workspace.is_none() && global.namespace.is_none();
    let shown = views(&client, &global, &a.workspace, all).await?;
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, a.port))
        .await
        .map_err(|e| {
            PluginError::Usage(format!(
                "cannot listen on 127.0.0.1:{}: {e}; try another --port",
                a.port
            ))
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| PluginError::Usage(format!("cannot listen on 127.0.0.1: {e}")))?
        .port();
    let (guard, token) = Guard::new(port);
    let url = guard.login_url(&token);
    let namespaces: Vec<String> = shown.iter().map(|v| v.namespace.clone()).collect();
    let changes = live::start(&client, &namespaces);
    let state = Arc::new(Console {
        client,
        global,
        only: a.workspace.clone(),
        me,
        guard,
        flash: Mutex::new(None),
        changes,
    });
    emit(&format!(
        "foureyes console for {} ({} workspace(s)) at\n  {url}\nopen it in your browser: the link works once. Ctrl-C stops the console.\n",
        state.me.user,
        namespaces.len()
    ));
    if a.open {
        open_browser(&url);
    }
    // Ctrl-C stops at once: an open page's event stream never ends, so a
    // graceful shutdown would wait for the browser.
    let server = std::future::IntoFuture::into_future(axum::serve(listener, router(state)));
    tokio::select! {
        served = server => served.map_err(|e| PluginError::Usage(format!("the console stopped: {e}")))?,
        _ = tokio::signal::ctrl_c() => {}
    }
    emit("console stopped\n");
    Ok(0)
}

/// Asks the system to open `url` in a browser; says so when it cannot.
fn open_browser(url: &str) {
    let (program, args): (&str, Vec<&str>) = if cfg!(target_os = "macos") {
        ("open", vec![url])
    } else if cfg!(windows) {
        ("cmd", vec!["/C", "start", "", url])
    } else {
        ("xdg-open", vec![url])
    };
    let spawned = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        eprintln!("could not open a browser ({program}: {e}): open the link yourself");
    }
}

fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(inbox_page))
        .route("/fragment/inbox", get(inbox_fragment))
        .route("/fragment/mine", get(mine_fragment))
        .route("/fragment/own", get(own_fragment))
        .route("/fragment/managed", get(managed_fragment))
        .route("/request", get(request_page).post(request_post))
        .route("/active", get(active_page))
        .route("/history", get(history_page))
        .route("/vote", post(vote_post))
        .route("/revoke", post(revoke_post))
        .route("/events", get(events))
        .route("/login", get(login))
        .route(
            "/static/console.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/static/console.js",
            get(|| async { asset("text/javascript; charset=utf-8", JS) }),
        )
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn refused(r: &Refusal) -> Response {
    let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::FORBIDDEN);
    with_headers((status, Html(pages::refusal(&r.message()))).into_response())
}

fn with_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in HEADERS {
        headers.insert(*name, HeaderValue::from_static(value));
    }
    response
}

/// Every request passes here first: Host, Origin, the session cookie, and
/// for anything but GET and HEAD, a form with the CSRF token.
async fn guard(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    if let Err(r) = s.guard.check_host(header_str(headers, header::HOST)) {
        return refused(&r);
    }
    if let Err(r) = s.guard.check_origin(
        header_str(headers, header::ORIGIN),
        header_str(headers, "sec-fetch-site"),
    ) {
        return refused(&r);
    }
    if req.uri().path() == "/login" && req.method() == Method::GET {
        return with_headers(next.run(req).await);
    }
    if !s.guard.has_session(header_str(headers, header::COOKIE)) {
        return refused(&Refusal::NoSession);
    }
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return with_headers(next.run(req).await);
    }
    let is_form =
        header_str(headers, header::CONTENT_TYPE).is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return refused(&Refusal::NotAForm);
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
        return with_headers((StatusCode::PAYLOAD_TOO_LARGE, "the form is too large").into_response());
    };
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let token = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str());
    if let Err(r) = s.guard.check_csrf(token) {
        return refused(&r);
    }
    with_headers(next.run(Request::from_parts(parts, Body::from(bytes))).await)
}

#[derive(Deserialize)]
struct Login {
    token: Option<String>,
}

/// Spends the one-time token for the session cookie, then shows the inbox.
async fn login(State(s): State<Shared>, headers: HeaderMap, Query(q): Query<Login>) -> Response {
    if s.guard.has_session(header_str(&headers, header::COOKIE)) {
        return Redirect::to("/").into_response();
    }
    match s.guard.exchange(q.token.as_deref().unwrap_or("")) {
        Ok(cookie) => {
            let mut r = Redirect::to("/").into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(r) => refused(&r),
    }
}

impl Console {
    fn take_flash(&self) -> Option<Flash> {
        self.flash.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn set_flash(&self, f: Flash) {
        *self.flash.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    fn page(&self, title: &str, page: Page, body: &str) -> Html<String> {
        Html(pages::layout(
            title,
            page,
            &self.me.user,
            self.take_flash().as_ref(),
            body,
        ))
    }

    /// The workspaces shown and what concerns the user in them, read now.
    async fn world(&self) -> Result<(Vec<WorkspaceView>, Listing), PluginError> {
        let all = self.only.workspace.is_none() && self.global.namespace.is_none();
        let v = views(&self.client, &self.global, &self.only, all).await?;
        let l = listing(&self.me, &v, Utc::now());
        Ok((v, l))
    }

    /// The target of an action on an object in `namespace`.
    fn target(namespace: &str) -> Target {
        Target {
            workspace: namespace.to_owned(),
            namespace: namespace.to_owned(),
            by_namespace: true,
        }
    }
}

fn namespace_of<'a>(views: &'a [WorkspaceView], workspace: &str) -> &'a str {
    views
        .iter()
        .find(|v| v.name == workspace)
        .map(|v| v.namespace.as_str())
        .unwrap_or("")
}

fn error_block(e: &PluginError) -> String {
    format!(
        r#"<div class="flash refused" role="alert"><strong>Could not read from the API server.</strong> <span class="message">{}</span></div>"#,
        pages::esc(&e.to_string())
    )
}

/// A fragment for the live updates; a failure is a 503 whose text the page shows.
fn fragment(html: Result<String, PluginError>) -> Response {
    match html {
        Ok(h) => Html(h).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn inbox_html(s: &Console) -> Result<(String, String), PluginError> {
    let (v, l) = s.world().await?;
    let rows: Vec<_> = l
        .to_approve
        .iter()
        .map(|r| (r.clone(), namespace_of(&v, &r.workspace).to_owned()))
        .collect();
    Ok((
        pages::inbox_list(&rows, s.guard.csrf(), Utc::now()),
        pages::my_requests(&l.my_requests),
    ))
}

async fn inbox_page(State(s): State<Shared>) -> Html<String> {
    let body = match inbox_html(&s).await {
        Ok((list, mine)) => pages::inbox(&list, &mine),
        Err(e) => format!("<h1>Inbox</h1>\n{}", error_block(&e)),
    };
    s.page("Inbox", Page::Inbox, &body)
}

async fn inbox_fragment(State(s): State<Shared>) -> Response {
    fragment(inbox_html(&s).await.map(|(list, _)| list))
}

async fn mine_fragment(State(s): State<Shared>) -> Response {
    fragment(inbox_html(&s).await.map(|(_, mine)| mine))
}

/// The active grants: the user's own, and (when they manage a workspace)
/// the others of the workspaces they manage.
async fn active_html(s: &Console) -> Result<(String, Option<String>), PluginError> {
    let (v, l) = s.world().await?;
    let now = Utc::now();
    let mut own = vec![];
    let mut managed = vec![];
    let mut manages_any = false;
    for ws in &v {
        manages_any |= s.me.manages(ws, now);
    }
    for g in &l.active_grants {
        let Some(ws) = v.iter().find(|w| w.name == g.workspace) else {
            continue;
        };
        let manages = s.me.manages(ws, now);
        let mine = ws
            .bindings
            .iter()
            .find(|b| b.metadata.name.as_deref() == Some(g.name.as_str()))
            .is_some_and(|b| s.me.is(b.spec.subject.kind, &b.spec.subject.name));
        if mine {
            own.push((g.clone(), ws.namespace.clone(), manages));
        } else if manages {
            managed.push((g.clone(), ws.namespace.clone(), true));
        }
    }
    let csrf = s.guard.csrf();
    Ok((
        pages::active_list(&own, csrf, now, "You hold no active foureyes access."),
        manages_any.then(|| pages::active_list(&managed, csrf, now, "No one else holds access there.")),
    ))
}

async fn active_page(State(s): State<Shared>) -> Html<String> {
    let body = match active_html(&s).await {
        Ok((own, managed)) => pages::active(&own, managed.as_deref()),
        Err(e) => format!("<h1>Active access</h1>\n{}", error_block(&e)),
    };
    s.page("Active access", Page::Active, &body)
}

async fn own_fragment(State(s): State<Shared>) -> Response {
    fragment(active_html(&s).await.map(|(own, _)| own))
}

async fn managed_fragment(State(s): State<Shared>) -> Response {
    fragment(active_html(&s).await.map(|(_, managed)| managed.unwrap_or_default()))
}

async fn events(State(s): State<Shared>) -> Response {
    live::events(s.changes.subscribe()).into_response()
}

#[derive(Deserialize)]
struct VoteForm {
    namespace: String,
    name: String,
    decision: String,
    comment: Option<String>,
}

async fn vote_post(State(s): State<Shared>, Form(f): Form<VoteForm>) -> Redirect {
    let decision = match f.decision.as_str() {
        "approve" => Decision::Approve,
        "deny" => Decision::Deny,
        other => {
            s.set_flash(Flash::Refused(format!("unknown decision {other:?}: approve or deny")));
            return Redirect::to("/");
        }
    };
    let comment = f.comment.filter(|c| !c.trim().is_empty());
    let t = Console::target(&f.namespace);
    match cast(&s.client, &t, &f.name, &s.me.user, decision, comment).await {
        Ok((updated, _)) => {
            let done = if decision == Decision::Approve {
                "approved"
            } else {
                "denied"
            };
            let status = updated.status.clone().unwrap_or_default();
            let role = Role::of_request(&updated.spec).map(|r| r.label()).unwrap_or_default();
            s.set_flash(Flash::Done(format!(
                "You {done} request {} ({role} for {}). Votes so far: {}{}.",
                f.name,
                updated.spec.subject,
                voters(&updated),
                status.approvals.map(|a| format!("; counted {a}")).unwrap_or_default(),
            )));
        }
        Err(e) => s.set_flash(Flash::Refused(e.to_string())),
    }
    Redirect::to("/")
}

#[derive(Deserialize)]
struct RevokeForm {
    namespace: String,
    name: String,
    reason: String,
}

async fn revoke_post(State(s): State<Shared>, Form(f): Form<RevokeForm>) -> Redirect {
    if f.reason.trim().is_empty() {
        s.set_flash(Flash::Refused("a revocation needs a reason".into()));
        return Redirect::to("/active");
    }
    let t = Console::target(&f.namespace);
    match revoke(&s.client, &t, &f.name, &s.me.user, f.reason.trim(), REVOKE_WAIT).await {
        Ok(b) if b.status.as_ref().and_then(|st| st.phase) == Some(BindingPhase::Revoked) => {
            s.set_flash(Flash::Done(format!(
                "Revoked binding {}: {} no longer holds {}.",
                f.name,
                b.spec.subject,
                b.status.as_ref().and_then(|st| st.role.clone()).unwrap_or_default()
            )));
        }
        Ok(_) => s.set_flash(Flash::Done(format!(
            "Revocation of {} recorded; the operator has not confirmed it yet.",
            f.name
        ))),
        Err(e) => s.set_flash(Flash::Refused(e.to_string())),
    }
    Redirect::to("/active")
}

/// The roles the request form offers in each workspace: the workspace
/// roles, then each project's roles (the built-in names and the project's
/// own map; the operator refuses a role its configuration does not allow).
async fn choices(s: &Console, views: &[WorkspaceView]) -> Vec<WorkspaceChoices> {
    let builtin: Vec<String> = crate::config::Config::default().role_map.keys().cloned().collect();
    let mut out = vec![];
    for ws in views {
        let max_duration = Api::<Workspace>::all(s.client.clone())
            .get(&ws.name)
            .await
            .ok()
            .map(|w| w.spec.max_duration.to_string());
        let projects = Api::<Project>::namespaced(s.client.clone(), &ws.namespace)
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let mut roles: Vec<Role> = vec![
            Role::Workspace(WorkspaceRole::Manager),
            Role::Workspace(WorkspaceRole::Member),
        ];
        for p in &projects {
            let name = p.metadata.name.clone().unwrap_or_default();
            let mut names: Vec<&String> = builtin.iter().chain(p.spec.role_map.keys()).collect();
            names.sort();
            names.dedup();
            roles.extend(names.into_iter().map(|r| Role::Project {
                project: name.clone(),
                role: r.clone(),
            }));
        }
        out.push(WorkspaceChoices {
            workspace: ws.name.clone(),
            max_duration,
            roles: roles
                .iter()
                .map(|r| RoleChoice {
                    value: format!("{} {}", ws.name, r.label()),
                    label: format!("{} in {}", r.label(), ws.name),
                })
                .collect(),
        });
    }
    out
}

async fn request_page(State(s): State<Shared>) -> Html<String> {
    let all = s.only.workspace.is_none() && s.global.namespace.is_none();
    let body = match views(&s.client, &s.global, &s.only, all).await {
        Ok(v) => pages::request_form(&choices(&s, &v).await, s.guard.csrf()),
        Err(e) => format!("<h1>Request access</h1>\n{}", error_block(&e)),
    };
    s.page("Request access", Page::Request, &body)
}

#[derive(Deserialize)]
struct RequestForm {
    role: String,
    duration: String,
    justification: String,
    subject: Option<String>,
}

/// Parses the form's `<workspace> <role>` value.
fn parse_choice(value: &str) -> Result<(String, Role), String> {
    let (ws, label) = value
        .split_once(' ')
        .ok_or_else(|| format!("{value:?} does not name a workspace and a role"))?;
    let role = match label {
        "manager" => Role::Workspace(WorkspaceRole::Manager),
        "member" => Role::Workspace(WorkspaceRole::Member),
        other => match other.split_once('/') {
            Some((p, r)) if !p.is_empty() && !r.is_empty() => Role::Project {
                project: p.to_owned(),
                role: r.to_owned(),
            },
            _ => return Err(format!("{other:?} is not a role: manager, member or PROJECT/ROLE")),
        },
    };
    Ok((ws.to_owned(), role))
}

async fn request_post(State(s): State<Shared>, Form(f): Form<RequestForm>) -> Redirect {
    match file_request(&s, f).await {
        Ok(message) => {
            s.set_flash(Flash::Done(message));
            Redirect::to("/")
        }
        Err(message) => {
            s.set_flash(Flash::Refused(message));
            Redirect::to("/request")
        }
    }
}

async fn file_request(s: &Console, f: RequestForm) -> Result<String, String> {
    let (ws, role) = parse_choice(&f.role)?;
    let duration: GoDuration = f
        .duration
        .trim()
        .parse()
        .map_err(|e| format!("duration {:?}: {e}", f.duration))?;
    let all = s.only.workspace.is_none() && s.global.namespace.is_none();
    let v = views(&s.client, &s.global, &s.only, all)
        .await
        .map_err(|e| e.to_string())?;
    let namespace = namespace_of(&v, &ws);
    if namespace.is_empty() {
        return Err(format!("workspace {ws} is not one this console shows"));
    }
    let t = Target {
        workspace: ws.clone(),
        namespace: namespace.to_owned(),
        by_namespace: false,
    };
    let subject_name = f
        .subject
        .as_deref()
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .unwrap_or(&s.me.user)
        .to_owned();
    let filed = file(
        &s.client,
        &t,
        &s.me.user,
        Subject::user(&subject_name),
        &role,
        &duration,
        &f.justification,
        None,
    )
    .await
    .map_err(|e| e.to_string())?;
    let name = filed.request.metadata.name.clone().unwrap_or_default();
    let who = approvers_line(filed.approvers.as_deref())
        .map(|l| format!(" {}{}.", l[..1].to_uppercase(), &l[1..]))
        .unwrap_or_default();
    Ok(format!(
        "Requested {} for user {subject_name} in {ws} for {duration} (request {name}).{who}",
        role.label()
    ))
}

#[derive(Deserialize)]
struct HistoryQuery {
    workspace: Option<String>,
    person: Option<String>,
    action: Option<String>,
}

async fn history_page(State(s): State<Shared>, Query(q): Query<HistoryQuery>) -> Html<String> {
    let nonblank = |o: Option<String>| o.map(|x| x.trim().to_owned()).filter(|x| !x.is_empty());
    let workspace = match nonblank(q.workspace) {
        Some(w) => w,
        None => {
            let all = s.only.workspace.is_none() && s.global.namespace.is_none();
            match views(&s.client, &s.global, &s.only, all).await {
                // One workspace: its history straight away.
                Ok(v) if v.len() == 1 => v[0].name.clone(),
                Ok(v) => {
                    let names: Vec<String> = v.iter().map(|w| w.name.clone()).collect();
                    return s.page("History", Page::History, &pages::history_index(&names));
                }
                Err(e) => {
                    return s.page(
                        "History",
                        Page::History,
                        &format!("<h1>History</h1>\n{}", error_block(&e)),
                    );
                }
            }
        }
    };
    let filter = HistoryFilter {
        person: nonblank(q.person),
        action: nonblank(q.action),
    };
    let args = ChainArgs {
        workspace: Some(workspace.clone()),
        project: None,
        all: true,
    };
    let body = match read_history(&s.client, &s.global, &args).await {
        Ok((t, chains)) => {
            let heads = t.heads.as_deref().map_err(String::as_str);
            let shown: Vec<(ChainEntries, _)> = chains
                .iter()
                .map(|(chain, chunks)| {
                    (
                        ChainEntries {
                            chain: chain.to_string(),
                            entries: entries_of(chunks),
                        },
                        verification(chain, chunks, heads),
                    )
                })
                .collect();
            pages::history(&workspace, &shown, &filter)
        }
        Err(e) => format!("<h1>History of {}</h1>\n{}", pages::esc(&workspace), error_block(&e)),
    };
    s.page(&format!("History of {workspace}"), Page::History, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_form_names_a_workspace_and_a_role() {
        assert_eq!(
            parse_choice("pay manager").unwrap(),
            ("pay".into(), Role::Workspace(WorkspaceRole::Manager))
        );
        assert_eq!(
            parse_choice("pay app/user").unwrap(),
            (
                "pay".into(),
                Role::Project {
                    project: "app".into(),
                    role: "user".into()
                }
            )
        );
        for bad in ["pay", "pay owner", "pay /user", "pay app/", ""] {
            assert!(parse_choice(bad).is_err(), "{bad}");
        }
    }
}
