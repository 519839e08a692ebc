//! The `Workspace` reconciler: its control namespace, the manager, member and
//! auditor Roles there, and a status with counts. Deleting a workspace revokes
//! everything it granted and leaves the namespace (and its history) in place.

use crate::wire::{CONTROL_NAMESPACE_LABEL, MANAGED_BY, MANAGED_BY_LABEL, WORKSPACE_LABEL, WORKSPACE_UID_LABEL};
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{Role as NativeRole, RoleBinding as NativeBinding};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::warn;

use super::{Context, Error, kube_err};
use crate::api::Workspace;
use crate::api::workspace::ChainHead;
use crate::audit::history::Chain;
use crate::audit::transitions;
use crate::policy::lifecycle;
use crate::policy::namespaces::{NamespaceClaim, NamespaceFacts, claim_control_namespace};
use crate::policy::workspace::{self as policy, Claimed};
use crate::rbac::{self, label_value};

impl super::scaffold::Reconciled for Workspace {
    type Status = crate::api::WorkspaceStatus;

    fn api(client: kube::Client, _namespace: Option<&str>) -> Api<Self> {
        Api::all(client)
    }

    async fn apply(obj: Arc<Self>, ctx: &Context) -> Result<Action, Error> {
        apply(obj, ctx).await
    }

    async fn cleanup(obj: Arc<Self>, ctx: &Context) -> Result<Action, Error> {
        cleanup(obj, ctx).await
    }
}

async fn apply(ws: Arc<Workspace>, ctx: &Context) -> Result<Action, Error> {
    let now = Utc::now();
    let name = ws.name_any();
    let ns = ws.control_namespace();
    let uid = ws.uid().unwrap_or_default();

    // The namespace, Roles and auditor binding are read (and put back where
    // needed) unless this process found them in place at this generation and
    // no watch of them has seen a change since.
    let verified = ws.is_ready() && ctx.workspace_verified(&uid, ws.metadata.generation);
    let claimed = match verified {
        true => None,
        false => Some(ensure_namespace(ctx, &name, &uid, &ns).await?),
    };
    let counts = policy::counts(ctx.bindings_in(&ns).iter().map(|b| b.as_ref()), now);
    let decision = policy::decide_workspace(&ws, claimed.as_ref(), counts, now);
    if decision.set_up {
        for role in rbac::workspace_roles(&name, &ns) {
            ensure_role(ctx, &role).await?;
        }
        ensure_auditors(ctx, &rbac::auditor_binding(&name, &ns, &ctx.config.auditors)).await?;
    }
    let mut status = decision.status;
    if status.namespace.is_some() {
        // Write-ahead: the chain's entries before the status that reports them.
        super::record_in(
            ctx,
            &ns,
            &name,
            Chain::workspace(),
            transitions::entries(&decision.happened, &transitions::workspace_object(&ws)),
        )
        .await?;
        merge_heads(&mut status.history, ctx.history.heads_in(&ns));
    }
    // Counts and chain heads alone are written at most once a second.
    let only_counts = decision.happened.is_empty()
        && ws.status.as_ref().is_some_and(|old| {
            old != &status
                && crate::api::WorkspaceStatus {
                    managers: status.managers,
                    members: status.members,
                    active_bindings: status.active_bindings,
                    history: status.history.clone(),
                    ..old.clone()
                } == status
        });
    if only_counts && let Some(wait) = ctx.counts_wait(&uid) {
        return Ok(Action::requeue(wait));
    }
    if super::scaffold::write_status(ctx, ws.as_ref(), ws.status.as_ref(), &status).await? {
        ctx.counts_written(&uid);
    }
    match (decision.set_up, &claimed) {
        (true, _) => ctx.mark_workspace_verified(&uid, ws.metadata.generation),
        (false, Some(_)) => ctx.forget_workspace_verified(&uid),
        (false, None) => {}
    }
    ctx.announce(&ws.object_ref(&()), &decision.happened).await;
    Ok(Action::await_change())
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
    let terminating = existing
        .as_ref()
        .is_some_and(|n| n.metadata.deletion_timestamp.is_some());
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
        NamespaceClaim::Keep | NamespaceClaim::Adopt if terminating => Ok(Claimed::Terminating),
        NamespaceClaim::Keep
            if labels
                .iter()
                .all(|(k, v)| have.as_ref().and_then(|h| h.get(k)) == Some(v)) =>
        {
            Ok(Claimed::Held)
        }
        claim @ (NamespaceClaim::Keep | NamespaceClaim::Adopt) => {
            let patch =
                json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns, "labels": labels } });
            api.patch(
                ns,
                &PatchParams::apply(crate::wire::FIELD_MANAGER).force(),
                &Patch::Apply(patch),
            )
            .await
            .map_err(kube_err("label namespace"))?;
            Ok(match claim {
                NamespaceClaim::Adopt => Claimed::Adopted,
                _ => Claimed::Held,
            })
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
