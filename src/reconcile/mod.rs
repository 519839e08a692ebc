//! One reconciler per kind: gather the world, call the policy, apply.

pub mod binding;
pub mod guard;
pub mod index;
pub mod lockout;
pub mod overlay;
pub mod persistence;
pub mod project;
pub mod relay;
pub mod request;
pub mod scaffold;
pub mod workspace;

#[cfg(test)]
mod mocked;

use crate::wire::FINALIZER;
use std::sync::Arc;

use kube::Client;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::api::{Lockout, Project, RoleBinding, RoleRequest, Workspace};
use crate::config::Config;
use crate::telemetry::Metrics;

/// What reconcilers read: the caches and their indexes, this process's
/// own writes that the caches do not show yet, the configuration, and the
/// trust in the admission policies. Reconcilers decide on this alone.
pub struct World {
    /// The configuration.
    pub config: Arc<Config>,
    /// Every workspace.
    pub workspaces: Store<Workspace>,
    /// Every project.
    pub projects: Store<Project>,
    /// Every foureyes binding.
    pub bindings: Store<RoleBinding>,
    /// Every role request.
    pub requests: Store<RoleRequest>,
    /// Every native binding foureyes made for a grant.
    pub natives: Store<crate::rbac::NativeGrant>,
    /// Every lockout.
    pub lockouts: Store<Lockout>,
    /// The native RBAC that foureyes did not make (what a locked-out subject
    /// still holds outside foureyes).
    pub outside: Arc<crate::rbac::outside::Outside>,
    /// Secondary indexes over the caches.
    pub index: index::Indexes,
    /// What this process wrote that the caches do not show yet.
    pub own: Arc<OwnWrites>,
    /// Becomes true once every cache has its first full list.
    pub synced: tokio::sync::watch::Receiver<bool>,
    /// Whether every admission policy and binding is in place unaltered, as
    /// last checked (see `run::check_anchors`).
    pub anchors: Arc<std::sync::atomic::AtomicBool>,
    /// Workspaces whose control namespace, Roles and auditor binding this
    /// process found in place (by uid: at which generation), until a watch
    /// of those objects sees one of them change.
    pub workspaces_verified: std::sync::Mutex<std::collections::HashMap<String, Option<i64>>>,
    /// When this process last wrote each workspace's status (by uid): a
    /// status that only refreshes counts and chain heads waits until a
    /// second has passed since (see [`World::counts_wait`]).
    pub workspace_counts_written: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
    /// What ClusterRoles grant, as last read (for requests' approvers).
    pub grants: crate::rbac::grants::Grants,
}

/// This process's own writes, until the caches show them (see
/// [`overlay`]): fed by the watches, read by the reconcilers.
#[derive(Default)]
pub struct OwnWrites {
    /// Statuses written to foureyes bindings, by binding uid.
    pub binding_statuses: overlay::Overlay<crate::api::RoleBindingStatus>,
    /// Statuses written to requests (or about to be: an approval whose
    /// binding is being created), by request uid.
    pub request_statuses: overlay::Overlay<crate::api::RoleRequestStatus>,
    /// Native bindings deleted, by their uid.
    pub deleted_natives: overlay::Overlay<()>,
    /// Foureyes bindings (by uid) whose expiry this process removed native
    /// RBAC for, until the expiry is recorded: the others' record says the
    /// access had already been removed.
    pub expired_here: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Grants in force (by binding uid) whose coming expiry this process
    /// announced (`ExpiringSoon`), until they end.
    pub reminded: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Bindings (by uid) a pass is acting on: the request's reconcile
    /// activates the binding it created at once, from the create's
    /// response, and the binding's controller waits for that pass instead
    /// of acting on the same binding alongside it.
    pub binding_passes: Passes,
    /// When the watch last brought each request (by uid), until its
    /// reconcile takes it: how long a vote waits for its reconcile, for the
    /// approval path's timings.
    pub request_arrivals: Arrivals,
}

/// When the watch brought objects, by uid (see
/// [`OwnWrites::request_arrivals`]).
#[derive(Default)]
pub struct Arrivals(std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>);

impl Arrivals {
    /// Notes that the watch brought the object with `uid` now.
    pub fn seen(&self, uid: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid.to_owned(), std::time::Instant::now());
    }

    /// When the watch brought the object with `uid`, forgetting it.
    pub fn take(&self, uid: &str) -> Option<std::time::Instant> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(uid)
    }

    /// Forgets the object with `uid` (it is gone).
    pub fn forget(&self, uid: &str) {
        self.take(uid);
    }
}

/// One lock per object, held by the pass acting on it (see
/// [`OwnWrites::binding_passes`]); forgotten when nobody holds or waits for it.
#[derive(Default)]
pub struct Passes {
    locks: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Passes {
    /// Waits until no other pass acts on `key`, and acts on it until the
    /// returned guard is dropped.
    pub async fn enter(&self, key: &str) -> Pass<'_> {
        let lock = self
            .locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_owned())
            .or_default()
            .clone();
        Pass {
            passes: self,
            key: key.to_owned(),
            guard: Some(lock.lock_owned().await),
        }
    }
}

/// A pass acting on one object (see [`Passes::enter`]).
pub struct Pass<'a> {
    passes: &'a Passes,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut locks = self.passes.locks.lock().unwrap_or_else(|e| e.into_inner());
        if locks.get(&self.key).is_some_and(|l| Arc::strong_count(l) == 1) {
            locks.remove(&self.key);
        }
    }
}

/// What reconcilers act with: the API client, the event publisher, the
/// history appender, the metrics, the triggers of other controllers and the
/// backoff; and, through `Deref`, the [`World`] they read.
pub struct Context {
    /// What reconcilers read.
    pub world: World,
    /// The API client.
    pub client: Client,
    /// The one event publisher.
    pub events: crate::audit::events::Events,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Per-object backoff for transient errors.
    pub backoff: Backoff,
    /// Asks for other objects to be reconciled.
    pub triggers: Triggers,
    /// The history appender (one per process: it caches each chain's head).
    pub history: Arc<crate::audit::history::History>,
    /// The notification queues (see [`crate::notify`]).
    pub notifier: crate::notify::Notifier,
    /// Since when this process acts (holds the Lease): reminders due before
    /// were another leader's to send.
    pub acting_since: chrono::DateTime<chrono::Utc>,
}

impl std::ops::Deref for Context {
    type Target = World;

    fn deref(&self) -> &World {
        &self.world
    }
}

/// Tracks which watch streams have delivered their first full list.
/// (`Store::wait_until_ready` wakes only one waiter; this wakes them all.)
pub struct SyncTracker {
    pending: std::sync::Mutex<std::collections::BTreeSet<&'static str>>,
    tx: tokio::sync::watch::Sender<bool>,
}

impl SyncTracker {
    /// A tracker waiting for the named streams.
    pub fn new(names: &[&'static str]) -> (Arc<Self>, tokio::sync::watch::Receiver<bool>) {
        let (tx, rx) = tokio::sync::watch::channel(names.is_empty());
        (
            Arc::new(Self {
                pending: std::sync::Mutex::new(names.iter().copied().collect()),
                tx,
            }),
            rx,
        )
    }

    /// Marks a stream as synced.
    pub fn synced(&self, name: &'static str) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.remove(name) && pending.is_empty() {
            let _ = self.tx.send(true);
        }
    }

    /// Whether the named stream has synced.
    pub fn is_synced(&self, name: &str) -> bool {
        !self.pending.lock().unwrap_or_else(|e| e.into_inner()).contains(name)
    }

    /// The streams not synced yet.
    pub fn pending(&self) -> Vec<&'static str> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect()
    }
}

/// Channels that ask a controller to reconcile an object whose inputs changed
/// without the object itself changing.
pub struct Triggers {
    /// Reconcile a foureyes binding.
    pub bindings: tokio::sync::mpsc::UnboundedSender<kube::runtime::reflector::ObjectRef<RoleBinding>>,
    /// Reconcile a workspace.
    pub workspaces: tokio::sync::mpsc::UnboundedSender<kube::runtime::reflector::ObjectRef<Workspace>>,
}

impl World {
    /// The lockouts in force at `now`: the one fact "is this subject (or
    /// caller) locked out" that bindings, requests and votes consult.
    pub fn lockouts_in_force(&self, now: chrono::DateTime<chrono::Utc>) -> crate::policy::lockout::InForce {
        let all = self.lockouts.state();
        crate::policy::lockout::InForce::new(all.iter().map(|l| l.as_ref()), now)
    }
}

impl World {
    /// Waits until every cache has its first full list, so that nothing is
    /// decided on a partial view of the world (an empty cache would look like
    /// a missing workspace and revoke valid access).
    pub async fn wait_ready(&self) {
        let mut rx = self.synced.clone();
        let _ = rx.wait_for(|synced| *synced).await;
    }

    /// The newest status of a binding: the cached one, unless this process
    /// wrote another since (the cache then has not caught up yet).
    pub fn binding_status(&self, b: &RoleBinding) -> Option<crate::api::RoleBindingStatus> {
        let uid = b.metadata.uid.as_deref().unwrap_or_default();
        self.own
            .binding_statuses
            .get(uid, b.metadata.resource_version.as_deref())
            .or_else(|| b.status.clone())
    }

    /// The newest status of a request, likewise.
    pub fn request_status(&self, r: &RoleRequest) -> Option<crate::api::RoleRequestStatus> {
        let uid = r.metadata.uid.as_deref().unwrap_or_default();
        self.own
            .request_statuses
            .get(uid, r.metadata.resource_version.as_deref())
            .or_else(|| r.status.clone())
    }

    /// Whether this process already deleted the native binding with this uid
    /// (the cache may still show it for a moment).
    pub fn was_deleted(&self, uid: Option<&str>) -> bool {
        uid.is_some_and(|u| self.own.deleted_natives.contains(u))
    }

    /// Whether this process found the workspace's namespace, Roles and
    /// auditor binding in place at this generation, and has seen none of
    /// them change since (the watches of those objects forget it and wake
    /// the workspace). Reconciles that only refresh counts and chain heads
    /// (one or two per grant) then read none of them again; an edit to them
    /// is put back at once.
    pub fn workspace_verified(&self, uid: &str, generation: Option<i64>) -> bool {
        self.workspaces_verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uid)
            .is_some_and(|g| *g == generation)
    }

    /// Remembers that the workspace's objects are in place at this generation.
    pub fn mark_workspace_verified(&self, uid: &str, generation: Option<i64>) {
        self.workspaces_verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid.to_owned(), generation);
    }

    /// How long a status write of the workspace with `uid` that only
    /// refreshes its counts and chain heads must wait: at most one such
    /// write a second per workspace, so that a burst of grants or approvals
    /// costs the workspace a write a second, not one per grant.
    pub fn counts_wait(&self, uid: &str) -> Option<std::time::Duration> {
        let written = *self
            .workspace_counts_written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uid)?;
        std::time::Duration::from_secs(1).checked_sub(written.elapsed())
    }

    /// Notes that this process wrote the status of the workspace with `uid`.
    pub fn counts_written(&self, uid: &str) {
        self.workspace_counts_written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid.to_owned(), std::time::Instant::now());
    }

    /// Forgets that the workspace's objects were in place.
    pub fn forget_workspace_verified(&self, uid: &str) {
        self.workspaces_verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
    }

    /// Whether the admission policies can be trusted: decisions that rest on
    /// verified identities and group stamps wait while they cannot.
    pub fn anchors_intact(&self) -> bool {
        self.anchors.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The workspace whose control namespace is `namespace`: the one that
    /// claimed it by uid (its status names the namespace only then), never
    /// another that merely asks for the same namespace.
    pub fn workspace_of(&self, namespace: &str) -> Option<Arc<Workspace>> {
        self.holder_of(namespace)
            .filter(|w| w.metadata.deletion_timestamp.is_none())
    }

    /// The name of the workspace that holds `namespace`, also while it is
    /// being deleted (its final history entry needs it).
    pub fn workspace_name_of(&self, namespace: &str) -> Option<String> {
        self.holder_of(namespace).map(|w| w.name_any())
    }

    /// Whether the workspace with `uid` (without one: any workspace) that
    /// names `namespace` as its control namespace exists and is not being
    /// deleted, whether or not it holds the namespace right now.
    pub fn workspace_alive(&self, namespace: &str, uid: Option<&str>) -> bool {
        self.index
            .workspaces_by_namespace
            .get(namespace)
            .into_iter()
            .filter_map(|name| self.workspaces.get(&ObjectRef::new(&name)))
            .any(|w| {
                w.metadata.deletion_timestamp.is_none()
                    && w.control_namespace() == namespace
                    && uid.is_none_or(|u| w.uid().as_deref() == Some(u))
            })
    }

    fn holder_of(&self, namespace: &str) -> Option<Arc<Workspace>> {
        self.index
            .workspaces_by_namespace
            .get(namespace)
            .into_iter()
            .filter_map(|name| self.workspaces.get(&ObjectRef::new(&name)))
            .find(|w| {
                w.control_namespace() == namespace
                    && w.status.as_ref().and_then(|s| s.namespace.as_deref()) == Some(namespace)
            })
    }

    /// The foureyes bindings in a namespace, each with the status this
    /// process last wrote for it when the cache does not show that yet.
    pub fn bindings_in(&self, namespace: &str) -> Vec<Arc<RoleBinding>> {
        self.index
            .bindings_by_namespace
            .get(namespace)
            .into_iter()
            .filter_map(|name| self.bindings.get(&ObjectRef::new(&name).within(namespace)))
            .map(|b| self.newest(b))
            .collect()
    }

    /// `b` with the status this process last wrote, if the cache lags.
    fn newest(&self, b: Arc<RoleBinding>) -> Arc<RoleBinding> {
        let uid = b.metadata.uid.as_deref().unwrap_or_default();
        match self
            .own
            .binding_statuses
            .get(uid, b.metadata.resource_version.as_deref())
        {
            Some(status) => {
                let mut newer = (*b).clone();
                newer.status = Some(status);
                Arc::new(newer)
            }
            None => b,
        }
    }

    /// The role requests in a namespace.
    pub fn requests_in(&self, namespace: &str) -> Vec<Arc<RoleRequest>> {
        self.index
            .requests_by_namespace
            .get(namespace)
            .into_iter()
            .filter_map(|name| self.requests.get(&ObjectRef::new(&name).within(namespace)))
            .collect()
    }

    /// The native bindings made for the foureyes binding with this uid.
    pub fn natives_of(&self, uid: &str) -> Vec<Arc<crate::rbac::NativeGrant>> {
        self.index
            .natives_by_owner
            .get(uid)
            .into_iter()
            .filter_map(|key| {
                let (ns, name) = key.split_once('/')?;
                self.natives.get(&ObjectRef::new(name).within(ns))
            })
            .filter(|n| n.owner_uid.as_deref() == Some(uid))
            .collect()
    }

    /// Whether `user` is a partner, judged on the admission stamps of `meta`.
    pub fn is_partner_creator(&self, user: &str, meta: &kube::api::ObjectMeta) -> bool {
        crate::policy::identity::is_partner(&self.config.partners, user, meta.annotations.as_ref())
    }
}

impl Context {
    /// Publishes an event.
    pub async fn publish(
        &self,
        reference: &k8s_openapi::api::core::v1::ObjectReference,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.events.publish(reference, warning, reason, action, note).await;
    }

    /// Publishes the events of `transitions` on the object `reference`
    /// (see [`crate::audit::transitions::event`]) and queues their
    /// notifications (see [`crate::audit::transitions::notices`]).
    pub async fn announce(
        &self,
        reference: &k8s_openapi::api::core::v1::ObjectReference,
        transitions: &[crate::policy::transition::Transition],
    ) {
        self.announce_to(reference, transitions, &[]).await;
    }

    /// Like [`Context::announce`], for a request waiting for `approvers`
    /// (whom its notifications name).
    pub async fn announce_to(
        &self,
        reference: &k8s_openapi::api::core::v1::ObjectReference,
        transitions: &[crate::policy::transition::Transition],
        approvers: &[String],
    ) {
        // Queued first: it never waits, and the events do.
        if self.notifier.is_enabled() {
            let workspace = reference.namespace.as_deref().and_then(|ns| self.workspace_name_of(ns));
            self.notifier
                .notify(reference, workspace.as_deref(), transitions, approvers);
        }
        for (e, binding) in crate::audit::transitions::events(transitions) {
            // The binding an approval created is the decision's related object.
            let related = binding.map(|name| k8s_openapi::api::core::v1::ObjectReference {
                api_version: Some(<RoleBinding as kube::Resource>::api_version(&()).into_owned()),
                kind: Some(<RoleBinding as kube::Resource>::kind(&()).into_owned()),
                namespace: reference.namespace.clone(),
                name: Some(name),
                ..Default::default()
            });
            self.events
                .publish_related(reference, related, e.warning, e.reason, e.action, e.note)
                .await;
        }
    }

    /// Remembers that this process deleted the native binding with `uid`.
    pub fn mark_deleted(&self, uid: Option<&str>) {
        if let Some(u) = uid {
            self.own.deleted_natives.wrote(u, None, ());
        }
    }
}

impl crate::policy::facts::Snapshot for World {
    fn workspace_of(&self, ns: &str) -> Option<Arc<Workspace>> {
        World::workspace_of(self, ns)
    }

    fn project(&self, ns: &str, name: &str) -> Option<Arc<Project>> {
        self.projects
            .get(&ObjectRef::new(name).within(ns))
            .filter(|p| p.metadata.deletion_timestamp.is_none())
    }

    fn bindings_in(&self, ns: &str) -> Vec<Arc<RoleBinding>> {
        World::bindings_in(self, ns)
    }

    fn binding(&self, ns: &str, name: &str) -> Option<Arc<RoleBinding>> {
        self.bindings.get(&ObjectRef::new(name).within(ns))
    }

    fn request(&self, ns: &str, name: &str) -> Option<Arc<RoleRequest>> {
        self.requests.get(&ObjectRef::new(name).within(ns))
    }
}

use kube::ResourceExt as _;

/// Per-object exponential backoff for transient errors: 1 s, 2 s, 4 s, ...
/// up to 5 minutes, reset by a successful reconcile.
#[derive(Default)]
pub struct Backoff {
    attempts: std::sync::Mutex<std::collections::HashMap<String, u32>>,
}

impl Backoff {
    /// The delay before retrying `key` after a failure.
    pub fn failed(&self, key: &str) -> std::time::Duration {
        let mut map = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(key.to_owned()).or_insert(0);
        *n = n.saturating_add(1);
        std::time::Duration::from_secs(1u64 << (*n - 1).min(8)).min(std::time::Duration::from_secs(300))
    }

    /// Forgets the failures of `key`.
    pub fn succeeded(&self, key: &str) {
        let mut map = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(key);
    }
}

/// A reconcile failure, with a short static category for metrics and logs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("{step}: {source}")]
    Kube {
        /// What was being done.
        step: &'static str,
        /// The API error.
        source: kube::Error,
    },
    /// The finalizer helper failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// The object lacks something every stored object has.
    #[error("object without {0}")]
    Incomplete(&'static str),
    /// A history entry could not be appended.
    #[error("history: {0}")]
    History(#[from] crate::audit::history::Error),
    /// Something else must happen first; retried with backoff.
    #[error("waiting for {0}")]
    Waiting(&'static str),
}

impl Error {
    /// The category: a static label for metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube { step, .. } => step,
            // The helper only wraps what the reconciler's own step failed on.
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => {
                    e.category()
                }
                _ => "finalizer",
            },
            Error::Incomplete(_) => "incomplete",
            Error::History(_) => "history",
            Error::Waiting(_) => "waiting",
        }
    }
}

/// Appends `entry` to the history chain `chain` of the workspace whose
/// control namespace is `ns`, and returns once it is stored.
///
/// This is how every reconciler records a transition (DESIGN §4):
///
/// - **Write-ahead**: call it *before* writing the status (or anything else)
///   that reports the transition, and return its error (the reconcile is
///   retried with backoff). A crash between the append and the status write
///   leaves the entry; the retry appends again and writes nothing.
/// - **Idempotent**: the entry's key (`NewEntry::new` makes it
///   `<object uid>/<action>`; `NewEntry::transition` sets the part after the
///   uid) is looked up in the chain's head chunk and the one before it, and a
///   known key writes nothing. Give each transition of an object its own key,
///   e.g. `<uid>/Approved/<user>` for each approval of a request.
/// - **Chains**: [`Chain::workspace`](crate::audit::history::Chain::workspace)
///   for workspace roles and the workspace itself,
///   [`Chain::project`](crate::audit::history::Chain::project) for project
///   roles.
/// - **Actors**: use identity fields that admission verified (a request's
///   `spec.requester`, an approval's `user`, a binding's `spec.grantedBy`,
///   `spec.revocation.by`, the annotation `foureyes.dev/created-by`);
///   [`OPERATOR_ACTOR`](crate::audit::history::OPERATOR_ACTOR) for what the
///   operator decides on its own (a timeout),
///   [`UNKNOWN_ACTOR`](crate::audit::history::UNKNOWN_ACTOR) when nobody can tell.
/// - **Never before a revocation**: on a path that removes access, delete the
///   native RBAC first and record afterwards.
///
/// The workspace's status mirrors the chain's new head at its next
/// (coalesced) status write.
///
/// ```ignore
/// use foureyes::audit::history::{Chain, EntryObject, NewEntry, action};
/// let entry = NewEntry::new(
///     EntryObject { kind: "RoleRequest".into(), name: name.clone(), uid: uid.clone() },
///     action::APPROVED,
///     &approval.user,
/// )
/// .transition(&format!("Approved/{}", approval.user))
/// .subject(request.spec.subject.to_string())
/// .role(role)
/// .details(format!("{n}/{quorum} approvals"));
/// record(ctx, &ns, Chain::project(&project), entry).await?;
/// status_patch(...).await?;
/// ```
pub async fn record(
    ctx: &Context,
    ns: &str,
    chain: crate::audit::history::Chain,
    entry: crate::audit::history::NewEntry,
) -> Result<(), Error> {
    record_all(ctx, ns, chain, vec![entry]).await
}

/// Records the history entries that `transitions` of `object` write (see
/// [`crate::audit::transitions::entry`]) in `chain`: write-ahead, like
/// [`record`].
pub async fn record_transitions(
    ctx: &Context,
    ns: &str,
    chain: crate::audit::history::Chain,
    object: &crate::audit::history::EntryObject,
    transitions: &[crate::policy::transition::Transition],
) -> Result<(), Error> {
    record_all(ctx, ns, chain, crate::audit::transitions::entries(transitions, object)).await
}

/// Records entries in `chain`, in their order, written together where they
/// fit (one API write for the transitions of one pass).
pub async fn record_all(
    ctx: &Context,
    ns: &str,
    chain: crate::audit::history::Chain,
    entries: Vec<crate::audit::history::NewEntry>,
) -> Result<(), Error> {
    if entries.is_empty() {
        return Ok(());
    }
    // History is written only in the control namespace of a workspace that
    // holds it (DESIGN §2, invariant 7): an object anywhere else is nobody's,
    // and writing there would leave an undeletable chunk in any namespace.
    let Some(workspace) = ctx.workspace_name_of(ns) else {
        tracing::debug!(namespace = ns, chain = %chain, "not a workspace's control namespace; nothing recorded");
        return Ok(());
    };
    record_in(ctx, ns, &workspace, chain, entries).await
}

/// Records entries in `chain` of `workspace`, whose control namespace `ns`
/// the caller knows it holds (the workspace reconciler, which claims it).
pub async fn record_in(
    ctx: &Context,
    ns: &str,
    workspace: &str,
    chain: crate::audit::history::Chain,
    entries: Vec<crate::audit::history::NewEntry>,
) -> Result<(), Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let appended = ctx.history.append_all(ns, workspace, &chain, entries).await?;
    for a in appended.iter().filter(|a| a.written) {
        tracing::debug!(namespace = ns, chain = %chain, seq = a.seq, "history entry appended");
    }
    if appended.iter().any(|a| a.written)
        && let Some(ws) = ctx.workspaces.get(&ObjectRef::new(workspace))
    {
        let _ = ctx.triggers.workspaces.send(ObjectRef::from_obj(ws.as_ref()));
    }
    Ok(())
}

/// Wraps a kube error with the step that failed.
pub fn kube_err(step: &'static str) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Kube { step, source }
}

/// The name of an object, for logs.
pub fn describe<K: kube::Resource>(obj: &K) -> String {
    match obj.namespace() {
        Some(ns) => format!("{ns}/{}", obj.name_any()),
        None => obj.name_any(),
    }
}

#[cfg(test)]
mod tests {
    use kube::runtime::finalizer::Error as FinalizerError;

    use super::*;

    /// The error metric names the cause of a failure inside the finalizer
    /// helper, not the helper.
    #[test]
    fn a_failure_inside_the_finalizer_is_categorised_by_its_cause() {
        let inside = |e: FinalizerError<Error>| Error::Finalizer(Box::new(e)).category();
        assert_eq!(
            inside(FinalizerError::ApplyFailed(Error::Incomplete("uid"))),
            "incomplete"
        );
        assert_eq!(
            inside(FinalizerError::CleanupFailed(Error::Waiting("the bindings"))),
            "waiting"
        );
        assert_eq!(inside(FinalizerError::UnnamedObject), "finalizer");
    }
}
