//! The write-back cache in front of a key-value store.

use super::lru::{size, LruCache};
use super::merge::MergeIter;
use super::{CacheBudget, FlushListener, FlushedEntry};
use crate::{KeyValueIter, KeyValueStore, StateError, WrappedStateStore};

/// A write-back cache over a [`KeyValueStore`] (usually a
/// [`crate::LoggedKeyValueStore`], so flushing also logs).
///
/// * Writes go to the cache only; repeated writes to a key between flushes fold into one.
/// * Reads (get, range, all) see cached values first, including pending deletes.
/// * [`crate::StateStore::flush_cache`] (commit step 1) writes every dirty entry to the
///   store, least recently written first, and, when a [`FlushListener`] is set, hands each
///   to it right after writing it, with the timestamp of the entry's last update.
/// * When the cache exceeds `max_bytes` (or the caches sharing its [`CacheBudget`] exceed
///   theirs), its least recently *written* entries are evicted; a dirty one is written
///   through (and reported to a listener) at once.
/// * A pending delete of a key the store does not hold is dropped silently: nothing to
///   write, log or forward.
/// * An entry larger than `max_bytes` goes straight through; with `max_bytes = 0` (caching
///   off) that is every write, each reported to the listener at once.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use streamtime_state::{CachingKeyValueStore, InMemoryKeyValueStore, KeyValueStore, StateStore};
/// let forwarded = Arc::new(Mutex::new(Vec::new()));
/// let sink = forwarded.clone();
/// let mut store = CachingKeyValueStore::new(InMemoryKeyValueStore::new("s"), 1 << 20)
///     .with_listener(Box::new(move |e| sink.lock().unwrap().push(e)));
/// for n in [b"1", b"2", b"3"] {
///     store.put(b"k", n, 0)?;
/// }
/// assert_eq!(store.get(b"k")?, Some(b"3".to_vec())); // reads see the cache
/// store.flush_cache()?;
/// assert_eq!(forwarded.lock().unwrap().len(), 1); // three updates, one flushed write
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
pub struct CachingKeyValueStore<S> {
    inner: S,
    cache: LruCache,
    listener: Option<FlushListener>,
    send_old_values: bool,
}

impl<S: KeyValueStore> CachingKeyValueStore<S> {
    /// Caches up to `max_bytes` (keys + values + a fixed per-entry overhead) in front of
    /// `inner`; 0 disables caching.
    pub fn new(inner: S, max_bytes: usize) -> Self {
        Self::with_budget(inner, CacheBudget::new(max_bytes))
    }

    /// Caches in front of `inner` within a budget shared with other caches.
    pub fn with_budget(inner: S, budget: std::sync::Arc<CacheBudget>) -> Self {
        CachingKeyValueStore {
            inner,
            cache: LruCache::new(budget),
            listener: None,
            send_old_values: false,
        }
    }

    /// Reports every entry written to the store underneath to `listener`.
    pub fn with_listener(mut self, listener: FlushListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Also read and report each flushed key's previous value (one extra read per flushed
    /// put), for downstream operators that need old values.
    pub fn with_old_values(mut self, send_old_values: bool) -> Self {
        self.send_old_values = send_old_values;
        self
    }

    /// The store underneath (read-only: it lacks unflushed updates).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Bytes currently cached.
    pub fn cached_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// Entries currently cached (dirty or clean).
    pub fn cached_entries(&self) -> usize {
        self.cache.len()
    }

    /// Writes one entry to the store and reports it.
    fn write_through(
        &mut self,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        timestamp: i64,
    ) -> Result<(), StateError> {
        let old = if value.is_none() || self.send_old_values {
            self.inner.get(&key)?
        } else {
            None
        };
        if value.is_none() && old.is_none() {
            return Ok(());
        }
        match &value {
            Some(v) => self.inner.put(&key, v, timestamp)?,
            None => self.inner.delete(&key, timestamp)?,
        }
        if let Some(listener) = &mut self.listener {
            listener(FlushedEntry {
                key,
                new_value: value,
                old_value: old,
                timestamp,
            });
        }
        Ok(())
    }

    fn write(
        &mut self,
        key: &[u8],
        value: Option<Vec<u8>>,
        timestamp: i64,
    ) -> Result<(), StateError> {
        // An entry that cannot fit would evict everything else and then itself; writing it
        // straight through (superseding any cached version) keeps the rest of the cache.
        if size(key, value.as_deref()) > self.cache.max_bytes() {
            self.cache.remove(key);
            return self.write_through(key.to_vec(), value, timestamp);
        }
        self.cache.put(key, value, timestamp);
        while self.cache.over_limit() {
            let Some((key, entry)) = self.cache.pop_oldest() else {
                break;
            };
            if entry.dirty {
                self.write_through(key, entry.value, entry.timestamp)?;
            }
        }
        Ok(())
    }
}

impl<S: KeyValueStore> WrappedStateStore for CachingKeyValueStore<S> {
    type Inner = S;
    fn wrapped(&self) -> &S {
        &self.inner
    }
    fn wrapped_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    fn write_pending(&mut self) -> Result<(), StateError> {
        // Each entry turns clean only once written, so a failed write leaves the rest dirty
        // for the next attempt instead of losing them.
        for (key, value, timestamp) in self.cache.dirty() {
            self.write_through(key.clone(), value, timestamp)?;
            self.cache.mark_clean(&key);
        }
        Ok(())
    }

    fn before_restore(&mut self, key: &[u8]) {
        // Restored data is newer than anything a cache could hold for the key.
        self.cache.remove(key);
    }
}

impl<S: KeyValueStore> KeyValueStore for CachingKeyValueStore<S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        match self.cache.get(key) {
            Some(entry) => Ok(entry.value.clone()),
            None => self.inner.get(key),
        }
    }

    fn put(&mut self, key: &[u8], value: &[u8], timestamp: i64) -> Result<(), StateError> {
        self.write(key, Some(value.to_vec()), timestamp)
    }

    fn delete(&mut self, key: &[u8], timestamp: i64) -> Result<(), StateError> {
        self.write(key, None, timestamp)
    }

    fn range(&self, from: &[u8], to: &[u8]) -> KeyValueIter<'_> {
        Box::new(MergeIter::new(
            self.cache.range(from, to),
            self.inner.range(from, to),
        ))
    }

    fn all(&self) -> KeyValueIter<'_> {
        Box::new(MergeIter::new(self.cache.all(), self.inner.all()))
    }

    fn set_flush_listener(&mut self, listener: FlushListener) -> bool {
        self.listener = Some(listener);
        true
    }

    fn approximate_num_entries(&self) -> Result<u64, StateError> {
        // Unflushed new keys are not in the store yet; counting every dirty entry may
        // overcount overwrites, which "approximate" allows.
        let pending = self.cache.dirty_puts() as u64;
        Ok(self.inner.approximate_num_entries()? + pending)
    }
}
