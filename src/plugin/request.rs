//! `kubectl access request`: files a RoleRequest and names who can approve it.

use chrono::Utc;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::PluginError;
use super::cli::{Global, Output, RequestArgs};
use super::common::{api_err, check_name, create_named, emit, emit_json, role_fields, split, subject, target, who};
use super::plan::World;
use crate::api::{RoleBinding, RoleRequest, RoleRequestSpec};
use crate::policy::facts::Snapshot;

/// Files the request as the caller and names the managers who can approve it.
pub(super) async fn command(client: &Client, g: &Global, a: &RequestArgs) -> Result<u8, PluginError> {
    if let Some(n) = &a.name {
        check_name(n)?;
    }
    let role = role_fields(&a.role)?;
    let me = who(client).await?;
    let t = target(client, g, &a.workspace).await?;
    let subject_name = a.subject.clone().unwrap_or_else(|| me.user.clone());
    let (workspace_role, project, project_role) = split(&role);
    let mut r = RoleRequest::new(
        "",
        RoleRequestSpec {
            subject: subject(&subject_name, a.group),
            workspace_role,
            project,
            project_role,
            duration: a.duration.clone(),
            justification: a.reason.clone(),
            requester: me.user.clone(),
            approvals: vec![],
        },
    );
    r.metadata.namespace = Some(t.namespace.clone());
    let api = Api::<RoleRequest>::namespaced(client.clone(), &t.namespace);
    create_named(&api, &mut r, a.name.as_ref(), (&subject_name, &role.label()))
        .await
        .map_err(api_err(format!("requesting {} in {}", role.label(), t.namespace)))?;
    let name = r.name_any();
    // Who can approve it: the workspace's managers, the subject excluded.
    let approvers = Api::<RoleBinding>::namespaced(client.clone(), &t.namespace)
        .list(&ListParams::default())
        .await
        .ok()
        .map(|l| {
            let world = World {
                bindings: l.items,
                ..Default::default()
            };
            world
                .managers(&t.namespace, Utc::now())
                .names()
                .filter(|m| !(r.spec.subject.kind == crate::api::SubjectKind::User && **m == r.spec.subject.name))
                .cloned()
                .collect::<Vec<_>>()
        });
    if g.output == Output::Json {
        emit_json(&json!({ "name": name, "namespace": t.namespace, "requester": me.user, "approvers": approvers }));
    } else {
        let mut out = format!(
            "rolerequest.foureyes.dev/{name} created in {}: {} asks for {} for {}\n",
            t.namespace,
            r.spec.subject,
            role.label(),
            a.duration
        );
        match approvers {
            Some(m) if !m.is_empty() => out.push_str(&format!("managers who can approve: {}\n", m.join(", "))),
            Some(_) => out.push_str("no manager but the subject can approve it: only a partner can (break-glass)\n"),
            None => {}
        }
        out.push_str(&format!("approve with: kubectl access approve {name} {}\n", t.flag()));
        emit(&out);
    }
    Ok(0)
}
