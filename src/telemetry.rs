//! Telemetry: Prometheus metrics and health probes.
//!
//! [`Metrics`] holds a `prometheus_client` registry with these families, all
//! under the prefix `foureyes`:
//!
//! - `foureyes_reconciles_total{kind}`: reconciliations completed, by resource kind;
//! - `foureyes_reconcile_errors_total{kind,category}`: reconciliations that failed,
//!   by resource kind and error category;
//! - `foureyes_active_grants`: grants currently in force;
//! - `foureyes_active_lockouts`: Lockouts currently in force (no subject names);
//! - `foureyes_leader`: 1 while this replica holds the leader Lease (or runs
//!   without leader election), 0 while it waits;
//! - `foureyes_overdue_grants`: grants whose native RBAC is still active past
//!   its expiry (should stay at zero; anything else means revocation lags);
//! - `foureyes_revocation_lag_seconds`: histogram of the delay between a
//!   grant's expiry and the removal of its native RBAC (buckets from 1 ms to
//!   about 65 s);
//! - `foureyes_api_writes_total{kind,verb}`: writes sent to the Kubernetes API,
//!   counted by a layer on the client ([`CountWritesLayer`], see [`writes`]
//!   for the labels);
//! - `foureyes_notifications_sent_total{sink,type}`: notifications a webhook
//!   accepted, by sink and message type;
//! - `foureyes_notifications_failed_total{sink,reason}`: notifications given
//!   up after their last attempt (`reason`: `status`, `timeout`, `connect`,
//!   `secret`);
//! - `foureyes_notifications_dropped_total{sink,reason}`: notifications never
//!   attempted because the sink's queue was full (`queue_full`).
//!
//! Label values are only ever static strings (kinds, error categories,
//! verbs) or names from the configuration (sinks): never user names or
//! other unbounded values.
//!
//! [`Health`] records whether the operator is ready. [`serve`] (or [`bind`])
//! exposes both over HTTP: `GET /metrics` (OpenMetrics text), `GET /healthz`
//! (liveness: 200 while the process runs) and `GET /readyz` (readiness: 200
//! when ready, else 503 with the reason).

use std::future::{Future, IntoFuture as _};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

pub mod writes;
pub use writes::CountWritesLayer;

/// Content type of the `/metrics` response.
const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of `foureyes_reconciles_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// Labels of `foureyes_reconcile_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: &'static str,
    category: &'static str,
}

/// Labels of `foureyes_api_writes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabels {
    kind: &'static str,
    verb: &'static str,
}

/// Labels of `foureyes_notifications_sent_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SentLabels {
    sink: String,
    r#type: &'static str,
}

/// Labels of `foureyes_notifications_failed_total` and `_dropped_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotLabels {
    sink: String,
    reason: &'static str,
}

/// The operator's metrics: a registry and the metric families registered in it.
///
/// All methods take `&self`; share it with `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<KindLabels, Counter>,
    reconcile_errors: Family<ErrorLabels, Counter>,
    active_grants: Gauge,
    active_lockouts: Gauge,
    leader: Gauge,
    overdue_grants: Gauge,
    revocation_lag: Histogram,
    admission_policies_intact: Gauge,
    api_writes: Family<WriteLabels, Counter>,
    /// Sum of `api_writes` over all label sets (a family cannot be iterated).
    api_writes_sum: AtomicU64,
    notifications_sent: Family<SentLabels, Counter>,
    notifications_failed: Family<NotLabels, Counter>,
    notifications_dropped: Family<NotLabels, Counter>,
}

impl Metrics {
    /// Creates the metrics and registers them under the prefix `foureyes`.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("foureyes");
        let reconciles = Family::<KindLabels, Counter>::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let active_grants = Gauge::default();
        let active_lockouts = Gauge::default();
        let leader = Gauge::default();
        let overdue_grants = Gauge::default();
        let revocation_lag = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        let api_writes = Family::<WriteLabels, Counter>::default();
        let admission_policies_intact = Gauge::default();
        let notifications_sent = Family::<SentLabels, Counter>::default();
        let notifications_failed = Family::<NotLabels, Counter>::default();
        let notifications_dropped = Family::<NotLabels, Counter>::default();

        // Counter names carry no `_total`: the encoder appends it.
        registry.register(
            "reconciles",
            "Reconciliations completed, by resource kind",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciliations that failed, by resource kind and error category",
            reconcile_errors.clone(),
        );
        registry.register("active_grants", "Grants currently in force", active_grants.clone());
        registry.register(
            "active_lockouts",
            "Lockouts currently in force",
            active_lockouts.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader lease, else 0",
            leader.clone(),
        );
        registry.register(
            "overdue_grants",
            "Grants whose native RBAC is still active past their expiry",
            overdue_grants.clone(),
        );
        registry.register_with_unit(
            "revocation_lag",
            "Delay between a grant's expiry and the removal of its native RBAC",
            Unit::Seconds,
            revocation_lag.clone(),
        );
        registry.register(
            "admission_policies_intact",
            "1 while every foureyes admission policy and binding is in place unaltered, else 0",
            admission_policies_intact.clone(),
        );
        registry.register(
            "api_writes",
            "Writes sent to the Kubernetes API, by resource kind and verb",
            api_writes.clone(),
        );
        registry.register(
            "notifications_sent",
            "Notifications a webhook accepted, by sink and message type",
            notifications_sent.clone(),
        );
        registry.register(
            "notifications_failed",
            "Notifications given up after their last attempt, by sink and reason",
            notifications_failed.clone(),
        );
        registry.register(
            "notifications_dropped",
            "Notifications dropped unsent because the sink's queue was full, by sink and reason",
            notifications_dropped.clone(),
        );

        Self {
            registry,
            reconciles,
            reconcile_errors,
            active_grants,
            active_lockouts,
            leader,
            overdue_grants,
            revocation_lag,
            admission_policies_intact,
            api_writes,
            api_writes_sum: AtomicU64::new(0),
            notifications_sent,
            notifications_failed,
            notifications_dropped,
        }
    }

    /// Counts a notification of type `r#type` that `sink` accepted.
    pub fn notification_sent(&self, sink: &str, r#type: &'static str) {
        self.notifications_sent
            .get_or_create(&SentLabels {
                sink: sink.to_owned(),
                r#type,
            })
            .inc();
    }

    /// Counts a notification to `sink` given up after its last attempt.
    pub fn notification_failed(&self, sink: &str, reason: &'static str) {
        self.notifications_failed
            .get_or_create(&NotLabels {
                sink: sink.to_owned(),
                reason,
            })
            .inc();
    }

    /// Counts a notification to `sink` dropped unsent.
    pub fn notification_dropped(&self, sink: &str, reason: &'static str) {
        self.notifications_dropped
            .get_or_create(&NotLabels {
                sink: sink.to_owned(),
                reason,
            })
            .inc();
    }

    /// Counts one completed reconciliation of `kind` (`foureyes_reconciles_total{kind}`).
    pub fn reconciled(&self, kind: &'static str) {
        self.reconciles.get_or_create(&KindLabels { kind }).inc();
    }

    /// Counts one failed reconciliation of `kind`, classified by `category`
    /// (`foureyes_reconcile_errors_total{kind,category}`).
    pub fn reconcile_error(&self, kind: &'static str, category: &'static str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels { kind, category })
            .inc();
    }

    /// Records whether this replica acts as the leader (`foureyes_leader`).
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Sets the number of grants currently in force (`foureyes_active_grants`).
    pub fn set_active_grants(&self, n: i64) {
        self.active_grants.set(n);
    }

    /// Sets the number of Lockouts currently in force (`foureyes_active_lockouts`).
    pub fn set_active_lockouts(&self, n: i64) {
        self.active_lockouts.set(n);
    }

    /// Records whether every admission policy and binding is in place
    /// unaltered (`foureyes_admission_policies_intact`).
    pub fn set_admission_policies_intact(&self, intact: bool) {
        self.admission_policies_intact.set(i64::from(intact));
    }

    /// Sets the number of grants whose native RBAC is still active past their
    /// expiry (`foureyes_overdue_grants`).
    pub fn set_overdue_grants(&self, n: i64) {
        self.overdue_grants.set(n);
    }

    /// Records the delay, in seconds, between a grant's expiry and the removal
    /// of its native RBAC (`foureyes_revocation_lag_seconds`).
    pub fn observe_revocation_lag(&self, seconds: f64) {
        self.revocation_lag.observe(seconds);
    }

    /// Counts one write (`verb`: create, apply, delete...) of a `kind` object
    /// sent to the Kubernetes API (`foureyes_api_writes_total{kind,verb}`);
    /// [`CountWritesLayer`] calls it for every write the client sends.
    pub fn api_write(&self, kind: &'static str, verb: &'static str) {
        self.api_writes.get_or_create(&WriteLabels { kind, verb }).inc();
        self.api_writes_sum.fetch_add(1, Ordering::Relaxed);
    }

    /// Returns the number of API writes counted so far, summed over all kinds and verbs.
    pub fn api_writes_total(&self) -> u64 {
        self.api_writes_sum.load(Ordering::Relaxed)
    }

    /// Encodes all metrics in the OpenMetrics text exposition format
    /// (terminated by `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(%error, "cannot encode metrics");
        }
        out
    }
}

impl Default for Metrics {
    /// Same as [`Metrics::new`].
    fn default() -> Self {
        Self::new()
    }
}

/// Readiness of the operator, as reported by `GET /readyz`.
///
/// Starts not ready. All methods take `&self`; share it with `Arc<Health>`.
#[derive(Debug)]
pub struct Health {
    ready: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl Health {
    /// Creates a health state that is not ready (without a reason).
    pub fn new() -> Self {
        Self {
            ready: AtomicBool::new(false),
            reason: Mutex::new(None),
        }
    }

    /// Marks the operator ready or not ready, clearing any reason set before.
    pub fn set_ready(&self, ready: bool) {
        *self.lock_reason() = None;
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Marks the operator not ready, with a reason that `GET /readyz` returns.
    pub fn set_not_ready_reason(&self, reason: impl Into<String>) {
        *self.lock_reason() = Some(reason.into());
        self.ready.store(false, Ordering::SeqCst);
    }

    /// Returns whether the operator is ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// The reason for not being ready, if one was given.
    fn reason(&self) -> Option<String> {
        self.lock_reason().clone()
    }

    fn lock_reason(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        // The guarded value is a plain string: a panic elsewhere cannot leave it inconsistent.
        self.reason.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Health {
    /// Same as [`Health::new`].
    fn default() -> Self {
        Self::new()
    }
}

/// State shared by the HTTP handlers.
#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

async fn metrics_handler(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
        state.metrics.encode(),
    )
}

async fn healthz_handler() -> impl IntoResponse {
    (StatusCode::OK, "ok")
}

async fn readyz_handler(State(state): State<AppState>) -> impl IntoResponse {
    if state.health.is_ready() {
        (StatusCode::OK, "ok".to_owned())
    } else {
        let reason = state.health.reason().unwrap_or_else(|| "not ready".to_owned());
        (StatusCode::SERVICE_UNAVAILABLE, reason)
    }
}

fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz_handler))
        .route("/readyz", get(readyz_handler))
        .with_state(AppState { metrics, health })
}

/// Serves GET /metrics (text from [`Metrics::encode`], content type
/// `application/openmetrics-text; version=1.0.0; charset=utf-8`), GET /healthz
/// (200 "ok" while the process runs) and GET /readyz (200 "ok" when ready, else
/// 503 with the reason) on `addr` until `shutdown` completes (axum graceful
/// shutdown: open connections are allowed to finish).
///
/// # Errors
///
/// Fails only if `addr` cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (_, server) = bind(addr, metrics, health, shutdown).await?;
    server.await
}

/// Like [`serve`], but binds first and returns the bound address (so that port
/// 0 works) together with the serving future, which must be awaited (or
/// spawned) to serve requests and which completes after `shutdown` does.
///
/// # Errors
///
/// Fails if `addr` cannot be bound. The serving future itself never fails: it
/// retries on errors accepting connections and returns `Ok(())` after shutdown.
pub async fn bind(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, impl Future<Output = std::io::Result<()>> + Send + 'static)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, "serving /metrics, /healthz and /readyz");
    let server = axum::serve(listener, router(metrics, health))
        .with_graceful_shutdown(shutdown)
        .into_future();
    Ok((local, server))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[test]
    fn encode_contains_every_metric_and_counter_values() {
        let m = Metrics::new();
        m.reconciled("RoleRequest");
        m.reconciled("RoleRequest");
        m.reconciled("Workspace");
        m.reconcile_error("RoleRequest", "api");
        m.set_active_grants(3);
        m.set_leader(true);
        m.set_overdue_grants(1);
        m.observe_revocation_lag(0.25);
        m.api_write("RoleBinding", "create");

        let text = m.encode();
        for name in [
            "foureyes_reconciles_total",
            "foureyes_reconcile_errors_total",
            "foureyes_active_grants",
            "foureyes_leader",
            "foureyes_overdue_grants",
            "foureyes_revocation_lag_seconds",
            "foureyes_api_writes_total",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
        assert!(
            text.contains("foureyes_reconciles_total{kind=\"RoleRequest\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("foureyes_reconciles_total{kind=\"Workspace\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("foureyes_reconcile_errors_total{kind=\"RoleRequest\",category=\"api\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("foureyes_active_grants 3\n"), "{text}");
        assert!(text.contains("foureyes_overdue_grants 1\n"), "{text}");
        assert!(text.contains("foureyes_revocation_lag_seconds_count 1\n"), "{text}");
        assert!(
            text.contains("foureyes_revocation_lag_seconds_bucket{le=\"0.001\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("foureyes_revocation_lag_seconds_bucket{le=\"+Inf\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# UNIT foureyes_revocation_lag_seconds seconds\n"),
            "{text}"
        );
        assert!(
            text.contains("foureyes_api_writes_total{kind=\"RoleBinding\",verb=\"create\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("_total_total"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn api_writes_total_sums_across_labels() {
        let m = Metrics::default();
        assert_eq!(m.api_writes_total(), 0);
        m.api_write("RoleBinding", "create");
        m.api_write("RoleBinding", "delete");
        m.api_write("RoleRequest", "patch_status");
        m.api_write("RoleRequest", "patch_status");
        assert_eq!(m.api_writes_total(), 4);
        let text = m.encode();
        assert!(
            text.contains("foureyes_api_writes_total{kind=\"RoleRequest\",verb=\"patch_status\"} 2\n"),
            "{text}"
        );
    }

    #[test]
    fn health_transitions() {
        let h = Health::new();
        assert!(!h.is_ready());
        assert_eq!(h.reason(), None);
        h.set_ready(true);
        assert!(h.is_ready());
        h.set_not_ready_reason("CRDs missing");
        assert!(!h.is_ready());
        assert_eq!(h.reason().as_deref(), Some("CRDs missing"));
        h.set_ready(true);
        assert!(h.is_ready());
        assert_eq!(h.reason(), None);
    }

    /// Sends `GET path` over a fresh connection and returns (status code, whole response).
    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, response)
    }

    #[tokio::test]
    async fn serves_probes_and_metrics_then_shuts_down() {
        let metrics = Arc::new(Metrics::new());
        let health = Arc::new(Health::new());
        let (stop, stopped) = futures::channel::oneshot::channel::<()>();
        let (addr, server) = bind(
            "127.0.0.1:0".parse().unwrap(),
            metrics.clone(),
            health.clone(),
            async move {
                let _ = stopped.await;
            },
        )
        .await
        .unwrap();
        assert_ne!(addr.port(), 0);
        let server = tokio::spawn(server);

        let (status, body) = get(addr, "/healthz").await;
        assert_eq!(status, 200, "{body}");
        assert!(body.ends_with("\r\n\r\nok"), "{body}");

        let (status, body) = get(addr, "/readyz").await;
        assert_eq!(status, 503, "{body}");
        assert!(body.ends_with("not ready"), "{body}");

        health.set_not_ready_reason("waiting for CRDs");
        let (status, body) = get(addr, "/readyz").await;
        assert_eq!(status, 503, "{body}");
        assert!(body.ends_with("waiting for CRDs"), "{body}");

        health.set_ready(true);
        let (status, body) = get(addr, "/readyz").await;
        assert_eq!(status, 200, "{body}");
        assert!(body.ends_with("\r\n\r\nok"), "{body}");

        metrics.reconciled("Project");
        let (status, body) = get(addr, "/metrics").await;
        assert_eq!(status, 200, "{body}");
        assert!(
            body.to_ascii_lowercase()
                .contains(&format!("content-type: {OPENMETRICS_CONTENT_TYPE}")),
            "{body}"
        );
        assert!(
            body.contains("foureyes_reconciles_total{kind=\"Project\"} 1\n"),
            "{body}"
        );
        assert!(body.ends_with("# EOF\n"), "{body}");

        let (status, _) = get(addr, "/nope").await;
        assert_eq!(status, 404);

        stop.send(()).unwrap();
        let result = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("server did not stop after shutdown")
            .expect("server task panicked");
        assert!(result.is_ok());
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "still accepting after shutdown"
        );
    }

    #[tokio::test]
    async fn serve_can_be_spawned_and_stops_on_shutdown() {
        let server = tokio::spawn(serve(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(Metrics::new()),
            Arc::new(Health::new()),
            async {},
        ));
        let result = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        assert!(result.is_ok());
    }
}
