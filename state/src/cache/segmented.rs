//! What the window and session caches share: entries keyed in the store's scan order, expiry
//! by the time the store will have once the cache is written out, and scans merged with the
//! store's own.

use std::sync::Arc;

use super::lru::{size, CachedPair, LruCache};
use super::merge::MergeIter;
use super::{CacheBudget, FlushListener, FlushedEntry};
use crate::{KeyValueIter, StateError};

/// Bytes of the segment id that prefixes every cache key.
const SEGMENT_LEN: usize = 8;

/// The segmented store under a cache, as the cache needs to know it at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Below {
    pub retention: i64,
    pub interval: i64,
    /// The store's expiry time (`expiry_stream_time`).
    pub expiry: Option<i64>,
    /// The store's stream time (`observed_stream_time`).
    pub observed: Option<i64>,
}

impl Below {
    pub(crate) fn segment(&self, ts: i64) -> i64 {
        ts.div_euclid(self.interval)
    }

    /// The cache key of `layout_key` (the store's key layout) at segment time `ts`: segment id
    /// first, so that cache order is the store's scan order (segment, then layout key) and a
    /// time range is a key range.
    pub(crate) fn cache_key(&self, ts: i64, layout_key: &[u8]) -> Vec<u8> {
        segment_key(self.segment(ts), layout_key)
    }
}

fn segment_key(segment: i64, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(SEGMENT_LEN + rest.len());
    k.extend_from_slice(&segment.to_be_bytes());
    k.extend_from_slice(rest);
    k
}

/// The layout key inside a cache key.
pub(crate) fn layout_key(cache_key: &[u8]) -> &[u8] {
    &cache_key[SEGMENT_LEN..]
}

/// A dirty entry on its way to the store: cache key, value (`None`: delete), timestamp.
pub(crate) type Pending = (Vec<u8>, Option<Vec<u8>>, i64);

/// The cache of a segmented store.
pub(crate) struct SegmentedCache {
    cache: LruCache,
    listener: Option<FlushListener>,
    /// The largest segment time the cache accepted. The store underneath will measure expiry
    /// by the larger of this and its own expiry time once the cache is written out (its
    /// expiry time is the smaller of its stream time and a limit that live writes raise).
    cached_time: Option<i64>,
    /// Expiry runs no further than this (`StateStore::cap_expiry`), as in the store.
    cap: Option<i64>,
    expired: u64,
    expired_counter: metrics::Counter,
}

impl SegmentedCache {
    pub(crate) fn new(store: &str, budget: Arc<CacheBudget>) -> Self {
        SegmentedCache {
            cache: LruCache::new(budget),
            listener: None,
            cached_time: None,
            cap: None,
            expired: 0,
            expired_counter: metrics::counter!(
                "streamtime_store_expired_puts_total",
                "store" => store.to_owned()
            ),
        }
    }

    pub(crate) fn set_listener(&mut self, listener: FlushListener) {
        self.listener = Some(listener);
    }

    pub(crate) fn bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// Writes dropped here as expired.
    pub(crate) fn expired(&self) -> u64 {
        self.expired
    }

    pub(crate) fn expiry_time(&self, below: Below) -> Option<i64> {
        self.capped(below.expiry.max(self.cached_time))
    }

    /// Expires nothing by a time later than `cap` (`None`: no cap), as the store does.
    pub(crate) fn set_cap(&mut self, cap: Option<i64>) {
        self.cap = cap;
    }

    fn capped(&self, t: Option<i64>) -> Option<i64> {
        match (t, self.cap) {
            (Some(t), Some(cap)) => Some(t.min(cap)),
            (t, _) => t,
        }
    }

    pub(crate) fn observed(&self, below: Below) -> Option<i64> {
        below.observed.max(self.cached_time)
    }

    /// The oldest segment time reads may return.
    pub(crate) fn live_from(&self, below: Below) -> i64 {
        self.expiry_time(below).map_or(0, |t| {
            t.saturating_sub(below.retention).saturating_add(1).max(0)
        })
    }

    /// `[from, to]` narrowed to segment times that may hold data; `None` when none can.
    pub(crate) fn live_range(&self, below: Below, from: i64, to: i64) -> Option<(i64, i64)> {
        let latest = self.observed(below)?;
        let (from, to) = (from.max(self.live_from(below)), to.min(latest));
        (from <= to).then_some((from, to))
    }

    /// Caches a write of `layout_key` at segment time `ts`. `None`: dropped as expired (the
    /// store would drop it once the cache is written out) and counted. Otherwise the dirty
    /// entries to write to the store now, in order: those evicted to make room, or the entry
    /// itself when it cannot fit.
    pub(crate) fn write(
        &mut self,
        below: Below,
        ts: i64,
        layout_key: &[u8],
        value: Option<Vec<u8>>,
        timestamp: i64,
    ) -> Option<Vec<Pending>> {
        // The rule the store applies on write, by the time it will have then.
        let time = below.expiry.max(self.cached_time).map_or(ts, |t| t.max(ts));
        let expiry = self.capped(Some(time)).unwrap_or(time);
        if below.segment(ts) < below.segment(expiry.saturating_sub(below.retention)) {
            self.expired += 1;
            self.expired_counter.increment(1);
            tracing::debug!(
                segment_time = ts,
                stream_time = expiry,
                "dropping write into an expired segment"
            );
            return None;
        }
        self.cached_time = Some(time);
        let key = below.cache_key(ts, layout_key);
        // An entry that cannot fit would evict everything else and then itself.
        if size(&key, value.as_deref()) > self.cache.max_bytes() {
            self.cache.remove(&key);
            return Some(vec![(key, value, timestamp)]);
        }
        self.cache.put(&key, value, timestamp);
        let mut evicted = Vec::new();
        while self.cache.over_limit() {
            let Some((key, entry)) = self.cache.pop_oldest() else {
                break;
            };
            if entry.dirty {
                evicted.push((key, entry.value, entry.timestamp));
            }
        }
        Some(evicted)
    }

    /// Dirty entries, least recently written first; mark each clean once written.
    pub(crate) fn dirty(&self) -> Vec<Pending> {
        self.cache.dirty()
    }

    pub(crate) fn mark_clean(&mut self, cache_key: &[u8]) {
        self.cache.mark_clean(cache_key)
    }

    /// Forgets `layout_key` at segment time `ts` (restored data supersedes it).
    pub(crate) fn remove(&mut self, below: Below, ts: i64, layout_key: &[u8]) {
        self.cache.remove(&below.cache_key(ts, layout_key));
    }

    /// The cached value of `layout_key` (`Some(None)`: a pending delete), `None` when not
    /// cached. Callers check expiry.
    pub(crate) fn get(&self, below: Below, ts: i64, layout_key: &[u8]) -> Option<Option<Vec<u8>>> {
        let entry = self.cache.get(&below.cache_key(ts, layout_key))?;
        Some(entry.value.clone())
    }

    /// Tells the listener that an entry reached the store.
    pub(crate) fn report(&mut self, layout_key: &[u8], value: Option<Vec<u8>>, timestamp: i64) {
        if let Some(listener) = &mut self.listener {
            listener(FlushedEntry {
                key: layout_key.to_vec(),
                new_value: value,
                old_value: None,
                timestamp,
            });
        }
    }

    /// Cached entries (cache keys) of the segments holding `[from, to]`, within each segment
    /// those with layout keys in `[lo, hi]` (`hi` `None`: to the segment's end), that `keep`
    /// accepts by layout key.
    pub(crate) fn scan(
        &self,
        below: Below,
        (from, to): (i64, i64),
        lo: &[u8],
        hi: Option<&[u8]>,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Vec<CachedPair> {
        let mut out = Vec::new();
        for segment in below.segment(from)..=below.segment(to) {
            let upper = match hi {
                Some(hi) => segment_key(segment, hi),
                // The bare prefix of the next segment is never a cache key.
                None => (segment + 1).to_be_bytes().to_vec(),
            };
            let entries = self.cache.range(&segment_key(segment, lo), &upper);
            out.extend(entries.into_iter().filter(|(k, _)| keep(layout_key(k))));
        }
        out
    }
}

/// The store's scan, given as `(segment time, layout key, value)` in the store's order,
/// merged with `cached` (from [`SegmentedCache::scan`]): yields `(layout key, value)`, a
/// cached entry replacing the stored one and a pending delete hiding it.
pub(crate) fn merge<'a>(
    below: Below,
    cached: Vec<CachedPair>,
    stored: impl Iterator<Item = Result<(i64, Vec<u8>, Vec<u8>), StateError>> + 'a,
) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StateError>> + 'a {
    let stored: KeyValueIter<'a> =
        Box::new(stored.map(move |item| {
            item.map(|(ts, layout, value)| (below.cache_key(ts, &layout), value))
        }));
    MergeIter::new(cached, stored).map(|item| item.map(|(k, v)| (layout_key(&k).to_vec(), v)))
}
