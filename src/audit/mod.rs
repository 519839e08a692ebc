//! The audit trail: Kubernetes Events for the live view.

pub mod events;
