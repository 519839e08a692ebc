//! `kubectl access`: the kubectl plugin for people and scripts.
//!
//! One module per subcommand: [`grant`], [`request`], [`vote`] (`approve`
//! and `deny`), [`revoke`], [`ratify`], [`list`] (and `whoami`), [`history`],
//! [`plan`], [`lockout`] (and `unlock`), [`console`] (a web console on
//! 127.0.0.1 that calls the same functions).
//! Each holds the pure parts (the checks before a vote or a revocation, the
//! three sections of `list`, the dry run of `plan`), unit-tested without a
//! cluster, and the command, which gathers the world from the API server,
//! calls them, and writes the result; [`common`] holds what the commands
//! share, [`format`] and [`names`] the formatting and naming. The plugin is
//! a client: it imports no reconciler. The binary
//! `src/bin/kubectl-access.rs` only parses the command line and turns the
//! outcome into an exit code.
//!
//! Exit codes: 0 done; 1 error (nothing changed, or the change was refused);
//! 2 done, but not in effect (a grant the operator does not put in place, a
//! plan with refusals).

pub mod cli;
mod common;
mod console;
mod format;
mod grant;
mod history;
mod list;
mod lockout;
mod names;
mod plan;
mod ratify;
mod request;
mod revoke;
mod vote;

use crate::api::Decision;
use cli::{Cli, Command};
use common::connect;

/// Exit code: done, but not in effect.
const NOT_IN_EFFECT: u8 = 2;

/// Runs a command; returns the exit code on success.
pub async fn run(cli: Cli) -> Result<u8, PluginError> {
    let g = cli.global;
    if let Command::Plan(args) = &cli.command {
        return plan::command(&g, args).await;
    }
    let (client, _) = connect(&g).await?;
    match cli.command {
        Command::Whoami => list::whoami(&client, &g).await,
        Command::Grant(a) => grant::command(&client, &g, &a).await,
        Command::Request(a) => request::command(&client, &g, &a).await,
        Command::Approve(a) => vote::command(&client, &g, &a, Decision::Approve).await,
        Command::Deny(a) => vote::command(&client, &g, &a, Decision::Deny).await,
        Command::Revoke(a) => revoke::command(&client, &g, &a).await,
        Command::Ratify(a) => ratify::command(&client, &g, &a).await,
        Command::List(a) => list::command(&client, &g, &a).await,
        Command::History(a) => history::command(&client, &g, &a).await,
        Command::Lockout(a) => lockout::command(&client, &g, &a).await,
        Command::Unlock(a) => lockout::unlock(&client, &g, &a).await,
        Command::Console(a) => console::command(client, g, a).await,
        Command::Plan(_) => unreachable!("handled above"),
    }
}

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
