//! Window stores: values per key and window start, kept for a retention period in time
//! segments that expire whole.
//!
//! Key layout (also the changelog key layout): `key ++ window start (8 bytes, big-endian)`,
//! plus `++ seq (4 bytes, big-endian)` when duplicates are retained. See [`window_key`].

mod layout;
mod store;

pub use layout::{split_window_key, window_key};
pub use store::{InMemoryWindowStore, RocksWindowStore, SegmentedWindowStore};

use crate::{StateError, StateStore};

/// One window's value for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowedEntry {
    /// The record key.
    pub key: Vec<u8>,
    /// Start of the window, in milliseconds.
    pub window_start: i64,
    /// The value.
    pub value: Vec<u8>,
}

/// A scan over a window store. Items are results because a disk-backed store can fail
/// mid-scan.
pub type WindowIter<'a> = Box<dyn Iterator<Item = Result<WindowedEntry, StateError>> + 'a>;

/// What became of a write to a segmented (window or session) store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The write was applied under `store_key`, the store's key layout, which is also the
    /// changelog key.
    Written {
        /// Key in the store's layout (window: `key ++ start [++ seq]`, session:
        /// `key ++ end ++ start`).
        store_key: Vec<u8>,
    },
    /// The write fell into a segment older than retention allows and was dropped (and
    /// counted); nothing is logged for it.
    Expired,
}

/// How a window store keeps its data.
///
/// ```
/// use streamtime_state::WindowStoreConfig;
/// let config = WindowStoreConfig::new(3_600_000).retain_duplicates(true);
/// assert_eq!(config.segment_interval_ms(), 1_800_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowStoreConfig {
    /// How long (in stream time) a window is kept after its start, in milliseconds. Must be
    /// at least window size + grace.
    pub retention_ms: i64,
    /// Keep every put under a fresh sequence number instead of overwriting (stream-stream
    /// joins need all records of a key in a window).
    pub retain_duplicates: bool,
}

impl WindowStoreConfig {
    /// Retention `retention_ms`, no duplicates.
    pub fn new(retention_ms: i64) -> Self {
        WindowStoreConfig {
            retention_ms,
            retain_duplicates: false,
        }
    }

    /// Sets whether duplicates are retained.
    pub fn retain_duplicates(mut self, retain: bool) -> Self {
        self.retain_duplicates = retain;
        self
    }

    /// `max(retention / 2, 60 s)`.
    pub fn segment_interval_ms(&self) -> i64 {
        crate::segments::segment_interval(self.retention_ms)
    }
}

/// Values per (key, window start), expiring by stream time.
///
/// The store's stream time is the largest window start ever put. With
/// `interval = max(retention / 2, 60 s)` and `segment = start / interval`, segments older than
/// `segment(stream time − retention)` are dropped whole and puts into them are dropped and
/// counted; reads never return a window whose start is at or before `stream time − retention`.
///
/// ```
/// use streamtime_state::{InMemoryWindowStore, WindowStore, WindowStoreConfig};
/// let mut store = InMemoryWindowStore::new("w", WindowStoreConfig::new(600_000))?;
/// store.put(b"k", 0, b"a", 10)?;
/// store.put(b"k", 5_000, b"b", 5_010)?;
/// let starts: Vec<i64> = store.fetch(b"k", 0, 5_000).map(|e| e.map(|e| e.window_start)).collect::<Result<_, _>>()?;
/// assert_eq!(starts, vec![0, 5_000]); // both bounds inclusive, ascending
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
pub trait WindowStore: StateStore {
    /// Retention in milliseconds.
    fn retention_ms(&self) -> i64;

    /// Segment length in milliseconds.
    fn segment_interval_ms(&self) -> i64;

    /// True when every put is kept under its own sequence number.
    fn retains_duplicates(&self) -> bool;

    /// The largest window start put so far, `None` before the first put.
    fn observed_stream_time(&self) -> Option<i64>;

    /// How many writes were dropped because their segment had expired (since open).
    fn expired_puts(&self) -> u64;

    /// The stream time expiry is measured against: [`WindowStore::observed_stream_time`],
    /// held back while [`crate::StateStore::limit_expiry`] applies. Reads return no window
    /// starting at or before this minus retention.
    fn expiry_stream_time(&self) -> Option<i64> {
        self.observed_stream_time()
    }

    /// Hands every entry a cache layer writes to the store underneath to `listener` (key in
    /// the store's layout, `key ++ window start`) and returns true; stores without a cache
    /// return false and drop it.
    fn set_flush_listener(&mut self, _listener: crate::FlushListener) -> bool {
        false
    }

    /// Stores `value` for `key`'s window starting at `window_start` (milliseconds, not
    /// negative). `timestamp` is the causing record's timestamp, for the changelog.
    fn put(
        &mut self,
        key: &[u8],
        window_start: i64,
        value: &[u8],
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError>;

    /// Removes `key`'s window at `window_start`. Not supported when duplicates are retained
    /// (which one would it be?).
    fn delete(
        &mut self,
        key: &[u8],
        window_start: i64,
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError>;

    /// The value of `key`'s window at `window_start`, unless expired. Not supported when
    /// duplicates are retained; use [`WindowStore::fetch`].
    fn get(&self, key: &[u8], window_start: i64) -> Result<Option<Vec<u8>>, StateError>;

    /// `key`'s windows whose start is in `[time_from, time_to]` (both inclusive), by ascending
    /// start (then insertion order for duplicates).
    fn fetch(&self, key: &[u8], time_from: i64, time_to: i64) -> WindowIter<'_>;

    /// All windows whose start is in `[time_from, time_to]`, ordered by segment, then key
    /// (unsigned bytes), then start.
    fn fetch_all(&self, time_from: i64, time_to: i64) -> WindowIter<'_>;

    /// Windows of keys in `[key_from, key_to]` whose start is in `[time_from, time_to]`
    /// (all bounds inclusive), in the order of [`WindowStore::fetch_all`].
    fn fetch_key_range(
        &self,
        key_from: &[u8],
        key_to: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> WindowIter<'_>;
}

impl<T: WindowStore + ?Sized> WindowStore for Box<T> {
    fn retention_ms(&self) -> i64 {
        (**self).retention_ms()
    }
    fn segment_interval_ms(&self) -> i64 {
        (**self).segment_interval_ms()
    }
    fn retains_duplicates(&self) -> bool {
        (**self).retains_duplicates()
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
        window_start: i64,
        value: &[u8],
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        (**self).put(key, window_start, value, timestamp)
    }
    fn delete(
        &mut self,
        key: &[u8],
        window_start: i64,
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        (**self).delete(key, window_start, timestamp)
    }
    fn get(&self, key: &[u8], window_start: i64) -> Result<Option<Vec<u8>>, StateError> {
        (**self).get(key, window_start)
    }
    fn fetch(&self, key: &[u8], time_from: i64, time_to: i64) -> WindowIter<'_> {
        (**self).fetch(key, time_from, time_to)
    }
    fn fetch_all(&self, time_from: i64, time_to: i64) -> WindowIter<'_> {
        (**self).fetch_all(time_from, time_to)
    }
    fn fetch_key_range(
        &self,
        key_from: &[u8],
        key_to: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> WindowIter<'_> {
        (**self).fetch_key_range(key_from, key_to, time_from, time_to)
    }
}
