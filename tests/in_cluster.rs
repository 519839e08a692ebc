//! The operator as its users run it: from its image (`scripts/image.sh`),
//! installed by `helm install` with the chart's defaults (two replicas, the
//! image `ghcr.io/foureyes-dev/foureyes:<appVersion>`), as pods on a node that
//! really runs them (`tests/node/`), with a ServiceAccount token, probes and
//! the `kubernetes` Service's address. Then, in order: both pods Ready and one
//! holds the Lease; the emergency procedures with the kubectl plugin (grant,
//! request and approval, break-glass, expiry, revocation, history verified);
//! `helm upgrade` with a changed value rolls the pods and loses no grant and
//! no history entry; deleting the leader pod hands over within the Lease's
//! duration; `helm uninstall` leaves the CRDs and the history, and no pod.
//!
//! Needs root (the node). One test: the steps share one release.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{ControlPlane, plane, run_helm};

const NS: &str = "foureyes-system";
const SELECTOR: &str = "app.kubernetes.io/name=foureyes";

/// The chart's values for this cluster: only the operator's configuration
/// (the people of the tests); the image, replicas and Lease are the defaults.
const VALUES: &str = r#"
config:
  partners: { users: [partner], groups: ["foureyes:partners"] }
  auditors: { groups: ["foureyes:auditors"] }
  sweepInterval: 10s
  retention: 1h
"#;

fn cluster() -> &'static ControlPlane {
    support::with_node();
    plane()
}

fn helm(args: &[&str], stdin: Option<&str>) -> String {
    let kubeconfig = plane().kubeconfig("admin");
    let mut all: Vec<&str> = args.to_vec();
    all.extend_from_slice(&["--namespace", NS, "--kubeconfig", kubeconfig.to_str().unwrap()]);
    let (ok, out, err) = run_helm(&all, stdin);
    if !ok {
        dump();
    }
    assert!(ok, "helm {}:\n{out}\n{err}", args.join(" "));
    out
}

fn admin(args: &[&str]) -> String {
    plane().kubectl_ok("admin", args, None)
}

/// What the cluster shows about the operator, for a failed step.
fn dump() {
    let p = plane();
    for args in [
        &["-n", NS, "get", "deploy,rs,pods,lease", "-o", "wide"][..],
        &["-n", NS, "describe", "pods"][..],
        &[
            "-n",
            NS,
            "logs",
            "-l",
            SELECTOR,
            "--tail=40",
            "--all-containers",
            "--prefix",
        ][..],
    ] {
        let (_, out, err) = p.kubectl("admin", args, None);
        eprintln!("--- kubectl {} ---\n{out}{err}", args.join(" "));
    }
}

/// Runs `kubectl access ARGS` as `identity`; returns its exit code and output.
fn plugin(identity: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-access"))
        .args(args)
        .env("KUBECONFIG", plane().kubeconfig(identity))
        .env("NO_COLOR", "1")
        .output()
        .expect("run kubectl-access");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn plugin_ok(identity: &str, args: &[&str]) -> String {
    let (code, out) = plugin(identity, args);
    if code != 0 {
        dump();
    }
    assert_eq!(code, 0, "kubectl access {} (as {identity}):\n{out}", args.join(" "));
    out
}

/// Waits until `kubectl get KIND/NAME -n NS` has `value` at `jsonpath`.
fn wait_for(ns: &str, object: &str, jsonpath: &str, value: &str, timeout: Duration) {
    let condition = format!("--for=jsonpath={{{jsonpath}}}={value}");
    let limit = format!("--timeout={}s", timeout.as_secs());
    let mut args = vec!["wait", object, &condition, &limit];
    if !ns.is_empty() {
        args.extend_from_slice(&["-n", ns]);
    }
    let (ok, out, err) = plane().kubectl("admin", &args, None);
    if !ok {
        dump();
    }
    assert!(ok, "{object} in {ns}: {jsonpath} never became {value}:\n{out}{err}");
}

fn wait_binding(name: &str, phase: &str) {
    wait_for(
        "ws-payments",
        &format!("rolebindings.foureyes.dev/{name}"),
        ".status.phase",
        phase,
        Duration::from_secs(60),
    );
}

fn wait_request(name: &str, phase: &str) {
    wait_for(
        "ws-payments",
        &format!("rolerequests.foureyes.dev/{name}"),
        ".status.phase",
        phase,
        Duration::from_secs(60),
    );
}

/// `kubectl auth can-i` as the admin for `user`, until the answer is `want`.
fn wait_can(user: &str, verb: &str, resource: &str, ns: &str, want: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, out, _) = plane().kubectl(
            "admin",
            &["auth", "can-i", verb, resource, "-n", ns, "--as", user],
            None,
        );
        if (out.trim() == "yes") == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{user} {} {verb} {resource} in {ns}",
            if want { "never may" } else { "still may" }
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The operator's pods: (name, ready, deleting).
fn pods() -> Vec<(String, bool, bool)> {
    let out = admin(&[
        "-n",
        NS,
        "get",
        "pods",
        "-l",
        SELECTOR,
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status} {.metadata.deletionTimestamp}{"\n"}{end}"#,
    ]);
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_owned(), f.get(1) == Some(&"True"), f.len() > 2)
        })
        .collect()
}

fn leader() -> String {
    let (_, out, _) = plane().kubectl(
        "admin",
        &[
            "-n",
            NS,
            "get",
            "lease",
            "foureyes",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
        None,
    );
    out.trim().to_owned()
}

/// Waits until exactly `n` operator pods exist, all Ready; returns their names.
fn wait_ready_pods(n: usize, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let pods = pods();
        if pods.len() == n && pods.iter().all(|(_, ready, deleting)| *ready && !*deleting) {
            return pods.into_iter().map(|(name, _, _)| name).collect();
        }
        if Instant::now() >= deadline {
            dump();
            panic!("never {n} Ready operator pods: {pods:?}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits until one of `pods` holds the Lease; returns it.
fn wait_leader(pods: &[String], timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let holder = leader();
        if pods.contains(&holder) {
            return holder;
        }
        if Instant::now() >= deadline {
            dump();
            panic!("none of {pods:?} holds the Lease (holder {holder:?})");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every history chain of the workspace: chain name -> its entries (JSON).
fn history() -> Vec<(String, Vec<serde_json::Value>)> {
    let out = plugin_ok("auditor", &["history", "payments", "--all", "-o", "json"]);
    let chains: Vec<serde_json::Value> = serde_json::from_str(&out).expect("history JSON");
    chains
        .into_iter()
        .map(|c| {
            (
                c["chain"].as_str().unwrap().to_owned(),
                c["entries"].as_array().unwrap().clone(),
            )
        })
        .collect()
}

/// Every chain of `before` is still there, with its entries as they were first.
fn history_kept(before: &[(String, Vec<serde_json::Value>)]) {
    let after = history();
    for (chain, entries) in before {
        let now = after
            .iter()
            .find(|(c, _)| c == chain)
            .unwrap_or_else(|| panic!("chain {chain} gone"));
        assert!(
            now.1.starts_with(entries),
            "chain {chain} changed:\n{entries:#?}\n{:#?}",
            now.1
        );
    }
}

#[test]
fn the_operator_installed_by_helm_works_from_inside_the_cluster() {
    let p = cluster();
    let t = Instant::now();
    let step = |what: &str| eprintln!("[{:>5.1}s] {what}", t.elapsed().as_secs_f64());

    // --- helm install: the chart's defaults, two replicas, from the image.
    p.kubectl_ok(
        "admin",
        &[
            "apply",
            "--server-side",
            "--field-manager=foureyes-tests",
            "-f",
            "tests/controlplane/rbac.yaml",
        ],
        None,
    );
    helm(
        &[
            "install",
            "foureyes",
            "charts/foureyes",
            "--create-namespace",
            "-f",
            "-",
            "--wait",
            "--timeout",
            "180s",
        ],
        Some(VALUES),
    );
    step("helm install --wait");
    let image = admin(&[
        "-n",
        NS,
        "get",
        "deploy",
        "foureyes",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(
        image,
        format!("ghcr.io/foureyes-dev/foureyes:{}", env!("CARGO_PKG_VERSION"))
    );
    let first = wait_ready_pods(2, Duration::from_secs(120));
    let leader1 = wait_leader(&first, Duration::from_secs(60));
    step(&format!("both pods Ready, {leader1} holds the Lease"));
    // Its own ServiceAccount token: the API server saw the operator's user.
    let token = admin(&[
        "-n",
        NS,
        "get",
        "pod",
        &leader1,
        "-o",
        "jsonpath={.spec.volumes[*].projected.sources[*].serviceAccountToken.path}",
    ]);
    assert!(token.contains("token"), "no ServiceAccount token mounted: {token:?}");
    p.wait_for_policies();
    step("admission policies in effect");

    // --- the emergency procedures, against the pods.
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
    wait_for(
        "",
        "workspace/payments",
        r#".status.conditions[?(@.type=="Ready")].status"#,
        "True",
        Duration::from_secs(60),
    );
    p.kubectl_ok(
        "partner",
        &["apply", "-f", "examples/01-project-and-managers.yaml"],
        None,
    );
    wait_binding("manager-alice", "Active");
    wait_binding("manager-bob", "Active");
    wait_for(
        "ws-payments",
        "project/checkout",
        r#".status.conditions[?(@.type=="Ready")].status"#,
        "True",
        Duration::from_secs(60),
    );
    step("workspace, project and managers");

    // Grant: a manager adds an emergency user.
    plugin_ok(
        "alice",
        &[
            "grant",
            "dave",
            "-w",
            "payments",
            "--role",
            "member",
            "--for",
            "8h",
            "--name",
            "member-dave",
            "--reason",
            "INC-1 on call",
        ],
    );
    wait_binding("member-dave", "Active");
    wait_can("dave", "list", "configmaps", "ws-payments", true);
    // Request and the second manager's approval.
    plugin_ok(
        "alice",
        &[
            "request",
            "dave",
            "-w",
            "payments",
            "--project",
            "checkout",
            "--project-role",
            "admin",
            "--for",
            "2h",
            "--name",
            "dave-checkout-admin",
            "--reason",
            "INC-1 restart the workers",
        ],
    );
    wait_request("dave-checkout-admin", "Pending");
    plugin_ok(
        "bob",
        &[
            "approve",
            "dave-checkout-admin",
            "-w",
            "payments",
            "--comment",
            "confirmed",
        ],
    );
    wait_request("dave-checkout-admin", "Granted");
    wait_binding("dave-checkout-admin", "Active");
    wait_can("dave", "create", "deployments", "payments-checkout", true);
    // Break-glass: nobody answers, the partner approves alone.
    plugin_ok(
        "erin",
        &[
            "request",
            "-w",
            "payments",
            "--project",
            "checkout",
            "--project-role",
            "user",
            "--for",
            "1h",
            "--name",
            "erin-checkout-user",
            "--reason",
            "INC-2 no second manager",
        ],
    );
    wait_request("erin-checkout-user", "Pending");
    plugin_ok(
        "partner",
        &[
            "approve",
            "erin-checkout-user",
            "-w",
            "payments",
            "--comment",
            "break-glass",
        ],
    );
    wait_request("erin-checkout-user", "Granted");
    wait_for(
        "ws-payments",
        "rolerequests.foureyes.dev/erin-checkout-user",
        ".status.breakGlassBy",
        "partner",
        Duration::from_secs(30),
    );
    wait_binding("erin-checkout-user", "Active");
    // Expiry on its own.
    plugin_ok(
        "alice",
        &[
            "grant",
            "erin",
            "-w",
            "payments",
            "--role",
            "member",
            "--for",
            "5s",
            "--name",
            "erin-short",
            "--reason",
            "INC-3 once",
        ],
    );
    wait_binding("erin-short", "Active");
    wait_binding("erin-short", "Expired");
    // Revocation at once.
    plugin_ok(
        "alice",
        &["revoke", "member-dave", "-w", "payments", "--reason", "laptop stolen"],
    );
    wait_binding("member-dave", "Revoked");
    wait_can("dave", "list", "configmaps", "ws-payments", false);
    // The history, verified.
    plugin_ok("auditor", &["history", "verify", "payments", "--all"]);
    step("grant, request, approval, break-glass, expiry, revocation, history verified");

    // --- helm upgrade with a changed value: the pods roll, nothing is lost.
    let before = history();
    assert!(
        before
            .iter()
            .any(|(_, entries)| entries.iter().any(|e| e.to_string().contains("dave-checkout-admin"))),
        "{before:#?}"
    );
    helm(
        &[
            "upgrade",
            "foureyes",
            "charts/foureyes",
            "--reuse-values",
            "--set",
            "logLevel=debug",
            "--wait",
            "--timeout",
            "180s",
        ],
        None,
    );
    let second = wait_ready_pods(2, Duration::from_secs(120));
    assert!(
        second.iter().all(|pod| !first.contains(pod)),
        "not rolled: {first:?} -> {second:?}"
    );
    let env = admin(&[
        "-n",
        NS,
        "get",
        "pod",
        &second[0],
        "-o",
        "jsonpath={.spec.containers[0].env}",
    ]);
    assert!(env.contains(r#""value":"debug""#), "{env}");
    let leader2 = wait_leader(&second, Duration::from_secs(60));
    step(&format!("helm upgrade rolled {first:?} to {second:?}; {leader2} leads"));
    wait_binding("dave-checkout-admin", "Active");
    wait_can("dave", "create", "deployments", "payments-checkout", true);
    wait_can("erin", "create", "deployments", "payments-checkout", true);
    history_kept(&before);
    // The new leader acts.
    plugin_ok(
        "alice",
        &[
            "grant",
            "carol",
            "-w",
            "payments",
            "--role",
            "member",
            "--for",
            "1h",
            "--name",
            "member-carol",
            "--reason",
            "after the upgrade",
        ],
    );
    wait_binding("member-carol", "Active");
    plugin_ok("auditor", &["history", "verify", "payments", "--all"]);
    step("grants and history kept; the new leader grants");

    // --- the leader pod deleted: the other replica takes over within the
    // Lease's duration (15 s by default; at once when the leader releases it
    // on SIGTERM, as here).
    let deleted = Instant::now();
    admin(&["-n", NS, "delete", "pod", &leader2, "--wait=false"]);
    // The standby replica, or the replacement pod if it is quicker.
    let deadline = Instant::now() + Duration::from_secs(16);
    let leader3 = loop {
        let holder = leader();
        if !holder.is_empty() && holder != leader2 {
            break holder;
        }
        if Instant::now() >= deadline {
            dump();
            panic!("nobody took the Lease over from {leader2}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let handover = deleted.elapsed();
    step(&format!(
        "leader {leader2} deleted; {leader3} took over after {:.1}s",
        handover.as_secs_f64()
    ));
    assert!(handover <= Duration::from_secs(16), "{handover:?}");
    plugin_ok(
        "alice",
        &[
            "grant",
            "dave",
            "-w",
            "payments",
            "--role",
            "member",
            "--for",
            "1h",
            "--name",
            "member-dave-2",
            "--reason",
            "after the handover",
        ],
    );
    wait_binding("member-dave-2", "Active");
    wait_ready_pods(2, Duration::from_secs(120));
    step("the new leader grants; two replicas again");

    // --- helm uninstall: the CRDs, the foureyes objects and the history stay;
    // no pod runs.
    let chunks = admin(&[
        "-n",
        "ws-payments",
        "get",
        "configmaps",
        "-l",
        "foureyes.dev/history",
        "-o",
        "name",
    ]);
    assert!(!chunks.trim().is_empty());
    helm(&["uninstall", "foureyes", "--wait", "--timeout", "120s"], None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pods().is_empty() {
        assert!(
            Instant::now() < deadline,
            "pods left after helm uninstall: {:?}",
            pods()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let all_pods = admin(&["get", "pods", "-A", "-o", "name"]);
    assert!(all_pods.trim().is_empty(), "pods still running: {all_pods}");
    for crd in ["workspaces", "projects", "rolebindings", "rolerequests"] {
        admin(&["get", "crd", &format!("{crd}.foureyes.dev")]);
    }
    assert_eq!(
        admin(&[
            "-n",
            "ws-payments",
            "get",
            "configmaps",
            "-l",
            "foureyes.dev/history",
            "-o",
            "name"
        ]),
        chunks
    );
    admin(&[
        "-n",
        "ws-payments",
        "get",
        "rolebindings.foureyes.dev/dave-checkout-admin",
    ]);
    history_kept(&before);
    plugin_ok("auditor", &["history", "verify", "payments", "--all"]);
    step("helm uninstall: CRDs, objects and history kept, no pods");
}
