//! The trust anchors (DESIGN §2, invariant 3): checking that the admission
//! policies are in place, at start-up and then periodically, and reporting
//! when that changes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client};
use tracing::{info, warn};

use crate::audit::events::Events;
use crate::manifests;
use crate::policy::transition::reason;
use crate::reconcile::{Context, SyncTracker};
use crate::telemetry::{Health, Metrics};

/// Checks the anchors every sweep interval (every two seconds while they are
/// not intact or not readable) until `shutdown`; when they are restored,
/// decides again what waited for them.
pub(super) async fn check_every_interval(
    ctx: Arc<Context>,
    health: Arc<Health>,
    tracker: Arc<SyncTracker>,
    shutdown: impl Future<Output = ()> + Clone,
) {
    // Every sweep interval; every two seconds while not intact or
    // not readable, so that a restored policy is seen at once.
    let mut unsure = false;
    loop {
        let wait = if ctx.anchors_intact() && !unsure {
            ctx.config.sweep_interval.get()
        } else {
            Duration::from_secs(2).min(ctx.config.sweep_interval.get())
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.clone() => return,
        }
        let was = ctx.anchors_intact();
        let Some(problems) = check_anchors(&ctx.client).await else {
            unsure = true;
            continue;
        };
        unsure = false;
        report_anchors(&problems, &ctx.anchors, &ctx.metrics, &ctx.events, &health).await;
        if problems.is_empty() && !was {
            if tracker.pending().is_empty() {
                health.set_ready(true);
            }
            // What waited for the policies is decided now.
            for b in ctx.bindings.state() {
                let _ = ctx.triggers.bindings.send(ObjectRef::from_obj(b.as_ref()));
            }
        }
    }
}

/// DESIGN §2, invariant 3 rests on the admission policies: checks that each
/// policy and binding that `foureyes crds` prints is in place and unaltered
/// (see [`manifests::policy_drift`]); one line per problem, empty when
/// intact, `None` when one could not be read (a transient error, which
/// changes nothing: the previous verdict stands until the next check).
pub(super) async fn check_anchors(client: &Client) -> Option<Vec<String>> {
    use kube::core::{ApiResource, GroupVersionKind};
    let mut problems = vec![];
    for expected in manifests::admission_policies(crate::wire::PARAMS_NAMESPACE) {
        let kind = expected["kind"].as_str().unwrap_or_default();
        let name = expected["metadata"]["name"].as_str().unwrap_or_default();
        let gvk = GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", kind);
        let lower = kind.to_lowercase();
        let plural = match lower.strip_suffix('y') {
            Some(stem) => format!("{stem}ies"),
            None => format!("{lower}s"),
        };
        let ar = ApiResource::from_gvk_with_plural(&gvk, &plural);
        let api: Api<kube::api::DynamicObject> = Api::all_with(client.clone(), &ar);
        match api.get_opt(name).await {
            Ok(Some(live)) => {
                let live = serde_json::to_value(&live).unwrap_or_default();
                let drift = manifests::policy_drift(&expected, &live);
                if !drift.is_empty() {
                    problems.push(format!("{kind} {name} altered: {}", drift.join(", ")));
                }
            }
            Ok(None) => problems.push(format!("{kind} {name} missing")),
            Err(err) => {
                warn!(%err, kind, name, "cannot read an admission policy; checking again soon");
                return None;
            }
        }
    }
    Some(problems)
}

/// Records the outcome of [`check_anchors`] when it changes: the flag the
/// reconcilers read, the metric, readiness, a log line and a Warning event.
pub(super) async fn report_anchors(
    problems: &[String],
    anchors: &std::sync::atomic::AtomicBool,
    metrics: &Metrics,
    publisher: &Events,
    health: &Health,
) {
    let intact = problems.is_empty();
    metrics.set_admission_policies_intact(intact);
    let was = anchors.swap(intact, std::sync::atomic::Ordering::SeqCst);
    if intact {
        if !was {
            info!("admission policies in place");
        }
        return;
    }
    let summary = problems.join("; ");
    health.set_not_ready_reason(format!("admission policies missing or altered: {summary}"));
    warn!(problems = %summary, "admission policies missing or altered: no new grant is authorised and no request decided until they are restored");
    if was {
        let reference = ObjectReference {
            api_version: Some("admissionregistration.k8s.io/v1".into()),
            kind: Some("ValidatingAdmissionPolicy".into()),
            name: Some(crate::wire::IDENTITY_POLICY.into()),
            ..Default::default()
        };
        publisher
            .publish(&reference, true, reason::ADMISSION_POLICIES_ALTERED, "Check", summary)
            .await;
    }
}
