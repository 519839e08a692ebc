//! `kubectl access ratify`: a manager's verdict, after the fact, on a
//! partner's break-glass grant: ratify it, or (`--object`) object to it,
//! which revokes it at once. The checks the plugin makes first, the patch
//! it sends, and the command, which waits a little for the operator's
//! reading.
//!
//! The API server and the operator remain the judges: the admission policy
//! ties the verdict to the caller, the CRD keeps verdicts append-only, and
//! the operator counts only a current manager who is neither the subject
//! nor the partner who broke the glass.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::cli::{Global, Output, RatifyArgs};
use super::common::{api_err, emit, emit_json, is_code, target, who};
use super::{NOT_IN_EFFECT, PluginError};
use crate::api::binding::MAX_RATIFICATIONS;
use crate::api::{Ratification, RatificationState, RoleBinding, SubjectKind, Verdict};

/// Why the plugin does not give a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RatifyRefusal {
    /// The binding is no break-glass grant (or one from before ratification).
    NotBreakGlass,
    /// A manager's verdict settled it already.
    Settled {
        /// Ratified or objected.
        state: RatificationState,
        /// By whom.
        by: String,
    },
    /// The caller is the binding's subject.
    IsSubject,
    /// The caller is the partner who broke the glass.
    BrokeGlass,
    /// The caller gave a verdict already (one not counted, since it is not
    /// settled).
    AlreadyGiven,
    /// The binding holds the most verdicts it can.
    Full,
}

impl RatifyRefusal {
    /// A message saying what happened and what to do instead.
    pub fn message(&self, binding: &str, me: &str) -> String {
        match self {
            RatifyRefusal::NotBreakGlass => format!(
                "binding {binding} is no break-glass grant awaiting ratification: only a partner's approval alone or direct project grant needs one"
            ),
            RatifyRefusal::Settled { state, by } => {
                format!("binding {binding} is already {state:?} by {by}: the first manager's verdict settles it")
            }
            RatifyRefusal::IsSubject => format!(
                "binding {binding} is yours ({me}): the subject never ratifies their own break-glass; ask another manager"
            ),
            RatifyRefusal::BrokeGlass => format!(
                "you ({me}) broke the glass for binding {binding}: a workspace manager other than you ratifies it"
            ),
            RatifyRefusal::AlreadyGiven => format!(
                "you ({me}) have already given a verdict on binding {binding}; see why it did not count with kubectl get frb {binding} -o yaml (status.ratification.ignored)"
            ),
            RatifyRefusal::Full => {
                format!("binding {binding} holds {MAX_RATIFICATIONS} verdicts, the most it can: revoke it instead")
            }
        }
    }
}

/// Whether `me` may usefully give a verdict on `binding` now.
pub fn check_ratify(binding: &RoleBinding, me: &str) -> Result<(), RatifyRefusal> {
    let Some(r) = binding.status.as_ref().and_then(|s| s.ratification.as_ref()) else {
        return Err(RatifyRefusal::NotBreakGlass);
    };
    if matches!(r.state, RatificationState::Ratified | RatificationState::Objected) {
        return Err(RatifyRefusal::Settled {
            state: r.state,
            by: r.by.clone().unwrap_or_default(),
        });
    }
    let subject = &binding.spec.subject;
    if subject.kind == SubjectKind::User && subject.name == me {
        return Err(RatifyRefusal::IsSubject);
    }
    if r.break_glass_by == me {
        return Err(RatifyRefusal::BrokeGlass);
    }
    if binding.spec.ratifications.iter().any(|v| v.user == me) {
        return Err(RatifyRefusal::AlreadyGiven);
    }
    if binding.spec.ratifications.len() >= MAX_RATIFICATIONS {
        return Err(RatifyRefusal::Full);
    }
    Ok(())
}

/// The verdict `me` gives.
pub fn verdict(me: &str, verdict: Verdict, comment: Option<String>, now: DateTime<Utc>) -> Ratification {
    Ratification {
        user: me.to_owned(),
        verdict,
        comment: comment.filter(|c| !c.trim().is_empty()),
        time: Some(now),
    }
}

/// A JSON patch (RFC 6902) that appends `v` to the binding's verdicts, only
/// if the binding is still at `resource_version`.
pub fn ratify_patch(binding: &RoleBinding, resource_version: &str, v: &Ratification) -> Value {
    let v = serde_json::to_value(v).unwrap_or(Value::Null);
    let append = if binding.spec.ratifications.is_empty() {
        json!({ "op": "add", "path": "/spec/ratifications", "value": [v] })
    } else {
        json!({ "op": "add", "path": "/spec/ratifications/-", "value": v })
    };
    json!([
        { "op": "test", "path": "/metadata/resourceVersion", "value": resource_version },
        append,
    ])
}

/// Gives the caller's verdict, then waits up to `--wait` for the operator
/// to read it.
pub(super) async fn command(client: &Client, g: &Global, a: &RatifyArgs) -> Result<u8, PluginError> {
    let me = who(client).await?;
    let t = target(client, g, &a.workspace).await?;
    let api = Api::<RoleBinding>::namespaced(client.clone(), &t.namespace);
    let kind = if a.object { Verdict::Object } else { Verdict::Ratify };
    if kind == Verdict::Object && a.comment.as_deref().is_none_or(|c| c.trim().is_empty()) {
        return Err(PluginError::Usage(
            "an objection revokes the grant: say why with --comment".into(),
        ));
    }
    let mut given = None;
    for _ in 0..5 {
        let b = match api.get(&a.name).await {
            Ok(b) => b,
            Err(e) if is_code(&e, 404) => {
                return Err(PluginError::NotFound(format!(
                    "binding {} not found in {}: list the grants with kubectl access list {}",
                    a.name,
                    t.namespace,
                    t.flag()
                )));
            }
            Err(e) => return Err(api_err(format!("reading binding {}", a.name))(e)),
        };
        check_ratify(&b, &me.user).map_err(|r| PluginError::Declined(r.message(&a.name, &me.user)))?;
        let rv = b.resource_version().unwrap_or_default();
        let v = verdict(&me.user, kind, a.comment.clone(), Utc::now());
        let patch = serde_json::from_value(ratify_patch(&b, &rv, &v))
            .map_err(|e| PluginError::Input(format!("building the patch: {e}")))?;
        match api
            .patch(&a.name, &PatchParams::default(), &Patch::Json::<()>(patch))
            .await
        {
            Ok(_) => {
                given = Some(v);
                break;
            }
            Err(e) if is_code(&e, 409) || is_code(&e, 422) => continue,
            Err(e) => return Err(api_err(format!("giving a verdict on binding {}", a.name))(e)),
        }
    }
    let Some(v) = given else {
        return Err(PluginError::Refused(format!(
            "binding {} kept changing while giving the verdict: try again",
            a.name
        )));
    };
    // The operator's reading: counted (settled), or ignored and why.
    let deadline = std::time::Instant::now() + a.wait.get();
    let mut last = None;
    loop {
        if let Ok(b) = api.get(&a.name).await {
            let r = b.status.as_ref().and_then(|s| s.ratification.clone());
            let read = r.as_ref().is_some_and(|r| {
                r.by.as_deref() == Some(me.user.as_str()) || r.ignored.iter().any(|i| i.user == me.user)
            });
            last = r;
            if read {
                break;
            }
        }
        if std::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let counted = last.as_ref().is_some_and(|r| r.by.as_deref() == Some(me.user.as_str()));
    let ignored = last
        .as_ref()
        .and_then(|r| r.ignored.iter().find(|i| i.user == me.user).map(|i| i.reason));
    if g.output == Output::Json {
        emit_json(&json!({
            "name": a.name, "namespace": t.namespace, "verdict": v,
            "counted": counted, "ignored": ignored, "ratification": last,
        }));
    } else {
        let what = match kind {
            Verdict::Ratify => "ratified",
            Verdict::Object => "objected to",
        };
        let outcome = match (counted, ignored) {
            (true, _) if kind == Verdict::Object => "the operator counted it: the grant is revoked".to_owned(),
            (true, _) => "the operator counted it: the break-glass is ratified".to_owned(),
            (false, Some(reason)) => format!("the operator did not count it: {reason:?}"),
            (false, None) => format!(
                "the operator has not read it yet; follow it with kubectl get frb {} -n {} -o wide",
                a.name, t.namespace
            ),
        };
        emit(&format!(
            "{what} break-glass binding {} in {} as {}\n{outcome}\n",
            a.name, t.namespace, me.user
        ));
    }
    Ok(if counted { 0 } else { NOT_IN_EFFECT })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RatificationStatus;

    fn binding(state: Option<RatificationState>, verdicts: &[&str]) -> RoleBinding {
        let mut b: RoleBinding = serde_json::from_value(json!({
            "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
            "metadata": { "name": "alice-admin", "namespace": "ws-a" },
            "spec": { "subject": { "kind": "User", "name": "alice" }, "project": "app", "projectRole": "admin",
                      "duration": "1h", "justification": "INC-7", "grantedBy": "pat" },
        }))
        .unwrap();
        b.spec.ratifications = verdicts
            .iter()
            .map(|u| verdict(u, Verdict::Ratify, None, Utc::now()))
            .collect();
        b.status = Some(crate::api::RoleBindingStatus {
            ratification: state.map(|state| RatificationStatus {
                state,
                break_glass_by: "pat".into(),
                deadline: Utc::now(),
                on_unratified: Default::default(),
                decided_on_verdicts: None,
                by: Some("carol".into()),
                at: None,
                comment: None,
                revoked: false,
                ignored: vec![],
            }),
            ..Default::default()
        });
        b
    }

    #[test]
    fn only_others_may_ratify_an_unsettled_break_glass() {
        use RatificationState::*;
        assert_eq!(check_ratify(&binding(Some(Awaiting), &[]), "bob"), Ok(()));
        assert_eq!(check_ratify(&binding(Some(Unratified), &[]), "bob"), Ok(()));
        assert_eq!(
            check_ratify(&binding(None, &[]), "bob"),
            Err(RatifyRefusal::NotBreakGlass)
        );
        assert!(matches!(
            check_ratify(&binding(Some(Ratified), &[]), "bob"),
            Err(RatifyRefusal::Settled { .. })
        ));
        assert_eq!(
            check_ratify(&binding(Some(Awaiting), &[]), "alice"),
            Err(RatifyRefusal::IsSubject)
        );
        assert_eq!(
            check_ratify(&binding(Some(Awaiting), &[]), "pat"),
            Err(RatifyRefusal::BrokeGlass)
        );
        assert_eq!(
            check_ratify(&binding(Some(Awaiting), &["bob"]), "bob"),
            Err(RatifyRefusal::AlreadyGiven)
        );
    }

    #[test]
    fn the_patch_appends_only_at_the_version_read() {
        let b = binding(Some(RatificationState::Awaiting), &[]);
        let v = verdict("bob", Verdict::Object, Some("  ".into()), Utc::now());
        assert_eq!(v.comment, None);
        let p = ratify_patch(&b, "42", &v);
        assert_eq!(p[0]["value"], "42");
        assert_eq!(p[1]["path"], "/spec/ratifications");
        let b = binding(Some(RatificationState::Awaiting), &["carol"]);
        assert_eq!(ratify_patch(&b, "43", &v)[1]["path"], "/spec/ratifications/-");
    }
}
