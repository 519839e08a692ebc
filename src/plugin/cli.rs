//! The command line of `kubectl access` (clap derive).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::api::GoDuration;

/// Just-in-time and emergency access with foureyes: grant, request, approve,
/// revoke, list, and check a GitOps change before it is merged.
#[derive(Parser, Debug)]
#[command(name = "kubectl-access", bin_name = "kubectl access", version)]
pub struct Cli {
    /// Connection and output options.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Args, Debug, Clone, Default)]
pub struct Global {
    /// The kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: the current context).
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// A workspace's control namespace, for commands that act in one
    /// workspace, instead of --workspace (no need to read the Workspace).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Output format: tables for people, JSON for scripts.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// Output formats.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// Aligned tables.
    #[default]
    Table,
    /// JSON.
    Json,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Who the API server says you are, and your roles in the workspaces you can read.
    Whoami,
    /// Grant a role directly (a foureyes RoleBinding). Takes effect at once
    /// where one approval suffices; otherwise file a request.
    Grant(GrantArgs),
    /// Ask for a role (a RoleRequest); managers approve it.
    Request(RequestArgs),
    /// Approve a pending request.
    Approve(VoteArgs),
    /// Deny a pending request; a manager's denial ends it.
    Deny(VoteArgs),
    /// Revoke a binding at once.
    Revoke(RevokeArgs),
    /// Ratify a partner's break-glass grant after the fact (managers), or
    /// object to it with --object, which revokes it at once.
    Ratify(RatifyArgs),
    /// Requests you can approve, your pending requests, and active grants.
    List(ListArgs),
    /// The history: a workspace's chain, a project's (--project) or all
    /// (--all); `history verify WORKSPACE` checks that a chain is intact.
    History(HistoryArgs),
    /// Dry-run a manifest file (a GitOps change): who may approve, the votes
    /// that count, quorum, caps, and whether the operator would refuse it.
    Plan(PlanArgs),
    /// Lock a user (or --group) out of everything foureyes granted, in every
    /// workspace, at once (partners); `lockout list` lists the lockouts.
    Lockout(LockoutArgs),
    /// Lift a lockout (partners); it restores nothing.
    Unlock(UnlockArgs),
    /// A web console on this machine (127.0.0.1): approve and deny requests,
    /// ask for a role, revoke access and read the history in a browser,
    /// acting with your own kubeconfig credentials. Prints a one-time link.
    Console(ConsoleArgs),
}

/// `console`.
#[derive(Args, Debug, Clone)]
pub struct ConsoleArgs {
    /// Only this workspace (default: every workspace you can read).
    #[command(flatten)]
    pub workspace: WorkspaceArg,
    /// The port on 127.0.0.1 (default: a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Try to open the link in the system's browser.
    #[arg(long)]
    pub open: bool,
}

/// `lockout`.
#[derive(Args, Debug, Clone)]
pub struct LockoutArgs {
    /// The user (or with --group, the group) to lock out; `list` (without
    /// --reason) lists the lockouts instead.
    pub subject: String,
    /// The subject is a group.
    #[arg(long)]
    pub group: bool,
    /// Why (an incident or ticket reference); named in every revocation and refusal.
    #[arg(long, value_parser = parse_text)]
    pub reason: Option<String>,
    /// How long the lockout lasts (a Go duration such as 24h); without it, until lifted.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_lockout_duration)]
    pub r#for: Option<GoDuration>,
    /// The Lockout's name (default: generated from the subject).
    #[arg(long)]
    pub name: Option<String>,
    /// How long to wait for every revocation (0s: do not wait).
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub wait: GoDuration,
}

/// `unlock`.
#[derive(Args, Debug, Clone)]
pub struct UnlockArgs {
    /// The user (or with --group, the group) whose lockouts to lift.
    pub subject: String,
    /// The subject is a group.
    #[arg(long)]
    pub group: bool,
    /// Why (recorded in the history of every workspace the lockout touched).
    #[arg(long, value_parser = parse_text)]
    pub reason: String,
    /// How long to wait for the operator to let the lockout go.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub wait: GoDuration,
}

fn parse_lockout_duration(s: &str) -> Result<GoDuration, String> {
    let d: GoDuration = s.parse()?;
    if d.get().is_zero() || d.get() > std::time::Duration::from_secs(8760 * 3600) {
        return Err("must be positive and at most 8760h (a year)".into());
    }
    Ok(d)
}

/// The workspace to act in.
#[derive(Args, Debug, Clone)]
pub struct WorkspaceArg {
    /// The workspace (or give its control namespace with -n).
    #[arg(short = 'w', long)]
    pub workspace: Option<String>,
}

/// A workspace role.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceRoleArg {
    /// Creates and revokes bindings and requests, approves or denies requests.
    Manager,
    /// Reads the workspace's objects and history.
    Member,
}

/// Which role: a workspace role, or a project role in a project.
#[derive(Args, Debug, Clone)]
pub struct RoleArgs {
    /// A workspace role.
    #[arg(long, value_enum, conflicts_with_all = ["project", "project_role"], required_unless_present = "project")]
    pub role: Option<WorkspaceRoleArg>,
    /// The project, for a project role.
    #[arg(long, requires = "project_role")]
    pub project: Option<String>,
    /// The project role (reader, user, admin, or one the configuration or the project defines).
    #[arg(long, requires = "project")]
    pub project_role: Option<String>,
}

fn parse_duration(s: &str) -> Result<GoDuration, String> {
    let d: GoDuration = s.parse()?;
    if d.get().is_zero() {
        return Err("must be positive".into());
    }
    if d.get() > std::time::Duration::from_secs(2160 * 3600) {
        return Err("at most 2160h (90 days); the workspace's maxDuration caps further".into());
    }
    Ok(d)
}

fn parse_text(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("must not be blank".into());
    }
    if s.len() > crate::api::common::MAX_TEXT {
        return Err(format!("at most {} bytes", crate::api::common::MAX_TEXT));
    }
    Ok(s.to_owned())
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("not an RFC 3339 time (like 2026-01-31T18:00:00Z): {e}"))
}

/// `grant`.
#[derive(Args, Debug, Clone)]
pub struct GrantArgs {
    /// Who gets the role: a user name, or a group name with --group.
    pub subject: String,
    /// The subject is a group.
    #[arg(long)]
    pub group: bool,
    /// The workspace.
    #[command(flatten)]
    pub workspace: WorkspaceArg,
    /// The role.
    #[command(flatten)]
    pub role: RoleArgs,
    /// How long (a Go duration: 30m, 4h, 1h30m).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration, conflicts_with = "until", required_unless_present = "until")]
    pub duration: Option<GoDuration>,
    /// Until when (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<DateTime<Utc>>,
    /// Why (an incident or ticket reference).
    #[arg(long, value_parser = parse_text)]
    pub reason: String,
    /// The binding's name (default: generated from subject and role).
    #[arg(long)]
    pub name: Option<String>,
    /// How long to wait for the operator's verdict (0s: do not wait).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub wait: GoDuration,
}

/// `request`.
#[derive(Args, Debug, Clone)]
pub struct RequestArgs {
    /// Who would get the role (default: you).
    pub subject: Option<String>,
    /// The subject is a group.
    #[arg(long, requires = "subject")]
    pub group: bool,
    /// The workspace.
    #[command(flatten)]
    pub workspace: WorkspaceArg,
    /// The role.
    #[command(flatten)]
    pub role: RoleArgs,
    /// How long, once granted (a Go duration: 30m, 4h).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: GoDuration,
    /// Why (an incident or ticket reference).
    #[arg(long, value_parser = parse_text)]
    pub reason: String,
    /// The request's name (default: generated from subject and role).
    #[arg(long)]
    pub name: Option<String>,
}

/// `approve` and `deny`.
#[derive(Args, Debug, Clone)]
pub struct VoteArgs {
    /// The request's name.
    pub name: String,
    /// The workspace.
    #[command(flatten)]
    pub workspace: WorkspaceArg,
    /// A comment recorded with the vote.
    #[arg(long)]
    pub comment: Option<String>,
}

/// `ratify`.
#[derive(Args, Debug, Clone)]
pub struct RatifyArgs {
    /// The foureyes RoleBinding's name (a break-glass grant; one made from a
    /// request has the request's name).
    pub name: String,
    /// The workspace.
    #[command(flatten)]
    pub workspace: WorkspaceArg,
    /// Object to the break-glass instead: the grant is revoked at once.
    #[arg(long)]
    pub object: bool,
    /// A comment recorded with the verdict (required with --object).
    #[arg(long, value_parser = parse_text)]
    pub comment: Option<String>,
    /// How long to wait for the operator to read the verdict (0s: do not wait).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub wait: GoDuration,
}

/// `revoke`.
#[derive(Args, Debug, Clone)]
pub struct RevokeArgs {
    /// The foureyes RoleBinding's name.
    pub name: String,
    /// The workspace.
    #[command(flatten)]
    pub workspace: WorkspaceArg,
    /// Why (recorded in the binding and its history).
    #[arg(long, value_parser = parse_text)]
    pub reason: String,
    /// How long to wait for the access to be removed (0s: do not wait).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub wait: GoDuration,
}

/// `list`.
#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    /// Only this workspace.
    #[command(flatten)]
    pub workspace: WorkspaceArg,
    /// Every workspace you can read (the default without -w or -n).
    #[arg(short = 'A', long, conflicts_with = "workspace")]
    pub all_workspaces: bool,
}

/// `history`.
#[derive(Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HistoryArgs {
    /// `verify`.
    #[command(subcommand)]
    pub verify: Option<HistoryCommand>,
    /// The chain to show.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// `history verify`.
#[derive(Subcommand, Debug, Clone)]
pub enum HistoryCommand {
    /// Check that a chain is complete and untampered: every link and hash,
    /// and the head the Workspace status records. Exits 1 when it is not.
    Verify(ChainArgs),
}

/// A history chain: the workspace's own (the default), a project's, or all.
#[derive(Args, Debug, Clone)]
pub struct ChainArgs {
    /// The workspace (or give its control namespace with -n).
    pub workspace: Option<String>,
    /// A project's chain instead of the workspace's.
    #[arg(long, conflicts_with = "all")]
    pub project: Option<String>,
    /// Every chain of the workspace: its own, then each project's.
    #[arg(long)]
    pub all: bool,
}

/// `plan`.
#[derive(Args, Debug, Clone)]
pub struct PlanArgs {
    /// The manifest file (multi-document YAML; - for standard input).
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
    /// The operator's configuration file (partners, role map, allow-list); default: the built-in defaults.
    #[arg(long, value_name = "FILE")]
    pub operator_config: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kubectl-access").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn grant_takes_exactly_one_role_and_one_expiry() {
        let ok = parse(&[
            "grant",
            "dave",
            "-w",
            "pay",
            "--project",
            "app",
            "--project-role",
            "user",
            "--for",
            "4h",
            "--reason",
            "INC-1",
        ])
        .unwrap();
        let Command::Grant(g) = ok.command else { panic!() };
        assert_eq!(g.duration.unwrap().as_str(), "4h");
        assert_eq!(g.role.project_role.as_deref(), Some("user"));
        assert!(
            parse(&[
                "grant", "dave", "-w", "p", "--role", "member", "--for", "4h", "--reason", "x"
            ])
            .is_ok()
        );
        let until = parse(&[
            "grant",
            "dave",
            "-w",
            "p",
            "--role",
            "member",
            "--until",
            "2026-01-31T18:00:00Z",
            "--reason",
            "x",
        ])
        .unwrap();
        let Command::Grant(g) = until.command else { panic!() };
        assert!(g.until.is_some() && g.duration.is_none());
        for bad in [
            &["grant", "dave", "-w", "p", "--for", "4h", "--reason", "x"][..],
            &[
                "grant",
                "dave",
                "-w",
                "p",
                "--role",
                "member",
                "--project",
                "a",
                "--project-role",
                "u",
                "--for",
                "4h",
                "--reason",
                "x",
            ],
            &[
                "grant",
                "dave",
                "-w",
                "p",
                "--project",
                "a",
                "--for",
                "4h",
                "--reason",
                "x",
            ],
            &["grant", "dave", "-w", "p", "--role", "member", "--reason", "x"],
            &[
                "grant",
                "dave",
                "-w",
                "p",
                "--role",
                "member",
                "--for",
                "4h",
                "--until",
                "2026-01-31T18:00:00Z",
                "--reason",
                "x",
            ],
            &[
                "grant", "dave", "-w", "p", "--role", "member", "--for", "4 hours", "--reason", "x",
            ],
            &[
                "grant", "dave", "-w", "p", "--role", "member", "--for", "0s", "--reason", "x",
            ],
            &[
                "grant", "dave", "-w", "p", "--role", "member", "--for", "3000h", "--reason", "x",
            ],
            &[
                "grant", "dave", "-w", "p", "--role", "member", "--for", "4h", "--reason", "  ",
            ],
            &[
                "grant", "dave", "-w", "p", "--role", "owner", "--for", "4h", "--reason", "x",
            ],
            &[
                "grant", "dave", "-w", "p", "--role", "member", "--until", "tomorrow", "--reason", "x",
            ],
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn request_subject_defaults_to_the_caller() {
        let r = parse(&["request", "-w", "p", "--role", "member", "--for", "1h", "--reason", "x"]).unwrap();
        let Command::Request(r) = r.command else { panic!() };
        assert_eq!(r.subject, None);
        assert!(
            parse(&[
                "request", "--group", "-w", "p", "--role", "member", "--for", "1h", "--reason", "x"
            ])
            .is_err()
        );
    }

    #[test]
    fn history_shows_or_verifies() {
        let h = parse(&["history", "pay", "--project", "app", "-o", "json"]).unwrap();
        assert_eq!(h.global.output, Output::Json);
        let Command::History(h) = h.command else { panic!() };
        assert!(h.verify.is_none());
        assert_eq!(h.chain.workspace.as_deref(), Some("pay"));
        let v = parse(&["history", "verify", "pay"]).unwrap();
        let Command::History(v) = v.command else { panic!() };
        assert!(matches!(v.verify, Some(HistoryCommand::Verify(ChainArgs { workspace: Some(w), .. })) if w == "pay"));
        let v = parse(&["history", "verify", "pay", "--project", "app"]).unwrap();
        let Command::History(v) = v.command else { panic!() };
        assert!(
            matches!(v.verify, Some(HistoryCommand::Verify(ChainArgs { project: Some(p), all: false, .. })) if p == "app")
        );
        let a = parse(&["history", "pay", "--all"]).unwrap();
        let Command::History(a) = a.command else { panic!() };
        assert!(a.chain.all);
        assert!(parse(&["history", "pay", "--all", "--project", "app"]).is_err());
        assert!(parse(&["-n", "ws-pay", "history", "verify", "--all"]).is_ok());
    }

    #[test]
    fn global_flags_go_anywhere() {
        let c = parse(&["list", "--context", "kind", "-A"]).unwrap();
        assert_eq!(c.global.context.as_deref(), Some("kind"));
        let c = parse(&["-n", "ws-pay", "approve", "r1", "--comment", "ok"]).unwrap();
        assert_eq!(c.global.namespace.as_deref(), Some("ws-pay"));
        assert!(parse(&["list", "-A", "-w", "pay"]).is_err());
        assert!(parse(&["plan"]).is_err());
    }

    #[test]
    fn the_console_takes_a_port_and_opens_nothing_by_default() {
        let c = parse(&["console"]).unwrap();
        let Command::Console(c) = c.command else { panic!() };
        assert_eq!((c.port, c.open), (0, false));
        let c = parse(&["console", "--port", "8123", "--open", "-w", "pay"]).unwrap();
        let Command::Console(c) = c.command else { panic!() };
        assert_eq!(
            (c.port, c.open, c.workspace.workspace.as_deref()),
            (8123, true, Some("pay"))
        );
        assert!(parse(&["console", "--port", "70000"]).is_err());
    }
}
