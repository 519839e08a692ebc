//! The sweep: every sweep interval, removes the native bindings that should
//! not exist (invariant 2) and refreshes the gauges.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kube::{Resource, ResourceExt};
use tracing::warn;

use super::wakes::owner_of;
use crate::api::RoleBinding;
use crate::policy::sweep::{OwnerFacts, sweep_reason};
use crate::policy::transition::reason;
use crate::rbac::{self, NativeGrant};
use crate::reconcile::{self, Context, SyncTracker};

/// Sweeps every sweep interval until `shutdown`, from the first sync of the
/// native bindings' cache on.
pub(super) async fn every_interval(
    ctx: Arc<Context>,
    tracker: Arc<SyncTracker>,
    shutdown: impl Future<Output = ()> + Clone,
) {
    // The sweep needs only the native bindings' cache: their expiry is
    // on them. If the foureyes caches cannot sync (say, a watch keeps
    // failing), overdue access is still removed; owner checks wait
    // for the foureyes bindings' cache.
    while !tracker.is_synced("native rolebindings") {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = shutdown.clone() => return,
        }
    }
    let mut tick = tokio::time::interval(ctx.config.sweep_interval.get());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.clone() => return,
        }
        if let Err(err) = sweep(&ctx, tracker.is_synced("rolebindings")).await {
            warn!(%err, "sweep failed");
        }
    }
}

/// Invariant 2: removes every native binding whose owner is gone, has another
/// uid, is finished, or whose expiry has passed; and refreshes the gauges.
///
/// Without `owners_known` (the foureyes bindings' cache not synced), only
/// native bindings past their expiry are removed.
async fn sweep(ctx: &Context, owners_known: bool) -> Result<usize, reconcile::Error> {
    let now = Utc::now();
    let mut removed = 0;
    let mut overdue = 0;
    for n in ctx.natives.state() {
        let owner = owner_of(&n).and_then(|r| ctx.bindings.get(&r));
        let uid = n.owner_uid.clone();
        let expiry = n.expires_at;
        let is_overdue = crate::policy::sweep::overdue(expiry, now);
        let owner_uid = owner.as_ref().and_then(|b| b.uid());
        let facts = match &owner {
            None => OwnerFacts::Gone,
            Some(b) => OwnerFacts::Present {
                uid: owner_uid.as_deref(),
                phase: b.status.as_ref().and_then(|s| s.phase),
            },
        };
        let reason = if owners_known {
            sweep_reason(facts, uid.as_deref(), expiry, now)
        } else {
            is_overdue.then_some("past its expiry")
        };
        let Some(reason) = reason else { continue };
        if ctx.was_deleted(n.uid.as_deref()) {
            continue;
        }
        if is_overdue {
            overdue += 1;
        }
        let ns = n.namespace.clone();
        if rbac::apply::delete_native(&ctx.client, &ns, &n.name, n.uid.as_deref())
            .await
            .map_err(reconcile::kube_err("sweep native binding"))?
        {
            removed += 1;
            warn!(namespace = ns, name = n.name, reason, "sweep removed native binding");
            // Only on the real owner: anyone who can label a RoleBinding can
            // make one look like ours, naming any foureyes binding.
            if let Some(b) = owner.filter(|b| is_native_of(&n, b)) {
                let note = format!("sweep removed native binding {ns}/{} ({reason})", n.name);
                ctx.publish(&b.object_ref(&()), true, reason::OVERDUE_REVOKED, "Revoke", note)
                    .await;
            }
        }
    }
    let active = ctx
        .bindings
        .state()
        .iter()
        .filter(|b| crate::policy::managers::is_active(b, now))
        .count();
    ctx.metrics.set_active_grants(active as i64);
    ctx.metrics.set_overdue_grants(overdue);
    Ok(removed)
}

/// Whether `n` is one of the native bindings the operator makes for `b`: it
/// names `b`'s uid and carries the name derived from `b` and that uid.
fn is_native_of(n: &NativeGrant, b: &RoleBinding) -> bool {
    let (Some(uid), Some(ns)) = (b.uid(), b.namespace()) else {
        return false;
    };
    n.owner_uid.as_deref() == Some(uid.as_str()) && n.name == rbac::native_name(&ns, &b.name_any(), &uid)
}

/// Arguments of `foureyes sweep`.
#[derive(clap::Args, Debug, Clone)]
pub struct SweepArgs {
    /// Sweep once and exit (as the chart's CronJob does); without it, sweep
    /// every `--interval` until SIGTERM.
    #[arg(long)]
    pub once: bool,
    /// How often to sweep without `--once` (a Go duration).
    #[arg(long, env = "FOUREYES_SWEEP_INTERVAL", default_value = "1m")]
    pub interval: crate::api::GoDuration,
    /// Log format: `text` or `json`.
    #[arg(long, env = "FOUREYES_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

/// `foureyes sweep`: the second, independent path that removes overdue
/// access (DESIGN §5), for when the operator Deployment is broken. It needs
/// only `list` and `delete` on RoleBindings, and an admission policy lets
/// its identity delete only native bindings foureyes made for a grant. It
/// removes exactly what the start-up revocation removes (the same code), and
/// records nothing: the operator, once back, records each expiry once,
/// saying that the access had already been removed.
pub async fn sweep_command(args: SweepArgs) -> anyhow::Result<()> {
    super::startup::init_tracing(&args.log_format);
    let client = kube::Client::try_default().await?;
    loop {
        let outcome = rbac::revoke::remove_overdue(&client, Utc::now()).await;
        let failed = match &outcome {
            Ok(o) => {
                for r in &o.removed {
                    warn!(
                        namespace = r.meta.namespace(),
                        name = r.meta.name_any(),
                        expiry = ?r.expires_at,
                        "sweep removed overdue native binding"
                    );
                }
                for (r, err) in &o.failed {
                    warn!(namespace = r.meta.namespace(), name = r.meta.name_any(), %err, "sweep could not remove overdue native binding");
                }
                tracing::info!(removed = o.removed.len(), failed = o.failed.len(), "sweep done");
                o.failed.len()
            }
            Err(err) => {
                warn!(%err, "sweep could not list native bindings");
                if args.once {
                    anyhow::bail!("listing native bindings: {err}");
                }
                0
            }
        };
        if args.once {
            anyhow::ensure!(failed == 0, "{failed} overdue native bindings could not be removed");
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(args.interval.get()) => {}
            _ = super::startup::shutdown_signal() => return Ok(()),
        }
    }
}
