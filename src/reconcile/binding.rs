//! The foureyes `RoleBinding` reconciler: gathers the workspace, project,
//! origin request and manager set, asks the policy what should be true, then
//! applies native RBAC, removes what should not exist, writes the status if
//! it changed, and wakes up again exactly at the expiry.

use crate::wire::{BINDING_UID_LABEL, MANAGED_BY, MANAGED_BY_LABEL};
use std::sync::Arc;

use chrono::Utc;
use k8s_openapi::api::rbac::v1::RoleBinding as NativeBinding;
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use tracing::{info, warn};

use super::{Context, Error, describe, kube_err};
use crate::api::time::from_k8s;
use crate::api::{BindingPhase, RequestPhase, RoleBinding};
use crate::audit::transitions::{self, object_of};
use crate::policy::binding::{
    self as policy, BindingDecision, BindingFacts, OriginFacts, binding_status, decide_binding,
};
use crate::policy::facts::{Vantage, binding_world};
use crate::rbac::{self, NativeGrant, Owner};

/// How long after an expiry its record (history, status, event) waits, so
/// that simultaneous expiries revoke first and record afterwards.
const RECORD_AFTER_EXPIRY: std::time::Duration = std::time::Duration::from_millis(1500);

impl super::scaffold::Reconciled for RoleBinding {
    type Status = crate::api::RoleBindingStatus;

    fn api(client: kube::Client, namespace: Option<&str>) -> Api<Self> {
        Api::namespaced(client, namespace.unwrap_or_default())
    }

    fn own_statuses(own: &super::OwnWrites) -> Option<&super::overlay::Overlay<Self::Status>> {
        Some(&own.binding_statuses)
    }

    async fn apply(obj: Arc<Self>, ctx: &Context) -> Result<Action, Error> {
        apply(obj, ctx).await
    }

    async fn cleanup(obj: Arc<Self>, ctx: &Context) -> Result<Action, Error> {
        cleanup(obj, ctx).await
    }
}

/// Activates a binding that this process just created (the request's
/// reconcile, from the create's response): one pass of its reconciler, at
/// once. A failure is left to the binding's controller, which the watch
/// brings the binding to anyway.
pub async fn activate(b: Arc<RoleBinding>, ctx: &Context) {
    if let Err(err) = apply(b.clone(), ctx).await {
        warn!(binding = describe(b.as_ref()), %err, "activation of a new binding failed; its controller retries");
    }
}

async fn apply(b: Arc<RoleBinding>, ctx: &Context) -> Result<Action, Error> {
    let ns = b.namespace().ok_or(Error::Incomplete("namespace"))?;
    let name = b.name_any();
    let uid = b.uid().ok_or(Error::Incomplete("uid"))?;
    // One pass at a time per binding (see `OwnWrites::binding_passes`),
    // on the newest version the cache has: a pass that waited for another
    // may hold a version from before that pass's writes, whose overlay
    // entries the cache has forgotten since.
    let _pass = ctx.own.binding_passes.enter(&uid).await;
    let b = match ctx.bindings.get(&ObjectRef::from_obj(b.as_ref())) {
        Some(cached) if cached.uid().as_deref() == Some(uid.as_str()) => cached,
        _ => b,
    };
    let now = Utc::now();
    let created = b.metadata.creation_timestamp.as_ref().map(from_k8s).unwrap_or(now);

    // Gather the world.
    let world = binding_world(&ctx.world, &ns, &b.spec, now, Vantage::Operator);
    let workspace = world.workspace.clone();
    let ws_name = workspace.as_ref().map(|w| w.name_any());
    // `grantedBy` counts only if they wrote it, or a trusted asserter did.
    let written_in_name = crate::policy::identity::written_by_self_or_asserter(
        b.metadata.annotations.as_ref(),
        &b.spec.granted_by,
        &ctx.config.trusted_asserters,
    );
    // The ClusterRole it is fixed to: its own once in effect, else the one
    // its request was approved for.
    let origin_role = b.spec.origin_request.as_ref().and_then(|o| {
        ctx.requests
            .get(&ObjectRef::new(&o.name).within(&ns))
            .filter(|r| r.metadata.uid.as_deref() == Some(o.uid.as_str()))
            .and_then(|r| r.status.as_ref().and_then(|s| s.cluster_role.clone()))
    });
    // The request's decision as this process last wrote it or, once the
    // cache shows that, as cached (the binding can be reconciled before the
    // cache shows the approval that made it).
    let origin = b.spec.origin_request.as_ref().and_then(|o| {
        ctx.requests.get(&ObjectRef::new(&o.name).within(&ns)).map(|r| {
            let phase = ctx.request_status(&r).and_then(|s| s.phase);
            OriginFacts {
                uid_matches: r.metadata.uid.as_deref() == Some(o.uid.as_str()),
                approved: phase.is_some_and(|p| matches!(p, RequestPhase::Approved | RequestPhase::Granted)),
                undecided: !crate::policy::quorum::is_decided(phase),
            }
        })
    });
    // Our own last status write is newer than a cache that has not caught up
    // with it yet; deciding on the stale one would write again and announce
    // the same transition twice.
    let previous = ctx.binding_status(&b);
    let locks = ctx.lockouts_in_force(now);
    // The origin request's decision: the partner who approved it alone, if
    // one did, and the managers whose approvals counted.
    let origin_status = b.spec.origin_request.as_ref().and_then(|o| {
        ctx.requests
            .get(&ObjectRef::new(&o.name).within(&ns))
            .filter(|r| r.metadata.uid.as_deref() == Some(o.uid.as_str()))
            .and_then(|r| ctx.request_status(&r))
    });
    let origin_break_glass = origin_status.as_ref().and_then(|s| s.break_glass_by.clone());
    let origin_approvers = origin_status.map(|s| s.approved_by).unwrap_or_default();
    let ratifiers =
        crate::policy::ratification::ratifiers(&b.spec, b.metadata.annotations.as_ref(), &world.managers, &ctx.config);
    let locked_voters: Vec<String> = crate::policy::lockout::locked_ratifiers(
        &b.spec,
        b.metadata.annotations.as_ref(),
        &ctx.config.trusted_asserters,
        &locks,
    )
    .into_iter()
    .collect();
    let facts = BindingFacts {
        spec: &b.spec,
        created,
        previous: previous.as_ref(),
        workspace: world.workspace_facts(&ns),
        project: world.project_facts(),
        origin,
        pinned_cluster_role: previous
            .as_ref()
            .and_then(|s| s.cluster_role.as_deref())
            .or(origin_role.as_deref()),
        granted_by_partner: written_in_name && ctx.is_partner_creator(&b.spec.granted_by, &b.metadata),
        granted_by_groups: crate::policy::identity::creator_groups(b.metadata.annotations.as_ref(), &b.spec.granted_by),
        granted_by_manager: written_in_name && world.is_manager(&b.spec.granted_by),
        workspace_alive: ctx.workspace_alive(&ns, previous.as_ref().and_then(|s| s.workspace_uid.as_deref())),
        project_alive: world.project.as_ref().is_some_and(|p| {
            previous
                .as_ref()
                .and_then(|s| s.project_uid.as_deref())
                .is_none_or(|uid| p.uid().as_deref() == Some(uid))
        }),
        stamps_trusted: ctx.anchors_intact(),
        lockout: locks.subject(&b.spec.subject),
        origin_break_glass: origin_break_glass.as_deref(),
        origin_approvers: &origin_approvers,
        ratifiers: &ratifiers,
        locked_voters: &locked_voters,
        config: &ctx.config,
        now,
    };

    // Decide.
    let decision = decide_binding(&facts);

    if decision.delete_record {
        info!(binding = %format!("{ns}/{name}"), "retention over; deleting the record");
        // Write-ahead: the removal is the operator's own, so it is recorded
        // with the operator as actor; the cleanup's entry then finds the key.
        let removed = [policy::removed(
            &b.spec,
            b.status.as_ref(),
            format!("retention of {} ended", ctx.config.retention),
            true,
        )];
        super::record_transitions(
            ctx,
            &ns,
            transitions::binding_chain(&b),
            &object_of(b.as_ref()),
            &removed,
        )
        .await?;
        ctx.announce(&b.object_ref(&()), &removed).await;
        Api::<RoleBinding>::namespaced(ctx.client.clone(), &ns)
            .delete(&name, &Default::default())
            .await
            .map_err(kube_err("delete record"))?;
        return Ok(Action::await_change());
    }

    // Act: native RBAC first, then the status that reports it.
    let was_active = previous.as_ref().and_then(|s| s.phase) == Some(BindingPhase::Active);
    let natives_at = std::time::Instant::now();
    let (drift, revoked) = sync_natives(
        &b,
        ctx,
        &decision,
        ws_name.as_deref().unwrap_or_default(),
        &uid,
        was_active,
    )
    .await?;
    if !was_active && decision.phase == BindingPhase::Active {
        tracing::debug!(
            binding = %format!("{ns}/{name}"),
            natives_us = natives_at.elapsed().as_micros() as u64,
            "native RBAC in place"
        );
    }
    // When many grants expire at once, the record of each (history, status,
    // event) waits until shortly after its expiry, so that the API server
    // takes every due revocation first: native RBAC is already gone here.
    if decision.phase == BindingPhase::Expired
        && previous.as_ref().and_then(|s| s.phase) == Some(BindingPhase::Active)
        && let Some(expired) = decision.expires_at
    {
        let record_at = expired + chrono::Duration::from_std(RECORD_AFTER_EXPIRY).unwrap_or_default();
        if Utc::now() < record_at {
            return Ok(Action::requeue((record_at - Utc::now()).to_std().unwrap_or_default()));
        }
    }
    // A lockout ends all of its subject's grants at once: their records
    // wait until shortly after the lockout's creation, as an expiry's do,
    // so that the API server takes every revocation first (a pass woken by
    // the deletion of its native binding would otherwise record at once).
    if previous.as_ref().and_then(|s| s.phase) != Some(BindingPhase::Revoked)
        && let Some(policy::Revoked::LockedOut(hit)) = &decision.revoked
        && let Some(since) = hit.since
    {
        // (Creation times have whole seconds: one more second covers that.)
        let record_at =
            since + chrono::Duration::seconds(1) + chrono::Duration::from_std(RECORD_AFTER_EXPIRY).unwrap_or_default();
        if Utc::now() < record_at {
            return Ok(Action::requeue((record_at - Utc::now()).to_std().unwrap_or_default()));
        }
    }
    if revoked && decision.phase != BindingPhase::Active {
        // Access is gone. Recording it (status, event) waits for the next
        // pass, so that when many grants end at once every revocation is
        // sent before any bookkeeping.
        return Ok(Action::requeue(std::time::Duration::ZERO));
    }
    let previous_phase = previous.as_ref().and_then(|s| s.phase);
    let status = binding_status(&decision, previous.as_ref(), b.metadata.generation, now);
    // "Not yet" on a binding that never had a status is not worth a write.
    // (Held back for the admission policies is worth saying, though.)
    let transient_only = previous.is_none()
        && decision
            .refusal
            .as_ref()
            .is_some_and(|r| r.is_transient() && *r != crate::policy::binding::Refusal::AdmissionPoliciesUntrusted);
    let mut happened = policy::transitions(&b.spec, b.metadata.annotations.as_ref(), previous.as_ref(), &decision);
    let expired_here = |ctx: &Context| {
        ctx.own
            .expired_here
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&uid)
    };
    for t in &mut happened {
        if let crate::policy::transition::Kind::Expired {
            was_active: true,
            already_removed,
            ..
        } = &mut t.kind
        {
            *already_removed = !expired_here(ctx);
        }
    }
    if previous.as_ref() != Some(&status) && !transient_only {
        // Write-ahead: the history entry before the status that reports the
        // transition (on the revocation path, after the native RBAC is gone).
        super::record_transitions(
            ctx,
            &ns,
            transitions::binding_chain(&b),
            &object_of(b.as_ref()),
            &happened,
        )
        .await?;
        // A project role ends: what its holder made for themselves meanwhile.
        if let Some(before) = previous.as_ref()
            && previous_phase == Some(BindingPhase::Active)
            && matches!(decision.phase, BindingPhase::Expired | BindingPhase::Revoked)
            && b.spec.project.is_some()
        {
            let policy = workspace.as_ref().map(|w| w.spec.persistence).unwrap_or_default();
            super::persistence::at_grant_end(ctx, &b, before, policy).await?;
        }
        super::scaffold::write_status(ctx, b.as_ref(), previous.as_ref(), &status).await?;
        if decision.phase != BindingPhase::Active {
            ctx.own
                .expired_here
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&uid);
            forget_reminder(ctx, &uid);
        }
    }
    let reference = b.object_ref(&());
    if !drift.is_empty() {
        ctx.announce(&reference, &[policy::drift_corrected(&b.spec, drift)])
            .await;
    }
    // A grant about to expire: said once, at its instant (an event and a
    // notification; the history records the expiry itself).
    let reminder_at = policy::expiry_reminder_at(
        &decision,
        status.activated_at,
        ctx.config.notifications.expiry_lead_time.to_chrono(),
        ctx.acting_since,
    );
    if reminder_at.is_some_and(|at| at <= now)
        && ctx
            .own
            .reminded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid.clone())
    {
        happened.push(policy::expiring_soon(&b.spec, &decision));
    }
    ctx.announce(&reference, &happened).await;

    let wake_at = match (decision.wake_at, reminder_at.filter(|at| *at > now)) {
        (Some(a), Some(r)) => Some(a.min(r)),
        (a, r) => a.or(r),
    };
    Ok(match wake_at {
        // Waiting for the world to be set up: look again soon, whatever triggers arrive.
        _ if decision.refusal.as_ref().is_some_and(|r| r.is_transient()) => {
            Action::requeue(std::time::Duration::from_secs(1))
        }
        Some(at) => Action::requeue((at - Utc::now()).to_std().unwrap_or_default()),
        None => Action::await_change(),
    })
}

/// Forgets that this process announced the coming expiry of a grant that
/// ended.
fn forget_reminder(ctx: &Context, uid: &str) {
    ctx.own.reminded.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
}

/// Makes the native bindings match the decision. Returns the names of native
/// bindings of an active grant that had been edited or deleted by someone
/// else, and whether any native binding was removed.
async fn sync_natives(
    b: &RoleBinding,
    ctx: &Context,
    decision: &BindingDecision,
    workspace: &str,
    uid: &str,
    was_active: bool,
) -> Result<(Vec<String>, bool), Error> {
    let ns = b.namespace().unwrap_or_default();
    let name = b.name_any();
    let existing: Vec<Arc<NativeGrant>> = ctx.natives_of(uid);
    let mut drift = vec![];
    let mut desired_keys = vec![];
    if let (BindingPhase::Active, Some(expires_at)) = (decision.phase, decision.expires_at) {
        let owner = Owner {
            workspace,
            workspace_uid: decision.owners.workspace.as_deref(),
            project: b.spec.project.as_deref(),
            project_uid: decision.owners.project.as_deref(),
            namespace: &ns,
            name: &name,
            uid,
            subject: &b.spec.subject,
            expires_at,
        };
        for grant in &decision.grants {
            let desired = rbac::native_binding(&owner, grant);
            let key = (
                grant.namespace.clone(),
                desired.metadata.name.clone().unwrap_or_default(),
            );
            let current = existing.iter().find(|e| e.namespace == key.0 && e.name == key.1);
            desired_keys.push(key.clone());
            if current.is_some_and(|c| rbac::in_sync(c, &desired)) {
                continue;
            }
            // The cache may lag behind our own last write: ask the API server
            // before writing (a read is cheaper than a write, and not a drift).
            // A grant that was never active has nothing to find: it goes
            // straight to the apply, which is idempotent.
            if current.is_none() && was_active {
                let api: Api<NativeBinding> = Api::namespaced(ctx.client.clone(), &key.0);
                let live = api.get_opt(&key.1).await.map_err(kube_err("get native binding"))?;
                if live
                    .as_ref()
                    .is_some_and(|l| rbac::in_sync(&NativeGrant::from(l), &desired))
                {
                    continue;
                }
            }
            // The decision was taken at the start of this pass; under load the
            // expiry may have passed since. Never (re)create access after it.
            if expires_at <= Utc::now() {
                continue;
            }
            tracing::debug!(native = %format!("{}/{}", key.0, key.1), cached = current.is_some(), "native binding out of sync");
            if was_active {
                drift.push(format!("{}/{}", key.0, key.1));
            }
            match rbac::apply::apply(&ctx.client, &desired).await {
                Ok(_) => {}
                // A RoleBinding's roleRef cannot change: one made for another
                // role (the role map changed before this grant's ClusterRole
                // was fixed, as on an upgrade) is replaced, never left to
                // grant the old role while every apply fails.
                Err(kube::Error::Api(e)) if e.code == 422 && e.message.contains("roleRef") => {
                    let api: Api<NativeBinding> = Api::namespaced(ctx.client.clone(), &key.0);
                    let live = api.get_opt(&key.1).await.map_err(kube_err("get native binding"))?;
                    rbac::apply::delete_native(
                        &ctx.client,
                        &key.0,
                        &key.1,
                        live.and_then(|l| l.metadata.uid).as_deref(),
                    )
                    .await
                    .map_err(kube_err("delete native binding"))?;
                    rbac::apply::apply(&ctx.client, &desired)
                        .await
                        .map_err(kube_err("apply native binding"))?;
                }
                Err(e) => return Err(kube_err("apply native binding")(e)),
            }
        }
    }
    let mut revoked = false;
    for e in existing {
        let key = (e.namespace.clone(), e.name.clone());
        if desired_keys.contains(&key) || ctx.was_deleted(e.uid.as_deref()) {
            continue;
        }
        let deleted = rbac::apply::delete_native(&ctx.client, &key.0, &key.1, e.uid.as_deref())
            .await
            .map_err(kube_err("delete native binding"))?;
        ctx.mark_deleted(e.uid.as_deref());
        revoked = true;
        if deleted && decision.phase == BindingPhase::Expired {
            ctx.own
                .expired_here
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(uid.to_owned());
        }
        if decision.phase == BindingPhase::Expired
            && let Some(exp) = decision.expires_at
        {
            ctx.metrics
                .observe_revocation_lag((Utc::now() - exp).num_milliseconds().max(0) as f64 / 1000.0);
        }
    }
    Ok((drift, revoked))
}

/// Events on transitions, not on every pass.
/// A binding that is gone from the API server (the watch saw its deletion)
/// keeps no native RBAC: normally its finalizer removed it already and this
/// finds nothing; if someone stripped the finalizer first, this removes its
/// native bindings at once (not at the next sweep) and records the removal,
/// actor unknown (DESIGN §2, invariants 1 and 2).
pub async fn reap(b: &RoleBinding, ctx: &Context) -> Result<(), Error> {
    let Some(uid) = b.uid() else { return Ok(()) };
    let natives = ctx.natives_of(&uid);
    if natives.is_empty() {
        return Ok(());
    }
    let mut removed = 0;
    for n in &natives {
        if ctx.was_deleted(n.uid.as_deref()) {
            continue;
        }
        if rbac::apply::delete_native(&ctx.client, &n.namespace, &n.name, n.uid.as_deref())
            .await
            .map_err(kube_err("delete native binding"))?
        {
            removed += 1;
        }
        ctx.mark_deleted(n.uid.as_deref());
    }
    if removed == 0 {
        // The finalizer's cleanup had removed them (the cache was behind).
        return Ok(());
    }
    warn!(
        binding = describe(b),
        natives = removed,
        "binding deleted without its finalizer; native RBAC removed"
    );
    if let Some(ns) = b.namespace() {
        let removed = [policy::removed(
            &b.spec,
            b.status.as_ref(),
            "binding deleted without its finalizer".into(),
            false,
        )];
        match super::record_transitions(ctx, &ns, transitions::binding_chain(b), &object_of(b), &removed).await {
            Err(Error::History(e)) if e.is_namespace_gone() => {}
            other => other?,
        }
    }
    Ok(())
}

/// Deleting a binding removes its native RBAC everywhere (found by label, not
/// only in the cache, so that nothing is orphaned).
async fn cleanup(b: Arc<RoleBinding>, ctx: &Context) -> Result<Action, Error> {
    let uid = b.uid().ok_or(Error::Incomplete("uid"))?;
    forget_reminder(ctx, &uid);
    // A project role deleted while in force ends now: what its holder made
    // for themselves meanwhile is looked at as at any other end.
    if let Some(status) = b.status.as_ref().filter(|s| s.phase == Some(BindingPhase::Active))
        && b.spec.project.is_some()
    {
        let policy = ctx
            .workspace_of(&b.namespace().unwrap_or_default())
            .map(|w| w.spec.persistence)
            .unwrap_or_default();
        match super::persistence::at_grant_end(ctx, &b, status, policy).await {
            // Nothing left to record into; the deletion must not wait for it.
            Err(Error::History(e)) if e.is_namespace_gone() => {}
            other => other?,
        }
    }
    revoke_by_selector(
        ctx,
        &format!("{MANAGED_BY_LABEL}={MANAGED_BY},{BINDING_UID_LABEL}={uid}"),
    )
    .await?;
    if let Some(ns) = b.namespace() {
        // Who deleted it, the API server does not say. Deleting a
        // break-glass grant does not hide that nobody ratified it.
        let role = crate::policy::Role::of_binding(&b.spec)
            .map(|r| r.label())
            .unwrap_or_default();
        let unratified = crate::policy::ratification::deleted_unratified(
            &b.spec,
            &role,
            b.status.as_ref().and_then(|s| s.ratification.as_ref()),
        );
        let removed: Vec<_> = unratified
            .into_iter()
            .chain([policy::removed(
                &b.spec,
                b.status.as_ref(),
                "binding deleted".into(),
                false,
            )])
            .collect();
        match super::record_transitions(
            ctx,
            &ns,
            transitions::binding_chain(&b),
            &object_of(b.as_ref()),
            &removed,
        )
        .await
        {
            // A namespace being deleted takes its history with it: nothing
            // left to record into, and the finalizer must not hold it up.
            Err(Error::History(e)) if e.is_namespace_gone() => {
                warn!(binding = describe(b.as_ref()), %e, "namespace gone; removal not recorded");
            }
            other => other?,
        }
        ctx.announce(&b.object_ref(&()), &removed).await;
    }
    Ok(Action::await_change())
}

/// Deletes every native binding matching a label selector, across namespaces.
pub async fn revoke_by_selector(ctx: &Context, selector: &str) -> Result<usize, Error> {
    let api: Api<NativeBinding> = Api::all(ctx.client.clone());
    let list = api
        .list_metadata(&ListParams::default().labels(selector))
        .await
        .map_err(kube_err("list native bindings"))?;
    let mut n = 0;
    for item in list.items {
        let (Some(ns), Some(name)) = (item.metadata.namespace.clone(), item.metadata.name.clone()) else {
            continue;
        };
        if rbac::apply::delete_native(&ctx.client, &ns, &name, item.metadata.uid.as_deref())
            .await
            .map_err(kube_err("delete native binding"))?
        {
            n += 1;
        }
        ctx.mark_deleted(item.metadata.uid.as_deref());
    }
    Ok(n)
}
