//! Custom stores (Kafka Streams' `KeyValueBytesStoreSupplier`, `WindowBytesStoreSupplier`
//! and `SessionBytesStoreSupplier`): a supplier opens a store of your own in every task that
//! uses it. The framework puts its change logging and record cache above your store and
//! restores it from its changelog like any other, so the store only has to keep bytes in
//! unsigned byte order (window and session stores: in the layouts of
//! [`streamtime_state::window::window_key`] and
//! [`streamtime_state::session::session_key`], dropping what
//! their retention no longer covers).
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
use streamtime_state::{KeyValueStore, SessionStore, StateError, WindowStore, WindowStoreConfig};

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

/// Opens one task's instance of a custom window store (Kafka Streams'
/// `WindowBytesStoreSupplier`), for windowed aggregations
/// ([`crate::Materialized::with_window_store_supplier`]) and Processor API stores
/// ([`crate::stores::Stores::window_from`]).
///
/// ```
/// use std::time::Duration;
/// use streamtime::stores::{InMemoryWindowStore, StateError, StoreLocation, Stores};
/// use streamtime::stores::{WindowStore, WindowStoreConfig, WindowStoreSupplier};
///
/// /// The built-in in-memory store, as a stand-in for an engine of your own.
/// struct MyWindows;
///
/// impl WindowStoreSupplier for MyWindows {
///     fn open(
///         &self,
///         at: &StoreLocation<'_>,
///         config: WindowStoreConfig,
///     ) -> Result<Box<dyn WindowStore>, StateError> {
///         Ok(Box::new(InMemoryWindowStore::new(at.name, config)?))
///     }
/// }
///
/// let spec = Stores::window_from("clicks", Duration::from_secs(3600), false, MyWindows);
/// assert!(!spec.is_persistent());
/// ```
pub trait WindowStoreSupplier: Send + Sync + 'static {
    /// Opens the store of one task, keeping what `config` says (retention, duplicates); see
    /// [`KeyValueStoreSupplier::open`] for what a persistent store must hold.
    fn open(
        &self,
        location: &StoreLocation<'_>,
        config: WindowStoreConfig,
    ) -> Result<Box<dyn WindowStore>, StateError>;

    /// Whether what the store holds survives a restart in its directory (default: no).
    fn persistent(&self) -> bool {
        false
    }
}

/// Opens one task's instance of a custom session store (Kafka Streams'
/// `SessionBytesStoreSupplier`), for session aggregations
/// ([`crate::Materialized::with_session_store_supplier`]) and Processor API stores
/// ([`crate::stores::Stores::session_from`]).
///
/// ```
/// use std::time::Duration;
/// use streamtime::stores::{InMemorySessionStore, SessionStore, SessionStoreSupplier};
/// use streamtime::stores::{StateError, StoreLocation, Stores};
///
/// struct MySessions;
///
/// impl SessionStoreSupplier for MySessions {
///     fn open(
///         &self,
///         at: &StoreLocation<'_>,
///         retention_ms: i64,
///     ) -> Result<Box<dyn SessionStore>, StateError> {
///         Ok(Box::new(InMemorySessionStore::new(at.name, retention_ms)?))
///     }
/// }
///
/// let spec = Stores::session_from("visits", Duration::from_secs(3600), MySessions);
/// assert!(!spec.is_persistent());
/// ```
pub trait SessionStoreSupplier: Send + Sync + 'static {
    /// Opens the store of one task, keeping each session `retention_ms` of stream time
    /// after its end; see [`KeyValueStoreSupplier::open`] for what a persistent store must
    /// hold.
    fn open(
        &self,
        location: &StoreLocation<'_>,
        retention_ms: i64,
    ) -> Result<Box<dyn SessionStore>, StateError>;

    /// Whether what the store holds survives a restart in its directory (default: no).
    fn persistent(&self) -> bool {
        false
    }
}

/// A supplier in a store specification; specifications are equal when they share one.
#[derive(Clone)]
pub(crate) enum Supplied {
    KeyValue(Arc<dyn KeyValueStoreSupplier>),
    Window(Arc<dyn WindowStoreSupplier>),
    Session(Arc<dyn SessionStoreSupplier>),
}

impl Supplied {
    /// Whether the supplier's stores survive a restart.
    pub(crate) fn persistent(&self) -> bool {
        match self {
            Supplied::KeyValue(s) => s.persistent(),
            Supplied::Window(s) => s.persistent(),
            Supplied::Session(s) => s.persistent(),
        }
    }

    /// The kind of store the supplier opens, as error messages name it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Supplied::KeyValue(_) => "key-value",
            Supplied::Window(_) => "window",
            Supplied::Session(_) => "session",
        }
    }

    /// The supplier's address, which identifies it.
    fn address(&self) -> *const () {
        match self {
            Supplied::KeyValue(s) => Arc::as_ptr(s) as *const (),
            Supplied::Window(s) => Arc::as_ptr(s) as *const (),
            Supplied::Session(s) => Arc::as_ptr(s) as *const (),
        }
    }
}

impl fmt::Debug for Supplied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} store supplier", self.kind())
    }
}

impl PartialEq for Supplied {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.address(), other.address())
    }
}

impl Eq for Supplied {}
