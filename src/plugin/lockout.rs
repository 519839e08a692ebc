//! `kubectl access lockout` and `unlock` (DESIGN §7, procedure 6): a partner
//! locks a person (or a group) out of everything foureyes granted, in every
//! workspace, in one step, waits until every revocation is done, and sees
//! what was revoked and what access remains outside foureyes; `lockout
//! list` shows the lockouts; `unlock` lifts one (restoring nothing).

use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::cli::{Global, LockoutArgs, Output, UnlockArgs};
use super::common::{api_err, create_named, emit, emit_json, is_code, subject, who};
use super::format::Table;
use super::{NOT_IN_EFFECT, PluginError};
use crate::api::conditions::{READY, find_condition};
use crate::api::{Lockout, LockoutSpec, RequestPhase, RoleBinding, RoleRequest, Subject};
use crate::wire::{LIFTED_BY_ANNOTATION, LIFTED_REASON_ANNOTATION};

/// The lockout the plugin creates: the caller as its author.
pub fn lockout_spec(subject: Subject, reason: &str, duration: Option<crate::api::GoDuration>, me: &str) -> LockoutSpec {
    LockoutSpec {
        subject,
        reason: reason.to_owned(),
        expires_at: None,
        duration,
        created_by: me.to_owned(),
    }
}

/// Whether the operator reports the lockout enforced: none of the subject's
/// foureyes access remains.
pub fn enforced(l: &Lockout) -> bool {
    l.status.as_ref().is_some_and(|s| {
        s.observed_generation == l.metadata.generation
            && find_condition(&s.conditions, READY).is_some_and(|c| c.reason == "Enforced")
    })
}

/// What the lockout did and what remains, for people.
pub fn report(l: &Lockout, revoked: Option<&[RoleBinding]>, ended: Option<&[RoleRequest]>) -> String {
    let status = l.status.clone().unwrap_or_default();
    let mut out = format!(
        "{} locked out by {} (Lockout {}), {}: {}\n",
        l.spec.subject,
        l.spec.created_by,
        l.name_any(),
        status
            .expires_at
            .map(|e| format!("until {}", crate::rbac::format_expiry(e)))
            .unwrap_or_else(|| "until lifted".into()),
        l.spec.reason
    );
    out.push_str(&format!(
        "\nrevoked: {} foureyes binding(s) in {} workspace(s); {} pending request(s) ended; {} still in effect\n",
        status.revoked,
        status.workspaces.len(),
        status.ended_requests,
        status.remaining
    ));
    if let Some(revoked) = revoked.filter(|r| !r.is_empty()) {
        let mut t = Table::new(&["namespace", "binding", "role"]);
        for b in revoked {
            t.row(vec![
                b.namespace().unwrap_or_default(),
                b.name_any(),
                b.status.as_ref().and_then(|s| s.role.clone()).unwrap_or_default(),
            ]);
        }
        out.push_str(&t.render());
    }
    if let Some(ended) = ended.filter(|r| !r.is_empty()) {
        let mut t = Table::new(&["namespace", "request", "role"]);
        for r in ended {
            t.row(vec![
                r.namespace().unwrap_or_default(),
                r.name_any(),
                r.status.as_ref().and_then(|s| s.role.clone()).unwrap_or_default(),
            ]);
        }
        out.push_str(&t.render());
    }
    if status.outside_access_count == 0 {
        out.push_str(
            "\nno access outside foureyes names them directly (native RoleBindings and ClusterRoleBindings)\n",
        );
    } else {
        out.push_str(&format!(
            "\naccess outside foureyes that still names them ({}; foureyes does not touch it: remove what should go):\n",
            status.outside_access_count
        ));
        let mut t = Table::new(&["kind", "namespace", "name", "role"]);
        for g in &status.outside_access {
            t.row(vec![
                g.kind.clone(),
                g.namespace.clone().unwrap_or_else(|| "-".into()),
                g.name.clone(),
                g.role.clone(),
            ]);
        }
        out.push_str(&t.render());
    }
    out.push_str("(group memberships, tokens and workloads they started are not covered by RBAC bindings)\n");
    out
}

/// `lockout list`, `lockout USER --reason ...`.
pub(super) async fn command(client: &Client, g: &Global, a: &LockoutArgs) -> Result<u8, PluginError> {
    let api = Api::<Lockout>::all(client.clone());
    let Some(reason) = a.reason.as_deref() else {
        if a.subject == "list" {
            return list(&api, g).await;
        }
        return Err(PluginError::Usage(
            "--reason is required: why the lockout (an incident or ticket reference)".into(),
        ));
    };
    let me = who(client).await?;
    let mut l = Lockout::new(
        "",
        lockout_spec(subject(&a.subject, a.group), reason, a.r#for.clone(), &me.user),
    );
    let base = if a.group { "group" } else { "user" };
    create_named(&api, &mut l, a.name.as_ref(), (&a.subject, &format!("lockout-{base}")))
        .await
        .map_err(api_err(format!("locking out {}", l.spec.subject)))?;
    let name = l.name_any();
    let deadline = Instant::now() + a.wait.get();
    while !enforced(&l) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(x) = api.get(&name).await {
            l = x;
        }
    }
    let done = enforced(&l);
    // What it revoked and ended, where the caller may read bindings and
    // requests everywhere; the counts otherwise.
    let revoked: Option<Vec<RoleBinding>> = Api::<RoleBinding>::all(client.clone())
        .list(&ListParams::default())
        .await
        .ok()
        .map(|list| {
            list.items
                .into_iter()
                .filter(|b| b.status.as_ref().and_then(|s| s.lockout.as_deref()) == Some(name.as_str()))
                .collect()
        });
    let ended: Option<Vec<RoleRequest>> = Api::<RoleRequest>::all(client.clone())
        .list(&ListParams::default())
        .await
        .ok()
        .map(|list| {
            list.items
                .into_iter()
                .filter(|r| {
                    let s = r.status.as_ref();
                    s.and_then(|s| s.phase) == Some(RequestPhase::Denied)
                        && s.and_then(|s| s.lockout.as_deref()) == Some(name.as_str())
                })
                .collect()
        });
    if g.output == Output::Json {
        emit_json(&json!({
            "name": name,
            "subject": l.spec.subject,
            "enforced": done,
            "status": l.status,
            "revoked": revoked.as_ref().map(|r| r.iter().map(|b| json!({"namespace": b.namespace(), "name": b.name_any()})).collect::<Vec<_>>()),
        }));
    } else {
        emit(&report(&l, revoked.as_deref(), ended.as_deref()));
        if !done {
            emit(&format!(
                "the operator has not confirmed every revocation yet: kubectl get lockout {name} -o yaml\n"
            ));
        }
    }
    Ok(if done { 0 } else { NOT_IN_EFFECT })
}

async fn list(api: &Api<Lockout>, g: &Global) -> Result<u8, PluginError> {
    let items = api
        .list(&ListParams::default())
        .await
        .map_err(api_err("listing lockouts"))?
        .items;
    if g.output == Output::Json {
        emit_json(&items);
        return Ok(0);
    }
    let mut t = Table::new(&[
        "name", "subject", "phase", "expires", "revoked", "outside", "by", "reason",
    ]);
    for l in &items {
        let s = l.status.clone().unwrap_or_default();
        t.row(vec![
            l.name_any(),
            l.spec.subject.to_string(),
            s.phase.map(|p| format!("{p:?}")).unwrap_or_default(),
            s.expires_at
                .map(crate::rbac::format_expiry)
                .unwrap_or_else(|| "until lifted".into()),
            s.revoked.to_string(),
            s.outside_access_count.to_string(),
            l.spec.created_by.clone(),
            l.spec.reason.clone(),
        ]);
    }
    emit(&t.render());
    Ok(0)
}

/// `unlock USER --reason ...`: lifts every lockout of the subject, naming
/// the caller and the reason in it first (the history records them), and
/// waits until the operator has let it go.
pub(super) async fn unlock(client: &Client, g: &Global, a: &UnlockArgs) -> Result<u8, PluginError> {
    let me = who(client).await?;
    let api = Api::<Lockout>::all(client.clone());
    let wanted = subject(&a.subject, a.group);
    let found: Vec<Lockout> = api
        .list(&ListParams::default())
        .await
        .map_err(api_err("listing lockouts"))?
        .items
        .into_iter()
        .filter(|l| l.spec.subject == wanted && l.metadata.deletion_timestamp.is_none())
        .collect();
    if found.is_empty() {
        return Err(PluginError::NotFound(format!(
            "no lockout of {wanted}: kubectl access lockout list"
        )));
    }
    let mut lifted = vec![];
    for l in &found {
        let name = l.name_any();
        let note = json!({ "metadata": { "annotations": {
            LIFTED_BY_ANNOTATION: me.user, LIFTED_REASON_ANNOTATION: a.reason } } });
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&note))
            .await
            .map_err(api_err(format!("lifting lockout {name}")))?;
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if is_code(&e, 404) => {}
            Err(e) => return Err(api_err(format!("lifting lockout {name}"))(e)),
        }
        lifted.push(name);
    }
    let deadline = Instant::now() + a.wait.get();
    let mut gone = false;
    while Instant::now() < deadline {
        let mut left = 0;
        for n in &lifted {
            if api.get_opt(n).await.ok().flatten().is_some() {
                left += 1;
            }
        }
        if left == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if g.output == Output::Json {
        emit_json(&json!({ "lifted": lifted, "confirmed": gone }));
    } else {
        emit(&format!(
            "lifted {} lockout(s) of {wanted}: {}; nothing they ended is restored (access must be granted again)\n",
            lifted.len(),
            lifted.join(", ")
        ));
        if !gone {
            emit("the operator has not let them go yet (it records the lifting first): kubectl get lockouts\n");
        }
    }
    Ok(if gone { 0 } else { NOT_IN_EFFECT })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{LockoutStatus, OutsideGrant};

    #[test]
    fn the_report_says_what_was_revoked_and_what_remains_outside() {
        let mut l = Lockout::new(
            "dave-lockout-user-k3x9q",
            lockout_spec(Subject::user("dave"), "INC-9", Some("24h".parse().unwrap()), "pat"),
        );
        assert_eq!(l.spec.created_by, "pat");
        assert!(!enforced(&l));
        l.metadata.generation = Some(1);
        let mut status = LockoutStatus {
            observed_generation: Some(1),
            revoked: 3,
            workspaces: vec!["a".into(), "b".into()],
            outside_access: vec![OutsideGrant {
                kind: "ClusterRoleBinding".into(),
                namespace: None,
                name: "dave-admin".into(),
                role: "ClusterRole/cluster-admin".into(),
            }],
            outside_access_count: 1,
            ..Default::default()
        };
        crate::api::conditions::set_condition(
            &mut status.conditions,
            crate::api::Condition::new(
                READY,
                crate::api::ConditionStatus::True,
                "Enforced",
                "",
                Some(1),
                chrono::DateTime::UNIX_EPOCH,
            ),
        );
        l.status = Some(status);
        assert!(enforced(&l));
        let text = report(&l, None, None);
        assert!(text.contains("user dave locked out by pat"), "{text}");
        assert!(text.contains("3 foureyes binding(s) in 2 workspace(s)"), "{text}");
        assert!(
            text.contains("dave-admin") && text.contains("ClusterRole/cluster-admin"),
            "{text}"
        );
    }
}
