//! The operator's configuration: who the partners, auditors and trusted
//! asserters are, which ClusterRole each project role grants, and the timings.
//!
//! Read from a YAML file (`--config`); flags and environment variables
//! override the timings. Everything has a safe default except the partner
//! list, which is empty: nobody can break the glass until named here.

use crate::wire::{ADMIN, EDIT, VIEW};
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::api::GoDuration;

/// Namespaces that no project may ever claim, whatever the configuration says.
pub const ALWAYS_PROTECTED: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Users and groups, as the API server authenticates them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Principals {
    /// User names.
    #[serde(default)]
    pub users: BTreeSet<String>,
    /// Group names.
    #[serde(default)]
    pub groups: BTreeSet<String>,
}

impl Principals {
    /// Whether the user, or one of the groups, is named here.
    pub fn contains(&self, user: &str, groups: &[String]) -> bool {
        self.users.contains(user) || groups.iter().any(|g| self.groups.contains(g))
    }
}

/// The operator's configuration file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// The platform team: may create workspaces and projects, break the glass
    /// and add themselves as managers.
    #[serde(default)]
    pub partners: Principals,
    /// Read the history and events of every workspace.
    #[serde(default = "default_auditors")]
    pub auditors: Principals,
    /// Members of these groups may write other people's names into identity
    /// fields (a GitOps controller); enforced by the admission policy.
    #[serde(default = "default_trusted_asserters")]
    pub trusted_asserters: Principals,
    /// Project role → ClusterRole. A project's own `roleMap` adds to it.
    /// Defaults to `foureyes-view`, `foureyes-edit` and `foureyes-admin`
    /// for `reader`, `user` and `admin`: the built-ins without what would let
    /// a grantee keep access after the expiry (see
    /// [`crate::rbac::project_roles`]). Access through the built-in `edit` or
    /// `admin` cannot be reliably time-boxed.
    #[serde(default = "default_role_map")]
    pub role_map: BTreeMap<String, String>,
    /// The only ClusterRoles a project role may map to. Defaults to the values
    /// of `roleMap`. The operator's own RBAC holds `bind` on exactly these.
    #[serde(default)]
    pub allowed_cluster_roles: Option<BTreeSet<String>>,
    /// Namespaces no project may claim, in addition to `default` and `kube-*`.
    #[serde(default = "default_protected")]
    pub protected_namespaces: BTreeSet<String>,
    /// How long finished (expired or revoked) bindings stay as records.
    #[serde(default = "default_retention")]
    pub retention: GoDuration,
    /// How often the sweep looks for orphaned native RBAC.
    #[serde(default = "default_sweep_interval")]
    pub sweep_interval: GoDuration,
    /// Webhooks told of what needs someone's attention (see
    /// `docs/notifications.md`). None by default.
    #[serde(default)]
    pub notifications: Notifications,
}

/// Where and when the operator sends notifications: to each sink, a message
/// per request that needs approval, break-glass, grant about to expire and
/// lockout.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notifications {
    /// The webhooks; none by default.
    #[serde(default)]
    pub sinks: Vec<Sink>,
    /// How long before a grant's expiry the message `binding.expiring` is
    /// sent (a grant shorter than that gets none: its grant said when it
    /// ends).
    #[serde(default = "default_expiry_lead_time")]
    pub expiry_lead_time: GoDuration,
    /// The CloudEvents `source` of every message: set it to tell clusters
    /// apart (a URI reference, such as `https://prod-eu.example.com/foureyes`).
    #[serde(default = "default_source")]
    pub source: String,
    /// Messages waiting for each sink; when a sink falls that far behind, new
    /// messages for it are dropped (counted and logged), so that a receiver
    /// that is down never slows the operator.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
}

/// One webhook.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sink {
    /// A name for logs and metric labels (lower-case letters, digits and
    /// `-`, at most 63).
    pub name: String,
    /// The URL (`https://`, or `http://` for a receiver in the cluster).
    /// Exactly one of `url` and `urlSecretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The URL, read from a Secret (a Slack incoming webhook's URL is its
    /// credential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_secret_ref: Option<SecretKeyRef>,
    /// The body: `cloudevents` (a CloudEvents 1.0 JSON event) or `slack` (a
    /// Slack-compatible incoming-webhook message).
    #[serde(default)]
    pub format: SinkFormat,
    /// The HMAC-SHA256 key that signs each body (header
    /// `X-Foureyes-Signature`). Required for `cloudevents`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
    /// PEM certificates of the CAs to trust for this sink instead of the
    /// public ones compiled into the operator (a private CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// Only these message types (such as `request.pending`); all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// How long one attempt may take, connection included.
    #[serde(default = "default_sink_timeout")]
    pub timeout: GoDuration,
    /// Attempts per message (1 to 10); between them the wait doubles from 1 s.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

/// A key of a Secret in the operator's own namespace; the operator's RBAC
/// reaches exactly the Secrets named so.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    /// The Secret's name.
    pub name: String,
    /// The key in its `data`.
    pub key: String,
}

/// The body a sink receives.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SinkFormat {
    /// A CloudEvents 1.0 event in structured JSON mode.
    #[default]
    CloudEvents,
    /// A Slack-compatible incoming-webhook message (`text` and `blocks`).
    Slack,
}

impl SinkFormat {
    /// The name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkFormat::CloudEvents => "cloudevents",
            SinkFormat::Slack => "slack",
        }
    }
}

/// The message types, as `Sink::types` names them (the CloudEvents `type`
/// is `dev.foureyes.` followed by one of them).
pub const NOTIFICATION_TYPES: &[&str] = &[
    "request.pending",
    "request.quorumunreachable",
    "request.breakglass",
    "binding.breakglass",
    "binding.unratified",
    "binding.objected",
    "binding.expiring",
    "lockout.created",
];

impl Default for Notifications {
    fn default() -> Self {
        serde_yaml::from_str("{}").expect("defaults")
    }
}

impl Notifications {
    /// The Secrets the sinks read, by name (sorted, once each).
    pub fn secret_names(&self) -> BTreeSet<String> {
        self.sinks
            .iter()
            .flat_map(|s| [&s.secret_ref, &s.url_secret_ref])
            .flatten()
            .map(|r| r.name.clone())
            .collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(format!("notifications: {m}")));
        if self.expiry_lead_time.get().is_zero() {
            return invalid("expiryLeadTime must be positive".into());
        }
        if !(1..=100_000).contains(&self.queue_capacity) {
            return invalid("queueCapacity must be between 1 and 100000".into());
        }
        let mut names = BTreeSet::new();
        for s in &self.sinks {
            let n = &s.name;
            let label = !n.is_empty()
                && n.len() <= 63
                && n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !label {
                return invalid(format!(
                    "sink name {n:?}: lower-case letters, digits and '-', at most 63"
                ));
            }
            if !names.insert(n) {
                return invalid(format!("two sinks named {n}"));
            }
            match (&s.url, &s.url_secret_ref) {
                (Some(url), None) if !(url.starts_with("https://") || url.starts_with("http://")) => {
                    return invalid(format!("sink {n}: url must start with https:// or http://"));
                }
                (Some(_), None) | (None, Some(_)) => {}
                _ => return invalid(format!("sink {n}: exactly one of url and urlSecretRef")),
            }
            if s.format == SinkFormat::CloudEvents && s.secret_ref.is_none() {
                return invalid(format!(
                    "sink {n}: cloudevents needs secretRef, the key that signs each message"
                ));
            }
            for r in [&s.secret_ref, &s.url_secret_ref].into_iter().flatten() {
                if r.name.is_empty() || r.key.is_empty() {
                    return invalid(format!("sink {n}: a secret reference needs name and key"));
                }
            }
            if let Some(t) = s.types.iter().find(|t| !NOTIFICATION_TYPES.contains(&t.as_str())) {
                return invalid(format!(
                    "sink {n}: unknown type {t:?} (known: {})",
                    NOTIFICATION_TYPES.join(", ")
                ));
            }
            if s.timeout.get().is_zero() {
                return invalid(format!("sink {n}: timeout must be positive"));
            }
            if !(1..=10).contains(&s.max_attempts) {
                return invalid(format!("sink {n}: maxAttempts must be between 1 and 10"));
            }
            if s.ca_bundle
                .as_deref()
                .is_some_and(|b| !b.contains("-----BEGIN CERTIFICATE-----"))
            {
                return invalid(format!("sink {n}: caBundle holds no PEM certificate"));
            }
        }
        Ok(())
    }
}

fn default_expiry_lead_time() -> GoDuration {
    "15m".parse().expect("constant")
}
fn default_source() -> String {
    "/foureyes".into()
}
fn default_queue_capacity() -> usize {
    1024
}
fn default_sink_timeout() -> GoDuration {
    "5s".parse().expect("constant")
}
fn default_max_attempts() -> u32 {
    5
}

fn default_auditors() -> Principals {
    Principals {
        users: BTreeSet::new(),
        groups: BTreeSet::from(["foureyes:auditors".to_owned()]),
    }
}
fn default_trusted_asserters() -> Principals {
    Principals {
        users: BTreeSet::new(),
        groups: BTreeSet::from(["foureyes:trusted-asserters".to_owned()]),
    }
}
fn default_role_map() -> BTreeMap<String, String> {
    [("reader", VIEW), ("user", EDIT), ("admin", ADMIN)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
fn default_protected() -> BTreeSet<String> {
    BTreeSet::from(["foureyes-system".to_owned()])
}
fn default_retention() -> GoDuration {
    "168h".parse().expect("constant")
}
fn default_sweep_interval() -> GoDuration {
    "5m".parse().expect("constant")
}

impl Default for Config {
    fn default() -> Self {
        serde_yaml::from_str("{}").expect("defaults")
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid configuration.
    #[error("parsing {path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's error.
        source: serde_yaml::Error,
    },
    /// The configuration contradicts itself.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: p.clone(),
            source,
        })?;
        let config: Config = serde_yaml::from_str(&text).map_err(|source| ConfigError::Parse { path: p, source })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks that the configuration is coherent.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let allowed = self.allowed();
        for (role, cluster_role) in &self.role_map {
            if role == "manager" || role == "member" {
                return Err(ConfigError::Invalid(format!("roleMap: {role} is a workspace role")));
            }
            if !allowed.contains(cluster_role) {
                return Err(ConfigError::Invalid(format!(
                    "roleMap: {role} maps to ClusterRole {cluster_role}, which is not in allowedClusterRoles"
                )));
            }
        }
        if allowed.iter().any(|r| r.contains('*') || r.is_empty()) {
            return Err(ConfigError::Invalid(
                "allowedClusterRoles: names only, no wildcards".into(),
            ));
        }
        // The operator's own reading of token Secrets is never a project role.
        if allowed.contains(crate::wire::TOKEN_FINDER_ROLE) {
            return Err(ConfigError::Invalid(format!(
                "allowedClusterRoles: {} is the operator's own and cannot be granted",
                crate::wire::TOKEN_FINDER_ROLE
            )));
        }
        if self.sweep_interval.get().is_zero() {
            return Err(ConfigError::Invalid("sweepInterval must be positive".into()));
        }
        // The admission stamps leave such groups out (they could forge a
        // stamp), so a partner or asserter group named so could never match.
        for (what, groups) in [
            ("partners", &self.partners.groups),
            ("trustedAsserters", &self.trusted_asserters.groups),
        ] {
            if let Some(g) = groups.iter().find(|g| crate::wire::breaks_stamps(g)) {
                return Err(ConfigError::Invalid(format!(
                    "{what}.groups: {g:?} contains a comma or a control character, which the admission stamps cannot carry"
                )));
            }
        }
        self.notifications.validate()
    }

    /// The ClusterRoles a project role may map to.
    pub fn allowed(&self) -> BTreeSet<String> {
        self.allowed_cluster_roles
            .clone()
            .unwrap_or_else(|| self.role_map.values().cloned().collect())
    }

    /// Whether no project may claim this namespace.
    pub fn is_protected_namespace(&self, ns: &str) -> bool {
        ALWAYS_PROTECTED.contains(&ns) || ns.starts_with("kube-") || self.protected_namespaces.contains(ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_map_the_three_project_roles() {
        let c = Config::default();
        assert_eq!(c.role_map["reader"], "foureyes-view");
        assert_eq!(c.role_map["user"], "foureyes-edit");
        assert_eq!(c.role_map["admin"], "foureyes-admin");
        assert_eq!(
            c.allowed(),
            BTreeSet::from([VIEW, EDIT, ADMIN].map(str::to_owned)),
            "never the built-ins edit and admin"
        );
        assert!(c.partners.users.is_empty() && c.partners.groups.is_empty());
        assert!(c.validate().is_ok());
        assert!(c.is_protected_namespace("kube-system") && c.is_protected_namespace("kube-anything"));
        assert!(c.is_protected_namespace("foureyes-system") && !c.is_protected_namespace("payments"));
    }

    #[test]
    fn refuses_maps_outside_the_allow_list_and_unknown_keys() {
        let c: Config = serde_yaml::from_str("roleMap: {root: cluster-admin}\nallowedClusterRoles: [view]").unwrap();
        assert!(matches!(c.validate(), Err(ConfigError::Invalid(m)) if m.contains("cluster-admin")));
        let c: Config = serde_yaml::from_str("roleMap: {}\nallowedClusterRoles: ['*']").unwrap();
        assert!(c.validate().is_err());
        let c: Config = serde_yaml::from_str(
            "roleMap: {tokens: foureyes-token-finder}\nallowedClusterRoles: [foureyes-token-finder]",
        )
        .unwrap();
        assert!(matches!(c.validate(), Err(ConfigError::Invalid(m)) if m.contains("the operator's own")));
        assert!(
            serde_yaml::from_str::<Config>("partner: {users: [x]}").is_err(),
            "typos are errors"
        );
    }

    #[test]
    fn notifications_are_off_by_default_and_checked() {
        let c = Config::default();
        assert!(c.notifications.sinks.is_empty());
        assert_eq!(c.notifications.expiry_lead_time.as_str(), "15m");
        let ok = r#"
notifications:
  expiryLeadTime: 30m
  sinks:
  - { name: oncall, url: "https://hooks.example.com/x", secretRef: { name: hooks, key: hmac } }
  - { name: chat, format: slack, urlSecretRef: { name: slack, key: url }, types: [request.pending] }
"#;
        let c: Config = serde_yaml::from_str(ok).unwrap();
        c.validate().unwrap();
        assert_eq!(c.notifications.sinks[0].format, SinkFormat::CloudEvents);
        assert_eq!(c.notifications.sinks[0].max_attempts, 5);
        assert_eq!(
            c.notifications.secret_names(),
            BTreeSet::from(["hooks".to_owned(), "slack".to_owned()])
        );
        for (bad, says) in [
            (
                "sinks: [{ name: x, url: 'https://a', format: cloudevents }]",
                "secretRef",
            ),
            ("sinks: [{ name: X, format: slack, url: 'https://a' }]", "lower-case"),
            ("sinks: [{ name: x, format: slack }]", "exactly one"),
            ("sinks: [{ name: x, format: slack, url: 'ftp://a' }]", "https://"),
            (
                "sinks: [{ name: x, format: slack, url: 'https://a' }, { name: x, format: slack, url: 'https://b' }]",
                "two sinks",
            ),
            (
                "sinks: [{ name: x, format: slack, url: 'https://a', types: [everything] }]",
                "unknown type",
            ),
            (
                "sinks: [{ name: x, format: slack, url: 'https://a', maxAttempts: 0 }]",
                "maxAttempts",
            ),
            (
                "sinks: [{ name: x, format: slack, url: 'https://a', caBundle: nope }]",
                "PEM",
            ),
            ("expiryLeadTime: 0s", "positive"),
        ] {
            let c: Config =
                serde_yaml::from_str(&format!("notifications:\n  {bad}")).unwrap_or_else(|e| panic!("{bad}: {e}"));
            let err = c.validate().expect_err(bad).to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn principals_match_users_and_groups() {
        let p: Principals = serde_yaml::from_str("{users: [pat], groups: [platform]}").unwrap();
        assert!(p.contains("pat", &[]));
        assert!(p.contains("sam", &["platform".to_owned()]));
        assert!(!p.contains("sam", &["other".to_owned()]));
    }
}
