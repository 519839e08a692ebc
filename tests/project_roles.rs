//! The default project roles on a real API server (DESIGN §2, invariant 10):
//! `foureyes-view`, `foureyes-edit` and `foureyes-admin`, installed from
//! `crds/` and bound with a plain native RoleBinding, allow the ordinary work
//! of their built-in namesakes but nothing that lets a grantee keep access
//! after the expiry: no RBAC writes, `bind`, `escalate`, impersonation,
//! service-account tokens or Secret writes. The same checks against the
//! built-in `edit` and `admin` show what they would have allowed.

mod support;

use foureyes::wire::EDIT;
use foureyes::wire::{ADMIN, VIEW};
use std::collections::BTreeSet;
use std::time::Duration;

use foureyes::rbac::project_roles;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::{Api, PostParams};
use support::{TestEnv, client, eventually, plane};

/// What a SubjectAccessReview asks: verb, API group, resource, subresource.
type Access = (&'static str, &'static str, &'static str, &'static str);

/// Everything that would let a grantee make access that outlives the grant.
const PERSISTENCE: &[Access] = &[
    ("create", "rbac.authorization.k8s.io", "rolebindings", ""),
    ("update", "rbac.authorization.k8s.io", "rolebindings", ""),
    ("patch", "rbac.authorization.k8s.io", "rolebindings", ""),
    ("create", "rbac.authorization.k8s.io", "roles", ""),
    ("update", "rbac.authorization.k8s.io", "roles", ""),
    ("bind", "rbac.authorization.k8s.io", "clusterroles", ""),
    ("escalate", "rbac.authorization.k8s.io", "clusterroles", ""),
    ("bind", "rbac.authorization.k8s.io", "roles", ""),
    ("escalate", "rbac.authorization.k8s.io", "roles", ""),
    ("impersonate", "", "serviceaccounts", ""),
    ("impersonate", "", "users", ""),
    ("impersonate", "", "groups", ""),
    ("impersonate", "authentication.k8s.io", "uids", ""),
    ("impersonate", "authentication.k8s.io", "userextras", "scopes"),
    ("create", "", "serviceaccounts", "token"),
    ("create", "", "secrets", ""),
    ("update", "", "secrets", ""),
    ("patch", "", "secrets", ""),
];

/// Whether `user` may do `access` in `namespace` (a SubjectAccessReview, as
/// the admin).
async fn can(user: &str, (verb, group, resource, subresource): Access, namespace: &str) -> bool {
    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_owned()),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.to_owned()),
                verb: Some(verb.to_owned()),
                group: Some(group.to_owned()),
                resource: Some(resource.to_owned()),
                subresource: (!subresource.is_empty()).then(|| subresource.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(client("admin").await);
    let out = api
        .create(&PostParams::default(), &sar)
        .await
        .expect("SubjectAccessReview");
    out.status.is_some_and(|s| s.allowed)
}

/// Binds `cluster_role` to `user` in `namespace` (a plain native RoleBinding,
/// as the admin), and waits until the authorizer sees it: until `user` may
/// `probe` there. Afterwards a denial means the role denies it.
async fn bind(namespace: &str, user: &str, cluster_role: &str, probe: Access) {
    plane().kubectl_ok(
        "admin",
        &[
            "create",
            "rolebinding",
            &format!("{user}-{cluster_role}"),
            "-n",
            namespace,
            &format!("--clusterrole={cluster_role}"),
            &format!("--user={user}"),
        ],
        None,
    );
    eventually(
        &format!("{user} to hold {cluster_role} in {namespace}"),
        Duration::from_secs(30),
        || async { can(user, probe, namespace).await.then_some(()) },
    )
    .await;
}

fn describe((verb, group, resource, subresource): Access) -> String {
    let resource = if subresource.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}/{subresource}")
    };
    if group.is_empty() {
        format!("{verb} {resource}")
    } else {
        format!("{verb} {resource}.{group}")
    }
}

/// Checks every access of `expected` (access, allowed) for `user`; one message
/// per mismatch, so that a failure lists them all.
async fn mismatches(user: &str, namespace: &str, expected: &[(Access, bool)]) -> Vec<String> {
    let mut out = vec![];
    for &(access, allowed) in expected {
        if can(user, access, namespace).await != allowed {
            let verdict = if allowed { "denied" } else { "allowed" };
            out.push(format!("{user} is {verdict}: {}", describe(access)));
        }
    }
    out
}

const LIST_PODS: Access = ("list", "", "pods", "");

#[tokio::test]
async fn foureyes_view_reads_and_writes_nothing() {
    let env = TestEnv::new("role-view").await;
    bind(&env.ns, "grantee-view", VIEW, LIST_PODS).await;
    let mut expected: Vec<(Access, bool)> = PERSISTENCE.iter().map(|&a| (a, false)).collect();
    expected.extend([
        (("get", "", "configmaps", ""), true),
        (("get", "", "pods", "log"), true),
        (("list", "apps", "deployments", ""), true),
        (("watch", "batch", "jobs", ""), true),
        (("get", "", "secrets", ""), false),
        (("create", "", "pods", ""), false),
        (("create", "", "pods", "exec"), false),
        (("create", "apps", "deployments", ""), false),
    ]);
    let wrong = mismatches("grantee-view", &env.ns, &expected).await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// What `edit` allows for ordinary work, and `foureyes-edit` keeps.
const EDIT_WORK: &[Access] = &[
    ("get", "", "pods", ""),
    ("create", "", "pods", ""),
    ("delete", "", "pods", ""),
    ("create", "", "pods", "exec"),
    ("create", "", "pods", "portforward"),
    ("create", "", "pods", "eviction"),
    ("create", "apps", "deployments", ""),
    ("patch", "apps", "deployments", "scale"),
    ("create", "batch", "cronjobs", ""),
    ("update", "", "configmaps", ""),
    ("create", "", "services", ""),
    ("create", "", "serviceaccounts", ""),
    ("create", "networking.k8s.io", "ingresses", ""),
    ("create", "coordination.k8s.io", "leases", ""),
    // Reads of Secrets stay (see src/rbac/project_roles.rs).
    ("get", "", "secrets", ""),
    ("list", "", "secrets", ""),
];

#[tokio::test]
async fn foureyes_edit_does_the_work_of_edit_but_cannot_outlive_the_grant() {
    let env = TestEnv::new("role-edit").await;
    bind(&env.ns, "grantee-edit", EDIT, LIST_PODS).await;
    let mut expected: Vec<(Access, bool)> = PERSISTENCE.iter().map(|&a| (a, false)).collect();
    expected.extend(EDIT_WORK.iter().map(|&a| (a, true)));
    expected.extend([
        (("list", "rbac.authorization.k8s.io", "rolebindings", ""), false),
        (
            ("create", "authorization.k8s.io", "localsubjectaccessreviews", ""),
            false,
        ),
        (("delete", "", "secrets", ""), false),
    ]);
    let wrong = mismatches("grantee-edit", &env.ns, &expected).await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn foureyes_admin_reads_rbac_but_cannot_write_it() {
    let env = TestEnv::new("role-admin").await;
    bind(&env.ns, "grantee-admin", ADMIN, LIST_PODS).await;
    let mut expected: Vec<(Access, bool)> = PERSISTENCE.iter().map(|&a| (a, false)).collect();
    expected.extend(EDIT_WORK.iter().map(|&a| (a, true)));
    expected.extend([
        (("list", "rbac.authorization.k8s.io", "rolebindings", ""), true),
        (("get", "rbac.authorization.k8s.io", "roles", ""), true),
        (
            ("create", "authorization.k8s.io", "localsubjectaccessreviews", ""),
            true,
        ),
        (("delete", "rbac.authorization.k8s.io", "rolebindings", ""), false),
        (("deletecollection", "rbac.authorization.k8s.io", "roles", ""), false),
    ]);
    let wrong = mismatches("grantee-admin", &env.ns, &expected).await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The control: on the same API server, the built-in `edit` and `admin`
/// allow what the foureyes roles refuse, so the checks above can fail.
#[tokio::test]
async fn the_built_in_edit_and_admin_allow_what_the_foureyes_roles_refuse() {
    let env = TestEnv::new("role-builtin").await;
    // The built-ins are aggregated by the controller manager: wait for the
    // rule that matters, not just any.
    bind(
        &env.ns,
        "builtin-edit",
        "edit",
        ("create", "", "serviceaccounts", "token"),
    )
    .await;
    let expected: Vec<(Access, bool)> = [
        ("impersonate", "", "serviceaccounts", ""),
        ("create", "", "secrets", ""),
        ("update", "", "secrets", ""),
    ]
    .map(|a| (a, true))
    .into();
    let wrong = mismatches("builtin-edit", &env.ns, &expected).await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    bind(
        &env.ns,
        "builtin-admin",
        "admin",
        ("create", "rbac.authorization.k8s.io", "rolebindings", ""),
    )
    .await;
    let wrong = mismatches(
        "builtin-admin",
        &env.ns,
        &[
            (("create", "rbac.authorization.k8s.io", "roles", ""), true),
            (("create", "", "serviceaccounts", "token"), true),
        ],
    )
    .await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn triples(rules: &[PolicyRule]) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for r in rules {
        assert!(r.resource_names.is_none() && r.non_resource_urls.is_none(), "{r:?}");
        for g in r.api_groups.iter().flatten() {
            for res in r.resources.iter().flatten() {
                for v in &r.verbs {
                    out.insert((g.clone(), res.clone(), v.clone()));
                }
            }
        }
    }
    out
}

/// The copy of the built-ins that the unit tests derive the foureyes roles
/// from is what this API server has (after aggregation); and the server holds
/// the foureyes roles as the code writes them.
#[tokio::test]
async fn the_copy_of_the_built_ins_matches_the_api_server() {
    let copy: Vec<ClusterRole> = serde_yaml::from_str(include_str!("../src/rbac/builtin-roles-v1.37.yaml")).unwrap();
    let api: Api<ClusterRole> = Api::all(client("admin").await);
    for expected in &copy {
        let name = expected.metadata.name.clone().unwrap();
        let expected = triples(expected.rules.as_deref().unwrap());
        // The aggregation controller fills them in shortly after start.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let live = loop {
            let live = triples(api.get(&name).await.unwrap().rules.as_deref().unwrap_or_default());
            if live == expected || std::time::Instant::now() > deadline {
                break live;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(
            (
                live.difference(&expected).collect::<Vec<_>>(),
                expected.difference(&live).collect::<Vec<_>>()
            ),
            (vec![], vec![]),
            "the built-in {name}: (only on the server, only in the copy); derive src/rbac/project_roles.rs again"
        );
    }
    for ours in project_roles::cluster_roles() {
        let name = ours.metadata.name.clone().unwrap();
        let live = api.get(&name).await.unwrap();
        assert!(live.aggregation_rule.is_none(), "{name}");
        assert_eq!(
            triples(live.rules.as_deref().unwrap()),
            triples(ours.rules.as_deref().unwrap()),
            "{name}"
        );
    }
}
