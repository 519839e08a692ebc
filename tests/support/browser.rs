//! A headless Chromium for the console's tests, driven over WebDriver
//! (W3C) through chromedriver: Debian's `chromium` and `chromium-driver`
//! packages (`scripts/test.sh` installs them when missing). A small client
//! over the HTTP client already in the tree; each call is one JSON request.
//!
//! Chromium runs with the time zone `Asia/Kolkata` (UTC+5:30), so that a
//! test can tell local times from UTC.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// The browser's time zone in the tests.
pub const TIME_ZONE: &str = "Asia/Kolkata";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// An HTTP/1 client for JSON and for the console's own tests.
pub fn http() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A response: status, headers, body.
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body as text.
    pub body: String,
}

/// Sends one request; `headers` are added as given (a `Host` among them
/// replaces the one derived from the URL).
pub async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Option<String>) -> Reply {
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("a request");
    let resp = http().request(req).await.expect("an HTTP answer");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("a body").to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// The chromedriver of this test binary, started on first use.
struct Driver {
    child: Child,
    base: String,
}

static DRIVER: OnceLock<Result<Driver, String>> = OnceLock::new();

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn driver() -> &'static str {
    let d = DRIVER.get_or_init(|| {
        for path in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(path).exists() {
                return Err(format!(
                    "{path} is missing: install Debian's chromium and chromium-driver packages \
                     (apt-get install chromium chromium-driver; scripts/test.sh does it)"
                ));
            }
        }
        let port = free_port();
        // chromedriver and the browsers it starts run in a process group of
        // their own, which a watchdog ends once this test binary is gone.
        let watchdog = format!(
            "setsid {CHROMEDRIVER} --port={port} & d=$!; \
             while kill -0 {} 2>/dev/null; do sleep 1; done; \
             kill -- -$d 2>/dev/null || kill $d 2>/dev/null",
            std::process::id()
        );
        let child = Command::new("bash")
            .args(["-c", &watchdog])
            .env("TZ", TIME_ZONE)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {CHROMEDRIVER} (with bash): {e}"))?;
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                drop(s);
                break;
            }
            if Instant::now() > deadline {
                return Err("chromedriver did not listen within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Driver { child, base })
    });
    match d {
        Ok(d) => &d.base,
        Err(e) => panic!("no browser: {e}"),
    }
}

/// One browser window (a WebDriver session).
pub struct Browser {
    base: String,
}

impl Browser {
    /// A new headless window of `width` x `height` CSS pixels.
    pub async fn new(width: u32, height: u32) -> Self {
        let root = driver().to_owned();
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--hide-scrollbars", "--force-device-scale-factor=1", "--lang=en-US",
                         format!("--window-size={width},{height}")],
            },
        }}});
        let v = call("POST", &format!("{root}/session"), Some(caps))
            .await
            .unwrap_or_else(|e| panic!("starting Chromium: {e}"));
        let id = v["sessionId"].as_str().expect("a session id").to_owned();
        Browser {
            base: format!("{root}/session/{id}"),
        }
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        call(method, &format!("{}{path}", self.base), body).await
    }

    /// Opens a URL and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })))
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.cmd("GET", "/url", None).await.unwrap()["value"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs a script; returns its value.
    pub async fn exec(&self, script: &str, args: Value) -> Value {
        self.cmd("POST", "/execute/sync", Some(json!({ "script": script, "args": args })))
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))["value"]
            .clone()
    }

    /// The element matching a CSS selector, if any.
    pub async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .cmd(
                "POST",
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await
            .ok()?;
        v["value"][ELEMENT].as_str().map(str::to_owned)
    }

    async fn must(&self, css: &str) -> String {
        match self.find(css).await {
            Some(e) => e,
            None => panic!("no element {css} on {}:\n{}", self.url().await, self.source().await),
        }
    }

    /// Waits until an element matches.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.find(css).await {
                return e;
            }
            if Instant::now() > deadline {
                panic!(
                    "no element {css} within {timeout:?} on {}:\n{}",
                    self.url().await,
                    self.source().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until a script returns true.
    pub async fn wait_until(&self, what: &str, script: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.exec(script, json!([])).await == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}:\n{}", self.text("body").await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the element matching a CSS selector (found again if a live
    /// update replaced it in between).
    pub async fn click(&self, css: &str) {
        for attempt in 0.. {
            let e = self.must(css).await;
            match self.cmd("POST", &format!("/element/{e}/click"), Some(json!({}))).await {
                Ok(_) => return,
                Err(err) if transient(&err) && attempt < 30 => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => panic!("clicking {css}: {err}"),
            }
        }
    }

    /// Types into the element matching a CSS selector (after clearing it).
    pub async fn type_into(&self, css: &str, text: &str) {
        for attempt in 0.. {
            let e = self.must(css).await;
            let _ = self.cmd("POST", &format!("/element/{e}/clear"), Some(json!({}))).await;
            match self
                .cmd("POST", &format!("/element/{e}/value"), Some(json!({ "text": text })))
                .await
            {
                Ok(_) => return,
                Err(err) if transient(&err) && attempt < 30 => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => panic!("typing into {css}: {err}"),
            }
        }
    }

    /// Chooses the option with this value in a select.
    pub async fn select(&self, css: &str, value: &str) {
        let found = self
            .exec(
                "const s = document.querySelector(arguments[0]); if (!s) return false; \
                 const o = Array.from(s.options).find(o => o.value === arguments[1]); if (!o) return false; \
                 s.value = o.value; return true;",
                json!([css, value]),
            )
            .await;
        assert_eq!(found, json!(true), "no option {value:?} in {css}");
    }

    /// The visible text of the first element matching a CSS selector ("" if none).
    pub async fn text(&self, css: &str) -> String {
        let Some(e) = self.find(css).await else {
            return String::new();
        };
        self.cmd("GET", &format!("/element/{e}/text"), None)
            .await
            .map(|v| v["value"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    }

    /// The page's HTML as the browser holds it now.
    pub async fn source(&self) -> String {
        match self.cmd("GET", "/source", None).await {
            Ok(v) => v["value"].as_str().unwrap_or_default().to_owned(),
            Err(e) => format!("(no page source: {e})"),
        }
    }

    /// Resizes the window.
    pub async fn resize(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await
        .unwrap_or_else(|e| panic!("resizing: {e}"));
    }

    /// Saves a screenshot of the whole page (the window grows to fit it)
    /// under `target/console-screenshots/<name>.png`; returns the path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let size = self
            .exec(
                "return [window.outerWidth, document.documentElement.scrollHeight + (window.outerHeight - window.innerHeight)];",
                json!([]),
            )
            .await;
        let (w, h) = (size[0].as_u64().unwrap_or(1280), size[1].as_u64().unwrap_or(900));
        self.resize(w as u32, h.min(4000) as u32).await;
        let v = self.cmd("GET", "/screenshot", None).await.expect("a screenshot");
        let png = base64::engine::general_purpose::STANDARD
            .decode(v["value"].as_str().unwrap_or_default())
            .expect("a base64 PNG");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let dir = super::repo().join("target/console-screenshots");
        std::fs::create_dir_all(&dir).expect("the screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("writing the screenshot");
        eprintln!("screenshot {}", path.display());
        path
    }

    /// Closes the window.
    pub async fn close(self) {
        let _ = self.cmd("DELETE", "", None).await;
    }
}

async fn call(method: &str, url: &str, body: Option<Value>) -> Result<Value, String> {
    let body = body.map(|b| b.to_string());
    let headers: &[(&str, &str)] = if body.is_some() {
        &[("content-type", "application/json")]
    } else {
        &[]
    };
    let r = send(method, url, headers, body).await;
    let v: Value = serde_json::from_str(&r.body).map_err(|e| format!("{e}: {}", r.body))?;
    if r.status >= 400 {
        return Err(format!(
            "{} {}",
            v["value"]["error"].as_str().unwrap_or("error"),
            v["value"]["message"].as_str().unwrap_or("")
        ));
    }
    Ok(if v.get("sessionId").is_some() && v.get("value").is_none() {
        v
    } else if v["value"].get("sessionId").is_some() {
        v["value"].clone()
    } else {
        v
    })
}

/// An element the page is re-rendering (the live inbox replaces its cards
/// when an update arrives): gone from the document, or not yet laid out.
/// Trying again finds the new one; one that stays so fails after 3 s.
fn transient(err: &str) -> bool {
    err.contains("stale") || err.contains("not interactable")
}
