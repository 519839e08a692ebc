//! What the commands share: the connection, who the caller is, the
//! workspace a command acts in, error messages that say what to do next,
//! output, and the role and subject of a grant or request.

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::Client;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::PluginError;
use super::cli::{Global, RoleArgs, WorkspaceArg, WorkspaceRoleArg};
use super::list::Me;
use super::names;
use super::plan;
use crate::api::{Subject, Workspace, WorkspaceRole};
use crate::policy::Role;

/// Writes to stdout; a closed pipe (`| head`) is not an error.
pub(super) fn emit(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().write_all(text.as_bytes());
}

pub(super) fn emit_json(value: &impl serde::Serialize) {
    emit(&format!(
        "{}\n",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into())
    ));
}

/// A client for the kubeconfig, context and namespace of the command line.
pub(super) async fn connect(g: &Global) -> Result<(Client, String), PluginError> {
    let options = KubeConfigOptions {
        context: g.context.clone(),
        ..Default::default()
    };
    let config = match (&g.kubeconfig, &g.context) {
        (Some(path), _) => {
            let kc =
                Kubeconfig::read_from(path).map_err(|e| PluginError::Connect(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| PluginError::Connect(e.to_string()))?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| PluginError::Connect(e.to_string()))?,
        (None, None) => kube::Config::infer()
            .await
            .map_err(|e| PluginError::Connect(e.to_string()))?,
    };
    let ns = g.namespace.clone().unwrap_or_else(|| config.default_namespace.clone());
    let client = Client::try_from(config).map_err(|e| PluginError::Connect(e.to_string()))?;
    Ok((client, ns))
}

/// Maps an API error to one that says what to do next.
pub(super) fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> PluginError {
    let what = what.into();
    move |err| match err {
        kube::Error::Api(s) if s.is_forbidden() => PluginError::Refused(format!(
            "{what}: {}\n  the API server refused it: check your roles with kubectl access whoami, or ask a workspace manager",
            s.message
        )),
        kube::Error::Api(s) if s.is_not_found() => PluginError::NotFound(format!("{what}: {}", s.message)),
        kube::Error::Api(s) if s.is_invalid() || s.code == 400 => {
            PluginError::Refused(format!("{what}: the API server refused it: {}", s.message))
        }
        e @ (kube::Error::HyperError(_) | kube::Error::Service(_)) => PluginError::Connect(format!("{what}: {e}")),
        source => PluginError::Api { what, source },
    }
}

pub(super) fn is_code(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == code)
}

/// The caller, as the API server authenticates them.
pub(super) async fn who(client: &Client) -> Result<Me, PluginError> {
    let review = SelfSubjectReview {
        metadata: Default::default(),
        status: None,
    };
    let out = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .map_err(api_err("asking the API server who you are (SelfSubjectReview)"))?;
    let info = out.status.and_then(|s| s.user_info).unwrap_or_default();
    let user = info.username.filter(|u| !u.is_empty()).ok_or_else(|| {
        PluginError::Refused("the API server did not say who you are (no user name in the SelfSubjectReview)".into())
    })?;
    Ok(Me {
        user,
        groups: info.groups.unwrap_or_default(),
    })
}

/// The workspace a command acts in.
pub(super) struct Target {
    /// The workspace's name (the namespace when given with -n).
    pub(super) workspace: String,
    /// Its control namespace.
    pub(super) namespace: String,
    /// Whether it was given by namespace (-n).
    pub(super) by_namespace: bool,
}

impl Target {
    /// How to name it again on a command line.
    pub(super) fn flag(&self) -> String {
        if self.by_namespace {
            format!("-n {}", self.namespace)
        } else {
            format!("-w {}", self.workspace)
        }
    }
}

pub(super) async fn target(client: &Client, g: &Global, w: &WorkspaceArg) -> Result<Target, PluginError> {
    match (&w.workspace, &g.namespace) {
        (Some(name), _) => match Api::<Workspace>::all(client.clone()).get(name).await {
            Ok(ws) => Ok(Target {
                workspace: name.clone(),
                namespace: plan::control_namespace(&ws),
                by_namespace: false,
            }),
            Err(e) if is_code(&e, 404) => Err(PluginError::NotFound(format!(
                "workspace {name} not found: list them with kubectl get ws"
            ))),
            // Someone who may not read Workspaces still knows the convention.
            Err(e) if is_code(&e, 403) => Ok(Target {
                workspace: name.clone(),
                namespace: g
                    .namespace
                    .clone()
                    .unwrap_or_else(|| format!("{}{name}", crate::api::workspace::DEFAULT_NAMESPACE_PREFIX)),
                by_namespace: false,
            }),
            Err(e) => Err(api_err(format!("reading workspace {name}"))(e)),
        },
        (None, Some(ns)) => Ok(Target {
            workspace: ns.clone(),
            namespace: ns.clone(),
            by_namespace: true,
        }),
        (None, None) => Err(PluginError::Usage(
            "which workspace? pass -w WORKSPACE (list them with kubectl get ws) or -n NAMESPACE".into(),
        )),
    }
}

pub(super) fn role_fields(r: &RoleArgs) -> Result<Role, PluginError> {
    match (r.role, &r.project, &r.project_role) {
        (Some(WorkspaceRoleArg::Manager), None, None) => Ok(Role::Workspace(WorkspaceRole::Manager)),
        (Some(WorkspaceRoleArg::Member), None, None) => Ok(Role::Workspace(WorkspaceRole::Member)),
        (None, Some(p), Some(role)) => Ok(Role::Project {
            project: p.clone(),
            role: role.clone(),
        }),
        _ => Err(PluginError::Usage(
            "give either --role manager|member or --project P --project-role R".into(),
        )),
    }
}

pub(super) fn role_cli(role: &Role) -> String {
    match role {
        Role::Workspace(r) => format!("--role {r}"),
        Role::Project { project, role } => format!("--project {project} --project-role {role}"),
    }
}

pub(super) fn split(role: &Role) -> (Option<WorkspaceRole>, Option<String>, Option<String>) {
    match role {
        Role::Workspace(r) => (Some(*r), None, None),
        Role::Project { project, role } => (None, Some(project.clone()), Some(role.clone())),
    }
}

pub(super) fn subject(name: &str, group: bool) -> Subject {
    if group {
        Subject::group(name)
    } else {
        Subject::user(name)
    }
}

pub(super) fn check_name(name: &str) -> Result<(), PluginError> {
    if names::is_dns_label(name) {
        Ok(())
    } else {
        Err(PluginError::Usage(format!(
            "--name {name}: use lower-case letters, digits and '-', at most 63 characters"
        )))
    }
}

/// Creates an object under a generated name, trying another suffix if the name is taken.
pub(super) async fn create_named<K>(
    api: &Api<K>,
    obj: &mut K,
    given: Option<&String>,
    base: (&str, &str),
) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    for attempt in 0..3 {
        let name = match given {
            Some(n) => n.clone(),
            None => names::generate(base.0, base.1, &names::random_suffix()),
        };
        obj.meta_mut().name = Some(name);
        match api.create(&PostParams::default(), obj).await {
            Err(e) if given.is_none() && attempt < 2 && is_code(&e, 409) => continue,
            Err(e) => return Err(e),
            Ok(created) => {
                *obj = created;
                return Ok(());
            }
        }
    }
    unreachable!("the loop returns")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn status(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Box::new(
            serde_json::from_value(json!({ "status": "Failure", "code": code, "reason": reason, "message": "m" }))
                .unwrap(),
        ))
    }

    #[test]
    fn api_errors_say_what_to_do_next() {
        let e = api_err("granting")(status(403, "Forbidden"));
        assert!(matches!(e, PluginError::Refused(_)));
        assert!(e.to_string().contains("kubectl access whoami"), "{e}");
        assert!(matches!(
            api_err("x")(status(404, "NotFound")),
            PluginError::NotFound(_)
        ));
        let e = api_err("voting")(status(422, "Invalid"));
        assert_eq!(e.to_string(), "voting: the API server refused it: m");
        assert!(matches!(
            api_err("x")(status(500, "InternalError")),
            PluginError::Api { .. }
        ));
        assert!(is_code(&status(409, "Conflict"), 409));
    }

    #[test]
    fn roles_come_from_exactly_one_form() {
        let args = |role, project: Option<&str>, project_role: Option<&str>| RoleArgs {
            role,
            project: project.map(str::to_owned),
            project_role: project_role.map(str::to_owned),
        };
        assert_eq!(
            role_fields(&args(Some(WorkspaceRoleArg::Manager), None, None)).unwrap(),
            Role::Workspace(WorkspaceRole::Manager)
        );
        let r = role_fields(&args(None, Some("app"), Some("user"))).unwrap();
        assert_eq!(role_cli(&r), "--project app --project-role user");
        assert!(role_fields(&args(None, Some("app"), None)).is_err());
        assert!(role_fields(&args(Some(WorkspaceRoleArg::Member), Some("app"), Some("user"))).is_err());
        assert!(check_name("dave-app-user-x1").is_ok());
        assert!(check_name("Dave").is_err());
    }
}
