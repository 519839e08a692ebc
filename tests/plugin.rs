//! The kubectl plugin (`kubectl access`) on a real API server with the
//! operator running, acting as different people through their kubeconfigs.
//!
//! These tests check what the plugin does itself (the objects it writes, who
//! they name, what it refuses before writing), the access the operator
//! grants and revokes for bindings, and the history as the plugin reads and
//! verifies it.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use foureyes::api::{BindingPhase, Decision, RequestPhase, RoleBinding, RoleRequest};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::json;
use support::world::{setup, wait_phase};
use support::{TestEnv, can, plane, shared_operator};

/// Runs `kubectl access` as an identity; returns (exit code, stdout, stderr).
fn access(identity: &str, args: &[&str]) -> (i32, String, String) {
    access_in(identity, args, None)
}

fn access_in(identity: &str, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-access"))
        .args(args)
        .env("KUBECONFIG", plane().kubeconfig(identity))
        .current_dir(support::repo())
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl-access");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().expect("kubectl-access output");
    let result = (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    eprintln!(
        "$ kubectl access {} (as {identity}) -> {}\n{}{}",
        args.join(" "),
        result.0,
        result.1,
        result.2
    );
    result
}

/// The name after `<kind>.foureyes.dev/` in the plugin's first line.
fn created_name(stdout: &str, kind: &str) -> String {
    let prefix = format!("{kind}.foureyes.dev/");
    let line = stdout.lines().find(|l| l.starts_with(&prefix)).expect("a created line");
    line[prefix.len()..].split_whitespace().next().unwrap().to_owned()
}

#[tokio::test]
async fn a_manager_grants_the_subject_sees_it_and_a_revocation_ends_it() {
    let env = TestEnv::new("plug-grant").await;
    let tenant = setup(&env, 1, 1).await;
    assert!(!can("dave", "create", "configmaps", &tenant).await);

    let (code, out, _) = access(
        "alice",
        &[
            "grant",
            "dave",
            "-w",
            &env.name,
            "--project",
            "app",
            "--project-role",
            "user",
            "--for",
            "1h",
            "--reason",
            "INC-1 checkout down",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("active: user dave holds app/user in"), "{out}");
    let name = created_name(&out, "rolebinding");
    assert!(name.starts_with("dave-app-user-") && name.len() <= 63, "{name}");
    let b = Api::<RoleBinding>::namespaced(support::client("admin").await, &env.ns)
        .get(&name)
        .await
        .unwrap();
    assert_eq!(b.spec.granted_by, "alice", "grantedBy comes from the API server");
    assert_eq!(b.spec.justification, "INC-1 checkout down");
    assert!(can("dave", "create", "configmaps", &tenant).await, "access granted");

    // dave sees who he is and what he holds.
    let (code, out, _) = access("dave", &["whoami"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("user:    dave\n"), "{out}");
    assert!(out.contains("system:authenticated"), "{out}");
    assert!(out.contains("partner: not knowable from here"), "{out}");
    let row = out.lines().find(|l| l.contains(&name)).expect("the grant in whoami");
    assert!(row.starts_with(&env.name) && row.contains("app/user"), "{row}");
    let (_, json_out, _) = access("dave", &["whoami", "-o", "json"]);
    let who: serde_json::Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(who["user"], "dave");

    // alice lists the grant with its time left.
    let (code, out, _) = access("alice", &["list", "-w", &env.name]);
    assert_eq!(code, 0);
    let grants = out.split("Active grants:\n").nth(1).expect("a grants section");
    let row = grants.lines().find(|l| l.contains(&name)).expect("the grant listed");
    let left = row.split_whitespace().last().unwrap();
    assert!(
        left == "59m" || left == "1h" || left.starts_with("59m"),
        "time left {left:?} in {row}"
    );
    let (_, json_out, _) = access("alice", &["list", "-w", &env.name, "-o", "json"]);
    let listing: serde_json::Value = serde_json::from_str(&json_out).unwrap();
    let grant = listing["activeGrants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name.as_str())
        .expect("the grant in JSON");
    assert_eq!(grant["subject"], "user dave");
    assert!(grant["expiresAt"].is_string());

    // Revocation takes the access away at once; a second one is refused.
    let (code, out, _) = access(
        "alice",
        &["revoke", &name, "-w", &env.name, "--reason", "account compromised"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("revoked binding"), "{out}");
    let b = wait_phase(&env, &name, BindingPhase::Revoked).await;
    let revocation = b.spec.revocation.unwrap();
    assert_eq!(
        (revocation.by.as_str(), revocation.reason.as_str()),
        ("alice", "account compromised")
    );
    assert!(!can("dave", "create", "configmaps", &tenant).await, "access gone");
    let (code, _, err) = access("alice", &["revoke", &name, "-w", &env.name, "--reason", "again"]);
    assert_eq!(code, 1);
    assert!(err.contains("already revoked by alice"), "{err}");

    // Mistakes say what to do next.
    let (code, _, err) = access("alice", &["revoke", "nope", "-w", &env.name, "--reason", "x"]);
    assert_eq!(code, 1);
    assert!(err.contains("not found") && err.contains("kubectl get frb"), "{err}");
    let (code, _, err) = access(
        "alice",
        &[
            "grant",
            "dave",
            "-w",
            "no-such-ws",
            "--role",
            "member",
            "--for",
            "1h",
            "--reason",
            "x",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("workspace no-such-ws not found: list them with kubectl get ws"),
        "{err}"
    );
}

#[tokio::test]
async fn under_four_eyes_a_grant_stays_pending_and_votes_are_checked_before_writing() {
    let env = TestEnv::new("plug-vote").await;
    setup(&env, 1, 2).await;

    // A manager's direct grant of a project role is not in effect.
    let (code, out, _) = access(
        "alice",
        &[
            "grant",
            "dave",
            "-w",
            &env.name,
            "--project",
            "app",
            "--project-role",
            "admin",
            "--for",
            "2h",
            "--reason",
            "INC-2",
        ],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("pending, not in effect"), "{out}");
    assert!(out.contains("kubectl access request dave"), "{out}");

    // dave asks for himself; the request names him as requester.
    let (code, out, _) = access(
        "dave",
        &[
            "request",
            "-w",
            &env.name,
            "--project",
            "app",
            "--project-role",
            "admin",
            "--for",
            "2h",
            "--reason",
            "INC-2 restart workers",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("managers who can approve: alice"), "{out}");
    let name = created_name(&out, "rolerequest");
    let requests = Api::<RoleRequest>::namespaced(support::client("admin").await, &env.ns);
    let r = requests.get(&name).await.unwrap();
    assert_eq!(r.spec.requester, "dave");
    assert_eq!(r.spec.subject.name, "dave");

    // alice sees it among the requests she can approve; dave among his own.
    let (_, out, _) = access("alice", &["list", "-w", &env.name, "-o", "json"]);
    let listing: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        listing["toApprove"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == name.as_str())
    );
    let (_, out, _) = access("dave", &["list", "-w", &env.name, "-o", "json"]);
    let listing: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(listing["toApprove"].as_array().unwrap().is_empty());
    assert!(
        listing["myRequests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == name.as_str())
    );

    // The subject cannot approve his own request: refused before writing.
    let (code, _, err) = access("dave", &["approve", &name, "-w", &env.name]);
    assert_eq!(code, 1);
    assert!(err.contains("is for you (dave)"), "{err}");
    assert!(requests.get(&name).await.unwrap().spec.approvals.is_empty());

    // alice approves: first she is shown what she signs (the operator's
    // reading of the role's ClusterRole), then the vote names her, as the
    // API server knows her.
    support::eventually("the request says what it grants", Duration::from_secs(20), || async {
        requests
            .get(&name)
            .await
            .ok()?
            .status?
            .permissions
            .filter(|p| p.cluster_role == "foureyes-admin")
    })
    .await;
    let (code, out, _) = access("alice", &["approve", &name, "-w", &env.name, "--comment", "checked"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("approving app/admin for user dave (2h):\n  foureyes-admin: reads "),
        "{out}"
    );
    assert!(out.contains("; dangerous: secrets read, exec/attach\n"), "{out}");
    assert!(out.contains("  in each of: "), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("  !") && l.contains(" secrets ")),
        "the dangerous rows are marked: {out}"
    );
    assert!(
        out.contains(&format!("approved request {name} in {} as alice\n", env.ns)),
        "{out}"
    );
    let r = requests.get(&name).await.unwrap();
    assert_eq!(r.spec.approvals.len(), 1);
    assert_eq!(r.spec.approvals[0].user, "alice");
    assert_eq!(r.spec.approvals[0].decision, Decision::Approve);
    assert_eq!(r.spec.approvals[0].comment.as_deref(), Some("checked"));
    assert!(r.spec.approvals[0].time.is_some());

    // A second vote by the same person is refused before writing.
    let (code, _, err) = access("alice", &["deny", &name, "-w", &env.name]);
    assert_eq!(code, 1);
    assert!(err.contains("already voted Approve"), "{err}");
    // Someone else's vote is appended after hers, by namespace (-n) this time:
    // bob, a manager too, denies, which ends the request.
    support::world::grant(
        &env,
        "partner",
        "manager-bob",
        json!({"kind": "User", "name": "bob"}),
        json!({"workspaceRole": "manager"}),
        "1h",
    )
    .await;
    wait_phase(&env, "manager-bob", BindingPhase::Active).await;
    let (code, out, _) = access("bob", &["-n", &env.ns, "deny", &name, "--comment", "not needed"]);
    assert_eq!(code, 0);
    assert!(out.contains("votes so far: alice (Approve), bob (Deny)"), "{out}");
    let r = requests.get(&name).await.unwrap();
    let voters: Vec<(&str, Decision)> = r.spec.approvals.iter().map(|a| (a.user.as_str(), a.decision)).collect();
    assert_eq!(voters, [("alice", Decision::Approve), ("bob", Decision::Deny)]);

    // A request that is over takes no more votes.
    support::eventually("the operator denies the request", Duration::from_secs(20), || async {
        let r = requests.get(&name).await.ok()?;
        (r.status?.phase == Some(RequestPhase::Denied)).then_some(())
    })
    .await;
    let (code, _, err) = access("carol", &["approve", &name, "-w", &env.name]);
    assert_eq!(code, 1);
    assert!(err.contains("already Denied"), "{err}");
    assert_eq!(requests.get(&name).await.unwrap().spec.approvals.len(), 2);
    let (_, out, _) = access("alice", &["list", "-w", &env.name, "-o", "json"]);
    let listing: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        listing["toApprove"].as_array().unwrap().is_empty(),
        "finished requests are not listed"
    );
}

/// The workspace of the examples, set up by the partner as in the README.
async fn payments() -> TestEnv {
    shared_operator();
    let env = TestEnv {
        name: "payments".into(),
        ns: "ws-payments".into(),
    };
    let p = plane();
    p.kubectl_ok("partner", &["apply", "-f", "examples/00-workspace.yaml"], None);
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
    p.kubectl_ok(
        "partner",
        &["apply", "-f", "examples/01-project-and-managers.yaml"],
        None,
    );
    wait_phase(&env, "manager-alice", BindingPhase::Active).await;
    wait_phase(&env, "manager-bob", BindingPhase::Active).await;
    env
}

#[tokio::test]
async fn plan_judges_a_gitops_change_against_the_live_workspace() {
    let _env = payments().await;

    // Accepted: the emergency-user example.
    let (code, out, _) = access("gitops", &["plan", "-f", "examples/02-emergency-user.yaml"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("RoleBinding ws-payments/member-dave: would take effect (GrantedByManager)"),
        "{out}"
    );
    assert!(
        out.contains("RoleRequest ws-payments/dave-checkout-admin: needs 2 approval(s)"),
        "{out}"
    );
    assert!(out.contains("  approvers:   alice, bob\n"), "{out}");
    assert!(
        out.contains("  counted:     alice (1/2)\n  can approve: bob\n  reachable:   yes\n"),
        "the requester's approval counts: {out}"
    );
    assert!(out.contains("  phase:       would be Pending\n"), "{out}");
    assert!(
        out.contains("  break-glass: allowed: a partner may approve alone\n"),
        "{out}"
    );
    assert!(out.contains("  expiry:      asked 2h, cap 8h, effective 2h\n"), "{out}");
    assert!(
        out.contains("  note:        what ClusterRole foureyes-admin grants is not shown: cannot read ClusterRoles"),
        "gitops may not read ClusterRoles: {out}"
    );
    assert!(out.ends_with("2 object(s) planned, 0 would be refused\n"), "{out}");
    // Whoever may read ClusterRoles sees what the request's role grants.
    let (code, out, _) = access("admin", &["plan", "-f", "examples/02-emergency-user.yaml"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("  grants:\n    foureyes-admin: reads ")
            && out.contains("; dangerous: secrets read, exec/attach\n"),
        "what the request's role grants: {out}"
    );
    assert!(out.contains("    in each of: "), "{out}");

    // Refused: a manager's direct grant of a project role, and a role the
    // allow-list does not hold; from standard input, as JSON.
    let change = r#"
apiVersion: foureyes.dev/v1alpha1
kind: RoleBinding
metadata: { name: dave-admin, namespace: ws-payments }
spec:
  subject: { kind: User, name: dave }
  project: checkout
  projectRole: admin
  duration: 12h
  justification: INC-9
  grantedBy: alice
---
apiVersion: foureyes.dev/v1alpha1
kind: RoleRequest
metadata: { name: dave-root, namespace: ws-payments }
spec:
  subject: { kind: User, name: dave }
  project: checkout
  projectRole: root
  duration: 1h
  justification: INC-9
  requester: alice
"#;
    let (code, out, _) = access_in("gitops", &["plan", "-f", "-", "-o", "json"], Some(change));
    assert_eq!(code, 2, "refusals fail the check");
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    let items = plan["items"].as_array().unwrap();
    assert_eq!(items[0]["outcome"]["verdict"], "refused");
    assert_eq!(items[0]["outcome"]["reason"], "NotAuthorized");
    assert_eq!(items[0]["quorum"], 2);
    assert_eq!(items[0]["effective"], "8h", "capped by maxDuration");
    assert_eq!(items[1]["outcome"]["reason"], "UnknownRole");

    // With the operator's configuration, a partner's self-assignment is recognised.
    let config = plane().dir.join("operator-config.yaml");
    let (code, out, _) = access(
        "gitops",
        &[
            "plan",
            "-f",
            "examples/05-partner-self-assignment.yaml",
            "--operator-config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("would take effect (GrantedByPartner)"), "{out}");

    // Bad input is an error, not a panic.
    let (code, _, err) = access_in("gitops", &["plan", "-f", "-"], Some("kind: [unclosed"));
    assert_eq!(code, 1);
    assert!(err.contains("invalid YAML"), "{err}");
}

/// `history ... -o json` as an identity: the entries of one chain.
fn chain_json(identity: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["history"];
    all.extend_from_slice(args);
    all.extend(["-o", "json"]);
    let (code, out, err) = access(identity, &all);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// Waits until the chain holds an entry with this action for this object.
fn wait_entry(identity: &str, args: &[&str], action: &str, name: &str) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let entries = chain_json(identity, args);
        if entries
            .iter()
            .any(|e| e["action"] == action && e["object"]["name"] == name)
        {
            return entries;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {action} entry for {name} in {entries:#?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn find<'a>(entries: &'a [serde_json::Value], action: &str, name: &str) -> &'a serde_json::Value {
    entries
        .iter()
        .find(|e| e["action"] == action && e["object"]["name"] == name)
        .unwrap_or_else(|| panic!("no {action} entry for {name} in {entries:#?}"))
}

#[tokio::test]
async fn history_lists_and_verifies_a_chain() {
    let env = TestEnv::new("plug-chain").await;
    setup(&env, 1, 1).await;
    let ws = env.name.as_str();
    // alice makes dave a member, and a user of the project, which she revokes.
    let (code, out, _) = access(
        "alice",
        &[
            "grant", "dave", "-w", ws, "--role", "member", "--for", "1h", "--reason", "INC-3",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let member = created_name(&out, "rolebinding");
    let (code, out, _) = access(
        "alice",
        &[
            "grant",
            "dave",
            "-w",
            ws,
            "--project",
            "app",
            "--project-role",
            "user",
            "--for",
            "1h",
            "--reason",
            "INC-3 restart",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let user = created_name(&out, "rolebinding");
    let (code, out, _) = access("alice", &["revoke", &user, "-w", ws, "--reason", "done"]);
    assert_eq!(code, 0, "{out}");

    // The auditor reads the workspace chain (the default) and the project's.
    let entries = wait_entry("auditor", &[ws], "Granted", &member);
    assert_eq!(entries[0]["seq"], 1);
    assert_eq!(entries[0]["action"], "WorkspaceCreated");
    assert_eq!(entries[0]["actor"], "partner", "the creator the API server stamped");
    assert_eq!(find(&entries, "Granted", "manager-alice")["actor"], "partner");
    let granted = find(&entries, "Granted", &member);
    assert_eq!(granted["actor"], "alice");
    assert_eq!(granted["subject"], "user dave");
    assert_eq!(granted["role"], "member");
    assert!(
        entries.iter().all(|e| e["object"]["name"] != user.as_str()),
        "project roles go into the project's chain"
    );
    let entries = wait_entry("auditor", &[ws, "--project", "app"], "Revoked", &user);
    let granted = find(&entries, "Granted", &user);
    assert_eq!(
        (&granted["actor"], &granted["role"]),
        (&json!("alice"), &json!("app/user"))
    );
    let revoked = find(&entries, "Revoked", &user);
    assert_eq!(revoked["actor"], "alice");
    assert!(
        revoked["details"].as_str().unwrap().contains("reason: done"),
        "{revoked}"
    );
    assert!(granted["seq"].as_u64() < revoked["seq"].as_u64());
    assert_eq!(revoked["prev"], entries[entries.len() - 2]["hash"]);

    // As a table for people.
    let (code, out, _) = access("auditor", &["history", ws, "--project", "app"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("SEQ   TIME ") && out.lines().next().unwrap().ends_with("ROLE       DETAILS"),
        "{out}"
    );
    let row = out
        .lines()
        .find(|l| l.contains("Revoked"))
        .expect("the revocation in the table");
    // Columns are as wide as their widest cell (the chain's first entry is
    // the project's creation): compare the cells.
    let cells = row.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        cells.contains(&format!(
            "alice Revoked RoleBinding/{user} user dave app/user access removed"
        )),
        "{row}"
    );
    // Every chain at once: the workspace's first.
    let (code, out, _) = access("auditor", &["history", ws, "--all", "-o", "json"]);
    assert_eq!(code, 0);
    let all: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let chains: Vec<&str> = all.iter().map(|c| c["chain"].as_str().unwrap()).collect();
    assert_eq!(chains, ["workspace", "project-app"]);
    let (_, out, _) = access("auditor", &["history", ws, "--all"]);
    assert!(
        out.starts_with(&format!("chain workspace of workspace {ws}:\nSEQ")),
        "{out}"
    );
    assert!(
        out.contains(&format!("\nchain project-app of workspace {ws}:\nSEQ")),
        "{out}"
    );

    // The auditor verifies the links; the Workspace itself is not theirs to read.
    let (code, out, _) = access("auditor", &["history", "verify", ws, "--project", "app"]);
    assert_eq!(code, 0, "{out}");
    let last = entries.last().unwrap();
    assert!(
        out.starts_with(&format!(
            "chain project-app of workspace {ws}: intact\n  entries: {}\n",
            entries.len()
        )),
        "{out}"
    );
    assert!(out.contains(last["hash"].as_str().unwrap()), "{out}");
    // Auditors may read Workspaces (the ClusterRole foureyes-auditor): the
    // heads its status records are compared too.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (code, out, _) = access("auditor", &["history", "verify", ws, "--all", "-o", "json"]);
        assert_eq!(code, 0, "{out}");
        let results: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        assert_eq!(results.len(), 2);
        assert!(results.iter().all(|v| v["intact"] == true), "{out}");
        if results.iter().all(|v| v["statusHead"]["result"] == "matches") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the Workspace status never recorded the heads: {out}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // By control namespace.
    let (code, out, _) = access("auditor", &["-n", &env.ns, "history", "verify"]);
    assert_eq!(code, 0, "{out}");
    // (Named after the workspace when the caller may read Workspaces.)
    assert!(
        out.starts_with(&format!("chain workspace of workspace {ws}: intact\n"))
            || out.starts_with(&format!("chain workspace in namespace {}: intact\n", env.ns)),
        "{out}"
    );

    // Someone without a role in the workspace may not read its history.
    let (code, out, err) = access("erin", &["history", ws]);
    assert_eq!(code, 1);
    assert!(out.is_empty() && err.contains("may read its history"), "{err}");
    // A chain that does not exist is empty, not an error.
    let (code, _, err) = access("auditor", &["history", ws, "--project", "nope"]);
    assert_eq!(code, 0);
    assert!(err.contains("has no entries yet"), "{err}");

    // An edited entry breaks the chain: verify names it and fails.
    let chunks = Api::<ConfigMap>::namespaced(support::client("operator").await, &env.ns);
    let name = foureyes::audit::history::Chain::project("app").chunk_name(0);
    let mut cm = chunks.get(&name).await.unwrap();
    let key = format!("{:012}", granted["seq"].as_u64().unwrap());
    let data = cm.data.as_mut().unwrap();
    let edited = data[&key].replace("\"actor\":\"alice\"", "\"actor\":\"bob\"");
    data.insert(key, edited);
    chunks.replace(&name, &PostParams::default(), &cm).await.unwrap();
    let (code, out, _) = access("auditor", &["history", "verify", ws, "--project", "app"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(": BROKEN\n"), "{out}");
    assert!(out.contains("the entry was edited"), "{out}");
    let (code, _, err) = access("auditor", &["history", ws, "--project", "app"]);
    assert_eq!(code, 0, "the entries are still listed");
    assert!(err.contains("warning: chain project-app is broken"), "{err}");
}

/// DESIGN §7, procedure 6, through the plugin: a partner locks a user out
/// of grants in two workspaces in one command, which returns only once
/// every revocation is done and prints what was revoked and the native RBAC
/// outside foureyes that still names the user; `lockout list` shows the
/// lockout; `unlock` lifts it and restores nothing; a non-partner's lockout
/// is refused with the API server's message. The user is one of this test's
/// own: a lockout is cluster-wide and the other tests here run in parallel.
#[tokio::test]
async fn a_partner_locks_a_user_out_lists_and_lifts_the_lockout() {
    use foureyes::api::Lockout;
    use k8s_openapi::api::rbac::v1::RoleBinding as NativeBinding;
    use support::world::grant;

    let one = TestEnv::new("plug-lock-one").await;
    let two = TestEnv::new("plug-lock-two").await;
    let tenant_one = setup(&one, 1, 2).await;
    let tenant_two = setup(&two, 1, 2).await;
    let user = format!("frank-{}", std::process::id());
    let frank = || json!({"kind": "User", "name": user});
    grant(
        &one,
        "partner",
        "frank-reader",
        frank(),
        json!({"project": "app", "projectRole": "reader"}),
        "1h",
    )
    .await;
    grant(
        &one,
        "partner",
        "frank-member",
        frank(),
        json!({"workspaceRole": "member"}),
        "1h",
    )
    .await;
    grant(
        &two,
        "partner",
        "frank-reader",
        frank(),
        json!({"project": "app", "projectRole": "reader"}),
        "1h",
    )
    .await;
    for (env, name) in [(&one, "frank-reader"), (&one, "frank-member"), (&two, "frank-reader")] {
        wait_phase(env, name, BindingPhase::Active).await;
    }
    assert!(can(&user, "list", "pods", &tenant_one).await);
    assert!(can(&user, "list", "pods", &tenant_two).await);
    // Access made by hand, outside foureyes.
    let by_hand = "frank-by-hand";
    Api::<NativeBinding>::namespaced(support::client("admin").await, &tenant_two)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": { "name": by_hand, "namespace": tenant_two },
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit" },
                "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user }],
            }))
            .unwrap(),
        )
        .await
        .expect("a hand-made RoleBinding");

    // A manager is no partner: the API server refuses, and the plugin says so.
    let (code, out, err) = access("alice", &["lockout", &user, "--reason", "INC-7 laptop stolen"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("locking out user ")
            && err.contains("the API server refused it")
            && err.contains("User \"alice\" cannot create resource \"lockouts\""),
        "{err}"
    );
    let lockouts = Api::<Lockout>::all(support::client("admin").await);
    let of_user = || async {
        lockouts
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|l| l.spec.subject.name == user)
            .collect::<Vec<_>>()
    };
    assert!(of_user().await.is_empty(), "nothing was created");

    // The partner locks frank out; the command returns once it is enforced.
    let (code, out, _) = access(
        "partner",
        &["lockout", &user, "--reason", "INC-7 laptop stolen", "--for", "24h"],
    );
    assert_eq!(code, 0, "{out}");
    // Done when it returns: nothing left to wait for.
    for (env, name) in [(&one, "frank-reader"), (&one, "frank-member"), (&two, "frank-reader")] {
        let b = env.api::<RoleBinding>("admin").await.get(name).await.unwrap();
        assert_eq!(b.status.unwrap().phase, Some(BindingPhase::Revoked), "{name}");
    }
    assert!(!can(&user, "list", "pods", &tenant_one).await);
    assert!(!can(&user, "list", "configmaps", &one.ns).await);
    let locked = of_user().await;
    assert_eq!(locked.len(), 1);
    let name = locked[0].metadata.name.clone().unwrap();
    assert!(
        out.starts_with(&format!("user {user} locked out by partner (Lockout {name}), until ")),
        "{out}"
    );
    assert!(out.contains(": INC-7 laptop stolen\n"), "{out}");
    assert!(
        out.contains("revoked: 3 foureyes binding(s) in 2 workspace(s); 0 pending request(s) ended; 0 still in effect"),
        "{out}"
    );
    for (ns, binding) in [
        (&one.ns, "frank-reader"),
        (&one.ns, "frank-member"),
        (&two.ns, "frank-reader"),
    ] {
        assert!(
            out.lines().any(|l| l.contains(ns.as_str()) && l.contains(binding)),
            "{ns}/{binding} in {out}"
        );
    }
    let outside = out
        .split("access outside foureyes that still names them")
        .nth(1)
        .expect("an outside-access section");
    assert!(
        outside.lines().any(|l| l.contains("RoleBinding")
            && l.contains(&tenant_two)
            && l.contains(by_hand)
            && l.contains("ClusterRole/edit")),
        "{outside}"
    );
    // Outside access is reported, never touched.
    assert!(
        can(&user, "list", "pods", &tenant_two).await,
        "the hand-made binding still grants"
    );

    // `lockout list` shows it.
    let (code, out, _) = access("partner", &["lockout", "list"]);
    assert_eq!(code, 0, "{out}");
    let row = out.lines().find(|l| l.starts_with(&name)).expect("the lockout listed");
    assert!(
        row.contains(&format!("user {user}"))
            && row.contains("Active")
            && row.contains("partner")
            && row.contains("INC-7"),
        "{row}"
    );

    // `unlock` lifts it, once the operator has let it go; nothing comes back.
    let (code, out, _) = access("partner", &["unlock", &user, "--reason", "INC-7 closed"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("lifted 1 lockout(s) of user {user}: {name}")),
        "{out}"
    );
    assert!(of_user().await.is_empty(), "gone when unlock returns");
    let (_, out, _) = access("partner", &["lockout", "list"]);
    assert!(!out.contains(&name), "{out}");
    let b = one.api::<RoleBinding>("admin").await.get("frank-reader").await.unwrap();
    assert_eq!(b.status.unwrap().phase, Some(BindingPhase::Revoked), "restores nothing");
    assert!(!can(&user, "list", "pods", &tenant_one).await);
    let (code, _, err) = access("partner", &["unlock", &user, "--reason", "again"]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("no lockout of user {user}")), "{err}");
}

/// DESIGN §7, procedure 7 through the plugin: a manager sees the partner's
/// break-glass grant in `list` and ratifies it; the subject and the partner
/// are refused before anything is written, and an objection revokes.
#[tokio::test]
async fn a_manager_ratifies_a_break_glass_grant_and_an_objection_revokes_another() {
    let env = TestEnv::new("plug-ratify").await;
    let tenant = setup(&env, 1, 2).await;
    support::world::more_managers(&env, &["bob"]).await;
    for (name, subject) in [("glass-dave", "dave"), ("glass-erin", "erin")] {
        support::world::grant(
            &env,
            "partner",
            name,
            json!({"kind": "User", "name": subject}),
            json!({"project": "app", "projectRole": "admin"}),
            "1h",
        )
        .await;
        wait_phase(&env, name, BindingPhase::Active).await;
    }

    let (code, out, _) = access("bob", &["list", "-w", &env.name]);
    assert_eq!(code, 0);
    assert!(out.contains("Break-glass grants you can ratify"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("glass-dave") && l.contains("partner") && l.contains("Awaiting")),
        "{out}"
    );
    // The subject and the partner are refused by the plugin, before writing.
    let (code, _, err) = access("dave", &["ratify", "glass-dave", "-w", &env.name]);
    assert_eq!(code, 1);
    assert!(err.contains("is yours (dave)"), "{err}");
    let (code, _, err) = access("partner", &["ratify", "glass-dave", "-w", &env.name]);
    assert_eq!(code, 1);
    assert!(err.contains("you (partner) broke the glass"), "{err}");
    // An objection needs a reason.
    let (code, _, err) = access("bob", &["ratify", "glass-erin", "-w", &env.name, "--object"]);
    assert_eq!(code, 1);
    assert!(err.contains("--comment"), "{err}");

    let (code, out, _) = access(
        "bob",
        &["ratify", "glass-dave", "-w", &env.name, "--comment", "INC-7 was real"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("the break-glass is ratified"), "{out}");
    let b = env.api::<RoleBinding>("admin").await.get("glass-dave").await.unwrap();
    let r = b.status.unwrap().ratification.unwrap();
    assert_eq!(
        (r.by.as_deref(), r.comment.as_deref()),
        (Some("bob"), Some("INC-7 was real"))
    );
    assert!(can("dave", "create", "configmaps", &tenant).await);

    let (code, out, _) = access(
        "bob",
        &[
            "ratify",
            "glass-erin",
            "-w",
            &env.name,
            "--object",
            "--comment",
            "no incident on record",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("the grant is revoked"), "{out}");
    wait_phase(&env, "glass-erin", BindingPhase::Revoked).await;
    assert!(!can("erin", "create", "configmaps", &tenant).await);
}
