//! The console's session security: who may talk to it at all.
//!
//! The console listens on 127.0.0.1 only, but other programs on the machine
//! and web pages in the user's browser can reach that address too. So:
//!
//! - **A one-time login token.** The printed link carries 32 random bytes.
//!   The first request with it gets the session cookie (`HttpOnly`,
//!   `SameSite=Strict`, no expiry: it ends with the browser session and the
//!   console); the token is then spent, and any later use of it is refused.
//! - **Every request needs the session cookie**, compared in constant time.
//!   `SameSite=Strict` keeps it out of requests that other sites start.
//! - **Host and Origin are the console's own.** A request whose `Host` is not
//!   `127.0.0.1:PORT` or `localhost:PORT` is refused (DNS rebinding: a
//!   hostile name resolving to 127.0.0.1 makes the browser send that name);
//!   so is one whose `Origin` is present and not the console's, or that the
//!   browser marks as cross-site (`Sec-Fetch-Site`).
//! - **State changes are POSTs with a CSRF token** (a second random value,
//!   in every form). The routes that change something accept POST only; a
//!   GET on them is refused with 405 and changes nothing.
//!
//! Every response carries a Content-Security-Policy that allows only the
//! console's own style sheet and script, forbids framing, sends no referrer
//! to other sites, and is not cached.
//!
//! A known limit: browsers do not separate cookies by port, so another web
//! server on 127.0.0.1 that the browser visits would see the cookie. The
//! cookie's name carries the port, and it dies with the console.

use std::sync::Mutex;

/// Why a request is refused before any handler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The `Host` header is not the console's address.
    Host(String),
    /// The `Origin` is another site's, or the browser says the request is cross-site.
    Origin(String),
    /// No session cookie, or not this console's.
    NoSession,
    /// The login token is wrong.
    BadToken,
    /// The login token has been used already.
    SpentToken,
    /// A state-changing request without the right CSRF token.
    Csrf,
    /// A state-changing request that is not a form.
    NotAForm,
}

impl Refusal {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Host(_) => 421,
            Refusal::NoSession | Refusal::BadToken | Refusal::SpentToken => 401,
            Refusal::Origin(_) | Refusal::Csrf => 403,
            Refusal::NotAForm => 415,
        }
    }

    /// What happened and what to do, for the page.
    pub fn message(&self) -> String {
        match self {
            Refusal::Host(h) => format!(
                "refused: this console answers only to 127.0.0.1 and localhost on its own port, not to Host {h:?}"
            ),
            Refusal::Origin(o) => format!("refused: a request from another site ({o}) cannot use this console"),
            Refusal::NoSession => {
                "no console session: open the link that kubectl access console printed (it works once)".into()
            }
            Refusal::BadToken => {
                "this login link is not valid: use the link that kubectl access console printed".into()
            }
            Refusal::SpentToken => "this login link has been used already: a link opens one session; \
                 restart kubectl access console for a new one"
                .into(),
            Refusal::Csrf => {
                "refused: the form's security token is missing or wrong; reload the page and try again".into()
            }
            Refusal::NotAForm => "refused: actions are sent as HTML forms".into(),
        }
    }
}

/// The secrets of one console run and the checks that use them.
pub struct Guard {
    port: u16,
    login: Mutex<Option<String>>,
    session: String,
    csrf: String,
}

/// 32 random bytes from the thread's cryptographic generator, in hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes[..]);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets in time that depends only on their lengths.
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Guard {
    /// Fresh secrets for a console on `port`; returns the guard and the login token.
    pub fn new(port: u16) -> (Self, String) {
        let token = random_token();
        let guard = Guard {
            port,
            login: Mutex::new(Some(token.clone())),
            session: random_token(),
            csrf: random_token(),
        };
        (guard, token)
    }

    /// The link to print: the login route with the one-time token.
    pub fn login_url(&self, token: &str) -> String {
        format!("http://127.0.0.1:{}/login?token={token}", self.port)
    }

    /// The session cookie's name (with the port: two consoles do not mix).
    pub fn cookie_name(&self) -> String {
        format!("foureyes-console-{}", self.port)
    }

    /// The CSRF token that every form carries.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// The `Host` must be the console's own address.
    pub fn check_host(&self, host: Option<&str>) -> Result<(), Refusal> {
        let host = host.unwrap_or("");
        let ours = [format!("127.0.0.1:{}", self.port), format!("localhost:{}", self.port)];
        if ours.iter().any(|o| o.eq_ignore_ascii_case(host)) {
            Ok(())
        } else {
            Err(Refusal::Host(host.to_owned()))
        }
    }

    /// The `Origin`, when the browser sends one, must be the console's, and
    /// the browser must not call the request cross-site.
    pub fn check_origin(&self, origin: Option<&str>, fetch_site: Option<&str>) -> Result<(), Refusal> {
        if let Some(o) = origin {
            let ours = [
                format!("http://127.0.0.1:{}", self.port),
                format!("http://localhost:{}", self.port),
            ];
            if !ours.iter().any(|x| x.eq_ignore_ascii_case(o)) {
                return Err(Refusal::Origin(o.to_owned()));
            }
        }
        match fetch_site {
            Some(s @ ("cross-site" | "same-site")) => Err(Refusal::Origin(format!("Sec-Fetch-Site: {s}"))),
            _ => Ok(()),
        }
    }

    /// Whether the `Cookie` header holds this console's session.
    pub fn has_session(&self, cookie_header: Option<&str>) -> bool {
        let name = self.cookie_name();
        cookie_header
            .unwrap_or("")
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .any(|(k, v)| k == name && same(v, &self.session))
    }

    /// Spends the login token: the `Set-Cookie` value for the session, or why not.
    pub fn exchange(&self, token: &str) -> Result<String, Refusal> {
        let mut login = self.login.lock().unwrap_or_else(|p| p.into_inner());
        match login.as_deref() {
            Some(t) if same(t, token) => {
                *login = None;
                Ok(format!(
                    "{}={}; HttpOnly; SameSite=Strict; Path=/",
                    self.cookie_name(),
                    self.session
                ))
            }
            Some(_) => Err(Refusal::BadToken),
            None => Err(Refusal::SpentToken),
        }
    }

    /// Whether a form's `csrf` field is this console's token.
    pub fn check_csrf(&self, token: Option<&str>) -> Result<(), Refusal> {
        match token {
            Some(t) if same(t, &self.csrf) => Ok(()),
            _ => Err(Refusal::Csrf),
        }
    }
}

/// The headers every response carries.
pub const HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    // Not `no-referrer`: with it, browsers send `Origin: null` on the
    // console's own form posts.
    ("referrer-policy", "same-origin"),
    ("cache-control", "no-store"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_long() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &b));
        assert!(!same(&a, &a[..63]));
        assert!(!same("", "x"));
    }

    #[test]
    fn the_login_token_works_once_and_only_when_right() {
        let (g, token) = Guard::new(8123);
        assert_eq!(
            g.login_url(&token),
            format!("http://127.0.0.1:8123/login?token={token}")
        );
        assert_eq!(g.exchange("nope"), Err(Refusal::BadToken));
        let cookie = g.exchange(&token).unwrap();
        assert!(cookie.starts_with("foureyes-console-8123="), "{cookie}");
        assert!(cookie.contains("; HttpOnly; SameSite=Strict; Path=/"), "{cookie}");
        assert_eq!(g.exchange(&token), Err(Refusal::SpentToken));
        let pair = cookie.split(';').next().unwrap();
        assert!(g.has_session(Some(&format!("a=b; {pair}"))));
        assert!(!g.has_session(None));
        assert!(!g.has_session(Some("foureyes-console-8123=")));
        assert!(!g.has_session(Some(&pair.replace("8123", "8124"))));
        let (other, _) = Guard::new(8123);
        assert!(!other.has_session(Some(pair)), "another run's cookie");
    }

    #[test]
    fn only_the_consoles_own_host_and_origin_pass() {
        let (g, _) = Guard::new(8123);
        assert!(g.check_host(Some("127.0.0.1:8123")).is_ok());
        assert!(g.check_host(Some("LOCALHOST:8123")).is_ok());
        for bad in [
            None,
            Some("127.0.0.1"),
            Some("127.0.0.1:8124"),
            Some("evil.example:8123"),
        ] {
            assert!(matches!(g.check_host(bad), Err(Refusal::Host(_))), "{bad:?}");
        }
        assert!(g.check_origin(None, None).is_ok());
        assert!(
            g.check_origin(Some("http://127.0.0.1:8123"), Some("same-origin"))
                .is_ok()
        );
        assert!(g.check_origin(None, Some("none")).is_ok());
        for (origin, site) in [
            (Some("http://evil.example"), None),
            (Some("null"), None),
            (Some("http://127.0.0.1:9999"), None),
            (Some("https://127.0.0.1:8123"), None),
            (None, Some("cross-site")),
            (None, Some("same-site")),
        ] {
            assert!(
                matches!(g.check_origin(origin, site), Err(Refusal::Origin(_))),
                "{origin:?} {site:?}"
            );
        }
    }

    #[test]
    fn forms_need_the_csrf_token() {
        let (g, _) = Guard::new(1);
        let t = g.csrf().to_owned();
        assert!(g.check_csrf(Some(&t)).is_ok());
        assert_eq!(g.check_csrf(None), Err(Refusal::Csrf));
        assert_eq!(g.check_csrf(Some("")), Err(Refusal::Csrf));
        assert_eq!(g.check_csrf(Some(&random_token())), Err(Refusal::Csrf));
        assert_eq!(Refusal::Csrf.status(), 403);
        assert_eq!(Refusal::NoSession.status(), 401);
        assert!(Refusal::SpentToken.message().contains("restart kubectl access console"));
    }
}
