//! Live updates: watches on the requests and bindings of the workspaces the
//! console shows, as the user, turned into server-sent events.
//!
//! A change is announced, not sent: the event names what changed
//! (`requests`, `bindings`) and the page fetches the fragment again, so the
//! HTML comes from the same code as a full page load, and a page without
//! JavaScript loses nothing but the automatic refresh. A watch the user may
//! not make (403) retries with the watcher's backoff, and the page keeps
//! working by reloading.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::sync::broadcast;

use crate::api::{RoleBinding, RoleRequest};

/// What changed, as the event's name.
pub type Change = &'static str;

/// Starts one watch per kind and namespace; returns the sender that
/// announces their changes.
pub fn start(client: &Client, namespaces: &[String]) -> broadcast::Sender<Change> {
    let (tx, _) = broadcast::channel(64);
    for ns in namespaces {
        spawn_watch::<RoleRequest>(Api::namespaced(client.clone(), ns), "requests", tx.clone());
        spawn_watch::<RoleBinding>(Api::namespaced(client.clone(), ns), "bindings", tx.clone());
    }
    tx
}

fn spawn_watch<K>(api: Api<K>, change: Change, tx: broadcast::Sender<Change>)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    K::DynamicType: Default,
{
    tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default());
        let mut stream = std::pin::pin!(kube::runtime::WatchStreamExt::default_backoff(stream));
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone) => {
                    // No receiver (no page open) is not an error.
                    let _ = tx.send(change);
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, change, "console watch failed; retrying"),
            }
        }
    });
}

/// The event stream for one page: a named event per change, and a comment
/// every 15 s to keep the connection open.
pub fn events(rx: broadcast::Receiver<Change>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let name = match rx.recv().await {
            Ok(change) => change,
            // Missed some: one announcement covers them all.
            Err(broadcast::error::RecvError::Lagged(_)) => "all",
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(Event::default().event(name).data("changed")), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
