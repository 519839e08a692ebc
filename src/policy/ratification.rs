//! Break-glass ratified after the fact (DESIGN §7, procedure 7).
//!
//! A grant made by a partner alone (their approval of a request alone, or
//! their direct grant of a project role) waits for a manager of the
//! workspace to ratify it or object to it, within the workspace's
//! `approvalPolicy.breakGlassRatification.window`. The rules, in the order
//! they are applied:
//! 1. Ratification starts when the grant is first authorised, with its
//!    deadline and what happens at it (`onUnratified`) fixed then; a grant
//!    authorised before ratification existed needs none.
//! 2. Verdicts (`spec.ratifications`) are read in order, on every pass, like
//!    the votes on a request: the subject's never count (`IsSubject`,
//!    members of a subject group included), nor the partner's who broke the
//!    glass (`BrokeGlass`), nor an unverified one (`Unverified`), nor a
//!    voter's locked out now (`LockedOut`), nor one by someone whose
//!    approval of the request already counted (`Duplicate`: no second pair
//!    of eyes), nor anyone's but a current manager's (`NotManager`). A
//!    manager's in their cooling-off is passed over until it has passed,
//!    and the verdicts after it are read meanwhile.
//! 3. The first verdict that counts settles it: `Ratify` → `Ratified`,
//!    `Object` → `Objected`, and the grant is revoked at once (also one not
//!    in effect yet). Later verdicts are `TooLate`.
//! 4. Without one at the deadline: `Unratified` (a Warning event, a history
//!    entry, a notification), and with `onUnratified: Revoke` the grant is
//!    revoked. A verdict after that still counts: a late ratification
//!    clears the flag, a late objection revokes.
//! 5. The ratification goes on when the grant ends otherwise (an expiry, a
//!    revocation): the break-glass happened and still needs its verdict. A
//!    binding deleted while its ratification is awaited is reported as
//!    unratified then.

use chrono::{DateTime, Duration, Utc};

use super::quorum::Voter;
use super::transition::{Actor, Kind, Transition, user};
use crate::api::{
    IgnoreReason, IgnoredVote, OnUnratified, RatificationState, RatificationStatus, RoleBindingSpec, SubjectKind,
    Verdict,
};

/// The snapshot a ratification is decided on.
#[derive(Clone, Debug)]
pub struct RatificationFacts<'a> {
    /// The binding's spec (its subject and verdicts).
    pub spec: &'a RoleBindingSpec,
    /// The ratification as last written.
    pub previous: Option<&'a RatificationStatus>,
    /// The partner who broke the glass, when the grant is authorised for
    /// the first time in this pass and is break-glass: ratification starts.
    pub starts: Option<&'a str>,
    /// Who already counted as approvers of the request the partner's
    /// approval decided: their verdict would be no second pair of eyes.
    pub approvers: &'a [String],
    /// The workspace's window (`None`: no workspace to ask).
    pub window: Option<Duration>,
    /// What the workspace does with an unratified grant.
    pub on_unratified: OnUnratified,
    /// What is known about each verdict's author, in the order of
    /// `spec.ratifications`.
    pub voters: &'a [Voter],
    /// Voters locked out now.
    pub locked_voters: &'a [String],
    /// The workspace's cooling-off for new managers.
    pub cooling_off: Duration,
    /// The current time.
    pub now: DateTime<Utc>,
}

/// What the ratification is now, and what it makes happen.
#[derive(Clone, Debug, PartialEq)]
pub struct RatificationDecision {
    /// The status to write (`None`: no ratification).
    pub status: Option<RatificationStatus>,
    /// The grant must end now: an objection, or `Revoke` at the deadline.
    pub revoke: Option<RatificationRevoke>,
    /// When to look again (the deadline, or when a held-back verdict counts).
    pub wake_at: Option<DateTime<Utc>>,
}

/// Why a ratification ends a grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RatificationRevoke {
    /// A manager objected.
    Objected {
        /// Who.
        by: String,
        /// Their comment.
        comment: Option<String>,
    },
    /// Nobody ratified it in time, and the workspace revokes such grants.
    Unratified,
}

impl RatificationRevoke {
    /// Who ended it (`None`: the operator, on the workspace's policy).
    pub fn actor(&self) -> Option<&str> {
        match self {
            RatificationRevoke::Objected { by, .. } => Some(by),
            RatificationRevoke::Unratified => None,
        }
    }

    /// Why, in words.
    pub fn reason(&self) -> String {
        match self {
            RatificationRevoke::Objected { comment, .. } => format!(
                "a manager objected to the break-glass{}",
                comment.as_ref().map(|c| format!(": {c}")).unwrap_or_default()
            ),
            RatificationRevoke::Unratified => {
                "the break-glass was not ratified within the workspace's window (onUnratified: Revoke)".to_owned()
            }
        }
    }
}

/// Whether a status shows a ratification that revoked its grant.
pub fn revoked_by(status: Option<&RatificationStatus>) -> Option<RatificationRevoke> {
    let s = status.filter(|s| s.revoked)?;
    Some(match s.state {
        RatificationState::Objected => RatificationRevoke::Objected {
            by: s.by.clone().unwrap_or_default(),
            comment: s.comment.clone(),
        },
        _ => RatificationRevoke::Unratified,
    })
}

/// What is known about the author of each of `spec.ratifications`, from
/// the admission stamp `foureyes.dev/votes` (the same as a request's
/// votes) and the managers now.
pub fn ratifiers(
    spec: &RoleBindingSpec,
    annotations: Option<&std::collections::BTreeMap<String, String>>,
    managers: &super::managers::Managers,
    config: &crate::config::Config,
) -> Vec<Voter> {
    use super::identity::{VoteStamp, vote_stamp};
    spec.ratifications
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let stamp = vote_stamp(annotations, i, &r.user, &config.trusted_asserters);
            let groups = match &stamp {
                VoteStamp::Own(groups) => Some(groups.as_slice()),
                VoteStamp::Asserted | VoteStamp::Unverified => None,
            };
            super::quorum::voter(
                &spec.subject,
                &r.user,
                groups,
                stamp != VoteStamp::Unverified,
                managers,
                config,
            )
        })
        .collect()
}

/// Decides the ratification of a binding. Pure: same facts, same decision.
pub fn decide_ratification(facts: &RatificationFacts<'_>) -> RatificationDecision {
    let mut status = match (facts.previous, facts.starts, facts.window) {
        (Some(previous), ..) => previous.clone(),
        (None, Some(partner), Some(window)) => RatificationStatus {
            state: RatificationState::Awaiting,
            break_glass_by: partner.to_owned(),
            // (Positive, whatever was stored before the CRD's rule.)
            deadline: facts
                .now
                .checked_add_signed(window.max(Duration::seconds(1)))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            on_unratified: facts.on_unratified,
            decided_on_verdicts: None,
            by: None,
            at: None,
            comment: None,
            revoked: false,
            ignored: vec![],
        },
        _ => {
            return RatificationDecision {
                status: None,
                revoke: None,
                wake_at: None,
            };
        }
    };
    let verdicts = &facts.spec.ratifications;
    if matches!(status.state, RatificationState::Ratified | RatificationState::Objected) {
        // Settled: only verdicts that came after are added, as too late.
        let considered = status.decided_on_verdicts.map_or(verdicts.len(), |n| n.max(0) as usize);
        let late = status
            .ignored
            .iter()
            .filter(|v| v.reason == IgnoreReason::TooLate)
            .count();
        for r in verdicts.iter().skip(considered).skip(late) {
            status.ignored.push(IgnoredVote {
                user: r.user.clone(),
                reason: IgnoreReason::TooLate,
            });
        }
        return RatificationDecision {
            status: Some(status),
            revoke: None,
            wake_at: None,
        };
    }
    let subject = &facts.spec.subject;
    let mut wake_at: Option<DateTime<Utc>> = None;
    let mut ignored = vec![];
    let mut counted: Option<(usize, Verdict)> = None;
    for (i, r) in verdicts.iter().enumerate() {
        let voter = facts.voters.get(i).copied().unwrap_or_default();
        let reason = if counted.is_some() {
            Some(IgnoreReason::TooLate)
        } else if facts.locked_voters.contains(&r.user) {
            Some(IgnoreReason::LockedOut)
        } else if (subject.kind == SubjectKind::User && subject.name == r.user) || voter.in_subject_group {
            Some(IgnoreReason::IsSubject)
        } else if r.user == status.break_glass_by {
            Some(IgnoreReason::BrokeGlass)
        } else if !voter.verified {
            Some(IgnoreReason::Unverified)
        } else if facts.approvers.contains(&r.user) {
            Some(IgnoreReason::Duplicate)
        } else if !voter.manager {
            Some(IgnoreReason::NotManager)
        } else if let Some(at) = voter
            .manager_since
            .and_then(|since| since.checked_add_signed(facts.cooling_off))
            .filter(|at| *at > facts.now)
        {
            // Passed over until the cooling-off has passed; the verdicts
            // after it are read meanwhile.
            wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
            continue;
        } else {
            None
        };
        match reason {
            Some(reason) => ignored.push(IgnoredVote {
                user: r.user.clone(),
                reason,
            }),
            None => counted = Some((i, r.verdict)),
        }
    }
    status.ignored = ignored;
    let mut revoke = None;
    if let Some((i, verdict)) = counted {
        let r = &verdicts[i];
        status.state = match verdict {
            Verdict::Ratify => RatificationState::Ratified,
            Verdict::Object => RatificationState::Objected,
        };
        status.by = Some(r.user.clone());
        status.at = Some(facts.now);
        status.comment = r.comment.clone();
        status.decided_on_verdicts = Some(verdicts.len() as i32);
        wake_at = None;
        if verdict == Verdict::Object {
            status.revoked = true;
            revoke = Some(RatificationRevoke::Objected {
                by: r.user.clone(),
                comment: r.comment.clone(),
            });
        }
    } else if status.state == RatificationState::Awaiting {
        if facts.now >= status.deadline {
            status.state = RatificationState::Unratified;
            status.at = Some(facts.now);
            if status.on_unratified == OnUnratified::Revoke {
                status.revoked = true;
                revoke = Some(RatificationRevoke::Unratified);
            }
        } else {
            wake_at = Some(wake_at.map_or(status.deadline, |w| w.min(status.deadline)));
        }
    }
    RatificationDecision {
        status: Some(status),
        revoke,
        wake_at,
    }
}

/// What the ratification's change from `previous` to `decision` made
/// happen: a verdict counted (ratified, objected), the deadline passed
/// (unratified), and each verdict newly ignored.
pub fn transitions(
    spec: &RoleBindingSpec,
    role: &str,
    previous: Option<&RatificationStatus>,
    decision: &RatificationDecision,
) -> Vec<Transition> {
    let Some(now) = &decision.status else {
        return vec![];
    };
    let about = |kind: Kind, actor: Actor| Transition {
        kind,
        actor,
        subject: spec.subject.to_string(),
        role: role.to_owned(),
    };
    // Each verdict ignored for a reason not reported before.
    let before: &[IgnoredVote] = previous.map_or(&[], |p| p.ignored.as_slice());
    let mut out: Vec<Transition> = now
        .ignored
        .iter()
        .filter(|v| !before.contains(v))
        .map(|v| about(Kind::VoteIgnored(v.reason), user(&v.user)))
        .collect();
    let before = previous.map(|p| p.state);
    if before == Some(now.state) {
        return out;
    }
    let partner = now.break_glass_by.clone();
    match now.state {
        RatificationState::Awaiting => {}
        RatificationState::Ratified => out.push(about(
            Kind::BreakGlassRatified {
                partner,
                comment: now.comment.clone(),
                late: before == Some(RatificationState::Unratified),
            },
            user(now.by.as_deref().unwrap_or_default()),
        )),
        RatificationState::Objected => out.push(about(
            Kind::BreakGlassObjected {
                partner,
                comment: now.comment.clone(),
            },
            user(now.by.as_deref().unwrap_or_default()),
        )),
        RatificationState::Unratified => out.push(about(
            Kind::BreakGlassUnratified {
                partner,
                deadline: now.deadline,
                revoked: now.revoked,
                deleted: false,
            },
            Actor::Operator,
        )),
    }
    out
}

/// A binding deleted while its break-glass still awaited a verdict: the
/// deletion must not hide that nobody ratified it (who deleted it, the API
/// server does not say).
pub fn deleted_unratified(
    spec: &RoleBindingSpec,
    role: &str,
    status: Option<&RatificationStatus>,
) -> Option<Transition> {
    let r = status.filter(|r| r.state == RatificationState::Awaiting)?;
    Some(Transition {
        kind: Kind::BreakGlassUnratified {
            partner: r.break_glass_by.clone(),
            deadline: r.deadline,
            revoked: false,
            deleted: true,
        },
        actor: Actor::Unknown,
        subject: spec.subject.to_string(),
        role: role.to_owned(),
    })
}

#[cfg(test)]
mod tests;
