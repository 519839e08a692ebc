//! Read-your-own-writes: what this process wrote, until the cache shows it.
//!
//! A reconciler decides on the caches, which the watches fill a few
//! milliseconds after a write returns. A decision taken in between would
//! see the world from before the process's own last write: a status it
//! just wrote (and would write, and announce, again), a native binding it
//! just deleted (and would delete again), a request it just approved (whose
//! binding would be refused). The overlay holds each such write, by the uid
//! of the object written, and the reconcilers read through it.
//!
//! **One forgetting rule**: an entry lives until the watch of its kind
//! delivers the object at the resourceVersion the write returned (or any
//! deletion of it), after the cache took that event in; a re-list forgets
//! everything, since the cache then holds a fresh view. An entry made
//! before its write returned (an intent, without a resourceVersion yet)
//! lives until the write's result replaces it, or it is discarded.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::Resource;
use kube::runtime::watcher;

/// One write of this process per object uid, until the cache shows it.
pub struct Overlay<V> {
    entries: Mutex<HashMap<String, Entry<V>>>,
}

struct Entry<V> {
    /// The resourceVersion the write returned (`None`: a deletion, or a
    /// write not done yet).
    version: Option<String>,
    value: V,
}

impl<V> Default for Overlay<V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> Overlay<V> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry<V>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a write of `uid` that returned `version` (`None` for a
    /// deletion, or for a write about to be made).
    pub fn wrote(&self, uid: &str, version: Option<String>, value: V) {
        self.lock().insert(uid.to_owned(), Entry { version, value });
    }

    /// What this process wrote for `uid`, if the cache, which holds the
    /// object at `cached_version`, does not show it yet.
    pub fn get(&self, uid: &str, cached_version: Option<&str>) -> Option<V> {
        let mut entries = self.lock();
        let entry = entries.get(uid)?;
        if entry.version.is_some() && entry.version.as_deref() == cached_version {
            // The cache shows it (a write that changed nothing returns the
            // version the cache already has, and no event follows).
            entries.remove(uid);
            return None;
        }
        Some(entry.value.clone())
    }

    /// Whether there is a write of `uid` the cache does not show yet.
    pub fn contains(&self, uid: &str) -> bool {
        self.lock().contains_key(uid)
    }

    /// Forgets the write of `uid` (it failed, or no longer holds).
    pub fn discard(&self, uid: &str) {
        self.lock().remove(uid);
    }

    /// How many writes the cache does not show yet.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether every write is in the cache.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The forgetting rule, fed with every event of the watch of the
    /// objects written (see the module documentation).
    pub fn observe<K: Resource>(&self, event: &watcher::Event<K>) {
        self.observe_with(event, |obj| {
            let meta = obj.meta();
            (meta.uid.as_deref(), meta.resource_version.as_deref())
        })
    }

    /// [`Overlay::observe`] for objects that say their uid and
    /// resourceVersion through `id`.
    pub fn observe_with<K>(&self, event: &watcher::Event<K>, id: impl Fn(&K) -> (Option<&str>, Option<&str>)) {
        match event {
            watcher::Event::Init => self.lock().clear(),
            watcher::Event::InitDone => {}
            watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => {
                if let (Some(uid), version) = id(obj) {
                    let mut entries = self.lock();
                    if entries
                        .get(uid)
                        .is_some_and(|e| e.version.is_some() && e.version.as_deref() == version)
                    {
                        entries.remove(uid);
                    }
                }
            }
            watcher::Event::Delete(obj) => {
                if let (Some(uid), _) = id(obj) {
                    self.lock().remove(uid);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    use super::*;

    fn cm(uid: &str, version: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(uid.into()),
                uid: Some(uid.into()),
                resource_version: Some(version.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn a_write_lives_until_the_cache_shows_its_version() {
        let o: Overlay<&str> = Overlay::default();
        o.wrote("a", Some("7".into()), "mine");
        o.observe(&watcher::Event::Apply(cm("a", "6")));
        assert_eq!(o.get("a", Some("6")), Some("mine"), "an older event is not ours");
        o.observe(&watcher::Event::Apply(cm("b", "7")));
        assert_eq!(
            o.get("a", Some("6")),
            Some("mine"),
            "another object's event is not ours"
        );
        o.observe(&watcher::Event::Apply(cm("a", "7")));
        assert_eq!(o.get("a", Some("7")), None, "the cache shows it: forgotten");
        assert!(o.is_empty());
        // A write that changed nothing: the cache already has its version.
        o.wrote("a", Some("7".into()), "same");
        assert_eq!(o.get("a", Some("7")), None);
        assert!(o.is_empty());
    }

    #[test]
    fn a_deletion_or_a_relist_forgets_and_an_intent_waits_for_its_write() {
        let o: Overlay<bool> = Overlay::default();
        // A deletion (no version) lives until the watch sees the object go.
        o.wrote("gone", None, true);
        o.observe(&watcher::Event::Apply(cm("gone", "3")));
        assert!(o.contains("gone"));
        o.observe(&watcher::Event::Delete(cm("gone", "4")));
        assert!(!o.contains("gone"));
        // An intent is replaced by the write's result, or discarded.
        o.wrote("r", None, true);
        o.wrote("r", Some("9".into()), true);
        o.observe(&watcher::Event::Apply(cm("r", "9")));
        assert!(o.is_empty());
        o.wrote("x", None, true);
        o.discard("x");
        assert!(o.is_empty());
        // A re-list holds a fresh view: everything is forgotten.
        o.wrote("y", Some("1".into()), true);
        o.observe::<ConfigMap>(&watcher::Event::Init);
        assert!(o.is_empty());
    }
}
