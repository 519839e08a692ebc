//! DESIGN §2, invariant 2: which native bindings the sweep removes.

use chrono::{DateTime, Utc};

use crate::api::BindingPhase;

/// What the sweep knows of a native binding's owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerFacts<'a> {
    /// No foureyes binding of that namespace and name exists.
    Gone,
    /// It exists, with this uid and phase.
    Present {
        /// Its uid.
        uid: Option<&'a str>,
        /// Its phase, if it has a status yet.
        phase: Option<BindingPhase>,
    },
}

/// Whether a native binding is past its expiry: the one definition of
/// "overdue" (DESIGN §2, invariants 1 and 12), shared by the start-up
/// revocation, the standby's timers, `foureyes sweep --once` and the sweep.
/// Without a readable expiry, nothing says the access is still due.
pub fn overdue(expiry: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    expiry.is_none_or(|e| e <= now)
}

/// Why a native binding must go, or `None` if it may stay: its owner is gone,
/// has another uid, is finished, or its expiry has passed (or cannot be read).
pub fn sweep_reason(
    owner: OwnerFacts<'_>,
    labelled_uid: Option<&str>,
    expiry: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<&'static str> {
    match owner {
        OwnerFacts::Gone => Some("owner gone"),
        OwnerFacts::Present { uid, .. } if uid != labelled_uid => Some("owner has another uid"),
        OwnerFacts::Present {
            phase: Some(BindingPhase::Expired | BindingPhase::Revoked),
            ..
        } => Some("owner finished"),
        _ if overdue(expiry, now) => Some("past its expiry"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).unwrap()
    }

    #[test]
    fn overdue_at_the_expiry_and_without_one() {
        assert!(!overdue(Some(t(101)), t(100)));
        assert!(overdue(Some(t(100)), t(100)));
        assert!(overdue(Some(t(99)), t(100)));
        assert!(overdue(None, t(100)));
    }

    #[test]
    fn removes_orphans_impostors_finished_and_overdue() {
        let live = |phase| OwnerFacts::Present { uid: Some("u1"), phase };
        let future = Some(t(200));
        assert_eq!(
            sweep_reason(OwnerFacts::Gone, Some("u1"), future, t(100)),
            Some("owner gone")
        );
        assert_eq!(
            sweep_reason(
                OwnerFacts::Present {
                    uid: Some("u2"),
                    phase: Some(BindingPhase::Active)
                },
                Some("u1"),
                future,
                t(100)
            ),
            Some("owner has another uid")
        );
        assert_eq!(
            sweep_reason(live(Some(BindingPhase::Expired)), Some("u1"), future, t(100)),
            Some("owner finished")
        );
        assert_eq!(
            sweep_reason(live(Some(BindingPhase::Revoked)), Some("u1"), future, t(100)),
            Some("owner finished")
        );
        assert_eq!(
            sweep_reason(live(Some(BindingPhase::Active)), Some("u1"), Some(t(100)), t(100)),
            Some("past its expiry")
        );
        assert_eq!(
            sweep_reason(live(Some(BindingPhase::Active)), Some("u1"), None, t(100)),
            Some("past its expiry")
        );
        assert_eq!(
            sweep_reason(live(Some(BindingPhase::Active)), Some("u1"), future, t(100)),
            None
        );
        assert_eq!(
            sweep_reason(live(None), Some("u1"), future, t(100)),
            None,
            "a binding not yet reported keeps its grant"
        );
        assert_eq!(
            sweep_reason(live(Some(BindingPhase::Pending)), Some("u1"), future, t(100)),
            None
        );
    }
}
