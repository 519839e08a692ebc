//! The `RoleRequest` reconciler: gathers the workspace, its current managers
//! and what is known of each voter, asks the quorum policy what should be
//! true, then records the decision in the history (write-ahead), creates the
//! RoleBinding of an approved request, writes the status, and wakes up again
//! at the pending timeout.
//!
//! The binding is named after the request and carries `originRequest` (name
//! and uid); it is created by the operator's identity, which the admission
//! policy requires for that field. It has no owner reference: deleting the
//! request does not take the access away (revoke the binding for that), and
//! the binding stays as the record for its retention period.

use crate::wire::APPROVED_BY_ANNOTATION;
use std::sync::Arc;

use chrono::Utc;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use std::time::{Duration, Instant};
use tracing::{Instrument as _, debug, debug_span, info, warn};

use super::{Context, Error, kube_err};
use crate::api::time::from_k8s;
use crate::api::{OriginRequest, RequestPhase, RoleBinding, RoleBindingSpec, RoleRequest};
use crate::audit::transitions;
use crate::policy::binding::Refusal;
use crate::policy::facts::{made_from, request_world};
use crate::policy::quorum::{
    self as quorum, ExistingBinding, RequestFacts, RequestWorkspace, decide_request, qualifying_managers,
    request_status, requester, voters,
};
use crate::policy::role::{Role, resolve_cluster_role};

impl super::scaffold::Reconciled for RoleRequest {
    type Status = crate::api::RoleRequestStatus;
    const FINALIZED: bool = false;

    fn api(client: kube::Client, namespace: Option<&str>) -> Api<Self> {
        Api::namespaced(client, namespace.unwrap_or_default())
    }

    fn own_statuses(own: &super::OwnWrites) -> Option<&super::overlay::Overlay<Self::Status>> {
        Some(&own.request_statuses)
    }

    async fn apply(obj: Arc<Self>, ctx: &Context) -> Result<Action, Error> {
        apply(&obj, ctx).await
    }
}

async fn apply(r: &RoleRequest, ctx: &Context) -> Result<Action, Error> {
    // How long the change waited for this pass (the approval path's timings).
    let started = Instant::now();
    let waited = r
        .metadata
        .uid
        .as_deref()
        .and_then(|uid| ctx.own.request_arrivals.take(uid))
        .map(|at| started.saturating_duration_since(at));
    if r.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if !ctx.anchors_intact() {
        // Votes and their groups rest on the admission policies: without
        // them nothing is decided (the check wakes every request again).
        return Ok(Action::requeue(std::time::Duration::from_secs(5)));
    }
    let now = Utc::now();
    let ns = r.namespace().ok_or(Error::Incomplete("namespace"))?;
    let name = r.name_any();
    let uid = r.uid().ok_or(Error::Incomplete("uid"))?;
    let created = r.metadata.creation_timestamp.as_ref().map(from_k8s).unwrap_or(now);
    let role = Role::of_request(&r.spec);

    // Gather the world.
    let world = request_world(&ctx.world, &ns, r, Some(&uid), now);
    let (workspace, managers) = (&world.workspace, &world.managers);
    let qualifying_managers = qualifying_managers(&r.spec, managers);
    let voters = voters(
        &r.spec,
        r.metadata.annotations.as_ref(),
        r.spec.approvals.len(),
        managers,
        &ctx.config,
    );
    let requester = requester(&r.spec, r.metadata.annotations.as_ref(), managers, &ctx.config);
    let role_problem = match &role {
        None => Some((
            "InvalidSpec",
            "exactly one of spec.workspaceRole or spec.project with spec.projectRole must be set".to_owned(),
        )),
        Some(role) => role_problem(ctx, &ns, role),
    };
    let previous = ctx.request_status(r);
    let ws_name = workspace.as_ref().map(|w| w.name_any());
    let locks = ctx.lockouts_in_force(now);
    let locked_voters: Vec<String> = crate::policy::lockout::locked_voters(
        &r.spec,
        r.metadata.annotations.as_ref(),
        &ctx.config.trusted_asserters,
        &locks,
    )
    .into_iter()
    .collect();
    let facts = RequestFacts {
        spec: &r.spec,
        created,
        previous: previous.as_ref(),
        workspace: workspace.as_ref().map(|w| RequestWorkspace {
            policy: &w.spec.approval_policy,
            max_duration: &w.spec.max_duration,
            qualifying_managers,
        }),
        role_problem,
        requester,
        voters: &voters,
        binding: world.binding,
        lockout: locks.subject(&r.spec.subject),
        locked_voters: &locked_voters,
        now,
    };

    // Decide.
    let mut decision = decide_request(&facts);
    let role_label = role.as_ref().map(Role::label);

    // Act. The history before the status that reports it (write-ahead): a
    // crash before the status write records the same entries again, which
    // the idempotency keys absorb.
    let happened = quorum::transitions(&r.spec, r.metadata.annotations.as_ref(), previous.as_ref(), &decision);
    let object = transitions::object_of(r);
    let record = super::record_transitions(ctx, &ns, transitions::request_chain(r), &object, &happened);
    let mut announced_from = previous.clone();
    let decided = request_status(
        &decision,
        previous.as_ref(),
        role_label.clone(),
        None,
        r.metadata.generation,
        now,
    );
    // Where an approval's time goes: its record, the binding's creation and
    // activation (native RBAC, record, status).
    let mut timings: Option<[Duration; 4]> = None;
    let status = match decision.create_binding.clone() {
        None => {
            record.await?;
            decided
        }
        // Approved: the binding is created before the status reports the
        // approval, so that an approval costs one status write. The binding
        // waits while its request still looks undecided; this process
        // holds the approval as its own write about to be made, and after a
        // crash the request is decided again (with the managers of then)
        // before its binding can act.
        Some(plan) => {
            let approved = decided;
            ctx.own.request_statuses.wrote(&uid, None, approved.clone());
            // The record and the binding at once, so that the access does
            // not wait for the history: the record is queued on its chain
            // first (the binding's own entries queue behind it), and the
            // request's status waits for both. The binding is activated
            // at once from the create's response (its native RBAC, record
            // and status), not when the watch brings it to its controller.
            let decided_in = started.elapsed();
            let record = async {
                let at = Instant::now();
                (record.await, at.elapsed())
            }
            .instrument(debug_span!("record"));
            let activate = async {
                let at = Instant::now();
                let (outcome, created) = create_binding(ctx, r, &uid, &plan, &decision)
                    .instrument(debug_span!("create binding"))
                    .await?;
                let create_took = at.elapsed();
                if let Some(created) = created {
                    super::binding::activate(Arc::new(created), ctx)
                        .instrument(debug_span!("activate binding"))
                        .await;
                }
                Ok((outcome, create_took, at.elapsed() - create_took))
            };
            let ((recorded, record_took), outcome) = futures::join!(record, activate);
            let outcome = outcome.map(|(outcome, create_took, activate_took)| {
                timings = Some([decided_in, record_took, create_took, activate_took]);
                outcome
            });
            let outcome = match (recorded, outcome) {
                (Ok(()), Ok(outcome @ ExistingBinding::Ours)) => outcome,
                (Ok(()), Ok(outcome)) => {
                    forget_approval(ctx, &uid);
                    outcome
                }
                (Err(e), _) | (_, Err(e)) => {
                    // Not approved after all, as far as this process knows:
                    // the retry decides again (a Deny that came in between
                    // wins), and the binding waits for the recorded status.
                    forget_approval(ctx, &uid);
                    return Err(e);
                }
            };
            // Events after the binding: they are the live view, and the
            // access should not wait for them. The decision and the
            // binding it created are one event.
            let mut told = happened.clone();
            if outcome == ExistingBinding::Ours {
                told.push(quorum::binding_created(&r.spec, &name, &plan));
            }
            ctx.announce(&r.object_ref(&()), &told).await;
            announced_from = Some(approved.clone());
            decision = decide_request(&RequestFacts {
                previous: Some(&approved),
                binding: outcome,
                ..facts
            });
            request_status(
                &decision,
                Some(&approved),
                role_label.clone(),
                (outcome == ExistingBinding::Ours).then(|| name.clone()),
                r.metadata.generation,
                now,
            )
        }
    };
    // The ClusterRole the approvers signed for: fixed from the approval on.
    let mut status = status;
    if matches!(status.phase, Some(RequestPhase::Approved | RequestPhase::Granted)) && status.cluster_role.is_none() {
        status.cluster_role = resolved_cluster_role(ctx, &ns, role.as_ref());
    }
    status.permissions = permissions(ctx, &ns, role.as_ref(), &status).await;
    let status_at = Instant::now();
    if let Err(e) = super::scaffold::write_status(ctx, r, previous.as_ref(), &status)
        .instrument(debug_span!("request status"))
        .await
    {
        forget_approval(ctx, &uid);
        return Err(e);
    }
    if let Some([decide, record, create, activate]) = timings {
        debug!(
            request = %format!("{ns}/{name}"),
            waited_us = waited.map(|w| w.as_micros() as u64),
            decide_us = decide.as_micros() as u64,
            record_us = record.as_micros() as u64,
            create_us = create.as_micros() as u64,
            activate_us = activate.as_micros() as u64,
            status_us = status_at.elapsed().as_micros() as u64,
            total_us = started.elapsed().as_micros() as u64,
            "approval applied"
        );
    }
    let happened = quorum::transitions(
        &r.spec,
        r.metadata.annotations.as_ref(),
        announced_from.as_ref(),
        &decision,
    );
    // Who the request waits for, for its notification.
    let awaited = if ctx.notifier.is_enabled() {
        quorum::awaited_approvers(&r.spec, managers, &decision)
    } else {
        vec![]
    };
    ctx.announce_to(&r.object_ref(&()), &happened, &awaited).await;
    if previous.as_ref().and_then(|s| s.phase) != status.phase {
        info!(
            request = %format!("{ns}/{name}"),
            workspace = ws_name.as_deref().unwrap_or_default(),
            phase = ?status.phase,
            approvals = status.approvals.as_deref().unwrap_or_default(),
            "request decided"
        );
    }

    Ok(match decision.wake_at {
        Some(at) => Action::requeue((at - Utc::now()).to_std().unwrap_or_default()),
        None => Action::await_change(),
    })
}

/// Forgets that this process approved the request: only its recorded status
/// authorises its binding from now on (SECURITY F21).
fn forget_approval(ctx: &Context, uid: &str) {
    ctx.own.request_statuses.discard(uid);
}

/// Why the requested role cannot be granted, with the reasons a binding for
/// it would be refused with.
fn role_problem(ctx: &Context, ns: &str, role: &Role) -> Option<(&'static str, String)> {
    let Role::Project { project, role } = role else {
        return None;
    };
    let refusal = match ctx
        .projects
        .get(&ObjectRef::new(project).within(ns))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        None => Refusal::ProjectNotFound(project.clone()),
        Some(p) => match resolve_cluster_role(role, &p.spec.role_map, &ctx.config.role_map, &ctx.config.allowed()) {
            Ok(_) => return None,
            Err(e) => Refusal::from(e),
        },
    };
    Some((refusal.reason(), refusal.message()))
}

/// The ClusterRole a project role resolves to now, if it does.
fn resolved_cluster_role(ctx: &Context, ns: &str, role: Option<&Role>) -> Option<String> {
    let Some(Role::Project { project, role }) = role else {
        return None;
    };
    let p = ctx.projects.get(&ObjectRef::new(project).within(ns))?;
    resolve_cluster_role(role, &p.spec.role_map, &ctx.config.role_map, &ctx.config.allowed()).ok()
}

/// What the approvers sign: what the requested project role's ClusterRole
/// grants, read while the request is open (so that it follows the role map
/// and the ClusterRole), fixed once it is decided. A failed read keeps what
/// was read before: the summary informs, it decides nothing.
async fn permissions(
    ctx: &Context,
    ns: &str,
    role: Option<&Role>,
    status: &crate::api::RoleRequestStatus,
) -> Option<crate::api::Permissions> {
    let open = matches!(
        status.phase,
        None | Some(RequestPhase::Pending | RequestPhase::QuorumUnreachable)
    );
    let cluster_role = match status.phase {
        _ if open => resolved_cluster_role(ctx, ns, role)?,
        Some(RequestPhase::Approved | RequestPhase::Granted) if status.permissions.is_none() => {
            status.cluster_role.clone()?
        }
        _ => return status.permissions.clone(),
    };
    match ctx.grants.of(&ctx.client, &cluster_role).await {
        Ok(read) => read,
        Err(e) => {
            warn!(cluster_role, %e, "cannot read what the ClusterRole grants");
            status.permissions.clone()
        }
    }
}

/// Creates the binding of an approved request (idempotent: an existing one
/// is looked at, never replaced), and returns it as created when this call
/// created it.
async fn create_binding(
    ctx: &Context,
    r: &RoleRequest,
    uid: &str,
    plan: &crate::policy::quorum::BindingPlan,
    decision: &crate::policy::quorum::RequestDecision,
) -> Result<(ExistingBinding, Option<RoleBinding>), Error> {
    let ns = r.namespace().ok_or(Error::Incomplete("namespace"))?;
    let name = r.name_any();
    let approved_by = match &decision.break_glass_by {
        Some(partner) => partner.clone(),
        None => decision.approved_by.join(","),
    };
    let mut binding = RoleBinding::new(
        &name,
        RoleBindingSpec {
            subject: r.spec.subject.clone(),
            workspace_role: r.spec.workspace_role,
            project: r.spec.project.clone(),
            project_role: r.spec.project_role.clone(),
            expires_at: None,
            duration: Some(plan.duration.clone()),
            justification: r.spec.justification.clone(),
            granted_by: plan.granted_by.clone(),
            origin_request: Some(OriginRequest {
                name: name.clone(),
                uid: uid.to_owned(),
            }),
            revocation: None,
            ratifications: vec![],
        },
    );
    binding.metadata.namespace = Some(ns.clone());
    binding.metadata.annotations = Some([(APPROVED_BY_ANNOTATION.to_owned(), approved_by)].into());
    // Created with the finalizer in place: one write less than adding it later.
    binding.metadata.finalizers = Some(vec![super::FINALIZER.to_owned()]);
    let api: Api<RoleBinding> = Api::namespaced(ctx.client.clone(), &ns);
    match api.create(&PostParams::default(), &binding).await {
        Ok(created) => Ok((ExistingBinding::Ours, Some(created))),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let existing = api.get(&name).await.map_err(kube_err("get binding"))?;
            Ok((made_from(&existing, Some(uid)), None))
        }
        Err(e) => Err(kube_err("create binding")(e)),
    }
}
