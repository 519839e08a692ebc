//! The Helm chart `charts/foureyes`: it lints, renders, and its manifests are
//! accepted by a real API server (server-side dry run); its RBAC is exactly
//! what `foureyes rbac` prints for the same configuration, and its
//! configuration file is one the operator accepts.
//!
//! helm is built from the Go module proxy by `tests/controlplane/helm/build.sh`
//! (cached after the first build).

mod support;

use foureyes::config::Config;
use serde_json::Value;
use support::{plane, run_helm};

/// `helm template` of the chart in `namespace` with a values file (YAML text).
fn template(namespace: &str, values: &str, extra: &[&str]) -> String {
    let (ok, out, err) = try_template(namespace, values, extra);
    assert!(ok, "helm template failed:\n{err}");
    out
}

fn try_template(namespace: &str, values: &str, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec![
        "template",
        "foureyes",
        "charts/foureyes",
        "--namespace",
        namespace,
        "-f",
        "-",
    ];
    args.extend_from_slice(extra);
    run_helm(&args, Some(values))
}

/// The documents of a YAML stream (empty ones left out).
fn parse_docs(stream: &str) -> Vec<Value> {
    use serde::Deserialize as _;
    serde_yaml::Deserializer::from_str(stream)
        .map(|d| Value::deserialize(d).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

/// The server accepts every rendered manifest (server-side dry run as the
/// admin; the CRDs included).
fn server_accepts(rendered: &str) {
    let out = plane().kubectl_ok(
        "admin",
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=foureyes-chart-test",
            "--dry-run=server",
            "-f",
            "-",
        ],
        Some(rendered),
    );
    for kind in [
        "customresourcedefinition.apiextensions.k8s.io/workspaces.foureyes.dev",
        "deployment.apps/",
        "clusterrole.rbac.authorization.k8s.io/foureyes-operator",
        "clusterrole.rbac.authorization.k8s.io/foureyes-edit",
        "role.rbac.authorization.k8s.io/foureyes-leader-election",
        "validatingadmissionpolicy.admissionregistration.k8s.io/foureyes-identity",
        "mutatingadmissionpolicy.admissionregistration.k8s.io/foureyes-creator",
        "configmap/foureyes-admission",
        "service/",
        "serviceaccount/",
        "poddisruptionbudget.policy/",
    ] {
        assert!(out.contains(kind), "{kind} not applied:\n{out}");
    }
}

/// The chart's RBAC equals `foureyes rbac` for the same configuration.
fn rbac_matches(rendered: &[Value], config: &Config, namespace: &str, sa: &str, lease: &str) {
    for expected in foureyes::manifests::operator::operator_rbac(config, namespace, sa, lease) {
        let kind = expected["kind"].as_str().unwrap();
        let name = expected["metadata"]["name"].as_str().unwrap();
        // Through YAML and back, as the rendered side went.
        let expected: Value = serde_yaml::from_str(&serde_yaml::to_string(&expected).unwrap()).unwrap();
        assert_eq!(find(rendered, kind, name), &expected, "{kind} {name}");
    }
}

/// The configuration file in the chart's ConfigMap, as the operator reads it.
fn rendered_config(rendered: &[Value]) -> Config {
    let cm = find(rendered, "ConfigMap", "foureyes-config");
    let text = cm["data"]["config.yaml"].as_str().expect("config.yaml");
    let config: Config = serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    config.validate().expect("a valid configuration");
    config
}

#[test]
fn the_chart_lints() {
    let (ok, out, err) = run_helm(&["lint", "--strict", "charts/foureyes"], None);
    assert!(ok, "helm lint:\n{out}\n{err}");
    let (ok, out, err) = run_helm(
        &[
            "lint",
            "--strict",
            "charts/foureyes",
            "--set",
            "serviceMonitor.enabled=true",
        ],
        None,
    );
    assert!(ok, "helm lint with the ServiceMonitor:\n{out}\n{err}");
}

#[test]
fn default_values_render_what_the_server_accepts() {
    let rendered = template("foureyes-system", "{}", &["--include-crds"]);
    server_accepts(&rendered);
    let docs = parse_docs(&rendered);
    assert!(!docs.iter().any(|d| d["kind"] == "ServiceMonitor"), "off by default");
    let config = rendered_config(&docs);
    assert_eq!(config, Config::default(), "the chart's defaults are the operator's");
    rbac_matches(&docs, &config, "foureyes-system", "foureyes", "foureyes");
    // The default project roles' ClusterRoles ship with the chart.
    for role in foureyes::rbac::project_roles::cluster_roles() {
        let name = role.metadata.name.clone().unwrap();
        let expected: Value = serde_yaml::from_str(&serde_yaml::to_string(&role).unwrap()).unwrap();
        assert_eq!(find(&docs, "ClusterRole", &name), &expected, "{name}");
        assert!(config.allowed().contains(&name), "{name}");
    }

    let params = find(&docs, "ConfigMap", "foureyes-admission");
    assert_eq!(params["data"]["trustedAsserterGroups"], "foureyes:trusted-asserters");
    assert_eq!(
        params["data"]["operatorUsers"],
        "system:serviceaccount:foureyes-system:foureyes"
    );
    assert_eq!(params["data"]["leaderLeases"], "foureyes-system/foureyes");

    let deployment = find(&docs, "Deployment", "foureyes");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert!(c["resources"]["requests"].is_object());
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert_eq!(args[0], "run");
    assert!(args.contains(&"--config=/etc/foureyes/config.yaml"), "{args:?}");
    assert!(args.contains(&"--leader-elect=true"), "{args:?}");
    assert_eq!(pod["serviceAccountName"], "foureyes");
    let pdb = find(&docs, "PodDisruptionBudget", "foureyes");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
}

#[test]
fn custom_values_reach_the_config_the_rbac_and_the_policies() {
    let ns = format!("chart-{}", std::process::id() % 100_000);
    plane().kubectl_ok("admin", &["create", "namespace", &ns], None);
    let values = r#"
serviceMonitor: { enabled: false }
serviceAccount: { name: access-operator }
leaderElection: { leaseName: access-leader }
config:
  partners: { users: [pat], groups: [platform] }
  trustedAsserters: { groups: [argocd, flux] }
  roleMap: { reader: view, oncall: edit }
  allowedClusterRoles: [view, edit, foureyes-edit, foureyes-admin]
  protectedNamespaces: [ops]
  sweepInterval: 1m
  notifications:
    sinks:
    - { name: oncall, url: "https://hooks.example.com/x", secretRef: { name: hooks, key: hmac } }
    - { name: chat, format: slack, urlSecretRef: { name: slack-url, key: url }, secretRef: { name: hooks, key: chat } }
"#;
    let rendered = template(&ns, values, &["--include-crds"]);
    server_accepts(&rendered);
    let docs = parse_docs(&rendered);
    let config = rendered_config(&docs);
    assert!(config.partners.users.contains("pat") && config.partners.groups.contains("platform"));
    assert_eq!(config.role_map["oncall"], "edit");
    assert_eq!(config.role_map["reader"], "view");
    assert_eq!(config.role_map["user"], "foureyes-edit", "maps merge with the defaults");
    assert_eq!(config.allowed().len(), 4);
    assert_eq!(config.notifications.sinks.len(), 2);
    rbac_matches(&docs, &config, &ns, "access-operator", "access-leader");
    // The notification Secrets, by name, once each.
    let secrets = find(&docs, "Role", "foureyes-notification-secrets");
    assert_eq!(
        secrets["rules"][0]["resourceNames"],
        serde_json::json!(["hooks", "slack-url"])
    );

    let params = find(&docs, "ConfigMap", "foureyes-admission");
    assert_eq!(params["metadata"]["namespace"], ns.as_str());
    assert_eq!(params["data"]["trustedAsserterGroups"], "argocd,flux");
    assert_eq!(
        params["data"]["operatorUsers"],
        format!("system:serviceaccount:{ns}:access-operator").as_str()
    );
    assert_eq!(params["data"]["leaderLeases"], format!("{ns}/access-leader").as_str());
    let binding = find(&docs, "ValidatingAdmissionPolicyBinding", "foureyes-identity");
    assert_eq!(binding["spec"]["paramRef"]["namespace"], ns.as_str());
    assert_eq!(binding["spec"]["paramRef"]["name"], "foureyes-admission");

    // Without allowed ClusterRoles there is no `bind` rule on them (one
    // without names would allow binding any ClusterRole); the ones on the
    // workspace Roles and on the token finder stay.
    // (Helm merges maps with the defaults: a role is removed by setting it to null.)
    let rendered = template(
        &ns,
        "config: { roleMap: { reader: null, user: null, admin: null } }",
        &["--show-only", "templates/rbac.yaml"],
    );
    let docs = parse_docs(&rendered);
    assert!(
        !docs
            .iter()
            .any(|d| d["metadata"]["name"] == "foureyes-notification-secrets"),
        "no Secret is read without sinks"
    );
    let config: Config = serde_yaml::from_str("roleMap: {}").unwrap();
    rbac_matches(&docs, &config, &ns, "foureyes", "foureyes");
    let role = find(&docs, "ClusterRole", "foureyes-operator");
    let binds: Vec<_> = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verbs"].as_array().unwrap().iter().any(|v| v == "bind"))
        .collect();
    assert_eq!(binds.len(), 2, "{rendered}");
    assert_eq!(binds[0]["resources"][0], "roles");
    assert_eq!(binds[0]["resourceNames"].as_array().unwrap().len(), 3);
    assert_eq!(binds[1]["resources"][0], "clusterroles");
    assert_eq!(binds[1]["resourceNames"], serde_json::json!(["foureyes-token-finder"]));
}

#[test]
fn the_service_monitor_renders_when_enabled() {
    let rendered = template(
        "foureyes-system",
        "serviceMonitor: { enabled: true, interval: 15s }",
        &[],
    );
    let docs = parse_docs(&rendered);
    let sm = find(&docs, "ServiceMonitor", "foureyes");
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["interval"], "15s");
    let service = find(&docs, "Service", "foureyes-metrics");
    assert_eq!(
        sm["spec"]["selector"]["matchLabels"], service["spec"]["selector"],
        "it selects the metrics Service"
    );
}

#[test]
fn several_replicas_need_leader_election() {
    let (ok, _, err) = try_template("foureyes-system", "leaderElection: { enabled: false }", &[]);
    assert!(!ok && err.contains("needs leaderElection.enabled"), "{err}");
    let rendered = template(
        "foureyes-system",
        "replicaCount: 1\nleaderElection: { enabled: false }",
        &["--show-only", "templates/deployment.yaml"],
    );
    assert!(rendered.contains("--leader-elect=false"), "{rendered}");
}

/// The documented path on a cluster set up with `foureyes crds` and
/// `foureyes rbac` (as this control plane is): adopt the existing objects,
/// `helm install`; then upgrade: the chart's CRDs with kubectl first, then
/// `helm upgrade`. The identity policy keeps working throughout.
#[test]
fn install_adopts_existing_objects_and_upgrades_crds_first() {
    let plane = plane();
    let kubeconfig = plane.kubeconfig("admin");
    let kubeconfig = kubeconfig.to_str().unwrap();
    let cluster_wide = [
        "clusterrole/foureyes-operator",
        "clusterrolebinding/foureyes-operator",
        "clusterrole/foureyes-auditor",
        "clusterrolebinding/foureyes-auditor",
        "clusterrole/foureyes-lockout-writer",
        "clusterrolebinding/foureyes-lockout-writer",
        "clusterrole/foureyes-sweep",
        "clusterrolebinding/foureyes-sweep",
        "clusterrole/foureyes-token-finder",
        "clusterrole/foureyes-view",
        "clusterrole/foureyes-edit",
        "clusterrole/foureyes-admin",
    ];
    // Every admission policy and its binding, as `foureyes crds` names them.
    let policies: Vec<String> = foureyes::manifests::admission_policies("foureyes-system")
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p["kind"].as_str().unwrap().to_lowercase(),
                p["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    let cluster_wide: Vec<&str> = cluster_wide
        .iter()
        .copied()
        .chain(policies.iter().map(String::as_str))
        .collect();
    let namespaced = [
        "configmap/foureyes-admission",
        "role/foureyes-leader-election",
        "rolebinding/foureyes-leader-election",
    ];
    for (objs, ns) in [(&cluster_wide[..], None), (&namespaced[..], Some("foureyes-system"))] {
        let mut label = vec!["label", "--overwrite"];
        let mut annotate = vec!["annotate", "--overwrite"];
        if let Some(ns) = ns {
            label.extend(["-n", ns]);
            annotate.extend(["-n", ns]);
        }
        label.extend(objs);
        annotate.extend(objs);
        label.push("app.kubernetes.io/managed-by=Helm");
        annotate.extend([
            "meta.helm.sh/release-name=foureyes",
            "meta.helm.sh/release-namespace=foureyes-system",
        ]);
        plane.kubectl_ok("admin", &label, None);
        plane.kubectl_ok("admin", &annotate, None);
    }
    let helm_ok = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--kubeconfig", kubeconfig]);
        let (ok, out, err) = run_helm(&all, None);
        assert!(ok, "helm {}:\n{out}\n{err}", args.join(" "));
        out
    };
    helm_ok(&[
        "install",
        "foureyes",
        "charts/foureyes",
        "--namespace",
        "foureyes-system",
    ]);
    // Upgrade: CRDs first (Helm never upgrades crds/), then the release.
    plane.kubectl_ok(
        "admin",
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            "charts/foureyes/crds/",
        ],
        None,
    );
    helm_ok(&[
        "upgrade",
        "foureyes",
        "charts/foureyes",
        "--namespace",
        "foureyes-system",
        "--reuse-values",
        "--set",
        "config.trustedAsserters.groups={foureyes:trusted-asserters,flux}",
    ]);
    let groups = plane.kubectl_ok(
        "admin",
        &[
            "get",
            "configmap",
            "-n",
            "foureyes-system",
            "foureyes-admission",
            "-o",
            "jsonpath={.data.trustedAsserterGroups}",
        ],
        None,
    );
    assert_eq!(groups, "foureyes:trusted-asserters,flux");
    // The identity policy, now the release's, still refuses a forged requester.
    let forged = r#"
apiVersion: foureyes.dev/v1alpha1
kind: RoleRequest
metadata: { name: forged, namespace: foureyes-probe }
spec:
  subject: { kind: User, name: dave }
  workspaceRole: member
  duration: 1h
  justification: probe
  requester: bob
"#;
    let (ok, _, err) = plane.kubectl("alice", &["create", "--dry-run=server", "-f", "-"], Some(forged));
    assert!(
        !ok && err.contains("spec.requester must be your own user name"),
        "{err}"
    );
}

/// SECURITY F1: the chart installs every admission policy and binding that
/// `foureyes crds` prints, document by document, with the same parameters.
#[test]
fn the_chart_renders_exactly_the_admission_policies_of_foureyes_crds() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_foureyes"))
        .arg("crds")
        .output()
        .expect("foureyes crds");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let is_policy = |d: &Value| {
        let kind = d["kind"].as_str().unwrap_or_default();
        kind.ends_with("AdmissionPolicy") || kind.ends_with("AdmissionPolicyBinding")
    };
    let expected: Vec<Value> = parse_docs(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .filter(is_policy)
        .collect();
    let rendered: Vec<Value> = parse_docs(&template("foureyes-system", "{}", &[]))
        .into_iter()
        .filter(is_policy)
        .collect();
    let names = |docs: &[Value]| -> Vec<String> {
        let mut n: Vec<String> = docs
            .iter()
            .map(|d| {
                format!(
                    "{}/{}",
                    d["kind"].as_str().unwrap(),
                    d["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&rendered), names(&expected), "the same policies and bindings");
    assert!(expected.len() >= 16, "{:?}", names(&expected));
    for doc in &expected {
        let kind = doc["kind"].as_str().unwrap();
        let name = doc["metadata"]["name"].as_str().unwrap();
        assert_eq!(find(&rendered, kind, name), doc, "{kind} {name}");
    }
    // In another release namespace, only the parameters' namespace differs
    // (the lockouts policy's parameters are the cluster-scoped Lockouts).
    let elsewhere = parse_docs(&template("platform", "{}", &[]));
    for doc in expected
        .iter()
        .filter(|d| !d["spec"]["paramRef"]["namespace"].is_null())
    {
        let name = doc["metadata"]["name"].as_str().unwrap();
        let moved = find(&elsewhere, doc["kind"].as_str().unwrap(), name);
        assert_eq!(moved["spec"]["paramRef"]["namespace"], "platform", "{name}");
    }
}
