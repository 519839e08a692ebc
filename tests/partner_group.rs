//! Partners named only by group (DESIGN §2): the operator recognises the
//! partner from the groups the API server stamped on their vote and on their
//! binding, never from anything the client sends. Runs its own operator,
//! whose configuration names no partner by user, so it has its own test
//! binary and control plane.

mod support;

use std::time::Duration;

use foureyes::api::{BindingPhase, RequestPhase, RoleRequest};
use kube::api::PostParams;
use serde_json::json;
use support::world::{setup_without_operator, wait_phase};
use support::{Operator, TestEnv, can, eventually};

const GROUPS_ONLY: &str = r#"
partners:
  groups: ["foureyes:partners"]
auditors:
  groups: ["foureyes:auditors"]
sweepInterval: 2s
retention: 1h
"#;

#[tokio::test]
async fn a_partner_named_by_group_breaks_the_glass() {
    let _operator = Operator::start_configured("groups-only", GROUPS_ONLY, &[], Some("caches synced; ready"));
    let env = TestEnv::new("pgroup").await;
    // The partner's grant of alice's manager role is recognised by group.
    let tenant = setup_without_operator(&env, 1, 2).await;

    // alice is the only manager of a four-eyes workspace: only a partner can approve.
    let r: RoleRequest = serde_json::from_value(json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest",
        "metadata": { "name": "glass", "namespace": env.ns },
        "spec": {
            "subject": { "kind": "User", "name": "dave" }, "project": "app", "projectRole": "admin",
            "duration": "30m", "justification": "INC-5", "requester": "alice",
        },
    }))
    .unwrap();
    let api = env.api::<RoleRequest>("alice").await;
    api.create(&PostParams::default(), &r).await.expect("create request");
    let admin = env.api::<RoleRequest>("admin").await;
    eventually("quorum unreachable", Duration::from_secs(20), || async {
        let r = admin.get("glass").await.ok()?;
        (r.status?.phase == Some(RequestPhase::QuorumUnreachable)).then_some(())
    })
    .await;

    // erin, not a partner, votes: ignored.
    let partner_api = env.api::<RoleRequest>("partner").await;
    for (who, client_api) in [("erin", env.api::<RoleRequest>("erin").await), ("partner", partner_api)] {
        eventually(&format!("{who} votes"), Duration::from_secs(10), || async {
            let mut r = client_api.get("glass").await.ok()?;
            r.spec
                .approvals
                .push(serde_json::from_value(json!({ "user": who, "decision": "Approve" })).unwrap());
            client_api.replace("glass", &PostParams::default(), &r).await.ok()
        })
        .await;
    }
    let r = eventually("granted by break-glass", Duration::from_secs(20), || async {
        let r = admin.get("glass").await.ok()?;
        (r.status.as_ref()?.phase == Some(RequestPhase::Granted)).then_some(r)
    })
    .await;
    let status = r.status.unwrap();
    assert_eq!(
        status.break_glass_by.as_deref(),
        Some("partner"),
        "recognised by the stamped group"
    );
    assert!(
        status.ignored.iter().any(|v| v.user == "erin"),
        "erin's vote did not count: {:?}",
        status.ignored
    );
    wait_phase(&env, "glass", BindingPhase::Active).await;
    assert!(can("dave", "create", "configmaps", &tenant).await);
}
