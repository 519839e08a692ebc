//! The one scaffold every reconciler runs on: wait for the caches, count the
//! pass, run the kind's `apply` (inside the finalizer helper for kinds that
//! clean up), reset or grow the per-object backoff, and write a status with
//! one server-side apply only when it changed.
//!
//! A kind plugs in by implementing [`Reconciled`]; `run` hands
//! [`reconcile::<K>`](reconcile) and [`error_policy::<K>`](error_policy) to
//! its `Controller`.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::warn;

use super::overlay::Overlay;
use super::{Context, Error, OwnWrites, describe, kube_err};
use crate::wire::{FIELD_MANAGER, FINALIZER};

/// What a kind's reconciler gives the scaffold.
pub trait Reconciled:
    Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Serialize + Send + Sync + 'static
{
    /// The kind's status.
    type Status: Serialize + PartialEq + Clone + Send + Sync;

    /// Whether the operator keeps its finalizer on objects of this kind (it
    /// then runs [`Reconciled::cleanup`] before they go).
    const FINALIZED: bool = true;

    /// The API for objects of this kind in `namespace` (cluster-scoped kinds
    /// ignore it).
    fn api(client: Client, namespace: Option<&str>) -> Api<Self>;

    /// Where this process remembers the statuses it wrote until the cache
    /// shows them, for kinds whose reconcilers read their own status back.
    fn own_statuses(_own: &OwnWrites) -> Option<&Overlay<Self::Status>> {
        None
    }

    /// Makes the world agree with the object.
    fn apply(obj: Arc<Self>, ctx: &Context) -> impl Future<Output = Result<Action, Error>> + Send;

    /// Removes what the object made, before it goes (only with
    /// [`Reconciled::FINALIZED`]).
    fn cleanup(_obj: Arc<Self>, _ctx: &Context) -> impl Future<Output = Result<Action, Error>> + Send {
        async { Ok(Action::await_change()) }
    }
}

/// Reconciles one object of kind `K`.
pub async fn reconcile<K: Reconciled>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.wait_ready().await;
    ctx.metrics.reconciled(kind_of::<K>());
    let key = describe(obj.as_ref());
    let action = if K::FINALIZED {
        let api = K::api(ctx.client.clone(), obj.namespace().as_deref());
        finalizer(&api, FINALIZER, obj, |event| async {
            match event {
                Finalizer::Apply(o) => K::apply(o, &ctx).await,
                Finalizer::Cleanup(o) => K::cleanup(o, &ctx).await,
            }
        })
        .await
        .map_err(|e| Error::Finalizer(Box::new(e)))?
    } else {
        K::apply(obj, &ctx).await?
    };
    ctx.backoff.succeeded(&key);
    Ok(action)
}

/// Requeues after a failure, with per-object exponential backoff, and counts
/// the failure by its cause.
pub fn error_policy<K: Reconciled>(obj: Arc<K>, err: &Error, ctx: Arc<Context>) -> Action {
    let kind = kind_of::<K>();
    ctx.metrics.reconcile_error(kind, err.category());
    let key = describe(obj.as_ref());
    let delay = ctx.backoff.failed(&key);
    warn!(%kind, object = key, %err, ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// The kind's name, for metric labels.
fn kind_of<K: Reconciled>() -> &'static str {
    match K::kind(&()) {
        std::borrow::Cow::Borrowed(kind) => kind,
        std::borrow::Cow::Owned(_) => "unknown",
    }
}

/// Writes `status` to `obj`'s status subresource (server-side apply with
/// the operator's field manager) unless it equals `previous`, and remembers
/// it until the cache shows it where the kind asks for that. Returns whether
/// it wrote.
pub async fn write_status<K: Reconciled>(
    ctx: &Context,
    obj: &K,
    previous: Option<&K::Status>,
    status: &K::Status,
) -> Result<bool, Error> {
    if previous == Some(status) {
        return Ok(false);
    }
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let written = K::api(ctx.client.clone(), obj.namespace().as_deref())
        .patch_status(
            &obj.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(body),
        )
        .await
        .map_err(kube_err("patch status"))?;
    if let (Some(overlay), Some(uid)) = (K::own_statuses(&ctx.own), obj.meta().uid.as_deref()) {
        overlay.wrote(uid, written.meta().resource_version.clone(), status.clone());
    }
    Ok(true)
}
