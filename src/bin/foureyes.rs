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
    /// Run the operator against the cluster of the current kubeconfig or service account.
    Run(foureyes::run::RunArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds { out_dir: None } => {
            print!("{}", foureyes::api::manifests::all_as_stream());
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
        Command::Run(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(foureyes::run::run(args))
        }
    }
}
