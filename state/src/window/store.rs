//! The segmented window store, generic over its backend so the RocksDB and in-memory versions
//! share every line of behaviour.

use super::{split_window_key, window_key, WindowIter, WindowStore, WindowStoreConfig};
use super::{WindowedEntry, WriteOutcome};
use crate::segments::SegmentedBytes;
use crate::{InMemoryKeyValueStore, KeyValueBackend, RocksKeyValueStore, RocksResources};
use crate::{StateError, StateStore, TaskDirectory};

/// A [`WindowStore`] over any [`KeyValueBackend`]. Segments are key prefixes in the one
/// backend store (`segment id (8 bytes, big-endian) ++ window key`), so dropping a segment is
/// one range delete; see the crate docs.
///
/// Use the aliases [`InMemoryWindowStore`] and [`RocksWindowStore`].
///
/// ```
/// use streamtime_state::{InMemoryWindowStore, WindowStore, WindowStoreConfig};
/// let mut store = InMemoryWindowStore::new("w", WindowStoreConfig::new(60_000))?;
/// store.put(b"k", 0, b"old", 0)?;
/// store.put(b"k", 200_000, b"new", 200_000)?; // stream time moves far ahead
/// assert_eq!(store.get(b"k", 0)?, None); // expired: never read back
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
pub struct SegmentedWindowStore<B> {
    core: SegmentedBytes<B>,
    retain_duplicates: bool,
    next_seq: u32,
}

/// The in-memory window store (tests, test driver).
pub type InMemoryWindowStore = SegmentedWindowStore<InMemoryKeyValueStore>;

/// The RocksDB window store.
pub type RocksWindowStore = SegmentedWindowStore<RocksKeyValueStore>;

impl<B> std::fmt::Debug for SegmentedWindowStore<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentedWindowStore")
            .field("retention_ms", &self.core.retention())
            .field("stream_time", &self.core.stream_time())
            .field("retain_duplicates", &self.retain_duplicates)
            .finish_non_exhaustive()
    }
}

impl SegmentedWindowStore<InMemoryKeyValueStore> {
    /// An empty in-memory window store.
    pub fn new(name: &str, config: WindowStoreConfig) -> Result<Self, StateError> {
        Self::with_backend(InMemoryKeyValueStore::new(name), config)
    }
}

impl SegmentedWindowStore<RocksKeyValueStore> {
    /// Opens (creating if needed) the window store `name` in `task_dir`, recovering its stream
    /// time from the last flush.
    pub fn open(
        task_dir: &TaskDirectory,
        name: &str,
        config: WindowStoreConfig,
        resources: &RocksResources,
    ) -> Result<Self, StateError> {
        Self::with_backend(RocksKeyValueStore::open(task_dir, name, resources)?, config)
    }
}

impl<B: KeyValueBackend> SegmentedWindowStore<B> {
    /// A window store keeping its segments in `backend`.
    pub fn with_backend(backend: B, config: WindowStoreConfig) -> Result<Self, StateError> {
        let (core, extra) = SegmentedBytes::open(backend, config.retention_ms)?;
        // The sequence counter is saved on flush: restarting it at 0 could overwrite a
        // duplicate that is still stored under the same key and start.
        let next_seq = extra
            .get(..4)
            .map_or(0, |b| u32::from_be_bytes(b.try_into().expect("4 bytes")));
        Ok(SegmentedWindowStore {
            core,
            retain_duplicates: config.retain_duplicates,
            next_seq,
        })
    }

    /// The backend store holding the segments (read-only), for inspection and tests.
    pub fn backend(&self) -> &B {
        self.core.backend()
    }

    fn check_start(&self, window_start: i64) -> Result<(), StateError> {
        if window_start < 0 {
            return Err(StateError::invalid_argument(format!(
                "store {}: window start must not be negative, got {window_start}",
                self.name()
            )));
        }
        Ok(())
    }

    fn no_duplicates(&self, op: &str) -> Result<(), StateError> {
        if self.retain_duplicates {
            return Err(StateError::invalid_argument(format!(
                "store {}: {op} by window start is ambiguous in a store that retains \
                 duplicates; use fetch",
                self.name()
            )));
        }
        Ok(())
    }

    fn write(
        &mut self,
        store_key: Vec<u8>,
        window_start: i64,
        value: Option<&[u8]>,
    ) -> Result<WriteOutcome, StateError> {
        if self.core.write(window_start, &store_key, value, false)? {
            Ok(WriteOutcome::Written { store_key })
        } else {
            Ok(WriteOutcome::Expired)
        }
    }

    /// Scans `[time_from, time_to]` (clamped to live data) and keeps entries `keep` accepts.
    fn scan<'a>(
        &'a self,
        time_from: i64,
        time_to: i64,
        lo: Option<Vec<u8>>,
        hi: Option<Vec<u8>>,
        keep: impl Fn(&[u8]) -> bool + 'a,
    ) -> WindowIter<'a> {
        let from = time_from.max(self.core.live_from());
        let with_seq = self.retain_duplicates;
        let name = self.name().to_owned();
        let entries = self.core.scan(from, time_to, lo, hi);
        Box::new(entries.filter_map(move |item| {
            let (raw, value) = match item {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            let Some((key, start, _)) = split_window_key(&raw, with_seq) else {
                return Some(Err(StateError::corrupt(
                    format!("window store {name}"),
                    format!("stored key of {} bytes is too short", raw.len()),
                )));
            };
            (start >= from && start <= time_to && keep(key)).then(|| {
                Ok(WindowedEntry {
                    key: key.to_vec(),
                    window_start: start,
                    value,
                })
            })
        }))
    }
}

impl<B: KeyValueBackend> StateStore for SegmentedWindowStore<B> {
    fn name(&self) -> &str {
        self.core.backend().name()
    }

    fn persistent(&self) -> bool {
        self.core.backend().persistent()
    }

    fn flush(&mut self) -> Result<(), StateError> {
        self.core.flush(&self.next_seq.to_be_bytes())
    }

    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StateError> {
        let Some((_, start, seq)) = split_window_key(key, self.retain_duplicates) else {
            return Err(StateError::corrupt(
                format!("restoring window store {}", self.name()),
                format!("changelog key of {} bytes is too short", key.len()),
            ));
        };
        if let Some(seq) = seq {
            // Replay is in write order, so the last record's seq + 1 is where numbering was.
            self.next_seq = seq.wrapping_add(1);
        }
        self.core.write(start, key, value, true).map(|_| ())
    }

    fn limit_expiry(&mut self, committed_stream_time: i64) {
        self.core.limit_expiry(committed_stream_time)
    }

    fn cap_expiry(&mut self, cap: Option<i64>) {
        self.core.cap_expiry(cap)
    }

    fn keep_since_commit(&mut self, committed_stream_time: i64) {
        self.core.keep_since_commit(committed_stream_time)
    }
}

impl<B: KeyValueBackend> WindowStore for SegmentedWindowStore<B> {
    fn retention_ms(&self) -> i64 {
        self.core.retention()
    }

    fn segment_interval_ms(&self) -> i64 {
        self.core.interval()
    }

    fn retains_duplicates(&self) -> bool {
        self.retain_duplicates
    }

    fn observed_stream_time(&self) -> Option<i64> {
        self.core.stream_time()
    }

    fn expired_puts(&self) -> u64 {
        self.core.expired()
    }

    fn expiry_stream_time(&self) -> Option<i64> {
        self.core.expiry_time()
    }

    fn put(
        &mut self,
        key: &[u8],
        window_start: i64,
        value: &[u8],
        _timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        self.check_start(window_start)?;
        let seq = self.retain_duplicates.then_some(self.next_seq);
        let outcome = self.write(
            window_key(key, window_start, seq),
            window_start,
            Some(value),
        )?;
        if seq.is_some() && matches!(outcome, WriteOutcome::Written { .. }) {
            self.next_seq = self.next_seq.wrapping_add(1);
        }
        Ok(outcome)
    }

    fn delete(
        &mut self,
        key: &[u8],
        window_start: i64,
        _timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        self.check_start(window_start)?;
        self.no_duplicates("delete")?;
        self.write(window_key(key, window_start, None), window_start, None)
    }

    fn get(&self, key: &[u8], window_start: i64) -> Result<Option<Vec<u8>>, StateError> {
        self.no_duplicates("get")?;
        if window_start < 0 {
            return Ok(None);
        }
        self.core
            .get(window_start, &window_key(key, window_start, None))
    }

    fn fetch(&self, key: &[u8], time_from: i64, time_to: i64) -> WindowIter<'_> {
        let from = time_from.max(self.core.live_from());
        if from > time_to {
            return Box::new(std::iter::empty());
        }
        let (lo_seq, hi_seq) = if self.retain_duplicates {
            (Some(0), Some(u32::MAX))
        } else {
            (None, None)
        };
        // Within a segment this key's windows are contiguous and ordered by start; other keys
        // that happen to sort inside the bounds (longer keys sharing this prefix) are
        // filtered out by exact key comparison.
        let lo = window_key(key, from, lo_seq);
        let hi = window_key(key, time_to, hi_seq);
        let wanted = key.to_vec();
        self.scan(from, time_to, Some(lo), Some(hi), move |k| k == wanted)
    }

    fn fetch_all(&self, time_from: i64, time_to: i64) -> WindowIter<'_> {
        self.scan(time_from, time_to, None, None, |_| true)
    }

    fn fetch_key_range(
        &self,
        key_from: &[u8],
        key_to: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> WindowIter<'_> {
        if key_from > key_to {
            return Box::new(std::iter::empty());
        }
        // No tight upper bound exists: a shorter key that is a prefix of `key_to` can sort
        // after `key_to ++ any start`. Scan from `key_from` to the segment end and filter.
        let (from, to) = (key_from.to_vec(), key_to.to_vec());
        self.scan(time_from, time_to, Some(from.clone()), None, move |k| {
            k >= from.as_slice() && k <= to.as_slice()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    // Segments are half an hour long; this is in the next one and keeps 0 live.
    const LATER: i64 = 40 * 60_000;

    fn reopen(store: &InMemoryWindowStore) -> InMemoryWindowStore {
        SegmentedWindowStore::with_backend(store.backend().clone(), WindowStoreConfig::new(HOUR))
            .unwrap()
    }

    #[test]
    fn a_reopened_store_reads_what_its_last_flush_did_not_record() {
        let mut s = InMemoryWindowStore::new("w", WindowStoreConfig::new(HOUR)).unwrap();
        s.put(b"a", 0, b"1", 0).unwrap();
        s.flush().unwrap();
        // Past the flushed stream time, as a crash after RocksDB's own flush would leave it.
        s.put(b"b", LATER, b"2", LATER).unwrap();
        let s = reopen(&s);
        assert_eq!(s.get(b"a", 0).unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.get(b"b", LATER).unwrap(), Some(b"2".to_vec()));
    }

    #[test]
    fn reads_after_a_reopen_see_old_and_new_segments() {
        let mut s = InMemoryWindowStore::new("w", WindowStoreConfig::new(HOUR)).unwrap();
        s.put(b"a", 0, b"1", 0).unwrap();
        s.flush().unwrap();
        let mut s = reopen(&s);
        s.put(b"b", LATER, b"2", LATER).unwrap();
        s.delete(b"b", LATER, LATER).unwrap();
        s.put(b"c", LATER, b"3", LATER).unwrap();
        assert_eq!(s.get(b"a", 0).unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.get(b"b", LATER).unwrap(), None);
        assert_eq!(s.get(b"c", LATER).unwrap(), Some(b"3".to_vec()));
        assert_eq!(s.get(b"d", LATER).unwrap(), None);
        assert_eq!(s.get(b"c", 0).unwrap(), None);
    }
}
