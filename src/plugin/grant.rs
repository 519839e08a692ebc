//! `kubectl access grant`: creates a foureyes RoleBinding and waits a little
//! for the operator's verdict.

use std::time::Duration;

use chrono::Utc;
use kube::api::Api;
use kube::{Client, ResourceExt};
use serde_json::json;

use super::cli::{Global, GrantArgs, Output};
use super::common::{
    api_err, check_name, create_named, emit, emit_json, role_cli, role_fields, split, subject, target, who,
};
use super::format::time_left;
use super::{NOT_IN_EFFECT, PluginError};
use crate::api::conditions::{READY, find_condition};
use crate::api::{BindingPhase, RoleBinding, RoleBindingSpec};

/// Creates the binding and reports the operator's verdict: 0 when it is
/// active, [`NOT_IN_EFFECT`] otherwise.
pub(super) async fn command(client: &Client, g: &Global, a: &GrantArgs) -> Result<u8, PluginError> {
    if let Some(n) = &a.name {
        check_name(n)?;
    }
    let role = role_fields(&a.role)?;
    let me = who(client).await?;
    let t = target(client, g, &a.workspace).await?;
    let (workspace_role, project, project_role) = split(&role);
    let mut b = RoleBinding::new(
        "",
        RoleBindingSpec {
            subject: subject(&a.subject, a.group),
            workspace_role,
            project,
            project_role,
            expires_at: a.until,
            duration: a.duration.clone(),
            justification: a.reason.clone(),
            granted_by: me.user.clone(),
            origin_request: None,
            revocation: None,
            ratifications: vec![],
        },
    );
    b.metadata.namespace = Some(t.namespace.clone());
    let api = Api::<RoleBinding>::namespaced(client.clone(), &t.namespace);
    create_named(&api, &mut b, a.name.as_ref(), (&a.subject, &role.label()))
        .await
        .map_err(api_err(format!("granting {} in {}", role.label(), t.namespace)))?;
    let name = b.name_any();

    // The operator decides; wait a little for its verdict.
    let deadline = std::time::Instant::now() + a.wait.get();
    let mut current = b.clone();
    loop {
        let settled = current.status.as_ref().is_some_and(|s| {
            s.phase.is_some_and(|p| p != BindingPhase::Pending)
                || find_condition(&s.conditions, READY).is_some_and(|c| !transient(&c.reason))
        });
        if settled || std::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Ok(b) = api.get(&name).await {
            current = b;
        }
    }
    let status = current.status.clone().unwrap_or_default();
    let ready = find_condition(&status.conditions, READY).cloned();
    let phase = status.phase;
    let now = Utc::now();
    if g.output == Output::Json {
        emit_json(&json!({
            "name": name, "namespace": t.namespace, "phase": phase,
            "reason": ready.as_ref().map(|c| c.reason.clone()),
            "message": ready.as_ref().map(|c| c.message.clone()),
            "expiresAt": status.expires_at,
        }));
    } else {
        let mut out = format!(
            "rolebinding.foureyes.dev/{name} created in {} by {}\n",
            t.namespace, me.user
        );
        match (phase, &ready) {
            (Some(BindingPhase::Active), _) => out.push_str(&format!(
                "active: {} holds {} in {}{}\n",
                current.spec.subject,
                role.label(),
                status.namespaces.join(", "),
                status
                    .expires_at
                    .map(|e| format!(" until {} ({} left)", e.to_rfc3339(), time_left(e, now)))
                    .unwrap_or_default()
            )),
            (_, Some(c)) if c.reason == "NotAuthorized" => {
                out.push_str(&format!("pending, not in effect: {}\n", c.message));
                out.push_str(&format!(
                    "  four eyes: ask for it instead (your request counts as your approval), then delete this binding:\n    \
                     kubectl access request {}{} {} {} --for {} --reason {:?}\n    kubectl delete frb {name} -n {}\n",
                    a.subject,
                    if a.group { " --group" } else { "" },
                    t.flag(),
                    role_cli(&role),
                    a.duration.as_ref().map(|d| d.to_string()).unwrap_or_else(|| "4h".into()),
                    a.reason,
                    t.namespace
                ));
            }
            (_, Some(c)) if !transient(&c.reason) => {
                out.push_str(&format!("pending, not in effect: {}: {}\n", c.reason, c.message));
            }
            _ => out.push_str(&format!(
                "waiting for the operator: check with kubectl get frb {name} -n {}\n",
                t.namespace
            )),
        }
        emit(&out);
    }
    Ok(if phase == Some(BindingPhase::Active) {
        0
    } else {
        NOT_IN_EFFECT
    })
}

fn transient(reason: &str) -> bool {
    matches!(reason, "Pending" | "WorkspaceNotReady" | "ProjectHasNoNamespaces")
}
