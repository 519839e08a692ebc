//! Chains, their chunks, and verifying them (pure).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Error;
use super::entry::{Entry, GENESIS, entry_hash, entry_key};
use crate::api::workspace::ChainHead;
use crate::rbac::label_value;
use crate::wire::{CHUNK_PREFIX, SEAL_KEY, WORKSPACE_CHAIN};

/// Longest chain name: 253 (a ConfigMap name) minus the prefix and `-NNNNNN`.
const MAX_CHAIN: usize = 253 - CHUNK_PREFIX.len() - 7;

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

pub(super) fn is_dns_subdomain(s: &str) -> bool {
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
