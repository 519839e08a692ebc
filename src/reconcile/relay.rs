//! Relays: when a cached object changes in a way that others depend on, the
//! controllers of those others are told (a workspace's bindings when its
//! policy changes, a namespace's requests when a manager binding changes).
//!
//! A relay reads the same watch events that feed the cache, after the cache
//! took them in, so a controller it wakes never decides on an older cache.
//! It leaves out two kinds of events:
//!
//! - those of the first full list: every object is reconciled once the
//!   caches are first synced (the reconcilers wait for that), so relaying
//!   them would only queue every dependent a second time;
//! - changes that leave the relay's `key` as it was (a workspace's status
//!   counts do not change what its bindings grant).
//!
//! A later re-list (after a watch expired) is relayed, as far as it shows
//! changes, since the dependents may have missed them.

use std::collections::HashMap;

use kube::Resource;
use kube::runtime::watcher;

/// A watch-stream inspector that calls `send` for each object whose `key`
/// changed, and for each deleted object (see the module documentation).
pub fn relay<K, V>(
    key: impl Fn(&K) -> V + Send + 'static,
    mut send: impl FnMut(&K) + Send + 'static,
) -> impl FnMut(&Result<watcher::Event<K>, watcher::Error>) + Send + 'static
where
    K: Resource,
    V: PartialEq + Send + 'static,
{
    let mut seen: HashMap<String, V> = HashMap::new();
    let mut synced = false;
    move |event| {
        let Ok(event) = event else { return };
        match event {
            watcher::Event::Init => {}
            watcher::Event::InitDone => synced = true,
            watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => {
                let (id, value) = (identity(obj), key(obj));
                if seen.get(&id) != Some(&value) {
                    seen.insert(id, value);
                    if synced {
                        send(obj);
                    }
                }
            }
            watcher::Event::Delete(obj) => {
                seen.remove(&identity(obj));
                send(obj);
            }
        }
    }
}

fn identity<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    use super::*;

    fn cm(name: &str, value: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            data: Some([("k".to_owned(), value.to_owned())].into()),
            ..Default::default()
        }
    }

    #[test]
    fn relays_changes_of_the_key_and_deletions_after_the_first_list() {
        let sent = Arc::new(Mutex::new(vec![]));
        let mut relay = relay(|c: &ConfigMap| c.data.clone().unwrap_or_default().get("k").cloned(), {
            let sent = sent.clone();
            move |c: &ConfigMap| sent.lock().unwrap().push(c.metadata.name.clone().unwrap())
        });
        let taken = |sent: &Arc<Mutex<Vec<String>>>| std::mem::take(&mut *sent.lock().unwrap());

        // The first list is not relayed.
        relay(&Ok(watcher::Event::Init));
        relay(&Ok(watcher::Event::InitApply(cm("a", "1"))));
        relay(&Ok(watcher::Event::InitApply(cm("b", "1"))));
        relay(&Ok(watcher::Event::InitDone));
        assert!(taken(&sent).is_empty());

        // A change of the key is; one that leaves it as it was is not.
        relay(&Ok(watcher::Event::Apply(cm("a", "2"))));
        relay(&Ok(watcher::Event::Apply(cm("b", "1"))));
        assert_eq!(taken(&sent), vec!["a"]);

        // New objects and deletions are.
        relay(&Ok(watcher::Event::Apply(cm("c", "1"))));
        relay(&Ok(watcher::Event::Delete(cm("b", "1"))));
        assert_eq!(taken(&sent), vec!["c", "b"]);

        // A re-list relays what changed while the watch was away.
        relay(&Ok(watcher::Event::Init));
        relay(&Ok(watcher::Event::InitApply(cm("a", "2"))));
        relay(&Ok(watcher::Event::InitApply(cm("c", "3"))));
        relay(&Ok(watcher::Event::InitApply(cm("b", "1"))));
        relay(&Ok(watcher::Event::InitDone));
        assert_eq!(taken(&sent), vec!["c", "b"]);

        // Errors pass by.
        relay(&Err(watcher::Error::NoResourceVersion));
        assert!(taken(&sent).is_empty());
    }
}
