//! The write-back cache in front of a session store.

use std::sync::Arc;

use super::lru::CachedPair;
use super::segmented::{self, layout_key, Below, Pending, SegmentedCache};
use super::{CacheBudget, FlushListener};
use crate::session::{session_key, split_session_key};
use crate::WriteOutcome;
use crate::{SessionEntry, SessionIter, SessionStore, StateError, WrappedStateStore};

/// A write-back cache over a [`SessionStore`] (usually a [`crate::LoggedSessionStore`]), as
/// [`crate::CachingWindowStore`] is for window stores: a session rewritten by every record
/// that extends it, and the sessions merged away, cost one store write and one changelog
/// record per commit; a session made and merged away between two commits costs none.
///
/// ```
/// use streamtime_state::{CachingSessionStore, InMemorySessionStore, SessionStore, StateStore};
/// let mut store = CachingSessionStore::new(InMemorySessionStore::new("s", 600_000)?, 1 << 20);
/// store.put(b"u", 0, 0, b"1 click", 0)?;
/// store.remove(b"u", 0, 0, 100)?; // a record at 100 extends the session
/// store.put(b"u", 0, 100, b"2 clicks", 100)?;
/// store.flush_cache()?;
/// let stored: Vec<(i64, i64)> = store.inner().fetch(b"u").map(|s| s.map(|s| (s.start, s.end))).collect::<Result<_, _>>()?;
/// assert_eq!(stored, vec![(0, 100)]); // [0, 0] never reached the store
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
pub struct CachingSessionStore<S> {
    inner: S,
    cache: SegmentedCache,
}

impl<S: SessionStore> CachingSessionStore<S> {
    /// Caches up to `max_bytes` in front of `inner`; 0 disables caching.
    pub fn new(inner: S, max_bytes: usize) -> Self {
        Self::with_budget(inner, CacheBudget::new(max_bytes))
    }

    /// Caches in front of `inner` within a budget shared with other caches.
    pub fn with_budget(inner: S, budget: Arc<CacheBudget>) -> Self {
        let cache = SegmentedCache::new(inner.name(), budget);
        CachingSessionStore { inner, cache }
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
        (start, end): (i64, i64),
        value: Option<Vec<u8>>,
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        if start < 0 || end < start {
            // The store underneath rejects these with its own error.
            return match &value {
                Some(v) => self.inner.put(key, start, end, v, timestamp),
                None => self.inner.remove(key, start, end, timestamp),
            };
        }
        let store_key = session_key(key, start, end);
        let Some(to_write) = self
            .cache
            .write(self.below(), end, &store_key, value, timestamp)
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
        let (key, start, end) = split_session_key(store_key).expect("cache keys are whole");
        let outcome = match &value {
            Some(v) => self.inner.put(key, start, end, v, timestamp)?,
            // A pending removal of a session the store does not hold has nothing to write.
            None if self.inner.fetch_session(key, start, end)?.is_none() => return Ok(()),
            None => self.inner.remove(key, start, end, timestamp)?,
        };
        if let WriteOutcome::Written { .. } = outcome {
            self.cache.report(store_key, value, timestamp);
        }
        Ok(())
    }

    /// Cached sessions ending in `[from, to]` whose layout keys (`key ++ end ++ start`) lie
    /// in `[lo, hi]` within each segment, that `keep(key, start, end)` accepts.
    fn cached(
        &self,
        ends: (i64, i64),
        lo: &[u8],
        hi: Option<&[u8]>,
        keep: impl Fn(&[u8], i64, i64) -> bool,
    ) -> Vec<CachedPair> {
        self.cache.scan(self.below(), ends, lo, hi, |layout| {
            split_session_key(layout).is_some_and(|(k, s, e)| keep(k, s, e))
        })
    }

    /// The store's scan merged with `cached`, in the store's order.
    fn merged<'a>(&self, cached: Vec<CachedPair>, stored: SessionIter<'a>) -> SessionIter<'a> {
        let stored =
            stored.map(|s| s.map(|s| (s.end, session_key(&s.key, s.start, s.end), s.value)));
        Box::new(segmented::merge(self.below(), cached, stored).map(|item| {
            let (k, value) = item?;
            let (key, start, end) = split_session_key(&k).expect("merged keys are whole");
            Ok(SessionEntry {
                key: key.to_vec(),
                start,
                end,
                value,
            })
        }))
    }
}

impl<S: SessionStore> WrappedStateStore for CachingSessionStore<S> {
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
        // Restored data is newer than anything a cache could hold for the session.
        if let Some((_, _, end)) = split_session_key(key) {
            let below = self.below();
            self.cache.remove(below, end, key);
        }
    }
}

impl<S: SessionStore> SessionStore for CachingSessionStore<S> {
    fn retention_ms(&self) -> i64 {
        self.inner.retention_ms()
    }
    fn segment_interval_ms(&self) -> i64 {
        self.inner.segment_interval_ms()
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
        self.cache.set_listener(listener);
        true
    }

    fn put(
        &mut self,
        key: &[u8],
        start: i64,
        end: i64,
        value: &[u8],
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        self.write(key, (start, end), Some(value.to_vec()), timestamp)
    }

    fn remove(
        &mut self,
        key: &[u8],
        start: i64,
        end: i64,
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        self.write(key, (start, end), None, timestamp)
    }

    fn fetch_session(
        &self,
        key: &[u8],
        start: i64,
        end: i64,
    ) -> Result<Option<Vec<u8>>, StateError> {
        if start < 0 || end < start {
            return Ok(None);
        }
        let below = self.below();
        if end < self.cache.live_from(below) {
            return Ok(None);
        }
        match self.cache.get(below, end, &session_key(key, start, end)) {
            Some(value) => Ok(value),
            None => self.inner.fetch_session(key, start, end),
        }
    }

    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> SessionIter<'_> {
        let Some((from_end, to_end)) =
            self.cache
                .live_range(self.below(), earliest_session_end, i64::MAX)
        else {
            return Box::new(std::iter::empty());
        };
        let lo = session_key(key, 0, from_end);
        let mut hi = key.to_vec();
        hi.extend_from_slice(&[0xff; 16]);
        // Longer keys sharing this one as a prefix can sort inside the bounds.
        let cached = self.cached((from_end, to_end), &lo, Some(&hi), |k, start, end| {
            k == key && end >= from_end && start <= latest_session_start
        });
        let stored = self
            .inner
            .find_sessions(key, from_end, latest_session_start);
        self.merged(cached, stored)
    }

    fn fetch_ending_between(&self, earliest_end: i64, latest_end: i64) -> SessionIter<'_> {
        let Some((from, to)) = self
            .cache
            .live_range(self.below(), earliest_end, latest_end)
        else {
            return Box::new(std::iter::empty());
        };
        let cached = self.cached((from, to), &[], None, |_, _, end| {
            (from..=to).contains(&end)
        });
        self.merged(cached, self.inner.fetch_ending_between(from, to))
    }
}
