//! `kubectl access revoke`: the check the plugin makes before it revokes a
//! binding, the patch it sends, and the command, which waits a little for
//! the operator to confirm.

use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::cli::{Global, Output, RevokeArgs};
use super::common::{Target, api_err, emit, emit_json, is_code, target, who};
use super::{NOT_IN_EFFECT, PluginError};
use crate::api::{BindingPhase, RoleBinding};

/// Why the plugin does not revoke a binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeRefusal {
    /// Revoked already, by whom and why.
    AlreadyRevoked {
        /// Who revoked it.
        by: String,
        /// Why.
        reason: String,
    },
    /// It expired; there is no access left to take away.
    Expired,
}

impl RevokeRefusal {
    /// A message for people.
    pub fn message(&self, binding: &str) -> String {
        match self {
            RevokeRefusal::AlreadyRevoked { by, reason } => {
                format!("binding {binding} was already revoked by {by} ({reason}); nothing to do")
            }
            RevokeRefusal::Expired => format!("binding {binding} has expired; its access is already gone"),
        }
    }
}

/// Whether a binding can still be revoked.
pub fn check_revoke(binding: &RoleBinding) -> Result<(), RevokeRefusal> {
    if let Some(r) = &binding.spec.revocation {
        return Err(RevokeRefusal::AlreadyRevoked {
            by: r.by.clone(),
            reason: r.reason.clone(),
        });
    }
    match binding.status.as_ref().and_then(|s| s.phase) {
        Some(BindingPhase::Expired) => Err(RevokeRefusal::Expired),
        _ => Ok(()),
    }
}

/// A merge patch that sets the revocation, only if the binding is still at
/// `resource_version` (the API server answers Conflict otherwise).
pub fn revoke_patch(resource_version: &str, me: &str, reason: &str) -> Value {
    json!({
        "metadata": { "resourceVersion": resource_version },
        "spec": { "revocation": { "by": me, "reason": reason } },
    })
}

/// Revokes the binding (retrying on conflict) and waits a little for the
/// operator to confirm: 0 when confirmed, [`NOT_IN_EFFECT`] otherwise.
pub(super) async fn command(client: &Client, g: &Global, a: &RevokeArgs) -> Result<u8, PluginError> {
    let me = who(client).await?;
    let t = target(client, g, &a.workspace).await?;
    let b = revoke(client, &t, &a.name, &me.user, &a.reason, a.wait.get()).await?;
    let revoked = b.status.as_ref().and_then(|s| s.phase) == Some(BindingPhase::Revoked);
    if g.output == Output::Json {
        emit_json(&json!({ "name": a.name, "namespace": t.namespace, "revokedBy": me.user, "confirmed": revoked }));
    } else if revoked {
        emit(&format!(
            "revoked binding {} in {} ({} no longer holds {}); the binding stays as a record\n",
            a.name,
            t.namespace,
            b.spec.subject,
            b.status.as_ref().and_then(|s| s.role.clone()).unwrap_or_default()
        ));
    } else {
        emit(&format!(
            "revocation of {} recorded; the operator has not confirmed it yet: kubectl get frb {} -n {}\n",
            a.name, a.name, t.namespace
        ));
    }
    Ok(if revoked { 0 } else { NOT_IN_EFFECT })
}

/// Revokes the binding `name` as `me` after [`check_revoke`] (retrying on
/// conflict), then waits up to `wait` for the operator to confirm; returns
/// the binding as last read. What the command and the console share.
pub(super) async fn revoke(
    client: &Client,
    t: &Target,
    name: &str,
    me: &str,
    reason: &str,
    wait: Duration,
) -> Result<RoleBinding, PluginError> {
    let api = Api::<RoleBinding>::namespaced(client.clone(), &t.namespace);
    let mut done = None;
    for _ in 0..5 {
        let b = match api.get(name).await {
            Ok(b) => b,
            Err(e) if is_code(&e, 404) => {
                return Err(PluginError::NotFound(format!(
                    "binding {name} not found in {}: list them with kubectl get frb -n {}",
                    t.namespace, t.namespace
                )));
            }
            Err(e) => return Err(api_err(format!("reading binding {name}"))(e)),
        };
        check_revoke(&b).map_err(|r| PluginError::Declined(r.message(name)))?;
        let patch = revoke_patch(&b.resource_version().unwrap_or_default(), me, reason);
        match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(b) => {
                done = Some(b);
                break;
            }
            Err(e) if is_code(&e, 409) => continue,
            Err(e) => return Err(api_err(format!("revoking binding {name}"))(e)),
        }
    }
    let Some(mut b) = done else {
        return Err(PluginError::Refused(format!(
            "binding {name} kept changing while revoking it: try again"
        )));
    };
    let deadline = std::time::Instant::now() + wait;
    while b.status.as_ref().and_then(|s| s.phase) != Some(BindingPhase::Revoked) && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(x) = api.get(name).await {
            b = x;
        }
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_is_refused_once_access_is_gone() {
        let mut b: RoleBinding = serde_json::from_value(json!({
            "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
            "metadata": { "name": "b1", "namespace": "ws-a" },
            "spec": { "subject": { "kind": "User", "name": "dave" }, "workspaceRole": "member",
                      "duration": "2h", "justification": "INC-1", "grantedBy": "alice" },
        }))
        .unwrap();
        assert_eq!(check_revoke(&b), Ok(()));
        b.status = Some(crate::api::RoleBindingStatus {
            phase: Some(BindingPhase::Expired),
            ..Default::default()
        });
        assert_eq!(check_revoke(&b), Err(RevokeRefusal::Expired));
        b.spec.revocation = Some(crate::api::Revocation {
            by: "bob".into(),
            reason: "stolen laptop".into(),
        });
        assert!(matches!(check_revoke(&b), Err(RevokeRefusal::AlreadyRevoked { .. })));
        assert_eq!(
            revoke_patch("3", "alice", "why"),
            json!({ "metadata": { "resourceVersion": "3" }, "spec": { "revocation": { "by": "alice", "reason": "why" } } })
        );
    }
}
