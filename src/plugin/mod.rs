//! `kubectl access`: the kubectl plugin for people and scripts.
//!
//! The pure parts (names, durations, tables, the checks before a vote or a
//! revocation, the three sections of `list`, the dry run of `plan`) live in
//! their own modules and are unit-tested without a cluster; [`commands`]
//! gathers the world from the API server, calls them, and writes the result.
//! The binary `src/bin/kubectl-access.rs` only parses the command line and
//! turns the outcome into an exit code.

pub mod cli;
pub mod commands;
pub mod format;
pub mod history;
pub mod list;
pub mod names;
pub mod plan;
pub mod vote;

/// Why a command failed. Every message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The command line is incomplete or contradictory.
    #[error("{0}")]
    Usage(String),
    /// No kubeconfig, or the cluster cannot be reached.
    #[error(
        "cannot reach the cluster: {0}\n  check KUBECONFIG, --kubeconfig and --context (kubectl config get-contexts)"
    )]
    Connect(String),
    /// An object does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The API server refused the call (RBAC or admission).
    #[error("{0}")]
    Refused(String),
    /// The plugin refuses before asking the API server, because the server or
    /// the operator would ignore or refuse it.
    #[error("{0}")]
    Declined(String),
    /// Another API error.
    #[error("{what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// The API error.
        source: kube::Error,
    },
    /// A file could not be read or parsed.
    #[error("{0}")]
    Input(String),
}
