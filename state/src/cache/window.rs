//! The write-back cache in front of a window store.

use std::sync::Arc;

use super::lru::CachedPair;
use super::segmented::{self, layout_key, Below, Pending, SegmentedCache};
use super::{CacheBudget, FlushListener};
use crate::window::{split_window_key, window_key};
use crate::WriteOutcome;
use crate::{StateError, WindowIter, WindowStore, WindowedEntry, WrappedStateStore};

/// A write-back cache over a [`WindowStore`] (usually a [`crate::LoggedWindowStore`]), as
/// [`crate::CachingKeyValueStore`] is for key-value stores: repeated writes to one window of
/// one key between flushes fold into one, written to the store underneath (and reported to a
/// [`FlushListener`]) only when evicted or flushed, least recently written first.
///
/// Expiry is the store's own: the cache keeps the largest window start it accepted, so a put
/// into a window the store underneath would drop once the cache is written out is dropped
/// (and counted) at once, and reads hide windows that time has expired, cached or not.
/// Reads see cached windows first, merged into the store's order.
///
/// A store that retains duplicates (stream-stream joins) has nothing to fold: every call
/// passes straight through.
///
/// ```
/// use streamtime_state::{CachingWindowStore, InMemoryWindowStore, StateStore, WindowStore, WindowStoreConfig};
/// let inner = InMemoryWindowStore::new("w", WindowStoreConfig::new(600_000))?;
/// let mut store = CachingWindowStore::new(inner, 1 << 20);
/// for n in [b"1", b"2", b"3"] {
///     store.put(b"k", 60_000, n, 60_000)?;
/// }
/// assert_eq!(store.get(b"k", 60_000)?, Some(b"3".to_vec())); // reads see the cache
/// assert_eq!(store.inner().get(b"k", 60_000)?, None); // nothing written yet
/// store.flush_cache()?;
/// assert_eq!(store.inner().get(b"k", 60_000)?, Some(b"3".to_vec()));
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
pub struct CachingWindowStore<S> {
    inner: S,
    cache: SegmentedCache,
}

impl<S: WindowStore> CachingWindowStore<S> {
    /// Caches up to `max_bytes` in front of `inner`; 0 disables caching.
    pub fn new(inner: S, max_bytes: usize) -> Self {
        Self::with_budget(inner, CacheBudget::new(max_bytes))
    }

    /// Caches in front of `inner` within a budget shared with other caches.
    pub fn with_budget(inner: S, budget: Arc<CacheBudget>) -> Self {
        let cache = SegmentedCache::new(inner.name(), budget);
        CachingWindowStore { inner, cache }
    }

    /// Reports every entry written to the store underneath to `listener`.
    pub fn with_listener(mut self, listener: FlushListener) -> Self {
        self.cache.set_listener(listener);
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

    fn bypass(&self) -> bool {
        self.inner.retains_duplicates()
    }

    fn below(&self) -> Below {
        Below {
            retention: self.inner.retention_ms(),
            interval: self.inner.segment_interval_ms(),
            expiry: self.inner.expiry_stream_time(),
            observed: self.inner.observed_stream_time(),
        }
    }

    fn write(
        &mut self,
        key: &[u8],
        start: i64,
        value: Option<Vec<u8>>,
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        if self.bypass() || start < 0 {
            // The store underneath rejects negative starts with its own error.
            return match &value {
                Some(v) => self.inner.put(key, start, v, timestamp),
                None => self.inner.delete(key, start, timestamp),
            };
        }
        let store_key = window_key(key, start, None);
        let Some(to_write) = self
            .cache
            .write(self.below(), start, &store_key, value, timestamp)
        else {
            return Ok(WriteOutcome::Expired);
        };
        for pending in to_write {
            self.write_through(pending)?;
        }
        Ok(WriteOutcome::Written { store_key })
    }

    /// Writes one entry to the store and reports it.
    fn write_through(&mut self, (cache_key, value, timestamp): Pending) -> Result<(), StateError> {
        let store_key = layout_key(&cache_key);
        let (key, start, _) = split_window_key(store_key, false).expect("cache keys are whole");
        let outcome = match &value {
            Some(v) => self.inner.put(key, start, v, timestamp)?,
            // A pending delete of a window the store does not hold has nothing to write.
            None if self.inner.get(key, start)?.is_none() => return Ok(()),
            None => self.inner.delete(key, start, timestamp)?,
        };
        if let WriteOutcome::Written { .. } = outcome {
            self.cache.report(store_key, value, timestamp);
        }
        Ok(())
    }

    /// The store's scan merged with `cached`, in the store's order.
    fn merged<'a>(&self, cached: Vec<CachedPair>, stored: WindowIter<'a>) -> WindowIter<'a> {
        let stored = stored.map(|e| {
            e.map(|e| {
                let layout = window_key(&e.key, e.window_start, None);
                (e.window_start, layout, e.value)
            })
        });
        Box::new(segmented::merge(self.below(), cached, stored).map(|item| {
            let (k, value) = item?;
            let (key, window_start, _) =
                split_window_key(&k, false).expect("merged keys are whole");
            Ok(WindowedEntry {
                key: key.to_vec(),
                window_start,
                value,
            })
        }))
    }

    /// Cached windows of `[from, to]` whose layout keys (`key ++ start`) lie in `[lo, hi]`
    /// within each segment, that `keep(key, start)` accepts.
    fn cached(
        &self,
        range: (i64, i64),
        lo: &[u8],
        hi: Option<&[u8]>,
        keep: impl Fn(&[u8], i64) -> bool,
    ) -> Vec<CachedPair> {
        self.cache.scan(self.below(), range, lo, hi, |layout| {
            split_window_key(layout, false).is_some_and(|(k, s, _)| keep(k, s))
        })
    }
}

impl<S: WindowStore> WrappedStateStore for CachingWindowStore<S> {
    type Inner = S;
    fn wrapped(&self) -> &S {
        &self.inner
    }
    fn wrapped_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    fn write_pending(&mut self) -> Result<(), StateError> {
        // Each entry turns clean only once written, so a failed write leaves the rest dirty.
        for pending in self.cache.dirty() {
            let key = pending.0.clone();
            self.write_through(pending)?;
            self.cache.mark_clean(&key);
        }
        Ok(())
    }

    fn on_cap_expiry(&mut self, cap: Option<i64>) {
        self.cache.set_cap(cap);
    }

    fn before_restore(&mut self, key: &[u8]) {
        if self.bypass() {
            return;
        }
        // Restored data is newer than anything a cache could hold for the window.
        if let Some((_, start, _)) = split_window_key(key, false) {
            let below = self.below();
            self.cache.remove(below, start, key);
        }
    }
}

impl<S: WindowStore> WindowStore for CachingWindowStore<S> {
    fn retention_ms(&self) -> i64 {
        self.inner.retention_ms()
    }
    fn segment_interval_ms(&self) -> i64 {
        self.inner.segment_interval_ms()
    }
    fn retains_duplicates(&self) -> bool {
        self.inner.retains_duplicates()
    }
    fn observed_stream_time(&self) -> Option<i64> {
        self.cache.observed(self.below())
    }
    fn expired_puts(&self) -> u64 {
        self.inner.expired_puts() + self.cache.expired()
    }
    fn expiry_stream_time(&self) -> Option<i64> {
        self.cache.expiry_time(self.below())
    }
    fn set_flush_listener(&mut self, listener: FlushListener) -> bool {
        if self.bypass() {
            return false;
        }
        self.cache.set_listener(listener);
        true
    }

    fn put(
        &mut self,
        key: &[u8],
        window_start: i64,
        value: &[u8],
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        self.write(key, window_start, Some(value.to_vec()), timestamp)
    }

    fn delete(
        &mut self,
        key: &[u8],
        window_start: i64,
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        self.write(key, window_start, None, timestamp)
    }

    fn get(&self, key: &[u8], window_start: i64) -> Result<Option<Vec<u8>>, StateError> {
        if self.bypass() || window_start < 0 {
            return self.inner.get(key, window_start);
        }
        let below = self.below();
        if window_start < self.cache.live_from(below) {
            return Ok(None);
        }
        match self
            .cache
            .get(below, window_start, &window_key(key, window_start, None))
        {
            Some(value) => Ok(value),
            None => self.inner.get(key, window_start),
        }
    }

    fn fetch(&self, key: &[u8], time_from: i64, time_to: i64) -> WindowIter<'_> {
        if self.bypass() {
            return self.inner.fetch(key, time_from, time_to);
        }
        let Some((from, to)) = self.cache.live_range(self.below(), time_from, time_to) else {
            return Box::new(std::iter::empty());
        };
        let (lo, hi) = (window_key(key, from, None), window_key(key, to, None));
        // Longer keys sharing this one as a prefix can sort inside the bounds.
        let cached = self.cached((from, to), &lo, Some(&hi), |k, s| {
            k == key && (from..=to).contains(&s)
        });
        self.merged(cached, self.inner.fetch(key, from, to))
    }

    fn fetch_all(&self, time_from: i64, time_to: i64) -> WindowIter<'_> {
        if self.bypass() {
            return self.inner.fetch_all(time_from, time_to);
        }
        let Some((from, to)) = self.cache.live_range(self.below(), time_from, time_to) else {
            return Box::new(std::iter::empty());
        };
        let cached = self.cached((from, to), &[], None, |_, s| (from..=to).contains(&s));
        self.merged(cached, self.inner.fetch_all(from, to))
    }

    fn fetch_key_range(
        &self,
        key_from: &[u8],
        key_to: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> WindowIter<'_> {
        if self.bypass() {
            return self
                .inner
                .fetch_key_range(key_from, key_to, time_from, time_to);
        }
        let Some((from, to)) = self.cache.live_range(self.below(), time_from, time_to) else {
            return Box::new(std::iter::empty());
        };
        if key_from > key_to {
            return Box::new(std::iter::empty());
        }
        let cached = self.cached((from, to), key_from, None, |k, s| {
            k >= key_from && k <= key_to && (from..=to).contains(&s)
        });
        let stored = self.inner.fetch_key_range(key_from, key_to, from, to);
        self.merged(cached, stored)
    }
}
