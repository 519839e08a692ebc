//! `foureyes run`: start-up, watches and shutdown.
//!
//! At this stage the operator checks that its CRDs are installed, then watches
//! its four kinds and logs what it sees; the reconcilers build on this.

use clap::Args;
use futures::StreamExt as _;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tracing::{info, warn};

use crate::api::{Project, RoleBinding, RoleRequest, Workspace};

/// Arguments of `foureyes run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Log format: `text` or `json`.
    #[arg(long, env = "FOUREYES_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

/// Runs the operator until SIGTERM or Ctrl-C.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_tracing(&args.log_format);
    let client = Client::try_default().await?;
    wait_for_crds(&client).await?;
    info!("watching workspaces, projects, role bindings and role requests");
    let watches = futures::future::join4(
        watch_kind(Api::<Workspace>::all(client.clone())),
        watch_kind(Api::<Project>::all(client.clone())),
        watch_kind(Api::<RoleBinding>::all(client.clone())),
        watch_kind(Api::<RoleRequest>::all(client.clone())),
    );
    tokio::select! {
        _ = watches => {}
        _ = shutdown_signal() => info!("shutting down"),
    }
    Ok(())
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Waits until the API server serves every foureyes kind.
async fn wait_for_crds(client: &Client) -> anyhow::Result<()> {
    loop {
        let missing = missing_kinds(client).await;
        if missing.is_empty() {
            return Ok(());
        }
        warn!(
            ?missing,
            "foureyes CRDs not installed yet; install them with `foureyes crds | kubectl apply --server-side -f -`"
        );
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
}

async fn missing_kinds(client: &Client) -> Vec<&'static str> {
    let mut missing = vec![];
    let lp = kube::api::ListParams::default().limit(1);
    if Api::<Workspace>::all(client.clone()).list_metadata(&lp).await.is_err() {
        missing.push("Workspace");
    }
    if Api::<Project>::all(client.clone()).list_metadata(&lp).await.is_err() {
        missing.push("Project");
    }
    if Api::<RoleBinding>::all(client.clone())
        .list_metadata(&lp)
        .await
        .is_err()
    {
        missing.push("RoleBinding");
    }
    if Api::<RoleRequest>::all(client.clone())
        .list_metadata(&lp)
        .await
        .is_err()
    {
        missing.push("RoleRequest");
    }
    missing
}

async fn watch_kind<K>(api: Api<K>)
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    let kind = K::kind(&Default::default()).to_string();
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    while let Some(event) = stream.next().await {
        match event {
            Ok(obj) => info!(
                kind,
                namespace = obj.namespace().unwrap_or_default(),
                name = obj.name_any(),
                "observed"
            ),
            Err(err) => warn!(kind, %err, "watch error"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
