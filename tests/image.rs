//! The operator image: `scripts/image.sh` writes the same archive (the same
//! digest) twice from the same binaries; the image holds the binaries and the
//! libraries they load and nothing else (no shell); and the `Containerfile`
//! describes the same image (user, entrypoint, environment, labels), with the
//! version of `Cargo.toml` and the chart's appVersion, and the repository that
//! the chart installs by default.
//!
//! These tests build the image from the release binaries when the test
//! command has built them (it sets `FOUREYES_IMAGE`), else from the test
//! build's: what is checked here is the assembly, the same for both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `scripts/image.sh` on the test build's binaries; returns the digest.
fn build_image(out: &Path) -> String {
    let bin_dir = if std::env::var_os("FOUREYES_IMAGE").is_some() {
        repo().join("target/release")
    } else {
        Path::new(env!("CARGO_BIN_EXE_foureyes")).parent().unwrap().to_owned()
    };
    let output = Command::new("bash")
        .arg(repo().join("scripts/image.sh"))
        .arg("--bin-dir")
        .arg(bin_dir)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run scripts/image.sh");
    assert!(
        output.status.success(),
        "scripts/image.sh failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().expect("a result line").to_owned();
    let fields: Vec<&str> = last.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "{last:?}");
    assert_eq!(Path::new(fields[0]), out);
    assert!(fields[2].starts_with("sha256:"), "{last:?}");
    fields[2].to_owned()
}

/// Unpacks an OCI archive into `dir`; returns (index, manifest, config, layer path).
fn unpack(archive: &Path, dir: &Path) -> (Value, Value, Value, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let status = Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
    let read = |p: PathBuf| -> Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let blob = |digest: &Value| {
        dir.join("blobs/sha256")
            .join(digest.as_str().unwrap().trim_start_matches("sha256:"))
    };
    let index = read(dir.join("index.json"));
    let manifest = read(blob(&index["manifests"][0]["digest"]));
    let config = read(blob(&manifest["config"]["digest"]));
    let layer = blob(&manifest["layers"][0]["digest"]);
    (index, manifest, config, layer)
}

fn cargo_version() -> String {
    let toml = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    toml.lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .map(|v| v.trim_end_matches('"').to_owned())
        .expect("version in Cargo.toml")
}

#[test]
fn the_image_is_reproducible_and_holds_only_the_binaries_and_their_libraries() {
    let tmp = tempfile::tempdir().unwrap();
    let first = build_image(&tmp.path().join("a.tar"));
    let second = build_image(&tmp.path().join("b.tar"));
    assert_eq!(first, second, "the same binaries, another digest");
    assert!(
        std::fs::read(tmp.path().join("a.tar")).unwrap() == std::fs::read(tmp.path().join("b.tar")).unwrap(),
        "the same digest, other bytes"
    );

    let (index, manifest, config, layer) = unpack(&tmp.path().join("a.tar"), &tmp.path().join("a"));
    assert_eq!(
        manifest["config"]["digest"].as_str().map(|d| d.len()),
        Some("sha256:".len() + 64)
    );
    assert_eq!(index["manifests"][0]["digest"].as_str(), Some(first.as_str()));
    let name = index["manifests"][0]["annotations"]["io.containerd.image.name"]
        .as_str()
        .unwrap();
    assert_eq!(name, format!("ghcr.io/foureyes-dev/foureyes:{}", cargo_version()));
    assert_eq!(config["config"]["User"], "65532:65532");

    // The files: the two binaries, the loader and the libraries; no shell.
    let listing = Command::new("tar").arg("-tvf").arg(&layer).output().unwrap();
    assert!(listing.status.success());
    let listing = String::from_utf8(listing.stdout).unwrap();
    let files: Vec<&str> = listing
        .lines()
        .filter(|l| !l.starts_with('d'))
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert!(files.contains(&"./usr/local/bin/foureyes"), "{listing}");
    assert!(files.contains(&"./usr/local/bin/kubectl-access"), "{listing}");
    assert!(files.contains(&"./lib64/ld-linux-x86-64.so.2"), "{listing}");
    for file in &files {
        assert!(
            file.starts_with("./usr/local/bin/") || file.contains("/lib") && file.contains(".so"),
            "unexpected file {file} in the image:\n{listing}"
        );
    }
    assert!(!files.iter().any(|f| f.ends_with("/sh")), "{listing}");
    for line in listing.lines() {
        assert!(line.contains(" root/root ") || line.contains(" 0/0 "), "{line}");
    }

    // The binary starts with nothing but the image's files: the image's
    // loader and library directory, no library of the host.
    let root = tmp.path().join("rootfs");
    std::fs::create_dir_all(&root).unwrap();
    assert!(
        Command::new("tar")
            .arg("-xf")
            .arg(&layer)
            .arg("-C")
            .arg(&root)
            .status()
            .unwrap()
            .success()
    );
    let lib_dirs: Vec<String> = files
        .iter()
        .filter(|f| f.contains(".so"))
        .filter_map(|f| Path::new(f).parent())
        .map(|d| root.join(d).to_string_lossy().into_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let out = Command::new(root.join("lib64/ld-linux-x86-64.so.2"))
        .arg("--inhibit-cache")
        .arg("--library-path")
        .arg(lib_dirs.join(":"))
        .arg(root.join("usr/local/bin/foureyes"))
        .arg("--help")
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "foureyes --help in the image's files: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Containerfile's instructions that make the image's configuration:
/// USER, ENV, WORKDIR, ENTRYPOINT (exec form) and LABEL (with `\` line
/// continuations), in the final stage, with ARG defaults substituted.
struct Containerfile {
    args: BTreeMap<String, String>,
    user: String,
    env: Vec<String>,
    workdir: String,
    entrypoint: Vec<String>,
    labels: BTreeMap<String, String>,
}

fn parse_containerfile(text: &str) -> Containerfile {
    // Join continued lines, drop comments.
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.starts_with('#') || trimmed.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            lines.push(std::mem::take(&mut current));
        }
    }
    // The final stage only.
    let last_from = lines.iter().rposition(|l| l.starts_with("FROM ")).expect("a FROM");
    let mut file = Containerfile {
        args: BTreeMap::new(),
        user: String::new(),
        env: Vec::new(),
        workdir: "/".into(),
        entrypoint: Vec::new(),
        labels: BTreeMap::new(),
    };
    for line in &lines[last_from + 1..] {
        let (instruction, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        let subst = |s: &str, args: &BTreeMap<String, String>| {
            let mut out = s.to_owned();
            for (k, v) in args {
                out = out.replace(&format!("${{{k}}}"), v).replace(&format!("${k}"), v);
            }
            out
        };
        match instruction {
            "ARG" => {
                let (k, v) = rest.split_once('=').expect("ARG with a default");
                file.args.insert(k.into(), v.trim_matches('"').into());
            }
            "USER" => file.user = subst(rest, &file.args),
            "ENV" => {
                let (k, v) = rest.split_once('=').expect("ENV KEY=value");
                file.env.push(format!("{k}={}", subst(v.trim_matches('"'), &file.args)));
            }
            "WORKDIR" => file.workdir = rest.into(),
            "ENTRYPOINT" => file.entrypoint = serde_json::from_str(rest).expect("ENTRYPOINT in exec form"),
            "LABEL" => {
                for (k, v) in split_label_pairs(rest) {
                    file.labels.insert(k, subst(&v, &file.args));
                }
            }
            _ => {}
        }
    }
    file
}

/// `k1="v 1" k2=v2` -> pairs.
fn split_label_pairs(s: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').expect("key=value");
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').expect("closing quote");
            (quoted[..end].to_owned(), &quoted[end + 1..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_owned(), &after[end..])
        };
        pairs.push((key.trim().to_owned(), value));
        rest = next.trim();
    }
    pairs
}

#[test]
fn the_containerfile_describes_the_same_image() {
    let tmp = tempfile::tempdir().unwrap();
    build_image(&tmp.path().join("img.tar"));
    let (index, _, config, _) = unpack(&tmp.path().join("img.tar"), &tmp.path().join("img"));
    let config = &config["config"];
    let file = parse_containerfile(&std::fs::read_to_string(repo().join("Containerfile")).unwrap());

    assert_eq!(
        file.args.get("VERSION"),
        Some(&cargo_version()),
        "ARG VERSION is Cargo.toml's"
    );
    assert_eq!(config["User"], file.user.as_str());
    assert_eq!(config["WorkingDir"], file.workdir.as_str());
    assert_eq!(config["Entrypoint"], serde_json::json!(file.entrypoint));
    assert_eq!(config["Env"], serde_json::json!(file.env));
    let labels: BTreeMap<String, String> = serde_json::from_value(config["Labels"].clone()).unwrap();
    assert_eq!(labels, file.labels);
    assert_eq!(labels["org.opencontainers.image.version"], cargo_version());
    assert!(labels["org.opencontainers.image.source"].starts_with("https://"));

    // The chart installs this image by default: its repository, the chart's
    // appVersion as the tag, and the image's entrypoint as the command.
    let chart: Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo().join("charts/foureyes/Chart.yaml")).unwrap()).unwrap();
    let values: Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo().join("charts/foureyes/values.yaml")).unwrap()).unwrap();
    assert_eq!(chart["appVersion"], cargo_version().as_str());
    let name = index["manifests"][0]["annotations"]["io.containerd.image.name"]
        .as_str()
        .unwrap();
    assert_eq!(
        name,
        format!(
            "{}:{}",
            values["image"]["repository"].as_str().unwrap(),
            chart["appVersion"].as_str().unwrap()
        )
    );
    assert_eq!(values["image"]["tag"], "");
    assert_eq!(values["image"]["command"], serde_json::json!(file.entrypoint));
}
