//! `foureyes`: the operator (`run`), the independent sweep of overdue access
//! (`sweep`) and its manifests (`crds`, `rbac`).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

// jemalloc, set up to hold as little memory as it can (DESIGN §5 memory):
// one arena, no per-thread caches, and freed pages returned at once. The
// operator's allocations are few and small next to its API calls, so this
// costs little time. `_RJEM_MALLOC_CONF` overrides it at run time.
#[cfg(all(not(target_env = "msvc"), not(feature = "dhat-heap")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(all(not(target_env = "msvc"), not(feature = "dhat-heap")))]
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: MallocConf = MallocConf(c"narenas:1,tcache:false,dirty_decay_ms:0,muzzy_decay_ms:0".as_ptr());

/// jemalloc reads its compiled-in options from a C string pointer.
#[cfg(all(not(target_env = "msvc"), not(feature = "dhat-heap")))]
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);
// SAFETY: it points to a constant string and is never written.
#[cfg(all(not(target_env = "msvc"), not(feature = "dhat-heap")))]
unsafe impl Sync for MallocConf {}

#[cfg(feature = "dhat-heap")]
#[global_allocator]
static DHAT: dhat::Alloc = dhat::Alloc;

/// Emergency and just-in-time access for Kubernetes, with four-eyes approval.
#[derive(Parser, Debug)]
#[command(name = "foureyes", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the CRDs, the admission policies and the default project
    /// ClusterRoles (or write them into a directory).
    Crds {
        /// Write one file per manifest into this directory instead of printing a stream.
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// Also write the Helm chart's generated files (its CRDs, and its RBAC,
        /// admission-policy and project-role templates) into this chart directory.
        #[arg(long)]
        chart_dir: Option<PathBuf>,
    },
    /// Print the operator's own RBAC for a configuration (ClusterRole, lease Role, bindings).
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
        /// The leader Lease's name (it lives in the operator's namespace).
        #[arg(long, default_value = foureyes::wire::DEFAULT_LEASE_NAME)]
        lease_name: String,
    },
    /// Run the operator against the cluster of the current kubeconfig or service account.
    Run(Box<foureyes::run::RunArgs>),
    /// Delete every native RoleBinding foureyes made whose expiry has passed,
    /// without the operator (the chart's CronJob runs `sweep --once` every
    /// minute): access stays bounded while the operator is down.
    Sweep(foureyes::run::SweepArgs),
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
    #[cfg(feature = "dhat-heap")]
    let _profiler = dhat::Profiler::new_heap();
    let cli = Cli::parse();
    match cli.command {
        Command::Crds {
            out_dir: None,
            chart_dir: None,
        } => {
            emit(&foureyes::manifests::all_as_stream())?;
            Ok(())
        }
        Command::Crds { out_dir, chart_dir } => {
            if let Some(dir) = out_dir {
                std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
                for m in foureyes::manifests::all() {
                    let path = dir.join(&m.file);
                    std::fs::write(&path, &m.yaml).with_context(|| format!("writing {}", path.display()))?;
                    eprintln!("wrote {}", path.display());
                }
            }
            if let Some(dir) = chart_dir {
                let written = foureyes::manifests::chart::write(&dir)
                    .with_context(|| format!("writing the chart's files under {}", dir.display()))?;
                for path in written {
                    eprintln!("wrote {}", path.display());
                }
            }
            Ok(())
        }
        Command::Rbac {
            config,
            namespace,
            service_account,
            lease_name,
        } => {
            let config = match config {
                Some(path) => foureyes::config::Config::from_file(&path)?,
                None => foureyes::config::Config::default(),
            };
            let docs = foureyes::manifests::operator::operator_rbac(&config, &namespace, &service_account, &lease_name)
                .iter()
                .map(serde_yaml::to_string)
                .collect::<Result<Vec<_>, _>>()?;
            emit(&docs.join("---\n"))
        }
        Command::Run(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let result = rt.block_on(foureyes::run::run(*args));
            // After a lost leader lease nothing may keep acting: stop every
            // task now rather than waiting for them.
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
            result
        }
        Command::Sweep(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(foureyes::run::sweep_command(args))
        }
    }
}
