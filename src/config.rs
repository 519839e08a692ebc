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
        Ok(())
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
    fn principals_match_users_and_groups() {
        let p: Principals = serde_yaml::from_str("{users: [pat], groups: [platform]}").unwrap();
        assert!(p.contains("pat", &[]));
        assert!(p.contains("sam", &["platform".to_owned()]));
        assert!(!p.contains("sam", &["other".to_owned()]));
    }
}
