//! The emergency procedures of DESIGN §7, played with the manifests in
//! `examples/` against a real API server and the operator, each applied as
//! the person its procedure names, in order. Every step checks the outcome
//! (phases, who approved, and what the API server now allows), not only that
//! the manifest applies.

mod support;

use std::time::Duration;

use foureyes::api::{BindingPhase, RequestPhase, RoleBinding, RoleRequest};
use foureyes::audit::history::{self, Chain, Entry, action};
use support::world::{wait_event, wait_phase};
use support::{TestEnv, can, eventually, plane, shared_operator};

const NS: &str = "ws-payments";
const TENANT: &str = "payments-checkout";

fn apply(identity: &str, file: &str) {
    plane().kubectl_ok(identity, &["apply", "-f", &format!("examples/{file}")], None);
}

async fn wait_request(env: &TestEnv, name: &str, phase: RequestPhase) -> RoleRequest {
    let api = env.api::<RoleRequest>("admin").await;
    eventually(
        &format!("request {name} to be {phase:?}"),
        Duration::from_secs(30),
        || async {
            let r = api.get(name).await.ok()?;
            (r.status.as_ref()?.phase == Some(phase)).then_some(r)
        },
    )
    .await
}

async fn wait_access(user: &str, verb: &str, resource: &str, ns: &str, allowed: bool) {
    eventually(
        &format!(
            "{user} {} {verb} {resource} in {ns}",
            if allowed { "may" } else { "may not" }
        ),
        Duration::from_secs(20),
        || async { (can(user, verb, resource, ns).await == allowed).then_some(()) },
    )
    .await;
}

/// Whether an entry records `action` for the foureyes RoleBinding `name`.
fn is(e: &Entry, action: &str, name: &str) -> bool {
    e.action == action && e.object.kind == "RoleBinding" && e.object.name == name
}

/// Reads and verifies a chain of the workspace until it holds every
/// `(action, binding, actor)` expected (each entry is written before the
/// status that reports its transition, so this should not take long);
/// returns its entries.
async fn verified_chain(client: &kube::Client, chain: &Chain, expected: &[(&str, &str, &str)]) -> Vec<Entry> {
    let entries = eventually(
        &format!("the history chain {chain} to hold {expected:?}"),
        Duration::from_secs(20),
        || async {
            let chunks = history::read_chunks(client, NS, chain).await.ok()?;
            let entries = match history::verify(chain, &chunks) {
                Ok(v) => v.entries,
                Err(b) => panic!("{b}"),
            };
            expected
                .iter()
                .all(|(action, name, _)| entries.iter().any(|e| e.action == *action && e.object.name == *name))
                .then_some(entries)
        },
    )
    .await;
    for (action, name, actor) in expected {
        let e = entries.iter().find(|e| is(e, action, name)).unwrap();
        assert_eq!(e.actor, *actor, "{action} {name} in {chain}: {e:?}");
    }
    entries
}

#[tokio::test]
async fn the_emergency_procedures_have_the_outcomes_they_promise() {
    shared_operator();
    let env = TestEnv {
        name: "payments".into(),
        ns: NS.into(),
    };
    let p = plane();

    // Set-up (a partner): the workspace, its project and two managers.
    apply("partner", "00-workspace.yaml");
    // The managers are made just now: their votes count at once here.
    p.kubectl_ok(
        "partner",
        &[
            "patch",
            "workspace",
            "payments",
            "--type=merge",
            "-p",
            r#"{"spec":{"approvalPolicy":{"managerCoolingOff":"0s"}}}"#,
        ],
        None,
    );
    p.kubectl_ok(
        "admin",
        &[
            "wait",
            "--for=condition=Ready",
            "--timeout=60s",
            "workspaces.foureyes.dev/payments",
        ],
        None,
    );
    apply("partner", "01-project-and-managers.yaml");
    wait_phase(&env, "manager-alice", BindingPhase::Active).await;
    wait_phase(&env, "manager-bob", BindingPhase::Active).await;
    p.kubectl_ok(
        "admin",
        &[
            "wait",
            "--for=condition=Ready",
            "--timeout=60s",
            "-n",
            NS,
            "projects.foureyes.dev/checkout",
        ],
        None,
    );

    // 1. alice adds dave: a member at once (one approval suffices for
    //    workspace roles), admin in checkout only on request (four eyes).
    assert!(!can("dave", "list", "configmaps", NS).await);
    apply("alice", "02-emergency-user.yaml");
    let member = wait_phase(&env, "member-dave", BindingPhase::Active).await;
    assert!(
        member.status.as_ref().and_then(|s| s.expires_at).is_some(),
        "the grant expires by itself"
    );
    wait_access("dave", "list", "configmaps", NS, true).await;
    let r = wait_request(&env, "dave-checkout-admin", RequestPhase::Pending).await;
    let status = r.status.unwrap();
    assert_eq!(
        status.approvals.as_deref(),
        Some("1/2"),
        "alice's request counts as her approval"
    );
    assert_eq!(status.approved_by, ["alice"]);
    assert!(!can("dave", "create", "pods", TENANT).await);

    // 2. Four eyes: bob's approval completes the quorum.
    apply("bob", "03-second-approval.yaml");
    let r = wait_request(&env, "dave-checkout-admin", RequestPhase::Granted).await;
    let status = r.status.unwrap();
    assert_eq!(status.approved_by, ["alice", "bob"]);
    assert_eq!(status.approvals.as_deref(), Some("2/2"));
    let admin = wait_phase(&env, "dave-checkout-admin", BindingPhase::Active).await;
    assert_eq!(
        admin.spec.granted_by, "bob",
        "granted by the manager who completed the quorum"
    );
    wait_access("dave", "create", "pods", TENANT, true).await;

    //    Break-glass: erin files a request that no manager approves...
    let text = std::fs::read_to_string(support::repo().join("examples/04-break-glass.yaml")).unwrap();
    let without_approvals = text.split("  approvals:").next().unwrap().to_owned();
    p.kubectl_ok("erin", &["apply", "-f", "-"], Some(&without_approvals));
    wait_request(&env, "erin-checkout-user", RequestPhase::Pending).await;
    // ...she cannot assert the partner's approval herself...
    let (ok, _, stderr) = p.kubectl("erin", &["apply", "-f", "examples/04-break-glass.yaml"], None);
    assert!(
        !ok && stderr.contains("a vote you add must name you (erin)"),
        "{stderr}"
    );
    // ...the partner approves alone.
    apply("partner", "04-break-glass.yaml");
    let r = wait_request(&env, "erin-checkout-user", RequestPhase::Granted).await;
    assert_eq!(r.status.unwrap().break_glass_by.as_deref(), Some("partner"));
    wait_event(NS, "erin-checkout-user", "BreakGlass").await;
    wait_phase(&env, "erin-checkout-user", BindingPhase::Active).await;
    wait_access("erin", "create", "pods", TENANT, true).await;
    // 7. A manager ratifies the break-glass after the fact: bob, who is
    //    neither erin nor the partner; erin cannot ratify her own.
    let ratify = [
        "patch",
        "frb",
        "erin-checkout-user",
        "-n",
        NS,
        "--type=json",
        "--patch-file",
        "examples/10-ratify.patch.yaml",
    ];
    let (ok, _, stderr) = p.kubectl("erin", &ratify, None);
    assert!(!ok, "erin cannot append bob's verdict: {stderr}");
    p.kubectl_ok("bob", &ratify, None);
    let ratified = eventually(
        "erin's break-glass ratified by bob",
        Duration::from_secs(20),
        || async {
            let b = env
                .api::<RoleBinding>("admin")
                .await
                .get("erin-checkout-user")
                .await
                .ok()?;
            let r = b.status?.ratification?;
            (r.state == foureyes::api::RatificationState::Ratified).then_some(r)
        },
    )
    .await;
    assert_eq!(ratified.by.as_deref(), Some("bob"));
    assert_eq!(ratified.break_glass_by, "partner");
    wait_event(NS, "erin-checkout-user", "BreakGlassRatified").await;

    // 3. The partner becomes a manager, acts as one, and leaves again.
    assert!(!can("partner", "list", "configmaps", NS).await);
    apply("partner", "05-partner-self-assignment.yaml");
    wait_phase(&env, "partner-manager", BindingPhase::Active).await;
    wait_access("partner", "list", "configmaps", NS, true).await;
    // Acting as a manager: reading the workspace's events, which only its
    // members, managers and auditors may.
    p.kubectl_ok("partner", &["get", "events", "-n", NS], None);
    apply("partner", "07-partner-leaves.yaml");
    wait_phase(&env, "partner-manager", BindingPhase::Revoked).await;
    wait_access("partner", "list", "configmaps", NS, false).await;

    // 4. Revoke at once: dave's account is compromised; alice takes away both
    //    of his grants, and the revocation cannot be withdrawn.
    apply("alice", "06-revoke.yaml");
    wait_phase(&env, "member-dave", BindingPhase::Revoked).await;
    wait_phase(&env, "dave-checkout-admin", BindingPhase::Revoked).await;
    wait_access("dave", "list", "configmaps", NS, false).await;
    wait_access("dave", "create", "pods", TENANT, false).await;
    let (ok, _, _) = p.kubectl(
        "alice",
        &[
            "-n",
            NS,
            "patch",
            "frb",
            "member-dave",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/spec/revocation"}]"#,
        ],
        None,
    );
    assert!(!ok, "a revocation cannot be taken back");
    //    ...or the access expires on its own.
    p.kubectl_ok(
        "alice",
        &["apply", "-f", "-"],
        Some(
            "apiVersion: foureyes.dev/v1alpha1\nkind: RoleBinding\nmetadata: { name: erin-short, namespace: ws-payments }\n\
             spec: { subject: { kind: User, name: erin }, workspaceRole: member, duration: 4s, justification: INC-4714, grantedBy: alice }\n",
        ),
    );
    wait_phase(&env, "erin-short", BindingPhase::Active).await;
    wait_phase(&env, "erin-short", BindingPhase::Expired).await;
    wait_access("erin", "list", "configmaps", NS, false).await;

    // 5. The auditor reads what happened: bindings and requests with their
    //    phases and approvals, the events of every decision, and the history.
    let frb = p.kubectl_ok("auditor", &["get", "frb", "-n", NS], None);
    for header in ["SUBJECT", "ROLE", "PHASE", "EXPIRES"] {
        assert!(frb.contains(header), "missing column {header} in\n{frb}");
    }
    for (name, phase) in [
        ("member-dave", "Revoked"),
        ("dave-checkout-admin", "Revoked"),
        ("erin-checkout-user", "Active"),
        ("partner-manager", "Revoked"),
        ("erin-short", "Expired"),
    ] {
        assert!(
            frb.lines().any(|l| l.starts_with(name) && l.contains(phase)),
            "{name} should be {phase} in\n{frb}"
        );
    }
    let rr = p.kubectl_ok("auditor", &["get", "rr", "-n", NS], None);
    for header in ["SUBJECT", "PROJECT", "ROLE", "APPROVALS", "PHASE", "AGE"] {
        assert!(rr.contains(header), "missing column {header} in\n{rr}");
    }
    assert!(
        rr.lines()
            .any(|l| l.starts_with("dave-checkout-admin") && l.contains("2/2") && l.contains("Granted")),
        "{rr}"
    );
    assert!(
        rr.lines()
            .any(|l| l.starts_with("erin-checkout-user") && l.contains("Granted")),
        "{rr}"
    );
    let events = p.kubectl_ok(
        "auditor",
        &[
            "get",
            "events",
            "-n",
            NS,
            "-o",
            "custom-columns=REASON:.reason,OBJECT:.involvedObject.name",
        ],
        None,
    );
    for reason in [
        "Requested",
        "ApprovalCounted",
        "QuorumReached",
        "BreakGlass",
        "BreakGlassRatified",
        "Granted",
        "Revoked",
        "Expired",
    ] {
        assert!(events.contains(reason), "no {reason} event in\n{events}");
    }
    //    The history: the workspace's chain and the project's, read with
    //    the auditor's credentials, with the actors admission verified.
    let auditor = support::client("auditor").await;
    let workspace_chain = verified_chain(
        &auditor,
        &Chain::workspace(),
        &[
            ("Granted", "manager-alice", "partner"),
            ("Granted", "member-dave", "alice"),
            ("Granted", "partner-manager", "partner"),
            ("Revoked", "partner-manager", "partner"),
            ("Revoked", "member-dave", "alice"),
            ("Expired", "erin-short", history::OPERATOR_ACTOR),
        ],
    )
    .await;
    assert_eq!(workspace_chain[0].action, action::WORKSPACE_CREATED);
    let project_chain = verified_chain(
        &auditor,
        &Chain::project("checkout"),
        &[
            // Granted by the approval that completed the quorum.
            ("Granted", "dave-checkout-admin", "bob"),
            // Break-glass: the partner approved alone.
            ("Granted", "erin-checkout-user", "partner"),
            // Ratified after the fact by a manager.
            ("BreakGlassRatified", "erin-checkout-user", "bob"),
            ("Revoked", "dave-checkout-admin", "alice"),
        ],
    )
    .await;
    let revoked = project_chain.iter().find(|e| e.action == action::REVOKED).unwrap();
    assert_eq!(revoked.subject.as_deref(), Some("user dave"));
    assert_eq!(revoked.role.as_deref(), Some("checkout/admin"));
    assert!(revoked.details.contains("laptop"), "{}", revoked.details);
    assert!(
        workspace_chain.iter().all(|e| e.object.name != "dave-checkout-admin"),
        "project roles are recorded in the project's chain only"
    );

    // Auditors read; they do not write.
    let (_, answer, _) = p.kubectl(
        "auditor",
        &["auth", "can-i", "create", "rolebindings.foureyes.dev", "-n", NS],
        None,
    );
    assert_eq!(answer.trim(), "no");

    // `kubectl get rolebindings` keeps meaning RBAC's.
    let (_, rbac, stderr) = p.kubectl("admin", &["get", "rolebindings", "-n", NS], None);
    assert!(
        !rbac.contains("partner-manager"),
        "`kubectl get rolebindings` must keep meaning RBAC's: {rbac}{stderr}"
    );
    let full = p.kubectl_ok(
        "admin",
        &["get", "rolebindings.foureyes.dev", "-n", NS, "-o", "name"],
        None,
    );
    assert!(full.contains("partner-manager"), "{full}");

    // 6. An account is compromised: a partner locks erin out of everything
    //    foureyes granted, in one step; new access for her is refused.
    wait_access("erin", "create", "pods", TENANT, true).await;
    apply("partner", "08-lockout.yaml");
    let revoked = wait_phase(&env, "erin-checkout-user", BindingPhase::Revoked).await;
    assert_eq!(
        revoked.status.and_then(|s| s.lockout).as_deref(),
        Some("erin-compromised")
    );
    wait_access("erin", "create", "pods", TENANT, false).await;
    let (ok, _, err) = p.kubectl(
        "erin",
        &["create", "-f", "-"],
        Some(
            "apiVersion: foureyes.dev/v1alpha1\nkind: RoleRequest\nmetadata: { name: erin-again, namespace: ws-payments }\n\
             spec: { subject: { kind: User, name: erin }, workspaceRole: member, duration: 1h, justification: INC-4715, requester: erin }\n",
        ),
    );
    assert!(!ok && err.contains("erin-compromised"), "a new request by erin: {err}");
    eventually("the lockout enforced", Duration::from_secs(20), || async {
        let out = p.kubectl_ok(
            "partner",
            &[
                "get",
                "lockout",
                "erin-compromised",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}",
            ],
            None,
        );
        (out.trim() == "Enforced").then_some(())
    })
    .await;

    // 7. Cooling-off: carol, made a manager now under the default 1h, does
    //    not count yet, not even as the requester of her own request.
    p.kubectl_ok(
        "partner",
        &[
            "patch",
            "workspace",
            "payments",
            "--type=merge",
            "-p",
            r#"{"spec":{"approvalPolicy":{"managerCoolingOff":"1h"}}}"#,
        ],
        None,
    );
    apply("partner", "09-cooling-off.yaml");
    wait_phase(&env, "manager-carol", BindingPhase::Active).await;
    p.kubectl_ok(
        "carol",
        &["create", "-f", "-"],
        Some(
            "apiVersion: foureyes.dev/v1alpha1\nkind: RoleRequest\nmetadata: { name: dave-by-carol, namespace: ws-payments }\n\
             spec: { subject: { kind: User, name: dave }, project: checkout, projectRole: reader, duration: 1h, justification: INC-4716, requester: carol }\n",
        ),
    );
    let r = eventually("carol's approval held back", Duration::from_secs(20), || async {
        let r = env.api::<RoleRequest>("admin").await.get("dave-by-carol").await.ok()?;
        let s = r.status.clone()?;
        s.ignored
            .iter()
            .any(|v| v.user == "carol" && v.reason == foureyes::api::IgnoreReason::CoolingOff)
            .then_some(s)
    })
    .await;
    assert_eq!(r.approvals.as_deref(), Some("0/2"));
    assert_eq!(r.phase, Some(RequestPhase::Pending));

    // Every example file was covered above.
    let mut files: Vec<_> = std::fs::read_dir(support::repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "00-workspace.yaml",
            "01-project-and-managers.yaml",
            "02-emergency-user.yaml",
            "03-second-approval.yaml",
            "04-break-glass.yaml",
            "05-partner-self-assignment.yaml",
            "06-revoke.yaml",
            "07-partner-leaves.yaml",
            "08-lockout.yaml",
            "09-cooling-off.yaml",
            "10-ratify.patch.yaml",
        ],
        "a new example needs a step in this test"
    );
}
