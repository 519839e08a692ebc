//! Start-up: tracing, waiting for the CRDs, revoking overdue access before
//! anything else runs, and the shutdown signal.

use std::time::Duration;

use chrono::Utc;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use tracing::warn;

use crate::api::{Project, RoleBinding, RoleRequest, Workspace};
use crate::audit::events::Events;
use crate::policy::transition::reason;
use crate::rbac;
use crate::telemetry::Metrics;
use crate::wire::BINDING_REF_ANNOTATION;

/// Invariants 1 and 12: removes every native binding foureyes made whose
/// expiry has passed, straight from the API (no cache), before anything else
/// runs and before the leader Lease is sought: any replica does it. Retries
/// until the API server answers the list (or `shutdown`); a delete that
/// fails is left to the standby timers and the controllers.
/// Returns what it removed, for the leader to announce
/// ([`announce_overdue`]).
pub(super) async fn revoke_overdue(
    client: &Client,
    metrics: &Metrics,
    shutdown: impl std::future::Future<Output = ()> + Clone,
) -> Vec<rbac::revoke::Removed> {
    let mut pause = Duration::from_millis(200);
    loop {
        let now = Utc::now();
        match rbac::revoke::remove_overdue(client, now).await {
            Ok(outcome) => {
                for r in &outcome.removed {
                    if let Some(e) = r.expires_at {
                        metrics.observe_revocation_lag((now - e).num_milliseconds().max(0) as f64 / 1000.0);
                    }
                    warn!(
                        namespace = r.meta.namespace(),
                        name = r.meta.name_any(),
                        expiry = ?r.expires_at,
                        "revoked overdue access at start-up"
                    );
                }
                for (r, err) in &outcome.failed {
                    warn!(namespace = r.meta.namespace(), name = r.meta.name_any(), %err, "could not revoke overdue access at start-up; retried at its timer");
                }
                return outcome.removed;
            }
            Err(err) => {
                warn!(%err, ?pause, "cannot list native bindings to revoke overdue access; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.clone() => return vec![],
                }
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// The leader's part of the start-up revocation: a Warning event on the
/// owner of each native binding this process removed. Only if the native
/// binding carries the name the operator gives that owner's native bindings
/// and the owner exists with the uid it names: a look-alike labelled by
/// someone else names no one.
pub(super) async fn announce_overdue(client: &Client, publisher: &Events, removed: &[rbac::revoke::Removed]) {
    for r in removed {
        let item = &r.meta;
        let ns = item.namespace().unwrap_or_default();
        let Some(owner) = item
            .annotations()
            .get(BINDING_REF_ANNOTATION)
            .and_then(|r| r.split_once('/'))
            .filter(|(ns, name)| {
                item.labels()
                    .get(crate::wire::BINDING_UID_LABEL)
                    .is_some_and(|uid| rbac::native_name(ns, name, uid) == item.name_any())
            })
        else {
            continue;
        };
        if !owner_has_uid(
            client,
            owner.0,
            owner.1,
            item.labels().get(crate::wire::BINDING_UID_LABEL),
        )
        .await
        {
            continue;
        }
        let reference = k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some("foureyes.dev/v1alpha1".into()),
            kind: Some("RoleBinding".into()),
            namespace: Some(owner.0.into()),
            name: Some(owner.1.into()),
            uid: item.labels().get(crate::wire::BINDING_UID_LABEL).cloned(),
            ..Default::default()
        };
        let note = format!(
            "native binding {ns}/{} was past its expiry at start-up and was removed",
            item.name_any()
        );
        publisher
            .publish(&reference, true, reason::OVERDUE_REVOKED, "Revoke", note)
            .await;
    }
}

/// Whether the foureyes binding `namespace/name` exists with `uid` (the uid
/// a native binding's label claims, which whoever labelled it chose).
async fn owner_has_uid(client: &Client, namespace: &str, name: &str, uid: Option<&String>) -> bool {
    let Some(uid) = uid else { return false };
    Api::<RoleBinding>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .is_some_and(|b| b.uid().as_deref() == Some(uid.as_str()))
}

pub(super) fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Waits until the API server serves every foureyes kind.
pub(super) async fn wait_for_crds(client: &Client) -> anyhow::Result<()> {
    loop {
        let missing = missing_kinds(client).await;
        if missing.is_empty() {
            return Ok(());
        }
        warn!(
            ?missing,
            "foureyes CRDs not installed yet; install them with `foureyes crds | kubectl apply --server-side -f -`"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn missing_kinds(client: &Client) -> Vec<&'static str> {
    let lp = ListParams::default().limit(1);
    let mut missing = vec![];
    if Api::<Workspace>::all(client.clone()).list_metadata(&lp).await.is_err() {
        missing.push("Workspace");
    }
    if Api::<Project>::all(client.clone()).list_metadata(&lp).await.is_err() {
        missing.push("Project");
    }
    if Api::<RoleBinding>::all(client.clone())
        .list_metadata(&lp)
        .await
        .is_err()
    {
        missing.push("RoleBinding");
    }
    if Api::<RoleRequest>::all(client.clone())
        .list_metadata(&lp)
        .await
        .is_err()
    {
        missing.push("RoleRequest");
    }
    missing
}

pub(super) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
