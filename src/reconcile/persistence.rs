//! DESIGN §2, invariant 10: access a grantee made for themselves during a
//! project-role grant. When the grant ends, the RoleBindings its holder
//! created in the project's tenant namespaces while it was active (the
//! admission stamp `foureyes.dev/created-by` names their creator) are
//! reported, or deleted where the workspace's `persistence` is `Revoke`.

use chrono::{DateTime, Utc};
use k8s_openapi::api::rbac::v1::RoleBinding as NativeBinding;
use kube::api::{Api, ListParams};
use kube::{Resource, ResourceExt};

use super::{Context, Error, kube_err};
use crate::api::{Persistence, RoleBinding, RoleBindingStatus};
use crate::audit::transitions;
use crate::policy::identity::creator_groups;
use crate::rbac;

/// Looks for what the holder of `b` (a project role, ending now) created in
/// `previous.namespaces` since `previous.activatedAt`; records and reports it
/// (write-ahead, before the status that says the grant ended), and deletes it
/// under `Persistence::Revoke`.
pub async fn at_grant_end(
    ctx: &Context,
    b: &RoleBinding,
    previous: &RoleBindingStatus,
    policy: Persistence,
) -> Result<(), Error> {
    let Some(since) = previous.activated_at else {
        return Ok(());
    };
    let ns = b.namespace().unwrap_or_default();
    let mut found: Vec<NativeBinding> = vec![];
    for tenant in &previous.namespaces {
        let api: Api<NativeBinding> = Api::namespaced(ctx.client.clone(), tenant);
        // All of them: a label is no proof of who made it (the operator's own
        // carry the operator as their creator, and are left out by that).
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(kube_err("list tenant rolebindings"))?;
        found.extend(list.items.into_iter().filter(|n| made_by_holder(n, b, since)));
    }
    if found.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = found
        .iter()
        .map(|n| format!("{}/{}", n.namespace().unwrap_or_default(), n.name_any()))
        .collect();
    let revoke = policy == Persistence::Revoke;
    // Write-ahead: the record first; a retry after a failed deletion finds
    // the same RoleBindings and the same entry.
    let happened = [crate::policy::binding::persistence_found(&b.spec, names, revoke)];
    super::record_transitions(
        ctx,
        &ns,
        transitions::binding_chain(b),
        &transitions::object_of(b),
        &happened,
    )
    .await?;
    if revoke {
        for n in &found {
            rbac::apply::delete_native(
                &ctx.client,
                &n.namespace().unwrap_or_default(),
                &n.name_any(),
                n.metadata.uid.as_deref(),
            )
            .await
            .map_err(kube_err("delete a grantee's rolebinding"))?;
        }
    }
    ctx.announce(&b.object_ref(&()), &happened).await;
    Ok(())
}

/// Whether the holder of `b` created `n` while the grant was active: the
/// creator stamp names the subject user, or a creator in the subject group.
fn made_by_holder(n: &NativeBinding, b: &RoleBinding, since: DateTime<Utc>) -> bool {
    let created = n.metadata.creation_timestamp.as_ref().map(crate::api::time::from_k8s);
    if created.is_none_or(|c| c < since.checked_sub_signed(chrono::Duration::seconds(1)).unwrap_or(since)) {
        return false;
    }
    let annotations = n.metadata.annotations.as_ref();
    let Some(creator) = annotations.and_then(|a| a.get(crate::wire::CREATED_BY_ANNOTATION)) else {
        return false;
    };
    let subject = &b.spec.subject;
    match subject.kind {
        crate::api::SubjectKind::User => *creator == subject.name,
        crate::api::SubjectKind::Group => {
            creator_groups(annotations, creator).is_some_and(|groups| groups.contains(&subject.name))
        }
    }
}
