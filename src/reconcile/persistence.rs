//! DESIGN §2, invariant 10: access a grantee made for themselves during a
//! project-role grant. When the grant ends, the objects that carry access
//! which its holder created in the project's tenant namespaces while it was
//! active (the admission stamp `foureyes.dev/created-by` names their
//! creator) are reported, or deleted where the workspace's `persistence` is
//! `Revoke`: RoleBindings, and ServiceAccount token Secrets.
//!
//! The operator reads Secrets only in the tenant namespaces its projects
//! hold, and only their metadata: the RoleBinding `foureyes-token-finder`
//! that the project reconciler puts in each (see `crate::rbac::build`)
//! grants it `list` and `delete` there and nowhere else.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::RoleBinding as NativeBinding;
use kube::api::{Api, ListParams};
use kube::{Resource, ResourceExt};
use tracing::warn;

use super::{Context, Error, kube_err};
use crate::api::{Persistence, RoleBinding, RoleBindingStatus};
use crate::audit::transitions;
use crate::policy::persistence::made_by_holder;
use crate::policy::transition::{Persisted, PersistedKind};
use crate::rbac;
use crate::wire::TOKEN_SECRET_SELECTOR;

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
    let subject = &b.spec.subject;
    let mut found: Vec<(Persisted, Option<String>)> = vec![];
    for tenant in &previous.namespaces {
        let bindings: Api<NativeBinding> = Api::namespaced(ctx.client.clone(), tenant);
        // All of them: a label is no proof of who made it (the operator's own
        // carry the operator as their creator, and are left out by that).
        let list = bindings
            .list_metadata(&ListParams::default())
            .await
            .map_err(kube_err("list tenant rolebindings"))?;
        found.extend(
            list.items
                .into_iter()
                .filter(|n| made_by_holder(&n.metadata, subject, since))
                .map(|n| found_one(PersistedKind::RoleBinding, tenant, n.metadata)),
        );
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), tenant);
        match secrets
            .list_metadata(&ListParams::default().fields(TOKEN_SECRET_SELECTOR))
            .await
        {
            Ok(list) => found.extend(
                list.items
                    .into_iter()
                    .filter(|s| made_by_holder(&s.metadata, subject, since))
                    .map(|s| found_one(PersistedKind::TokenSecret, tenant, s.metadata)),
            ),
            // The token finder's RoleBinding is not there (yet): the grant's
            // end must not wait for it; the RoleBindings were looked at.
            Err(kube::Error::Api(s)) if s.code == 403 => {
                warn!(namespace = %tenant, message = %s.message, "cannot list token Secrets in a tenant namespace; is the RoleBinding foureyes-token-finder there?");
            }
            Err(e) => return Err(kube_err("list tenant token secrets")(e)),
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    found.sort();
    let revoke = policy == Persistence::Revoke;
    // Write-ahead: the record first; a retry after a failed deletion finds
    // the same objects and the same entry.
    let happened = [crate::policy::binding::persistence_found(
        &b.spec,
        found.iter().map(|(p, _)| p.clone()).collect(),
        revoke,
    )];
    super::record_transitions(
        ctx,
        &ns,
        transitions::binding_chain(b),
        &transitions::object_of(b),
        &happened,
    )
    .await?;
    if revoke {
        for (p, uid) in &found {
            let uid = uid.as_deref();
            match p.kind {
                PersistedKind::RoleBinding => rbac::apply::delete_native(&ctx.client, &p.namespace, &p.name, uid)
                    .await
                    .map_err(kube_err("delete a grantee's rolebinding"))?,
                PersistedKind::TokenSecret => {
                    rbac::apply::delete_exactly::<Secret>(&ctx.client, &p.namespace, &p.name, uid)
                        .await
                        .map_err(kube_err("delete a grantee's token secret"))?
                }
            };
        }
    }
    ctx.announce(&b.object_ref(&()), &happened).await;
    Ok(())
}

/// One object found, with its uid (deleted only if it is still that one).
fn found_one(
    kind: PersistedKind,
    tenant: &str,
    meta: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> (Persisted, Option<String>) {
    (
        Persisted {
            kind,
            namespace: tenant.to_owned(),
            name: meta.name.unwrap_or_default(),
        },
        meta.uid,
    )
}
