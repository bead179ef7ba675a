//! The write-back cache in front of a window store.

use std::sync::Arc;

use super::lru::{size, CachedPair, LruCache};
use super::merge::MergeIter;
use super::{CacheBudget, FlushListener, FlushedEntry};
use crate::window::{split_window_key, window_key};
use crate::WriteOutcome;
use crate::{StateError, WindowIter, WindowStore, WindowedEntry, WrappedStateStore};

/// Bytes of the segment id that prefixes every cache key.
const SEGMENT_LEN: usize = 8;

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
    /// Keyed by `segment id (8 bytes, big-endian) ++ window key`, so that key order is the
    /// store's scan order (segment, then window key) and a time range is a key range.
    cache: LruCache,
    listener: Option<FlushListener>,
    /// The largest window start the cache accepted. The store underneath will measure expiry
    /// by the larger of this and its own expiry time once the cache is written out.
    cached_time: Option<i64>,
    expired: u64,
    expired_counter: metrics::Counter,
}

impl<S: WindowStore> CachingWindowStore<S> {
    /// Caches up to `max_bytes` in front of `inner`; 0 disables caching.
    pub fn new(inner: S, max_bytes: usize) -> Self {
        Self::with_budget(inner, CacheBudget::new(max_bytes))
    }

    /// Caches in front of `inner` within a budget shared with other caches.
    pub fn with_budget(inner: S, budget: Arc<CacheBudget>) -> Self {
        let expired_counter = metrics::counter!(
            "streamtime_store_expired_puts_total",
            "store" => inner.name().to_owned()
        );
        CachingWindowStore {
            inner,
            cache: LruCache::new(budget),
            listener: None,
            cached_time: None,
            expired: 0,
            expired_counter,
        }
    }

    /// Reports every entry written to the store underneath to `listener`.
    pub fn with_listener(mut self, listener: FlushListener) -> Self {
        self.listener = Some(listener);
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

    fn segment(&self, start: i64) -> i64 {
        start.div_euclid(self.inner.segment_interval_ms())
    }

    fn cache_key(&self, key: &[u8], start: i64) -> Vec<u8> {
        segment_key(self.segment(start), &window_key(key, start, None))
    }

    fn expiry_time(&self) -> Option<i64> {
        self.inner.expiry_stream_time().max(self.cached_time)
    }

    /// The oldest window start reads may return.
    fn live_from(&self) -> i64 {
        self.expiry_time().map_or(0, |t| {
            t.saturating_sub(self.inner.retention_ms())
                .saturating_add(1)
                .max(0)
        })
    }

    /// `[from, to]` narrowed to starts that may hold data; `None` when nothing can.
    fn live_range(&self, from: i64, to: i64) -> Option<(i64, i64)> {
        let latest = self.inner.observed_stream_time().max(self.cached_time)?;
        let (from, to) = (from.max(self.live_from()), to.min(latest));
        (from <= to).then_some((from, to))
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
        // The same rule the store applies on write, by the time it will have then.
        let expiry = self.expiry_time().map_or(start, |t| t.max(start));
        let oldest_live = self.segment(expiry.saturating_sub(self.inner.retention_ms()));
        if self.segment(start) < oldest_live {
            self.expired += 1;
            self.expired_counter.increment(1);
            tracing::debug!(
                store = self.inner.name(),
                window_start = start,
                stream_time = expiry,
                "dropping write into an expired segment"
            );
            return Ok(WriteOutcome::Expired);
        }
        self.cached_time = Some(expiry);
        let cache_key = self.cache_key(key, start);
        let store_key = cache_key[SEGMENT_LEN..].to_vec();
        // An entry that cannot fit would evict everything else and then itself.
        if size(&cache_key, value.as_deref()) > self.cache.max_bytes() {
            self.cache.remove(&cache_key);
            self.write_through(&cache_key, value, timestamp)?;
            return Ok(WriteOutcome::Written { store_key });
        }
        self.cache.put(&cache_key, value, timestamp);
        while self.cache.over_limit() {
            let Some((evicted, entry)) = self.cache.pop_oldest() else {
                break;
            };
            if entry.dirty {
                self.write_through(&evicted, entry.value, entry.timestamp)?;
            }
        }
        Ok(WriteOutcome::Written { store_key })
    }

    /// Writes one entry to the store and reports it.
    fn write_through(
        &mut self,
        cache_key: &[u8],
        value: Option<Vec<u8>>,
        timestamp: i64,
    ) -> Result<(), StateError> {
        let store_key = &cache_key[SEGMENT_LEN..];
        let (key, start, _) =
            split_window_key(store_key, false).expect("cache keys are made whole");
        let outcome = match &value {
            Some(v) => self.inner.put(key, start, v, timestamp)?,
            // A pending delete of a window the store does not hold has nothing to write.
            None if self.inner.get(key, start)?.is_none() => return Ok(()),
            None => self.inner.delete(key, start, timestamp)?,
        };
        if let (WriteOutcome::Written { .. }, Some(listener)) = (outcome, &mut self.listener) {
            listener(FlushedEntry {
                key: store_key.to_vec(),
                new_value: value,
                old_value: None,
                timestamp,
            });
        }
        Ok(())
    }

    /// Cached entries of segments `[first, last]` whose keys lie in `[lo, hi]` within each
    /// segment (`hi` `None`: to the segment's end), keeping those `keep(key, start)` accepts.
    fn cached(
        &self,
        (first, last): (i64, i64),
        lo: &[u8],
        hi: Option<&[u8]>,
        keep: impl Fn(&[u8], i64) -> bool,
    ) -> Vec<CachedPair> {
        let mut out = Vec::new();
        for segment in first..=last {
            let upper = match hi {
                Some(hi) => segment_key(segment, hi),
                // The bare prefix of the next segment is never a cache key.
                None => (segment + 1).to_be_bytes().to_vec(),
            };
            let entries = self.cache.range(&segment_key(segment, lo), &upper);
            out.extend(entries.into_iter().filter(|(k, _)| {
                split_window_key(&k[SEGMENT_LEN..], false).is_some_and(|(k, s, _)| keep(k, s))
            }));
        }
        out
    }

    /// The store's scan merged with cached entries, in the store's order.
    fn merged<'a>(&self, cached: Vec<CachedPair>, stored: WindowIter<'a>) -> WindowIter<'a> {
        let interval = self.inner.segment_interval_ms();
        let stored = Box::new(stored.map(move |e| {
            e.map(|e| {
                let segment = e.window_start.div_euclid(interval);
                let key = segment_key(segment, &window_key(&e.key, e.window_start, None));
                (key, e.value)
            })
        }));
        Box::new(MergeIter::new(cached, stored).map(|item| {
            let (k, value) = item?;
            let (key, window_start, _) =
                split_window_key(&k[SEGMENT_LEN..], false).expect("merged keys are made whole");
            Ok(WindowedEntry {
                key: key.to_vec(),
                window_start,
                value,
            })
        }))
    }
}

fn segment_key(segment: i64, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(SEGMENT_LEN + rest.len());
    k.extend_from_slice(&segment.to_be_bytes());
    k.extend_from_slice(rest);
    k
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
        for (key, value, timestamp) in self.cache.dirty() {
            self.write_through(&key, value, timestamp)?;
            self.cache.mark_clean(&key);
        }
        Ok(())
    }

    fn before_restore(&mut self, key: &[u8]) {
        if self.bypass() {
            return;
        }
        // Restored data is newer than anything a cache could hold for the window.
        if let Some((key, start, _)) = split_window_key(key, false) {
            let cache_key = self.cache_key(key, start);
            self.cache.remove(&cache_key);
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
        self.inner.observed_stream_time().max(self.cached_time)
    }
    fn expired_puts(&self) -> u64 {
        self.inner.expired_puts() + self.expired
    }
    fn expiry_stream_time(&self) -> Option<i64> {
        self.expiry_time()
    }
    fn set_flush_listener(&mut self, listener: FlushListener) -> bool {
        if self.bypass() {
            return false;
        }
        self.listener = Some(listener);
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
        if window_start < self.live_from() {
            return Ok(None);
        }
        match self.cache.get(&self.cache_key(key, window_start)) {
            Some(entry) => Ok(entry.value.clone()),
            None => self.inner.get(key, window_start),
        }
    }

    fn fetch(&self, key: &[u8], time_from: i64, time_to: i64) -> WindowIter<'_> {
        if self.bypass() {
            return self.inner.fetch(key, time_from, time_to);
        }
        let Some((from, to)) = self.live_range(time_from, time_to) else {
            return Box::new(std::iter::empty());
        };
        let segments = (self.segment(from), self.segment(to));
        let (lo, hi) = (window_key(key, from, None), window_key(key, to, None));
        // Longer keys sharing this one as a prefix can sort inside the bounds.
        let cached = self.cached(segments, &lo, Some(&hi), |k, s| {
            k == key && (from..=to).contains(&s)
        });
        self.merged(cached, self.inner.fetch(key, from, to))
    }

    fn fetch_all(&self, time_from: i64, time_to: i64) -> WindowIter<'_> {
        if self.bypass() {
            return self.inner.fetch_all(time_from, time_to);
        }
        let Some((from, to)) = self.live_range(time_from, time_to) else {
            return Box::new(std::iter::empty());
        };
        let segments = (self.segment(from), self.segment(to));
        let cached = self.cached(segments, &[], None, |_, s| (from..=to).contains(&s));
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
        let Some((from, to)) = self.live_range(time_from, time_to) else {
            return Box::new(std::iter::empty());
        };
        if key_from > key_to {
            return Box::new(std::iter::empty());
        }
        let segments = (self.segment(from), self.segment(to));
        let cached = self.cached(segments, key_from, None, |k, s| {
            k >= key_from && k <= key_to && (from..=to).contains(&s)
        });
        let stored = self.inner.fetch_key_range(key_from, key_to, from, to);
        self.merged(cached, stored)
    }
}
