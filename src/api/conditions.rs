//! metav1-style status conditions.
//!
//! Our own types keep times as `chrono::DateTime<Utc>`; the conversion from
//! k8s-openapi's `Time` (built on `jiff`) lives in [`crate::api::time`].

use chrono::{DateTime, Utc};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The summary condition that GitOps tools read.
pub const READY: &str = "Ready";

/// The status of a condition, as in `metav1.ConditionStatus`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// It is not known whether the condition holds.
    Unknown,
}

/// One aspect of an object's state, as in `metav1.Condition`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The aspect this condition describes, in CamelCase (for example `Ready`).
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 316))]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// A machine-readable CamelCase reason for the last transition.
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
    /// A human-readable explanation of the last transition.
    #[serde(default)]
    #[schemars(length(max = 32768))]
    pub message: String,
    /// When the status last changed from one value to another.
    pub last_transition_time: DateTime<Utc>,
    /// The `metadata.generation` that the condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl Condition {
    /// A new condition; `last_transition_time` is set by [`set_condition`].
    pub fn new(
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
        observed_generation: Option<i64>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            type_: type_.to_owned(),
            status,
            reason: reason.to_owned(),
            message: message.into(),
            last_transition_time: now,
            observed_generation,
        }
    }
}

/// Sets `new` in `conditions`, keeping the previous `lastTransitionTime` unless
/// the status flips, so that an unchanged state compares equal and is never
/// written again.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) => {
            if old.status == new.status {
                new.last_transition_time = old.last_transition_time;
            }
            *old = new;
        }
        None => conditions.push(new),
    }
}

/// The condition of the given type, if any.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    #[test]
    fn unchanged_status_keeps_transition_time() {
        let mut conds = vec![];
        set_condition(
            &mut conds,
            Condition::new(READY, ConditionStatus::True, "Ok", "", Some(1), at(10)),
        );
        set_condition(
            &mut conds,
            Condition::new(READY, ConditionStatus::True, "Ok", "again", Some(2), at(20)),
        );
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0].last_transition_time, at(10));
        assert_eq!(conds[0].message, "again");
        assert_eq!(conds[0].observed_generation, Some(2));
    }

    #[test]
    fn flipped_status_takes_new_transition_time() {
        let mut conds = vec![];
        set_condition(
            &mut conds,
            Condition::new(READY, ConditionStatus::True, "Ok", "", None, at(10)),
        );
        set_condition(
            &mut conds,
            Condition::new(READY, ConditionStatus::False, "Broken", "", None, at(20)),
        );
        assert_eq!(conds[0].last_transition_time, at(20));
        assert_eq!(find_condition(&conds, READY).unwrap().reason, "Broken");
        assert!(find_condition(&conds, "Other").is_none());
    }
}
