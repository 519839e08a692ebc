//! Leader election, so that two or more replicas are safe: only the holder of
//! a `coordination.k8s.io` Lease runs the start-up revocation, the
//! controllers and the sweep. The others serve `/healthz`, `/readyz` and
//! `/metrics` and wait.
//!
//! The Lease is managed by `kube-lease-manager`: the holder renews it
//! `--lease-grace` before it would expire; a waiting replica takes it over
//! once it has not been renewed for `--lease-duration` (plus a random pause
//! of up to a second). A leader that loses the Lease stops acting at once and
//! the process exits non-zero, so that it starts afresh as a waiting replica
//! (the Deployment restarts it); a leader that shuts down (SIGTERM) releases
//! the Lease, so that another replica takes over without waiting for it to
//! expire.
//!
//! Besides the lease manager's own view, a leader checks the Lease itself
//! every half grace period (at most every 2 seconds): if it cannot confirm
//! that it still holds the Lease before the Lease's expiry (say, the API
//! server does not answer it but does answer the others, or accepts its
//! connections and never answers), it gives up at that expiry, which is the earliest moment another replica may take over. Clock
//! skew between replicas up to the grace period is tolerated.
//!
//! The lease manager cannot do that part: when a renewal fails, it logs the
//! error and retries with a backoff, and its channel keeps saying "leader"
//! until a later read of the Lease succeeds and names someone else, however
//! long after the expiry that is; and it exposes neither the holder nor the
//! expiry it last saw. The same goes for a standby's readiness, which needs
//! the holder and the expiry of the Lease (`held_by_another`).
//!
//! ## Readiness
//!
//! A waiting replica is **ready** while another replica validly holds the
//! Lease: it is healthy and able to take over, and a rolling update of a
//! Deployment would otherwise never finish (the new pod would wait for
//! readiness, and for the Lease that the old pod holds). While the Lease is
//! free or expired the replica is about to lead and is not ready yet; the
//! leader is ready once its caches have synced.
//!
//! ## Two leaders at once
//!
//! A Lease narrows the overlap of two leaders, it cannot close it (a paused
//! process may resume after its Lease expired, and requests in flight arrive
//! when they arrive). Every write of the operator stays correct when two
//! replicas act at the same time, which a test shows by running two
//! operators without leader election:
//!
//! - native RBAC, workspace Roles and status are written by forced
//!   server-side apply with one field manager (`foureyes`) and names derived
//!   from the foureyes object, so two writers converge on the same object and
//!   never create two; namespaces are created by `create`, where the second
//!   writer gets `AlreadyExists` and decides again; finalizers are added and
//!   removed by JSON patches with a `test` of the current list;
//! - deletions of native RBAC carry the uid of the object that was judged
//!   overdue or orphaned as a precondition, so a late delete never removes a
//!   newer object of the same name;
//! - status is computed from the object and the world alone (no current time
//!   in compared fields), and the end of a binding, once seen in the status,
//!   is kept: two writers converge on one status. The one value that differs
//!   between writers is a revocation's `finishedAt` (the time an operator saw
//!   the revocation): a writer that has not yet seen the other's status may
//!   publish its own time once, milliseconds apart, before both agree; the
//!   access is removed either way;
//! - appends to the history are conditional on `resourceVersion` and keyed
//!   by the object's uid and the transition (DESIGN §4), so a second
//!   writer's append is refused or recognised as already written.

use crate::wire::{DEFAULT_LEASE_NAME, DEFAULT_LEASE_NAMESPACE};
use std::future::Future;
use std::time::{Duration, SystemTime};

use clap::Args;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::api::GoDuration;
use crate::telemetry::Health;

/// Leader-election arguments of `foureyes run`.
#[derive(Args, Debug, Clone)]
pub struct LeaderArgs {
    /// Act only while holding the leader Lease (`--leader-elect=false` to turn
    /// it off, for a single replica that must act at once).
    #[arg(
        long,
        env = "FOUREYES_LEADER_ELECT",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub leader_elect: bool,
    /// The Lease's namespace (default: `POD_NAMESPACE`, else `foureyes-system`).
    #[arg(long, env = "FOUREYES_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// The Lease's name.
    #[arg(long, env = "FOUREYES_LEASE_NAME", default_value = DEFAULT_LEASE_NAME)]
    pub lease_name: String,
    /// How long the Lease stays valid after its last renewal (whole seconds).
    #[arg(long, env = "FOUREYES_LEASE_DURATION", default_value = "15s")]
    pub lease_duration: GoDuration,
    /// How long before its expiry the leader renews the Lease (whole seconds,
    /// shorter than the duration); also the clock skew tolerated.
    #[arg(long, env = "FOUREYES_LEASE_GRACE", default_value = "5s")]
    pub lease_grace: GoDuration,
}

impl LeaderArgs {
    /// The Lease's namespace: the flag, else `POD_NAMESPACE`, else the default.
    pub fn namespace(&self) -> String {
        self.lease_namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .or_else(|| std::env::var("POD_NAMESPACE").ok().filter(|ns| !ns.is_empty()))
            .unwrap_or_else(|| DEFAULT_LEASE_NAMESPACE.to_owned())
    }

    /// The Lease duration and grace in seconds, checked.
    pub fn timings(&self) -> anyhow::Result<(u64, u64)> {
        let duration = whole_seconds("--lease-duration", self.lease_duration.get())?;
        let grace = whole_seconds("--lease-grace", self.lease_grace.get())?;
        anyhow::ensure!(
            grace < duration,
            "--lease-grace ({grace}s) must be shorter than --lease-duration ({duration}s)"
        );
        Ok((duration, grace))
    }
}

fn whole_seconds(flag: &str, d: Duration) -> anyhow::Result<u64> {
    anyhow::ensure!(
        d.subsec_nanos() == 0 && d.as_secs() >= 1,
        "{flag} must be a whole number of seconds, at least 1s"
    );
    Ok(d.as_secs())
}

/// This process's identity in the Lease: the pod name when given, else the
/// host name and the process id.
pub fn identity(instance: Option<&str>) -> String {
    if let Some(name) = instance.filter(|n| !n.is_empty()) {
        return name.to_owned();
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "foureyes".to_owned());
    format!("{host}-{}", std::process::id())
}

/// Leadership, once held (or leader election turned off).
pub struct Leader {
    /// `None` without leader election: never lost.
    lost: Option<watch::Receiver<Option<String>>>,
    monitor: Option<JoinHandle<()>>,
    manager: Option<JoinHandle<kube_lease_manager::Result<LeaseManager>>>,
}

impl Leader {
    /// Resolves, with the reason, when leadership is lost; never without
    /// leader election.
    pub fn lost(&self) -> impl Future<Output = String> + Send + 'static {
        let rx = self.lost.clone();
        async move {
            let Some(mut rx) = rx else {
                return std::future::pending().await;
            };
            match rx.wait_for(Option::is_some).await {
                Ok(reason) => reason.clone().unwrap_or_default(),
                Err(_) => "the lease monitor stopped".to_owned(),
            }
        }
    }

    /// Gives the Lease up (on shutdown), so that another replica takes over
    /// without waiting for it to expire.
    pub async fn release(mut self) {
        if let Some(monitor) = self.monitor.take() {
            // Dropping the monitor drops the lease manager's channel, which
            // makes it release the Lease and stop.
            monitor.abort();
            let _ = monitor.await;
        }
        if let Some(manager) = self.manager.take() {
            match tokio::time::timeout(Duration::from_secs(5), manager).await {
                Ok(Ok(Ok(_))) => info!("leader lease released"),
                Ok(Ok(Err(err))) => warn!(%err, "could not release the leader lease"),
                Ok(Err(err)) => warn!(%err, "the lease manager failed"),
                Err(_) => warn!("releasing the leader lease timed out"),
            }
        }
    }
}

/// Waits until this process holds the Lease (at once without leader
/// election). Returns `None` if `shutdown` completes first. While waiting,
/// the process is ready (see the module docs).
pub async fn acquire(
    client: &Client,
    args: &LeaderArgs,
    identity: &str,
    health: &Health,
    shutdown: impl Future<Output = ()> + Clone,
) -> anyhow::Result<Option<Leader>> {
    if !args.leader_elect {
        info!("leader election is off: acting at once");
        return Ok(Some(Leader {
            lost: None,
            monitor: None,
            manager: None,
        }));
    }
    let (duration, grace) = args.timings()?;
    let namespace = args.namespace();
    let name = args.lease_name.clone();
    let manager = loop {
        let built = LeaseManagerBuilder::new(client.clone(), &name)
            .with_namespace(&namespace)
            .with_identity(identity)
            .with_duration(duration)
            .with_grace(grace)
            .with_field_manager(format!("foureyes-lease-{identity}"))
            .build()
            .await;
        match built {
            Ok(m) => break m,
            Err(err) => {
                health.set_not_ready_reason(format!("cannot use the leader lease {namespace}/{name}: {err}"));
                warn!(%err, namespace, name, "cannot use the leader lease; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = shutdown.clone() => return Ok(None),
                }
            }
        }
    };
    let (mut state, task) = manager.watch().await;
    let api: Api<Lease> = Api::namespaced(client.clone(), &namespace);
    health.set_not_ready_reason("acquiring the leader lease");
    let mut standby = false;
    loop {
        if *state.borrow_and_update() {
            break;
        }
        tokio::select! {
            changed = state.changed() => if changed.is_err() {
                let outcome = task.await;
                anyhow::bail!("the lease manager stopped while waiting for the lease: {outcome:?}");
            },
            // Ready as a standby only while another replica validly holds the
            // Lease: a free Lease is about to be ours, and until the caches
            // have synced the leader is not ready.
            _ = tokio::time::sleep(Duration::from_millis(if standby { 2000 } else { 200 })) => {
                let others = held_by_another(&api, &name, identity).await;
                if others && !standby {
                    health.set_ready(true);
                    info!(namespace, name, identity, "standby: waiting for the leader lease");
                } else if !others && standby {
                    health.set_not_ready_reason("acquiring the leader lease");
                }
                standby = others;
            },
            _ = shutdown.clone() => {
                drop(state);
                let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
                return Ok(None);
            }
        }
    }
    info!(namespace, name, identity, "acquired the leader lease");
    let (lost_tx, lost_rx) = watch::channel(None);
    let me = identity.to_owned();
    let monitor = tokio::spawn(async move {
        let reason = tokio::select! {
            reason = manager_says_lost(state) => reason,
            reason = confirm_holding(api, name, me, Duration::from_secs(duration), Duration::from_secs(grace)) => reason,
        };
        error!(reason, "lost the leader lease");
        let _ = lost_tx.send(Some(reason));
    });
    Ok(Some(Leader {
        lost: Some(lost_rx),
        monitor: Some(monitor),
        manager: Some(task),
    }))
}

/// Whether the Lease names another holder and has not expired.
async fn held_by_another(api: &Api<Lease>, name: &str, me: &str) -> bool {
    let Ok(lease) = api.get(name).await else {
        return false;
    };
    let spec = lease.spec.unwrap_or_default();
    let other = spec.holder_identity.as_deref().is_some_and(|h| h != me);
    let valid = match (spec.renew_time, spec.lease_duration_seconds) {
        (Some(renewed), Some(secs)) => {
            SystemTime::from(renewed.0) + Duration::from_secs(u64::try_from(secs).unwrap_or(0)) > SystemTime::now()
        }
        _ => false,
    };
    other && valid
}

/// Resolves when the lease manager reports that this process no longer
/// holds the Lease, or stops.
async fn manager_says_lost(mut state: watch::Receiver<bool>) -> String {
    match state.wait_for(|held| !held).await {
        Ok(_) => "another replica holds the lease".to_owned(),
        Err(_) => "the lease manager stopped".to_owned(),
    }
}

/// Reads the Lease every half grace period (at most every 2 seconds) and
/// resolves when it names another holder, or when its expiry passes without
/// this process having seen it renewed.
async fn confirm_holding(api: Api<Lease>, name: String, me: String, duration: Duration, grace: Duration) -> String {
    let poll = (grace / 2).clamp(Duration::from_millis(100), Duration::from_secs(2));
    // Just acquired: the Lease was renewed a moment ago.
    let mut valid_until = SystemTime::now() + duration;
    loop {
        // A read that does not come back (an API server that accepts and
        // never answers) must not keep this process leading past the expiry.
        let left = valid_until.duration_since(SystemTime::now()).unwrap_or_default();
        let read = match tokio::time::timeout(left, api.get(&name)).await {
            Ok(read) => read,
            Err(_) => return "the lease expired before it was seen renewed (the API server did not answer)".to_owned(),
        };
        match read {
            Ok(lease) => {
                let spec = lease.spec.unwrap_or_default();
                if spec.holder_identity.as_deref() != Some(me.as_str()) {
                    return format!(
                        "the lease names {} as its holder",
                        spec.holder_identity.as_deref().unwrap_or("nobody")
                    );
                }
                if let (Some(renewed), Some(secs)) = (spec.renew_time, spec.lease_duration_seconds) {
                    let secs = u64::try_from(secs).unwrap_or(0);
                    valid_until = SystemTime::from(renewed.0) + Duration::from_secs(secs);
                }
            }
            Err(err) => warn!(%err, "cannot read the leader lease"),
        }
        let left = match valid_until.duration_since(SystemTime::now()) {
            Ok(left) if !left.is_zero() => left,
            _ => return "the lease expired before it was seen renewed".to_owned(),
        };
        tokio::time::sleep(poll.min(left)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        leader: LeaderArgs,
    }

    #[test]
    fn leader_election_is_on_by_default_and_can_be_turned_off() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert!(cli.leader.leader_elect);
        assert_eq!(cli.leader.lease_name, "foureyes");
        assert_eq!(cli.leader.timings().unwrap(), (15, 5));
        let cli = Cli::try_parse_from(["x", "--leader-elect=false"]).unwrap();
        assert!(!cli.leader.leader_elect);
        let cli = Cli::try_parse_from(["x", "--leader-elect"]).unwrap();
        assert!(cli.leader.leader_elect);
    }

    #[test]
    fn timings_are_whole_seconds_with_the_grace_shorter() {
        let parse = |d: &str, g: &str| {
            Cli::try_parse_from(["x", "--lease-duration", d, "--lease-grace", g])
                .unwrap()
                .leader
                .timings()
        };
        assert_eq!(parse("3s", "1s").unwrap(), (3, 1));
        assert!(parse("3s", "3s").is_err());
        assert!(parse("1500ms", "1s").is_err());
        assert!(parse("3s", "0s").is_err());
    }

    #[test]
    fn identity_prefers_the_instance_name() {
        assert_eq!(identity(Some("foureyes-7d9f-abc")), "foureyes-7d9f-abc");
        let own = identity(None);
        assert!(own.ends_with(&format!("-{}", std::process::id())), "{own}");
    }
}
