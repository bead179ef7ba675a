//! Session stores: one value per (key, session start, session end), expiring by session end.
//!
//! Key layout (also the changelog key layout): `key ++ end (8 bytes, big-endian) ++ start
//! (8 bytes, big-endian)`, so a key's sessions sort by end, then start. See [`session_key`].

mod layout;
mod store;

pub use layout::{session_key, split_session_key};
pub use store::{InMemorySessionStore, RocksSessionStore, SegmentedSessionStore};

use crate::{StateError, StateStore, WriteOutcome};

/// One session's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEntry {
    /// The record key.
    pub key: Vec<u8>,
    /// Timestamp of the session's first record, in milliseconds.
    pub start: i64,
    /// Timestamp of the session's last record, in milliseconds.
    pub end: i64,
    /// The value (usually the aggregate).
    pub value: Vec<u8>,
}

/// A scan over a session store.
pub type SessionIter<'a> = Box<dyn Iterator<Item = Result<SessionEntry, StateError>> + 'a>;

/// Sessions per key, expiring by stream time (the largest session end written).
///
/// Segmentation and expiry work as in [`crate::WindowStore`], with the session end as the
/// segment timestamp: a session whose end is at or before `stream time − retention` is never
/// returned, and writes into expired segments are dropped and counted.
///
/// ```
/// use streamtime_state::{InMemorySessionStore, SessionStore};
/// let mut store = InMemorySessionStore::new("sessions", 600_000)?;
/// store.put(b"u", 0, 100, b"2 clicks", 100)?;
/// store.put(b"u", 500, 700, b"3 clicks", 700)?;
/// // A new record at 150 with a gap of 60 overlaps sessions ending >= 90 and starting <= 210.
/// let hits: Vec<(i64, i64)> = store.find_sessions(b"u", 90, 210).map(|s| s.map(|s| (s.start, s.end))).collect::<Result<_, _>>()?;
/// assert_eq!(hits, vec![(0, 100)]);
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
pub trait SessionStore: StateStore {
    /// Retention in milliseconds.
    fn retention_ms(&self) -> i64;

    /// Segment length in milliseconds.
    fn segment_interval_ms(&self) -> i64;

    /// The largest session end written so far, `None` before the first write.
    fn observed_stream_time(&self) -> Option<i64>;

    /// How many writes were dropped because their segment had expired (since open).
    fn expired_puts(&self) -> u64;

    /// The stream time expiry is measured against: [`SessionStore::observed_stream_time`],
    /// held back while [`crate::StateStore::limit_expiry`] applies.
    fn expiry_stream_time(&self) -> Option<i64> {
        self.observed_stream_time()
    }

    /// Hands every entry a cache layer writes to the store underneath to `listener` (key in
    /// the store's layout, `key ++ end ++ start`) and returns true; stores without a cache
    /// return false and drop it.
    fn set_flush_listener(&mut self, _listener: crate::FlushListener) -> bool {
        false
    }

    /// Stores `value` for `key`'s session `[start, end]` (`0 <= start <= end`).
    fn put(
        &mut self,
        key: &[u8],
        start: i64,
        end: i64,
        value: &[u8],
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError>;

    /// Removes `key`'s session `[start, end]` (done when sessions merge).
    fn remove(
        &mut self,
        key: &[u8],
        start: i64,
        end: i64,
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError>;

    /// The value of exactly the session `[start, end]` of `key`, unless expired.
    fn fetch_session(
        &self,
        key: &[u8],
        start: i64,
        end: i64,
    ) -> Result<Option<Vec<u8>>, StateError>;

    /// `key`'s sessions with `end >= earliest_session_end` and `start <=
    /// latest_session_start` (Kafka Streams' `findSessions`): for a record at `t` and gap
    /// `g`, `find_sessions(key, t - g, t + g)` yields the sessions it joins. Ascending by end,
    /// then start.
    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> SessionIter<'_>;

    /// Every live session of `key`, ascending by end, then start.
    fn fetch(&self, key: &[u8]) -> SessionIter<'_> {
        self.find_sessions(key, 0, i64::MAX)
    }

    /// Every key's live sessions with `earliest_end <= end <= latest_end`, ordered by segment,
    /// then key (unsigned bytes), then end: what an operator emitting closed sessions scans.
    fn fetch_ending_between(&self, earliest_end: i64, latest_end: i64) -> SessionIter<'_>;
}

impl<T: SessionStore + ?Sized> SessionStore for Box<T> {
    fn retention_ms(&self) -> i64 {
        (**self).retention_ms()
    }
    fn segment_interval_ms(&self) -> i64 {
        (**self).segment_interval_ms()
    }
    fn observed_stream_time(&self) -> Option<i64> {
        (**self).observed_stream_time()
    }
    fn expired_puts(&self) -> u64 {
        (**self).expired_puts()
    }
    fn expiry_stream_time(&self) -> Option<i64> {
        (**self).expiry_stream_time()
    }
    fn set_flush_listener(&mut self, listener: crate::FlushListener) -> bool {
        (**self).set_flush_listener(listener)
    }
    fn put(
        &mut self,
        key: &[u8],
        start: i64,
        end: i64,
        value: &[u8],
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        (**self).put(key, start, end, value, timestamp)
    }
    fn remove(
        &mut self,
        key: &[u8],
        start: i64,
        end: i64,
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        (**self).remove(key, start, end, timestamp)
    }
    fn fetch_session(
        &self,
        key: &[u8],
        start: i64,
        end: i64,
    ) -> Result<Option<Vec<u8>>, StateError> {
        (**self).fetch_session(key, start, end)
    }
    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> SessionIter<'_> {
        (**self).find_sessions(key, earliest_session_end, latest_session_start)
    }
    fn fetch(&self, key: &[u8]) -> SessionIter<'_> {
        (**self).fetch(key)
    }
    fn fetch_ending_between(&self, earliest_end: i64, latest_end: i64) -> SessionIter<'_> {
        (**self).fetch_ending_between(earliest_end, latest_end)
    }
}
