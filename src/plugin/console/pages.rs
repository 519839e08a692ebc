//! The console's pages: server-rendered HTML from what the commands compute
//! (the listing's rows, the history's verification), readable without
//! JavaScript. The script (`console.js`) only adds live updates, countdowns
//! and local times.
//!
//! Every value from the cluster is escaped. Times are written in UTC inside
//! `<time datetime=...>`; the script rewrites them in the viewer's time zone
//! and keeps UTC in the tooltip.

use chrono::{DateTime, Utc};

use super::super::format::time_left;
use super::super::history::{ChainEntries, Verification, summary};
use super::super::list::{GrantRow, RequestRow};
use super::super::vote::WORKSPACE_ROLE_GRANTS;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The console's pages, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// Requests to approve.
    Inbox,
    /// Ask for a role.
    Request,
    /// Active access.
    Active,
    /// The history.
    History,
}

/// A message shown once at the top of the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flash {
    /// Done.
    Done(String),
    /// Refused or failed (the API server's message, when it refused).
    Refused(String),
}

/// A time for people: UTC in the markup, local time once the script runs.
pub fn time(t: DateTime<Utc>) -> String {
    let utc = t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    format!(
        r#"<time datetime="{}" title="{utc}" data-local>{utc}</time>"#,
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// A countdown to `t`: the time left now, updated by the script every second.
pub fn countdown(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!(
        r#"<span class="countdown" data-countdown="{}">{}</span>"#,
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        esc(&time_left(t, now))
    )
}

/// The whole page around `body`.
pub fn layout(title: &str, page: Page, user: &str, flash: Option<&Flash>, body: &str) -> String {
    let nav = [
        (Page::Inbox, "/", "Inbox"),
        (Page::Request, "/request", "Request access"),
        (Page::Active, "/active", "Active access"),
        (Page::History, "/history", "History"),
    ]
    .iter()
    .map(|(p, href, label)| {
        let current = if *p == page { r#" aria-current="page""# } else { "" };
        format!(r#"<li><a href="{href}"{current}>{label}</a></li>"#)
    })
    .collect::<String>();
    let flash = match flash {
        None => String::new(),
        Some(Flash::Done(m)) => format!(r#"<div class="flash done" role="status">{}</div>"#, esc(m)),
        Some(Flash::Refused(m)) => format!(
            r#"<div class="flash refused" role="alert"><strong>Refused.</strong> <span class="message">{}</span></div>"#,
            esc(m)
        ),
    };
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · foureyes console</title>
<link rel="stylesheet" href="/static/console.css">
<script src="/static/console.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<div class="brand"><span class="logo" aria-hidden="true">◉◉</span> foureyes <span class="sub">console</span></div>
<div class="who">Signed in as <strong>{user}</strong> with your kubeconfig</div>
<nav aria-label="Console"><ul>{nav}</ul></nav>
</header>
<main id="main" tabindex="-1">
{flash}
{body}
</main>
<footer>Every action goes to the API server as {user}, which decides exactly as it does for kubectl.</footer>
</body>
</html>
"##,
        title = esc(title),
        user = esc(user),
    )
}

/// A hidden CSRF field.
fn csrf_field(csrf: &str) -> String {
    format!(r#"<input type="hidden" name="csrf" value="{}">"#, esc(csrf))
}

/// A stable HTML id from parts.
fn dom_id(prefix: &str, parts: &[&str]) -> String {
    let mut id = prefix.to_owned();
    for p in parts {
        id.push('-');
        id.extend(p.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }));
    }
    id
}

/// The list of requests the user can approve, with the vote forms (the
/// part the live updates replace).
pub fn inbox_list(rows: &[(RequestRow, String)], csrf: &str, now: DateTime<Utc>) -> String {
    if rows.is_empty() {
        return r#"<p class="empty">Nothing to approve. New requests appear here as they arrive.</p>"#.into();
    }
    let mut out = String::new();
    for (r, namespace) in rows {
        let id = dom_id("rr", &[namespace, &r.name]);
        let grants = match (&r.grants, r.role.contains('/')) {
            (Some(g), _) => esc(g),
            (None, false) => esc(WORKSPACE_ROLE_GRANTS),
            (None, true) => "not known yet: the operator has not read the role's ClusterRole".into(),
        };
        let timeout = match r.pending_until {
            Some(t) => format!("{} ({} left)", time(t), countdown(t, now)),
            None => "not set yet".into(),
        };
        out.push_str(&format!(
            r#"<article class="card request" id="{id}" aria-labelledby="{id}-h">
<h2 id="{id}-h"><span class="subject">{subject}</span> asks for <span class="role">{role}</span> <span class="in">in {workspace}</span></h2>
<dl class="facts">
<dt>Grants</dt><dd class="grants">{grants}</dd>
<dt>Justification</dt><dd class="justification">{justification}</dd>
<dt>For</dt><dd>{duration}</dd>
<dt>Requested by</dt><dd>{requester}</dd>
<dt>Votes</dt><dd class="votes">{votes}</dd>
<dt>Times out</dt><dd>{timeout}</dd>
<dt>Request</dt><dd><code>{name}</code></dd>
</dl>
<form method="post" action="/vote" class="vote">
{csrf}<input type="hidden" name="namespace" value="{ns}"><input type="hidden" name="name" value="{name}">
<label for="{id}-c">Comment <span class="hint">(recorded with your vote)</span></label>
<input type="text" id="{id}-c" name="comment" maxlength="1024" autocomplete="off">
<div class="buttons">
<button type="submit" name="decision" value="approve" class="approve">Approve</button>
<button type="submit" name="decision" value="deny" class="deny">Deny</button>
</div>
</form>
</article>
"#,
            subject = esc(&r.subject),
            role = esc(&r.role),
            workspace = esc(&r.workspace),
            justification = esc(&r.justification),
            duration = esc(&r.duration),
            requester = esc(&r.requester),
            votes = esc(&r.approvals),
            name = esc(&r.name),
            ns = esc(namespace),
            csrf = csrf_field(csrf),
        ));
    }
    out
}

/// The user's own pending requests, after the inbox.
pub fn my_requests(rows: &[RequestRow]) -> String {
    if rows.is_empty() {
        return r#"<p class="empty">You have no pending requests.</p>"#.into();
    }
    let items: String = rows
        .iter()
        .map(|r| {
            format!(
                r#"<li><span class="role">{}</span> for {} in {} <span class="votes">votes {}</span> <code>{}</code></li>"#,
                esc(&r.role),
                esc(&r.subject),
                esc(&r.workspace),
                esc(&r.approvals),
                esc(&r.name)
            )
        })
        .collect();
    format!(r#"<ul class="plain">{items}</ul>"#)
}

/// The inbox page's body.
pub fn inbox(list: &str, mine: &str) -> String {
    format!(
        r#"<h1>Inbox</h1>
<p class="lead">Requests you can approve, newest state from the API server. <span class="live" data-live-status hidden>Live</span>
<noscript>Live updates need JavaScript: <a href="/">reload</a> to refresh.</noscript></p>
<section id="inbox" aria-live="polite" aria-label="Requests you can approve" data-live="/fragment/inbox" data-on="requests">
{list}
</section>
<h2 class="section">Your pending requests</h2>
<section id="mine" aria-live="polite" data-live="/fragment/mine" data-on="requests">
{mine}
</section>
"#
    )
}

/// A role the request form offers: the value sent, and its label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleChoice {
    /// `<workspace> <role label>`.
    pub value: String,
    /// `manager in payments`, `checkout/user in payments`.
    pub label: String,
}

/// The roles of one workspace, for the request form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceChoices {
    /// The workspace.
    pub workspace: String,
    /// Its cap on durations (`maxDuration`), if it could be read.
    pub max_duration: Option<String>,
    /// Its roles.
    pub roles: Vec<RoleChoice>,
}

/// The request form's body.
pub fn request_form(choices: &[WorkspaceChoices], csrf: &str) -> String {
    if choices.is_empty() {
        return "<h1>Request access</h1>\n<p class=\"empty\">No workspace you can read. Ask a partner to add you, \
                or start the console with -w WORKSPACE.</p>"
            .into();
    }
    let groups: String = choices
        .iter()
        .map(|w| {
            let label = match &w.max_duration {
                Some(m) => format!("{} (at most {m})", w.workspace),
                None => w.workspace.clone(),
            };
            let options: String = w
                .roles
                .iter()
                .map(|r| format!(r#"<option value="{}">{}</option>"#, esc(&r.value), esc(&r.label)))
                .collect();
            format!(r#"<optgroup label="{}">{options}</optgroup>"#, esc(&label))
        })
        .collect();
    let caps: Vec<String> = choices
        .iter()
        .filter_map(|w| w.max_duration.as_ref().map(|m| format!("{} {m}", w.workspace)))
        .collect();
    let caps = if caps.is_empty() {
        String::new()
    } else {
        format!(" The workspace caps it: {}.", esc(&caps.join(", ")))
    };
    format!(
        r#"<h1>Request access</h1>
<p class="lead">Ask for a role. The workspace's managers approve it; it then expires by itself.</p>
<form method="post" action="/request" class="card form">
{csrf}
<label for="role">Workspace and role</label>
<select id="role" name="role" required>{groups}</select>
<label for="duration">Duration <span class="hint">(a Go duration: 30m, 4h, 1h30m)</span></label>
<input type="text" id="duration" name="duration" value="1h" required pattern="[0-9hmsµun.]+" aria-describedby="duration-help" autocomplete="off">
<p id="duration-help" class="hint">Counted from the grant.{caps}</p>
<label for="justification">Justification <span class="hint">(an incident or ticket reference)</span></label>
<textarea id="justification" name="justification" required maxlength="1024" rows="3"></textarea>
<label for="subject">For someone else <span class="hint">(a user name; leave empty for yourself)</span></label>
<input type="text" id="subject" name="subject" autocomplete="off">
<div class="buttons"><button type="submit" class="primary">Request</button></div>
</form>
"#,
        csrf = csrf_field(csrf)
    )
}

/// Active grants, with a countdown and, where the user manages the
/// workspace, a Revoke form. `rows`: the grant, its namespace, whether it
/// is the user's own, whether the user may revoke it.
pub fn active_list(rows: &[(GrantRow, String, bool)], csrf: &str, now: DateTime<Utc>, empty: &str) -> String {
    if rows.is_empty() {
        return format!(r#"<p class="empty">{}</p>"#, esc(empty));
    }
    let mut out = String::new();
    for (g, namespace, revocable) in rows {
        let id = dom_id("rb", &[namespace, &g.name]);
        let expiry = match g.expires_at {
            Some(t) => format!("{} left, until {}", countdown(t, now), time(t)),
            None => "no expiry recorded yet".into(),
        };
        let revoke = if *revocable {
            format!(
                r#"<form method="post" action="/revoke" class="revoke">
{csrf}<input type="hidden" name="namespace" value="{ns}"><input type="hidden" name="name" value="{name}">
<label for="{id}-r">Reason</label>
<input type="text" id="{id}-r" name="reason" required maxlength="1024" autocomplete="off">
<button type="submit" class="deny">Revoke</button>
</form>"#,
                csrf = csrf_field(csrf),
                ns = esc(namespace),
                name = esc(&g.name),
            )
        } else {
            String::new()
        };
        out.push_str(&format!(
            r#"<article class="card grant" id="{id}">
<h3><span class="subject">{subject}</span> holds <span class="role">{role}</span> <span class="in">in {workspace}</span></h3>
<p class="expiry">{expiry}</p>
<p class="meta">Binding <code>{name}</code></p>
{revoke}
</article>
"#,
            subject = esc(&g.subject),
            role = esc(&g.role),
            workspace = esc(&g.workspace),
            name = esc(&g.name),
        ));
    }
    out
}

/// The active-access page's body.
pub fn active(mine: &str, managed: Option<&str>) -> String {
    let managed = match managed {
        Some(list) => format!(
            r#"<h2 class="section">In the workspaces you manage</h2>
<section id="managed" aria-live="polite" data-live="/fragment/managed" data-on="bindings">
{list}
</section>"#
        ),
        None => String::new(),
    };
    format!(
        r#"<h1>Active access</h1>
<h2 class="section">Yours</h2>
<section id="own" aria-live="polite" data-live="/fragment/own" data-on="bindings">
{mine}
</section>
{managed}
"#
    )
}

/// The history page's chooser when no workspace is chosen.
pub fn history_index(workspaces: &[String]) -> String {
    let items: String = workspaces
        .iter()
        .map(|w| format!(r#"<li><a href="/history?workspace={0}">{0}</a></li>"#, esc(w)))
        .collect();
    let list = if workspaces.is_empty() {
        r#"<p class="empty">No workspace you can read.</p>"#.to_owned()
    } else {
        format!(r#"<ul class="plain">{items}</ul>"#)
    };
    format!("<h1>History</h1>\n<p class=\"lead\">Choose a workspace.</p>\n{list}\n")
}

/// The filters of the history page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    /// Only entries whose actor or subject is this person.
    pub person: Option<String>,
    /// Only entries with this action.
    pub action: Option<String>,
}

impl HistoryFilter {
    /// Whether an entry passes.
    pub fn keeps(&self, e: &crate::audit::history::Entry) -> bool {
        let person = self.person.as_deref().is_none_or(|p| {
            e.actor == p
                || e.subject
                    .as_deref()
                    .is_some_and(|s| s == p || s.split_once(' ').is_some_and(|(_, name)| name == p))
        });
        let action = self.action.as_deref().is_none_or(|a| e.action == a);
        person && action
    }
}

/// A workspace's chains, newest entries first, each with its verification badge.
pub fn history(workspace: &str, chains: &[(ChainEntries, Verification)], filter: &HistoryFilter) -> String {
    let mut actions: Vec<&str> = chains
        .iter()
        .flat_map(|(c, _)| c.entries.iter().map(|e| e.action.as_str()))
        .collect();
    actions.sort_unstable();
    actions.dedup();
    let options: String = std::iter::once(("", "any action"))
        .chain(actions.iter().map(|a| (*a, *a)))
        .map(|(v, l)| {
            let sel = if filter.action.as_deref() == Some(v) || (v.is_empty() && filter.action.is_none()) {
                " selected"
            } else {
                ""
            };
            format!(r#"<option value="{}"{sel}>{}</option>"#, esc(v), esc(l))
        })
        .collect();
    let mut out = format!(
        r#"<h1>History of {ws}</h1>
<form method="get" action="/history" class="filters card">
<input type="hidden" name="workspace" value="{ws}">
<div><label for="person">Person <span class="hint">(actor or subject)</span></label>
<input type="text" id="person" name="person" value="{person}" autocomplete="off"></div>
<div><label for="action">Action</label>
<select id="action" name="action">{options}</select></div>
<div class="buttons"><button type="submit">Filter</button> <a href="/history?workspace={ws}">Clear</a></div>
</form>
"#,
        ws = esc(workspace),
        person = esc(filter.person.as_deref().unwrap_or("")),
    );
    for (c, v) in chains {
        let (intact, text) = summary(v);
        let id = dom_id("chain", &[&c.chain]);
        let kept: Vec<_> = c.entries.iter().rev().filter(|e| filter.keeps(e)).collect();
        out.push_str(&format!(
            r#"<section class="chain" id="{id}" aria-labelledby="{id}-h">
<h2 id="{id}-h">Chain <code>{chain}</code></h2>
<p class="badge {class}" role="status"><span class="sign" aria-hidden="true">{sign}</span> {text}</p>
"#,
            chain = esc(&c.chain),
            class = if intact { "intact" } else { "broken" },
            sign = if intact { "✓" } else { "✗" },
            text = esc(&text),
        ));
        if kept.is_empty() {
            out.push_str(r#"<p class="empty">No entries match.</p>"#);
        } else {
            out.push_str(
                r#"<div class="scroll"><table class="entries"><caption class="visually-hidden">Entries, newest first</caption>
<thead><tr><th scope="col">#</th><th scope="col">Time</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Object</th><th scope="col">Subject</th><th scope="col">Role</th><th scope="col">Details</th></tr></thead><tbody>"#,
            );
            for e in kept {
                out.push_str(&format!(
                    r##"<tr><td data-label="#">{}</td><td data-label="Time">{}</td><td data-label="Actor">{}</td><td data-label="Action"><span class="action">{}</span></td><td data-label="Object">{}/{}</td><td data-label="Subject">{}</td><td data-label="Role">{}</td><td data-label="Details">{}</td></tr>"##,
                    e.seq,
                    time(e.time),
                    esc(&e.actor),
                    esc(&e.action),
                    esc(&e.object.kind),
                    esc(&e.object.name),
                    esc(e.subject.as_deref().unwrap_or("")),
                    esc(e.role.as_deref().unwrap_or("")),
                    esc(&e.details),
                ));
            }
            out.push_str("</tbody></table></div>");
        }
        out.push_str("</section>\n");
    }
    out
}

/// A page for a refused request (before any handler ran).
pub fn refusal(message: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Refused · foureyes console</title><link rel="stylesheet" href="/static/console.css"></head>
<body><main id="main"><h1>foureyes console</h1><div class="flash refused" role="alert">{}</div></main></body></html>
"#,
        esc(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::history::{Entry, EntryObject};
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    fn row() -> RequestRow {
        RequestRow {
            workspace: "pay".into(),
            name: "dave-app-user-x1".into(),
            subject: "user dave".into(),
            role: "app/user".into(),
            duration: "2h".into(),
            requester: "alice".into(),
            approvals: "1/2".into(),
            phase: "Pending".into(),
            justification: "INC-1 <script>alert(1)</script>".into(),
            grants: Some("edit: most namespaced objects".into()),
            pending_until: Some(now() + chrono::Duration::minutes(90)),
        }
    }

    #[test]
    fn cluster_text_is_escaped() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let html = inbox_list(&[(row(), "ws-pay".into())], "tok", now());
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("INC-1 &lt;script&gt;"), "{html}");
        let page = layout("Inbox", Page::Inbox, "<bob>", None, "");
        assert!(page.contains("Signed in as <strong>&lt;bob&gt;</strong>"), "{page}");
    }

    #[test]
    fn the_inbox_shows_the_facts_and_a_form_that_works_without_script() {
        let html = inbox_list(&[(row(), "ws-pay".into())], "tok", now());
        for needle in [
            r#"<span class="subject">user dave</span> asks for <span class="role">app/user</span>"#,
            r#"<dd class="grants">edit: most namespaced objects</dd>"#,
            r#"<dd class="votes">1/2</dd>"#,
            r#"data-countdown="2026-01-01T13:30:00Z">1h30m</span>"#,
            r#"title="2026-01-01 13:30:00 UTC""#,
            r#"<form method="post" action="/vote""#,
            r#"<input type="hidden" name="csrf" value="tok">"#,
            r#"<input type="hidden" name="namespace" value="ws-pay">"#,
            r#"<label for="rr-ws-pay-dave-app-user-x1-c">"#,
            r#"value="approve" class="approve">Approve</button>"#,
            r#"value="deny" class="deny">Deny</button>"#,
        ] {
            assert!(html.contains(needle), "{needle} not in {html}");
        }
        let mut ws_role = row();
        ws_role.role = "manager".into();
        ws_role.grants = None;
        ws_role.pending_until = None;
        let html = inbox_list(&[(ws_role, "ws-pay".into())], "tok", now());
        assert!(
            html.contains(&esc(WORKSPACE_ROLE_GRANTS)) && html.contains("not set yet"),
            "{html}"
        );
        assert!(inbox_list(&[], "tok", now()).contains("Nothing to approve"));
    }

    #[test]
    fn the_layout_marks_the_current_page_and_shows_refusals_as_alerts() {
        let page = layout(
            "Inbox",
            Page::Active,
            "bob",
            Some(&Flash::Refused("forbidden: User \"bob\" cannot patch".into())),
            "<p>x</p>",
        );
        assert!(page.contains(r#"<a href="/active" aria-current="page">"#), "{page}");
        assert!(page.contains(r#"role="alert""#) && page.contains("forbidden: User &quot;bob&quot; cannot patch"));
        assert!(page.contains(r#"<meta name="viewport""#) && page.contains(r#"<html lang="en">"#));
    }

    #[test]
    fn history_is_newest_first_filtered_and_badged() {
        let entry = |seq: u64, actor: &str, action: &str, subject: &str| Entry {
            seq,
            time: now() + chrono::Duration::minutes(seq as i64),
            actor: actor.into(),
            action: action.into(),
            object: EntryObject {
                kind: "RoleRequest".into(),
                name: "r1".into(),
                uid: "u".into(),
            },
            subject: Some(subject.into()),
            role: Some("app/user".into()),
            details: "d".into(),
            key: String::new(),
            prev: String::new(),
            hash: String::new(),
        };
        let chain = ChainEntries {
            chain: "workspace".into(),
            entries: vec![
                entry(1, "alice", "Requested", "user dave"),
                entry(2, "bob", "Approved", "user dave"),
                entry(3, "carol", "Denied", "user erin"),
            ],
        };
        let v = Verification {
            chain: "workspace".into(),
            intact: true,
            entries: 3,
            head: Some(super::super::super::history::Head {
                seq: 3,
                hash: "h".into(),
                chunk: "c".into(),
            }),
            status_head: super::super::super::history::StatusHead::Matches { seq: 3 },
            broken_chunk: None,
            broken_seq: None,
            problem: None,
        };
        let all = history("pay", &[(chain.clone(), v.clone())], &HistoryFilter::default());
        assert!(all.contains("intact, head #3 matches the workspace status"), "{all}");
        let (p3, p1) = (all.find(">3</td>").unwrap(), all.find(">1</td>").unwrap());
        assert!(p3 < p1, "newest first");
        let dave = HistoryFilter {
            person: Some("dave".into()),
            action: None,
        };
        let html = history("pay", &[(chain.clone(), v.clone())], &dave);
        assert!(html.contains(">2</td>") && !html.contains(">3</td>"), "{html}");
        let bob_denied = HistoryFilter {
            person: Some("bob".into()),
            action: Some("Denied".into()),
        };
        let html = history("pay", &[(chain, v.clone())], &bob_denied);
        assert!(html.contains("No entries match"), "{html}");
        assert!(html.contains(r#"<option value="Denied" selected>"#), "{html}");
        let mut broken = v;
        broken.intact = false;
        broken.broken_chunk = Some("foureyes-history-workspace-000000".into());
        broken.broken_seq = Some(2);
        broken.problem = Some("the entry was edited".into());
        let html = history(
            "pay",
            &[(
                ChainEntries {
                    chain: "workspace".into(),
                    entries: vec![],
                },
                broken,
            )],
            &HistoryFilter::default(),
        );
        assert!(
            html.contains(r#"class="badge broken""#) && html.contains("BROKEN at entry #2"),
            "{html}"
        );
    }
}
