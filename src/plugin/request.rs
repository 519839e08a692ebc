//! `kubectl access request`: files a RoleRequest and names who can approve it.

use chrono::Utc;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::PluginError;
use super::cli::{Global, Output, RequestArgs};
use super::common::{
    Target, api_err, check_name, create_named, emit, emit_json, role_fields, split, subject, target, who,
};
use super::plan::World;
use crate::api::{GoDuration, RoleBinding, RoleRequest, RoleRequestSpec, Subject};
use crate::policy::Role;
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
    let filed = file(
        client,
        &t,
        &me.user,
        subject(&subject_name, a.group),
        &role,
        &a.duration,
        &a.reason,
        a.name.as_ref(),
    )
    .await?;
    let name = filed.request.name_any();
    if g.output == Output::Json {
        emit_json(
            &json!({ "name": name, "namespace": t.namespace, "requester": me.user, "approvers": filed.approvers }),
        );
    } else {
        let mut out = format!(
            "rolerequest.foureyes.dev/{name} created in {}: {} asks for {} for {}\n",
            t.namespace,
            filed.request.spec.subject,
            role.label(),
            a.duration
        );
        if let Some(line) = approvers_line(filed.approvers.as_deref()) {
            out.push_str(&format!("{line}\n"));
        }
        out.push_str(&format!("approve with: kubectl access approve {name} {}\n", t.flag()));
        emit(&out);
    }
    Ok(0)
}

/// A filed request and who can approve it.
pub(super) struct Filed {
    /// The request as the API server stored it.
    pub(super) request: RoleRequest,
    /// The workspace's managers but the subject; `None` when the caller may
    /// not list the workspace's bindings.
    pub(super) approvers: Option<Vec<String>>,
}

/// Who can approve a request, for people.
pub(super) fn approvers_line(approvers: Option<&[String]>) -> Option<String> {
    match approvers {
        Some(m) if !m.is_empty() => Some(format!("managers who can approve: {}", m.join(", "))),
        Some(_) => Some("no manager but the subject can approve it: only a partner can (break-glass)".into()),
        None => None,
    }
}

/// Files a RoleRequest as `requester` (the caller) and names the managers
/// who can approve it. What the command and the console share.
#[allow(clippy::too_many_arguments)]
pub(super) async fn file(
    client: &Client,
    t: &Target,
    requester: &str,
    subject: Subject,
    role: &Role,
    duration: &GoDuration,
    reason: &str,
    name: Option<&String>,
) -> Result<Filed, PluginError> {
    let (workspace_role, project, project_role) = split(role);
    let base = subject.name.clone();
    let mut r = RoleRequest::new(
        "",
        RoleRequestSpec {
            subject,
            workspace_role,
            project,
            project_role,
            duration: duration.clone(),
            justification: reason.to_owned(),
            requester: requester.to_owned(),
            approvals: vec![],
        },
    );
    r.metadata.namespace = Some(t.namespace.clone());
    let api = Api::<RoleRequest>::namespaced(client.clone(), &t.namespace);
    create_named(&api, &mut r, name, (&base, &role.label()))
        .await
        .map_err(api_err(format!("requesting {} in {}", role.label(), t.namespace)))?;
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
    Ok(Filed { request: r, approvers })
}
