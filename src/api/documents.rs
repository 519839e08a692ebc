//! Reading foureyes manifests: multi-document YAML into typed objects.
//!
//! Used to check `examples/`, and by tools that take a manifest file.

use serde::Deserialize;

use super::{Lockout, Project, RoleBinding, RoleRequest, Workspace};

/// A foureyes object read from a manifest.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// A `Workspace`.
    Workspace(Box<Workspace>),
    /// A `Project`.
    Project(Box<Project>),
    /// A `RoleBinding` of foureyes (not RBAC's).
    RoleBinding(Box<RoleBinding>),
    /// A `RoleRequest`.
    RoleRequest(Box<RoleRequest>),
    /// A `Lockout`.
    Lockout(Box<Lockout>),
}

impl Object {
    /// The object's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Workspace(_) => "Workspace",
            Object::Project(_) => "Project",
            Object::RoleBinding(_) => "RoleBinding",
            Object::RoleRequest(_) => "RoleRequest",
            Object::Lockout(_) => "Lockout",
        }
    }
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// A document is not valid YAML.
    #[error("document {index}: invalid YAML: {source}")]
    Yaml {
        /// The document's position in the stream, from 1.
        index: usize,
        /// The parser's error.
        source: serde_yaml::Error,
    },
    /// A document is not a foureyes object.
    #[error("document {index}: {api_version}/{kind} is not a foureyes.dev/v1alpha1 kind")]
    UnknownKind {
        /// The document's position in the stream, from 1.
        index: usize,
        /// Its `apiVersion`.
        api_version: String,
        /// Its `kind`.
        kind: String,
    },
    /// A document does not match its kind's schema.
    #[error("document {index} ({kind}): {source}")]
    Invalid {
        /// The document's position in the stream, from 1.
        index: usize,
        /// Its `kind`.
        kind: String,
        /// The deserialiser's error.
        source: serde_json::Error,
    },
}

/// Reads every document of a YAML stream as a foureyes object. Empty
/// documents are skipped; anything else that is not a foureyes object is an
/// error.
pub fn parse_documents(yaml: &str) -> Result<Vec<Object>, DocumentError> {
    let mut out = vec![];
    for (i, doc) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
        let index = i + 1;
        let value = serde_json::Value::deserialize(doc).map_err(|source| DocumentError::Yaml { index, source })?;
        if value.is_null() {
            continue;
        }
        let api_version = value
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        let kind = value
            .get("kind")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        let invalid = |source| DocumentError::Invalid {
            index,
            kind: kind.clone(),
            source,
        };
        if api_version != format!("{}/{}", super::GROUP, super::VERSION) {
            return Err(DocumentError::UnknownKind {
                index,
                api_version,
                kind,
            });
        }
        let obj = match kind.as_str() {
            "Workspace" => Object::Workspace(Box::new(serde_json::from_value(value).map_err(invalid)?)),
            "Project" => Object::Project(Box::new(serde_json::from_value(value).map_err(invalid)?)),
            "RoleBinding" => Object::RoleBinding(Box::new(serde_json::from_value(value).map_err(invalid)?)),
            "RoleRequest" => Object::RoleRequest(Box::new(serde_json::from_value(value).map_err(invalid)?)),
            "Lockout" => Object::Lockout(Box::new(serde_json::from_value(value).map_err(invalid)?)),
            _ => {
                return Err(DocumentError::UnknownKind {
                    index,
                    api_version,
                    kind,
                });
            }
        };
        out.push(obj);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: foureyes.dev/v1alpha1
kind: Workspace
metadata: { name: payments }
spec: {}
---
apiVersion: foureyes.dev/v1alpha1
kind: RoleRequest
metadata: { name: r1, namespace: ws-payments }
spec:
  subject: { kind: User, name: dave }
  project: checkout
  projectRole: admin
  duration: 2h
  justification: INC-1
  requester: alice
"#;

    #[test]
    fn reads_every_kind_and_applies_defaults() {
        let objs = parse_documents(GOOD).unwrap();
        assert_eq!(
            objs.iter().map(Object::kind).collect::<Vec<_>>(),
            ["Workspace", "RoleRequest"]
        );
        let Object::Workspace(ws) = &objs[0] else { panic!() };
        assert_eq!(ws.spec.approval_policy.project_role_approvals, 2);
        assert_eq!(ws.control_namespace(), "ws-payments");
    }

    #[test]
    fn rejects_unknown_kinds_and_bad_fields() {
        let err = parse_documents("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n").unwrap_err();
        assert!(matches!(err, DocumentError::UnknownKind { index: 1, .. }), "{err}");
        let bad = GOOD.replace("duration: 2h", "duration: two hours");
        let err = parse_documents(&bad).unwrap_err();
        assert!(matches!(err, DocumentError::Invalid { index: 2, .. }), "{err}");
        let err = parse_documents("kind: [unclosed").unwrap_err();
        assert!(matches!(err, DocumentError::Yaml { .. }), "{err}");
    }
}

/// Reads every `*.yaml` file of a directory (sorted by name) as foureyes
/// objects, except the JSON patches (`*.patch.yaml`, for `kubectl patch
/// --patch-file`; see [`parse_ratification_patch`]). Returns the objects per
/// file, or one line per file that fails.
pub fn parse_dir(dir: &std::path::Path) -> Result<Vec<(String, Vec<Object>)>, Vec<String>> {
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .filter(|p| !p.to_string_lossy().ends_with(".patch.yaml"))
            .collect(),
        Err(err) => return Err(vec![format!("{}: {err}", dir.display())]),
    };
    files.sort();
    let mut out = vec![];
    let mut errors = vec![];
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                let objs = parse_documents(&text).map_err(|e| e.to_string())?;
                if objs.is_empty() {
                    Err("no objects".to_owned())
                } else {
                    Ok(objs)
                }
            }) {
            Ok(objs) => out.push((name, objs)),
            Err(err) => errors.push(format!("{name}: {err}")),
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// Reads a JSON patch (in YAML) that appends verdicts to a binding's
/// `spec.ratifications`: the verdicts it appends, or why it is not one.
pub fn parse_ratification_patch(text: &str) -> Result<Vec<super::Ratification>, String> {
    #[derive(serde::Deserialize)]
    struct Op {
        op: String,
        path: String,
        value: serde_json::Value,
    }
    let ops: Vec<Op> = serde_yaml::from_str(text).map_err(|e| format!("not a JSON patch: {e}"))?;
    let mut out = vec![];
    for op in ops {
        match (op.op.as_str(), op.path.as_str()) {
            ("add", "/spec/ratifications") => {
                out.extend(serde_json::from_value::<Vec<super::Ratification>>(op.value).map_err(|e| e.to_string())?)
            }
            ("add", "/spec/ratifications/-") => out.push(serde_json::from_value(op.value).map_err(|e| e.to_string())?),
            (o, p) => return Err(format!("{o} {p}: only appends to /spec/ratifications")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod dir_tests {
    use super::*;

    /// Every file in `examples/` is read into its type.
    #[test]
    fn every_example_parses_into_its_type() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let files = parse_dir(&dir).unwrap_or_else(|errors| panic!("broken examples:\n  {}", errors.join("\n  ")));
        assert!(
            files.len() >= 5,
            "expected one example per emergency procedure, found {}",
            files.len()
        );
        let patches: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(".patch.yaml"))
            .collect();
        assert!(!patches.is_empty(), "the ratification example is a patch");
        for p in patches {
            let verdicts = parse_ratification_patch(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert!(!verdicts.is_empty(), "{}", p.display());
        }
        assert!(parse_ratification_patch("- {op: remove, path: /spec/ratifications/0, value: null}").is_err());
    }

    #[test]
    fn a_broken_example_is_reported_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("good.yaml"),
            "apiVersion: foureyes.dev/v1alpha1\nkind: Workspace\nmetadata: {name: a}\nspec: {}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("typo.yaml"),
            "apiVersion: foureyes.dev/v1alpha1\nkind: Workspace\nmetadata: {name: a}\nspec: {maxDuration: 1 day}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("empty.yaml"), "# nothing\n").unwrap();
        let errors = parse_dir(dir.path()).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("empty.yaml: no objects"), "{errors:?}");
        assert!(errors[1].starts_with("typo.yaml: document 1 (Workspace)"), "{errors:?}");
    }
}
