//! Secondary indexes over the caches, so that a reconcile looks at the few
//! objects that concern it instead of scanning every cached object (which
//! would make a pass over N bindings cost N²).
//!
//! An index maps a key (a namespace, a binding's uid) to object names. It is
//! fed by the same watch events as the cache, and a full re-list rebuilds it
//! atomically at its end, as the cache does. Lookups still go through the
//! cache, so a stale index entry costs a miss, never a wrong answer.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::{Arc, Mutex, RwLock};

use kube::runtime::watcher;

/// (key, name) pairs, in order: one ordered set for the whole index rather
/// than a set per key, since most keys (a binding's uid) have a single name.
type Map = BTreeSet<(String, String)>;

/// What an index files an object under: its key and its name.
pub type Entry<K> = fn(&K) -> Option<(String, String)>;

/// Key → names.
#[derive(Default)]
pub struct Index {
    live: RwLock<Map>,
    building: Mutex<Option<Map>>,
}

impl Index {
    /// The names under a key.
    pub fn get(&self, key: &str) -> Vec<String> {
        let from = (key.to_owned(), String::new());
        self.live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .range((Bound::Included(&from), Bound::Unbounded))
            .take_while(|(k, _)| k == key)
            .map(|(_, name)| name.clone())
            .collect()
    }

    fn insert(map: &mut Map, key: String, name: String) {
        map.insert((key, name));
    }

    fn remove(map: &mut Map, key: &str, name: &str) {
        map.remove(&(key.to_owned(), name.to_owned()));
    }

    /// Applies one watch event, with `entry` giving an object's key and name.
    pub fn observe<K>(&self, event: &watcher::Event<K>, entry: impl Fn(&K) -> Option<(String, String)>) {
        match event {
            watcher::Event::Apply(obj) => {
                if let Some((k, n)) = entry(obj) {
                    Self::insert(&mut self.live.write().unwrap_or_else(|e| e.into_inner()), k, n);
                }
            }
            watcher::Event::Delete(obj) => {
                if let Some((k, n)) = entry(obj) {
                    Self::remove(&mut self.live.write().unwrap_or_else(|e| e.into_inner()), &k, &n);
                }
            }
            watcher::Event::Init => {
                *self.building.lock().unwrap_or_else(|e| e.into_inner()) = Some(Map::new());
            }
            watcher::Event::InitApply(obj) => {
                if let (Some((k, n)), Some(map)) = (
                    entry(obj),
                    self.building.lock().unwrap_or_else(|e| e.into_inner()).as_mut(),
                ) {
                    Self::insert(map, k, n);
                }
            }
            watcher::Event::InitDone => {
                if let Some(map) = self.building.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    *self.live.write().unwrap_or_else(|e| e.into_inner()) = map;
                }
            }
        }
    }
}

/// The indexes the reconcilers use.
#[derive(Default)]
pub struct Indexes {
    /// Namespace → foureyes bindings in it.
    pub bindings_by_namespace: Arc<Index>,
    /// Namespace → projects in it.
    pub projects_by_namespace: Arc<Index>,
    /// Role requests by namespace.
    pub requests_by_namespace: Arc<Index>,
    /// Control namespace → the workspace that owns it.
    pub workspaces_by_namespace: Arc<Index>,
    /// Owning binding's uid → its native bindings, as `<namespace>/<name>`.
    pub natives_by_owner: Arc<Index>,
}

/// A watch-stream inspector that feeds an index.
pub fn feed<K>(
    index: &Arc<Index>,
    entry: Entry<K>,
) -> impl FnMut(&Result<watcher::Event<K>, watcher::Error>) + Send + 'static
where
    K: 'static,
{
    let index = index.clone();
    move |event| {
        if let Ok(event) = event {
            index.observe(event, entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(s: &(&'static str, &'static str)) -> Option<(String, String)> {
        Some((s.0.to_owned(), s.1.to_owned()))
    }

    #[test]
    fn follows_applies_deletes_and_relists() {
        let idx = Index::default();
        idx.observe(&watcher::Event::Apply(("ns1", "a")), entry);
        idx.observe(&watcher::Event::Apply(("ns1", "b")), entry);
        idx.observe(&watcher::Event::Apply(("ns2", "c")), entry);
        idx.observe(&watcher::Event::Apply(("ns10", "e")), entry);
        idx.observe(&watcher::Event::Apply(("ns", "f")), entry);
        assert_eq!(
            idx.get("ns1"),
            vec!["a", "b"],
            "another key that starts alike is not mixed in"
        );
        assert_eq!(idx.get("ns10"), vec!["e"]);
        assert!(idx.get("n").is_empty());
        idx.observe(&watcher::Event::Delete(("ns1", "a")), entry);
        assert_eq!(idx.get("ns1"), vec!["b"]);
        // A re-list keeps serving the old view until it is complete.
        idx.observe(&watcher::Event::Init, entry);
        idx.observe(&watcher::Event::InitApply(("ns3", "d")), entry);
        assert_eq!(idx.get("ns1"), vec!["b"]);
        assert!(idx.get("ns3").is_empty());
        idx.observe(&watcher::Event::InitDone, entry);
        assert!(idx.get("ns1").is_empty() && idx.get("ns2").is_empty());
        assert_eq!(idx.get("ns3"), vec!["d"]);
    }
}
