//! Every manifest in `examples/` applies to a real API server, each as the
//! person its procedure names, in order.

mod support;

use support::plane;

fn apply(identity: &str, file: &str) {
    plane().kubectl_ok(identity, &["apply", "-f", &format!("examples/{file}")], None);
}

#[tokio::test]
async fn every_example_applies_as_the_person_it_names() {
    let plane = plane();
    // The operator creates the workspace namespace; without it, the test does.
    plane.kubectl_ok("admin", &["create", "namespace", "ws-payments"], None);

    apply("partner", "00-workspace.yaml");
    apply("partner", "01-project-and-managers.yaml");
    apply("alice", "02-emergency-user.yaml");
    apply("bob", "03-second-approval.yaml");

    // 03: erin files the request, then the partner appends the approval.
    let text = std::fs::read_to_string(support::repo().join("examples/04-break-glass.yaml")).unwrap();
    let without_approvals = text.split("  approvals:").next().unwrap().to_owned();
    plane.kubectl_ok("erin", &["apply", "-f", "-"], Some(&without_approvals));
    // The requester cannot assert the partner's approval herself...
    let (ok, _, stderr) = plane.kubectl("erin", &["apply", "-f", "examples/04-break-glass.yaml"], None);
    assert!(
        !ok && stderr.contains("a vote you add must name you (erin)"),
        "{stderr}"
    );
    // ...the partner can.
    apply("partner", "04-break-glass.yaml");

    apply("partner", "05-partner-self-assignment.yaml");
    apply("alice", "06-revoke.yaml");

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
        ],
        "a new example needs a step in this test"
    );

    // Printer columns answer the first question, and `kubectl get rolebindings`
    // still means RBAC's.
    let rr = plane.kubectl_ok("admin", &["get", "rr", "-n", "ws-payments"], None);
    for header in ["SUBJECT", "PROJECT", "ROLE", "APPROVALS", "PHASE", "AGE"] {
        assert!(rr.contains(header), "missing column {header} in\n{rr}");
    }
    assert!(
        rr.contains("dave-checkout-admin") && rr.contains("erin-checkout-user"),
        "{rr}"
    );
    let frb = plane.kubectl_ok("admin", &["get", "frb", "-n", "ws-payments"], None);
    for header in ["SUBJECT", "ROLE", "PHASE", "EXPIRES"] {
        assert!(frb.contains(header), "missing column {header} in\n{frb}");
    }
    assert!(frb.contains("partner-manager"), "{frb}");
    let (_, rbac, stderr) = plane.kubectl("admin", &["get", "rolebindings", "-n", "ws-payments"], None);
    assert!(
        !rbac.contains("partner-manager"),
        "`kubectl get rolebindings` must keep meaning RBAC's: {rbac}{stderr}"
    );
    let full = plane.kubectl_ok(
        "admin",
        &["get", "rolebindings.foureyes.dev", "-n", "ws-payments", "-o", "name"],
        None,
    );
    assert!(full.contains("partner-manager"), "{full}");
}
