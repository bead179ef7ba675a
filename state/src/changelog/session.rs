//! Change logging for session stores.

use super::ChangelogWriter;
use crate::{SessionIter, SessionStore, StateError, WrappedStateStore, WriteOutcome};

/// A [`SessionStore`] that sends each applied put and remove to a changelog, keyed by the
/// store key (`key ++ end ++ start`). Writes dropped as expired are not logged.
///
/// ```
/// use streamtime_state::{InMemorySessionStore, LoggedSessionStore, MemoryChangelog, SessionStore};
/// use streamtime_state::session::session_key;
/// let log = MemoryChangelog::new();
/// let mut store = LoggedSessionStore::new(InMemorySessionStore::new("s", 600_000)?, log.clone());
/// store.put(b"k", 0, 10, b"v", 10)?;
/// store.remove(b"k", 0, 10, 15)?;
/// let records = log.records();
/// assert_eq!(records[1].key, session_key(b"k", 0, 10));
/// assert_eq!((records[1].value.clone(), records[1].timestamp), (None, 15));
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
pub struct LoggedSessionStore<S> {
    inner: S,
    writer: Box<dyn ChangelogWriter>,
}

impl<S: SessionStore> LoggedSessionStore<S> {
    /// Logs `inner`'s writes to `writer`.
    pub fn new(inner: S, writer: impl ChangelogWriter + 'static) -> Self {
        LoggedSessionStore {
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
impl<S: SessionStore> WrappedStateStore for LoggedSessionStore<S> {
    type Inner = S;
    fn wrapped(&self) -> &S {
        &self.inner
    }
    fn wrapped_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S: SessionStore> SessionStore for LoggedSessionStore<S> {
    fn retention_ms(&self) -> i64 {
        self.inner.retention_ms()
    }
    fn segment_interval_ms(&self) -> i64 {
        self.inner.segment_interval_ms()
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
        start: i64,
        end: i64,
        value: &[u8],
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        let outcome = self.inner.put(key, start, end, value, timestamp)?;
        self.log(&outcome, Some(value), timestamp);
        Ok(outcome)
    }

    fn remove(
        &mut self,
        key: &[u8],
        start: i64,
        end: i64,
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        let outcome = self.inner.remove(key, start, end, timestamp)?;
        self.log(&outcome, None, timestamp);
        Ok(outcome)
    }

    fn fetch_session(
        &self,
        key: &[u8],
        start: i64,
        end: i64,
    ) -> Result<Option<Vec<u8>>, StateError> {
        self.inner.fetch_session(key, start, end)
    }
    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> SessionIter<'_> {
        self.inner
            .find_sessions(key, earliest_session_end, latest_session_start)
    }
    fn fetch_ending_between(&self, earliest_end: i64, latest_end: i64) -> SessionIter<'_> {
        self.inner.fetch_ending_between(earliest_end, latest_end)
    }
    fn fetch(&self, key: &[u8]) -> SessionIter<'_> {
        self.inner.fetch(key)
    }
}
