//! The `Workspace` reconciler: its control namespace, the manager, member and
//! auditor Roles there, and a status with counts. Deleting a workspace revokes
//! everything it granted and leaves the namespace (and its history) in place.

use crate::wire::{
    CONTROL_NAMESPACE_LABEL, FINALIZER, MANAGED_BY, MANAGED_BY_LABEL, WORKSPACE_LABEL, WORKSPACE_UID_LABEL,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Utc;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{Role as NativeRole, RoleBinding as NativeBinding};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::warn;

use super::{Context, Error, describe, kube_err};
use crate::api::conditions::{Condition, ConditionStatus, READY, set_condition};
use crate::api::workspace::ChainHead;
use crate::api::{SubjectKind, Workspace, WorkspaceRole, WorkspaceStatus};
use crate::audit::history::Chain;
use crate::audit::transitions;
use crate::policy::lifecycle;
use crate::policy::managers::is_active;
use crate::policy::namespaces::{NamespaceClaim, NamespaceFacts, claim_control_namespace};
use crate::policy::transition::reason;
use crate::rbac::{self, label_value};

/// Reconciles one workspace.
pub async fn reconcile(ws: Arc<Workspace>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.wait_ready().await;
    ctx.metrics.reconciled("Workspace");
    let api: Api<Workspace> = Api::all(ctx.client.clone());
    let key = describe(ws.as_ref());
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
    let uid = ws.uid().unwrap_or_default();
    let was_ready = ws.is_ready();

    // The namespace, Roles and auditor binding are read (and put back where
    // needed) unless this process found them in place recently.
    let verified = was_ready && ctx.workspace_verified(&uid, ws.metadata.generation);
    if !verified {
        ensure_objects(&ws, ctx, &mut status, now).await?;
    }
    if status.namespace.is_some() {
        count(ctx, &ns, &mut status);
        merge_heads(&mut status.history, ctx.history.heads_in(&ns));
    }
    if status.is_ready() && !was_ready {
        // Write-ahead: the chain's first entry before the status that says Ready.
        super::record_in(
            ctx,
            &ns,
            &name,
            Chain::workspace(),
            transitions::entries(
                &[lifecycle::workspace_created(&ws)],
                &transitions::workspace_object(&ws),
            ),
        )
        .await?;
        merge_heads(&mut status.history, ctx.history.heads_in(&ns));
    } else if status.namespace.is_some()
        && was_ready
        && ws.status.as_ref().and_then(|s| s.observed_generation) != ws.metadata.generation
    {
        // A changed spec (approval policy, caps) is recorded before the
        // status says it was observed.
        super::record_in(
            ctx,
            &ns,
            &name,
            Chain::workspace(),
            transitions::entries(
                &[lifecycle::workspace_changed(&ws)],
                &transitions::workspace_object(&ws),
            ),
        )
        .await?;
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
    let claimed = ensure_namespace(ctx, &name, &uid, &ns).await?;
    let refusal = match &claimed {
        Claimed::Taken(why) => Some((reason::NAMESPACE_TAKEN, why.clone())),
        Claimed::Refused(why) => Some((reason::NAMESPACE_REFUSED, why.clone())),
        Claimed::Created | Claimed::Held => None,
    };
    match refusal {
        Some((reason, conflict)) => {
            if !matches!(
                crate::api::conditions::find_condition(&status.conditions, READY),
                Some(c) if c.reason == reason && c.message == conflict
            ) {
                ctx.publish(&ws.object_ref(&()), true, reason, "Claim", conflict.clone())
                    .await;
            }
            set_condition(
                &mut status.conditions,
                Condition::new(
                    READY,
                    ConditionStatus::False,
                    reason,
                    conflict,
                    ws.metadata.generation,
                    now,
                ),
            );
            // Not this workspace's: nothing of it resolves to this workspace.
            status.namespace = None;
            ctx.forget_workspace_verified(&uid);
        }
        None => {
            if matches!(claimed, Claimed::Created) {
                ctx.publish(
                    &ws.object_ref(&()),
                    false,
                    reason::NAMESPACE_READY,
                    "Claim",
                    format!("control namespace {ns} created"),
                )
                .await;
            }
            status.namespace = Some(ns.clone());
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
    let body = json!({ "apiVersion": "foureyes.dev/v1alpha1", "kind": "Workspace", "status": status });
    Api::<Workspace>::all(ctx.client.clone())
        .patch_status(
            name,
            &PatchParams::apply(crate::wire::FIELD_MANAGER).force(),
            &Patch::Apply(body),
        )
        .await
        .map_err(kube_err("patch workspace status"))?;
    Ok(())
}

/// How the control namespace was claimed.
enum Claimed {
    /// Created now.
    Created,
    /// Already this workspace's (by uid), or adopted now.
    Held,
    /// Held by another workspace or project (`NamespaceTaken`).
    Taken(String),
    /// Refused: a system namespace, or an existing one not labelled for
    /// this workspace (`NamespaceRefused`).
    Refused(String),
}

/// Claims the control namespace by the workspace's uid: creates it, keeps it
/// when it carries the uid, adopts it when it is labelled for this workspace
/// by name and by no uid yet; otherwise touches nothing.
async fn ensure_namespace(ctx: &Context, ws: &str, uid: &str, ns: &str) -> Result<Claimed, Error> {
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let labels = BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
        (CONTROL_NAMESPACE_LABEL.to_owned(), label_value(ws)),
        (WORKSPACE_LABEL.to_owned(), label_value(ws)),
        (WORKSPACE_UID_LABEL.to_owned(), uid.to_owned()),
    ]);
    let existing = api.get_opt(ns).await.map_err(kube_err("get namespace"))?;
    let have = existing.as_ref().map(|n| n.labels().clone());
    let facts = NamespaceFacts {
        name: ns,
        labels: have.as_ref(),
        protected: ctx.config.is_protected_namespace(ns),
    };
    match claim_control_namespace(&label_value(ws), uid, &facts) {
        NamespaceClaim::Create => {
            let obj = Namespace {
                metadata: ObjectMeta {
                    name: Some(ns.to_owned()),
                    labels: Some(labels),
                    ..Default::default()
                },
                ..Default::default()
            };
            match api.create(&PostParams::default(), &obj).await {
                Ok(_) => Ok(Claimed::Created),
                // Someone created it in between: it is judged on the next pass.
                Err(kube::Error::Api(s)) if s.code == 409 => Err(Error::Incomplete("namespace created concurrently")),
                Err(e) => Err(kube_err("create namespace")(e)),
            }
        }
        NamespaceClaim::Keep
            if labels
                .iter()
                .all(|(k, v)| have.as_ref().and_then(|h| h.get(k)) == Some(v)) =>
        {
            Ok(Claimed::Held)
        }
        NamespaceClaim::Keep | NamespaceClaim::Adopt => {
            let patch =
                json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns, "labels": labels } });
            api.patch(
                ns,
                &PatchParams::apply(crate::wire::FIELD_MANAGER).force(),
                &Patch::Apply(patch),
            )
            .await
            .map_err(kube_err("label namespace"))?;
            Ok(Claimed::Held)
        }
        NamespaceClaim::Taken(why) => Ok(Claimed::Taken(why)),
        NamespaceClaim::Refuse(why) => Ok(Claimed::Refused(why)),
    }
}

async fn ensure_role(ctx: &Context, role: &NativeRole) -> Result<(), Error> {
    let ns = role.metadata.namespace.clone().unwrap_or_default();
    let api: Api<NativeRole> = Api::namespaced(ctx.client.clone(), &ns);
    let current = api.get_opt(&role.name_any()).await.map_err(kube_err("get role"))?;
    if current.is_some_and(|c| c.rules == role.rules) {
        return Ok(());
    }
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
    rbac::apply::apply(&ctx.client, binding)
        .await
        .map_err(kube_err("apply auditor binding"))?;
    Ok(())
}

/// Revokes everything the workspace granted, in every namespace. The control
/// namespace stays, with its Roles and history, for the auditors; the
/// workspace's bindings end for good (DESIGN §2, invariant 2): they recorded
/// this workspace's uid, which a workspace re-created with the same name does
/// not have.
async fn cleanup(ws: Arc<Workspace>, ctx: &Context) -> Result<Action, Error> {
    let name = ws.name_any();
    let uid = ws.uid().unwrap_or_default();
    ctx.forget_workspace_verified(&uid);
    let selector = format!(
        "{MANAGED_BY_LABEL}={MANAGED_BY},{WORKSPACE_UID_LABEL}={uid},{}",
        crate::wire::BINDING_UID_LABEL
    );
    let n = super::binding::revoke_by_selector(ctx, &selector).await?;
    let ns = ws.control_namespace();
    // Only the workspace that held the namespace writes there: a second
    // claimant's deletion touches nothing of the first.
    if ws.status.as_ref().and_then(|s| s.namespace.as_deref()) != Some(ns.as_str()) {
        return Ok(Action::await_change());
    }
    // Its bindings end for good, each recorded; the workspace's final entry
    // comes after theirs, so the deletion waits for them.
    let holding: Vec<_> = ctx
        .bindings_in(&ns)
        .into_iter()
        .filter(|b| b.metadata.deletion_timestamp.is_none())
        .filter(|b| crate::policy::binding::holds_access(b.status.as_ref()))
        .collect();
    if !holding.is_empty() {
        for b in &holding {
            let _ = ctx.triggers.bindings.send(ObjectRef::from_obj(b.as_ref()));
        }
        return Err(Error::Waiting("the workspace's bindings to end"));
    }
    // The chain's final entry (after the revocations). The namespace and its
    // history stay; if someone deletes the namespace too, there is nothing
    // left to write into.
    let deleted = [lifecycle::workspace_deleted(&ws, n)];
    match super::record_in(
        ctx,
        &ns,
        &name,
        Chain::workspace(),
        transitions::entries(&deleted, &transitions::workspace_object(&ws)),
    )
    .await
    {
        Err(Error::History(e)) if e.is_namespace_gone() => {
            warn!(workspace = name, %e, "namespace gone; deletion not recorded");
        }
        other => other?,
    }
    ctx.announce(&ws.object_ref(&()), &deleted).await;
    Ok(Action::await_change())
}
