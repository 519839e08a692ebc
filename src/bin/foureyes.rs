//! `foureyes`: the operator (`run`) and its manifests (`crds`).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// Emergency and just-in-time access for Kubernetes, with four-eyes approval.
#[derive(Parser, Debug)]
#[command(name = "foureyes", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the CRDs and admission policies (or write them into a directory).
    Crds {
        /// Write one file per manifest into this directory instead of printing a stream.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Print the operator's own ClusterRole and ClusterRoleBinding for a configuration.
    Rbac {
        /// The configuration file (YAML); without it, the defaults.
        #[arg(long, env = "FOUREYES_CONFIG")]
        config: Option<PathBuf>,
        /// The operator's namespace.
        #[arg(long, default_value = "foureyes-system")]
        namespace: String,
        /// The operator's service account.
        #[arg(long, default_value = "foureyes")]
        service_account: String,
    },
    /// Run the operator against the cluster of the current kubeconfig or service account.
    Run(foureyes::run::RunArgs),
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    match std::io::stdout().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds { out_dir: None } => {
            emit(&foureyes::api::manifests::all_as_stream())?;
            Ok(())
        }
        Command::Crds { out_dir: Some(dir) } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for m in foureyes::api::manifests::all() {
                let path = dir.join(&m.file);
                std::fs::write(&path, &m.yaml).with_context(|| format!("writing {}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
            Ok(())
        }
        Command::Rbac {
            config,
            namespace,
            service_account,
        } => {
            let config = match config {
                Some(path) => foureyes::config::Config::from_file(&path)?,
                None => foureyes::config::Config::default(),
            };
            let role = foureyes::rbac::operator::operator_cluster_role(&config);
            let binding = foureyes::rbac::operator::operator_cluster_role_binding(&namespace, &service_account);
            let mut role = serde_json::to_value(role)?;
            role["apiVersion"] = "rbac.authorization.k8s.io/v1".into();
            role["kind"] = "ClusterRole".into();
            let mut binding = serde_json::to_value(binding)?;
            binding["apiVersion"] = "rbac.authorization.k8s.io/v1".into();
            binding["kind"] = "ClusterRoleBinding".into();
            emit(&format!(
                "{}---\n{}",
                serde_yaml::to_string(&role)?,
                serde_yaml::to_string(&binding)?
            ))
        }
        Command::Run(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(foureyes::run::run(args))
        }
    }
}
