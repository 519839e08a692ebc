//! The watches: the caches of the foureyes kinds and of the native bindings,
//! and the streams of their events that feed the controllers.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::rbac::v1::RoleBinding as NativeBinding;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tracing::warn;

use super::wakes::owner_of;
use crate::api::{RoleBinding, Workspace};
use crate::audit::events::Events;
use crate::rbac::NativeGrant;
use crate::reconcile::{self, SyncTracker};

/// A watch on every `K` (or those `config` selects) that feeds a cache
/// (managed fields stripped), an optional secondary index, and the sync
/// tracker under `name`; returns the cache and the stream of its events, for
/// relays and (as touched objects) a controller. Objects that do not
/// deserialise are kept out of the cache and reported on `invalid` (see
/// [`reconcile::guard`]).
pub(super) fn cached<K>(
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
pub(super) fn native_cache(
    client: &Client,
    config: watcher::Config,
    tracker: &Arc<SyncTracker>,
    index: &Arc<reconcile::index::Index>,
    own: &Arc<reconcile::OwnWrites>,
) -> (
    reflector::Store<NativeGrant>,
    impl futures::Stream<Item = ObjectRef<RoleBinding>> + Send + 'static,
) {
    let (reader, writer) = reflector::store::<NativeGrant>();
    let mut feed = reconcile::index::feed(index, native_key);
    let mut synced = synced_on_init(tracker, "native rolebindings");
    let mut first_sync_done = false;
    let own = own.clone();
    let natives = watcher(Api::<NativeBinding>::all(client.clone()), config)
        .default_backoff()
        .map(|event| event.map(|event| map_event(event, |n| NativeGrant::from(&n))));
    let stream = reflector::reflector(writer, natives).filter_map(move |event| {
        feed(&event);
        synced(&event);
        if let Ok(event) = &event {
            // Only deletions are recorded for native bindings.
            own.deleted_natives
                .observe_with(event, |n: &NativeGrant| (n.uid.as_deref(), None));
        }
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

/// The native RBAC that foureyes did not make (RoleBindings and
/// ClusterRoleBindings without its label), kept in `outside` as what each
/// grants to whom; each change wakes the lockouts whose subject it names,
/// before or after. Runs until the watches end.
pub(super) async fn outside_rbac(
    client: Client,
    tracker: Arc<SyncTracker>,
    outside: Arc<crate::rbac::outside::Outside>,
    lockouts: reflector::Store<crate::api::Lockout>,
    tx: tokio::sync::mpsc::UnboundedSender<ObjectRef<crate::api::Lockout>>,
) {
    use crate::rbac::outside::{of_cluster_role_binding, of_role_binding};
    use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
    let shared = Outsiders {
        tracker,
        outside,
        lockouts,
        tx,
    };
    futures::join!(
        follow_outside::<NativeBinding>(&client, &shared, "RoleBinding", "outside rolebindings", of_role_binding),
        follow_outside::<ClusterRoleBinding>(
            &client,
            &shared,
            "ClusterRoleBinding",
            "outside clusterrolebindings",
            of_cluster_role_binding
        ),
    );
}

/// What the watches of native RBAC outside foureyes feed and wake.
struct Outsiders {
    tracker: Arc<SyncTracker>,
    outside: Arc<crate::rbac::outside::Outside>,
    lockouts: reflector::Store<crate::api::Lockout>,
    tx: tokio::sync::mpsc::UnboundedSender<ObjectRef<crate::api::Lockout>>,
}

async fn follow_outside<K>(
    client: &Client,
    shared: &Outsiders,
    kind: &'static str,
    sync_name: &'static str,
    convert: fn(&K) -> crate::policy::lockout::NativeSubjects,
) where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let config = watcher::Config::default().labels(crate::rbac::outside::OUTSIDE_SELECTOR);
    let mut first_sync_done = false;
    watcher(Api::<K>::all(client.clone()), config)
        .default_backoff()
        .for_each(|event| {
            match event {
                Ok(event) => {
                    let touched = shared.outside.observe(kind, &event, convert);
                    if matches!(event, watcher::Event::InitDone) {
                        first_sync_done = true;
                        shared.tracker.synced(sync_name);
                    }
                    if first_sync_done {
                        super::wakes::lockouts_of_subjects(&shared.tx, &shared.lockouts, &touched);
                    }
                }
                Err(err) => warn!(%err, kind, "watch of native RBAC outside foureyes failed; retrying"),
            }
            futures::future::ready(())
        })
        .await
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
pub(super) async fn report_invalid(
    publisher: Events,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<(ObjectReference, String)>,
) {
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
            crate::policy::transition::reason::INVALID_OBJECT,
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

pub(super) fn receiver_stream<T: Send + 'static>(
    rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

/// Collects requests and passes each distinct one on once per `window`.
pub(super) fn coalesced<T>(
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

pub(super) fn workspace_key(ws: &Workspace) -> Option<(String, String)> {
    Some((ws.control_namespace(), ws.name_any()))
}

pub(super) fn namespaced_key<K: Resource>(obj: &K) -> Option<(String, String)> {
    Some((obj.namespace()?, obj.name_any()))
}

fn native_key(n: &NativeGrant) -> Option<(String, String)> {
    Some((n.owner_uid.clone()?, format!("{}/{}", n.namespace, n.name)))
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
}
