//! Building blocks for tests of the access engine: a workspace with a
//! project and a manager, grants, and waiting for phases and events.

use std::time::Duration;

use foureyes::api::{BindingPhase, IgnoreReason, Project, RequestPhase, RoleBinding, RoleRequest, Workspace};
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::api::rbac::v1::RoleBinding as NativeBinding;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::{TestEnv, client, eventually, shared_operator};

/// A workspace (created by the partner) with the given quorums, a project
/// `app` with one tenant namespace, and alice as manager.
pub async fn setup(env: &TestEnv, workspace_quorum: i32, project_quorum: i32) -> String {
    shared_operator();
    setup_without_operator(env, workspace_quorum, project_quorum).await
}

/// Like [`setup`], for a test that runs its own operator.
pub async fn setup_without_operator(env: &TestEnv, workspace_quorum: i32, project_quorum: i32) -> String {
    let tenant = format!("{}-app", env.name);
    let ws: Workspace = serde_json::from_value(json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "Workspace",
        "metadata": { "name": env.name },
        "spec": { "approvalPolicy": { "workspaceRoleApprovals": workspace_quorum, "projectRoleApprovals": project_quorum, "managerCoolingOff": "0s" } },
    }))
    .unwrap();
    Api::<Workspace>::all(client("partner").await)
        .create(&PostParams::default(), &ws)
        .await
        .expect("create workspace");
    let project: Project = serde_json::from_value(json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "Project",
        "metadata": { "name": "app", "namespace": env.ns },
        "spec": { "namespaces": [tenant], "roleMap": { "root": "cluster-admin" } },
    }))
    .unwrap();
    env.api::<Project>("partner")
        .await
        .create(&PostParams::default(), &project)
        .await
        .expect("create project");
    grant(
        env,
        "partner",
        "manager-alice",
        json!({"kind": "User", "name": "alice"}),
        json!({"workspaceRole": "manager"}),
        "1h",
    )
    .await;
    wait_phase(env, "manager-alice", BindingPhase::Active).await;
    let projects = env.api::<Project>("admin").await;
    eventually("project namespaces claimed", Duration::from_secs(30), || async {
        let p = projects.get("app").await.ok()?;
        (p.status?.namespaces == vec![tenant.clone()]).then_some(())
    })
    .await;
    tenant
}

pub async fn grant(
    env: &TestEnv,
    as_user: &str,
    name: &str,
    subject: serde_json::Value,
    role: serde_json::Value,
    duration: &str,
) {
    let mut spec = json!({ "subject": subject, "duration": duration, "justification": "INC-1", "grantedBy": as_user });
    spec.as_object_mut().unwrap().extend(role.as_object().unwrap().clone());
    let b: RoleBinding = serde_json::from_value(json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
        "metadata": { "name": name, "namespace": env.ns }, "spec": spec,
    }))
    .unwrap();
    env.api::<RoleBinding>(as_user)
        .await
        .create(&PostParams::default(), &b)
        .await
        .expect("create binding");
}

pub async fn wait_phase(env: &TestEnv, name: &str, phase: BindingPhase) -> RoleBinding {
    let api = env.api::<RoleBinding>("admin").await;
    eventually(&format!("{name} to be {phase:?}"), Duration::from_secs(30), || async {
        let b = api.get(name).await.ok()?;
        (b.status.as_ref()?.phase == Some(phase)).then_some(b)
    })
    .await
}

/// Waits until the binding's condition `type_` (`Ready`, `Authorized`) has
/// the reason `reason`.
pub async fn wait_condition(env: &TestEnv, name: &str, type_: &str, reason: &str) -> RoleBinding {
    let api = env.api::<RoleBinding>("admin").await;
    eventually(
        &format!("{name}: {type_} {reason}"),
        Duration::from_secs(20),
        || async {
            let b = api.get(name).await.ok()?;
            let found = b
                .status
                .as_ref()?
                .conditions
                .iter()
                .any(|c| c.type_ == type_ && c.reason == reason);
            found.then_some(b)
        },
    )
    .await
}

pub async fn natives_of(uid: &str) -> Vec<NativeBinding> {
    Api::<NativeBinding>::all(client("admin").await)
        .list(&ListParams::default().labels(&format!("foureyes.dev/binding-uid={uid}")))
        .await
        .unwrap()
        .items
}

pub async fn events_for(ns: &str, name: &str) -> Vec<String> {
    Api::<Event>::namespaced(client("admin").await, ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .filter_map(|e| e.reason)
        .collect()
}

pub async fn wait_event(ns: &str, name: &str, reason: &str) {
    eventually(
        &format!("event {reason} on {name}"),
        Duration::from_secs(20),
        || async { events_for(ns, name).await.iter().any(|r| r == reason).then_some(()) },
    )
    .await;
}

/// Appends a vote as `as_user` naming `user` (the caller, unless forging):
/// a replace conditional on the resourceVersion read, retried on conflict.
pub async fn vote_as(env: &TestEnv, as_user: &str, user: &str, name: &str, decision: &str) -> Result<(), String> {
    let api = env.api::<RoleRequest>(as_user).await;
    for _ in 0..10 {
        let mut r = api.get(name).await.map_err(|e| e.to_string())?;
        r.spec
            .approvals
            .push(serde_json::from_value(json!({ "user": user, "decision": decision })).unwrap());
        match api.replace(name, &PostParams::default(), &r).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("conflict after 10 attempts".into())
}

/// Waits until the request's status satisfies `check`.
pub async fn wait_request(env: &TestEnv, name: &str, what: &str, check: impl Fn(&RoleRequest) -> bool) -> RoleRequest {
    let api = env.api::<RoleRequest>("admin").await;
    eventually(&format!("{name}: {what}"), Duration::from_secs(30), || async {
        let r = api.get(name).await.ok()?;
        check(&r).then_some(r)
    })
    .await
}

pub fn phase(r: &RoleRequest) -> Option<RequestPhase> {
    r.status.as_ref().and_then(|s| s.phase)
}

pub fn ignored(r: &RoleRequest) -> Vec<(String, IgnoreReason)> {
    r.status
        .as_ref()
        .map(|s| s.ignored.iter().map(|v| (v.user.clone(), v.reason)).collect())
        .unwrap_or_default()
}

/// Makes bob and carol managers too (the partner grants it).
pub async fn more_managers(env: &TestEnv, who: &[&str]) {
    for m in who {
        let name = format!("manager-{m}");
        grant(
            env,
            "partner",
            &name,
            json!({"kind": "User", "name": m}),
            json!({"workspaceRole": "manager"}),
            "1h",
        )
        .await;
        wait_phase(env, &name, BindingPhase::Active).await;
    }
}

/// Merges `spec` into the workspace's spec (as the partner) and waits until
/// the change is visible.
pub async fn update_workspace(name: &str, spec: serde_json::Value, seen: impl Fn(&Workspace) -> bool) {
    let api = Api::<Workspace>::all(client("partner").await);
    api.patch(name, &PatchParams::default(), &Patch::Merge(json!({ "spec": spec })))
        .await
        .expect("patch workspace");
    eventually("workspace change seen", Duration::from_secs(10), || async {
        let ws = api.get(name).await.ok()?;
        seen(&ws).then_some(())
    })
    .await;
}

/// The `(action, actor)` pairs of the `app` project's history about
/// `object`, once `done` holds for them (`what` names that for a timeout).
pub async fn app_history_until(
    env: &TestEnv,
    object: &str,
    what: &str,
    done: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    use foureyes::audit::history::{Chain, read_chain};
    let admin = client("admin").await;
    eventually(what, Duration::from_secs(20), || async {
        let entries: Vec<(String, String)> = read_chain(&admin, &env.ns, &Chain::project("app"))
            .await
            .ok()?
            .into_iter()
            .filter(|e| e.object.name == object)
            .map(|e| (e.action, e.actor))
            .collect();
        done(&entries).then_some(entries)
    })
    .await
}
