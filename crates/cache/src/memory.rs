//! The in-process cache: embedded mode's, and fast tests'. It keeps the
//! Redis semantics the rest of the system relies on — expiry, `SET NX`,
//! compare-and-delete, fixed-window counters — in a map behind a mutex.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::{CacheError, namespaced, ttl_millis};

/// A [`crate::Cache`] in this process's memory. Cheap to clone; clones
/// share the map.
///
/// Expiry follows Tokio's clock, so tests with a paused clock can move
/// through TTLs instantly.
#[derive(Clone)]
pub struct MemoryCache {
    prefix: Arc<str>,
    store: Arc<Mutex<Store>>,
}

struct Store {
    entries: HashMap<String, Entry>,
    /// Expired entries are dropped when read, and swept out all at once
    /// when the map reaches this size, so keys that are never read again
    /// cannot grow it without bound; sweeping at double the live size
    /// keeps the cost amortized O(1) per write.
    sweep_at: usize,
}

struct Entry {
    value: Bytes,
    expires_at: Instant,
}

/// Below this size the map is never swept: there is nothing to win.
const MIN_SWEEP: usize = 1024;

impl fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCache")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl MemoryCache {
    pub(crate) fn new(prefix: &str) -> MemoryCache {
        MemoryCache {
            prefix: prefix.into(),
            store: Arc::new(Mutex::new(Store {
                entries: HashMap::new(),
                sweep_at: MIN_SWEEP,
            })),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<Bytes> {
        let key = self.key(key);
        let now = Instant::now();
        let mut store = self.store();
        match store.entries.get(&key) {
            Some(entry) if entry.expires_at > now => Some(entry.value.clone()),
            Some(_) => {
                store.entries.remove(&key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn set(&self, key: &str, value: &[u8], ttl: Duration) {
        let key = self.key(key);
        let entry = Entry::new(Bytes::copy_from_slice(value), ttl);
        self.store().insert(key, entry);
    }

    pub(crate) fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> bool {
        let key = self.key(key);
        let now = Instant::now();
        let mut store = self.store();
        if store.entries.get(&key).is_some_and(|e| e.expires_at > now) {
            return false;
        }
        store.insert(key, Entry::new(Bytes::copy_from_slice(value), ttl));
        true
    }

    pub(crate) fn delete(&self, key: &str) {
        let key = self.key(key);
        self.store().entries.remove(&key);
    }

    pub(crate) fn delete_if_equals(&self, key: &str, expected: &[u8]) -> bool {
        let key = self.key(key);
        let now = Instant::now();
        let mut store = self.store();
        let ours = store
            .entries
            .get(&key)
            .is_some_and(|e| e.expires_at > now && e.value == expected);
        if ours {
            store.entries.remove(&key);
        }
        ours
    }

    pub(crate) fn incr_with_ttl(&self, key: &str, ttl: Duration) -> Result<i64, CacheError> {
        let key = self.key(key);
        let now = Instant::now();
        let mut store = self.store();
        if let Some(entry) = store.entries.get_mut(&key).filter(|e| e.expires_at > now) {
            let count = std::str::from_utf8(&entry.value)
                .ok()
                .and_then(|text| text.parse::<i64>().ok())
                .ok_or_else(|| refused("the value is not an integer"))?
                .checked_add(1)
                .ok_or_else(|| refused("the increment would overflow"))?;
            entry.value = Bytes::from(count.to_string());
            return Ok(count);
        }
        store.insert(key, Entry::new(Bytes::from_static(b"1"), ttl));
        Ok(1)
    }

    fn key(&self, key: &str) -> String {
        namespaced(&self.prefix, key)
    }

    /// Every critical section leaves the map consistent, so a panic in one
    /// (there is nothing in them to panic) would not poison the data.
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Entry {
    fn new(value: Bytes, ttl: Duration) -> Entry {
        let now = Instant::now();
        let ttl = Duration::from_millis(ttl_millis(ttl));
        // A TTL too long for the clock to represent is, in practice, forever:
        // a century will do.
        let expires_at = now
            .checked_add(ttl)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600));
        Entry { value, expires_at }
    }
}

impl Store {
    fn insert(&mut self, key: String, entry: Entry) {
        self.entries.insert(key, entry);
        self.sweep_if_due();
    }

    fn sweep_if_due(&mut self) {
        if self.entries.len() < self.sweep_at {
            return;
        }
        let now = Instant::now();
        self.entries.retain(|_, entry| entry.expires_at > now);
        self.sweep_at = (self.entries.len() * 2).max(MIN_SWEEP);
    }
}

fn refused(why: &str) -> CacheError {
    CacheError::Refused(why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn expired_entries_are_swept_out_as_the_map_grows() {
        let cache = MemoryCache::new("t:");
        for i in 0..MIN_SWEEP - 1 {
            cache.set(&format!("old{i}"), b"v", SECOND);
        }
        tokio::time::advance(2 * SECOND).await;
        cache.set("new", b"v", SECOND);
        let store = cache.store();
        assert_eq!(store.entries.len(), 1, "only the live entry is left");
        assert_eq!(store.sweep_at, MIN_SWEEP);
    }

    #[tokio::test(start_paused = true)]
    async fn live_entries_survive_a_sweep_and_push_the_next_one_out() {
        let cache = MemoryCache::new("t:");
        for i in 0..MIN_SWEEP {
            cache.set(&format!("k{i}"), b"v", SECOND);
        }
        let store = cache.store();
        assert_eq!(store.entries.len(), MIN_SWEEP);
        assert_eq!(store.sweep_at, 2 * MIN_SWEEP);
    }

    #[tokio::test(start_paused = true)]
    async fn counters_are_swept_too() {
        let cache = MemoryCache::new("t:");
        for i in 0..MIN_SWEEP - 1 {
            cache.incr_with_ttl(&format!("c{i}"), SECOND).unwrap();
        }
        tokio::time::advance(2 * SECOND).await;
        assert_eq!(cache.incr_with_ttl("c", SECOND), Ok(1));
        assert_eq!(cache.store().entries.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_ttl_too_long_for_the_clock_is_a_century() {
        let cache = MemoryCache::new("t:");
        cache.set("k", b"v", Duration::MAX);
        tokio::time::advance(Duration::from_secs(50 * 365 * 24 * 3600)).await;
        assert_eq!(cache.get("k").as_deref(), Some(&b"v"[..]));
    }
}
