//! The in-memory key-value store.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::{KeyValueBackend, KeyValueIter, KeyValueStore};
use crate::{StateError, StateStore};

/// A [`KeyValueStore`] over a `BTreeMap`, the twin of [`crate::RocksKeyValueStore`] used by
/// tests and the test driver. `Vec<u8>`'s `Ord` is unsigned lexicographic, which is exactly
/// RocksDB's default comparator, so both iterate in the same order.
///
/// ```
/// use streamtime_state::{InMemoryKeyValueStore, KeyValueStore};
/// let mut store = InMemoryKeyValueStore::new("counts");
/// store.put(b"k", b"1", 0)?;
/// store.put(b"k", b"2", 0)?;
/// assert_eq!(store.get(b"k")?, Some(b"2".to_vec()));
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct InMemoryKeyValueStore {
    name: String,
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl InMemoryKeyValueStore {
    /// An empty store called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        InMemoryKeyValueStore {
            name: name.into(),
            map: BTreeMap::new(),
        }
    }
}

impl StateStore for InMemoryKeyValueStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn persistent(&self) -> bool {
        false
    }

    fn flush(&mut self) -> Result<(), StateError> {
        Ok(())
    }

    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StateError> {
        match value {
            Some(v) => self.put(key, v, 0),
            None => self.delete(key, 0),
        }
    }
}

impl KeyValueStore for InMemoryKeyValueStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.map.get(key).cloned())
    }

    fn put(&mut self, key: &[u8], value: &[u8], _timestamp: i64) -> Result<(), StateError> {
        self.map.insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn delete(&mut self, key: &[u8], _timestamp: i64) -> Result<(), StateError> {
        self.map.remove(key);
        Ok(())
    }

    fn range(&self, from: &[u8], to: &[u8]) -> KeyValueIter<'_> {
        // BTreeMap::range panics on an inverted range; the trait promises an empty scan.
        if from > to {
            return Box::new(std::iter::empty());
        }
        let bounds = (Bound::Included(from), Bound::Included(to));
        Box::new(
            self.map
                .range::<[u8], _>(bounds)
                .map(|(k, v)| Ok((k.clone(), v.clone()))),
        )
    }

    fn all(&self) -> KeyValueIter<'_> {
        Box::new(self.map.iter().map(|(k, v)| Ok((k.clone(), v.clone()))))
    }

    fn approximate_num_entries(&self) -> Result<u64, StateError> {
        Ok(self.map.len() as u64)
    }
}

impl KeyValueBackend for InMemoryKeyValueStore {
    fn delete_range(&mut self, from: &[u8], to: &[u8]) -> Result<(), StateError> {
        if from >= to {
            return Ok(());
        }
        // Split twice rather than removing key by key: O(log n) plus the dropped entries.
        let mut tail = self.map.split_off(from);
        let mut rest = tail.split_off(to);
        self.map.append(&mut rest);
        Ok(())
    }
}
