//! The web console (`kubectl access console`) on a real API server with the
//! operator running: bob's console, driven in headless Chromium, approves
//! and denies alice's requests by clicking, files a request, revokes access
//! and reads the history; and the console's own defences (the one-time
//! token, the session cookie, Host and Origin, the CSRF token, POST-only
//! actions) refuse what they should, while the same action with them passes.
//!
//! Screenshots of each page are written under `target/console-screenshots/`.
//! With `FOUREYES_SCREENSHOTS_TO_DOCS=1`, the inbox and history screenshots
//! are also copied to `docs/images/`, the README's images.

mod support;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use foureyes::api::{Decision, RequestPhase, RoleRequest, Workspace};
use kube::api::{Api, PostParams};
use serde_json::json;
use support::browser::{Browser, send};
use support::world::{more_managers, phase, setup, wait_request};
use support::{TestEnv, can, client, eventually, plane};

/// A console started as an identity; stopped when dropped.
struct Console {
    child: Child,
    /// The printed one-time link.
    url: String,
    /// `http://127.0.0.1:PORT`.
    base: String,
    port: u16,
}

impl Console {
    /// `kubectl access console -w WORKSPACE` as `identity`, on a free port.
    fn start(identity: &str, workspace: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-access"))
            .args(["console", "-w", workspace])
            .env("KUBECONFIG", plane().kubeconfig(identity))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run kubectl-access console");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("console: {line}");
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.trim().starts_with("http://") => break line.trim().to_owned(),
                Ok(_) => continue,
                Err(_) => panic!("the console printed no link within 30 s"),
            }
        };
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        let rest = &url["http://127.0.0.1:".len()..];
        let port: u16 = rest[..rest.find('/').unwrap()].parse().unwrap();
        Console {
            child,
            base: format!("http://127.0.0.1:{port}"),
            url,
            port,
        }
    }

    fn token(&self) -> &str {
        self.url.split("token=").nth(1).unwrap()
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Files a request as `requester` for `subject` (a project role of `app`).
async fn request(env: &TestEnv, requester: &str, subject: &str, role: &str, why: &str) -> String {
    let name = format!("{subject}-{role}-{}", std::process::id() % 10_000);
    let r: RoleRequest = serde_json::from_value(json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
        "metadata": { "name": name, "namespace": env.ns },
        "spec": { "subject": { "kind": "User", "name": subject }, "project": "app", "projectRole": role,
                  "duration": "1h", "justification": why, "requester": requester },
    }))
    .unwrap();
    env.api::<RoleRequest>(requester)
        .await
        .create(&PostParams::default(), &r)
        .await
        .expect("create request");
    name
}

/// Copies a screenshot to `docs/images/` when asked to (README images).
fn to_docs(path: &std::path::Path, name: &str) {
    if std::env::var("FOUREYES_SCREENSHOTS_TO_DOCS").as_deref() == Ok("1") {
        let dir = support::repo().join("docs/images");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(path, dir.join(name)).unwrap();
    }
}

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn bob_approves_and_denies_alices_requests_by_clicking() {
    let env = TestEnv::new("con-vote").await;
    let tenant = setup(&env, 1, 2).await;
    more_managers(&env, &["bob", "carol"]).await;
    let dave_req = request(&env, "alice", "dave", "user", "INC-7 checkout is down, dave on call").await;
    let r = wait_request(&env, &dave_req, "counted", |r| {
        r.status.as_ref().is_some_and(|s| s.approvals.as_deref() == Some("1/2"))
    })
    .await;
    assert!(!can("dave", "create", "configmaps", &tenant).await);

    let console = Console::start("bob", &env.name);
    let b = Browser::new(1280, 900).await;
    b.goto(&console.url).await;
    assert_eq!(
        b.url().await,
        format!("{}/", console.base),
        "the token is gone from the address bar"
    );
    let dave_card = format!("#rr-{}-{}", env.ns, dave_req);
    b.wait_for(&dave_card, WAIT).await;
    let card = b.text(&dave_card).await;
    for needle in ["user dave", "app/user", "INC-7 checkout is down", "1/2", "alice"] {
        assert!(card.contains(needle), "{needle:?} not in the card:\n{card}");
    }
    if let Some(p) = r.status.as_ref().and_then(|s| s.permissions.as_ref()) {
        assert!(
            card.contains(&p.summary),
            "the permission summary {:?} in\n{card}",
            p.summary
        );
    }

    // Live: a new request appears without a reload.
    b.exec("window.__sameDocument = 1; return true;", json!([])).await;
    b.wait_until(
        "the live connection",
        "return !document.querySelector('[data-live-status]').hidden;",
        WAIT,
    )
    .await;
    let erin_req = request(&env, "alice", "erin", "reader", "INC-7 erin reads the logs").await;
    let erin_card = format!("#rr-{}-{}", env.ns, erin_req);
    b.wait_for(&erin_card, WAIT).await;
    assert_eq!(
        b.exec("return window.__sameDocument === 1;", json!([])).await,
        json!(true),
        "updated in place, not reloaded"
    );
    // Times in the viewer's zone (the browser runs in UTC+5:30), UTC on hover.
    b.wait_until(
        "the operator's timeout on erin's request",
        &format!("return document.querySelector('{erin_card} time') !== null;"),
        WAIT,
    )
    .await;
    let (local, title) = {
        let v = b
            .exec(
                &format!("const t = document.querySelector('{dave_card} time'); return [t.textContent, t.title];"),
                json!([]),
            )
            .await;
        (v[0].as_str().unwrap().to_owned(), v[1].as_str().unwrap().to_owned())
    };
    assert!(local.contains("GMT+5:30"), "local time {local:?}");
    assert!(title.ends_with(" UTC") && !title.contains("GMT"), "tooltip {title:?}");
    let shot = b.screenshot("inbox").await;
    to_docs(&shot, "console-inbox.png");

    // Approve dave's request by clicking; the operator grants it.
    b.type_into(&format!("{dave_card} input[name=comment]"), "looks right")
        .await;
    b.click(&format!("{dave_card} button.approve")).await;
    b.wait_for(".flash.done", WAIT).await;
    let flash = b.text(".flash.done").await;
    assert!(flash.contains(&format!("You approved request {dave_req}")), "{flash}");
    let granted = wait_request(&env, &dave_req, "granted", |r| phase(r) == Some(RequestPhase::Granted)).await;
    let vote = granted
        .spec
        .approvals
        .iter()
        .find(|a| a.user == "bob")
        .expect("bob's vote");
    assert_eq!(vote.decision, Decision::Approve);
    assert_eq!(vote.comment.as_deref(), Some("looks right"));
    eventually("dave's access", WAIT, || async {
        can("dave", "create", "configmaps", &tenant).await.then_some(())
    })
    .await;

    // Deny erin's.
    b.wait_for(&erin_card, WAIT).await;
    b.type_into(&format!("{erin_card} input[name=comment]"), "not needed for INC-7")
        .await;
    b.click(&format!("{erin_card} button.deny")).await;
    b.wait_for(".flash.done", WAIT).await;
    assert!(b.text(".flash.done").await.contains("You denied request"));
    let denied = wait_request(&env, &erin_req, "denied", |r| phase(r) == Some(RequestPhase::Denied)).await;
    assert_eq!(denied.status.unwrap().denied_by.as_deref(), Some("bob"));
    assert!(!can("erin", "get", "pods", &tenant).await);
    assert!(b.find(&erin_card).await.is_none(), "a decided request leaves the inbox");

    // Live: another manager's vote decides a request, and it leaves bob's
    // inbox without a reload.
    let admin_req = request(&env, "alice", "erin", "admin", "INC-8 erin rotates the keys").await;
    let admin_card = format!("#rr-{}-{}", env.ns, admin_req);
    b.wait_for(&admin_card, WAIT).await;
    b.exec("window.__sameDocument = 2; return true;", json!([])).await;
    support::world::vote_as(&env, "carol", "carol", &admin_req, "Approve")
        .await
        .unwrap();
    b.wait_until(
        "carol's vote to reach bob's inbox",
        &format!("return document.querySelector('{admin_card}') === null;"),
        WAIT,
    )
    .await;
    assert_eq!(
        b.exec("return window.__sameDocument === 2;", json!([])).await,
        json!(true),
        "updated in place, not reloaded"
    );
    wait_request(&env, &admin_req, "granted", |r| phase(r) == Some(RequestPhase::Granted)).await;

    // A phone-sized screen: no sideways scrolling.
    let carol_req = request(
        &env,
        "alice",
        "carol",
        "reader",
        "INC-8 carol checks the payments queue",
    )
    .await;
    b.resize(390, 844).await;
    b.goto(&format!("{}/", console.base)).await;
    b.wait_for(&format!("#rr-{}-{}", env.ns, carol_req), WAIT).await;
    assert_eq!(
        b.exec(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            json!([])
        )
        .await,
        json!(true),
        "the inbox fits a phone's width"
    );
    b.screenshot("inbox-phone").await;
    b.close().await;
}

#[tokio::test]
async fn bob_requests_revokes_sees_a_refusal_and_reads_the_verified_history() {
    let env = TestEnv::new("con-flow").await;
    let tenant = setup(&env, 1, 1).await;
    more_managers(&env, &["bob"]).await;
    let console = Console::start("bob", &env.name);
    let b = Browser::new(1280, 900).await;
    b.goto(&console.url).await;

    // The request form: bob asks for dave; bob is a manager and not the
    // subject, so with a quorum of one it is granted at once.
    b.goto(&format!("{}/request", console.base)).await;
    b.select("#role", &format!("{} app/user", env.name)).await;
    b.type_into("#duration", "2h").await;
    b.type_into("#justification", "INC-9 dave restarts the payment workers")
        .await;
    b.type_into("#subject", "dave").await;
    b.screenshot("request").await;
    b.click("form.form button[type=submit]").await;
    b.wait_for(".flash.done", WAIT).await;
    let flash = b.text(".flash.done").await;
    assert!(flash.contains("Requested app/user for user dave"), "{flash}");
    let at = flash.find("(request ").expect("the request's name") + "(request ".len();
    let name = flash[at..at + flash[at..].find(')').unwrap()].to_owned();
    eventually("dave's access", WAIT, || async {
        can("dave", "create", "configmaps", &tenant).await.then_some(())
    })
    .await;

    // A refused action: the API server's own message, not a generic error.
    b.goto(&format!("{}/request", console.base)).await;
    b.select("#role", &format!("{} member", env.name)).await;
    b.type_into("#justification", "INC-9").await;
    b.type_into("#subject", "system:admin").await;
    b.click("form.form button[type=submit]").await;
    b.wait_for(".flash.refused", WAIT).await;
    let refusal = b.text(".flash.refused").await;
    assert!(
        refusal.contains("subject: system users (system:...) cannot be given roles, except service accounts"),
        "{refusal}"
    );
    b.screenshot("refused").await;

    // Active access: dave's grant with a live countdown, revoked with a reason.
    b.goto(&format!("{}/active", console.base)).await;
    let card = format!("#rb-{}-{name}", env.ns);
    b.wait_for(&format!("#managed {card}"), WAIT).await;
    let grant_text = b.text(&card).await;
    assert!(
        grant_text.contains("user dave") && grant_text.contains("app/user"),
        "{grant_text}"
    );
    let left = b.text(&format!("{card} .countdown")).await;
    assert!(left.starts_with("1h59m") || left == "2h", "{left}");
    b.exec(
        &format!("document.querySelector('{card} .countdown').textContent = 'stale'; return true;"),
        json!([]),
    )
    .await;
    b.wait_until(
        "the countdown to tick",
        &format!("return document.querySelector('{card} .countdown').textContent.startsWith('1h59m');"),
        Duration::from_secs(3),
    )
    .await;
    b.screenshot("active").await;
    b.type_into(&format!("{card} input[name=reason]"), "INC-9 resolved")
        .await;
    b.click(&format!("{card} button.deny")).await;
    b.wait_for(".flash.done", WAIT).await;
    assert!(b.text(".flash.done").await.contains("no longer holds app/user"));
    assert!(!can("dave", "create", "configmaps", &tenant).await, "access gone");

    // The history: newest first, with the verification badge.
    let ws = Api::<Workspace>::all(client("admin").await);
    let head = eventually("the workspace status's chain head", WAIT, || async {
        let w = ws.get(&env.name).await.ok()?;
        let h = w.status?.history.into_iter().find(|h| h.chain == "workspace")?;
        (h.sequence > 0).then_some(h.sequence)
    })
    .await;
    // The Workspace status mirrors each chain's head shortly after the entry.
    let history = format!("{}/history?workspace={}", console.base, env.name);
    let deadline = Instant::now() + WAIT;
    loop {
        b.goto(&history).await;
        let badges = b
            .exec(
                "return Array.from(document.querySelectorAll('.badge')).map(b => b.textContent).join('\\n');",
                json!([]),
            )
            .await;
        let badges = badges.as_str().unwrap_or_default().to_owned();
        if badges.lines().count() >= 2 && badges.lines().all(|l| l.contains("matches the workspace status")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the chains never matched the status:\n{badges}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let badge = b.text("#chain-workspace .badge").await;
    assert!(badge.contains("intact, head #"), "{badge}");
    let shown: i64 = badge
        .split("head #")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(shown >= head, "badge head {shown}, status head {head}");
    let rows = b
        .exec(
            "return Array.from(document.querySelectorAll('#chain-workspace tbody tr')).map(r => Number(r.cells[0].textContent));",
            json!([]),
        )
        .await;
    let seqs: Vec<i64> = rows.as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert_eq!(seqs.first().copied(), Some(shown), "newest first");
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
    let shot = b.screenshot("history").await;
    to_docs(&shot, "console-history.png");

    // Filtered by person.
    b.goto(&format!("{}/history?workspace={}&person=dave", console.base, env.name))
        .await;
    let filtered = b
        .exec(
            "return Array.from(document.querySelectorAll('tbody tr')).map(r => r.cells[2].textContent + '|' + r.cells[5].textContent);",
            json!([]),
        )
        .await;
    let filtered = filtered.as_array().unwrap();
    assert!(!filtered.is_empty());
    for row in filtered {
        assert!(row.as_str().unwrap().contains("dave"), "{row}");
    }
    b.close().await;
}

/// The value of the first `name="csrf"` field in a page.
fn csrf_in(page: &str) -> String {
    let at = page.find(r#"name="csrf" value=""#).expect("a CSRF field") + r#"name="csrf" value=""#.len();
    page[at..at + page[at..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn the_console_refuses_requests_without_its_token_cookie_host_origin_or_csrf_token() {
    let env = TestEnv::new("con-sec").await;
    setup(&env, 1, 2).await;
    more_managers(&env, &["bob"]).await;
    let req = request(&env, "alice", "dave", "user", "INC-10").await;
    let console = Console::start("bob", &env.name);
    let base = &console.base;
    let votes = || async {
        env.api::<RoleRequest>("admin")
            .await
            .get(&req)
            .await
            .unwrap()
            .spec
            .approvals
            .iter()
            .filter(|a| a.user == "bob")
            .count()
    };

    // No cookie: nothing but the refusal.
    let r = send("GET", &format!("{base}/"), &[], None).await;
    assert_eq!(r.status, 401);
    assert!(
        r.body.contains("open the link that kubectl access console printed"),
        "{}",
        r.body
    );
    assert!(!r.body.contains(&req), "no data without a session");
    assert_eq!(send("GET", &format!("{base}/events"), &[], None).await.status, 401);
    assert_eq!(
        send("GET", &format!("{base}/static/console.js"), &[], None)
            .await
            .status,
        401
    );

    // A wrong token, then the right one (once), then the right one again.
    let r = send("GET", &format!("{base}/login?token={}", "0".repeat(64)), &[], None).await;
    assert_eq!(r.status, 401);
    assert_eq!(send("GET", &format!("{base}/login"), &[], None).await.status, 401);
    // The right token from a foreign Host is refused before it is spent.
    let evil_host = format!("evil.example:{}", console.port);
    let r = send("GET", &console.url, &[("host", &evil_host)], None).await;
    assert_eq!(r.status, 421, "DNS rebinding: {}", r.body);
    let r = send("GET", &console.url, &[], None).await;
    assert_eq!(r.status, 303);
    let set_cookie = r.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.contains("; HttpOnly") && set_cookie.contains("; SameSite=Strict"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let r = send("GET", &format!("{base}/login?token={}", console.token()), &[], None).await;
    assert_eq!(r.status, 401, "the token works once");
    assert!(r.body.contains("used already"), "{}", r.body);

    // With the cookie: the page and its CSRF token; security headers.
    let r = send("GET", &format!("{base}/"), &[("cookie", &cookie)], None).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains(&req));
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(r.headers["x-frame-options"], "DENY");
    let csrf = csrf_in(&r.body);
    assert_eq!(csrf.len(), 64);

    // A foreign Host with the cookie (DNS rebinding) and a foreign Origin.
    let r = send(
        "GET",
        &format!("{base}/"),
        &[("cookie", &cookie), ("host", &evil_host)],
        None,
    )
    .await;
    assert_eq!(r.status, 421);
    let form = |token: &str| {
        format!(
            "csrf={token}&namespace={}&name={req}&decision=approve&comment=x",
            env.ns
        )
    };
    let form_type = ("content-type", "application/x-www-form-urlencoded");
    let r = send(
        "POST",
        &format!("{base}/vote"),
        &[("cookie", &cookie), ("origin", "http://evil.example"), form_type],
        Some(form(&csrf)),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = send(
        "POST",
        &format!("{base}/vote"),
        &[("cookie", &cookie), ("sec-fetch-site", "cross-site"), form_type],
        Some(form(&csrf)),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);

    // POSTs without the CSRF token, with a wrong one, and without the cookie.
    let no_token = format!("namespace={}&name={req}&decision=approve", env.ns);
    let r = send(
        "POST",
        &format!("{base}/vote"),
        &[("cookie", &cookie), form_type],
        Some(no_token),
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("security token"), "{}", r.body);
    let r = send(
        "POST",
        &format!("{base}/vote"),
        &[("cookie", &cookie), form_type],
        Some(form(&"f".repeat(64))),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = send("POST", &format!("{base}/vote"), &[form_type], Some(form(&csrf))).await;
    assert_eq!(r.status, 401);
    let r = send(
        "POST",
        &format!("{base}/vote"),
        &[("cookie", &cookie), ("content-type", "application/json")],
        Some(format!(r#"{{"csrf":"{csrf}"}}"#)),
    )
    .await;
    assert_eq!(r.status, 415);

    // GET on the routes that change something.
    for path in [
        format!("/vote?csrf={csrf}&namespace={}&name={req}&decision=approve", env.ns),
        format!("/revoke?csrf={csrf}&namespace={}&name=manager-alice&reason=x", env.ns),
    ] {
        let r = send("GET", &format!("{base}{path}"), &[("cookie", &cookie)], None).await;
        assert_eq!(r.status, 405, "GET {path}");
    }
    assert_eq!(votes().await, 0, "nothing above voted");
    let alice = env
        .api::<foureyes::api::RoleBinding>("admin")
        .await
        .get("manager-alice")
        .await
        .unwrap();
    assert!(alice.spec.revocation.is_none(), "nothing above revoked");

    // The same vote with everything in place passes, as bob.
    let r = send(
        "POST",
        &format!("{base}/vote"),
        &[("cookie", &cookie), ("origin", base), form_type],
        Some(form(&csrf)),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(votes().await, 1, "the vote went through, as bob");

    // Ctrl-C stops it at once, even with a page's event stream open.
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", console.port))
        .await
        .unwrap();
    {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let head = format!(
            "GET /events HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nCookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n",
            console.port
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut buf = [0u8; 256];
        let n = stream.read(&mut buf).await.unwrap();
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("text/event-stream"), "{answer}");
    }
    // It listens on 127.0.0.1 only.
    if let Some(ip) = outward_ip() {
        assert!(
            std::net::TcpStream::connect_timeout(&(ip, console.port).into(), Duration::from_secs(2)).is_err(),
            "the console answers on {ip}"
        );
    }
    let mut console = console;
    let pid = console.child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = console.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the console did not stop on Ctrl-C");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    drop(stream);
}

/// This machine's address on its default route, if it has one.
fn outward_ip() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}
