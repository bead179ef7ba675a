//! The segmented session store, generic over its backend like the window store.

use super::{session_key, split_session_key, SessionEntry, SessionIter, SessionStore};
use crate::segments::SegmentedBytes;
use crate::{InMemoryKeyValueStore, KeyValueBackend, RocksKeyValueStore, RocksResources};
use crate::{StateError, StateStore, TaskDirectory, WriteOutcome};

/// A [`SessionStore`] over any [`KeyValueBackend`], segmented by session end with one key
/// prefix per segment (`segment id (8 bytes, big-endian) ++ session key`).
///
/// Use the aliases [`InMemorySessionStore`] and [`RocksSessionStore`].
///
/// ```
/// use streamtime_state::{InMemorySessionStore, SessionStore};
/// let mut store = InMemorySessionStore::new("s", 60_000)?;
/// store.put(b"k", 0, 10, b"a", 10)?;
/// store.remove(b"k", 0, 10, 20)?; // merged into a bigger session
/// assert_eq!(store.fetch_session(b"k", 0, 10)?, None);
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
pub struct SegmentedSessionStore<B> {
    core: SegmentedBytes<B>,
}

/// The in-memory session store (tests, test driver).
pub type InMemorySessionStore = SegmentedSessionStore<InMemoryKeyValueStore>;

/// The RocksDB session store.
pub type RocksSessionStore = SegmentedSessionStore<RocksKeyValueStore>;

impl<B> std::fmt::Debug for SegmentedSessionStore<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentedSessionStore")
            .field("retention_ms", &self.core.retention())
            .field("stream_time", &self.core.stream_time())
            .finish_non_exhaustive()
    }
}

impl SegmentedSessionStore<InMemoryKeyValueStore> {
    /// An empty in-memory session store keeping sessions for `retention_ms` after their end.
    pub fn new(name: &str, retention_ms: i64) -> Result<Self, StateError> {
        Self::with_backend(InMemoryKeyValueStore::new(name), retention_ms)
    }
}

impl SegmentedSessionStore<RocksKeyValueStore> {
    /// Opens (creating if needed) the session store `name` in `task_dir`.
    pub fn open(
        task_dir: &TaskDirectory,
        name: &str,
        retention_ms: i64,
        resources: &RocksResources,
    ) -> Result<Self, StateError> {
        Self::with_backend(
            RocksKeyValueStore::open(task_dir, name, resources)?,
            retention_ms,
        )
    }
}

impl<B: KeyValueBackend> SegmentedSessionStore<B> {
    /// A session store keeping its segments in `backend`.
    pub fn with_backend(backend: B, retention_ms: i64) -> Result<Self, StateError> {
        let (core, _) = SegmentedBytes::open(backend, retention_ms)?;
        Ok(SegmentedSessionStore { core })
    }

    /// The backend store holding the segments (read-only), for inspection and tests.
    pub fn backend(&self) -> &B {
        self.core.backend()
    }

    fn check(&self, start: i64, end: i64) -> Result<(), StateError> {
        if start < 0 || end < start {
            return Err(StateError::invalid_argument(format!(
                "store {}: a session needs 0 <= start <= end, got [{start}, {end}]",
                self.name()
            )));
        }
        Ok(())
    }

    fn write(
        &mut self,
        key: &[u8],
        start: i64,
        end: i64,
        value: Option<&[u8]>,
    ) -> Result<WriteOutcome, StateError> {
        self.check(start, end)?;
        let store_key = session_key(key, start, end);
        if self.core.write(end, &store_key, value, false)? {
            Ok(WriteOutcome::Written { store_key })
        } else {
            Ok(WriteOutcome::Expired)
        }
    }
}

impl<B: KeyValueBackend> StateStore for SegmentedSessionStore<B> {
    fn name(&self) -> &str {
        self.core.backend().name()
    }

    fn persistent(&self) -> bool {
        self.core.backend().persistent()
    }

    fn flush(&mut self) -> Result<(), StateError> {
        self.core.flush(&[])
    }

    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StateError> {
        let Some((_, _, end)) = split_session_key(key) else {
            return Err(StateError::corrupt(
                format!("restoring session store {}", self.name()),
                format!("changelog key of {} bytes is too short", key.len()),
            ));
        };
        self.core.write(end, key, value, true).map(|_| ())
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

impl<B: KeyValueBackend> SessionStore for SegmentedSessionStore<B> {
    fn retention_ms(&self) -> i64 {
        self.core.retention()
    }

    fn segment_interval_ms(&self) -> i64 {
        self.core.interval()
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
        start: i64,
        end: i64,
        value: &[u8],
        _timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        self.write(key, start, end, Some(value))
    }

    fn remove(
        &mut self,
        key: &[u8],
        start: i64,
        end: i64,
        _timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        self.write(key, start, end, None)
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
        self.core.get(end, &session_key(key, start, end))
    }

    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> SessionIter<'_> {
        let from_end = earliest_session_end.max(self.core.live_from());
        // Sessions ending at or after `from_end` may sit in any later segment (ends are
        // unbounded above), so every segment up to stream time is searched; within one,
        // this key's sessions are contiguous and ordered by end.
        let lo = session_key(key, 0, from_end);
        let mut hi = key.to_vec();
        hi.extend_from_slice(&[0xff; 16]);
        let wanted = key.to_vec();
        let name = self.name().to_owned();
        Box::new(
            self.core
                .scan(from_end, i64::MAX, Some(lo), Some(hi))
                .filter_map(move |item| {
                    let (raw, value) = match item {
                        Ok(entry) => entry,
                        Err(e) => return Some(Err(e)),
                    };
                    let Some((k, start, end)) = split_session_key(&raw) else {
                        return Some(Err(StateError::corrupt(
                            format!("session store {name}"),
                            format!("stored key of {} bytes is too short", raw.len()),
                        )));
                    };
                    (k == wanted && end >= from_end && start <= latest_session_start).then(|| {
                        Ok(SessionEntry {
                            key: wanted.clone(),
                            start,
                            end,
                            value,
                        })
                    })
                }),
        )
    }

    fn fetch_ending_between(&self, earliest_end: i64, latest_end: i64) -> SessionIter<'_> {
        let from_end = earliest_end.max(self.core.live_from());
        let name = self.name().to_owned();
        Box::new(
            self.core
                .scan(from_end, latest_end, None, None)
                .filter_map(move |item| {
                    let (raw, value) = match item {
                        Ok(entry) => entry,
                        Err(e) => return Some(Err(e)),
                    };
                    let Some((k, start, end)) = split_session_key(&raw) else {
                        return Some(Err(StateError::corrupt(
                            format!("session store {name}"),
                            format!("stored key of {} bytes is too short", raw.len()),
                        )));
                    };
                    (end >= from_end && end <= latest_end).then(|| {
                        Ok(SessionEntry {
                            key: k.to_vec(),
                            start,
                            end,
                            value,
                        })
                    })
                }),
        )
    }
}
