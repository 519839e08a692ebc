//! The appender: writes entries into a chain's chunks (ConfigMaps), one
//! conditional write at a time.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};
use tracing::debug;

use super::entry::{Entry, NewEntry, data_size, entry_key, entry_size, entry_value, next_entry};
use super::{Chain, Chunk, Error};
use crate::api::workspace::ChainHead;
use crate::rbac::label_value;
use crate::wire::{
    CHAIN_ANNOTATION, CHAIN_LABEL, HISTORY_LABEL, MANAGED_BY, MANAGED_BY_LABEL, SEAL_KEY, WORKSPACE_LABEL,
};

/// Chunks roll over when their data would exceed this many bytes (well under
/// the API server's 1 MiB object limit: an append rewrites its whole chunk).
pub const DEFAULT_ROLLOVER_BYTES: usize = 64 * 1024;
/// Chain heads an appender keeps in memory at most.
const MAX_CACHED_HEADS: usize = 256;
/// Conflicting writes tolerated before an append gives up (the reconcile
/// that asked for it is retried with backoff).
pub(super) const MAX_ATTEMPTS: u32 = 100;

/// What an append did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The entry's sequence number.
    pub seq: u64,
    /// The chunk it is in.
    pub chunk: String,
    /// False when the idempotency key was found: nothing was written.
    pub written: bool,
}

/// The appender's view of a chain's head chunk.
#[derive(Clone, Debug, Default)]
pub(super) struct Head {
    /// Chunk index.
    pub(super) index: u32,
    /// `None` while the chunk does not exist yet.
    resource_version: Option<String>,
    pub(super) data: BTreeMap<String, String>,
    /// The last entry of the chain so far (seq, hash, time).
    pub(super) last: Option<(u64, String, DateTime<Utc>)>,
    /// Idempotency keys in this chunk → seq.
    pub(super) keys: HashMap<String, u64>,
    /// Idempotency keys in the chunk before → seq.
    previous_keys: HashMap<String, u64>,
}

impl Head {
    pub(super) fn sealed(&self) -> bool {
        self.data.contains_key(SEAL_KEY)
    }

    pub(super) fn find(&self, key: &str) -> Option<(u64, u32)> {
        if let Some(s) = self.keys.get(key) {
            return Some((*s, self.index));
        }
        self.previous_keys.get(key).map(|s| (*s, self.index.saturating_sub(1)))
    }

    /// Reads a stored chunk's state; `previous` is the chunk before it, if any.
    pub(super) fn from_chunk(
        index: u32,
        rv: Option<String>,
        chunk: &Chunk,
        previous: Option<&Chunk>,
        previous_last: Option<(u64, String, DateTime<Utc>)>,
    ) -> Result<Head, Error> {
        let keys_of = |c: &Chunk| -> HashMap<String, u64> {
            c.entries()
                .into_iter()
                .filter_map(|(_, e)| e.ok())
                .map(|e| (e.key, e.seq))
                .collect()
        };
        let entries = chunk.entries();
        let last = match entries.last() {
            Some((_, Ok(e))) => Some((e.seq, e.hash.clone(), e.time)),
            Some((key, Err(err))) => {
                return Err(Error::Corrupt {
                    chunk: chunk.name.clone(),
                    message: format!("entry {key}: {err}"),
                });
            }
            None => previous_last,
        };
        Ok(Head {
            index,
            resource_version: rv,
            data: chunk.data.clone(),
            last,
            keys: keys_of(chunk),
            previous_keys: previous.map(keys_of).unwrap_or_default(),
        })
    }

    /// The head after rolling over: a new, empty chunk after this one.
    pub(super) fn rolled_over(&self) -> Head {
        Head {
            index: self.index + 1,
            resource_version: None,
            data: BTreeMap::new(),
            last: self.last.clone(),
            keys: HashMap::new(),
            previous_keys: self.keys.clone(),
        }
    }
}

/// One planned write: the chunk's new data and the entries it adds.
#[derive(Debug)]
pub(super) enum Step {
    /// Seal the head chunk (it is full).
    Seal(BTreeMap<String, String>),
    /// Write these entries into the head chunk (create it if it does not exist).
    Write {
        data: BTreeMap<String, String>,
        entries: Vec<(usize, Entry)>,
    },
}

/// Plans the next write for `pending` (index into the batch, entry) on `head`:
/// seal a full chunk, or fill the head with as many entries as fit (at least
/// one). Entries whose key is known are not in `pending` any more.
pub(super) fn plan(
    chain: &Chain,
    head: &Head,
    pending: &[(usize, &NewEntry)],
    rollover: usize,
    now: DateTime<Utc>,
) -> Step {
    let mut data = head.data.clone();
    let mut size = data_size(&data);
    let mut last = head.last.as_ref().map(|(s, h, _)| (*s, h.clone()));
    let mut entries = vec![];
    for (i, new) in pending {
        let e = next_entry(chain, last.as_ref().map(|(s, h)| (*s, h.as_str())), new, now);
        let add = entry_size(&e);
        if size + add > rollover && !data.is_empty() {
            if entries.is_empty() {
                let mut sealed = head.data.clone();
                sealed.insert(SEAL_KEY.to_owned(), chain.chunk_name(head.index + 1));
                return Step::Seal(sealed);
            }
            break;
        }
        size += add;
        data.insert(entry_key(e.seq), entry_value(&e));
        last = Some((e.seq, e.hash.clone()));
        entries.push((*i, e));
    }
    Step::Write { data, entries }
}

// ---------------------------------------------------------------------------
// The appender (I/O)
// ---------------------------------------------------------------------------

type Reply = tokio::sync::oneshot::Sender<Result<Appended, Error>>;

struct Pending {
    entry: NewEntry,
    reply: Reply,
}

#[derive(Default)]
struct Slot {
    /// The cached head; `None` when it must be read from the API server.
    head: tokio::sync::Mutex<Option<Head>>,
    /// Appends waiting for the lock; whoever holds it writes them all.
    queue: std::sync::Mutex<Vec<Pending>>,
}

/// Appends to history chains. One per process, shared by every reconciler:
/// it serialises appends per chain, caches each chain's head, and batches
/// appends that wait for the same chain into one write. Separate processes
/// (or separate appenders) stay correct through conditional writes.
pub struct History {
    client: Client,
    rollover_bytes: usize,
    slots: std::sync::Mutex<HashMap<(String, Chain), Arc<Slot>>>,
    heads: std::sync::Mutex<BTreeMap<(String, Chain), ChainHead>>,
}

impl History {
    /// An appender with the default rollover size.
    pub fn new(client: Client) -> Self {
        Self::with_rollover(client, DEFAULT_ROLLOVER_BYTES)
    }

    /// An appender whose chunks roll over at `rollover_bytes` of data
    /// (capped at 512 KiB, so that a chunk always fits into an object).
    pub fn with_rollover(client: Client, rollover_bytes: usize) -> Self {
        Self {
            client,
            rollover_bytes: rollover_bytes.clamp(1, 512 * 1024),
            slots: Default::default(),
            heads: Default::default(),
        }
    }

    /// The heads of the chains of namespace `ns` that this appender wrote
    /// or read, by chain name.
    pub fn heads_in(&self, ns: &str) -> Vec<ChainHead> {
        self.heads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|((n, _), _)| n == ns)
            .map(|(_, h)| h.clone())
            .collect()
    }

    fn slot(&self, ns: &str, chain: &Chain) -> Arc<Slot> {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((ns.to_owned(), chain.clone()))
            .or_default()
            .clone()
    }

    /// Appends an entry to `chain` in namespace `ns` (labelled with
    /// `workspace`), unless an entry with its idempotency key is in the head
    /// chunk or the one before it. Returns once the entry is stored.
    pub async fn append(&self, ns: &str, workspace: &str, chain: &Chain, entry: NewEntry) -> Result<Appended, Error> {
        let mut appended = self.append_all(ns, workspace, chain, vec![entry]).await?;
        appended.pop().ok_or(Error::Interrupted)
    }

    /// Appends entries to `chain`, in their order, like [`History::append`];
    /// entries that fit into the head chunk together are written together.
    pub async fn append_all(
        &self,
        ns: &str,
        workspace: &str,
        chain: &Chain,
        entries: Vec<NewEntry>,
    ) -> Result<Vec<Appended>, Error> {
        let slot = self.slot(ns, chain);
        let replies: Vec<_> = {
            let mut queue = slot.queue.lock().unwrap_or_else(|e| e.into_inner());
            entries
                .into_iter()
                .map(|entry| {
                    let (reply, rx) = tokio::sync::oneshot::channel();
                    queue.push(Pending { entry, reply });
                    rx
                })
                .collect()
        };
        {
            let mut head = slot.head.lock().await;
            // Whoever held the lock before may have written ours already;
            // what is still queued (ours or others') is written now.
            let batch = std::mem::take(&mut *slot.queue.lock().unwrap_or_else(|e| e.into_inner()));
            if !batch.is_empty() {
                self.write_batch(&mut head, ns, workspace, chain, batch).await;
            }
        }
        self.trim(&slot);
        let mut appended = Vec::with_capacity(replies.len());
        for rx in replies {
            appended.push(rx.await.unwrap_or(Err(Error::Interrupted))?);
        }
        Ok(appended)
    }

    /// Keeps at most [`MAX_CACHED_HEADS`] heads in memory (a head holds its
    /// chunk's data, up to the rollover size): idle chains other than
    /// `keep` forget theirs and read it again on their next append.
    fn trim(&self, keep: &Arc<Slot>) {
        let slots: Vec<Arc<Slot>> = {
            let map = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() <= MAX_CACHED_HEADS {
                return;
            }
            map.values().cloned().collect()
        };
        let mut cached = 0;
        for slot in slots {
            if Arc::ptr_eq(&slot, keep) {
                continue;
            }
            if let Ok(mut head) = slot.head.try_lock()
                && head.is_some()
            {
                cached += 1;
                if cached >= MAX_CACHED_HEADS {
                    *head = None;
                }
            }
        }
    }

    async fn write_batch(
        &self,
        head: &mut Option<Head>,
        ns: &str,
        workspace: &str,
        chain: &Chain,
        batch: Vec<Pending>,
    ) {
        let entries: Vec<NewEntry> = batch.iter().map(|p| p.entry.clone()).collect();
        let results = self.write_entries(head, ns, workspace, chain, &entries).await;
        for (p, r) in batch.into_iter().zip(results) {
            let _ = p.reply.send(r);
        }
    }

    /// Writes `entries` in order; one result per entry.
    async fn write_entries(
        &self,
        cached: &mut Option<Head>,
        ns: &str,
        workspace: &str,
        chain: &Chain,
        entries: &[NewEntry],
    ) -> Vec<Result<Appended, Error>> {
        // An entry whose key repeats an earlier one of the batch is not written
        // again: it takes that one's result.
        let first: Vec<usize> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| entries[..i].iter().position(|p| p.key == e.key).unwrap_or(i))
            .collect();
        let mut results: Vec<Option<Result<Appended, Error>>> = vec![None; entries.len()];
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        let mut conflicts = 0;
        loop {
            let mut head = match cached.take() {
                Some(h) => h,
                None => match load_head(&api, chain).await {
                    Ok(h) => {
                        self.remember_head(ns, chain, &h);
                        h
                    }
                    Err(e) if e.is_conflict() && conflicts < MAX_ATTEMPTS => {
                        conflicts += 1;
                        tokio::time::sleep(jitter(conflicts)).await;
                        continue;
                    }
                    Err(e) => return finish(results, &first, Some(e)),
                },
            };
            let mut pending: Vec<(usize, &NewEntry)> = vec![];
            for (i, e) in entries.iter().enumerate() {
                if first[i] != i || results[i].is_some() {
                    continue;
                }
                match head.find(&e.key) {
                    Some((seq, index)) => {
                        results[i] = Some(Ok(Appended {
                            seq,
                            chunk: chain.chunk_name(index),
                            written: false,
                        }))
                    }
                    None => pending.push((i, e)),
                }
            }
            if pending.is_empty() {
                *cached = Some(head);
                return finish(results, &first, None);
            }
            if head.sealed() {
                // Sealed by a process that stopped before creating the next chunk.
                head = head.rolled_over();
            }
            let (data, written) = match plan(chain, &head, &pending, self.rollover_bytes, Utc::now()) {
                Step::Seal(data) => (data, vec![]),
                Step::Write { data, entries } => (data, entries),
            };
            let name = chain.chunk_name(head.index);
            let cm = chunk_object(ns, workspace, chain, &name, head.resource_version.clone(), data.clone());
            let outcome = match &head.resource_version {
                Some(_) => api
                    .replace(&name, &PostParams::default(), &cm)
                    .await
                    .map_err(Error::api("replace history chunk")),
                None => api
                    .create(&PostParams::default(), &cm)
                    .await
                    .map_err(Error::api("create history chunk")),
            };
            match outcome {
                Ok(stored) => {
                    head.resource_version = stored.resource_version();
                    head.data = data;
                    for (i, e) in written {
                        head.keys.insert(e.key.clone(), e.seq);
                        head.last = Some((e.seq, e.hash.clone(), e.time));
                        results[i] = Some(Ok(Appended {
                            seq: e.seq,
                            chunk: name.clone(),
                            written: true,
                        }));
                    }
                    if head.sealed() {
                        head = head.rolled_over();
                    }
                    self.remember_head(ns, chain, &head);
                    *cached = Some(head);
                }
                Err(e) if e.is_conflict() => {
                    conflicts += 1;
                    debug!(chain = %chain, chunk = name, conflicts, "history write conflict; reloading");
                    if conflicts >= MAX_ATTEMPTS {
                        return finish(results, &first, Some(Error::Contended(chain.to_string())));
                    }
                    // `cached` stays empty: the head is read again.
                    tokio::time::sleep(jitter(conflicts)).await;
                }
                Err(e) => return finish(results, &first, Some(e)),
            }
        }
    }

    fn remember_head(&self, ns: &str, chain: &Chain, head: &Head) {
        let Some((seq, hash, time)) = head.last.clone() else {
            return;
        };
        // The chunk of the last entry: the head, unless it has none yet.
        let index = if head.index > 0 && !head.data.keys().any(|k| k != SEAL_KEY) {
            head.index - 1
        } else {
            head.index
        };
        self.heads.lock().unwrap_or_else(|e| e.into_inner()).insert(
            (ns.to_owned(), chain.clone()),
            ChainHead {
                chain: chain.to_string(),
                chunk: chain.chunk_name(index),
                sequence: i64::try_from(seq).unwrap_or(i64::MAX),
                hash,
                time,
            },
        );
    }
}

/// The results of a batch: repeated keys take their first occurrence's
/// result (as not written), and what is still open takes `err`.
pub(super) fn finish(
    mut results: Vec<Option<Result<Appended, Error>>>,
    first: &[usize],
    err: Option<Error>,
) -> Vec<Result<Appended, Error>> {
    for i in 0..results.len() {
        if first[i] != i {
            results[i] = results[first[i]]
                .clone()
                .map(|r| r.map(|a| Appended { written: false, ..a }));
        }
    }
    let err = err.unwrap_or(Error::Interrupted);
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(err.clone())))
        .collect()
}

/// The pause before retrying after the `attempt`th conflict: a base that
/// doubles from 2 ms up to 64 ms, plus a random part of up to twice the
/// base, so that contending writers spread out.
fn jitter(attempt: u32) -> std::time::Duration {
    let base = 2u64 << attempt.min(5);
    std::time::Duration::from_millis(base + rand::random_range(0..base * 2))
}

/// The ConfigMap of one chunk.
fn chunk_object(
    ns: &str,
    workspace: &str,
    chain: &Chain,
    name: &str,
    resource_version: Option<String>,
    data: BTreeMap<String, String>,
) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(ns.to_owned()),
            resource_version,
            labels: Some(BTreeMap::from([
                (HISTORY_LABEL.to_owned(), "true".to_owned()),
                (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
                (WORKSPACE_LABEL.to_owned(), label_value(workspace)),
                (CHAIN_LABEL.to_owned(), chain.label()),
            ])),
            annotations: Some(BTreeMap::from([(CHAIN_ANNOTATION.to_owned(), chain.to_string())])),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    }
}

/// The indexes of a chain's chunks, from their names (by label; metadata only).
async fn chunk_indexes(api: &Api<ConfigMap>, chain: &Chain) -> Result<Vec<u32>, Error> {
    let list = api
        .list_metadata(&ListParams::default().labels(&format!("{CHAIN_LABEL}={}", chain.label())))
        .await
        .map_err(Error::api("list history chunks"))?;
    let mut indexes: Vec<u32> = list
        .items
        .iter()
        .filter_map(|m| Chain::parse_chunk_name(&m.name_any()))
        .filter(|(c, _)| c == chain)
        .map(|(_, i)| i)
        .collect();
    indexes.sort_unstable();
    Ok(indexes)
}

async fn get_chunk(api: &Api<ConfigMap>, name: &str) -> Result<Option<(Chunk, Option<String>)>, Error> {
    Ok(api
        .get_opt(name)
        .await
        .map_err(Error::api("get history chunk"))?
        .map(|cm| {
            let rv = cm.resource_version();
            (
                Chunk {
                    name: name.to_owned(),
                    data: cm.data.unwrap_or_default(),
                },
                rv,
            )
        }))
}

/// Reads a chain's head (its newest chunk, and the keys of the one before).
async fn load_head(api: &Api<ConfigMap>, chain: &Chain) -> Result<Head, Error> {
    let Some(&index) = chunk_indexes(api, chain).await?.last() else {
        return Ok(Head::default());
    };
    let Some((chunk, rv)) = get_chunk(api, &chain.chunk_name(index)).await? else {
        // Listed a moment ago and gone now: try again from scratch.
        return Err(Error::Api {
            step: "get history chunk",
            code: Some(409),
            message: format!("{} disappeared", chain.chunk_name(index)),
        });
    };
    let previous = if index > 0 {
        get_chunk(api, &chain.chunk_name(index - 1)).await?.map(|(c, _)| c)
    } else {
        None
    };
    let previous_last = previous.as_ref().and_then(|p| {
        p.entries()
            .into_iter()
            .filter_map(|(_, e)| e.ok())
            .next_back()
            .map(|e| (e.seq, e.hash, e.time))
    });
    Head::from_chunk(index, rv, &chunk, previous.as_ref(), previous_last)
}
