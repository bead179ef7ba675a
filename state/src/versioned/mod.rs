//! Versioned key-value stores (Kafka Streams' KIP-889): a key keeps its past values, each
//! valid from its timestamp until the next one's, so a read can ask for the value a key had
//! at a given time. History older than the store's history retention (behind the highest
//! timestamp written) is neither written nor read.
//!
//! ```
//! use streamtime_state::{InMemoryVersionedStore, VersionedKeyValueStore, VersionedPut};
//! let mut store = InMemoryVersionedStore::new("prices", 60_000);
//! store.put_version(b"apple", Some(b"1.10"), 1_000)?;
//! store.put_version(b"apple", Some(b"1.30"), 5_000)?;
//! // An update that arrives late goes into the history, not over the latest value.
//! assert_eq!(store.put_version(b"apple", Some(b"1.20"), 3_000)?, VersionedPut::History);
//! let at = |t| store.get_as_of(b"apple", t).map(|r| r.map(|r| r.value));
//! assert_eq!(at(2_000)?, Some(b"1.10".to_vec()));
//! assert_eq!(at(4_000)?, Some(b"1.20".to_vec()));
//! assert_eq!(at(9_000)?, Some(b"1.30".to_vec()));
//! assert_eq!(at(500)?, None); // before the first version
//! # Ok::<(), streamtime_state::StateError>(())
//! ```
//!
//! # Changelog
//!
//! A logged versioned store ([`crate::LoggedVersionedStore`]) sends one changelog record per
//! accepted write: the key, and a value carrying the write's timestamp and whether it sets or
//! deletes ([`changelog_value`]). A deletion is therefore a record with a value, not a
//! Kafka tombstone: restoring it must know the deletion's time, which a tombstone's value
//! cannot carry. Replaying the records in order rebuilds the same versions; compaction keeps
//! the history it needs while the changelog's `min.compaction.lag.ms` exceeds the history
//! retention.

mod store;

pub use store::{InMemoryVersionedStore, RocksVersionedStore, VersionedStore};

use crate::{KeyValueStore, StateError};

/// One version of a key's value: valid from `timestamp` until `valid_to` (exclusive), or
/// until further notice when `valid_to` is `None` (the latest version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedRecord {
    /// The value's bytes.
    pub value: Vec<u8>,
    /// When the version became valid: the timestamp of the write that made it.
    pub timestamp: i64,
    /// When the next version (or a deletion) replaced it; `None` for the latest version.
    pub valid_to: Option<i64>,
}

/// Where a versioned write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionedPut {
    /// It is the key's latest version (its timestamp is not behind the previous latest).
    Latest,
    /// It is older than the key's latest version and went into the history.
    History,
    /// It is older than the history retention allows, and was not written.
    Expired,
}

/// A key-value store that keeps every key's values over time.
///
/// Its [`KeyValueStore`] side shows the latest versions in the timestamped layout DSL tables
/// use (`8-byte big-endian timestamp ++ value`), so a versioned table's store is read like
/// any other; a `put` through it is a [`put_version`](Self::put_version) at the timestamp in
/// the value's first 8 bytes.
pub trait VersionedKeyValueStore: KeyValueStore {
    /// How far behind the highest timestamp written a version stays readable, ms.
    fn history_retention_ms(&self) -> i64;

    /// The highest timestamp written so far (`i64::MIN` before the first write).
    fn observed_stream_time(&self) -> i64;

    /// Sets (`Some`) or deletes (`None`) `key`'s value from `timestamp` on, until the next
    /// later version if there is one.
    fn put_version(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        timestamp: i64,
    ) -> Result<VersionedPut, StateError>;

    /// The key's latest version, unless it is deleted.
    fn get_latest(&self, key: &[u8]) -> Result<Option<VersionedRecord>, StateError>;

    /// The version valid at `as_of`; `None` when the key had no value then, or when `as_of`
    /// is older than the history retention.
    fn get_as_of(&self, key: &[u8], as_of: i64) -> Result<Option<VersionedRecord>, StateError>;
}

impl<T: VersionedKeyValueStore + ?Sized> VersionedKeyValueStore for Box<T> {
    fn history_retention_ms(&self) -> i64 {
        (**self).history_retention_ms()
    }
    fn observed_stream_time(&self) -> i64 {
        (**self).observed_stream_time()
    }
    fn put_version(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        timestamp: i64,
    ) -> Result<VersionedPut, StateError> {
        (**self).put_version(key, value, timestamp)
    }
    fn get_latest(&self, key: &[u8]) -> Result<Option<VersionedRecord>, StateError> {
        (**self).get_latest(key)
    }
    fn get_as_of(&self, key: &[u8], as_of: i64) -> Result<Option<VersionedRecord>, StateError> {
        (**self).get_as_of(key, as_of)
    }
}

const SETS: u8 = 1;
const DELETES: u8 = 0;

/// The changelog value of a versioned write: `timestamp` (8 bytes, big-endian), then `1` and
/// the value for a write that sets, or `0` alone for a deletion.
///
/// ```
/// use streamtime_state::versioned::{changelog_value, split_changelog_value};
/// let bytes = changelog_value(None, 42);
/// assert_eq!(split_changelog_value(&bytes), Some((None, 42)));
/// ```
pub fn changelog_value(value: Option<&[u8]>, timestamp: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + value.map_or(0, <[u8]>::len));
    out.extend_from_slice(&timestamp.to_be_bytes());
    match value {
        Some(v) => {
            out.push(SETS);
            out.extend_from_slice(v);
        }
        None => out.push(DELETES),
    }
    out
}

/// The value (or `None` for a deletion) and timestamp of a [`changelog_value`]; `None` when
/// the bytes are not one.
pub fn split_changelog_value(bytes: &[u8]) -> Option<(Option<&[u8]>, i64)> {
    if bytes.len() < 9 {
        return None;
    }
    let timestamp = i64::from_be_bytes(bytes[..8].try_into().ok()?);
    match bytes[8] {
        SETS => Some((Some(&bytes[9..]), timestamp)),
        DELETES if bytes.len() == 9 => Some((None, timestamp)),
        _ => None,
    }
}

/// The `8-byte timestamp ++ value` layout of a table's key-value view.
pub(crate) fn timestamped(value: &[u8], timestamp: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// A key-value `put` of a versioned store: `value` is in the timestamped layout and is
/// written as a version at its timestamp.
pub(crate) fn put_timestamped<S: VersionedKeyValueStore + ?Sized>(
    store: &mut S,
    key: &[u8],
    value: &[u8],
) -> Result<(), StateError> {
    let Some(ts) = value.get(..8) else {
        return Err(StateError::corrupt(
            format!("writing versioned store {}", store.name()),
            "a value without its 8-byte timestamp",
        ));
    };
    let timestamp = i64::from_be_bytes(ts.try_into().expect("8 bytes"));
    store
        .put_version(key, Some(&value[8..]), timestamp)
        .map(|_| ())
}
