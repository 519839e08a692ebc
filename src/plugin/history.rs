//! `kubectl access history`: a workspace's or project's history chain, and
//! its verification.
//!
//! MERGE BOUNDARY. The history chains (ConfigMaps
//! `foureyes-history-<chain>-<NNNNNN>` in the workspace namespace, whose
//! entries carry seq, time, actor, action, object, subject, role, details,
//! the previous entry's hash and their own) are written by
//! `crate::audit::history`, which is not part of this build yet. The plugin
//! reads them only through [`HistorySource`]; [`source`] returns
//! [`NotInThisBuild`], which fails with a clear error instead of printing
//! anything made up. To wire it after the merge: implement [`HistorySource`]
//! for a type that calls `crate::audit::history::read_chain` and `verify`
//! (mapping their entry type into [`Entry`], or replacing [`Entry`] with it),
//! return it from [`source`], and turn on the ignored integration test
//! `history_lists_and_verifies_a_chain` in `tests/plugin.rs`. The command
//! line, the table and JSON output and the exit codes below stay as they are.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::PluginError;
use super::format::Table;

/// Which chain: the workspace's own, or one project's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chain {
    /// The workspace's chain.
    Workspace(String),
    /// A project's chain.
    Project {
        /// The workspace.
        workspace: String,
        /// The project.
        project: String,
    },
}

impl std::fmt::Display for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Chain::Workspace(w) => write!(f, "workspace {w}"),
            Chain::Project { workspace, project } => write!(f, "project {project} of workspace {workspace}"),
        }
    }
}

/// One entry of a chain, as the plugin shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When it was recorded.
    pub time: DateTime<Utc>,
    /// Who did it (as admission verified it), or `unknown` for a plain deletion.
    pub actor: String,
    /// What was done (`Granted`, `Revoked`, `Approved`, ...).
    pub action: String,
    /// The object acted on (`RoleBinding/dave-admin`).
    pub object: String,
    /// The subject concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The role concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Further details.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
    /// The previous entry's hash (hex).
    pub prev: String,
    /// This entry's hash (hex).
    pub hash: String,
}

/// The result of verifying a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// Whether every entry links to the previous one and the head matches.
    pub intact: bool,
    /// Entries checked.
    pub entries: u64,
    /// The newest entry's sequence number and hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<(u64, String)>,
    /// What is wrong, when it is not intact.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// Where the plugin reads history from.
pub trait HistorySource {
    /// Every entry of a chain, oldest first.
    fn read_chain(
        &self,
        client: &kube::Client,
        namespace: &str,
        chain: &Chain,
    ) -> impl Future<Output = Result<Vec<Entry>, PluginError>>;

    /// Verifies a chain: the hashes link up and the head mirrored in the
    /// Workspace or Project status matches.
    fn verify(
        &self,
        client: &kube::Client,
        namespace: &str,
        chain: &Chain,
    ) -> impl Future<Output = Result<Verification, PluginError>>;
}

/// The history source of a build without the history module: every call
/// fails with [`PluginError::NotAvailable`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NotInThisBuild;

fn not_available(chain: &Chain) -> PluginError {
    PluginError::NotAvailable(format!(
        "history is not available in this build of kubectl-access: it cannot read the history of {chain} yet; \
         until then, kubectl get events -n <workspace namespace> shows the recent decisions"
    ))
}

impl HistorySource for NotInThisBuild {
    async fn read_chain(&self, _: &kube::Client, _: &str, chain: &Chain) -> Result<Vec<Entry>, PluginError> {
        Err(not_available(chain))
    }

    async fn verify(&self, _: &kube::Client, _: &str, chain: &Chain) -> Result<Verification, PluginError> {
        Err(not_available(chain))
    }
}

/// The history source of this build.
pub fn source() -> NotInThisBuild {
    NotInThisBuild
}

/// Entries as a table for people.
pub fn render_entries(entries: &[Entry]) -> String {
    let mut t = Table::new(&["seq", "time", "actor", "action", "object", "subject", "role", "details"]);
    for e in entries {
        t.row(vec![
            e.seq.to_string(),
            e.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            e.actor.clone(),
            e.action.clone(),
            e.object.clone(),
            e.subject.clone().unwrap_or_default(),
            e.role.clone().unwrap_or_default(),
            e.details.clone(),
        ]);
    }
    t.render()
}

/// A verification for people.
pub fn render_verification(chain: &Chain, v: &Verification) -> String {
    let head = v
        .head
        .as_ref()
        .map(|(seq, hash)| format!("head #{seq} {}", hash.get(..16).unwrap_or(hash)))
        .unwrap_or_else(|| "empty".into());
    let mut out = if v.intact {
        format!("history of {chain}: intact, {} entries, {head}\n", v.entries)
    } else {
        format!("history of {chain}: BROKEN after checking {} entries\n", v.entries)
    };
    for p in &v.problems {
        out.push_str(&format!("  {p}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn entry(seq: u64) -> Entry {
        Entry {
            seq,
            time: Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, seq as u32).unwrap(),
            actor: "alice".into(),
            action: "Granted".into(),
            object: "RoleBinding/dave-app-user".into(),
            subject: Some("user dave".into()),
            role: Some("app/user".into()),
            details: "expires 2026-01-01T16:00:00Z".into(),
            prev: "00".into(),
            hash: "ab".repeat(32),
        }
    }

    #[test]
    fn entries_render_as_a_table_and_as_json() {
        let text = render_entries(&[entry(1), entry(2)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].starts_with("SEQ   TIME                   ACTOR   ACTION"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("2     2026-01-01T12:00:02Z   alice   Granted"),
            "{text}"
        );
        let json = serde_json::to_value(entry(1)).unwrap();
        assert_eq!(json["seq"], 1);
        assert_eq!(json["prev"], "00");
    }

    #[test]
    fn verifications_say_intact_or_broken() {
        let chain = Chain::Project {
            workspace: "a".into(),
            project: "app".into(),
        };
        let ok = Verification {
            intact: true,
            entries: 2,
            head: Some((2, "ab".repeat(32))),
            problems: vec![],
        };
        assert_eq!(
            render_verification(&chain, &ok),
            "history of project app of workspace a: intact, 2 entries, head #2 abababababababab\n"
        );
        let broken = Verification {
            intact: false,
            entries: 1,
            head: None,
            problems: vec!["entry 2: prev does not match entry 1".into()],
        };
        assert!(render_verification(&chain, &broken).contains("BROKEN"));
    }

    #[tokio::test]
    async fn this_build_says_history_is_not_available() {
        // No cluster is contacted: the client is never used.
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let err = source()
            .read_chain(&client, "ws-a", &Chain::Workspace("a".into()))
            .await
            .unwrap_err();
        assert!(matches!(err, PluginError::NotAvailable(_)));
        assert!(err.to_string().contains("not available in this build"), "{err}");
    }
}
