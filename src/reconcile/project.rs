//! The `Project` reconciler: claims the tenant namespaces (creates them, or
//! adopts one that already carries this project's labels), refuses system
//! namespaces and those of other projects or workspaces, and on deletion
//! removes the native RBAC of its bindings and the namespaces it created.

use crate::wire::{
    BINDING_UID_LABEL, CREATED_BY_LABEL, FINALIZER, MANAGED_BY, MANAGED_BY_LABEL, PROJECT_LABEL, PROJECT_UID_LABEL,
    WORKSPACE_LABEL,
};
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::warn;

use super::{Context, Error, describe, kube_err};
use crate::api::conditions::{Condition, ConditionStatus, READY, find_condition, set_condition};
use crate::api::{Project, ProjectStatus};
use crate::audit::history::Chain;
use crate::audit::transitions;
use crate::policy::lifecycle;
use crate::policy::managers::is_active;
use crate::policy::namespaces::{NamespaceClaim, NamespaceFacts, claim_namespace};
use crate::policy::transition::reason;
use crate::rbac::{self, label_value};

/// Reconciles one project.
pub async fn reconcile(p: Arc<Project>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.wait_ready().await;
    ctx.metrics.reconciled("Project");
    let ns = p.namespace().ok_or(Error::Incomplete("namespace"))?;
    let api: Api<Project> = Api::namespaced(ctx.client.clone(), &ns);
    let key = describe(p.as_ref());
    let action = finalizer(&api, FINALIZER, p, |event| async {
        match event {
            Finalizer::Apply(p) => apply(p, &ctx).await,
            Finalizer::Cleanup(p) => cleanup(p, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))?;
    ctx.backoff.succeeded(&key);
    Ok(action)
}

/// Requeues after a failure, with per-object backoff.
pub fn error_policy(p: Arc<Project>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_error("Project", err.category());
    let delay = ctx.backoff.failed(&describe(p.as_ref()));
    warn!(project = describe(p.as_ref()), %err, ?delay, "reconcile failed");
    Action::requeue(delay)
}

async fn apply(p: Arc<Project>, ctx: &Context) -> Result<Action, Error> {
    let now = Utc::now();
    let ns = p.namespace().unwrap_or_default();
    let name = p.name_any();
    let uid = p.uid().ok_or(Error::Incomplete("uid"))?;
    let generation = p.metadata.generation;
    let mut status = p.status.clone().unwrap_or_default();
    status.observed_generation = generation;
    let previous_ready = find_condition(&status.conditions, READY).cloned();

    let Some(ws) = ctx.workspace_of(&ns) else {
        set_condition(
            &mut status.conditions,
            Condition::new(
                READY,
                ConditionStatus::False,
                "WorkspaceNotFound",
                format!("no workspace has {ns} as its control namespace"),
                generation,
                now,
            ),
        );
        write_if_changed(ctx, &p, &status).await?;
        return Ok(Action::await_change());
    };
    let ws_name = ws.name_any();

    // The project's spec in its chain: when first seen in its workspace, and
    // at every change, before the status says it was observed.
    let seen = previous_ready.as_ref().is_some_and(|c| c.reason != "WorkspaceNotFound");
    let happened = match p.status.as_ref().and_then(|s| s.observed_generation) {
        _ if !seen => Some(lifecycle::project_created(&p)),
        Some(g) if Some(g) != generation => Some(lifecycle::project_changed(&p)),
        _ => None,
    };
    if let Some(t) = happened {
        super::record_transitions(ctx, &ns, Chain::project(&name), &transitions::project_object(&p), &[t]).await?;
    }

    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let mut claimed = vec![];
    let mut refused = vec![];
    let mut taken = false;
    for tenant in &p.spec.namespaces {
        let existing = api.get_opt(tenant).await.map_err(kube_err("get namespace"))?;
        let labels = existing.as_ref().map(|n| n.labels().clone());
        let facts = NamespaceFacts {
            name: tenant,
            labels: labels.as_ref(),
            protected: ctx.config.is_protected_namespace(tenant),
        };
        match claim_namespace(&label_value(&ws_name), &label_value(&name), &uid, &facts) {
            NamespaceClaim::Keep => claimed.push(tenant.clone()),
            NamespaceClaim::Adopt => {
                // Labelled for this project by name before it existed: record
                // its uid, so that a later project of the same name cannot
                // inherit it.
                let patch = json!({
                    "apiVersion": "v1", "kind": "Namespace",
                    "metadata": { "name": tenant, "labels": { PROJECT_UID_LABEL: uid } },
                });
                api.patch(
                    tenant,
                    &PatchParams::apply(crate::wire::FIELD_MANAGER).force(),
                    &Patch::Apply(patch),
                )
                .await
                .map_err(kube_err("label namespace"))?;
                claimed.push(tenant.clone());
                ctx.publish(
                    &p.object_ref(&()),
                    false,
                    reason::NAMESPACE_ADOPTED,
                    "Claim",
                    format!("tenant namespace {tenant} adopted (it carried this project's labels)"),
                )
                .await;
            }
            NamespaceClaim::Create => {
                let obj = Namespace {
                    metadata: ObjectMeta {
                        name: Some(tenant.clone()),
                        labels: Some(BTreeMap::from([
                            (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
                            (WORKSPACE_LABEL.to_owned(), label_value(&ws_name)),
                            (PROJECT_LABEL.to_owned(), label_value(&name)),
                            (PROJECT_UID_LABEL.to_owned(), uid.clone()),
                            (CREATED_BY_LABEL.to_owned(), uid.clone()),
                        ])),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                match api.create(&PostParams::default(), &obj).await {
                    Ok(_) => {
                        claimed.push(tenant.clone());
                        ctx.publish(
                            &p.object_ref(&()),
                            false,
                            reason::NAMESPACE_CREATED,
                            "Claim",
                            format!("tenant namespace {tenant} created"),
                        )
                        .await;
                    }
                    // Someone created it in between: decide again on the next pass.
                    Err(kube::Error::Api(s)) if s.code == 409 => {
                        return Ok(Action::requeue(std::time::Duration::from_secs(1)));
                    }
                    Err(e) => return Err(kube_err("create namespace")(e)),
                }
            }
            NamespaceClaim::Taken(why) => {
                taken = true;
                refused.push(why);
            }
            NamespaceClaim::Refuse(why) => refused.push(why),
        }
    }
    claimed.sort();

    // Namespaces this project no longer holds: its grants there end. Only a
    // namespace removed from the spec is released (and deleted, if this very
    // project created it); one that is refused now (claimed by someone
    // else, relabelled) is never deleted.
    for gone in status.namespaces.iter().filter(|n| !claimed.contains(n)) {
        let removed = !p.spec.namespaces.contains(gone);
        release(ctx, &uid, gone, removed).await?;
    }
    status.namespaces = claimed.clone();
    let ready = if refused.is_empty() {
        Condition::new(
            READY,
            ConditionStatus::True,
            "NamespacesClaimed",
            format!("tenant namespaces: {}", claimed.join(", ")),
            generation,
            now,
        )
    } else {
        Condition::new(
            READY,
            ConditionStatus::False,
            if taken { "NamespaceTaken" } else { "NamespaceRefused" },
            refused.join("; "),
            generation,
            now,
        )
    };
    if !refused.is_empty() && previous_ready.as_ref().is_none_or(|c| c.message != ready.message) {
        ctx.publish(
            &p.object_ref(&()),
            true,
            if taken {
                reason::NAMESPACE_TAKEN
            } else {
                reason::NAMESPACE_REFUSED
            },
            "Claim",
            refused.join("; "),
        )
        .await;
    }
    set_condition(&mut status.conditions, ready);
    status.active_bindings = ctx
        .bindings_in(&ns)
        .iter()
        .filter(|b| b.spec.project.as_deref() == Some(name.as_str()) && is_active(b, now))
        .count() as i32;
    let changed_namespaces = p.status.as_ref().map(|s| &s.namespaces) != Some(&status.namespaces);
    write_if_changed(ctx, &p, &status).await?;
    if changed_namespaces {
        // The bindings of this project now have other namespaces to grant in.
        for b in ctx.bindings_in(&ns) {
            if b.spec.project.as_deref() == Some(name.as_str()) {
                let _ = ctx.triggers.bindings.send(ObjectRef::from_obj(b.as_ref()));
            }
        }
    }
    Ok(Action::await_change())
}

async fn write_if_changed(ctx: &Context, p: &Project, status: &ProjectStatus) -> Result<(), Error> {
    if p.status.as_ref() == Some(status) {
        return Ok(());
    }
    let body = json!({ "apiVersion": "foureyes.dev/v1alpha1", "kind": "Project", "status": status });
    Api::<Project>::namespaced(ctx.client.clone(), &p.namespace().unwrap_or_default())
        .patch_status(
            &p.name_any(),
            &PatchParams::apply(crate::wire::FIELD_MANAGER).force(),
            &Patch::Apply(body),
        )
        .await
        .map_err(kube_err("patch project status"))?;
    Ok(())
}

/// Stops using a tenant namespace: removes the project's native bindings
/// there (by the project's uid) and, when `delete` (the namespace was
/// removed from the spec, or the project is deleted), deletes the namespace
/// if this very project created it and still holds it.
async fn release(ctx: &Context, uid: &str, tenant: &str, delete: bool) -> Result<(), Error> {
    let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY},{PROJECT_UID_LABEL}={uid},{BINDING_UID_LABEL}");
    let api: Api<k8s_openapi::api::rbac::v1::RoleBinding> = Api::namespaced(ctx.client.clone(), tenant);
    let list = api
        .list_metadata(&kube::api::ListParams::default().labels(&selector))
        .await
        .map_err(kube_err("list native bindings"))?;
    for item in list.items {
        rbac::apply::delete_native(&ctx.client, tenant, &item.name_any(), item.metadata.uid.as_deref())
            .await
            .map_err(kube_err("delete native binding"))?;
    }
    if !delete {
        return Ok(());
    }
    let ns_api: Api<Namespace> = Api::all(ctx.client.clone());
    if let Some(n) = ns_api.get_opt(tenant).await.map_err(kube_err("get namespace"))?
        && n.labels().get(CREATED_BY_LABEL).map(String::as_str) == Some(uid)
        && n.labels().get(PROJECT_UID_LABEL).is_none_or(|owner| owner == uid)
        && n.metadata.deletion_timestamp.is_none()
    {
        let precondition = DeleteParams {
            preconditions: n.metadata.uid.clone().map(|u| kube::api::Preconditions {
                uid: Some(u),
                resource_version: n.metadata.resource_version.clone(),
            }),
            ..DeleteParams::default()
        };
        match ns_api.delete(tenant, &precondition).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => return Err(kube_err("delete namespace")(e)),
        }
    }
    Ok(())
}

async fn cleanup(p: Arc<Project>, ctx: &Context) -> Result<Action, Error> {
    let uid = p.uid().ok_or(Error::Incomplete("uid"))?;
    let mut tenants: Vec<String> = p.status.as_ref().map(|s| s.namespaces.clone()).unwrap_or_default();
    tenants.extend(p.spec.namespaces.iter().cloned());
    tenants.sort();
    tenants.dedup();
    for tenant in tenants {
        release(ctx, &uid, &tenant, true).await?;
    }
    // Anything left anywhere with this project's uid (a namespace removed
    // from the spec while the operator was down, say).
    let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY},{PROJECT_UID_LABEL}={uid},{BINDING_UID_LABEL}");
    super::binding::revoke_by_selector(ctx, &selector).await?;
    let ns = p.namespace().unwrap_or_default();
    match super::record_transitions(
        ctx,
        &ns,
        Chain::project(&p.name_any()),
        &transitions::project_object(&p),
        &[lifecycle::project_deleted(&p)],
    )
    .await
    {
        Err(Error::History(e)) if e.is_namespace_gone() => {}
        other => other?,
    }
    // Its bindings end for good: they carry the uid of this project, which a
    // project re-created with the same name does not have.
    for b in ctx.bindings_in(&p.namespace().unwrap_or_default()) {
        if b.spec.project.as_deref() == Some(p.name_any().as_str()) {
            let _ = ctx.triggers.bindings.send(ObjectRef::from_obj(b.as_ref()));
        }
    }
    Ok(Action::await_change())
}
