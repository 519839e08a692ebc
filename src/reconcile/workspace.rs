//! The `Workspace` reconciler: its control namespace, the manager, member and
//! auditor Roles there, and a status with counts. Deleting a workspace revokes
//! everything it granted and leaves the namespace (and its history) in place.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Utc;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{Role as NativeRole, RoleBinding as NativeBinding};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::warn;

use super::{Context, Error, FINALIZER, count_finalizer_write, describe, is_active, kube_err};
use crate::api::conditions::{Condition, ConditionStatus, READY, set_condition};
use crate::api::workspace::ChainHead;
use crate::api::{SubjectKind, Workspace, WorkspaceRole, WorkspaceStatus};
use crate::audit::history::Chain;
use crate::audit::{events, transitions};
use crate::policy::namespaces::{CONTROL_NAMESPACE_LABEL, PROJECT_LABEL, WORKSPACE_LABEL};
use crate::rbac::{self, MANAGED_BY, MANAGED_BY_LABEL, label_value};

/// Reconciles one workspace.
pub async fn reconcile(ws: Arc<Workspace>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.wait_ready().await;
    ctx.metrics.reconciled("Workspace");
    let api: Api<Workspace> = Api::all(ctx.client.clone());
    let key = describe(ws.as_ref());
    count_finalizer_write(&ctx, "Workspace", ws.as_ref());
    let action = finalizer(&api, FINALIZER, ws, |event| async {
        match event {
            Finalizer::Apply(ws) => apply(ws, &ctx).await,
            Finalizer::Cleanup(ws) => cleanup(ws, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))?;
    ctx.backoff.succeeded(&key);
    Ok(action)
}

/// Requeues after a failure, with per-object backoff.
pub fn error_policy(ws: Arc<Workspace>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_error("Workspace", err.category());
    let delay = ctx.backoff.failed(&describe(ws.as_ref()));
    warn!(workspace = ws.name_any(), %err, ?delay, "reconcile failed");
    Action::requeue(delay)
}

async fn apply(ws: Arc<Workspace>, ctx: &Context) -> Result<Action, Error> {
    let now = Utc::now();
    let name = ws.name_any();
    let ns = ws.control_namespace();
    let mut status = ws.status.clone().unwrap_or_default();
    status.observed_generation = ws.metadata.generation;
    status.namespace = Some(ns.clone());
    let uid = ws.uid().unwrap_or_default();
    let was_ready = ws.is_ready();

    // The namespace, Roles and auditor binding are read (and put back where
    // needed) unless this process found them in place recently.
    let verified = was_ready && ctx.workspace_verified(&uid, ws.metadata.generation);
    if !verified {
        ensure_objects(&ws, ctx, &mut status, now).await?;
    }
    count(ctx, &ns, &mut status);
    merge_heads(&mut status.history, ctx.history.heads_in(&ns));
    if status.is_ready() && !was_ready {
        // Write-ahead: the chain's first entry before the status that says Ready.
        super::record(ctx, &ns, Chain::workspace(), transitions::workspace_created(&ws)).await?;
        merge_heads(&mut status.history, ctx.history.heads_in(&ns));
    }
    if ws.status.as_ref() != Some(&status) {
        write_status(ctx, &name, &status).await?;
    }
    Ok(Action::await_change())
}

/// Claims the control namespace and puts its Roles and auditor binding in
/// place; sets the Ready condition accordingly.
async fn ensure_objects(
    ws: &Workspace,
    ctx: &Context,
    status: &mut WorkspaceStatus,
    now: chrono::DateTime<Utc>,
) -> Result<(), Error> {
    let name = ws.name_any();
    let ns = ws.control_namespace();
    let uid = ws.uid().unwrap_or_default();
    match ensure_namespace(ctx, &name, &ns).await? {
        Err(conflict) => {
            if !matches!(
                crate::api::conditions::find_condition(&status.conditions, READY),
                Some(c) if c.reason == "NamespaceRefused"
            ) {
                ctx.publish(
                    &ws.object_ref(&()),
                    true,
                    events::NAMESPACE_REFUSED,
                    "Claim",
                    conflict.clone(),
                )
                .await;
            }
            set_condition(
                &mut status.conditions,
                Condition::new(
                    READY,
                    ConditionStatus::False,
                    "NamespaceRefused",
                    conflict,
                    ws.metadata.generation,
                    now,
                ),
            );
            ctx.forget_workspace_verified(&uid);
        }
        Ok(created) => {
            if created {
                ctx.publish(
                    &ws.object_ref(&()),
                    false,
                    events::NAMESPACE_READY,
                    "Claim",
                    format!("control namespace {ns} created"),
                )
                .await;
            }
            for role in rbac::workspace_roles(&name, &ns) {
                ensure_role(ctx, &role).await?;
            }
            ensure_auditors(ctx, &rbac::auditor_binding(&name, &ns, &ctx.config.auditors)).await?;
            set_condition(
                &mut status.conditions,
                Condition::new(
                    READY,
                    ConditionStatus::True,
                    "Ready",
                    format!("control namespace {ns} in place"),
                    ws.metadata.generation,
                    now,
                ),
            );
            ctx.mark_workspace_verified(&uid, ws.metadata.generation);
        }
    }
    Ok(())
}

/// Mirrors the chain heads the appender knows into the status: a head
/// replaces the mirrored one of its chain only when it is further along, so
/// that a restarted operator (which knows no heads yet) writes nothing.
pub fn merge_heads(mirrored: &mut Vec<ChainHead>, known: Vec<ChainHead>) {
    for head in known {
        match mirrored.iter_mut().find(|h| h.chain == head.chain) {
            Some(h) if h.sequence < head.sequence => *h = head,
            Some(_) => {}
            None => mirrored.push(head),
        }
    }
    mirrored.sort_by(|a, b| (a.chain != "workspace", &a.chain).cmp(&(b.chain != "workspace", &b.chain)));
}

fn count(ctx: &Context, ns: &str, status: &mut WorkspaceStatus) {
    let now = Utc::now();
    let mut managers = BTreeSet::new();
    let mut members = BTreeSet::new();
    let mut active = 0;
    for b in ctx.bindings_in(ns) {
        if !is_active(&b, now) {
            continue;
        }
        active += 1;
        let key = (b.spec.subject.kind == SubjectKind::Group, b.spec.subject.name.clone());
        match b.spec.workspace_role {
            Some(WorkspaceRole::Manager) => {
                managers.insert(key);
            }
            Some(WorkspaceRole::Member) => {
                members.insert(key);
            }
            None => {}
        }
    }
    status.managers = managers.len() as i32;
    status.members = members.len() as i32;
    status.active_bindings = active;
}

async fn write_status(ctx: &Context, name: &str, status: &WorkspaceStatus) -> Result<(), Error> {
    ctx.metrics.api_write("Workspace", "status");
    let body = json!({ "apiVersion": "foureyes.dev/v1alpha1", "kind": "Workspace", "status": status });
    Api::<Workspace>::all(ctx.client.clone())
        .patch_status(
            name,
            &PatchParams::apply(rbac::FIELD_MANAGER).force(),
            &Patch::Apply(body),
        )
        .await
        .map_err(kube_err("patch workspace status"))?;
    Ok(())
}

/// Creates the control namespace, or takes over one that is free. Returns
/// Ok(true) when created, Ok(false) when already in place, Err(message) when
/// the namespace belongs to something else.
async fn ensure_namespace(ctx: &Context, ws: &str, ns: &str) -> Result<Result<bool, String>, Error> {
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let labels = BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
        (CONTROL_NAMESPACE_LABEL.to_owned(), label_value(ws)),
        (WORKSPACE_LABEL.to_owned(), label_value(ws)),
    ]);
    let existing = api.get_opt(ns).await.map_err(kube_err("get namespace"))?;
    match existing {
        None => {
            let obj = Namespace {
                metadata: ObjectMeta {
                    name: Some(ns.to_owned()),
                    labels: Some(labels),
                    ..Default::default()
                },
                ..Default::default()
            };
            ctx.metrics.api_write("Namespace", "create");
            match api.create(&PostParams::default(), &obj).await {
                Ok(_) => Ok(Ok(true)),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Ok(false)),
                Err(e) => Err(kube_err("create namespace")(e)),
            }
        }
        Some(existing) => {
            let have = existing.labels();
            if ctx.config.is_protected_namespace(ns) {
                return Ok(Err(format!("{ns} is a protected system namespace")));
            }
            if let Some(owner) = have.get(CONTROL_NAMESPACE_LABEL).filter(|o| **o != label_value(ws)) {
                return Ok(Err(format!("{ns} is the control namespace of workspace {owner}")));
            }
            if let Some(p) = have.get(PROJECT_LABEL) {
                return Ok(Err(format!("{ns} is a tenant namespace of project {p}")));
            }
            if labels.iter().all(|(k, v)| have.get(k) == Some(v)) {
                return Ok(Ok(false));
            }
            // A namespace created before its workspace (for example by GitOps)
            // is taken over by labelling it.
            let patch =
                json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns, "labels": labels } });
            ctx.metrics.api_write("Namespace", "apply");
            api.patch(
                ns,
                &PatchParams::apply(rbac::FIELD_MANAGER).force(),
                &Patch::Apply(patch),
            )
            .await
            .map_err(kube_err("label namespace"))?;
            Ok(Ok(false))
        }
    }
}

async fn ensure_role(ctx: &Context, role: &NativeRole) -> Result<(), Error> {
    let ns = role.metadata.namespace.clone().unwrap_or_default();
    let api: Api<NativeRole> = Api::namespaced(ctx.client.clone(), &ns);
    let current = api.get_opt(&role.name_any()).await.map_err(kube_err("get role"))?;
    if current.is_some_and(|c| c.rules == role.rules) {
        return Ok(());
    }
    ctx.metrics.api_write("Role", "apply");
    rbac::apply::apply(&ctx.client, role)
        .await
        .map_err(kube_err("apply role"))?;
    Ok(())
}

async fn ensure_auditors(ctx: &Context, binding: &NativeBinding) -> Result<(), Error> {
    let ns = binding.metadata.namespace.clone().unwrap_or_default();
    let api: Api<NativeBinding> = Api::namespaced(ctx.client.clone(), &ns);
    let current = api
        .get_opt(&binding.name_any())
        .await
        .map_err(kube_err("get auditor binding"))?;
    if current.is_some_and(|c| c.subjects == binding.subjects && c.role_ref == binding.role_ref) {
        return Ok(());
    }
    ctx.metrics.api_write("RoleBinding", "apply");
    rbac::apply::apply(&ctx.client, binding)
        .await
        .map_err(kube_err("apply auditor binding"))?;
    Ok(())
}

/// Revokes everything the workspace granted, in every namespace. The control
/// namespace stays, with its Roles and history, for the auditors.
async fn cleanup(ws: Arc<Workspace>, ctx: &Context) -> Result<Action, Error> {
    let name = ws.name_any();
    ctx.forget_workspace_verified(&ws.uid().unwrap_or_default());
    let selector = format!(
        "{MANAGED_BY_LABEL}={MANAGED_BY},{WORKSPACE_LABEL}={},{}",
        label_value(&name),
        rbac::BINDING_UID_LABEL
    );
    let n = super::binding::revoke_by_selector(ctx, &selector).await?;
    // The chain's final entry (after the revocations). The namespace and its
    // history stay; if someone deletes the namespace too, there is nothing
    // left to write into.
    let ns = ws.control_namespace();
    match super::record(ctx, &ns, Chain::workspace(), transitions::workspace_deleted(&ws, n)).await {
        Err(Error::History(e)) if e.is_namespace_gone() => {
            warn!(workspace = name, %e, "namespace gone; deletion not recorded");
        }
        other => other?,
    }
    ctx.publish(
        &ws.object_ref(&()),
        false,
        events::WORKSPACE_DELETED,
        "Delete",
        format!(
            "workspace {name} deleted: {n} native bindings revoked; namespace {} kept for the auditors",
            ws.control_namespace()
        ),
    )
    .await;
    Ok(Action::await_change())
}
