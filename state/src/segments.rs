//! Time segmentation shared by window and session stores, written once over a
//! [`KeyValueBackend`] so the RocksDB and in-memory twins cannot drift apart.
//!
//! Layout in the backend: every entry's key is `segment id (8 bytes, big-endian) ++ layout
//! key`, where the layout key is the store's own key (window: `key ++ start [++ seq]`,
//! session: `key ++ end ++ start`). One key prefix per segment (rather than a column family
//! or a database per segment) keeps a store in a single RocksDB database; dropping a segment
//! is a single `delete_range` over its prefix, which RocksDB turns into unlinked SST files
//! plus one range tombstone, without reading the data.
//!
//! Besides segments the backend holds one metadata entry (under a prefix no segment id can
//! have), written on flush, so a reopened RocksDB store knows its stream time.

use std::collections::BTreeMap;

use crate::segment_filter::SegmentFilter;
use crate::{KeyValueBackend, StateError};

/// Segments are never shorter than this, so short retentions do not create a flood of tiny
/// segments (Kafka Streams uses the same floor).
pub(crate) const MIN_SEGMENT_INTERVAL_MS: i64 = 60_000;

const PREFIX_LEN: usize = 8;
// Segment ids come from non-negative timestamps, so their first byte is at most 0x7f.
const META_KEY: &[u8] = b"\xff\xff\xff\xff\xff\xff\xff\xffstreamtime.segments.meta";
const META_VERSION: u8 = 1;

/// `max(retention / 2, 60 s)`.
pub(crate) fn segment_interval(retention_ms: i64) -> i64 {
    (retention_ms / 2).max(MIN_SEGMENT_INTERVAL_MS)
}

fn prefix(segment: i64) -> [u8; PREFIX_LEN] {
    segment.to_be_bytes()
}

fn prefixed(segment: i64, layout_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(PREFIX_LEN + layout_key.len());
    k.extend_from_slice(&prefix(segment));
    k.extend_from_slice(layout_key);
    k
}

/// A layout key and its value, as scanned from the segments.
pub(crate) type LayoutEntry = (Vec<u8>, Vec<u8>);

/// Segment bookkeeping over a backend store.
pub(crate) struct SegmentedBytes<B> {
    backend: B,
    retention: i64,
    interval: i64,
    stream_time: Option<i64>,
    /// Set by [`SegmentedBytes::limit_expiry`]: expiry runs no further than this until live
    /// writes pass it.
    expiry_limit: Option<i64>,
    /// Set by [`SegmentedBytes::cap_expiry`]: expiry runs no further than this, whatever
    /// is written.
    expiry_cap: Option<i64>,
    /// Set by [`SegmentedBytes::limit_expiry`] and [`SegmentedBytes::keep_since_commit`]:
    /// segments only a later time expires stay on disk.
    deletion_limit: Option<i64>,
    // Segments below this id are known to be gone; starts at 0 on open so the first cleanup
    // also sweeps segments that expired while the store was closed.
    cleaned_below: i64,
    expired: u64,
    expired_counter: metrics::Counter,
    /// Segments from this id on were empty when the store opened, so their filters hold every
    /// key they contain and a read the filter rules out needs no backend lookup.
    filtered_from: i64,
    filters: BTreeMap<i64, SegmentFilter>,
}

impl<B: KeyValueBackend> SegmentedBytes<B> {
    /// Wraps `backend`, recovering stream time from its metadata entry. Returns the opaque
    /// extra metadata the owning store saved with [`SegmentedBytes::flush`].
    pub(crate) fn open(backend: B, retention_ms: i64) -> Result<(Self, Vec<u8>), StateError> {
        if retention_ms <= 0 {
            return Err(StateError::invalid_argument(format!(
                "store {}: retention must be positive, got {retention_ms} ms",
                backend.name()
            )));
        }
        let expired_counter = metrics::counter!(
            "streamtime_store_expired_puts_total",
            "store" => backend.name().to_owned()
        );
        let mut stream_time = None;
        let mut extra = Vec::new();
        if let Some(meta) = backend.get(META_KEY)? {
            match meta.split_first() {
                Some((&META_VERSION, rest)) if rest.len() >= 8 => {
                    let (time, more) = rest.split_at(8);
                    let time = i64::from_be_bytes(time.try_into().expect("8 bytes"));
                    stream_time = (time >= 0).then_some(time);
                    extra = more.to_vec();
                }
                // Stream time only gates reads and expiry and is re-derived from the next
                // writes (or the restore), so a bad entry is not worth failing the task for.
                _ => tracing::warn!(
                    store = backend.name(),
                    "ignoring unreadable segment metadata; stream time restarts unknown"
                ),
            }
        }
        let interval = segment_interval(retention_ms);
        // Nothing is written past stream time, so later segments start empty; unless the
        // backend holds writes that its last flush did not record (a crash with RocksDB's own
        // flushes in between), which the one lookup below finds.
        let mut filtered_from = stream_time.map_or(0, |t| t.div_euclid(interval) + 1);
        let segments_end = [0xff; PREFIX_LEN];
        if let Some(entry) = backend.range(&prefix(filtered_from), &segments_end).next() {
            entry?;
            filtered_from = i64::MAX;
        }
        let store = SegmentedBytes {
            backend,
            retention: retention_ms,
            interval,
            stream_time,
            expiry_limit: None,
            expiry_cap: None,
            deletion_limit: None,
            cleaned_below: 0,
            expired: 0,
            expired_counter,
            filtered_from,
            filters: BTreeMap::new(),
        };
        Ok((store, extra))
    }
}

impl<B> SegmentedBytes<B> {
    pub(crate) fn backend(&self) -> &B {
        &self.backend
    }

    pub(crate) fn retention(&self) -> i64 {
        self.retention
    }

    pub(crate) fn interval(&self) -> i64 {
        self.interval
    }

    pub(crate) fn stream_time(&self) -> Option<i64> {
        self.stream_time
    }

    pub(crate) fn expired(&self) -> u64 {
        self.expired
    }

    /// The time expiry is measured against: stream time, held back by
    /// [`SegmentedBytes::limit_expiry`].
    pub(crate) fn expiry_time(&self) -> Option<i64> {
        let t = match (self.stream_time, self.expiry_limit) {
            (Some(t), Some(limit)) => Some(t.min(limit)),
            (t, _) => t,
        };
        match (t, self.expiry_cap) {
            (Some(t), Some(cap)) => Some(t.min(cap)),
            (t, _) => t,
        }
    }

    /// Expires nothing by a time later than `cap` (`None`: no cap) until the next call.
    pub(crate) fn cap_expiry(&mut self, cap: Option<i64>) {
        self.expiry_cap = cap;
    }

    /// Holds expiry at `limit` or earlier until live writes pass it; restored writes do not
    /// move it. Its owner sets it before a restore to the stream time its task committed:
    /// under at-least-once the changelog holds writes from past the last commit, and expiring
    /// by their time would hide (and delete) windows that the records processed again after
    /// the restore still read and update.
    pub(crate) fn limit_expiry(&mut self, limit: i64) {
        self.expiry_limit = Some(self.expiry_limit.map_or(limit, |l| l.min(limit)));
        self.keep_since_commit(limit);
    }

    /// From now on deletes no segment that only a time after `committed_stream_time`
    /// expires, until the next call. Its owner calls it after each commit: RocksDB may make a
    /// delete durable on a flush of its own, before the next commit, and a crash then restarts
    /// from this one with input that reads those windows again.
    pub(crate) fn keep_since_commit(&mut self, committed_stream_time: i64) {
        self.deletion_limit = Some(committed_stream_time);
    }

    fn segment_id(&self, ts: i64) -> i64 {
        ts.div_euclid(self.interval)
    }
}

impl<B: KeyValueBackend> SegmentedBytes<B> {
    /// The oldest timestamp reads may still return: everything at or before
    /// `stream time - retention` is expired, even inside a segment that is still live.
    pub(crate) fn live_from(&self) -> i64 {
        match self.expiry_time() {
            Some(t) => t.saturating_sub(self.retention).saturating_add(1).max(0),
            None => 0,
        }
    }

    /// Writes (or, with `None`, deletes) `layout_key` whose segment timestamp is `ts`;
    /// `restored`: the write replays a changelog record. Returns `false` when the write was
    /// dropped because its segment has expired.
    pub(crate) fn write(
        &mut self,
        ts: i64,
        layout_key: &[u8],
        value: Option<&[u8]>,
        restored: bool,
    ) -> Result<bool, StateError> {
        let time = self.stream_time.map_or(ts, |t| t.max(ts));
        self.stream_time = Some(time);
        if !restored {
            if let Some(limit) = &mut self.expiry_limit {
                *limit = (*limit).max(ts);
            }
        }
        let expiry = self.expiry_time().unwrap_or(time);
        let min_live = self.segment_id(expiry.saturating_sub(self.retention));
        let deletable = match self.deletion_limit {
            Some(limit) => self.segment_id(expiry.min(limit).saturating_sub(self.retention)),
            None => min_live,
        };
        if deletable > self.cleaned_below {
            self.backend
                .delete_range(&prefix(self.cleaned_below), &prefix(deletable))?;
            self.cleaned_below = deletable;
            self.filters = self.filters.split_off(&deletable);
        }
        let segment = self.segment_id(ts);
        if segment < min_live {
            self.expired += 1;
            self.expired_counter.increment(1);
            tracing::debug!(
                store = self.backend.name(),
                timestamp = ts,
                stream_time = time,
                retention_ms = self.retention,
                "dropping write into an expired segment"
            );
            return Ok(false);
        }
        let key = prefixed(segment, layout_key);
        if value.is_some() && segment >= self.filtered_from {
            self.filters
                .entry(segment)
                .or_insert_with(SegmentFilter::new)
                .insert(layout_key);
        }
        match value {
            Some(v) => self.backend.put(&key, v, ts)?,
            None => self.backend.delete(&key, ts)?,
        }
        Ok(true)
    }

    /// The value of `layout_key` at segment timestamp `ts`, unless expired.
    pub(crate) fn get(&self, ts: i64, layout_key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        if ts < self.live_from() {
            return Ok(None);
        }
        let segment = self.segment_id(ts);
        if segment >= self.filtered_from
            && !self
                .filters
                .get(&segment)
                .is_some_and(|f| f.may_contain(layout_key))
        {
            return Ok(None);
        }
        self.backend.get(&prefixed(segment, layout_key))
    }

    /// Layout entries of the segments covering timestamps `[ts_from, ts_to]`, segment by
    /// segment in ascending order, each segment restricted to layout keys in `[lo, hi]`
    /// (inclusive; `None` = unbounded). Callers filter exact timestamps and keys.
    pub(crate) fn scan<'a>(
        &'a self,
        ts_from: i64,
        ts_to: i64,
        lo: Option<Vec<u8>>,
        hi: Option<Vec<u8>>,
    ) -> impl Iterator<Item = Result<LayoutEntry, StateError>> + 'a {
        // Nothing was ever written past stream time, so later segments need no lookup.
        let (first, last) = match self.stream_time {
            Some(t) if ts_from <= ts_to && ts_from <= t => (
                self.segment_id(ts_from.max(0)),
                self.segment_id(ts_to.min(t)),
            ),
            _ => (1, 0),
        };
        let segments = first..=last;
        let backend = &self.backend;
        segments.flat_map(move |segment| {
            let p = prefix(segment);
            let lower = prefixed(segment, lo.as_deref().unwrap_or_default());
            // The bare prefix of the next segment is never a stored key, so an inclusive bound
            // on it covers exactly this segment.
            let upper = match &hi {
                Some(hi) => prefixed(segment, hi),
                None => prefix(segment + 1).to_vec(),
            };
            backend
                .range(&lower, &upper)
                .filter_map(move |item| match item {
                    Ok((k, v)) if k.len() > PREFIX_LEN && k[..PREFIX_LEN] == p => {
                        Some(Ok((k[PREFIX_LEN..].to_vec(), v)))
                    }
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
        })
    }

    /// Saves stream time (plus the owner's `extra` metadata) and flushes the backend.
    pub(crate) fn flush(&mut self, extra: &[u8]) -> Result<(), StateError> {
        if let Some(time) = self.stream_time {
            let mut meta = Vec::with_capacity(9 + extra.len());
            meta.push(META_VERSION);
            meta.extend_from_slice(&time.to_be_bytes());
            meta.extend_from_slice(extra);
            self.backend.put(META_KEY, &meta, time)?;
        }
        self.backend.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_interval_has_a_floor_of_one_minute() {
        assert_eq!(segment_interval(1_000), 60_000);
        assert_eq!(segment_interval(120_000), 60_000);
        assert_eq!(segment_interval(3_600_000), 1_800_000);
    }

    #[test]
    fn segment_prefixes_sort_by_segment_id() {
        assert!(prefix(1) < prefix(2));
        assert!(prefix(255) < prefix(256));
        assert!(prefix(i64::MAX / MIN_SEGMENT_INTERVAL_MS).as_slice() < META_KEY);
    }
}
