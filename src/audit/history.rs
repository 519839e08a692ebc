//! The history: a durable, tamper-evident record of every access decision
//! (DESIGN §4).
//!
//! # Format
//!
//! A workspace has one **chain** for itself (`workspace`: workspace roles,
//! the workspace's creation and deletion) and one per project
//! (`project-<name>`: project roles). A chain is a sequence of **entries**
//! stored in **chunks**: ConfigMaps in the workspace's control namespace named
//! `foureyes-history-<chain>-<NNNNNN>` (chunk 0, 1, 2, ...), labelled
//! `foureyes.dev/history=true`, `foureyes.dev/workspace=<workspace>` and
//! `foureyes.dev/history-chain=<chain>` (as a label value), and annotated
//! with the full chain name.
//!
//! In a chunk's `data`, each entry is one key: its sequence number, zero-padded
//! to 12 digits (so that the keys sort in chain order), whose value is the
//! entry as JSON: `seq` (1, 2, 3, ... across chunks), `time`, `actor`,
//! `action`, `object` (`kind`, `name`, `uid`), `subject`, `role`, `details`,
//! `key` (the idempotency key), `prev` (the previous entry's hash; 64 zeros
//! for the first entry) and `hash`.
//!
//! `hash` is the lowercase hex SHA-256 of the entry's **canonical form**: the
//! JSON object `{"v":1,"chain":…,"seq":…,"time":…,"actor":…,"action":…,
//! "object":{"kind":…,"name":…,"uid":…},"subject":…,"role":…,"details":…,
//! "key":…,"prev":…}` with exactly these members in this order, no
//! whitespace, `null` for an absent subject or role, the time as RFC 3339 in
//! UTC with milliseconds (`2026-01-02T03:04:05.678Z`), strings escaped as
//! `serde_json` writes them (only `"`, `\` and control characters). The chain
//! name is part of the hash, so an entry cannot be moved to another chain.
//!
//! A chunk rolls over well before the 1 MiB object limit (by default at
//! 64 KiB of data, so that an append, which rewrites its chunk, stays cheap): the full chunk is first **sealed** (the key `next` names
//! the chunk that follows, written conditionally like an append), then the
//! next chunk is created with the following entry, whose `prev` is the last
//! hash of the sealed chunk. A sealed chunk is never written again.
//!
//! # Writing
//!
//! Appends are conditional on the chunk's `resourceVersion` (a replace with
//! the version that was read, or a create that fails if the chunk exists) and
//! retried on conflict, so that two operator processes never fork a chain.
//! Every entry carries an idempotency key (`<object uid>/<transition>`); an
//! append whose key is already in the head chunk or the chunk before it
//! writes nothing, so a reconcile that crashes after its append and runs
//! again records the transition once. Within one process a lock per chain and
//! a cached head keep concurrent appends from conflicting, and appends that
//! queue up behind the lock are written together in one request.
//!
//! Entries are never rewritten. The admission policies `foureyes-history` and
//! `foureyes-history-names` let only the operator write history ConfigMaps.
//!
//! # Reading and verifying
//!
//! [`read_chunks`] and [`read_chain`] read a chain; [`verify`] (pure) walks
//! its chunks and reports the first broken link, hash, sequence number,
//! missing or unsealed chunk; [`check_head`] compares the result with the head
//! that the Workspace status mirrors, which tells a truncated chain from a
//! complete one.

use crate::wire::{
    CHAIN_ANNOTATION, CHAIN_LABEL, CHUNK_PREFIX, HISTORY_LABEL, MANAGED_BY, MANAGED_BY_LABEL, SEAL_KEY,
    WORKSPACE_CHAIN, WORKSPACE_LABEL,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{debug, warn};

use crate::api::workspace::ChainHead;
use crate::rbac::label_value;

/// The `prev` of a chain's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Chunks roll over when their data would exceed this many bytes (well under
/// the API server's 1 MiB object limit: an append rewrites its whole chunk).
pub const DEFAULT_ROLLOVER_BYTES: usize = 64 * 1024;
/// The actor of what the operator does on its own (an expiry, the end of a
/// record's retention).
pub const OPERATOR_ACTOR: &str = "foureyes";
/// The actor of what the operator cannot attribute (a plain deletion: the API
/// server does not tell who deleted an object).
pub const UNKNOWN_ACTOR: &str = "unknown";

/// Bounds on entry fields, so that an entry stays small (a few KiB at most).
const MAX_FIELD: usize = 253;
const MAX_DETAILS: usize = 2048;
/// Digits of the entry keys in a chunk's data.
const SEQ_DIGITS: usize = 12;
/// Longest chain name: 253 (a ConfigMap name) minus the prefix and `-NNNNNN`.
const MAX_CHAIN: usize = 253 - CHUNK_PREFIX.len() - 7;
/// Chain heads an appender keeps in memory at most.
const MAX_CACHED_HEADS: usize = 256;
/// Conflicting writes tolerated before an append gives up (the reconcile
/// that asked for it is retried with backoff).
const MAX_ATTEMPTS: u32 = 100;

/// The actions of history entries. These strings are stable: auditors and
/// tools filter on them.
pub mod action {
    /// A binding's native RBAC was put in place (its role was granted).
    pub const GRANTED: &str = "Granted";
    /// A binding reached its expiry; its native RBAC was removed.
    pub const EXPIRED: &str = "Expired";
    /// A binding was revoked; its native RBAC was removed.
    pub const REVOKED: &str = "Revoked";
    /// A binding was refused (the details say why; one entry per reason).
    pub const REFUSED: &str = "Refused";
    /// A binding was deleted (its record is gone; its native RBAC too).
    pub const REMOVED: &str = "Removed";
    /// A workspace's control namespace was set up (the workspace chain's first entry).
    pub const WORKSPACE_CREATED: &str = "WorkspaceCreated";
    /// A workspace was deleted and everything it granted was revoked (its chain's final entry).
    pub const WORKSPACE_DELETED: &str = "WorkspaceDeleted";
    /// When a project role ended, its holder had created RoleBindings during
    /// the grant (kept, or deleted under `persistence: Revoke`).
    pub const PERSISTENCE_FOUND: &str = "PersistenceFound";
    /// A workspace's spec (approval policy, caps) changed.
    pub const WORKSPACE_CHANGED: &str = "WorkspaceChanged";
    /// A project was created (its namespaces and role map).
    pub const PROJECT_CREATED: &str = "ProjectCreated";
    /// A project's spec (namespaces, role map) changed.
    pub const PROJECT_CHANGED: &str = "ProjectChanged";
    /// A project was deleted and its grants ended.
    pub const PROJECT_DELETED: &str = "ProjectDeleted";
    /// A role request was filed.
    pub const REQUESTED: &str = "Requested";
    /// A manager or partner approved a role request.
    pub const APPROVED: &str = "Approved";
    /// A manager denied a role request.
    pub const DENIED: &str = "Denied";
    /// A role request reached its quorum.
    pub const QUORUM_REACHED: &str = "QuorumReached";
    /// A role request cannot reach its quorum (too few managers).
    pub const QUORUM_UNREACHABLE: &str = "QuorumUnreachable";
    /// A partner approved a role request alone.
    pub const BREAK_GLASS: &str = "BreakGlass";
    /// A role request stayed pending past the workspace's timeout.
    pub const REQUEST_EXPIRED: &str = "RequestExpired";
}

/// Errors of reading or appending history. Cloneable, because one failed
/// write fails every append that was batched into it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("{step}: {message}")]
    Api {
        /// What was being done.
        step: &'static str,
        /// The HTTP status code, if the API server answered.
        code: Option<u16>,
        /// The API server's message.
        message: String,
    },
    /// Too many conflicting writes in a row.
    #[error("history chain {0}: gave up after {MAX_ATTEMPTS} conflicting writes")]
    Contended(String),
    /// The head chunk cannot be appended to: its last entry does not parse.
    #[error("history chunk {chunk} is unreadable: {message}")]
    Corrupt {
        /// The chunk.
        chunk: String,
        /// What is wrong.
        message: String,
    },
    /// A chain name that cannot name ConfigMaps.
    #[error("invalid history chain name {0:?}")]
    InvalidChain(String),
    /// The append was interrupted (the task writing it was cancelled).
    #[error("history append interrupted")]
    Interrupted,
}

impl Error {
    fn api(step: &'static str) -> impl FnOnce(kube::Error) -> Error {
        move |e| match e {
            kube::Error::Api(s) => Error::Api {
                step,
                code: Some(s.code),
                message: s.message,
            },
            other => Error::Api {
                step,
                code: None,
                message: other.to_string(),
            },
        }
    }

    /// Whether the write lost a race (someone else wrote the chunk first).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Api { code: Some(409), .. })
    }

    /// Whether the namespace is gone or being deleted, so that nothing can
    /// be written there any more.
    pub fn is_namespace_gone(&self) -> bool {
        match self {
            Error::Api { code: Some(404), .. } => true,
            Error::Api {
                code: Some(403),
                message,
                ..
            } => message.contains("being terminated"),
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------
// Chains and chunk names (pure)
// ---------------------------------------------------------------------------

/// A chain's name: `workspace`, or `project-<name>` (for a project whose name
/// is too long to fit into a ConfigMap name with the prefix and the chunk
/// number: `projecthash-<prefix>-<hash>`, which no literal project chain can
/// equal).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Chain(String);

impl Chain {
    /// The workspace's chain.
    pub fn workspace() -> Self {
        Chain(WORKSPACE_CHAIN.to_owned())
    }

    /// A project's chain.
    pub fn project(project: &str) -> Self {
        let literal = format!("project-{project}");
        if literal.len() <= MAX_CHAIN && is_dns_subdomain(&literal) {
            return Chain(literal);
        }
        let digest = Sha256::digest(project.as_bytes());
        let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let prefix: String = project
            .chars()
            .map(|c| c.to_ascii_lowercase())
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(MAX_CHAIN - "projecthash-".len() - 1 - hash.len())
            .collect();
        let prefix = prefix.trim_matches('-');
        if prefix.is_empty() {
            Chain(format!("projecthash-{hash}"))
        } else {
            Chain(format!("projecthash-{prefix}-{hash}"))
        }
    }

    /// A chain by its name (for readers); refused unless it can name chunks.
    pub fn named(name: &str) -> Result<Self, Error> {
        if name.is_empty() || name.len() > MAX_CHAIN || !is_dns_subdomain(name) {
            return Err(Error::InvalidChain(name.to_owned()));
        }
        Ok(Chain(name.to_owned()))
    }

    /// The chain's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of chunk `index` of this chain.
    pub fn chunk_name(&self, index: u32) -> String {
        format!("{CHUNK_PREFIX}{}-{index:06}", self.0)
    }

    /// The chain and index a chunk name stands for.
    pub fn parse_chunk_name(name: &str) -> Option<(Chain, u32)> {
        let rest = name.strip_prefix(CHUNK_PREFIX)?;
        let (chain, index) = rest.rsplit_once('-')?;
        if index.len() != 6 || !index.bytes().all(|b| b.is_ascii_digit()) || chain.is_empty() {
            return None;
        }
        Some((Chain(chain.to_owned()), index.parse().ok()?))
    }

    /// The label value of this chain.
    pub fn label(&self) -> String {
        label_value(&self.0)
    }
}

impl std::fmt::Display for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

// ---------------------------------------------------------------------------
// Entries (pure)
// ---------------------------------------------------------------------------

/// The object an entry is about.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct EntryObject {
    /// Its kind (`RoleBinding`, `RoleRequest`, `Workspace`, ...).
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: String,
}

/// One entry of a chain, as stored.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The position in the chain: 1, 2, 3, ... across chunks.
    pub seq: u64,
    /// When the entry was written (milliseconds).
    pub time: DateTime<Utc>,
    /// Who did it: the admission-verified user, `foureyes` for what the
    /// operator did on its own, `unknown` when nobody can tell.
    pub actor: String,
    /// What happened (see [`action`]).
    pub action: String,
    /// What it happened to.
    pub object: EntryObject,
    /// The subject concerned (`user dave`, `group oncall`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The role concerned (`manager`, `app/admin`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Anything else a person needs to know.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
    /// The idempotency key: `<object uid>/<transition>`.
    pub key: String,
    /// The previous entry's hash ([`GENESIS`] for the first entry).
    pub prev: String,
    /// This entry's hash (hex SHA-256 of its canonical form).
    pub hash: String,
}

/// An entry to append: what a reconciler knows about a transition. The
/// appender adds the sequence number, time and hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEntry {
    /// The idempotency key; [`NewEntry::new`] derives it from the object's
    /// uid and the action, [`NewEntry::transition`] changes its second part.
    pub key: String,
    /// Who did it.
    pub actor: String,
    /// What happened (see [`action`]).
    pub action: String,
    /// What it happened to.
    pub object: EntryObject,
    /// The subject concerned.
    pub subject: Option<String>,
    /// The role concerned.
    pub role: Option<String>,
    /// Details for people.
    pub details: String,
}

impl NewEntry {
    /// An entry about `object` whose idempotency key is `<uid>/<action>`:
    /// each object goes through each action once.
    pub fn new(object: EntryObject, action: &str, actor: &str) -> Self {
        Self {
            key: format!("{}/{action}", object.uid),
            actor: actor.to_owned(),
            action: action.to_owned(),
            object,
            subject: None,
            role: None,
            details: String::new(),
        }
    }

    /// Sets the transition part of the idempotency key (`<uid>/<transition>`),
    /// for an object that can go through one action more than once (a
    /// refusal per reason, an approval per person).
    pub fn transition(mut self, transition: &str) -> Self {
        self.key = format!("{}/{transition}", self.object.uid);
        self
    }

    /// Sets the subject.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the role.
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// Sets the details.
    pub fn details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }
}

fn bounded(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// The canonical form of an entry (everything but its hash), which its hash covers.
pub fn canonical(chain: &Chain, e: &Entry) -> Vec<u8> {
    #[derive(Serialize)]
    struct Canonical<'a> {
        v: u8,
        chain: &'a str,
        seq: u64,
        time: String,
        actor: &'a str,
        action: &'a str,
        object: Obj<'a>,
        subject: Option<&'a str>,
        role: Option<&'a str>,
        details: &'a str,
        key: &'a str,
        prev: &'a str,
    }
    #[derive(Serialize)]
    struct Obj<'a> {
        kind: &'a str,
        name: &'a str,
        uid: &'a str,
    }
    let c = Canonical {
        v: 1,
        chain: chain.as_str(),
        seq: e.seq,
        time: e.time.to_rfc3339_opts(SecondsFormat::Millis, true),
        actor: &e.actor,
        action: &e.action,
        object: Obj {
            kind: &e.object.kind,
            name: &e.object.name,
            uid: &e.object.uid,
        },
        subject: e.subject.as_deref(),
        role: e.role.as_deref(),
        details: &e.details,
        key: &e.key,
        prev: &e.prev,
    };
    serde_json::to_vec(&c).expect("an entry serialises")
}

/// The hash of an entry (hex SHA-256 of its canonical form).
pub fn entry_hash(chain: &Chain, e: &Entry) -> String {
    Sha256::digest(canonical(chain, e))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The entry that follows `last` (the chain's last sequence number and hash;
/// `None` for an empty chain), hashed.
pub fn next_entry(chain: &Chain, last: Option<(u64, &str)>, new: &NewEntry, now: DateTime<Utc>) -> Entry {
    let (seq, prev) = match last {
        Some((seq, hash)) => (seq + 1, hash.to_owned()),
        None => (1, GENESIS.to_owned()),
    };
    let time = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
    let mut e = Entry {
        seq,
        time,
        actor: bounded(&new.actor, MAX_FIELD),
        action: bounded(&new.action, 64),
        object: EntryObject {
            kind: bounded(&new.object.kind, 64),
            name: bounded(&new.object.name, MAX_FIELD),
            uid: bounded(&new.object.uid, 64),
        },
        subject: new.subject.as_deref().map(|s| bounded(s, MAX_FIELD + 16)),
        role: new.role.as_deref().map(|s| bounded(s, MAX_FIELD + 64)),
        details: bounded(&new.details, MAX_DETAILS),
        key: bounded(&new.key, MAX_FIELD + 64),
        prev,
        hash: String::new(),
    };
    e.hash = entry_hash(chain, &e);
    e
}

/// The data key of entry `seq` in a chunk.
pub fn entry_key(seq: u64) -> String {
    format!("{seq:0width$}", width = SEQ_DIGITS)
}

/// An entry's stored value (JSON).
pub fn entry_value(e: &Entry) -> String {
    serde_json::to_string(e).expect("an entry serialises")
}

/// The bytes an entry adds to a chunk's data.
pub fn entry_size(e: &Entry) -> usize {
    SEQ_DIGITS + entry_value(e).len()
}

/// The bytes of a chunk's data.
pub fn data_size(data: &BTreeMap<String, String>) -> usize {
    data.iter().map(|(k, v)| k.len() + v.len()).sum()
}

// ---------------------------------------------------------------------------
// Chunks and verification (pure)
// ---------------------------------------------------------------------------

/// One stored chunk: its name and data.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Chunk {
    /// The ConfigMap's name.
    pub name: String,
    /// The ConfigMap's data.
    pub data: BTreeMap<String, String>,
}

impl Chunk {
    /// The chunk's entries in key order, each parsed (or the parse error).
    pub fn entries(&self) -> Vec<(String, Result<Entry, String>)> {
        self.data
            .iter()
            .filter(|(k, _)| k.as_str() != SEAL_KEY)
            .map(|(k, v)| (k.clone(), serde_json::from_str::<Entry>(v).map_err(|e| e.to_string())))
            .collect()
    }

    /// The chunk that follows, if this one is sealed.
    pub fn next(&self) -> Option<&str> {
        self.data.get(SEAL_KEY).map(String::as_str)
    }
}

/// A chain that verified: its entries in order, and its head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Every entry, in order.
    pub entries: Vec<Entry>,
    /// The chunk holding the last entry.
    pub head_chunk: Option<String>,
}

impl Verified {
    /// The last entry.
    pub fn last(&self) -> Option<&Entry> {
        self.entries.last()
    }
}

/// The first place where a chain is broken, and how.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("chain {chain} is broken at {}{}: {problem}", .chunk, .seq.map(|s| format!(", entry {s}")).unwrap_or_default())]
pub struct Broken {
    /// The chain.
    pub chain: String,
    /// The chunk where the break is.
    pub chunk: String,
    /// The entry where the break is, if it is an entry.
    pub seq: Option<u64>,
    /// What is wrong, for people.
    pub problem: String,
}

/// Walks a chain's chunks (in any order; they are sorted by index) and
/// checks: the chunks are numbered 0, 1, 2, ... without a gap and belong to
/// the chain; every chunk but the last is sealed and names the chunk that
/// follows; every entry parses, sits under the key of its sequence number,
/// follows its predecessor's sequence number by one, links to its
/// predecessor's hash, and hashes to its stored hash. Returns the entries, or
/// the first break.
pub fn verify(chain: &Chain, chunks: &[Chunk]) -> Result<Verified, Broken> {
    let broken = |chunk: &str, seq: Option<u64>, problem: String| Broken {
        chain: chain.to_string(),
        chunk: chunk.to_owned(),
        seq,
        problem,
    };
    let mut indexed = vec![];
    for c in chunks {
        match Chain::parse_chunk_name(&c.name) {
            Some((ch, i)) if &ch == chain => indexed.push((i, c)),
            _ => {
                return Err(broken(
                    &c.name,
                    None,
                    "the chunk's name does not belong to this chain".into(),
                ));
            }
        }
    }
    indexed.sort_by_key(|(i, _)| *i);
    for (pos, (index, c)) in indexed.iter().enumerate() {
        if *index as usize != pos {
            let missing = chain.chunk_name(pos as u32);
            return Err(broken(
                &missing,
                None,
                format!("the chunk is missing (the next one present is {})", c.name),
            ));
        }
    }
    let mut last: Option<(u64, String)> = None;
    let mut entries = vec![];
    let mut head_chunk = None;
    for (pos, (_, c)) in indexed.iter().enumerate() {
        if let Some((_, following)) = indexed.get(pos + 1) {
            match c.next() {
                Some(n) if n == following.name => {}
                Some(n) => {
                    return Err(broken(
                        &c.name,
                        None,
                        format!("the chunk is sealed towards {n}, but {} follows it", following.name),
                    ));
                }
                None => {
                    return Err(broken(
                        &c.name,
                        None,
                        format!("the chunk is followed by {} but was never sealed", following.name),
                    ));
                }
            }
        }
        let parsed = c.entries();
        if parsed.is_empty() && (pos > 0 || indexed.len() > 1) {
            return Err(broken(&c.name, None, "the chunk holds no entry".into()));
        }
        for (key, e) in parsed {
            let expected_seq = last.as_ref().map(|(s, _)| s + 1).unwrap_or(1);
            let e = e.map_err(|err| {
                broken(
                    &c.name,
                    key.parse().ok(),
                    format!("the entry under key {key} does not parse: {err}"),
                )
            })?;
            if key != entry_key(e.seq) {
                return Err(broken(
                    &c.name,
                    Some(e.seq),
                    format!("the entry is stored under key {key}: entries were moved or reordered"),
                ));
            }
            if e.seq != expected_seq {
                let problem = if e.seq > expected_seq {
                    format!(
                        "expected entry {expected_seq} next but found {}: entries were removed",
                        e.seq
                    )
                } else {
                    format!(
                        "expected entry {expected_seq} next but found {}: entries were reordered or repeated",
                        e.seq
                    )
                };
                return Err(broken(&c.name, Some(e.seq), problem));
            }
            let expected_prev = last.as_ref().map(|(_, h)| h.as_str()).unwrap_or(GENESIS);
            if e.prev != expected_prev {
                return Err(broken(
                    &c.name,
                    Some(e.seq),
                    format!(
                        "the link to the previous entry is broken (prev {}, but the previous entry's hash is {})",
                        short(&e.prev),
                        short(expected_prev)
                    ),
                ));
            }
            let computed = entry_hash(chain, &e);
            if computed != e.hash {
                return Err(broken(
                    &c.name,
                    Some(e.seq),
                    format!(
                        "the entry's content does not match its hash (stored {}, computed {}): the entry was edited",
                        short(&e.hash),
                        short(&computed)
                    ),
                ));
            }
            last = Some((e.seq, e.hash.clone()));
            head_chunk = Some(c.name.clone());
            entries.push(e);
        }
    }
    Ok(Verified { entries, head_chunk })
}

/// Compares a verified chain with a head recorded elsewhere (the Workspace
/// status): a chain that ends before it, or whose entry at that position has
/// another hash, was truncated or rewritten.
pub fn check_head(chain: &Chain, verified: &Verified, head: &ChainHead) -> Result<(), Broken> {
    let seq = u64::try_from(head.sequence).unwrap_or(0);
    let broken = |problem: String| Broken {
        chain: chain.to_string(),
        chunk: head.chunk.clone(),
        seq: Some(seq),
        problem,
    };
    match verified.entries.iter().find(|e| e.seq == seq) {
        None => Err(broken(format!(
            "the recorded head is entry {seq}, but the chain ends at entry {}: entries were removed",
            verified.last().map(|e| e.seq).unwrap_or(0)
        ))),
        Some(e) if e.hash != head.hash => Err(broken(format!(
            "the recorded head's hash is {}, the chain's entry has {}",
            short(&head.hash),
            short(&e.hash)
        ))),
        Some(_) => Ok(()),
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

// ---------------------------------------------------------------------------
// Appending (pure planning)
// ---------------------------------------------------------------------------

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
struct Head {
    /// Chunk index.
    index: u32,
    /// `None` while the chunk does not exist yet.
    resource_version: Option<String>,
    data: BTreeMap<String, String>,
    /// The last entry of the chain so far (seq, hash, time).
    last: Option<(u64, String, DateTime<Utc>)>,
    /// Idempotency keys in this chunk → seq.
    keys: HashMap<String, u64>,
    /// Idempotency keys in the chunk before → seq.
    previous_keys: HashMap<String, u64>,
}

impl Head {
    fn sealed(&self) -> bool {
        self.data.contains_key(SEAL_KEY)
    }

    fn find(&self, key: &str) -> Option<(u64, u32)> {
        if let Some(s) = self.keys.get(key) {
            return Some((*s, self.index));
        }
        self.previous_keys.get(key).map(|s| (*s, self.index.saturating_sub(1)))
    }

    /// Reads a stored chunk's state; `previous` is the chunk before it, if any.
    fn from_chunk(
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
    fn rolled_over(&self) -> Head {
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
enum Step {
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
fn plan(chain: &Chain, head: &Head, pending: &[(usize, &NewEntry)], rollover: usize, now: DateTime<Utc>) -> Step {
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
    metrics: Option<Arc<crate::telemetry::Metrics>>,
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
            metrics: None,
            slots: Default::default(),
            heads: Default::default(),
        }
    }

    /// Counts this appender's writes in the operator's metrics.
    pub fn with_metrics(mut self, metrics: Arc<crate::telemetry::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
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
            self.count_write();
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

    fn count_write(&self) {
        if let Some(m) = &self.metrics {
            m.api_write("ConfigMap", "history");
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
fn finish(
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

fn jitter(attempt: u32) -> std::time::Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let base = 2u64 << attempt.min(5);
    std::time::Duration::from_millis(base + u64::from(nanos) % (base * 2))
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

// ---------------------------------------------------------------------------
// Reading (for the kubectl plugin and auditors)
// ---------------------------------------------------------------------------

/// Every chunk of a chain, in order (by label, then by the index in the name).
pub async fn read_chunks(client: &Client, ns: &str, chain: &Chain) -> Result<Vec<Chunk>, Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let mut chunks = vec![];
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default()
            .labels(&format!("{CHAIN_LABEL}={}", chain.label()))
            .limit(16);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.map_err(Error::api("list history chunks"))?;
        for cm in page.items {
            let name = cm.name_any();
            if let Some((c, i)) = Chain::parse_chunk_name(&name)
                && &c == chain
            {
                chunks.push((
                    i,
                    Chunk {
                        name,
                        data: cm.data.unwrap_or_default(),
                    },
                ));
            }
        }
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    chunks.sort_by_key(|(i, _)| *i);
    Ok(chunks.into_iter().map(|(_, c)| c).collect())
}

/// Every readable entry of a chain, in order (entries that do not parse are
/// skipped: [`verify`] reports them).
pub async fn read_chain(client: &Client, ns: &str, chain: &Chain) -> Result<Vec<Entry>, Error> {
    let chunks = read_chunks(client, ns, chain).await?;
    Ok(chunks
        .iter()
        .flat_map(|c| c.entries())
        .filter_map(|(_, e)| e.ok())
        .collect())
}

/// The chains that have chunks in a namespace, sorted (`workspace` first).
pub async fn list_chains(client: &Client, ns: &str) -> Result<Vec<Chain>, Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let list = api
        .list_metadata(&ListParams::default().labels(&format!("{HISTORY_LABEL}=true")))
        .await
        .map_err(Error::api("list history chunks"))?;
    let mut chains: Vec<Chain> = list
        .items
        .iter()
        .filter_map(|m| Chain::parse_chunk_name(&m.name_any()))
        .map(|(c, _)| c)
        .collect();
    chains.sort_by_key(|c| (c.as_str() != WORKSPACE_CHAIN, c.clone()));
    chains.dedup();
    Ok(chains)
}

/// Reads and verifies a chain: the outer error is a failed read, the inner
/// one the first break.
pub async fn verify_chain(client: &Client, ns: &str, chain: &Chain) -> Result<Result<Verified, Broken>, Error> {
    let chunks = read_chunks(client, ns, chain).await?;
    let verified = verify(chain, &chunks);
    if let Err(b) = &verified {
        warn!(%b, "history chain does not verify");
    }
    Ok(verified)
}

#[cfg(test)]
mod tests;
