//! Entries: what a chain holds, their canonical form and hash, and how an
//! entry is stored in a chunk (pure).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Chain;

/// The `prev` of a chain's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The actor of what the operator does on its own (an expiry, the end of a
/// record's retention).
pub const OPERATOR_ACTOR: &str = "foureyes";
/// The actor of what the operator cannot attribute (a plain deletion: the API
/// server does not tell who deleted an object).
pub const UNKNOWN_ACTOR: &str = "unknown";

/// Bounds on entry fields, so that an entry stays small (a few KiB at most).
pub(super) const MAX_FIELD: usize = 253;
pub(super) const MAX_DETAILS: usize = 2048;
/// Digits of the entry keys in a chunk's data.
const SEQ_DIGITS: usize = 12;

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
    /// A manager ratified a break-glass grant after the fact.
    pub const BREAK_GLASS_RATIFIED: &str = "BreakGlassRatified";
    /// A manager objected to a break-glass grant; it was revoked.
    pub const BREAK_GLASS_OBJECTED: &str = "BreakGlassObjected";
    /// Nobody ratified a break-glass grant within the workspace's window.
    pub const BREAK_GLASS_UNRATIFIED: &str = "BreakGlassUnratified";
    /// A role request stayed pending past the workspace's timeout.
    pub const REQUEST_EXPIRED: &str = "RequestExpired";
    /// A Lockout was created that concerns this workspace (its subject held,
    /// asked for or voted on a role here).
    pub const LOCKOUT_CREATED: &str = "LockoutCreated";
    /// A binding was revoked, or a pending request ended, because its
    /// subject is locked out.
    pub const LOCKED_OUT: &str = "LockedOut";
    /// A Lockout that concerned this workspace reached its expiry.
    pub const LOCKOUT_EXPIRED: &str = "LockoutExpired";
    /// A Lockout that concerned this workspace was lifted (deleted).
    pub const LOCKOUT_LIFTED: &str = "LockoutLifted";
}

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
pub(super) fn canonical(chain: &Chain, e: &Entry) -> Vec<u8> {
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
pub(super) fn entry_hash(chain: &Chain, e: &Entry) -> String {
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
pub(super) fn entry_size(e: &Entry) -> usize {
    SEQ_DIGITS + entry_value(e).len()
}

/// The bytes of a chunk's data.
pub fn data_size(data: &BTreeMap<String, String>) -> usize {
    data.iter().map(|(k, v)| k.len() + v.len()).sum()
}
