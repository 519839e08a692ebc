//! foureyes: emergency and just-in-time access for Kubernetes, with the
//! consent of several workspace managers (the four-eyes principle).
//!
//! The layout follows the design: `api` holds the custom resources and the
//! generated manifests.

// `#[kube(printcolumn(...))]` repeats keys by design; clippy reads them as duplicates.
#![allow(clippy::duplicated_attributes)]

pub mod api;
pub mod audit;
pub mod config;
pub mod leader;
pub mod manifests;
pub mod notify;
pub mod plugin;
pub mod policy;
pub mod rbac;
pub mod reconcile;
pub mod run;
pub mod telemetry;
pub mod wire;
