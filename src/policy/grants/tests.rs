use k8s_openapi::api::rbac::v1::ClusterRole;
use serde_json::json;

use super::*;

/// The built-in roles as the bootstrap policy defines them: `admin`, `edit`
/// and `view` have no rules of their own, only aggregation rules.
fn bootstrap() -> Vec<ClusterRole> {
    #[derive(serde::Deserialize)]
    struct List {
        items: Vec<ClusterRole>,
    }
    let list: List = serde_yaml::from_str(include_str!("bootstrap-roles.yaml")).expect("bootstrap roles");
    list.items
}

fn of(name: &str, all: &[ClusterRole]) -> Permissions {
    let role = all
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(name))
        .expect("role");
    permissions(name, &effective_rules(role, all))
}

fn verbs<'a>(p: &'a Permissions, resource: &str) -> Option<&'a [String]> {
    p.resources
        .iter()
        .find(|r| r.resource == resource)
        .map(|r| r.verbs.as_slice())
}

#[test]
fn view_reads_without_secrets_and_nothing_is_dangerous() {
    let all = bootstrap();
    let view = of("view", &all);
    assert!(view.dangerous.is_empty(), "{view:?}");
    assert!(view.summary.starts_with("view: reads "), "{}", view.summary);
    assert!(view.summary.ends_with(", writes none"), "{}", view.summary);
    assert_eq!(
        verbs(&view, "pods"),
        Some(&["get", "list", "watch"].map(String::from)[..])
    );
    assert_eq!(
        verbs(&view, "apps/deployments"),
        Some(&["get", "list", "watch"].map(String::from)[..])
    );
    assert_eq!(verbs(&view, "secrets"), None);
}

#[test]
fn edit_follows_aggregation_through_view_and_is_marked() {
    let all = bootstrap();
    let edit = of("edit", &all);
    // From view, aggregated into edit.
    assert!(verbs(&edit, "pods").unwrap().contains(&"watch".to_owned()));
    // Its own aggregate-to-edit rules.
    let deployments = verbs(&edit, "apps/deployments").unwrap();
    assert!(deployments.contains(&"create".to_owned()) && deployments.contains(&"delete".to_owned()));
    assert_eq!(
        edit.dangerous,
        ["secrets read", "exec/attach", "impersonate", "token creation"].map(String::from)
    );
    let secrets = edit.resources.iter().find(|r| r.resource == "secrets").unwrap();
    assert!(secrets.dangerous);
    assert!(
        !edit
            .resources
            .iter()
            .find(|r| r.resource == "configmaps")
            .unwrap()
            .dangerous
    );
    assert!(
        edit.summary
            .contains("; dangerous: secrets read, exec/attach, impersonate, token creation"),
        "{}",
        edit.summary
    );
}

#[test]
fn admin_adds_rbac_writes_to_edit() {
    let all = bootstrap();
    let admin = of("admin", &all);
    let edit = of("edit", &all);
    assert!(admin.dangerous.contains(&"RBAC writes".to_owned()), "{admin:?}");
    assert!(!edit.dangerous.contains(&"RBAC writes".to_owned()));
    assert!(admin.resources.len() > edit.resources.len());
    let rolebindings = verbs(&admin, "rbac.authorization.k8s.io/rolebindings").unwrap();
    assert!(rolebindings.contains(&"create".to_owned()));
}

#[test]
fn a_custom_aggregated_role_is_the_union_of_what_it_selects() {
    let all: Vec<ClusterRole> = serde_json::from_value(json!([
        {
            "metadata": { "name": "oncall" },
            "aggregationRule": { "clusterRoleSelectors": [
                { "matchLabels": { "example.com/aggregate-to-oncall": "true" } },
                { "matchExpressions": [{ "key": "example.com/debug", "operator": "Exists" }] },
            ] },
        },
        {
            "metadata": { "name": "oncall-logs", "labels": { "example.com/aggregate-to-oncall": "true" } },
            "rules": [{ "apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"] }],
        },
        {
            "metadata": { "name": "oncall-debug", "labels": { "example.com/debug": "yes" } },
            "rules": [
                { "apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"] },
                { "apiGroups": [""], "resources": ["pods"], "verbs": ["delete"] },
            ],
        },
        {
            "metadata": { "name": "unrelated", "labels": { "example.com/aggregate-to-oncall": "false" } },
            "rules": [{ "apiGroups": [""], "resources": ["secrets"], "verbs": ["get"] }],
        },
    ]))
    .unwrap();
    let p = of("oncall", &all);
    assert_eq!(
        verbs(&p, "pods"),
        Some(&["get", "list", "delete"].map(String::from)[..])
    );
    assert_eq!(verbs(&p, "pods/log"), Some(&["get", "list"].map(String::from)[..]));
    assert_eq!(verbs(&p, "secrets"), None, "a label with another value is not selected");
    assert_eq!(p.dangerous, ["exec/attach"].map(String::from));
    assert_eq!(p.summary, "oncall: reads 3, writes 2 resources; dangerous: exec/attach");
}

#[test]
fn an_aggregation_cycle_ends_and_empty_selectors_select_nothing() {
    let all: Vec<ClusterRole> = serde_json::from_value(json!([
        {
            "metadata": { "name": "a", "labels": { "to-b": "true" } },
            "aggregationRule": { "clusterRoleSelectors": [{ "matchLabels": { "to-a": "true" } }, {}] },
            "rules": [{ "apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"] }],
        },
        {
            "metadata": { "name": "b", "labels": { "to-a": "true" } },
            "aggregationRule": { "clusterRoleSelectors": [{ "matchLabels": { "to-b": "true" } }] },
            "rules": [{ "apiGroups": [""], "resources": ["services"], "verbs": ["get"] }],
        },
        {
            "metadata": { "name": "c" },
            "rules": [{ "apiGroups": ["*"], "resources": ["*"], "verbs": ["*"] }],
        },
    ]))
    .unwrap();
    let p = of("a", &all);
    assert_eq!(
        p.resources.iter().map(|r| r.resource.as_str()).collect::<Vec<_>>(),
        ["configmaps", "services"]
    );
    assert!(p.dangerous.is_empty());
}

#[test]
fn wildcards_and_named_objects() {
    let all: Vec<ClusterRole> = serde_json::from_value(json!([
        {
            "metadata": { "name": "root" },
            "rules": [{ "apiGroups": ["*"], "resources": ["*"], "verbs": ["*"] }],
        },
        {
            "metadata": { "name": "one-secret" },
            "rules": [
                { "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["tls"], "verbs": ["get"] },
                { "nonResourceURLs": ["/metrics"], "verbs": ["get"] },
            ],
        },
        {
            "metadata": { "name": "nothing" },
        },
    ]))
    .unwrap();
    let root = of("root", &all);
    assert_eq!(
        root.dangerous,
        [
            "everything",
            "secrets read",
            "exec/attach",
            "RBAC writes",
            "impersonate",
            "token creation"
        ]
        .map(String::from)
    );
    assert_eq!(verbs(&root, "*/*"), Some(&["*".to_owned()][..]));
    let one = of("one-secret", &all);
    assert_eq!(verbs(&one, "secrets (named)"), Some(&["get".to_owned()][..]));
    assert_eq!(one.dangerous, ["secrets read"].map(String::from));
    assert_eq!(
        one.resources.len(),
        1,
        "non-resource URLs are not granted in a namespace"
    );
    assert_eq!(of("nothing", &all).summary, "nothing: grants nothing in a namespace");
}
