//! `foureyes run`: start-up, controllers, the sweep and shutdown.
//!
//! Start-up order matters for invariant 1 (DESIGN §2): before any controller
//! runs, and before the leader Lease is sought, every native binding past
//! its expiry is revoked, so access that expired while the operator was down
//! ends at once. Removing overdue access needs no leadership (invariant 12):
//! every replica does it at start-up, and keeps a timer at each native
//! binding's expiry ([`expiry`]).
//!
//! With several replicas, only the holder of the leader Lease gets further
//! ([`crate::leader`]): the bookkeeping of what start-up removed, the
//! controllers and the sweep. The others serve the probes and metrics, keep
//! their expiry timers, and wait.
//!
//! The pieces: [`startup`] (what runs before the controllers), [`watches`]
//! (the caches and their streams), [`wakes`] (which change wakes which
//! controller), [`sweep`] and [`anchors`] (the periodic checks); `run`
//! wires them together.

mod anchors;
mod expiry;
mod startup;
mod sweep;
mod wakes;
mod watches;

use crate::wire::GRANT_SELECTOR;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use futures::{FutureExt as _, StreamExt as _};
use kube::runtime::controller::Controller;
use kube::runtime::events::Reporter;
use kube::runtime::{WatchStreamExt, watcher};
use tracing::{info, warn};

use crate::api::{Lockout, Project, RoleBinding, RoleRequest};
use crate::audit::events::Events;
use crate::config::Config;
use crate::reconcile::{self, Backoff, Context, SyncTracker, Triggers};
use crate::telemetry::{Health, Metrics};
use anchors::{check_anchors, report_anchors};
use startup::{announce_overdue, init_tracing, revoke_overdue, shutdown_signal, wait_for_crds};
pub use sweep::{SweepArgs, sweep_command};
use watches::{cached, coalesced, namespaced_key, native_cache, receiver_stream, report_invalid, workspace_key};

/// Arguments of `foureyes run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The configuration file (YAML); without it, the defaults (no partners).
    #[arg(long, env = "FOUREYES_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where to serve /metrics, /healthz and /readyz.
    #[arg(long, env = "FOUREYES_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Overrides the configuration's retention of finished bindings (a Go duration).
    #[arg(long, env = "FOUREYES_RETENTION")]
    pub retention: Option<crate::api::GoDuration>,
    /// Overrides the configuration's sweep interval (a Go duration).
    #[arg(long, env = "FOUREYES_SWEEP_INTERVAL")]
    pub sweep_interval: Option<crate::api::GoDuration>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "FOUREYES_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// This instance's name in events and in the leader Lease (the pod name
    /// in a cluster).
    #[arg(long, env = "POD_NAME")]
    pub instance: Option<String>,
    /// The operator's own namespace, where the notification sinks' Secrets
    /// are read (default: `POD_NAMESPACE`, else `foureyes-system`).
    #[arg(long, env = "FOUREYES_NAMESPACE")]
    pub namespace: Option<String>,
    /// Leader election (see [`crate::leader`]).
    #[command(flatten)]
    pub leader: crate::leader::LeaderArgs,
}

impl RunArgs {
    /// The operator's own namespace: the flag, else `POD_NAMESPACE`, else
    /// `foureyes-system`.
    pub fn namespace(&self) -> String {
        self.namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .or_else(|| std::env::var("POD_NAMESPACE").ok().filter(|ns| !ns.is_empty()))
            .unwrap_or_else(|| crate::wire::DEFAULT_LEASE_NAMESPACE.to_owned())
    }
}

/// Runs the operator until SIGTERM or Ctrl-C.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_tracing(&args.log_format);
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(r) = args.retention.clone() {
        config.retention = r;
    }
    if let Some(s) = args.sweep_interval.clone() {
        config.sweep_interval = s;
    }
    config.validate()?;
    let config = Arc::new(config);

    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::new());
    health.set_not_ready_reason("starting");
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let shutdown = {
        let mut rx = shutdown_rx.clone();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
        .shared()
    };
    let server = tokio::spawn(crate::telemetry::serve(
        args.metrics_addr,
        metrics.clone(),
        health.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(async move {
        shutdown_signal().await;
        info!("shutting down");
        let _ = shutdown_tx.send(true);
    });

    // Every write the operator sends is counted on the way out
    // (`foureyes_api_writes_total`), by the client itself.
    let client = kube::client::ClientBuilder::try_from(kube::Config::infer().await?)?
        .with_layer(&crate::telemetry::CountWritesLayer::new(metrics.clone()))
        .build();
    // The notification sinks, checked now (a bad one stops the start). Only
    // the leader's reconcilers queue messages; a standby's senders stay idle.
    let notifier = crate::notify::Notifier::start(
        &config.notifications,
        client.clone(),
        &args.namespace(),
        metrics.clone(),
    )?;
    // Invariants 1 and 12: overdue access goes first, in every replica,
    // without waiting for the CRDs or the Lease.
    health.set_not_ready_reason("revoking overdue access");
    let revoked = revoke_overdue(&client, &metrics, shutdown.clone()).await;
    info!(revoked = revoked.len(), "overdue access revoked before start");
    // From now on, in every replica, a timer at each expiry: a second line
    // behind the leader's binding controller, which may be frozen, cut off,
    // syncing its caches or backing off after errors.
    tokio::spawn(expiry::revoke_at_expiry(
        client.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));

    health.set_not_ready_reason("waiting for the foureyes CRDs");
    tokio::select! {
        r = wait_for_crds(&client) => r?,
        _ = shutdown.clone() => return Ok(()),
    }

    let publisher = Events::new(
        client.clone(),
        Reporter {
            controller: "foureyes".into(),
            instance: args.instance.clone(),
        },
    );
    // Only the leader does the bookkeeping and runs the controllers (crate::leader).
    let identity = crate::leader::identity(args.instance.as_deref());
    let Some(leader) = crate::leader::acquire(&client, &args.leader, &identity, &health, shutdown.clone()).await?
    else {
        return Ok(());
    };
    metrics.set_leader(true);
    let acting_since = chrono::Utc::now();
    health.set_not_ready_reason("starting the controllers");
    tokio::select! {
        _ = announce_overdue(&client, &publisher, &revoked) => {},
        reason = leader.lost() => return Err(lost_leadership(&health, reason)),
    };
    drop(revoked);

    // The trust anchors: checked before any decision, then every sweep interval.
    let anchors = Arc::new(std::sync::atomic::AtomicBool::new(true));
    if let Some(problems) = check_anchors(&client).await {
        report_anchors(&problems, &anchors, &metrics, &publisher, &health).await;
    }

    let wc = watcher::Config::default();
    let (invalid_tx, invalid_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(report_invalid(publisher.clone(), invalid_rx));
    let index = reconcile::index::Indexes::default();
    let (tracker, synced) = SyncTracker::new(&[
        "workspaces",
        "projects",
        "rolebindings",
        "rolerequests",
        "native rolebindings",
        "lockouts",
        "outside rolebindings",
        "outside clusterrolebindings",
    ]);
    let (ws_reader, ws_stream) = cached(
        &client,
        wc.clone(),
        &tracker,
        "workspaces",
        Some((&index.workspaces_by_namespace, workspace_key)),
        &invalid_tx,
    );
    let (proj_reader, proj_stream) = cached(
        &client,
        wc.clone(),
        &tracker,
        "projects",
        Some((&index.projects_by_namespace, namespaced_key::<Project>)),
        &invalid_tx,
    );
    let (rb_reader, rb_stream) = cached(
        &client,
        wc.clone(),
        &tracker,
        "rolebindings",
        Some((&index.bindings_by_namespace, namespaced_key::<RoleBinding>)),
        &invalid_tx,
    );
    let (rr_reader, rr_stream) = cached(
        &client,
        wc.clone(),
        &tracker,
        "rolerequests",
        Some((&index.requests_by_namespace, namespaced_key::<RoleRequest>)),
        &invalid_tx,
    );
    let (lo_reader, lo_stream) = cached::<Lockout>(&client, wc.clone(), &tracker, "lockouts", None, &invalid_tx);
    let outside = Arc::new(crate::rbac::outside::Outside::default());
    // This process's own writes, until the caches show them: each watch
    // below feeds its part after its cache took the event in.
    let own = Arc::new(reconcile::OwnWrites::default());
    let (native_reader, native_triggers) = native_cache(
        &client,
        wc.clone().labels(GRANT_SELECTOR),
        &tracker,
        &index.natives_by_owner,
        &own,
    );

    // Relays (see reconcile::relay and `wakes`): which controllers hear of a
    // change to an object that others depend on.
    let (rb_tx, rb_rx) = tokio::sync::mpsc::unbounded_channel();
    // Bindings gone from the API server, to reap what they left behind.
    let (gone_tx, mut gone_rx) = tokio::sync::mpsc::unbounded_channel::<RoleBinding>();
    let rb_stream = rb_stream.inspect(wakes::deleted_bindings(gone_tx)).inspect({
        let own = own.clone();
        move |event| {
            if let Ok(event) = event {
                own.binding_statuses.observe(event);
            }
        }
    });
    let (proj_tx, proj_rx) = tokio::sync::mpsc::unbounded_channel();
    let (rr_tx, rr_rx) = tokio::sync::mpsc::unbounded_channel();
    let (ws_tx, ws_rx) = tokio::sync::mpsc::unbounded_channel();
    let (lo_tx, lo_rx) = tokio::sync::mpsc::unbounded_channel();
    // A lockout ends its subject's bindings and open requests (they consult
    // the lockouts in force); what they become changes what it reports.
    let lo_stream = lo_stream
        .inspect(wakes::dependents_of_lockout(
            rb_tx.clone(),
            rr_tx.clone(),
            rb_reader.clone(),
            rr_reader.clone(),
        ))
        .touched_objects();
    let rb_stream = rb_stream
        .inspect(wakes::lockouts_of_binding(lo_tx.clone(), lo_reader.clone()))
        .inspect(wakes::dependents_of_binding(
            rr_tx.clone(),
            rb_tx.clone(),
            ws_tx.clone(),
            wakes::BindingDependents {
                requests: index.requests_by_namespace.clone(),
                bindings: index.bindings_by_namespace.clone(),
                store: rb_reader.clone(),
                workspaces: index.workspaces_by_namespace.clone(),
            },
        ))
        .touched_objects();
    let ws_stream = ws_stream
        .inspect(wakes::dependents_of_workspace(
            rb_tx.clone(),
            rr_tx,
            index.bindings_by_namespace.clone(),
            index.requests_by_namespace.clone(),
        ))
        .inspect(wakes::projects_of_workspace(
            proj_tx,
            index.projects_by_namespace.clone(),
        ))
        .touched_objects();
    let proj_stream = proj_stream
        .inspect(wakes::bindings_of_project(
            rb_tx.clone(),
            rb_reader.clone(),
            index.bindings_by_namespace.clone(),
        ))
        .touched_objects();
    let rr_stream = rr_stream
        .inspect({
            let own = own.clone();
            move |event| {
                if let Ok(event) = event {
                    own.request_statuses.observe(event);
                    match event {
                        watcher::Event::Apply(r) => {
                            own.request_arrivals.seen(r.metadata.uid.as_deref().unwrap_or_default())
                        }
                        watcher::Event::Delete(r) => own
                            .request_arrivals
                            .forget(r.metadata.uid.as_deref().unwrap_or_default()),
                        _ => {}
                    }
                }
            }
        })
        .inspect(wakes::binding_of_request(rb_tx.clone()))
        .inspect(wakes::lockouts_of_request(lo_tx.clone(), lo_reader.clone()))
        .touched_objects();
    let ctx = Arc::new(Context {
        world: reconcile::World {
            config: config.clone(),
            workspaces: ws_reader.clone(),
            projects: proj_reader.clone(),
            bindings: rb_reader.clone(),
            requests: rr_reader.clone(),
            natives: native_reader.clone(),
            lockouts: lo_reader.clone(),
            outside: outside.clone(),
            index,
            own,
            synced,
            anchors: anchors.clone(),
            workspaces_verified: Default::default(),
            workspace_counts_written: Default::default(),
            grants: Default::default(),
        },
        client: client.clone(),
        events: publisher,
        metrics: metrics.clone(),
        backoff: Backoff::default(),
        triggers: Triggers {
            bindings: rb_tx,
            workspaces: ws_tx,
        },
        history: Arc::new(crate::audit::history::History::new(client.clone())),
        notifier,
        acting_since,
    });

    // Bounded concurrency keeps the number of open connections (and memory)
    // in check; 64 parallel reconciles revoke a thousand expiries in well
    // under the 2 s budget.
    let binding_controller = Controller::for_stream(rb_stream, rb_reader.clone())
        .with_config(kube::runtime::controller::Config::default().concurrency(64))
        .reconcile_on(native_triggers)
        .reconcile_on(receiver_stream(rb_rx))
        .graceful_shutdown_on(shutdown.clone())
        .run(
            reconcile::scaffold::reconcile,
            reconcile::scaffold::error_policy,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));

    let project_controller = Controller::for_stream(proj_stream, proj_reader.clone())
        .with_config(kube::runtime::controller::Config::default().concurrency(16))
        .reconcile_on(receiver_stream(proj_rx))
        .graceful_shutdown_on(shutdown.clone())
        .run(
            reconcile::scaffold::reconcile,
            reconcile::scaffold::error_policy,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));

    // A workspace's status only carries counts and conditions: bursts of
    // binding changes are coalesced into one reconcile a second (changes to
    // the workspace itself are not delayed, and the expiry path never waits).
    let workspace_controller = Controller::for_stream(ws_stream, ws_reader.clone())
        .with_config(kube::runtime::controller::Config::default().concurrency(16))
        .reconcile_on(coalesced(ws_rx, Duration::from_secs(1)))
        .graceful_shutdown_on(shutdown.clone())
        .run(
            reconcile::scaffold::reconcile,
            reconcile::scaffold::error_policy,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));

    // A request is decided again when it changes, when a manager of its
    // workspace comes or goes, when a binding made from it changes, and when
    // its workspace's spec changes. These triggers come from the streams that
    // feed the caches, after the cache took the change in, so that the
    // request is never decided on a cache older than its trigger.
    //
    // A request's pass also activates the binding it creates (its native
    // RBAC, record and status), which its own controller did before: twice
    // the slots keep as many approvals in flight as the two did together,
    // and their history entries written together.
    let request_controller = Controller::for_stream(rr_stream, rr_reader.clone())
        .with_config(kube::runtime::controller::Config::default().concurrency(128))
        .reconcile_on(receiver_stream(rr_rx))
        .graceful_shutdown_on(shutdown.clone())
        .run(
            reconcile::scaffold::reconcile,
            reconcile::scaffold::error_policy,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));

    // A lockout's status follows what its subject's bindings and requests
    // became: bursts of their changes (a thousand revocations) are
    // coalesced, so that its status is written a few times, not per binding.
    let lockout_controller = Controller::for_stream(lo_stream, lo_reader.clone())
        .with_config(kube::runtime::controller::Config::default().concurrency(4))
        .reconcile_on(coalesced(lo_rx, Duration::from_millis(500)))
        .graceful_shutdown_on(shutdown.clone())
        .run(
            reconcile::scaffold::reconcile,
            reconcile::scaffold::error_policy,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));
    let outside_watch = {
        let shutdown = shutdown.clone();
        let watch = watches::outside_rbac(client.clone(), tracker.clone(), outside, lo_reader.clone(), lo_tx);
        async move {
            tokio::select! {
                _ = watch => {}
                _ = shutdown => {}
            }
        }
    };

    {
        let ctx = ctx.clone();
        let health = health.clone();
        let tracker = tracker.clone();
        tokio::spawn(async move {
            while tokio::time::timeout(Duration::from_secs(2), ctx.wait_ready())
                .await
                .is_err()
            {
                let pending = tracker.pending();
                health.set_not_ready_reason(format!("caches not synced yet: {}", pending.join(", ")));
                info!(?pending, "waiting for caches");
            }
            if ctx.anchors_intact() {
                health.set_ready(true);
            }
            info!("caches synced; ready");
        });
    }
    let sweeper = sweep::every_interval(ctx.clone(), tracker.clone(), shutdown.clone());
    let workspace_objects = {
        let shutdown = shutdown.clone();
        let watch = wakes::workspace_objects(ctx.clone());
        async move {
            tokio::select! {
                _ = watch => {}
                _ = shutdown => {}
            }
        }
    };
    let anchor_check = anchors::check_every_interval(ctx.clone(), health.clone(), tracker.clone(), shutdown.clone());

    let reaper = {
        let ctx = ctx.clone();
        async move {
            while let Some(b) = gone_rx.recv().await {
                if let Err(err) = reconcile::binding::reap(&b, &ctx).await {
                    warn!(binding = reconcile::describe(&b), %err, "could not reap a deleted binding; the sweep will");
                }
            }
        }
    };

    info!("watching workspaces, projects, role bindings, role requests and lockouts");
    tokio::select! {
        _ = futures::future::join(
            futures::future::join5(
                binding_controller,
                project_controller,
                workspace_controller,
                request_controller,
                sweeper,
            ),
            futures::future::join5(reaper, anchor_check, workspace_objects, lockout_controller, outside_watch),
        ) => {}
        reason = leader.lost() => return Err(lost_leadership(&health, reason)),
    }
    health.set_ready(false);
    leader.release().await;
    let _ = server.await;
    info!("stopped");
    Ok(())
}

/// Losing the Lease ends the process (non-zero, so that it is restarted as a
/// waiting replica): returning drops the controllers and the sweep at once.
fn lost_leadership(health: &Health, reason: String) -> anyhow::Error {
    health.set_not_ready_reason("lost the leader lease");
    anyhow::anyhow!("lost the leader lease ({reason}); stopping so that only the new leader acts")
}
