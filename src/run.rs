//! `foureyes run`: start-up, controllers, the sweep and shutdown.
//!
//! Start-up order matters for invariant 1 (DESIGN §2): before any controller
//! runs, every native binding past its expiry is revoked, so access that
//! expired while the operator was down ends at once.
//!
//! With several replicas, only the holder of the leader Lease gets that far
//! ([`crate::leader`]); the others serve the probes and metrics and wait.

use crate::wire::{BINDING_REF_ANNOTATION, EXPIRES_ANNOTATION, GRANT_SELECTOR};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use clap::Args;
use futures::{FutureExt as _, StreamExt as _};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::rbac::v1::RoleBinding as NativeBinding;
use kube::api::ListParams;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Controller;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tracing::{info, warn};

use crate::api::{Project, RoleBinding, RoleRequest, Workspace};
use crate::audit::events::{self, Events};
use crate::config::Config;
use crate::manifests;
use crate::policy::sweep::{OwnerFacts, sweep_reason};
use crate::rbac::{self, NativeGrant};
use crate::reconcile::relay::relay;
use crate::reconcile::{self, Backoff, Context, SyncTracker, Triggers};
use crate::telemetry::{Health, Metrics};

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
    /// Leader election (see [`crate::leader`]).
    #[command(flatten)]
    pub leader: crate::leader::LeaderArgs,
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

    let client = Client::try_default().await?;
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
    // Only the leader acts: from the start-up revocation on (crate::leader).
    let identity = crate::leader::identity(args.instance.as_deref());
    let Some(leader) = crate::leader::acquire(&client, &args.leader, &identity, &health, shutdown.clone()).await?
    else {
        return Ok(());
    };
    metrics.set_leader(true);
    health.set_not_ready_reason("revoking overdue access");
    let revoked = tokio::select! {
        revoked = revoke_overdue(&client, &publisher, &metrics) => revoked?,
        reason = leader.lost() => return Err(lost_leadership(&health, reason)),
    };
    info!(revoked, "overdue access revoked before start");

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
    let (native_reader, native_triggers) = native_cache(
        &client,
        wc.clone().labels(GRANT_SELECTOR),
        &tracker,
        &index.natives_by_owner,
    );

    // Relays (see reconcile::relay): which controllers hear of a change to
    // an object that others depend on.
    let (rb_tx, rb_rx) = tokio::sync::mpsc::unbounded_channel();
    // Bindings gone from the API server, to reap what they left behind.
    let (gone_tx, mut gone_rx) = tokio::sync::mpsc::unbounded_channel::<RoleBinding>();
    let rb_stream = rb_stream.inspect(move |event| {
        if let Ok(watcher::Event::Delete(b)) = event {
            let _ = gone_tx.send(b.clone());
        }
    });
    let (proj_tx, proj_rx) = tokio::sync::mpsc::unbounded_channel();
    let (rr_tx, rr_rx) = tokio::sync::mpsc::unbounded_channel();
    // A binding's phase or spec decides the requests of its namespace (a
    // manager's) or the one it was made from.
    let rb_stream = rb_stream
        .inspect(relay(
            |b: &RoleBinding| {
                (
                    b.metadata.generation,
                    b.status.as_ref().and_then(|s| s.phase),
                    b.metadata.deletion_timestamp.is_some(),
                )
            },
            {
                let tx = rr_tx.clone();
                let requests = index.requests_by_namespace.clone();
                move |b| {
                    for r in requests_touched_by_binding(b, &requests) {
                        let _ = tx.send(r);
                    }
                }
            },
        ))
        .touched_objects();
    // A workspace's spec, readiness and deletion decide its bindings and
    // requests; its projects follow every change of it.
    let ws_stream = ws_stream
        .inspect(relay(
            |ws: &Workspace| {
                (
                    ws.metadata.generation,
                    ws.is_ready(),
                    ws.metadata.deletion_timestamp.is_some(),
                )
            },
            {
                let (rb_tx, rr_tx) = (rb_tx.clone(), rr_tx);
                let (bindings, requests) = (index.bindings_by_namespace.clone(), index.requests_by_namespace.clone());
                move |ws: &Workspace| {
                    let ns = ws.control_namespace();
                    for name in bindings.get(&ns) {
                        let _ = rb_tx.send(ObjectRef::new(&name).within(&ns));
                    }
                    for name in requests.get(&ns) {
                        let _ = rr_tx.send(ObjectRef::new(&name).within(&ns));
                    }
                }
            },
        ))
        .inspect(relay(|ws: &Workspace| ws.metadata.resource_version.clone(), {
            let (tx, projects) = (proj_tx, index.projects_by_namespace.clone());
            move |ws: &Workspace| {
                let ns = ws.control_namespace();
                for name in projects.get(&ns) {
                    let _ = tx.send(ObjectRef::new(&name).within(&ns));
                }
            }
        }))
        .touched_objects();
    // A project's role map, namespaces and deletion decide its bindings.
    let proj_stream = proj_stream
        .inspect(relay(
            |p: &Project| {
                (
                    p.metadata.generation,
                    p.status.as_ref().map(|s| s.namespaces.clone()),
                    p.metadata.deletion_timestamp.is_some(),
                )
            },
            {
                let (tx, bindings) = (rb_tx.clone(), rb_reader.clone());
                let by_namespace = index.bindings_by_namespace.clone();
                move |p: &Project| {
                    let (ns, name) = (p.namespace().unwrap_or_default(), p.name_any());
                    for b in by_namespace.get(&ns) {
                        let r = ObjectRef::new(&b).within(&ns);
                        if bindings
                            .get(&r)
                            .is_some_and(|b| b.spec.project.as_deref() == Some(name.as_str()))
                        {
                            let _ = tx.send(r);
                        }
                    }
                }
            },
        ))
        .touched_objects();
    // A request's decision decides the binding made from it (named after
    // it): its approval authorises it, another decision recorded later
    // takes that back.
    let rr_stream = rr_stream
        .inspect(relay(|r: &RoleRequest| r.status.as_ref().and_then(|s| s.phase), {
            let tx = rb_tx.clone();
            move |r: &RoleRequest| {
                if let Some(ns) = r.namespace() {
                    let _ = tx.send(ObjectRef::new(&r.name_any()).within(&ns));
                }
            }
        }))
        .touched_objects();
    let (ws_tx, ws_rx) = tokio::sync::mpsc::unbounded_channel();
    let ctx = Arc::new(Context {
        client: client.clone(),
        events: publisher,
        config: config.clone(),
        metrics: metrics.clone(),
        workspaces: ws_reader.clone(),
        projects: proj_reader.clone(),
        bindings: rb_reader.clone(),
        requests: rr_reader.clone(),
        natives: native_reader.clone(),
        backoff: Backoff::default(),
        triggers: Triggers {
            bindings: rb_tx,
            workspaces: ws_tx,
        },
        synced,
        written: Default::default(),
        requests_written: Default::default(),
        approved_requests: Default::default(),
        index,
        deleted: Default::default(),
        history: Arc::new(crate::audit::history::History::new(client.clone()).with_metrics(metrics.clone())),
        workspaces_verified: Default::default(),
        anchors: anchors.clone(),
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
            reconcile::binding::reconcile,
            reconcile::binding::error_policy,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));

    let project_controller = Controller::for_stream(proj_stream, proj_reader.clone())
        .with_config(kube::runtime::controller::Config::default().concurrency(16))
        .reconcile_on(receiver_stream(proj_rx))
        .graceful_shutdown_on(shutdown.clone())
        .run(
            reconcile::project::reconcile,
            reconcile::project::error_policy,
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
            reconcile::workspace::reconcile,
            reconcile::workspace::error_policy,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));

    // A request is decided again when it changes, when a manager of its
    // workspace comes or goes, when a binding made from it changes, and when
    // its workspace's spec changes. These triggers come from the streams that
    // feed the caches, after the cache took the change in, so that the
    // request is never decided on a cache older than its trigger.
    let request_controller = Controller::for_stream(rr_stream, rr_reader.clone())
        .with_config(kube::runtime::controller::Config::default().concurrency(64))
        .reconcile_on(receiver_stream(rr_rx))
        .graceful_shutdown_on(shutdown.clone())
        .run(
            reconcile::request::reconcile,
            reconcile::request::error_policy,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));

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
    let sweeper = {
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        let tracker = tracker.clone();
        async move {
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
    };

    let anchor_check = {
        let (ctx, health, tracker, shutdown) = (ctx.clone(), health.clone(), tracker.clone(), shutdown.clone());
        async move {
            // Every sweep interval; every two seconds while not intact or
            // not readable, so that a restored policy is seen at once.
            let mut unsure = false;
            loop {
                let wait = if ctx.anchors_intact() && !unsure {
                    ctx.config.sweep_interval.get()
                } else {
                    Duration::from_secs(2).min(ctx.config.sweep_interval.get())
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.clone() => return,
                }
                let was = ctx.anchors_intact();
                let Some(problems) = check_anchors(&ctx.client).await else {
                    unsure = true;
                    continue;
                };
                unsure = false;
                report_anchors(&problems, &ctx.anchors, &ctx.metrics, &ctx.events, &health).await;
                if problems.is_empty() && !was {
                    if tracker.pending().is_empty() {
                        health.set_ready(true);
                    }
                    // What waited for the policies is decided now.
                    for b in ctx.bindings.state() {
                        let _ = ctx.triggers.bindings.send(ObjectRef::from_obj(b.as_ref()));
                    }
                }
            }
        }
    };

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

    info!("watching workspaces, projects, role bindings and role requests");
    tokio::select! {
        _ = futures::future::join(
            futures::future::join5(
                binding_controller,
                project_controller,
                workspace_controller,
                request_controller,
                sweeper,
            ),
            futures::future::join(reaper, anchor_check),
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

/// A watch on every `K` (or those `config` selects) that feeds a cache
/// (managed fields stripped), an optional secondary index, and the sync
/// tracker under `name`; returns the cache and the stream of its events, for
/// relays and (as touched objects) a controller. Objects that do not
/// deserialise are kept out of the cache and reported on `invalid` (see
/// [`reconcile::guard`]).
fn cached<K>(
    client: &Client,
    config: watcher::Config,
    tracker: &Arc<SyncTracker>,
    name: &'static str,
    index: Option<(&Arc<reconcile::index::Index>, reconcile::index::Entry<K>)>,
    invalid: &tokio::sync::mpsc::UnboundedSender<(ObjectReference, String)>,
) -> (
    reflector::Store<K>,
    impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store::<K>();
    let mut feed = index.map(|(index, entry)| reconcile::index::feed(index, entry));
    let mut synced = synced_on_init(tracker, name);
    let lookup = reader.clone();
    let invalid = invalid.clone();
    let stream = watcher(Api::<DeserializeGuard<K>>::all(client.clone()), config)
        .default_backoff()
        .modify(strip_managed_fields)
        .filter_map(move |event| {
            let event = event.map(|event| {
                reconcile::guard::unguard(
                    event,
                    |key| lookup.get(key).map(|k| (*k).clone()),
                    |bad| {
                        warn!(kind = %K::kind(&()), object = reconcile::guard::describe_invalid(bad), error = %bad.error, "cannot read object; leaving it out");
                        let reference = ObjectReference {
                            api_version: Some(K::api_version(&()).into_owned()),
                            kind: Some(K::kind(&()).into_owned()),
                            name: bad.metadata.name.clone(),
                            namespace: bad.metadata.namespace.clone(),
                            uid: bad.metadata.uid.clone(),
                            resource_version: bad.metadata.resource_version.clone(),
                            field_path: None,
                        };
                        let _ = invalid.send((reference, bad.error.clone()));
                    },
                )
            });
            futures::future::ready(event.transpose())
        })
        .reflect(writer)
        .inspect(move |event| {
            if let Some(feed) = feed.as_mut() {
                feed(event);
            }
            synced(event);
        });
    (reader, stream)
}

/// The cache of the native bindings foureyes made, kept as [`NativeGrant`]s
/// (see [`rbac::cached`]), indexed by owner; returns it and the stream of
/// owning foureyes bindings to reconcile when one of their native bindings
/// changes or goes (from the first sync on: before it, every binding is
/// reconciled anyway).
fn native_cache(
    client: &Client,
    config: watcher::Config,
    tracker: &Arc<SyncTracker>,
    index: &Arc<reconcile::index::Index>,
) -> (
    reflector::Store<NativeGrant>,
    impl futures::Stream<Item = ObjectRef<RoleBinding>> + Send + 'static,
) {
    let (reader, writer) = reflector::store::<NativeGrant>();
    let mut feed = reconcile::index::feed(index, native_key);
    let mut synced = synced_on_init(tracker, "native rolebindings");
    let mut first_sync_done = false;
    let natives = watcher(Api::<NativeBinding>::all(client.clone()), config)
        .default_backoff()
        .map(|event| event.map(|event| map_event(event, |n| NativeGrant::from(&n))));
    let stream = reflector::reflector(writer, natives).filter_map(move |event| {
        feed(&event);
        synced(&event);
        let owner = match event {
            Ok(watcher::Event::InitDone) => {
                first_sync_done = true;
                None
            }
            Ok(watcher::Event::Apply(n) | watcher::Event::Delete(n)) => owner_of(&n),
            Ok(watcher::Event::InitApply(n)) if first_sync_done => owner_of(&n),
            // A failing watch is retried with backoff; the sweep and the
            // timers do not depend on it.
            Err(err) => {
                warn!(%err, "watch of native bindings failed; retrying");
                None
            }
            _ => None,
        };
        futures::future::ready(owner)
    });
    (reader, stream)
}

/// A watch event with its object converted.
fn map_event<A, B>(event: watcher::Event<A>, f: impl Fn(A) -> B) -> watcher::Event<B> {
    match event {
        watcher::Event::Apply(a) => watcher::Event::Apply(f(a)),
        watcher::Event::Delete(a) => watcher::Event::Delete(f(a)),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(a) => watcher::Event::InitApply(f(a)),
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

/// Publishes a Warning event `InvalidObject` once per version of each object
/// that the operator cannot read.
async fn report_invalid(publisher: Events, mut rx: tokio::sync::mpsc::UnboundedReceiver<(ObjectReference, String)>) {
    let mut reported = std::collections::HashSet::new();
    while let Some((reference, error)) = rx.recv().await {
        let key = format!(
            "{}@{}",
            reference.uid.clone().unwrap_or_default(),
            reference.resource_version.clone().unwrap_or_default()
        );
        if !reported.insert(key) {
            continue;
        }
        publisher
            .publish(
            &reference,
            true,
            crate::audit::events::INVALID_OBJECT,
            "Read",
            format!("the operator cannot read this object and ignores it (a binding grants nothing while unreadable): {error}"),
        )
        .await;
    }
}

/// Marks a stream synced when its watcher delivers the end of a full list.
fn synced_on_init<K>(
    tracker: &Arc<SyncTracker>,
    name: &'static str,
) -> impl FnMut(&Result<watcher::Event<K>, watcher::Error>) + Send + 'static {
    let tracker = tracker.clone();
    move |event| {
        if matches!(event, Ok(watcher::Event::InitDone)) {
            tracker.synced(name);
        }
    }
}

/// Drops what the operator never reads before an object enters a cache:
/// managed fields, and kubectl's copy of the whole last applied manifest.
fn strip_managed_fields<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

fn receiver_stream<T: Send + 'static>(
    rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

/// The requests to decide again when a binding changes: every request of the
/// namespace for a manager binding (the quorum may change), the origin
/// request for a binding made from one.
fn requests_touched_by_binding(b: &RoleBinding, requests: &reconcile::index::Index) -> Vec<ObjectRef<RoleRequest>> {
    let ns = b.namespace().unwrap_or_default();
    if b.spec.workspace_role == Some(crate::api::WorkspaceRole::Manager) {
        requests
            .get(&ns)
            .into_iter()
            .map(|name| ObjectRef::new(&name).within(&ns))
            .collect()
    } else {
        b.spec
            .origin_request
            .as_ref()
            .map(|o| ObjectRef::new(&o.name).within(&ns))
            .into_iter()
            .collect()
    }
}

/// Collects requests and passes each distinct one on once per `window`.
fn coalesced<T>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<T>,
    window: Duration,
) -> impl futures::Stream<Item = T> + Send + 'static
where
    T: Eq + std::hash::Hash + Send + 'static,
{
    let (tx, out) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut pending = std::collections::HashSet::new();
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + window, window);
        loop {
            tokio::select! {
                item = rx.recv() => match item {
                    Some(item) => { pending.insert(item); }
                    None => break,
                },
                _ = tick.tick() => {
                    for item in pending.drain() {
                        if tx.send(item).is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    receiver_stream(out)
}

fn workspace_key(ws: &Workspace) -> Option<(String, String)> {
    Some((ws.control_namespace(), ws.name_any()))
}

fn namespaced_key<K: Resource>(obj: &K) -> Option<(String, String)> {
    Some((obj.namespace()?, obj.name_any()))
}

fn native_key(n: &NativeGrant) -> Option<(String, String)> {
    Some((n.owner_uid.clone()?, format!("{}/{}", n.namespace, n.name)))
}

/// The foureyes binding a native binding belongs to (from its annotation).
pub fn owner_of(n: &NativeGrant) -> Option<ObjectRef<RoleBinding>> {
    let (ns, name) = n.owner()?;
    Some(ObjectRef::new(name).within(ns))
}

/// Invariant 1: revokes every native binding foureyes made whose expiry has
/// passed, straight from the API (no cache), before anything else runs.
pub async fn revoke_overdue(client: &Client, publisher: &Events, metrics: &Metrics) -> anyhow::Result<usize> {
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
            metrics.api_write("NativeRoleBinding", "delete");
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
                    metrics.api_write("Event", "create");
                    publisher
                        .publish(&reference, true, events::OVERDUE_REVOKED, "Revoke", note)
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

/// Invariant 2: removes every native binding whose owner is gone, has another
/// uid, is finished, or whose expiry has passed; and refreshes the gauges.
///
/// Without `owners_known` (the foureyes bindings' cache not synced), only
/// native bindings past their expiry are removed.
pub async fn sweep(ctx: &Context, owners_known: bool) -> Result<usize, reconcile::Error> {
    let now = Utc::now();
    let mut removed = 0;
    let mut overdue = 0;
    ctx.prune_deleted();
    for n in ctx.natives.state() {
        let owner = owner_of(&n).and_then(|r| ctx.bindings.get(&r));
        let uid = n.owner_uid.clone();
        let expiry = n.expires_at;
        let is_overdue = expiry.is_none_or(|e| e <= now);
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
        ctx.metrics.api_write("NativeRoleBinding", "delete");
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
                ctx.publish(&b.object_ref(&()), true, events::OVERDUE_REVOKED, "Revoke", note)
                    .await;
            }
        }
    }
    let active = ctx
        .bindings
        .state()
        .iter()
        .filter(|b| reconcile::is_active(b, now))
        .count();
    ctx.metrics.set_active_grants(active as i64);
    ctx.metrics.set_overdue_grants(overdue);
    Ok(removed)
}

/// DESIGN §2, invariant 3 rests on the admission policies: checks that each
/// policy and binding that `foureyes crds` prints is in place and unaltered
/// (see [`manifests::policy_drift`]); one line per problem, empty when
/// intact, `None` when one could not be read (a transient error, which
/// changes nothing: the previous verdict stands until the next check).
pub async fn check_anchors(client: &Client) -> Option<Vec<String>> {
    use kube::core::{ApiResource, GroupVersionKind};
    let mut problems = vec![];
    for expected in manifests::admission_policies(crate::wire::PARAMS_NAMESPACE) {
        let kind = expected["kind"].as_str().unwrap_or_default();
        let name = expected["metadata"]["name"].as_str().unwrap_or_default();
        let gvk = GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", kind);
        let lower = kind.to_lowercase();
        let plural = match lower.strip_suffix('y') {
            Some(stem) => format!("{stem}ies"),
            None => format!("{lower}s"),
        };
        let ar = ApiResource::from_gvk_with_plural(&gvk, &plural);
        let api: Api<kube::api::DynamicObject> = Api::all_with(client.clone(), &ar);
        match api.get_opt(name).await {
            Ok(Some(live)) => {
                let live = serde_json::to_value(&live).unwrap_or_default();
                let drift = manifests::policy_drift(&expected, &live);
                if !drift.is_empty() {
                    problems.push(format!("{kind} {name} altered: {}", drift.join(", ")));
                }
            }
            Ok(None) => problems.push(format!("{kind} {name} missing")),
            Err(err) => {
                warn!(%err, kind, name, "cannot read an admission policy; checking again soon");
                return None;
            }
        }
    }
    Some(problems)
}

/// Records the outcome of [`check_anchors`] when it changes: the flag the
/// reconcilers read, the metric, readiness, a log line and a Warning event.
async fn report_anchors(
    problems: &[String],
    anchors: &std::sync::atomic::AtomicBool,
    metrics: &Metrics,
    publisher: &Events,
    health: &Health,
) {
    let intact = problems.is_empty();
    metrics.set_admission_policies_intact(intact);
    let was = anchors.swap(intact, std::sync::atomic::Ordering::SeqCst);
    if intact {
        if !was {
            info!("admission policies in place");
        }
        return;
    }
    let summary = problems.join("; ");
    health.set_not_ready_reason(format!("admission policies missing or altered: {summary}"));
    warn!(problems = %summary, "admission policies missing or altered: no new grant is authorised and no request decided until they are restored");
    if was {
        let reference = ObjectReference {
            api_version: Some("admissionregistration.k8s.io/v1".into()),
            kind: Some("ValidatingAdmissionPolicy".into()),
            name: Some(crate::wire::IDENTITY_POLICY.into()),
            ..Default::default()
        };
        metrics.api_write("Event", "create");
        publisher
            .publish(&reference, true, events::ADMISSION_POLICIES_ALTERED, "Check", summary)
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

/// Whether `n` is one of the native bindings the operator makes for `b`: it
/// names `b`'s uid and carries the name derived from `b` and that uid.
fn is_native_of(n: &NativeGrant, b: &RoleBinding) -> bool {
    let (Some(uid), Some(ns)) = (b.uid(), b.namespace()) else {
        return false;
    };
    n.owner_uid.as_deref() == Some(uid.as_str()) && n.name == rbac::native_name(&ns, &b.name_any(), &uid)
}

fn init_tracing(format: &str) {
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
async fn wait_for_crds(client: &Client) -> anyhow::Result<()> {
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

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn coalesced_passes_each_distinct_request_once_per_window() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut out = Box::pin(coalesced(rx, Duration::from_secs(1)));
        for x in [1, 2, 1, 1, 2, 3] {
            tx.send(x).unwrap();
        }
        let mut got = vec![];
        for _ in 0..3 {
            got.push(out.next().await.unwrap());
        }
        got.sort();
        assert_eq!(got, vec![1, 2, 3]);
        tx.send(1).unwrap();
        assert_eq!(out.next().await, Some(1));
        drop(tx);
        assert_eq!(out.next().await, None);
    }

    #[test]
    fn owner_of_reads_the_annotation() {
        let mut n = NativeBinding::default();
        assert!(owner_of(&NativeGrant::from(&n)).is_none());
        n.metadata.annotations = Some([(BINDING_REF_ANNOTATION.to_owned(), "ws-a/grant".to_owned())].into());
        let r = owner_of(&NativeGrant::from(&n)).unwrap();
        assert_eq!((r.namespace.as_deref(), r.name.as_str()), (Some("ws-a"), "grant"));
    }
}
