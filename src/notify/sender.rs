//! Delivery: a bounded queue per sink that reconcilers offer messages to
//! without waiting ([`Queue::offer`]), and a task per sink that drains it
//! ([`Sink::drain`]): one message at a time, each attempt bounded by the
//! sink's `timeout`, at most `maxAttempts` attempts with a wait that doubles
//! from 1 s (at most 30 s) between them. A timeout, a connection failure,
//! a 5xx, 408 or 429 answer is retried; another 4xx is not (the receiver
//! refused the message: a retry would be refused too).
//!
//! Each body is signed with HMAC-SHA256 under the sink's key
//! ([`SIGNATURE_HEADER`]: `sha256=` and the lower-case hex of the MAC of the
//! body's bytes). The keys (and a URL kept in a Secret) are read from the
//! operator's namespace when a message needs them, at most once a minute per
//! Secret: a rotated key is used within a minute, without a restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::core::v1::Secret;
use sha2::Sha256;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::{Message, cloudevents, slack};
use crate::config::{SecretKeyRef, Sink as SinkConfig, SinkFormat};
use crate::telemetry::Metrics;

/// The header carrying the body's signature: `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Foureyes-Signature";

/// How long a Secret read for a sink is used before it is read again.
const SECRET_TTL: Duration = Duration::from_secs(60);

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The most of a receiver's answer that is read (and ignored).
const MAX_ANSWER: usize = 64 * 1024;

/// The signature header's value for `body` under `key`.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(body);
    let mut out = String::from("sha256=");
    for b in mac.finalize().into_bytes() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Whether `header` is the signature of `body` under `key`, compared in
/// constant time (what a receiver does; see `docs/notifications.md`).
pub fn verify(key: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    if hex.len() != 64 || !hex.is_ascii() {
        return false;
    }
    let Ok(tag) = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

/// The wait after `failed` failed attempts: 1 s, 2 s, 4 s, ... at most 30 s.
pub fn backoff(failed: u32) -> Duration {
    Duration::from_secs(1u64 << failed.saturating_sub(1).min(5)).min(MAX_BACKOFF)
}

/// The queue of one sink, as reconcilers see it.
pub struct Queue {
    name: String,
    types: Vec<String>,
    tx: mpsc::Sender<Arc<Message>>,
    drops: DropLog,
}

/// Logs dropped messages: the first of a burst at once, then a count at
/// most every ten seconds.
#[derive(Default)]
struct DropLog {
    unlogged: AtomicU64,
    last: Mutex<Option<Instant>>,
}

impl Queue {
    /// The queue of a sink, holding at most `capacity` messages, and its
    /// receiving end for the sink's task.
    pub fn new(sink: &SinkConfig, capacity: usize) -> (Self, mpsc::Receiver<Arc<Message>>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Self {
                name: sink.name.clone(),
                types: sink.types.clone(),
                tx,
                drops: DropLog::default(),
            },
            rx,
        )
    }

    /// Whether the sink takes messages of this type.
    pub fn takes(&self, kind: &str) -> bool {
        self.types.is_empty() || self.types.iter().any(|t| t == kind)
    }

    /// Queues a message if the sink takes its type, without waiting: when
    /// the queue is full, the message is dropped, counted and logged.
    pub fn offer(&self, msg: &Arc<Message>, metrics: &Metrics) {
        if !self.takes(msg.kind()) {
            return;
        }
        let reason = match self.tx.try_send(msg.clone()) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(_)) => "queue_full",
            Err(mpsc::error::TrySendError::Closed(_)) => "closed",
        };
        metrics.notification_dropped(&self.name, reason);
        let unlogged = self.drops.unlogged.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.drops.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
            *last = Some(Instant::now());
            self.drops.unlogged.fetch_sub(unlogged, Ordering::Relaxed);
            warn!(
                sink = self.name,
                reason,
                dropped = unlogged,
                kind = msg.kind(),
                "notification queue full: messages dropped unsent"
            );
        }
    }
}

/// A Secret's data.
type SecretData = BTreeMap<String, Vec<u8>>;

/// Where the sinks' keys and URLs come from; cheap to clone.
#[derive(Clone)]
pub struct Secrets(Arc<Source>);

// One per process, behind an `Arc`: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Source {
    /// Secrets of the operator's namespace, read when needed and kept a
    /// minute (with when each was read).
    Kube {
        api: kube::Api<Secret>,
        cache: Mutex<HashMap<String, (Instant, SecretData)>>,
    },
    /// Fixed values (tests).
    Fixed(HashMap<SecretKeyRef, Vec<u8>>),
}

impl Secrets {
    /// The Secrets of `namespace`.
    pub fn kube(client: kube::Client, namespace: &str) -> Self {
        Self(Arc::new(Source::Kube {
            api: kube::Api::namespaced(client, namespace),
            cache: Default::default(),
        }))
    }

    /// Fixed values.
    pub fn fixed(values: impl IntoIterator<Item = (SecretKeyRef, Vec<u8>)>) -> Self {
        Self(Arc::new(Source::Fixed(values.into_iter().collect())))
    }

    /// The value of a Secret's key.
    pub async fn value(&self, r: &SecretKeyRef) -> Result<Vec<u8>, String> {
        let missing = || format!("Secret {} has no key {}", r.name, r.key);
        let (api, cache) = match self.0.as_ref() {
            Source::Fixed(values) => return values.get(r).cloned().ok_or_else(missing),
            Source::Kube { api, cache } => (api, cache),
        };
        let cached = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&r.name).cloned();
        let data = match cached {
            Some((at, data)) if at.elapsed() < SECRET_TTL => data,
            stale => match api.get(&r.name).await {
                Ok(secret) => {
                    let data: SecretData = secret
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0))
                        .collect();
                    cache
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(r.name.clone(), (Instant::now(), data.clone()));
                    data
                }
                // Still the last known value, if any.
                Err(e) => match stale {
                    Some((_, data)) => {
                        warn!(secret = r.name, %e, "cannot read a notification Secret again; using its last value");
                        data
                    }
                    None => return Err(format!("cannot read Secret {}: {e}", r.name)),
                },
            },
        };
        data.get(&r.key).cloned().ok_or_else(missing)
    }
}

/// Why a sink cannot be set up.
#[derive(Debug, thiserror::Error)]
#[error("notification sink {sink}: {message}")]
pub struct SetupError {
    /// The sink.
    pub sink: String,
    /// What is wrong.
    pub message: String,
}

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// A static category, the metric's `reason`: `timeout`, `connect`,
    /// `status`, `secret`, `request`.
    pub reason: &'static str,
    /// Whether another attempt may succeed.
    pub retry: bool,
    /// What happened.
    pub detail: String,
}

impl Failure {
    fn new(reason: &'static str, retry: bool, detail: impl Into<String>) -> Self {
        Self {
            reason,
            retry,
            detail: detail.into(),
        }
    }
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One sink's delivery.
pub struct Sink {
    name: String,
    format: SinkFormat,
    url: Option<String>,
    url_secret: Option<SecretKeyRef>,
    key: Option<SecretKeyRef>,
    source: String,
    timeout: Duration,
    max_attempts: u32,
    http: HttpClient,
    secrets: Secrets,
}

impl Sink {
    /// The delivery of a configured sink, with the CloudEvents `source`.
    pub fn new(cfg: &SinkConfig, source: &str, secrets: Secrets) -> Result<Self, SetupError> {
        let err = |message: String| SetupError {
            sink: cfg.name.clone(),
            message,
        };
        Ok(Self {
            name: cfg.name.clone(),
            format: cfg.format,
            url: cfg.url.clone(),
            url_secret: cfg.url_secret_ref.clone(),
            key: cfg.secret_ref.clone(),
            source: source.to_owned(),
            timeout: cfg.timeout.get(),
            max_attempts: cfg.max_attempts.max(1),
            http: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(2)
                .build(connector(cfg.ca_bundle.as_deref()).map_err(err)?),
            secrets,
        })
    }

    /// Delivers the queue's messages one after the other until the
    /// notifier is gone.
    pub async fn drain(self, mut rx: mpsc::Receiver<Arc<Message>>, metrics: Arc<Metrics>) {
        while let Some(msg) = rx.recv().await {
            match self.deliver(&msg).await {
                Ok(()) => {
                    debug!(sink = self.name, id = msg.id, kind = msg.kind(), "notification sent");
                    metrics.notification_sent(&self.name, msg.kind());
                }
                Err(f) => {
                    warn!(
                        sink = self.name,
                        id = msg.id,
                        kind = msg.kind(),
                        reason = f.reason,
                        detail = f.detail,
                        "notification not delivered"
                    );
                    metrics.notification_failed(&self.name, f.reason);
                }
            }
        }
    }

    /// The body of a message in this sink's format.
    pub fn body(&self, msg: &Message) -> Vec<u8> {
        match self.format {
            SinkFormat::CloudEvents => cloudevents::body(msg, &self.source),
            SinkFormat::Slack => slack::body(msg),
        }
    }

    /// Delivers one message, with retries.
    pub async fn deliver(&self, msg: &Message) -> Result<(), Failure> {
        let body = Bytes::from(self.body(msg));
        let secret = |e: String| Failure::new("secret", false, e);
        let signature = match &self.key {
            Some(r) => Some(sign(&self.secrets.value(r).await.map_err(secret)?, &body)),
            None => None,
        };
        let url = match (&self.url, &self.url_secret) {
            (Some(url), _) => url.clone(),
            (None, Some(r)) => String::from_utf8(self.secrets.value(r).await.map_err(secret)?)
                .map_err(|_| secret(format!("the URL in Secret {} is not UTF-8", r.name)))?
                .trim()
                .to_owned(),
            (None, None) => return Err(Failure::new("request", false, "no URL")),
        };
        let mut failed = 0;
        loop {
            match self.attempt(&url, body.clone(), signature.as_deref()).await {
                Ok(()) => return Ok(()),
                Err(f) if f.retry && failed + 1 < self.max_attempts => {
                    failed += 1;
                    debug!(
                        sink = self.name,
                        id = msg.id,
                        attempt = failed,
                        reason = f.reason,
                        detail = f.detail,
                        "notification attempt failed; retrying"
                    );
                    tokio::time::sleep(backoff(failed)).await;
                }
                Err(f) => return Err(f),
            }
        }
    }

    /// One attempt, bounded by the timeout.
    async fn attempt(&self, url: &str, body: Bytes, signature: Option<&str>) -> Result<(), Failure> {
        let content_type = match self.format {
            SinkFormat::CloudEvents => cloudevents::CONTENT_TYPE,
            SinkFormat::Slack => slack::CONTENT_TYPE,
        };
        let mut req = http::Request::post(url)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(
                http::header::USER_AGENT,
                concat!("foureyes/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(sig) = signature {
            req = req.header(SIGNATURE_HEADER, sig);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| Failure::new("request", false, e.to_string()))?;
        let call = async {
            let answer = self.http.request(req).await?;
            let status = answer.status();
            // Read the answer (bounded), so that the connection can be reused.
            let _ = Limited::new(answer.into_body(), MAX_ANSWER).collect().await;
            Ok::<_, hyper_util::client::legacy::Error>(status)
        };
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(Failure::new(
                "timeout",
                true,
                format!("no answer within {:?}", self.timeout),
            )),
            Ok(Err(e)) => Err(Failure::new("connect", true, format!("{e:?}"))),
            Ok(Ok(s)) if s.is_success() => Ok(()),
            Ok(Ok(s)) => Err(Failure::new(
                "status",
                s.is_server_error() || s.as_u16() == 408 || s.as_u16() == 429,
                format!("HTTP {s}"),
            )),
        }
    }
}

/// An HTTP(S) connector trusting the CAs of `ca_bundle` (PEM), else the
/// public roots compiled in (the operator's image has no CA store).
fn connector(ca_bundle: Option<&str>) -> Result<HttpsConnector<HttpConnector>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match ca_bundle {
        None => builder
            .with_provider_and_webpki_roots(provider)
            .map_err(|e| e.to_string())?,
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| format!("caBundle: {e}"))?;
                roots.add(cert).map_err(|e| format!("caBundle: {e}"))?;
            }
            if roots.is_empty() {
                return Err("caBundle holds no certificate".into());
            }
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            builder.with_tls_config(config)
        }
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    Ok(builder.https_or_http().enable_http1().wrap_connector(http))
}
