//! The layering of DESIGN §6, enforced: each module imports only from the
//! layers below it. `wire` (the names other programs see) and `api` (the
//! types) are the bottom; `policy` is pure and knows nothing of auditing,
//! RBAC or reconciling; the plugin is a client and imports no reconciler.

use std::collections::BTreeSet;
use std::path::Path;

/// Each checked module and the modules of ours it may use.
const ALLOWED: &[(&str, &[&str])] = &[
    ("wire", &[]),
    ("api", &["wire"]),
    ("config", &["api", "wire"]),
    ("policy", &["api", "wire", "config"]),
    ("rbac", &["api", "wire", "config", "policy"]),
    ("audit", &["api", "wire", "config", "policy", "rbac"]),
    ("manifests", &["api", "wire", "config", "policy", "rbac"]),
    ("notify", &["api", "wire", "config", "policy", "audit", "telemetry"]),
    (
        "plugin",
        &["api", "wire", "config", "policy", "rbac", "audit", "manifests"],
    ),
];

/// The modules of ours that a file's code (not its comments) names.
fn uses(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            let before = rest[..i].chars().last();
            rest = &rest[i + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // `foureyes_crate::`, say
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

fn files(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            files(&entry.unwrap().path(), out);
        }
    } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_owned());
    }
}

#[test]
fn each_module_imports_only_from_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = vec![];
    for (module, allowed) in ALLOWED {
        let mut paths = vec![];
        files(&src.join(module), &mut paths);
        files(&src.join(format!("{module}.rs")), &mut paths);
        assert!(!paths.is_empty(), "module {module} not found");
        for path in paths {
            let code = std::fs::read_to_string(&path).unwrap();
            for used in uses(&code) {
                if used != *module && !allowed.contains(&used.as_str()) {
                    violations.push(format!(
                        "{} uses crate::{used}",
                        path.strip_prefix(&src).unwrap().display()
                    ));
                }
            }
        }
    }
    assert!(violations.is_empty(), "layering broken:\n{}", violations.join("\n"));
}

#[test]
fn the_check_sees_a_use_and_ignores_comments() {
    let found = uses("use crate::reconcile::Context;\n// crate::run in a comment\nlet x = crate::audit::f();");
    assert_eq!(found, BTreeSet::from(["reconcile".to_owned(), "audit".to_owned()]));
}

/// The console acts only with the client that the plugin made from the
/// user's own kubeconfig: none of its files builds a client, reads a
/// kubeconfig or impersonates anyone.
#[test]
fn the_console_acts_with_the_users_own_credentials_only() {
    let mut paths = vec![];
    files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/plugin/console"),
        &mut paths,
    );
    assert!(paths.len() >= 3, "the console's files");
    let forbidden = [
        "impersonat",
        "Impersonat",
        "Kubeconfig",
        "kube::Config",
        "Config::infer",
        "Client::try_from",
        "Client::new",
        "auth_info",
        "token_file",
        "Authorization",
    ];
    let mut found = vec![];
    for path in paths {
        let code = std::fs::read_to_string(&path).unwrap();
        for (n, line) in code.lines().enumerate() {
            let line = line.trim_start();
            if line.starts_with("//") {
                continue;
            }
            for f in forbidden {
                if line.contains(f) {
                    found.push(format!("{}:{}: {f}", path.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the console must act as the user only:\n{}",
        found.join("\n")
    );
}
