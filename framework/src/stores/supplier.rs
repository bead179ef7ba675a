//! Custom key-value stores (Kafka Streams' `KeyValueBytesStoreSupplier`): a
//! [`KeyValueStoreSupplier`] opens a store of your own in every task that uses it. The
//! framework puts its change logging and record cache above your store and restores it from
//! its changelog like any other, so the store only has to keep bytes in unsigned byte order.
//!
//! ```
//! use streamtime::stores::{InMemoryKeyValueStore, KeyValueStore, KeyValueStoreSupplier};
//! use streamtime::stores::{StateError, StoreLocation, Stores};
//! use streamtime::{Consumed, Materialized, StreamsBuilder};
//! use streamtime::serdes::StringSerde;
//!
//! /// Hands out in-memory stores; a real one would open its own engine in the directory.
//! struct MyStores;
//!
//! impl KeyValueStoreSupplier for MyStores {
//!     fn open(&self, at: &StoreLocation<'_>) -> Result<Box<dyn KeyValueStore>, StateError> {
//!         Ok(Box::new(InMemoryKeyValueStore::new(at.name)))
//!     }
//! }
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream("words", Consumed::with(StringSerde, StringSerde))
//!     .group_by_key()
//!     .count(Materialized::as_("counts").with_store_supplier(MyStores));
//! // The same supplier behind a store of the Processor API:
//! let spec = Stores::key_value_from("seen", MyStores);
//! assert!(!spec.is_persistent());
//! # let _ = builder.build().unwrap();
//! ```

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::task::TaskId;
use streamtime_state::{KeyValueStore, StateError};

/// Where one task's instance of a supplied store lives.
#[derive(Debug, Clone, Copy)]
pub struct StoreLocation<'a> {
    /// The store's name.
    pub name: &'a str,
    /// The task the instance belongs to.
    pub task: TaskId,
    /// A directory of the store's own under the task's state directory, kept between runs
    /// and wiped with the task's state when its checkpoint cannot be trusted. `None` for a
    /// store that is not persistent, and in the test driver.
    pub directory: Option<&'a Path>,
}

/// Opens one task's instance of a custom key-value store.
pub trait KeyValueStoreSupplier: Send + Sync + 'static {
    /// Opens (creating it if need be) the store of one task. A persistent store opened over
    /// its directory must hold what it held when the task last flushed it: the framework
    /// restores only the changelog records after its checkpoint.
    fn open(&self, location: &StoreLocation<'_>) -> Result<Box<dyn KeyValueStore>, StateError>;

    /// Whether what the store holds survives a restart in its directory (default: no; the
    /// store is then restored from the start of its changelog on every start).
    fn persistent(&self) -> bool {
        false
    }
}

/// A supplier in a store specification; specifications are equal when they share one.
#[derive(Clone)]
pub(crate) struct Supplied(pub(crate) Arc<dyn KeyValueStoreSupplier>);

impl fmt::Debug for Supplied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyValueStoreSupplier")
    }
}

impl PartialEq for Supplied {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Supplied {}
