//! Start-up: tracing, waiting for the CRDs, revoking overdue access before
//! anything else runs, and the shutdown signal.

use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::rbac::v1::RoleBinding as NativeBinding;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use tracing::warn;

use crate::api::{Project, RoleBinding, RoleRequest, Workspace};
use crate::audit::events::Events;
use crate::policy::transition::reason;
use crate::rbac;
use crate::telemetry::Metrics;
use crate::wire::{BINDING_REF_ANNOTATION, EXPIRES_ANNOTATION, GRANT_SELECTOR};

/// Invariant 1: revokes every native binding foureyes made whose expiry has
/// passed, straight from the API (no cache), before anything else runs.
pub(super) async fn revoke_overdue(client: &Client, publisher: &Events, metrics: &Metrics) -> anyhow::Result<usize> {
    let api: Api<NativeBinding> = Api::all(client.clone());
    let now = Utc::now();
    let mut revoked = 0;
    let mut continue_token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().labels(GRANT_SELECTOR).limit(500);
        if let Some(t) = &continue_token {
            lp = lp.continue_token(t);
        }
        let page = api.list_metadata(&lp).await?;
        for item in &page.items {
            let expiry = item
                .annotations()
                .get(EXPIRES_ANNOTATION)
                .and_then(|s| rbac::parse_expiry(s));
            let overdue = match expiry {
                Some(e) => e <= now,
                // Without a readable expiry, nothing says the access is still due.
                None => true,
            };
            if !overdue {
                continue;
            }
            let ns = item.namespace().unwrap_or_default();
            if rbac::apply::delete_native(client, &ns, &item.name_any(), item.metadata.uid.as_deref()).await? {
                revoked += 1;
                if let Some(e) = expiry {
                    metrics.observe_revocation_lag((now - e).num_milliseconds().max(0) as f64 / 1000.0);
                }
                warn!(
                    namespace = ns,
                    name = item.name_any(),
                    ?expiry,
                    "revoked overdue access at start-up"
                );
                // An event on the owner only if the native binding carries the
                // name the operator gives that owner's native bindings: a
                // look-alike labelled by someone else names no one.
                if let Some(owner) = item
                    .annotations()
                    .get(BINDING_REF_ANNOTATION)
                    .and_then(|r| r.split_once('/'))
                    .filter(|(ns, name)| {
                        item.labels()
                            .get(crate::wire::BINDING_UID_LABEL)
                            .is_some_and(|uid| rbac::native_name(ns, name, uid) == item.name_any())
                    })
                    && owner_has_uid(
                        client,
                        owner.0,
                        owner.1,
                        item.labels().get(crate::wire::BINDING_UID_LABEL),
                    )
                    .await
                {
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
        }
        continue_token = page.metadata.continue_.filter(|t| !t.is_empty());
        if continue_token.is_none() {
            break;
        }
    }
    Ok(revoked)
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
