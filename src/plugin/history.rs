//! `kubectl access history`: a workspace's history chains, as a table or
//! JSON, and their verification (the pure parts), and the command, which
//! reads the chunks and the Workspace status with `crate::audit::history`.
//!
//! A chain is verified by [`crate::audit::history::verify`] (every link,
//! hash, sequence number and chunk seal), then compared with the head that
//! the Workspace status mirrors ([`crate::audit::history::check_head`]),
//! which tells a chain whose newest entries were removed from a complete one.
//! Someone who may not read the Workspace (an auditor, by default) still
//! verifies the links; the output says that the head was not compared.

use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde::Serialize;

use super::PluginError;
use super::cli::{ChainArgs, Global, HistoryArgs, HistoryCommand, Output};
use super::common::{api_err, emit, emit_json, is_code};
use super::format::Table;
use super::plan;
use crate::api::Workspace;
use crate::api::workspace::ChainHead;
use crate::audit::history::{Chain, Chunk, Entry, Error as HistoryError, check_head, list_chains, read_chunks, verify};

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

/// Where a workspace's history is, and the chain heads its status records
/// (or why they cannot be read).
pub(super) struct HistoryTarget {
    /// Where the chains are, for people: `of workspace payments`, or `in
    /// namespace ws-payments` when the workspace is not known.
    pub(super) place: String,
    pub(super) namespace: String,
    pub(super) heads: Result<Vec<ChainHead>, String>,
}

/// A verification in one line, for a badge: `intact, head #12 matches the
/// workspace status`, or where and how the chain is broken. The second
/// value says whether the chain is intact.
pub fn summary(v: &Verification) -> (bool, String) {
    if !v.intact {
        let at = match (&v.broken_chunk, v.broken_seq) {
            (Some(c), Some(s)) => format!(" at entry #{s} ({c})"),
            (Some(c), None) => format!(" in {c}"),
            (None, _) => String::new(),
        };
        let problem = v.problem.as_deref().unwrap_or("unknown problem");
        return (false, format!("BROKEN{at}: {problem}"));
    }
    let head = match &v.head {
        Some(h) => format!("head #{}", h.seq),
        None => "empty".to_owned(),
    };
    let status = match &v.status_head {
        StatusHead::Matches { seq } if v.head.as_ref().is_some_and(|h| h.seq == *seq) => {
            "matches the workspace status".to_owned()
        }
        StatusHead::Matches { seq } => format!("(the workspace status still records #{seq}, which the chain holds)"),
        StatusHead::Mismatch { seq } => format!("does not hold #{seq}, the head the workspace status records"),
        StatusHead::NotMirrored => "not yet in the workspace status".to_owned(),
        StatusHead::NotCompared { reason } => format!("not compared with the workspace status: {reason}"),
    };
    (true, format!("intact, {head} {status}"))
}

/// The entries of a chain's chunks that parse, oldest first.
pub(super) fn entries_of(chunks: &[Chunk]) -> Vec<Entry> {
    chunks
        .iter()
        .flat_map(|c| c.entries())
        .filter_map(|(_, e)| e.ok())
        .collect()
}

/// Reads the chains that `c` names, with where they are and the heads the
/// Workspace status records. What the command and the console share.
pub(super) async fn read(
    client: &Client,
    g: &Global,
    c: &ChainArgs,
) -> Result<(HistoryTarget, Vec<(Chain, Vec<Chunk>)>), PluginError> {
    let t = history_target(client, g, c).await?;
    let chains = history_chains(client, &t, c).await?;
    let mut read = vec![];
    for chain in chains {
        let chunks = read_chunks(client, &t.namespace, &chain)
            .await
            .map_err(history_err(format!(
                "reading {} ({})",
                describe(&chain, &t.place),
                t.namespace
            )))?;
        read.push((chain, chunks));
    }
    Ok((t, read))
}

async fn history_target(client: &Client, g: &Global, c: &ChainArgs) -> Result<HistoryTarget, PluginError> {
    let workspaces = Api::<Workspace>::all(client.clone());
    let heads_of = |ws: &Workspace| ws.status.as_ref().map(|s| s.history.clone()).unwrap_or_default();
    match (&c.workspace, &g.namespace) {
        (Some(name), _) => match workspaces.get(name).await {
            Ok(ws) => Ok(HistoryTarget {
                place: format!("of workspace {name}"),
                namespace: plan::control_namespace(&ws),
                heads: Ok(heads_of(&ws)),
            }),
            Err(e) if is_code(&e, 404) => Err(PluginError::NotFound(format!(
                "workspace {name} not found: list them with kubectl get ws"
            ))),
            // An auditor may read the history but not the Workspace: the
            // namespace follows the convention (or -n), the head is not compared.
            Err(e) if is_code(&e, 403) => Ok(HistoryTarget {
                place: format!("of workspace {name}"),
                namespace: g
                    .namespace
                    .clone()
                    .unwrap_or_else(|| format!("{}{name}", crate::api::workspace::DEFAULT_NAMESPACE_PREFIX)),
                heads: Err(format!("you may not read the Workspace {name}")),
            }),
            Err(e) => Err(api_err(format!("reading workspace {name}"))(e)),
        },
        (None, Some(ns)) => {
            let in_ns = format!("in namespace {ns}");
            let (place, heads) = match workspaces.list(&ListParams::default()).await {
                Ok(list) => match list.items.iter().find(|ws| plan::control_namespace(ws) == *ns) {
                    Some(ws) => (format!("of workspace {}", ws.name_any()), Ok(heads_of(ws))),
                    None => (in_ns, Err(format!("no Workspace has the control namespace {ns}"))),
                },
                Err(e) if is_code(&e, 403) => (in_ns, Err("you may not list Workspaces".to_owned())),
                Err(e) => return Err(api_err("listing workspaces")(e)),
            };
            Ok(HistoryTarget {
                place,
                namespace: ns.clone(),
                heads,
            })
        }
        (None, None) => Err(PluginError::Usage(
            "which workspace? kubectl access history WORKSPACE [--project P | --all], or -n NAMESPACE".into(),
        )),
    }
}

/// Maps a history error to one that says what to do next.
fn history_err(what: String) -> impl FnOnce(HistoryError) -> PluginError {
    move |e| match e {
        HistoryError::Api {
            code: Some(403),
            message,
            ..
        } => PluginError::Refused(format!(
            "{what}: {message}\n  managers, members and auditors of the workspace may read its history: \
             check your roles with kubectl access whoami"
        )),
        HistoryError::Api {
            code: None, message, ..
        } => PluginError::Connect(format!("{what}: {message}")),
        HistoryError::InvalidChain(name) => PluginError::Usage(format!("{what}: {name:?} cannot name a history chain")),
        other => PluginError::Refused(format!("{what}: {other}")),
    }
}

/// The chains a command covers: one, or every chain of the workspace (with
/// those the status records but that have no chunk left, for verification).
async fn history_chains(client: &Client, t: &HistoryTarget, c: &ChainArgs) -> Result<Vec<Chain>, PluginError> {
    if !c.all {
        return Ok(vec![match &c.project {
            Some(p) => Chain::project(p),
            None => Chain::workspace(),
        }]);
    }
    let mut chains = list_chains(client, &t.namespace)
        .await
        .map_err(history_err(format!("listing the history chains in {}", t.namespace)))?;
    if let Ok(heads) = &t.heads {
        for h in heads {
            if let Ok(chain) = Chain::named(&h.chain)
                && !chains.contains(&chain)
            {
                chains.push(chain);
            }
        }
    }
    if chains.is_empty() {
        return Err(PluginError::NotFound(format!(
            "no history in {}: is it the control namespace of a workspace?",
            t.namespace
        )));
    }
    Ok(chains)
}

/// Lists a chain's entries, or verifies chains (`verify`: exit code 1 when
/// one is broken).
pub(super) async fn command(client: &Client, g: &Global, a: &HistoryArgs) -> Result<u8, PluginError> {
    let (c, verify) = match &a.verify {
        Some(HistoryCommand::Verify(c)) => (c, true),
        None => (&a.chain, false),
    };
    let (t, read) = read(client, g, c).await?;
    if verify {
        let heads = t.heads.as_deref().map_err(String::as_str);
        let results: Vec<Verification> = read
            .iter()
            .map(|(chain, chunks)| verification(chain, chunks, heads))
            .collect();
        if g.output == Output::Json {
            if c.all {
                emit_json(&results);
            } else {
                emit_json(&results[0]);
            }
        } else {
            let text: Vec<String> = results.iter().map(|v| render_verification(&t.place, v)).collect();
            emit(&text.join("\n"));
        }
        return Ok(if results.iter().all(|v| v.intact) { 0 } else { 1 });
    }
    let mut listed = vec![];
    for (chain, chunks) in &read {
        if let Err(b) = crate::audit::history::verify(chain, chunks) {
            eprintln!("warning: {b}\n  kubectl access history verify shows the details");
        }
        let entries = entries_of(chunks);
        if entries.is_empty() && g.output != Output::Json {
            eprintln!(
                "{} has no entries yet{}",
                describe(chain, &t.place),
                if c.all {
                    ""
                } else {
                    "; kubectl access history WORKSPACE --all shows every chain"
                }
            );
        }
        listed.push(ChainEntries {
            chain: chain.to_string(),
            entries,
        });
    }
    if g.output == Output::Json {
        if c.all {
            emit_json(&listed);
        } else {
            emit_json(&listed[0].entries);
        }
    } else {
        let text: Vec<String> = listed
            .iter()
            .filter(|l| !l.entries.is_empty())
            .map(|l| {
                let title = if c.all {
                    format!("{}:\n", describe(&l.chain, &t.place))
                } else {
                    String::new()
                };
                format!("{title}{}", render_entries(&l.entries))
            })
            .collect();
        emit(&text.join("\n"));
    }
    Ok(0)
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

    #[test]
    fn the_badge_says_intact_with_the_head_or_where_it_is_broken() {
        let chain = Chain::project("app");
        let (c, entries) = chunk(&chain, 3);
        let v = verification(&chain, std::slice::from_ref(&c), Ok(&[head(&chain, &entries[2])]));
        assert_eq!(
            summary(&v),
            (true, "intact, head #3 matches the workspace status".into())
        );
        let v = verification(&chain, std::slice::from_ref(&c), Ok(&[head(&chain, &entries[1])]));
        assert_eq!(
            summary(&v),
            (
                true,
                "intact, head #3 (the workspace status still records #2, which the chain holds)".into()
            )
        );
        let v = verification(
            &chain,
            std::slice::from_ref(&c),
            Err("you may not read the Workspace a"),
        );
        assert_eq!(
            summary(&v).1,
            "intact, head #3 not compared with the workspace status: you may not read the Workspace a"
        );
        let mut broken = c.clone();
        let edited = broken.data.get(&entry_key(2)).unwrap().replace("alice", "mallory");
        broken.data.insert(entry_key(2), edited);
        let (ok, text) = summary(&verification(&chain, &[broken], Ok(&[])));
        assert!(!ok);
        assert!(
            text.starts_with("BROKEN at entry #2 (foureyes-history-project-app-000000): "),
            "{text}"
        );
        let (_, text) = summary(&verification(
            &chain,
            &[c],
            Ok(&[head(&chain, &entries[2]), {
                let mut h = head(&chain, &entries[2]);
                h.sequence = 9;
                h
            }][1..]),
        ));
        assert!(text.starts_with("BROKEN"), "{text}");
    }
}
