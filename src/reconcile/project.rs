//! The `Project` reconciler: claims the tenant namespaces (creates them, or
//! adopts one that already carries this project's labels), refuses system
//! namespaces and those of other projects or workspaces, and on deletion
//! removes the native RBAC of its bindings and the namespaces it created.

use crate::wire::{
    BINDING_UID_LABEL, CREATED_BY_LABEL, MANAGED_BY, MANAGED_BY_LABEL, PROJECT_LABEL, PROJECT_UID_LABEL,
    WORKSPACE_LABEL,
};
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::{Context, Error, kube_err};
use crate::api::Project;
use crate::audit::history::Chain;
use crate::audit::transitions;
use crate::policy::lifecycle;
use crate::policy::namespaces::{NamespaceClaim, NamespaceFacts, claim_namespace};
use crate::policy::workspace::{self as policy, Claimed};
use crate::rbac::{self, label_value};

impl super::scaffold::Reconciled for Project {
    type Status = crate::api::ProjectStatus;

    fn api(client: kube::Client, namespace: Option<&str>) -> Api<Self> {
        Api::namespaced(client, namespace.unwrap_or_default())
    }

    async fn apply(obj: Arc<Self>, ctx: &Context) -> Result<Action, Error> {
        apply(obj, ctx).await
    }

    async fn cleanup(obj: Arc<Self>, ctx: &Context) -> Result<Action, Error> {
        cleanup(obj, ctx).await
    }
}

async fn apply(p: Arc<Project>, ctx: &Context) -> Result<Action, Error> {
    let now = Utc::now();
    let ns = p.namespace().unwrap_or_default();
    let name = p.name_any();
    let uid = p.uid().ok_or(Error::Incomplete("uid"))?;
    let workspace = ctx.workspace_of(&ns).map(|w| w.name_any());

    // The project's spec in its chain (when first seen in its workspace, and
    // at every change) before its namespaces are touched.
    if workspace.is_some()
        && let Some(t) = policy::project_recorded(&p)
    {
        super::record_transitions(ctx, &ns, Chain::project(&name), &transitions::project_object(&p), &[t]).await?;
    }
    let mut claims = vec![];
    let mut operator = None;
    if let Some(ws_name) = &workspace {
        for tenant in &p.spec.namespaces {
            match claim(ctx, ws_name, &name, &uid, tenant).await? {
                Some(claimed) => {
                    if claimed.is_usable() {
                        if operator.is_none() {
                            operator = Some(operator_subjects(ctx).await?);
                        }
                        let wanted = rbac::token_finder_binding(tenant, &uid, operator.clone().unwrap_or_default());
                        ensure_token_finder(ctx, &wanted).await?;
                    }
                    claims.push((tenant.clone(), claimed))
                }
                // Someone created it in between: decide again on the next pass.
                None => return Ok(Action::requeue(std::time::Duration::from_secs(1))),
            }
        }
    }
    let bindings = ctx.bindings_in(&ns);
    let decision = policy::decide_project(
        &p,
        workspace.as_deref(),
        &claims,
        bindings.iter().map(|b| b.as_ref()),
        now,
    );
    for (gone, removed) in &decision.release {
        release(ctx, &uid, gone, *removed).await?;
    }
    let changed_namespaces = p.status.as_ref().map(|s| &s.namespaces) != Some(&decision.status.namespaces);
    super::scaffold::write_status(ctx, p.as_ref(), p.status.as_ref(), &decision.status).await?;
    ctx.announce(&p.object_ref(&()), &decision.happened).await;
    if changed_namespaces {
        // The bindings of this project now have other namespaces to grant in.
        for b in bindings
            .iter()
            .filter(|b| b.spec.project.as_deref() == Some(name.as_str()))
        {
            let _ = ctx.triggers.bindings.send(ObjectRef::from_obj(b.as_ref()));
        }
    }
    Ok(Action::await_change())
}

/// Claims one tenant namespace as the policy says: creates it, adopts it
/// (records the project's uid on it), or leaves it alone. `None` when
/// someone created it concurrently.
async fn claim(ctx: &Context, ws_name: &str, name: &str, uid: &str, tenant: &str) -> Result<Option<Claimed>, Error> {
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let existing = api.get_opt(tenant).await.map_err(kube_err("get namespace"))?;
    let labels = existing.as_ref().map(|n| n.labels().clone());
    let facts = NamespaceFacts {
        name: tenant,
        labels: labels.as_ref(),
        protected: ctx.config.is_protected_namespace(tenant),
    };
    Ok(Some(
        match claim_namespace(&label_value(ws_name), &label_value(name), uid, &facts) {
            NamespaceClaim::Keep => Claimed::Held,
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
                Claimed::Adopted
            }
            NamespaceClaim::Create => {
                let obj = Namespace {
                    metadata: ObjectMeta {
                        name: Some(tenant.to_owned()),
                        labels: Some(BTreeMap::from([
                            (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
                            (WORKSPACE_LABEL.to_owned(), label_value(ws_name)),
                            (PROJECT_LABEL.to_owned(), label_value(name)),
                            (PROJECT_UID_LABEL.to_owned(), uid.to_owned()),
                            (CREATED_BY_LABEL.to_owned(), uid.to_owned()),
                        ])),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                match api.create(&PostParams::default(), &obj).await {
                    Ok(_) => Claimed::Created,
                    Err(kube::Error::Api(s)) if s.code == 409 => return Ok(None),
                    Err(e) => return Err(kube_err("create namespace")(e)),
                }
            }
            NamespaceClaim::Taken(why) => Claimed::Taken(why),
            NamespaceClaim::Refuse(why) => Claimed::Refused(why),
        },
    ))
}

/// The operator's identity as its installation names it: the subjects of
/// its own ClusterRoleBinding (`foureyes rbac` and the chart make it; whoever
/// may change it can give anyone the operator's rights anyway). Read, never
/// written; no API write, so a restart in sync stays without writes.
async fn operator_subjects(ctx: &Context) -> Result<Vec<k8s_openapi::api::rbac::v1::Subject>, Error> {
    let api: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> = Api::all(ctx.client.clone());
    let crb = api
        .get(crate::wire::OPERATOR_ROLE)
        .await
        .map_err(kube_err("get the operator's clusterrolebinding"))?;
    Ok(crb.subjects.unwrap_or_default())
}

/// Puts the token finder's RoleBinding in a tenant namespace the project
/// holds, unless it is there already as wanted.
async fn ensure_token_finder(ctx: &Context, wanted: &k8s_openapi::api::rbac::v1::RoleBinding) -> Result<(), Error> {
    let ns = wanted.metadata.namespace.clone().unwrap_or_default();
    let api: Api<k8s_openapi::api::rbac::v1::RoleBinding> = Api::namespaced(ctx.client.clone(), &ns);
    let live = api
        .get_opt(crate::wire::TOKEN_FINDER_ROLE)
        .await
        .map_err(kube_err("get the token finder's rolebinding"))?;
    if live.is_some_and(|l| rbac::token_finder_in_place(&l, wanted)) {
        return Ok(());
    }
    rbac::apply::apply(&ctx.client, wanted)
        .await
        .map_err(kube_err("apply the token finder's rolebinding"))?;
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
    // The token finder's, if this project put it there.
    if let Some(finder) = api
        .get_metadata_opt(crate::wire::TOKEN_FINDER_ROLE)
        .await
        .map_err(kube_err("get the token finder's rolebinding"))?
        && finder.labels().get(PROJECT_UID_LABEL).map(String::as_str) == Some(uid)
    {
        rbac::apply::delete_native(&ctx.client, tenant, &finder.name_any(), finder.metadata.uid.as_deref())
            .await
            .map_err(kube_err("delete the token finder's rolebinding"))?;
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
