//! State stores as processors use them: store specifications for a topology, and typed
//! handles a processor gets from its context.
//!
//! ```
//! use streamtime::{Processor, ProcessorContext, ProcessResult, Record, Topology};
//! use streamtime::serdes::{StringSerde, I64Serde};
//! use streamtime::stores::{KeyValueStoreHandle, Stores};
//!
//! /// Counts records per key in a changelogged key-value store.
//! #[derive(Default)]
//! struct Count { store: Option<KeyValueStoreHandle<String, i64>> }
//!
//! impl Processor<String, String, String, i64> for Count {
//!     fn init(&mut self, ctx: &mut ProcessorContext<String, i64>) -> ProcessResult {
//!         self.store = Some(ctx.key_value_store("counts", StringSerde, I64Serde)?);
//!         Ok(())
//!     }
//!     fn process(&mut self, ctx: &mut ProcessorContext<String, i64>, r: Record<String, String>) -> ProcessResult {
//!         let store = self.store.as_ref().expect("initialised");
//!         let n = store.get(&r.key)?.unwrap_or(0) + 1;
//!         store.put(&r.key, &n)?;
//!         ctx.forward(r.with_value(n))
//!     }
//! }
//!
//! let mut topology = Topology::new();
//! topology.add_source("in", &["words"], StringSerde, StringSerde).unwrap();
//! topology.add_processor("count", Count::default, &["in"]).unwrap();
//! topology.add_state_store(Stores::key_value("counts"), &["count"]).unwrap();
//! ```

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use streamtime_state::{KeyValueStore, StateError};

use crate::error::StreamsError;
use crate::processor::node::TaskContext;
use crate::serdes::{from_bytes, to_bytes, Serde};

/// What kind of store a specification describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// Ordered key-value store.
    KeyValue,
}

/// A store to create in every task of the sub-topology whose processors use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSpec {
    pub(crate) name: String,
    pub(crate) kind: StoreKind,
    pub(crate) persistent: bool,
    pub(crate) logging: bool,
}

/// Entry point for store specifications.
pub struct Stores;

impl Stores {
    /// A key-value store: RocksDB-backed and changelogged (`<app>-<name>-changelog`) unless
    /// configured otherwise.
    pub fn key_value(name: impl Into<String>) -> StoreSpec {
        StoreSpec {
            name: name.into(),
            kind: StoreKind::KeyValue,
            persistent: true,
            logging: true,
        }
    }
}

impl StoreSpec {
    /// Keep the data in memory (restored from the changelog from scratch on every start).
    pub fn in_memory(mut self) -> Self {
        self.persistent = false;
        self
    }

    /// Keep the data in RocksDB under the state directory (the default).
    pub fn persistent(mut self) -> Self {
        self.persistent = true;
        self
    }

    /// Mirror every write to a compacted changelog topic (default on). Without it, the store
    /// is lost with the instance.
    pub fn with_logging(mut self, logging: bool) -> Self {
        self.logging = logging;
        self
    }

    /// The store name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the store is changelogged.
    pub fn is_logged(&self) -> bool {
        self.logging
    }

    /// Whether the store is on disk.
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }
}

pub(crate) type SharedKeyValueStore = Rc<RefCell<Box<dyn KeyValueStore>>>;

pub(crate) fn state_error(store: &str, e: StateError) -> StreamsError {
    StreamsError::State(format!("store {store}: {e}"))
}

/// A typed view of a key-value store, for a processor of the task that owns it. Writes carry
/// the timestamp of the record (or punctuation) being processed into the changelog.
pub struct KeyValueStoreHandle<K, V> {
    name: Arc<str>,
    store: SharedKeyValueStore,
    keys: Arc<dyn Serde<K>>,
    values: Arc<dyn Serde<V>>,
    task: Rc<TaskContext>,
}

impl<K, V> Clone for KeyValueStoreHandle<K, V> {
    fn clone(&self) -> Self {
        KeyValueStoreHandle {
            name: self.name.clone(),
            store: self.store.clone(),
            keys: self.keys.clone(),
            values: self.values.clone(),
            task: self.task.clone(),
        }
    }
}

impl<K: 'static, V: 'static> KeyValueStoreHandle<K, V> {
    pub(crate) fn new(
        name: Arc<str>,
        store: SharedKeyValueStore,
        keys: Arc<dyn Serde<K>>,
        values: Arc<dyn Serde<V>>,
        task: Rc<TaskContext>,
    ) -> Self {
        KeyValueStoreHandle {
            name,
            store,
            keys,
            values,
            task,
        }
    }

    fn key_bytes(&self, key: &K) -> Result<Vec<u8>, StreamsError> {
        let mut out = Vec::new();
        self.keys
            .serialize(key, &mut out)
            .map_err(|e| self.serde_error("key", e))?;
        Ok(out)
    }

    fn serde_error(&self, what: &str, e: crate::serdes::SerdeError) -> StreamsError {
        StreamsError::Serde {
            context: format!("{what} of store {}", self.name),
            message: e.0,
        }
    }

    fn decode(&self, (k, v): (Vec<u8>, Vec<u8>)) -> Result<(K, V), StreamsError> {
        Ok((
            self.keys
                .deserialize(&k)
                .map_err(|e| self.serde_error("key", e))?,
            self.values
                .deserialize(&v)
                .map_err(|e| self.serde_error("value", e))?,
        ))
    }

    /// The value for `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>, StreamsError> {
        let key = self.key_bytes(key)?;
        let bytes = self
            .store
            .borrow()
            .get(&key)
            .map_err(|e| state_error(&self.name, e))?;
        bytes
            .map(|b| from_bytes(&*self.values, Some(&b)).map_err(|e| self.serde_error("value", e)))
            .transpose()
    }

    /// Stores `value` under `key`.
    pub fn put(&self, key: &K, value: &V) -> Result<(), StreamsError> {
        let key = self.key_bytes(key)?;
        let timestamp = self.task.state.borrow().current_timestamp;
        match to_bytes(&*self.values, value).map_err(|e| self.serde_error("value", e))? {
            Some(bytes) => self.store.borrow_mut().put(&key, &bytes, timestamp),
            None => self.store.borrow_mut().delete(&key, timestamp),
        }
        .map_err(|e| state_error(&self.name, e))
    }

    /// Removes `key`.
    pub fn delete(&self, key: &K) -> Result<(), StreamsError> {
        let key = self.key_bytes(key)?;
        let timestamp = self.task.state.borrow().current_timestamp;
        self.store
            .borrow_mut()
            .delete(&key, timestamp)
            .map_err(|e| state_error(&self.name, e))
    }

    /// Entries with keys in `[from, to]` (serialized key order, both bounds inclusive).
    pub fn range(&self, from: &K, to: &K) -> Result<Vec<(K, V)>, StreamsError> {
        let (from, to) = (self.key_bytes(from)?, self.key_bytes(to)?);
        let store = self.store.borrow();
        store
            .range(&from, &to)
            .map(|kv| self.decode(kv.map_err(|e| state_error(&self.name, e))?))
            .collect()
    }

    /// Every entry, in serialized key order.
    pub fn all(&self) -> Result<Vec<(K, V)>, StreamsError> {
        let store = self.store.borrow();
        store
            .all()
            .map(|kv| self.decode(kv.map_err(|e| state_error(&self.name, e))?))
            .collect()
    }

    /// Number of entries (estimated for RocksDB).
    pub fn approximate_num_entries(&self) -> Result<u64, StreamsError> {
        self.store
            .borrow()
            .approximate_num_entries()
            .map_err(|e| state_error(&self.name, e))
    }
}
