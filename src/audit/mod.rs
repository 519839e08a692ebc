//! The audit trail: Kubernetes Events for the live view, and the history
//! chains for the record.

pub mod events;
pub mod history;
pub mod transitions;
