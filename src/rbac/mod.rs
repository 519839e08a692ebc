//! Native RBAC: what foureyes bindings become, how it is named and labelled,
//! and how it is applied and removed.
//!
//! One native RoleBinding per foureyes binding and namespace, named
//! deterministically from the binding's namespace, name and uid, so that
//! overlapping grants never touch each other and a retry never creates two.
//! Native objects in other namespaces cannot have owner references to ours:
//! they carry labels (workspace, project, binding, binding uid) and
//! annotations (the owning binding, the expiry) that the finalizers and the
//! sweep use. User names never go into label values.

pub mod apply;
pub mod build;
pub mod cached;
pub mod grants;
pub mod outside;
pub mod project_roles;
pub mod revoke;

pub use build::*;
pub use cached::{NativeGrant, in_sync};
