//! Byte-oriented key-value stores: the [`KeyValueStore`] trait and its in-memory and RocksDB
//! implementations.
//!
//! Keys are ordered as unsigned byte strings (`[0x7f] < [0x80] < [0xff]`, and a prefix sorts
//! before its extensions), the same order RocksDB's default comparator uses, so both twins
//! iterate identically.

mod memory;
mod rocks;
mod write_buffer;

pub use memory::InMemoryKeyValueStore;
pub use rocks::RocksKeyValueStore;

use crate::versioned::VersionedKeyValueStore;
use crate::{FlushListener, StateError, StateStore};

/// A key and its value, as returned by range scans.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// An ascending scan over a key-value store. Items are results because a disk-backed store can
/// fail mid-scan.
pub type KeyValueIter<'a> = Box<dyn Iterator<Item = Result<KeyValue, StateError>> + 'a>;

/// A map from byte keys to byte values, ordered by unsigned byte order.
///
/// Every write carries `timestamp`, the timestamp of the record that caused it. Plain stores
/// ignore it; the changelog layer sends it with the changelog record and the cache keeps it
/// until the entry is flushed.
///
/// ```
/// use streamtime_state::{InMemoryKeyValueStore, KeyValueStore};
/// let mut store = InMemoryKeyValueStore::new("s");
/// for k in [[0xffu8], [0x01], [0x80], [0x7f]] {
///     store.put(&k, b"v", 0)?;
/// }
/// let keys: Vec<Vec<u8>> = store.range(&[0x7f], &[0xff]).map(|kv| kv.map(|(k, _)| k)).collect::<Result<_, _>>()?;
/// assert_eq!(keys, vec![vec![0x7f], vec![0x80], vec![0xff]]); // both bounds inclusive
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
pub trait KeyValueStore: StateStore {
    /// The value stored under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;

    /// Stores `value` under `key`, replacing any previous value.
    fn put(&mut self, key: &[u8], value: &[u8], timestamp: i64) -> Result<(), StateError>;

    /// Removes `key`; removing an absent key is not an error.
    fn delete(&mut self, key: &[u8], timestamp: i64) -> Result<(), StateError>;

    /// Entries whose key is in `[from, to]`, **both bounds inclusive** (as in Kafka Streams),
    /// in ascending unsigned byte order. Empty when `from > to`.
    fn range(&self, from: &[u8], to: &[u8]) -> KeyValueIter<'_>;

    /// Every entry, in ascending unsigned byte order.
    fn all(&self) -> KeyValueIter<'_>;

    /// The number of entries, exact for in-memory stores and an estimate for RocksDB.
    fn approximate_num_entries(&self) -> Result<u64, StateError>;

    /// The store's versioned side when it keeps history ([`crate::VersionedStore`] and its
    /// logging layer); `None` for plain stores.
    fn as_versioned(&self) -> Option<&dyn VersionedKeyValueStore> {
        None
    }

    /// The store's versioned side, for writing; see [`KeyValueStore::as_versioned`].
    fn as_versioned_mut(&mut self) -> Option<&mut dyn VersionedKeyValueStore> {
        None
    }

    /// Hands every entry the store's cache writes out to `listener` from now on; `false`
    /// (and the listener dropped) when the store has no cache, so every write reaches the
    /// store at once. See [`crate::CachingKeyValueStore`].
    fn set_flush_listener(&mut self, listener: FlushListener) -> bool {
        drop(listener);
        false
    }
}

impl<T: KeyValueStore + ?Sized> KeyValueStore for Box<T> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        (**self).get(key)
    }
    fn put(&mut self, key: &[u8], value: &[u8], timestamp: i64) -> Result<(), StateError> {
        (**self).put(key, value, timestamp)
    }
    fn delete(&mut self, key: &[u8], timestamp: i64) -> Result<(), StateError> {
        (**self).delete(key, timestamp)
    }
    fn range(&self, from: &[u8], to: &[u8]) -> KeyValueIter<'_> {
        (**self).range(from, to)
    }
    fn all(&self) -> KeyValueIter<'_> {
        (**self).all()
    }
    fn approximate_num_entries(&self) -> Result<u64, StateError> {
        (**self).approximate_num_entries()
    }
    fn as_versioned(&self) -> Option<&dyn VersionedKeyValueStore> {
        (**self).as_versioned()
    }
    fn as_versioned_mut(&mut self) -> Option<&mut dyn VersionedKeyValueStore> {
        (**self).as_versioned_mut()
    }
    fn set_flush_listener(&mut self, listener: FlushListener) -> bool {
        (**self).set_flush_listener(listener)
    }
}

/// A base key-value store that segmented (window and session) stores are built on: it can
/// delete a whole key range cheaply, which is how an expired segment is dropped.
///
/// ```
/// use streamtime_state::{InMemoryKeyValueStore, KeyValueBackend, KeyValueStore};
/// let mut store = InMemoryKeyValueStore::new("s");
/// for k in [b"a", b"b", b"c"] {
///     store.put(k, b"v", 0)?;
/// }
/// store.delete_range(b"a", b"c")?; // `to` is exclusive here
/// assert_eq!(store.approximate_num_entries()?, 1);
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
pub trait KeyValueBackend: KeyValueStore {
    /// Removes every key in `[from, to)` (**`to` exclusive**) without logging anything.
    fn delete_range(&mut self, from: &[u8], to: &[u8]) -> Result<(), StateError>;
}

/// The smallest key strictly greater than `key`: turns an inclusive upper bound into the
/// exclusive one RocksDB iterators take.
pub(crate) fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}
