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

mod appender;
mod chain;
mod entry;
mod reader;

pub use appender::{Appended, DEFAULT_ROLLOVER_BYTES, History};
pub use chain::{Broken, Chain, Chunk, Verified, check_head, verify};
pub use entry::{
    Entry, EntryObject, GENESIS, NewEntry, OPERATOR_ACTOR, UNKNOWN_ACTOR, action, data_size, entry_key, entry_value,
    next_entry,
};
pub use reader::{list_chains, read_chain, read_chunks};

use appender::MAX_ATTEMPTS;

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

#[cfg(test)]
mod tests;
