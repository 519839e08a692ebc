//! SECURITY F1: on a control plane set up by a fresh `helm install` of the
//! chart (and nothing from `crds/`), the attacks the chart once let through
//! fail: a forged votes stamp breaks no glass, and nobody but the operator
//! writes the history.

mod support;

use std::time::Duration;

use foureyes::api::{IgnoreReason, RoleBinding, RoleRequest};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use support::world::{ignored, setup, wait_request};
use support::{TestEnv, client, eventually, plane};

fn helm_plane() -> &'static support::ControlPlane {
    support::install_with_helm();
    plane()
}

#[tokio::test]
async fn every_admission_policy_is_installed() {
    let plane = helm_plane();
    let names = plane.kubectl_ok(
        "admin",
        &[
            "get",
            "validatingadmissionpolicies,validatingadmissionpolicybindings,mutatingadmissionpolicies,mutatingadmissionpolicybindings",
            "-o",
            "name",
        ],
        None,
    );
    for name in [
        "foureyes-identity",
        "foureyes-creator",
        "foureyes-creator-keep",
        "foureyes-votes",
        "foureyes-changes",
        "foureyes-tenant-stamp",
        "foureyes-token-lifetime",
        "foureyes-history",
        "foureyes-history-names",
        "foureyes-status",
        "foureyes-params",
        "foureyes-lease",
    ] {
        assert!(
            names.lines().filter(|l| l.ends_with(&format!("/{name}"))).count() == 2,
            "{name} and its binding:\n{names}"
        );
    }
}

/// The review's attack: dave, no manager, files a request with a vote stamp
/// that claims he voted as a member of the partner group.
#[tokio::test]
async fn a_forged_vote_stamp_breaks_no_glass() {
    helm_plane();
    let env = TestEnv::new("helm-votes").await;
    setup(&env, 2, 2).await;
    let forged = "0\t1\tfoureyes:partners\tdave\n";
    let r: RoleRequest = serde_json::from_value(json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
        "metadata": { "name": "dave-admin", "namespace": env.ns, "annotations": { "foureyes.dev/votes": forged } },
        "spec": {
            "subject": { "kind": "Group", "name": format!("{}-oncall", env.name) },
            "project": "app", "projectRole": "admin", "duration": "24h", "justification": "INC-1",
            "requester": "dave", "approvals": [{ "user": "dave", "decision": "Approve" }],
        },
    }))
    .unwrap();
    let stored = env
        .api::<RoleRequest>("dave")
        .await
        .create(&PostParams::default(), &r)
        .await
        .expect("the request is accepted, with the real stamp");
    let stamp = stored.metadata.annotations.unwrap()["foureyes.dev/votes"].clone();
    assert!(!stamp.contains("foureyes:partners"), "{stamp:?}");
    let r = wait_request(&env, "dave-admin", "dave's vote ignored", |r| !ignored(r).is_empty()).await;
    assert_eq!(ignored(&r), vec![("dave".to_owned(), IgnoreReason::NotManager)]);
    let status = r.status.unwrap();
    assert_eq!(status.break_glass_by, None);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        env.api::<RoleBinding>("admin")
            .await
            .get_opt("dave-admin")
            .await
            .unwrap()
            .is_none(),
        "no access"
    );
}

/// Not even the cluster administrator can edit, delete or plant history.
#[tokio::test]
async fn only_the_operator_writes_the_history() {
    helm_plane();
    let env = TestEnv::new("helm-history").await;
    setup(&env, 1, 1).await;
    let admin = Api::<ConfigMap>::namespaced(client("admin").await, &env.ns);
    let chunk = eventually("a history chunk", Duration::from_secs(20), || async {
        admin
            .list(&ListParams::default().labels("foureyes.dev/history"))
            .await
            .ok()?
            .items
            .into_iter()
            .next()
    })
    .await;
    let name = chunk.metadata.name.clone().unwrap();
    let mut edited = chunk.clone();
    edited
        .data
        .get_or_insert_with(Default::default)
        .insert("x".into(), "forged".into());
    let err = admin.replace(&name, &PostParams::default(), &edited).await.unwrap_err();
    assert!(support::refusal(err).contains("append-only"));
    let err = admin.delete(&name, &DeleteParams::default()).await.unwrap_err();
    assert!(support::refusal(err).contains("append-only"));
    let planted: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "foureyes-history-workspace-999999", "namespace": env.ns },
        "data": { "x": "planted" },
    }))
    .unwrap();
    let err = admin.create(&PostParams::default(), &planted).await.unwrap_err();
    assert!(support::refusal(err).contains("history chunks"));
}
