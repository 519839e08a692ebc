//! Pure decision logic: no I/O, no clock. Each function takes the object and
//! a snapshot of the world (including `now`) and returns what should be.
//! The reconcilers gather the snapshot, call these, and apply the result.

pub mod binding;
pub mod facts;
pub mod grants;
pub mod identity;
pub mod lifecycle;
pub mod lockout;
pub mod managers;
pub mod namespaces;
pub mod persistence;
pub mod quorum;
pub mod ratification;
pub mod role;
pub mod sweep;
pub mod transition;
pub mod workspace;

#[cfg(test)]
mod proptests;

pub use binding::{BindingDecision, BindingFacts, Refusal, decide_binding};
pub use namespaces::{NamespaceClaim, NamespaceFacts, claim_namespace};
pub use role::{Role, RoleTarget, resolve_cluster_role};
