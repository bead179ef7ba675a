//! Change logging for window stores.

use super::ChangelogWriter;
use crate::{StateError, WindowIter, WindowStore, WrappedStateStore, WriteOutcome};

/// A [`WindowStore`] that sends each applied put and delete to a changelog, keyed by the
/// store key (`key ++ start [++ seq]`). Writes dropped as expired are not logged: the
/// changelog mirrors what the store holds.
///
/// ```
/// use streamtime_state::{InMemoryWindowStore, LoggedWindowStore, MemoryChangelog, WindowStore, WindowStoreConfig};
/// use streamtime_state::window::window_key;
/// let log = MemoryChangelog::new();
/// let inner = InMemoryWindowStore::new("w", WindowStoreConfig::new(600_000))?;
/// let mut store = LoggedWindowStore::new(inner, log.clone());
/// store.put(b"k", 60_000, b"v", 60_123)?;
/// assert_eq!(log.records()[0].key, window_key(b"k", 60_000, None));
/// assert_eq!(log.records()[0].timestamp, 60_123);
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
pub struct LoggedWindowStore<S> {
    inner: S,
    writer: Box<dyn ChangelogWriter>,
}

impl<S: WindowStore> LoggedWindowStore<S> {
    /// Logs `inner`'s writes to `writer`.
    pub fn new(inner: S, writer: impl ChangelogWriter + 'static) -> Self {
        LoggedWindowStore {
            inner,
            writer: Box::new(writer),
        }
    }

    /// The store underneath (read-only: writing to it directly would bypass the changelog).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Unwraps the store.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn log(&mut self, outcome: &WriteOutcome, value: Option<&[u8]>, timestamp: i64) {
        if let WriteOutcome::Written { store_key } = outcome {
            self.writer.send(store_key, value, timestamp);
        }
    }
}

// Restoring passes the records to `inner` without going through `put`, so they are not logged.
impl<S: WindowStore> WrappedStateStore for LoggedWindowStore<S> {
    type Inner = S;
    fn wrapped(&self) -> &S {
        &self.inner
    }
    fn wrapped_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S: WindowStore> WindowStore for LoggedWindowStore<S> {
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
        self.inner.observed_stream_time()
    }
    fn expired_puts(&self) -> u64 {
        self.inner.expired_puts()
    }
    fn expiry_stream_time(&self) -> Option<i64> {
        self.inner.expiry_stream_time()
    }

    fn put(
        &mut self,
        key: &[u8],
        window_start: i64,
        value: &[u8],
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        let outcome = self.inner.put(key, window_start, value, timestamp)?;
        self.log(&outcome, Some(value), timestamp);
        Ok(outcome)
    }

    fn delete(
        &mut self,
        key: &[u8],
        window_start: i64,
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        let outcome = self.inner.delete(key, window_start, timestamp)?;
        self.log(&outcome, None, timestamp);
        Ok(outcome)
    }

    fn get(&self, key: &[u8], window_start: i64) -> Result<Option<Vec<u8>>, StateError> {
        self.inner.get(key, window_start)
    }
    fn fetch(&self, key: &[u8], time_from: i64, time_to: i64) -> WindowIter<'_> {
        self.inner.fetch(key, time_from, time_to)
    }
    fn fetch_all(&self, time_from: i64, time_to: i64) -> WindowIter<'_> {
        self.inner.fetch_all(time_from, time_to)
    }
    fn fetch_key_range(
        &self,
        key_from: &[u8],
        key_to: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> WindowIter<'_> {
        self.inner
            .fetch_key_range(key_from, key_to, time_from, time_to)
    }
}
