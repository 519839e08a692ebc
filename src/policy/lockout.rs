//! Lockouts (DESIGN §2, invariant 11; §7, procedure 6): which lockouts are
//! in force, which bindings, requests and votes each one hits, and what a
//! lockout's status says. Pure: the time comes in as `now`.
//!
//! The one fact, "is this subject (or this caller) locked out", is derived
//! here from the cached Lockouts ([`InForce`]) and consulted by the binding
//! decision (an unfinished binding of a locked subject ends `Revoked`,
//! recording the lockout's name), by the request decision (a pending request
//! for a locked subject ends `Denied`; a locked voter's votes are ignored as
//! `LockedOut`, for good) and by the lockout's own status (what it revoked,
//! what remains, which workspaces it touched).
//!
//! A lockout is in force from its creation until its expiry instant (none:
//! until deleted). The admission policy `foureyes-lockouts` cannot read a
//! clock: it refuses for every Lockout without the label
//! `foureyes.dev/lockout-expired`, which the operator sets at the expiry
//! instant ([`LockoutDecision::mark_expired`]); between the two a lockout
//! past its expiry still refuses (the safe direction). A lockout being
//! deleted is in force until it is gone. Nothing a lockout ended is ever
//! restored.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::transition::{Actor, Kind, Transition, user};
use crate::api::conditions::{Condition, ConditionStatus, READY, set_condition};
use crate::api::{
    BindingPhase, Lockout, LockoutPhase, LockoutSpec, LockoutStatus, OutsideGrant, RequestPhase, RoleBindingSpec,
    RoleRequestSpec, Subject, SubjectKind,
};
use crate::config::Principals;

/// Most native bindings listed in a lockout's status.
pub const MAX_OUTSIDE_LISTED: usize = 256;

/// The effective expiry: `expiresAt`, or creation plus `duration`; `None`
/// when the lockout lasts until it is deleted.
pub fn effective_expiry(spec: &LockoutSpec, created: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match (&spec.expires_at, &spec.duration) {
        (Some(at), _) => Some(*at),
        (None, Some(d)) => Some(
            created
                .checked_add_signed(d.to_chrono())
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        ),
        (None, None) => None,
    }
}

/// Whether a lockout is in force at `now`.
pub fn in_force(spec: &LockoutSpec, created: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    effective_expiry(spec, created).is_none_or(|e| now < e)
}

/// A lockout in force, as what it hits records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The Lockout's name.
    pub lockout: String,
    /// Who created it (verified at admission).
    pub by: String,
    /// Its reason.
    pub reason: String,
    /// When it was created: a lockout's revocations are recorded shortly
    /// after, so that every one of them is sent before any record.
    pub since: Option<DateTime<Utc>>,
}

impl Hit {
    /// The reason as bindings and requests state it.
    pub fn describe(&self) -> String {
        format!("locked out by {} (Lockout {}): {}", self.by, self.lockout, self.reason)
    }
}

/// The lockouts in force at one instant, by subject.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InForce {
    by_subject: BTreeMap<(SubjectKind, String), Hit>,
}

impl InForce {
    /// The lockouts of `lockouts` in force at `now`; when two name the same
    /// subject, the first by name is the one named.
    pub fn new<'a>(lockouts: impl IntoIterator<Item = &'a Lockout>, now: DateTime<Utc>) -> Self {
        let mut sorted: Vec<&Lockout> = lockouts.into_iter().collect();
        sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let mut by_subject = BTreeMap::new();
        for l in sorted {
            let created = l
                .metadata
                .creation_timestamp
                .as_ref()
                .map(crate::api::time::from_k8s)
                .unwrap_or(now);
            if !in_force(&l.spec, created, now) {
                continue;
            }
            by_subject
                .entry((l.spec.subject.kind, l.spec.subject.name.clone()))
                .or_insert_with(|| Hit {
                    lockout: l.metadata.name.clone().unwrap_or_default(),
                    by: l.spec.created_by.clone(),
                    reason: l.spec.reason.clone(),
                    since: Some(created),
                });
        }
        Self { by_subject }
    }

    /// Whether no lockout is in force.
    pub fn is_empty(&self) -> bool {
        self.by_subject.is_empty()
    }

    /// The lockout that hits bindings and requests whose subject is `subject`.
    pub fn subject(&self, subject: &Subject) -> Option<&Hit> {
        self.by_subject.get(&(subject.kind, subject.name.clone()))
    }

    /// The lockout that hits what `user` does, authenticated with `groups`
    /// (as the admission stamps recorded them; `None` when unknown: only a
    /// user lockout can then be seen).
    pub fn caller(&self, user: &str, groups: Option<&[String]>) -> Option<&Hit> {
        self.by_subject.get(&(SubjectKind::User, user.to_owned())).or_else(|| {
            groups
                .unwrap_or_default()
                .iter()
                .find_map(|g| self.by_subject.get(&(SubjectKind::Group, g.clone())))
        })
    }
}

/// The voters of a request who are locked out: the requester (its implicit
/// approval) and the author of each vote, by user name and by the groups the
/// API server stamped. Their votes are ignored as `LockedOut`.
pub fn locked_voters(
    spec: &RoleRequestSpec,
    annotations: Option<&BTreeMap<String, String>>,
    asserters: &Principals,
    locks: &InForce,
) -> BTreeSet<String> {
    use super::identity::creator_groups;
    let mut out = BTreeSet::new();
    if locks.is_empty() {
        return out;
    }
    let requester_groups = creator_groups(annotations, &spec.requester);
    if locks.caller(&spec.requester, requester_groups.as_deref()).is_some() {
        out.insert(spec.requester.clone());
    }
    out.extend(locked_authors(
        spec.approvals.iter().map(|v| v.user.as_str()),
        annotations,
        asserters,
        locks,
    ));
    out
}

/// The authors of a binding's verdicts on its break-glass
/// (`spec.ratifications`) who are locked out: their verdicts do not count.
pub fn locked_ratifiers(
    spec: &RoleBindingSpec,
    annotations: Option<&BTreeMap<String, String>>,
    asserters: &Principals,
    locks: &InForce,
) -> BTreeSet<String> {
    if locks.is_empty() {
        return BTreeSet::new();
    }
    locked_authors(
        spec.ratifications.iter().map(|r| r.user.as_str()),
        annotations,
        asserters,
        locks,
    )
}

/// Of the authors of a list of votes stamped in `foureyes.dev/votes`, in
/// order, those locked out by user name or by the groups the API server
/// stamped.
fn locked_authors<'a>(
    users: impl Iterator<Item = &'a str>,
    annotations: Option<&BTreeMap<String, String>>,
    asserters: &Principals,
    locks: &InForce,
) -> BTreeSet<String> {
    use super::identity::{VoteStamp, vote_stamp};
    let mut out = BTreeSet::new();
    for (i, user) in users.enumerate() {
        let groups = match vote_stamp(annotations, i, user, asserters) {
            VoteStamp::Own(groups) => Some(groups),
            VoteStamp::Asserted | VoteStamp::Unverified => None,
        };
        if locks.caller(user, groups.as_deref()).is_some() {
            out.insert(user.to_owned());
        }
    }
    out
}

/// A foureyes binding whose subject is the lockout's, as the lockout sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held<'a> {
    /// Its workspace's name.
    pub workspace: &'a str,
    /// Its phase.
    pub phase: Option<BindingPhase>,
    /// The lockout that revoked it, if one did.
    pub lockout: Option<&'a str>,
}

/// A request that concerns the lockout's subject: for them, or voted on by them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asked<'a> {
    /// Its workspace's name.
    pub workspace: &'a str,
    /// Its phase.
    pub phase: Option<RequestPhase>,
    /// The lockout that ended it, if one did.
    pub lockout: Option<&'a str>,
}

/// A native RBAC binding of the cluster that foureyes did not make, with
/// its subjects (`kind`, `name`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeSubjects {
    /// What it is and grants.
    pub grant: OutsideGrant,
    /// Its subjects.
    pub subjects: Vec<(String, String)>,
}

/// What names `subject` directly, sorted; at most [`MAX_OUTSIDE_LISTED`],
/// with the total count.
pub fn outside_access<'a>(
    subject: &Subject,
    natives: impl IntoIterator<Item = &'a NativeSubjects>,
) -> (Vec<OutsideGrant>, usize) {
    let kind = match subject.kind {
        SubjectKind::User => "User",
        SubjectKind::Group => "Group",
    };
    let mut all: Vec<OutsideGrant> = natives
        .into_iter()
        .filter(|n| n.subjects.iter().any(|(k, name)| k == kind && *name == subject.name))
        .map(|n| n.grant.clone())
        .collect();
    all.sort();
    all.dedup();
    let total = all.len();
    all.truncate(MAX_OUTSIDE_LISTED);
    (all, total)
}

/// The snapshot a lockout's status is decided on.
#[derive(Clone, Debug)]
pub struct LockoutFacts<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its spec.
    pub spec: &'a LockoutSpec,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// Its generation.
    pub generation: Option<i64>,
    /// The status as last written.
    pub previous: Option<&'a LockoutStatus>,
    /// Whether it carries the expired mark already.
    pub marked_expired: bool,
    /// The foureyes bindings whose subject is the lockout's.
    pub held: &'a [Held<'a>],
    /// The requests for the subject, or voted on by them (a user).
    pub asked: &'a [Asked<'a>],
    /// Native bindings outside foureyes that name the subject, and their count.
    pub outside: (Vec<OutsideGrant>, usize),
    /// The current time.
    pub now: DateTime<Utc>,
}

/// What should be true of a lockout.
#[derive(Clone, Debug, PartialEq)]
pub struct LockoutDecision {
    /// The status to publish.
    pub status: LockoutStatus,
    /// Whether it is in force.
    pub in_force: bool,
    /// Set the expired mark now (past the expiry, not marked yet).
    pub mark_expired: bool,
    /// When to look again without any change (the expiry).
    pub wake_at: Option<DateTime<Utc>>,
    /// What happened this pass (its events, on the Lockout).
    pub happened: Vec<Transition>,
    /// The history entries to write, per workspace (each workspace's chain):
    /// a workspace touched for the first time gets the lockout's creation,
    /// every touched workspace its expiry.
    pub record: Vec<(String, Vec<Transition>)>,
}

fn about(spec: &LockoutSpec, kind: Kind, actor: Actor) -> Transition {
    Transition {
        kind,
        actor,
        subject: spec.subject.to_string(),
        role: String::new(),
    }
}

/// The lockout was created (actor: who created it).
pub fn created(name: &str, spec: &LockoutSpec, until: Option<DateTime<Utc>>) -> Transition {
    about(
        spec,
        Kind::LockoutCreated {
            lockout: name.to_owned(),
            reason: spec.reason.clone(),
            until,
        },
        user(&spec.created_by),
    )
}

/// The lockout was lifted (deleted); `by` and `why` from the annotations
/// that admission verified, when the lifter set them.
pub fn lifted(name: &str, spec: &LockoutSpec, by: Option<&str>, why: Option<&str>) -> Transition {
    about(
        spec,
        Kind::LockoutLifted {
            lockout: name.to_owned(),
            reason: why.unwrap_or_default().to_owned(),
        },
        by.map(user).unwrap_or(Actor::Unknown),
    )
}

/// Decides a lockout's status, its expiry mark and its record.
pub fn decide_lockout(facts: &LockoutFacts<'_>) -> LockoutDecision {
    let expires_at = effective_expiry(facts.spec, facts.created);
    let in_force = expires_at.is_none_or(|e| facts.now < e);
    let previous_phase = facts.previous.and_then(|s| s.phase);
    let mine = |l: Option<&str>| l == Some(facts.name);
    let revoked = facts
        .held
        .iter()
        .filter(|h| h.phase == Some(BindingPhase::Revoked) && mine(h.lockout))
        .count();
    let remaining = facts
        .held
        .iter()
        .filter(|h| h.phase == Some(BindingPhase::Active))
        .count();
    let ended = facts
        .asked
        .iter()
        .filter(|a| a.phase == Some(RequestPhase::Denied) && mine(a.lockout))
        .count();

    // Touched: where the lockout ended something, or (while in force) where
    // the subject holds or asks for a role, or voted on an open request.
    let mut touched: BTreeSet<String> = facts
        .previous
        .map(|s| s.workspaces.iter().cloned().collect())
        .unwrap_or_default();
    let before = touched.clone();
    for h in facts.held {
        let open = matches!(h.phase, None | Some(BindingPhase::Pending | BindingPhase::Active));
        if mine(h.lockout) || (in_force && open) {
            touched.insert(h.workspace.to_owned());
        }
    }
    for a in facts.asked {
        let open = !super::quorum::is_decided(a.phase);
        if mine(a.lockout) || (in_force && open) {
            touched.insert(a.workspace.to_owned());
        }
    }

    let mut happened = vec![];
    let creation = created(facts.name, facts.spec, expires_at);
    if facts.previous.is_none() {
        happened.push(creation.clone());
    }
    let expiry = about(
        facts.spec,
        Kind::LockoutExpired {
            lockout: facts.name.to_owned(),
            until: expires_at,
        },
        Actor::Operator,
    );
    let newly_expired = !in_force && previous_phase != Some(LockoutPhase::Expired);
    if newly_expired {
        happened.push(expiry.clone());
    }
    let mut record = vec![];
    for ws in &touched {
        let mut entries = vec![];
        if !before.contains(ws) {
            entries.push(creation.clone());
            if !in_force {
                entries.push(expiry.clone());
            }
        } else if newly_expired {
            entries.push(expiry.clone());
        }
        if !entries.is_empty() {
            record.push((ws.clone(), entries));
        }
    }

    let mut status = facts.previous.cloned().unwrap_or_default();
    status.observed_generation = facts.generation;
    status.phase = Some(if in_force {
        LockoutPhase::Active
    } else {
        LockoutPhase::Expired
    });
    status.expires_at = expires_at;
    status.revoked = revoked as i32;
    status.ended_requests = ended as i32;
    status.remaining = remaining as i32;
    status.workspaces = touched.into_iter().collect();
    status.outside_access = facts.outside.0.clone();
    status.outside_access_count = facts.outside.1 as i32;
    let outside = match facts.outside.1 {
        0 => "no access outside foureyes names them directly".to_owned(),
        n => format!("{n} native binding(s) outside foureyes still name them (status.outsideAccess)"),
    };
    let (ready, reason, message) = match (in_force, remaining) {
        (true, 0) => (
            ConditionStatus::True,
            "Enforced",
            format!(
                "no foureyes access of {} remains: {revoked} binding(s) revoked, {ended} request(s) ended; {outside}",
                facts.spec.subject
            ),
        ),
        (true, n) => (
            ConditionStatus::False,
            "Revoking",
            format!("{n} foureyes binding(s) of {} still in effect", facts.spec.subject),
        ),
        (false, _) => (
            ConditionStatus::False,
            "Expired",
            format!(
                "expired at {}: it refuses nothing any more; nothing it ended was restored",
                expires_at.map(|e| e.to_rfc3339()).unwrap_or_default()
            ),
        ),
    };
    set_condition(
        &mut status.conditions,
        Condition::new(READY, ready, reason, message, facts.generation, facts.now),
    );
    LockoutDecision {
        status,
        in_force,
        mark_expired: !in_force && !facts.marked_expired,
        wake_at: if in_force { expires_at } else { None },
        happened,
        record,
    }
}

#[cfg(test)]
mod tests;
