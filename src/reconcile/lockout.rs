//! The `Lockout` reconciler (DESIGN §7, procedure 6). It does not revoke
//! anything itself: the binding and request reconcilers consult the lockouts
//! in force (`World::lockouts_in_force`) and end what they hit, woken by the
//! lockout's watch (see `run::wakes`). This reconciler gathers what the
//! lockout hit, asks the policy for its status, marks it expired at its
//! expiry instant (the admission policy's parameter selector then leaves it
//! out), records it in the history of every workspace it touched, and, when
//! it is lifted (deleted), records that too before letting it go.

use std::sync::Arc;

use chrono::Utc;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::info;

use super::{Context, Error, kube_err};
use crate::api::time::from_k8s;
use crate::api::{BindingPhase, Lockout, SubjectKind};
use crate::audit::history::Chain;
use crate::audit::transitions::lockout_object;
use crate::policy::lockout::{self as policy, Asked, Held, LockoutFacts, decide_lockout};
use crate::policy::transition::Transition;
use crate::wire::{LIFTED_BY_ANNOTATION, LIFTED_REASON_ANNOTATION, LOCKOUT_EXPIRED_LABEL};

impl super::scaffold::Reconciled for Lockout {
    type Status = crate::api::LockoutStatus;

    fn api(client: kube::Client, _namespace: Option<&str>) -> Api<Self> {
        Api::all(client)
    }

    async fn apply(obj: Arc<Self>, ctx: &Context) -> Result<Action, Error> {
        let action = apply(obj, ctx).await;
        count_in_force(ctx);
        action
    }

    async fn cleanup(obj: Arc<Self>, ctx: &Context) -> Result<Action, Error> {
        let action = cleanup(obj, ctx).await;
        count_in_force(ctx);
        action
    }
}

/// `foureyes_active_lockouts`: how many are in force (no names in labels).
fn count_in_force(ctx: &Context) {
    let now = Utc::now();
    let n = ctx
        .lockouts
        .state()
        .iter()
        .filter(|l| {
            let created = l.metadata.creation_timestamp.as_ref().map(from_k8s).unwrap_or(now);
            policy::in_force(&l.spec, created, now)
        })
        .count();
    ctx.metrics.set_active_lockouts(n as i64);
}

async fn apply(l: Arc<Lockout>, ctx: &Context) -> Result<Action, Error> {
    let now = Utc::now();
    let name = l.name_any();
    let created = l.metadata.creation_timestamp.as_ref().map(from_k8s).unwrap_or(now);
    let subject = &l.spec.subject;

    // Gather: the subject's bindings and the requests that concern them.
    let workspace_of = |ns: &str| ctx.workspace_name_of(ns);
    let mut held_owned = vec![];
    for b in ctx.bindings.state() {
        if b.spec.subject != *subject {
            continue;
        }
        let Some(ws) = b.namespace().and_then(|ns| workspace_of(&ns)) else {
            continue;
        };
        let status = ctx.binding_status(&b);
        held_owned.push((
            ws,
            status.as_ref().and_then(|s| s.phase),
            status.and_then(|s| s.lockout),
        ));
    }
    let user = (subject.kind == SubjectKind::User).then_some(subject.name.as_str());
    let mut asked_owned = vec![];
    for r in ctx.requests.state() {
        let concerns = r.spec.subject == *subject
            || user.is_some_and(|u| r.spec.requester == u || r.spec.approvals.iter().any(|a| a.user == u));
        if !concerns {
            continue;
        }
        let Some(ws) = r.namespace().and_then(|ns| workspace_of(&ns)) else {
            continue;
        };
        let status = ctx.request_status(&r);
        asked_owned.push((
            ws,
            status.as_ref().and_then(|s| s.phase),
            status.and_then(|s| s.lockout),
        ));
    }
    let held: Vec<Held<'_>> = held_owned
        .iter()
        .map(|(ws, phase, lockout)| Held {
            workspace: ws,
            phase: *phase,
            lockout: lockout.as_deref(),
        })
        .collect();
    let asked: Vec<Asked<'_>> = asked_owned
        .iter()
        .map(|(ws, phase, lockout)| Asked {
            workspace: ws,
            phase: *phase,
            lockout: lockout.as_deref(),
        })
        .collect();
    let marked_expired = l
        .metadata
        .labels
        .as_ref()
        .is_some_and(|labels| labels.contains_key(LOCKOUT_EXPIRED_LABEL));
    let facts = LockoutFacts {
        name: &name,
        spec: &l.spec,
        created,
        generation: l.metadata.generation,
        previous: l.status.as_ref(),
        marked_expired,
        held: &held,
        asked: &asked,
        outside: ctx.outside.naming(subject),
        now,
    };

    // Decide.
    let decision = decide_lockout(&facts);

    // Act: the mark first (admission stops refusing), then the record, then
    // the status that reports it.
    let api: Api<Lockout> = Api::all(ctx.client.clone());
    if decision.mark_expired {
        info!(lockout = name, "expired; marking it so that admission stops refusing");
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { LOCKOUT_EXPIRED_LABEL: "true" } } })),
        )
        .await
        .map_err(kube_err("mark lockout expired"))?;
    }
    for (ws, transitions) in &decision.record {
        record_in_workspace(ctx, &l, ws, transitions).await?;
    }
    super::scaffold::write_status(ctx, l.as_ref(), l.status.as_ref(), &decision.status).await?;
    ctx.announce(&l.object_ref(&()), &decision.happened).await;

    Ok(match decision.wake_at {
        Some(at) => Action::requeue((at - Utc::now()).to_std().unwrap_or_default()),
        None => Action::await_change(),
    })
}

/// Appends `transitions` of the lockout to the workspace chain of `workspace`
/// (a deleted workspace keeps no new records).
async fn record_in_workspace(
    ctx: &Context,
    l: &Lockout,
    workspace: &str,
    transitions: &[Transition],
) -> Result<(), Error> {
    let Some(ws) = ctx.workspaces.get(&ObjectRef::new(workspace)) else {
        return Ok(());
    };
    match super::record_transitions(
        ctx,
        &ws.control_namespace(),
        Chain::workspace(),
        &lockout_object(l),
        transitions,
    )
    .await
    {
        Err(Error::History(e)) if e.is_namespace_gone() => Ok(()),
        other => other,
    }
}

/// Lifting: every binding it hit has recorded its end (so that nothing it
/// revoked can come back), the lifting is recorded in every workspace it
/// touched, and the lockout goes. Until then it stays, and so do its
/// refusals (the safe direction).
async fn cleanup(l: Arc<Lockout>, ctx: &Context) -> Result<Action, Error> {
    let subject = &l.spec.subject;
    let still_active = ctx.bindings.state().iter().any(|b| {
        b.spec.subject == *subject
            && ctx.binding_status(b).and_then(|s| s.phase) == Some(BindingPhase::Active)
            && policy::in_force(
                &l.spec,
                l.metadata
                    .creation_timestamp
                    .as_ref()
                    .map(from_k8s)
                    .unwrap_or_else(Utc::now),
                Utc::now(),
            )
    });
    if still_active {
        return Err(Error::Waiting("the lockout's revocations to be recorded"));
    }
    let annotations = l.metadata.annotations.as_ref();
    let by = annotations
        .and_then(|a| a.get(LIFTED_BY_ANNOTATION))
        .map(String::as_str);
    let why = annotations
        .and_then(|a| a.get(LIFTED_REASON_ANNOTATION))
        .map(String::as_str);
    let lifted = [policy::lifted(&l.name_any(), &l.spec, by, why)];
    for ws in l.status.iter().flat_map(|s| s.workspaces.iter()) {
        record_in_workspace(ctx, &l, ws, &lifted).await?;
    }
    info!(lockout = l.name_any(), by = by.unwrap_or("unknown"), "lockout lifted");
    ctx.announce(&l.object_ref(&()), &lifted).await;
    Ok(Action::await_change())
}
