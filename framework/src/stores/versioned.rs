//! [`VersionedStoreHandle`]: a typed view of a task's versioned key-value store.

use std::rc::Rc;

use super::{HandleBase, Shared, TaskStore};
use crate::error::StreamsError;
use crate::serdes::Serde;
use crate::task::task_context::TaskContext;
use streamtime_state::{KeyValueStore, VersionedPut, VersionedRecord};

/// One version of a value: valid from `timestamp` until `valid_to` (exclusive), or until
/// further notice when `valid_to` is `None` (the latest version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<V> {
    /// The value.
    pub value: V,
    /// When the version became valid.
    pub timestamp: i64,
    /// When a later version or a deletion replaced it.
    pub valid_to: Option<i64>,
}

/// A typed view of a versioned store ([`super::Stores::versioned_key_value`]): reads as of
/// a time, and writes at a time of the caller's choosing, which may be older than the
/// latest version (it then goes into the history).
///
/// ```
/// use std::time::Duration;
/// use streamtime::{Processor, ProcessorContext, ProcessResult, Record, Topology};
/// use streamtime::serdes::{StringSerde, I64Serde};
/// use streamtime::stores::{Stores, VersionedStoreHandle};
///
/// /// Prices each order with the price its product had when the order was placed.
/// #[derive(Default)]
/// struct PriceAtOrderTime { prices: Option<VersionedStoreHandle<String, i64>> }
///
/// impl Processor<String, i64, String, i64> for PriceAtOrderTime {
///     fn init(&mut self, ctx: &mut ProcessorContext<String, i64>) -> ProcessResult {
///         self.prices = Some(ctx.versioned_store("prices", StringSerde, I64Serde)?);
///         Ok(())
///     }
///     fn process(&mut self, ctx: &mut ProcessorContext<String, i64>, r: Record<String, i64>) -> ProcessResult {
///         let prices = self.prices.as_ref().expect("initialised");
///         match prices.get_as_of(&r.key, r.timestamp)? {
///             Some(price) => {
///                 let total = r.value * price.value;
///                 ctx.forward(r.with_value(total))
///             }
///             None => Ok(()),
///         }
///     }
/// }
///
/// let mut topology = Topology::new();
/// topology.add_source("orders", &["orders"], StringSerde, I64Serde).unwrap();
/// topology.add_processor("price", PriceAtOrderTime::default, &["orders"]).unwrap();
/// topology.add_state_store(Stores::versioned_key_value("prices", Duration::from_secs(86_400)), &["price"]).unwrap();
/// ```
pub struct VersionedStoreHandle<K, V> {
    base: HandleBase<K, V>,
    store: Shared<dyn KeyValueStore>,
}

impl<K, V> Clone for VersionedStoreHandle<K, V> {
    fn clone(&self) -> Self {
        VersionedStoreHandle {
            base: self.base.clone(),
            store: self.store.clone(),
        }
    }
}

impl<K: 'static, V: 'static> VersionedStoreHandle<K, V> {
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
                TaskStore::KeyValue(s) if s.borrow().as_versioned().is_some() => Some(s.clone()),
                _ => None,
            },
        )?;
        Ok(VersionedStoreHandle { base, store })
    }

    fn decode(
        &self,
        record: Option<VersionedRecord>,
    ) -> Result<Option<Versioned<V>>, StreamsError> {
        record
            .map(|r| {
                Ok(Versioned {
                    value: self.base.value(&r.value)?,
                    timestamp: r.timestamp,
                    valid_to: r.valid_to,
                })
            })
            .transpose()
    }

    fn read(
        &self,
        key: &K,
        f: impl FnOnce(
            &dyn streamtime_state::VersionedKeyValueStore,
            &[u8],
        ) -> Result<Option<VersionedRecord>, streamtime_state::StateError>,
    ) -> Result<Option<Versioned<V>>, StreamsError> {
        let key = self.base.key_bytes(key)?;
        let store = self.store.borrow();
        let versioned = store.as_versioned().expect("checked when opened");
        let record = f(versioned, &key).map_err(|e| self.base.state_error(e))?;
        self.decode(record)
    }

    /// The key's latest value, unless it is deleted.
    pub fn get(&self, key: &K) -> Result<Option<Versioned<V>>, StreamsError> {
        self.read(key, |s, k| s.get_latest(k))
    }

    /// The value the key had at `as_of`; `None` when it had none, or when `as_of` is older
    /// than the history retention.
    pub fn get_as_of(&self, key: &K, as_of: i64) -> Result<Option<Versioned<V>>, StreamsError> {
        self.read(key, |s, k| s.get_as_of(k, as_of))
    }

    /// Sets `key`'s value from `timestamp` on (a value its serde writes as null deletes).
    pub fn put(&self, key: &K, value: &V, timestamp: i64) -> Result<VersionedPut, StreamsError> {
        let bytes = self.base.value_bytes(value)?;
        self.write(key, bytes.as_deref(), timestamp)
    }

    /// Deletes `key` from `timestamp` on.
    pub fn delete(&self, key: &K, timestamp: i64) -> Result<VersionedPut, StreamsError> {
        self.write(key, None, timestamp)
    }

    fn write(
        &self,
        key: &K,
        value: Option<&[u8]>,
        timestamp: i64,
    ) -> Result<VersionedPut, StreamsError> {
        let key = self.base.key_bytes(key)?;
        let mut store = self.store.borrow_mut();
        let versioned = store.as_versioned_mut().expect("checked when opened");
        versioned
            .put_version(&key, value, timestamp)
            .map_err(|e| self.base.state_error(e))
    }

    /// How long a replaced value stays readable, ms of stream time.
    pub fn history_retention_ms(&self) -> i64 {
        let store = self.store.borrow();
        store
            .as_versioned()
            .expect("checked when opened")
            .history_retention_ms()
    }
}
