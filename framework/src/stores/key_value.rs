//! [`KeyValueStoreHandle`]: a typed view of a task's key-value store.

use std::rc::Rc;

use super::{FlushedUpdates, HandleBase, Shared, TaskStore};
use crate::error::StreamsError;
use crate::serdes::Serde;
use crate::task::task_context::TaskContext;
use streamtime_state::KeyValueStore;

/// A typed view of a key-value store, for a processor of the task that owns it. Writes carry
/// the timestamp of the record (or punctuation) being processed into the changelog.
pub struct KeyValueStoreHandle<K, V> {
    base: HandleBase<K, V>,
    store: Shared<dyn KeyValueStore>,
}

impl<K, V> Clone for KeyValueStoreHandle<K, V> {
    fn clone(&self) -> Self {
        KeyValueStoreHandle {
            base: self.base.clone(),
            store: self.store.clone(),
        }
    }
}

impl<K: 'static, V: 'static> KeyValueStoreHandle<K, V> {
    pub(crate) fn open(
        task: &Rc<TaskContext>,
        node: &str,
        name: &str,
        keys: impl Serde<K>,
        values: impl Serde<V>,
    ) -> Result<Self, StreamsError> {
        let (base, store) = HandleBase::open(
            task,
            node,
            name,
            (std::sync::Arc::new(keys), std::sync::Arc::new(values)),
            |s| match s {
                TaskStore::KeyValue(s) => Some(s.clone()),
                _ => None,
            },
        )?;
        Ok(KeyValueStoreHandle { base, store })
    }

    fn decode(&self, (k, v): (Vec<u8>, Vec<u8>)) -> Result<(K, V), StreamsError> {
        Ok((self.base.key(&k)?, self.base.value(&v)?))
    }

    /// The value for `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>, StreamsError> {
        let key = self.base.key_bytes(key)?;
        let bytes = self
            .store
            .borrow()
            .get(&key)
            .map_err(|e| self.base.state_error(e))?;
        bytes.map(|b| self.base.value(&b)).transpose()
    }

    /// Stores `value` under `key` (a value its serde writes as null deletes the key).
    pub fn put(&self, key: &K, value: &V) -> Result<(), StreamsError> {
        let key = self.base.key_bytes(key)?;
        let timestamp = self.base.timestamp();
        match self.base.value_bytes(value)? {
            Some(bytes) => self.store.borrow_mut().put(&key, &bytes, timestamp),
            None => self.store.borrow_mut().delete(&key, timestamp),
        }
        .map_err(|e| self.base.state_error(e))
    }

    /// Removes `key`.
    pub fn delete(&self, key: &K) -> Result<(), StreamsError> {
        let key = self.base.key_bytes(key)?;
        let timestamp = self.base.timestamp();
        self.store
            .borrow_mut()
            .delete(&key, timestamp)
            .map_err(|e| self.base.state_error(e))
    }

    /// Entries with keys in `[from, to]` (serialized key order, both bounds inclusive).
    pub fn range(&self, from: &K, to: &K) -> Result<Vec<(K, V)>, StreamsError> {
        let (from, to) = (self.base.key_bytes(from)?, self.base.key_bytes(to)?);
        let store = self.store.borrow();
        store
            .range(&from, &to)
            .map(|kv| self.decode(kv.map_err(|e| self.base.state_error(e))?))
            .collect()
    }

    /// Every entry, in serialized key order.
    pub fn all(&self) -> Result<Vec<(K, V)>, StreamsError> {
        let store = self.store.borrow();
        store
            .all()
            .map(|kv| self.decode(kv.map_err(|e| self.base.state_error(e))?))
            .collect()
    }

    /// Hands the updates the store's cache writes out to the returned collector from now on;
    /// `None` when the store has no cache (every write reaches it at once).
    pub(crate) fn collect_flushed(&self) -> Option<FlushedUpdates<K, V>> {
        let pending = super::flushed::collector(&self.base, |listener| {
            self.store.borrow_mut().set_flush_listener(listener)
        })?;
        Some(FlushedUpdates::new(pending, self.base.clone()))
    }

    /// Writes the store's cached updates out now.
    pub(crate) fn flush_cache(&self) -> Result<(), StreamsError> {
        self.store
            .borrow_mut()
            .flush_cache()
            .map_err(|e| self.base.state_error(e))
    }

    /// Number of entries (estimated for RocksDB).
    pub fn approximate_num_entries(&self) -> Result<u64, StreamsError> {
        self.store
            .borrow()
            .approximate_num_entries()
            .map_err(|e| self.base.state_error(e))
    }
}
