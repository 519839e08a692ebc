//! Removing overdue native RBAC straight from the API server (no cache, no
//! Lease): what every replica does at start-up, before it seeks the leader
//! Lease, and what `foureyes sweep --once` does while the operator is down
//! (DESIGN §2, invariants 1 and 12).
//!
//! Only the removal happens here. Its bookkeeping (the binding's status,
//! events, the history) is the leader's: its binding controller records
//! each expiry once, noting when the access had already been removed.
//!
//! Removing is idempotent: every delete carries the uid that was judged
//! overdue as a precondition, so that a binding re-created in between is
//! never removed, and a binding already gone (404) or replaced (409) is not
//! an error. Several replicas and the sweep may therefore race freely.

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use k8s_openapi::api::rbac::v1::RoleBinding as NativeBinding;
use kube::api::{ListParams, PartialObjectMeta};
use kube::{Api, Client, ResourceExt};

use super::parse_expiry;
use crate::policy::sweep::overdue;
use crate::wire::{EXPIRES_ANNOTATION, GRANT_SELECTOR};

/// How many deletes are in flight at once: a thousand overdue bindings go in
/// well under a second without flooding the API server.
pub const CONCURRENCY: usize = 32;

/// A native binding removed because it was overdue.
#[derive(Clone, Debug)]
pub struct Removed {
    /// Its metadata as listed (labels and annotations included).
    pub meta: PartialObjectMeta<NativeBinding>,
    /// Its expiry, when readable.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The expiry a native binding carries (annotation `foureyes.dev/expires-at`).
pub fn expiry_of(meta: &PartialObjectMeta<NativeBinding>) -> Option<DateTime<Utc>> {
    meta.annotations().get(EXPIRES_ANNOTATION).and_then(|s| parse_expiry(s))
}

/// What one pass removed, and the deletes that failed.
#[derive(Debug, Default)]
pub struct Outcome {
    /// What this pass removed (not what someone else removed first).
    pub removed: Vec<Removed>,
    /// The deletes that failed (neither done nor found done already).
    pub failed: Vec<(Removed, kube::Error)>,
}

/// Lists every native binding foureyes made for a grant (by label) and
/// deletes, [`CONCURRENCY`] at a time, those overdue at `now`. Every delete
/// is tried; an error of the list itself is returned as such.
pub async fn remove_overdue(client: &Client, now: DateTime<Utc>) -> Result<Outcome, kube::Error> {
    let api: Api<NativeBinding> = Api::all(client.clone());
    let mut due = vec![];
    let mut continue_token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().labels(GRANT_SELECTOR).limit(500);
        if let Some(t) = &continue_token {
            lp = lp.continue_token(t);
        }
        let page = api.list_metadata(&lp).await?;
        for meta in page.items {
            let expires_at = expiry_of(&meta);
            if overdue(expires_at, now) {
                due.push(Removed { meta, expires_at });
            }
        }
        continue_token = page.metadata.continue_.filter(|t| !t.is_empty());
        if continue_token.is_none() {
            break;
        }
    }
    Ok(remove(client, due).await)
}

/// Deletes `due` ([`CONCURRENCY`] at a time), each only if it still has the
/// uid it was judged by.
pub async fn remove(client: &Client, due: Vec<Removed>) -> Outcome {
    let results: Vec<(Removed, Result<bool, kube::Error>)> = futures::stream::iter(due)
        .map(|r| async move {
            let ns = r.meta.namespace().unwrap_or_default();
            let deleted =
                super::apply::delete_native(client, &ns, &r.meta.name_any(), r.meta.metadata.uid.as_deref()).await;
            (r, deleted)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut outcome = Outcome::default();
    for (r, result) in results {
        match result {
            Ok(true) => outcome.removed.push(r),
            Ok(false) => {}
            Err(e) => outcome.failed.push((r, e)),
        }
    }
    outcome
}
