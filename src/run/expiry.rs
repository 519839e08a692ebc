//! Invariant 12 (DESIGN §2): removing overdue access needs no leadership.
//! Every replica keeps a timer at the expiry of each native binding foureyes
//! made (the `foureyes.dev/expires-at` annotation, from a metadata watch of
//! the labelled native RoleBindings) and deletes it then, whether or not it
//! holds the Lease: a leader that is frozen, cut off from the API server or
//! waiting for its caches still has a standby removing access on time; and
//! in the leader itself the timers stand behind the binding controller,
//! whose reconciles back off after errors (an API server down for a while
//! leaves them waiting well after it is back; a failed delete here is tried
//! again every second).
//!
//! The deletes are uid-preconditioned and idempotent; the leader's binding
//! controller (which also revokes at the expiry instant) and this timer may
//! race, and a 404 or 409 just means the other was first. The timer fires
//! [`AFTER_EXPIRY`] after the expiry, so that a healthy leader, which acts at
//! the instant, is normally first and the API server does not get every
//! delete twice. Bookkeeping (status, events, history) is the leader's.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use k8s_openapi::api::rbac::v1::RoleBinding as NativeBinding;
use kube::api::PartialObjectMeta;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use tracing::{debug, info, warn};

use crate::rbac::revoke::{self, Removed};
use crate::telemetry::Metrics;
use crate::wire::GRANT_SELECTOR;

/// How long after an expiry the timer deletes what is still there.
pub const AFTER_EXPIRY: Duration = Duration::from_millis(250);
/// How long after a failed delete the timer tries again.
const RETRY: Duration = Duration::from_secs(1);

/// What a timer keeps of a native binding: only what its deletion needs
/// (the watch's objects, managed fields and all, are not kept).
struct Watched {
    uid: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    due: DateTime<Utc>,
}

/// The watched native bindings and their timers.
#[derive(Default)]
struct Timers {
    /// `namespace/name` → what is kept of it.
    known: HashMap<String, Watched>,
    /// (due, `namespace/name`), soonest first.
    due: BTreeSet<(DateTime<Utc>, String)>,
}

impl Timers {
    fn key(meta: &PartialObjectMeta<NativeBinding>) -> String {
        format!("{}/{}", meta.namespace().unwrap_or_default(), meta.name_any())
    }

    fn set(&mut self, meta: &PartialObjectMeta<NativeBinding>, at: DateTime<Utc>) {
        let key = Self::key(meta);
        self.forget(&key);
        self.due.insert((at, key.clone()));
        let watched = Watched {
            uid: meta.metadata.uid.clone(),
            expires_at: revoke::expiry_of(meta),
            due: at,
        };
        self.known.insert(key, watched);
    }

    fn forget(&mut self, key: &str) {
        if let Some(w) = self.known.remove(key) {
            self.due.remove(&(w.due, key.to_owned()));
        }
    }

    /// Every entry due at `now`, taken out of the timers.
    fn take_due(&mut self, now: DateTime<Utc>) -> Vec<Removed> {
        let mut out = vec![];
        while let Some((at, key)) = self.due.first().cloned() {
            if at > now {
                break;
            }
            self.due.pop_first();
            if let (Some(w), Some((ns, name))) = (self.known.remove(&key), key.split_once('/')) {
                let mut meta = PartialObjectMeta::<NativeBinding>::default();
                meta.metadata.namespace = Some(ns.to_owned());
                meta.metadata.name = Some(name.to_owned());
                meta.metadata.uid = w.uid;
                out.push(Removed {
                    meta,
                    expires_at: w.expires_at,
                });
            }
        }
        out
    }
}

/// When the timer of a native binding fires: [`AFTER_EXPIRY`] after its
/// expiry; at once without a readable one (it is overdue, see
/// [`crate::policy::sweep::overdue`]).
fn due_at(meta: &PartialObjectMeta<NativeBinding>) -> DateTime<Utc> {
    match revoke::expiry_of(meta) {
        Some(e) => e + chrono::Duration::from_std(AFTER_EXPIRY).unwrap_or_default(),
        None => DateTime::<Utc>::MIN_UTC,
    }
}

/// Runs the timers until `stop` completes.
pub(super) async fn revoke_at_expiry(client: Client, metrics: std::sync::Arc<Metrics>, stop: impl Future<Output = ()>) {
    let api: Api<PartialObjectMeta<NativeBinding>> = Api::all(client.clone());
    let stream = watcher::watcher(api, watcher::Config::default().labels(GRANT_SELECTOR)).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut stop = std::pin::pin!(stop);
    let mut timers = Timers::default();
    loop {
        let next = timers.due.first().map(|(at, _)| *at);
        let wait = async {
            match next {
                Some(at) => {
                    let left = (at - Utc::now()).to_std().unwrap_or_default();
                    tokio::time::sleep(left).await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            event = stream.next() => match event {
                Some(Ok(Event::Apply(meta) | Event::InitApply(meta))) => {
                    if meta.metadata.deletion_timestamp.is_some() {
                        timers.forget(&Timers::key(&meta));
                    } else {
                        timers.set(&meta, due_at(&meta));
                    }
                }
                Some(Ok(Event::Delete(meta))) => timers.forget(&Timers::key(&meta)),
                // A (re)list: what it does not list again is gone.
                Some(Ok(Event::Init)) => timers = Timers::default(),
                Some(Ok(Event::InitDone)) => debug!(watched = timers.known.len(), "expiry timers synced"),
                Some(Err(err)) => warn!(%err, "watch of native bindings failed; retrying"),
                None => return,
            },
            _ = wait => {
                let due = timers.take_due(Utc::now());
                if due.is_empty() {
                    continue;
                }
                let outcome = revoke::remove(&client, due).await;
                let now = Utc::now();
                for r in &outcome.removed {
                    if let Some(e) = r.expires_at {
                        metrics.observe_revocation_lag((now - e).num_milliseconds().max(0) as f64 / 1000.0);
                    }
                }
                if !outcome.removed.is_empty() {
                    info!(revoked = outcome.removed.len(), "expiry timers revoked overdue access");
                }
                let retry_at = now + chrono::Duration::from_std(RETRY).unwrap_or_default();
                if let Some((r, err)) = outcome.failed.first() {
                    warn!(failed = outcome.failed.len(), namespace = r.meta.namespace(), name = r.meta.name_any(), %err, "could not revoke overdue access; retrying in a second");
                }
                for (r, _) in outcome.failed {
                    let key = Timers::key(&r.meta);
                    timers.due.insert((retry_at, key.clone()));
                    timers.known.insert(key, Watched { uid: r.meta.metadata.uid, expires_at: r.expires_at, due: retry_at });
                }
            },
            _ = &mut stop => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::EXPIRES_ANNOTATION;

    fn meta(name: &str, expiry: Option<&str>) -> PartialObjectMeta<NativeBinding> {
        let mut m = PartialObjectMeta::<NativeBinding>::default();
        m.metadata.name = Some(name.into());
        m.metadata.namespace = Some("ns".into());
        if let Some(e) = expiry {
            m.metadata.annotations = Some([(EXPIRES_ANNOTATION.to_owned(), e.to_owned())].into());
        }
        m
    }

    fn t(s: &str) -> DateTime<Utc> {
        crate::rbac::parse_expiry(s).unwrap()
    }

    #[test]
    fn fires_after_the_expiry_once_and_forgets_what_went() {
        let mut timers = Timers::default();
        for (name, expiry) in [
            ("a", Some("2030-01-01T00:00:10Z")),
            ("b", Some("2030-01-01T00:00:05Z")),
            ("c", None),
            ("d", Some("2030-01-01T00:00:20Z")),
        ] {
            let m = meta(name, expiry);
            timers.set(&m, due_at(&m));
        }
        timers.forget("ns/d");
        let names = |v: Vec<Removed>| v.iter().map(|r| r.meta.name_any()).collect::<Vec<_>>();
        assert_eq!(names(timers.take_due(t("2030-01-01T00:00:00Z"))), ["c"]);
        assert!(
            timers.take_due(t("2030-01-01T00:00:05Z")).is_empty(),
            "not before the delay"
        );
        assert_eq!(names(timers.take_due(t("2030-01-01T00:00:06Z"))), ["b"]);
        // A changed expiry moves the timer.
        let m = meta("a", Some("2030-01-01T00:01:00Z"));
        timers.set(&m, due_at(&m));
        assert!(timers.take_due(t("2030-01-01T00:00:30Z")).is_empty());
        assert_eq!(names(timers.take_due(t("2030-01-01T00:01:01Z"))), ["a"]);
        assert!(timers.known.is_empty() && timers.due.is_empty());
    }
}
