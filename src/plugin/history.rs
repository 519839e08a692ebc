//! `kubectl access history`: a workspace's history chains, as a table or
//! JSON, and their verification (the pure parts; `commands` reads the chunks
//! and the Workspace status with `crate::audit::history`).
//!
//! A chain is verified by [`crate::audit::history::verify`] (every link,
//! hash, sequence number and chunk seal), then compared with the head that
//! the Workspace status mirrors ([`crate::audit::history::check_head`]),
//! which tells a chain whose newest entries were removed from a complete one.
//! Someone who may not read the Workspace (an auditor, by default) still
//! verifies the links; the output says that the head was not compared.

use serde::Serialize;

use super::format::Table;
use crate::api::workspace::ChainHead;
use crate::audit::history::{Chain, Chunk, Entry, check_head, verify};

/// A chain for people: `chain project-checkout of workspace payments`;
/// `place` says where it is (`of workspace payments`, `in namespace ws-payments`).
pub fn describe(chain: &impl std::fmt::Display, place: &str) -> String {
    format!("chain {chain} {place}")
}

/// Entries as a table for people: SEQ TIME ACTOR ACTION OBJECT SUBJECT ROLE DETAILS.
pub fn render_entries(entries: &[Entry]) -> String {
    let mut t = Table::new(&["seq", "time", "actor", "action", "object", "subject", "role", "details"]);
    for e in entries {
        t.row(vec![
            e.seq.to_string(),
            e.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            e.actor.clone(),
            e.action.clone(),
            format!("{}/{}", e.object.kind, e.object.name),
            e.subject.clone().unwrap_or_default(),
            e.role.clone().unwrap_or_default(),
            e.details.clone(),
        ]);
    }
    t.render()
}

/// One chain's entries, for `history --all -o json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainEntries {
    /// The chain's name.
    pub chain: String,
    /// Its entries, oldest first.
    pub entries: Vec<Entry>,
}

/// The newest entry of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Head {
    /// Its sequence number (the chain's length).
    pub seq: u64,
    /// Its hash (hex SHA-256).
    pub hash: String,
    /// The chunk (ConfigMap) that holds it.
    pub chunk: String,
}

/// How the chain compares with the head mirrored in the Workspace status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "camelCase")]
pub enum StatusHead {
    /// The chain holds the recorded head with the same hash (the status may
    /// lag a little behind the chain: entries come first).
    Matches {
        /// The recorded head's sequence number.
        seq: u64,
    },
    /// The chain does not hold the recorded head: it was truncated or rewritten.
    Mismatch {
        /// The recorded head's sequence number.
        seq: u64,
    },
    /// The Workspace status does not mirror this chain (yet).
    NotMirrored,
    /// The Workspace status could not be read; the head was not compared.
    NotCompared {
        /// Why.
        reason: String,
    },
}

/// The result of verifying one chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// The chain's name.
    pub chain: String,
    /// Whether every link, hash, sequence number and chunk is in order and
    /// the chain holds the head mirrored in the Workspace status.
    pub intact: bool,
    /// Entries in the chain (0 when its links are broken).
    pub entries: u64,
    /// The newest entry (unless the chain is empty or its links are broken).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<Head>,
    /// The comparison with the Workspace status.
    pub status_head: StatusHead,
    /// Where the first break is: the chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_chunk: Option<String>,
    /// Where the first break is: the entry, if it is an entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_seq: Option<u64>,
    /// What is wrong, when it is not intact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Verifies a chain's chunks and compares them with the head mirrored in the
/// Workspace status: `mirrored` is the status's heads, or why they could not
/// be read.
pub fn verification(chain: &Chain, chunks: &[Chunk], mirrored: Result<&[ChainHead], &str>) -> Verification {
    let mut v = Verification {
        chain: chain.to_string(),
        intact: false,
        entries: 0,
        head: None,
        status_head: StatusHead::NotMirrored,
        broken_chunk: None,
        broken_seq: None,
        problem: None,
    };
    let broken = match verify(chain, chunks) {
        Err(b) => {
            v.status_head = StatusHead::NotCompared {
                reason: "the chain itself is broken".into(),
            };
            Some(b)
        }
        Ok(verified) => {
            let compared = match mirrored {
                Err(why) => {
                    v.status_head = StatusHead::NotCompared { reason: why.to_owned() };
                    Ok(())
                }
                Ok(heads) => match heads.iter().find(|h| h.chain == chain.as_str()) {
                    None => Ok(()),
                    Some(h) => {
                        let seq = u64::try_from(h.sequence).unwrap_or(0);
                        let checked = check_head(chain, &verified, h);
                        v.status_head = if checked.is_ok() {
                            StatusHead::Matches { seq }
                        } else {
                            StatusHead::Mismatch { seq }
                        };
                        checked
                    }
                },
            };
            v.entries = verified.entries.len() as u64;
            v.head = verified.last().map(|e| Head {
                seq: e.seq,
                hash: e.hash.clone(),
                chunk: verified.head_chunk.clone().unwrap_or_default(),
            });
            compared.err()
        }
    };
    match broken {
        None => v.intact = true,
        Some(b) => {
            v.broken_chunk = Some(b.chunk);
            v.broken_seq = b.seq;
            v.problem = Some(b.problem);
        }
    }
    v
}

/// A verification for people.
pub fn render_verification(place: &str, v: &Verification) -> String {
    let mut out = String::new();
    let name = describe(&v.chain, place);
    if v.intact {
        out.push_str(&format!("{name}: intact\n"));
        out.push_str(&format!("  entries: {}\n", v.entries));
        match &v.head {
            Some(h) => out.push_str(&format!("  head:    #{} {} ({})\n", h.seq, h.hash, h.chunk)),
            None => out.push_str("  head:    none (the chain is empty)\n"),
        }
    } else {
        out.push_str(&format!("{name}: BROKEN\n"));
        let at = match (&v.broken_chunk, v.broken_seq) {
            (Some(c), Some(s)) => format!("{c}, entry {s}"),
            (Some(c), None) => c.clone(),
            (None, _) => "?".into(),
        };
        out.push_str(&format!("  at:      {at}\n"));
        out.push_str(&format!("  problem: {}\n", v.problem.as_deref().unwrap_or("?")));
        if let Some(h) = &v.head {
            out.push_str(&format!(
                "  links:   {} entries link up, to #{} {}\n",
                v.entries, h.seq, h.hash
            ));
        }
    }
    let status = match &v.status_head {
        StatusHead::Matches { seq } => format!("the head the Workspace status records (#{seq}) is in the chain"),
        StatusHead::Mismatch { seq } => {
            format!("the chain does not hold the head the Workspace status records (#{seq})")
        }
        StatusHead::NotMirrored => "the Workspace status records no head for this chain yet".into(),
        StatusHead::NotCompared { reason } if v.intact => format!(
            "not compared with the head the Workspace status records ({reason}); \
             removed newest entries would go unnoticed"
        ),
        StatusHead::NotCompared { reason } => {
            format!("not compared with the head the Workspace status records ({reason})")
        }
    };
    out.push_str(&format!("  status:  {status}\n"));
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::audit::history::{EntryObject, NewEntry, entry_key, entry_value, next_entry};
    use chrono::{TimeZone, Utc};

    /// A chain of `n` entries in one chunk.
    fn chunk(chain: &Chain, n: u64) -> (Chunk, Vec<Entry>) {
        let mut entries: Vec<Entry> = vec![];
        for i in 1..=n {
            let new = NewEntry::new(
                EntryObject {
                    kind: "RoleBinding".into(),
                    name: "dave-app-user".into(),
                    uid: format!("uid-{i}"),
                },
                "Granted",
                "alice",
            )
            .subject("user dave")
            .role("app/user")
            .details("until 2026-01-01T16:00:00Z");
            let last = entries.last().map(|e| (e.seq, e.hash.as_str()));
            let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, i as u32).unwrap();
            let e = next_entry(chain, last, &new, now);
            entries.push(e);
        }
        let data: BTreeMap<String, String> = entries.iter().map(|e| (entry_key(e.seq), entry_value(e))).collect();
        (
            Chunk {
                name: chain.chunk_name(0),
                data,
            },
            entries,
        )
    }

    fn head(chain: &Chain, e: &Entry) -> ChainHead {
        ChainHead {
            chain: chain.to_string(),
            chunk: chain.chunk_name(0),
            sequence: e.seq as i64,
            hash: e.hash.clone(),
            time: e.time,
        }
    }

    #[test]
    fn entries_render_as_a_table_and_as_json() {
        let chain = Chain::project("app");
        let (_, entries) = chunk(&chain, 2);
        let text = render_entries(&entries);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].starts_with("SEQ   TIME                   ACTOR   ACTION    OBJECT"),
            "{text}"
        );
        assert!(
            lines[2].starts_with(
                "2     2026-01-01T12:00:02Z   alice   Granted   RoleBinding/dave-app-user   user dave   app/user"
            ),
            "{text}"
        );
        let json = serde_json::to_value(&entries[0]).unwrap();
        assert_eq!(json["seq"], 1);
        assert_eq!(json["object"]["name"], "dave-app-user");
        assert_eq!(json["prev"], crate::audit::history::GENESIS);
    }

    #[test]
    fn an_intact_chain_reports_its_length_and_head_and_the_status_comparison() {
        let chain = Chain::project("app");
        let (c, entries) = chunk(&chain, 3);
        // The status may lag behind the chain: its head is entry 2.
        let heads = [head(&chain, &entries[1])];
        let v = verification(&chain, std::slice::from_ref(&c), Ok(&heads));
        assert!(v.intact);
        assert_eq!(v.entries, 3);
        assert_eq!(v.head.as_ref().unwrap().hash, entries[2].hash);
        assert_eq!(v.status_head, StatusHead::Matches { seq: 2 });
        let text = render_verification("of workspace a", &v);
        assert!(
            text.starts_with("chain project-app of workspace a: intact\n  entries: 3\n"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "  head:    #3 {} (foureyes-history-project-app-000000)\n",
                entries[2].hash
            )),
            "{text}"
        );
        assert!(text.contains("records (#2) is in the chain"), "{text}");
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["statusHead"]["result"], "matches");
        assert_eq!(json["head"]["seq"], 3);

        let v = verification(&chain, std::slice::from_ref(&c), Err("forbidden"));
        assert!(v.intact, "the links still verify");
        assert!(render_verification("of workspace a", &v).contains("not compared"));
        let v = verification(&chain, std::slice::from_ref(&c), Ok(&[]));
        assert_eq!(v.status_head, StatusHead::NotMirrored);
        let v = verification(&chain, &[], Ok(&[]));
        assert!(v.intact && v.entries == 0 && v.head.is_none());
    }

    #[test]
    fn a_broken_or_truncated_chain_names_the_first_break() {
        let chain = Chain::workspace();
        let (mut c, entries) = chunk(&chain, 3);
        let edited = c.data.get(&entry_key(2)).unwrap().replace("alice", "mallory");
        c.data.insert(entry_key(2), edited);
        let v = verification(&chain, std::slice::from_ref(&c), Ok(&[]));
        assert!(!v.intact);
        assert_eq!(v.broken_seq, Some(2));
        let text = render_verification("of workspace a", &v);
        assert!(text.starts_with("chain workspace of workspace a: BROKEN\n"), "{text}");
        assert!(text.contains("the entry was edited"), "{text}");

        // The newest entry removed: the links hold, the status head does not.
        let (mut c, _) = chunk(&chain, 3);
        c.data.remove(&entry_key(3));
        let heads = [head(&chain, &entries[2])];
        let v = verification(&chain, std::slice::from_ref(&c), Ok(&heads));
        assert!(!v.intact);
        assert_eq!(v.status_head, StatusHead::Mismatch { seq: 3 });
        assert!(v.problem.unwrap().contains("entries were removed"));
        // Every chunk removed.
        let v = verification(&chain, &[], Ok(&heads));
        assert!(!v.intact);
    }
}
