//! SECURITY F10: the identity stamps rest on the mutating admission
//! policies, and the operator's decisions on all of them. Without the
//! mutating policies, a forged stamp is refused (a validating policy backs
//! them up); with a policy weakened, the operator notices, says so, and
//! authorises nothing new until it is restored. This binary alters the
//! cluster's policies, so it has its own control plane.

mod support;

use std::time::{Duration, Instant};

use foureyes::api::{BindingPhase, RoleBinding};
use kube::api::PostParams;
use serde_json::json;
use support::world::{grant, setup_without_operator, wait_condition, wait_phase};
use support::{Operator, TestEnv, eventually, plane};

fn forged_binding(ns: &str, name: &str) -> String {
    format!(
        r#"
apiVersion: foureyes.dev/v1alpha1
kind: RoleBinding
metadata:
  name: {name}
  namespace: {ns}
  annotations:
    foureyes.dev/created-by: dave
    foureyes.dev/created-by-groups: "foureyes:partners"
spec:
  subject: {{ kind: User, name: dave }}
  project: app
  projectRole: admin
  duration: 24h
  justification: x
  grantedBy: dave
"#
    )
}

#[tokio::test]
async fn weakened_policies_are_noticed_and_forged_stamps_refused() {
    let operator = Operator::start("anchors");
    let env = TestEnv::new("anchors").await;
    setup_without_operator(&env, 1, 1).await;
    let plane = plane();

    // 1. Without the mutating policies, a client's own stamps are refused.
    plane.kubectl_ok(
        "admin",
        &[
            "delete",
            "mutatingadmissionpolicybinding",
            "foureyes-creator",
            "foureyes-votes",
        ],
        None,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let forged = forged_binding(&env.ns, "forged");
    loop {
        let (ok, _, err) = plane.kubectl("dave", &["create", "--dry-run=server", "-f", "-"], Some(&forged));
        if !ok && err.contains("must name the caller as the API server authenticated them") {
            break;
        }
        assert!(Instant::now() < deadline, "the forged stamp was never refused: {err}");
        std::thread::sleep(Duration::from_millis(250));
    }
    // 2. The operator notices: not ready, a log line, a metric.
    operator.wait_for_log("admission policies missing or altered", Duration::from_secs(30));
    assert!(
        operator
            .log_text()
            .contains("MutatingAdmissionPolicyBinding foureyes-creator missing")
    );
    plane.kubectl_ok(
        "admin",
        &[
            "apply",
            "--server-side",
            "--field-manager=foureyes-tests",
            "-f",
            "crds/admission-policies.yaml",
        ],
        None,
    );
    operator.wait_for_log("admission policies in place", Duration::from_secs(30));

    // 3. The identity policy switched to Warn: forged identities pass
    // admission, but the operator authorises nothing new meanwhile.
    plane.kubectl_ok(
        "admin",
        &[
            "patch",
            "validatingadmissionpolicybinding",
            "foureyes-identity",
            "--type=merge",
            "-p",
            r#"{"spec":{"validationActions":["Warn"]}}"#,
        ],
        None,
    );
    let since = operator.log_text().len();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !operator.log_text()[since..].contains("validationActions[0] differs") {
        assert!(Instant::now() < deadline, "the weakened binding was not noticed");
        std::thread::sleep(Duration::from_millis(200));
    }
    // erin names the partner as the granter: admission only warns now.
    let b: RoleBinding = serde_json::from_value(json!({
        "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding",
        "metadata": { "name": "asserted", "namespace": env.ns },
        "spec": {
            "subject": { "kind": "User", "name": "erin" }, "project": "app", "projectRole": "admin",
            "duration": "1h", "justification": "x", "grantedBy": "partner",
        },
    }))
    .unwrap();
    let api = env.api::<RoleBinding>("erin").await;
    eventually(
        "the forged granter admitted (Warn only)",
        Duration::from_secs(30),
        || async { api.create(&PostParams::default(), &b).await.ok().map(|_| ()) },
    )
    .await;
    let held = wait_condition(&env, "asserted", "Ready", "AdmissionPoliciesUntrusted").await;
    assert_eq!(held.status.unwrap().phase, Some(BindingPhase::Pending));
    // Meanwhile a grant in force stays, and revocation and expiry go on.
    wait_phase(&env, "manager-alice", BindingPhase::Active).await;
    grant(
        &env,
        "partner",
        "later",
        json!({"kind": "User", "name": "dave"}),
        json!({"workspaceRole": "member"}),
        "1h",
    )
    .await;
    plane.kubectl_ok(
        "admin",
        &[
            "patch",
            "validatingadmissionpolicybinding",
            "foureyes-identity",
            "--type=merge",
            "-p",
            r#"{"spec":{"validationActions":["Deny"]}}"#,
        ],
        None,
    );
    // Restored: what waited is decided; what erin wrote in the partner's
    // name while the policy only warned never acts (the creator stamp names
    // erin, no trusted asserter).
    wait_phase(&env, "later", BindingPhase::Active).await;
    let asserted = wait_condition(&env, "asserted", "Ready", "NotAuthorized").await;
    assert_eq!(asserted.status.unwrap().phase, Some(BindingPhase::Pending));
}
