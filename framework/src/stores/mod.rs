//! State stores as processors use them: store specifications for a topology, and typed
//! handles a processor gets from its context: [`KeyValueStoreHandle`], [`WindowStoreHandle`]
//! and [`SessionStoreHandle`].
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

mod flushed;
mod key_value;
mod session;
mod supplier;
mod versioned;
mod window;

pub(crate) use flushed::{FlushedUpdates, SharedFlushes};
pub use key_value::KeyValueStoreHandle;
pub use session::{Session, SessionStoreHandle};
pub use streamtime_state::VersionedPut;
/// What a custom store implements (see [`KeyValueStoreSupplier`], [`WindowStoreSupplier`],
/// [`SessionStoreSupplier`]), and the in-memory stores one may wrap.
pub use streamtime_state::{
    InMemoryKeyValueStore, InMemorySessionStore, InMemoryWindowStore, KeyValueIter, KeyValueStore,
    SessionEntry, SessionIter, SessionStore, StateError, StateStore, WindowIter, WindowStore,
    WindowStoreConfig, WindowedEntry, WriteOutcome,
};
pub(crate) use supplier::Supplied;
pub use supplier::WindowStoreSupplier;
pub use supplier::{KeyValueStoreSupplier, SessionStoreSupplier, StoreLocation};
pub use versioned::{Versioned, VersionedStoreHandle};
pub use window::WindowStoreHandle;

use std::rc::Rc;
use std::sync::Arc;

use crate::error::StreamsError;
use crate::serdes::{Serde, SerdeError};
use crate::task::task_context::TaskContext;
pub(crate) use crate::task::task_context::{Shared, TaskStore};

/// Windowed and versioned changelogs keep data this much longer than the store, so a
/// restoring instance still finds every window or version the store would keep (as in Kafka
/// Streams).
const CHANGELOG_EXTRA_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

/// What kind of store a specification describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// Ordered key-value store.
    KeyValue,
    /// Values per key and window start, in time segments dropped after `retention_ms`.
    Window {
        /// How long a window is kept after its start (ms of stream time).
        retention_ms: i64,
        /// Keep every put under its own sequence number (stream-stream joins).
        retain_duplicates: bool,
    },
    /// Every key's values over time, readable as of any time within `history_retention_ms`
    /// behind the highest timestamp written (Kafka Streams' versioned store, KIP-889).
    Versioned {
        /// How long a replaced value stays readable (ms of stream time).
        history_retention_ms: i64,
    },
    /// Values per key and session `[start, end]`, dropped `retention_ms` after the end.
    Session {
        /// How long a session is kept after its end (ms of stream time).
        retention_ms: i64,
    },
}

/// A store to create in every task of the sub-topology whose processors use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSpec {
    pub(crate) name: String,
    pub(crate) kind: StoreKind,
    pub(crate) persistent: bool,
    pub(crate) logging: bool,
    /// Values carry the 8-byte timestamp of their latest update first (DSL aggregations and
    /// tables); interactive queries strip it.
    pub(crate) timestamped: bool,
    /// Key-value writes go through the record cache when the application has one.
    pub(crate) caching: bool,
    /// Changelog topic configs over the defaults of [`StoreSpec::changelog_configs`].
    pub(crate) changelog_overrides: Vec<(String, String)>,
    /// Why the DSL operator that made this spec cannot have it; registering fails with it.
    pub(crate) rejected: Option<String>,
    /// Opens the store instead of the built-in RocksDB and in-memory stores.
    pub(crate) supplier: Option<Supplied>,
    /// A table read from a topic that holds exactly what the store keeps: with
    /// `TopologyOptimization::ReuseSourceTopics`, that topic is the store's changelog.
    pub(crate) source_changelog: Option<SourceChangelog>,
}

/// The topic a table's store can restore from in place of a changelog, and the check a
/// restored row must pass: the table's serdes read its key and value.
#[derive(Clone)]
pub(crate) struct SourceChangelog {
    pub(crate) topic: String,
    pub(crate) readable: Readable,
}

/// Whether a table's serdes read a key and (unless a deletion) a value.
pub(crate) type Readable = Arc<dyn Fn(&[u8], Option<&[u8]>) -> bool + Send + Sync>;

impl std::fmt::Debug for SourceChangelog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SourceChangelog({})", self.topic)
    }
}

impl PartialEq for SourceChangelog {
    fn eq(&self, other: &Self) -> bool {
        self.topic == other.topic
    }
}

impl Eq for SourceChangelog {}

/// Entry point for store specifications.
pub struct Stores;

impl Stores {
    /// A key-value store: RocksDB-backed and changelogged (`<app>-<name>-changelog`) unless
    /// configured otherwise.
    pub fn key_value(name: impl Into<String>) -> StoreSpec {
        Self::spec(name, StoreKind::KeyValue)
    }

    /// A versioned key-value store keeping every value `history_retention` after it was
    /// replaced, for reads as of a time ([`crate::stores::VersionedStoreHandle`]); its key-value
    /// side shows the latest values. RocksDB-backed and changelogged unless configured
    /// otherwise.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streamtime::stores::Stores;
    /// let spec = Stores::versioned_key_value("prices", Duration::from_secs(3600));
    /// // The changelog keeps uncompacted what the history still needs, plus a day.
    /// assert!(spec.changelog_configs().contains(&("min.compaction.lag.ms".to_string(), "90000000".to_string())));
    /// ```
    pub fn versioned_key_value(
        name: impl Into<String>,
        history_retention: std::time::Duration,
    ) -> StoreSpec {
        Self::spec(
            name,
            StoreKind::Versioned {
                history_retention_ms: history_retention.as_millis() as i64,
            },
        )
    }

    /// A segmented window store keeping each window `retention` after its start (at least
    /// window size + grace). With `retain_duplicates`, every put is kept (joins).
    ///
    /// ```
    /// use std::time::Duration;
    /// use streamtime::stores::Stores;
    /// let spec = Stores::window("clicks-per-minute", Duration::from_secs(3600), false);
    /// assert_eq!(spec.changelog_configs()[0], ("cleanup.policy".to_string(), "compact,delete".to_string()));
    /// ```
    pub fn window(
        name: impl Into<String>,
        retention: std::time::Duration,
        retain_duplicates: bool,
    ) -> StoreSpec {
        Self::spec(
            name,
            StoreKind::Window {
                retention_ms: retention.as_millis() as i64,
                retain_duplicates,
            },
        )
    }

    /// A session store keeping each session `retention` after its end.
    pub fn session(name: impl Into<String>, retention: std::time::Duration) -> StoreSpec {
        Self::spec(
            name,
            StoreKind::Session {
                retention_ms: retention.as_millis() as i64,
            },
        )
    }

    fn spec(name: impl Into<String>, kind: StoreKind) -> StoreSpec {
        StoreSpec {
            name: name.into(),
            kind,
            persistent: true,
            logging: true,
            timestamped: false,
            caching: true,
            changelog_overrides: Vec::new(),
            rejected: None,
            supplier: None,
            source_changelog: None,
        }
    }

    /// A key-value store that `supplier` opens in each task, changelogged and cached like
    /// the built-in ones; on disk when the supplier says its stores are persistent (see
    /// [`KeyValueStoreSupplier`]).
    pub fn key_value_from(
        name: impl Into<String>,
        supplier: impl KeyValueStoreSupplier,
    ) -> StoreSpec {
        Self::key_value(name).with_supplier(Supplied::KeyValue(Arc::new(supplier)))
    }

    /// A window store (as [`Stores::window`]) that `supplier` opens in each task,
    /// changelogged and cached like the built-in ones (see [`WindowStoreSupplier`]).
    pub fn window_from(
        name: impl Into<String>,
        retention: std::time::Duration,
        retain_duplicates: bool,
        supplier: impl WindowStoreSupplier,
    ) -> StoreSpec {
        Self::window(name, retention, retain_duplicates)
            .with_supplier(Supplied::Window(Arc::new(supplier)))
    }

    /// A session store (as [`Stores::session`]) that `supplier` opens in each task,
    /// changelogged and cached like the built-in ones (see [`SessionStoreSupplier`]).
    pub fn session_from(
        name: impl Into<String>,
        retention: std::time::Duration,
        supplier: impl SessionStoreSupplier,
    ) -> StoreSpec {
        Self::session(name, retention).with_supplier(Supplied::Session(Arc::new(supplier)))
    }
}

impl StoreSpec {
    /// Opens the store with `supplier`, which also decides whether it is persistent. A
    /// supplier of another kind of store than the spec's (and any supplier behind a
    /// versioned store) is rejected when the spec is registered.
    pub(crate) fn with_supplier(mut self, supplier: Supplied) -> Self {
        let kind = match self.kind {
            StoreKind::KeyValue => "key-value",
            StoreKind::Window { .. } => "window",
            StoreKind::Session { .. } => "session",
            StoreKind::Versioned { .. } => "versioned",
        };
        if supplier.kind() != kind {
            self.rejected = Some(format!(
                "store {}: a {} store supplier cannot back a {kind} store",
                self.name,
                supplier.kind()
            ));
        }
        self.persistent = supplier.persistent();
        self.supplier = Some(supplier);
        self
    }

    /// Marks the values as timestamped (see the field).
    pub(crate) fn with_timestamped_values(mut self) -> Self {
        self.timestamped = true;
        self
    }

    /// Keep the data in memory (restored from the changelog from scratch on every start).
    pub fn in_memory(mut self) -> Self {
        self.persistent = false;
        self
    }

    /// Keep the data in RocksDB under the state directory (the default). A supplied store
    /// is persistent only if its supplier says so; asking for more fails the registration.
    pub fn persistent(mut self) -> Self {
        if let Some(s) = &self.supplier {
            if !s.persistent() {
                self.rejected = Some(format!(
                    "store {}: its supplier's stores are not persistent",
                    self.name
                ));
                return self;
            }
        }
        self.persistent = true;
        self
    }

    /// Mirror every write to a compacted changelog topic (default on). Without it, the store
    /// is lost with the instance.
    pub fn with_logging(mut self, logging: bool) -> Self {
        self.logging = logging;
        self
    }

    /// Let key-value writes go through the record cache (versioned stores have none) when the application has one
    /// (`StreamsConfig::cache_max_bytes`; default on); off, every write reaches the store.
    pub fn with_caching(mut self, caching: bool) -> Self {
        self.caching = caching;
        self
    }

    /// Sets a config of the changelog topic, over the defaults.
    ///
    /// ```
    /// use streamtime::stores::Stores;
    /// let spec = Stores::key_value("balances").with_changelog_config("min.insync.replicas", "2");
    /// assert!(spec.changelog_configs().contains(&("min.insync.replicas".to_string(), "2".to_string())));
    /// ```
    pub fn with_changelog_config(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        let key = key.into();
        self.changelog_overrides.retain(|(k, _)| *k != key);
        self.changelog_overrides.push((key, value.into()));
        self
    }

    /// Whether key-value writes go through the record cache (when there is one).
    pub fn is_cached(&self) -> bool {
        self.caching
    }

    /// The store name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind of store.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// Whether the store is changelogged.
    pub fn is_logged(&self) -> bool {
        self.logging
    }

    /// Whether the store writes a changelog topic of its own: it is logged, and is not a
    /// table restoring from its source topic (`reuse_source_topics`).
    pub(crate) fn has_own_changelog(&self, reuse_source_topics: bool) -> bool {
        self.logging && !(reuse_source_topics && self.source_changelog.is_some())
    }

    /// Whether the store is on disk.
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    /// Topic configs of the store's changelog: compacted; windowed stores also delete what
    /// is older than their retention plus one day, versioned stores compact nothing younger
    /// than their history retention plus one day; then the ones set with
    /// [`StoreSpec::with_changelog_config`], which win.
    pub fn changelog_configs(&self) -> Vec<(String, String)> {
        let mut configs: Vec<(String, String)> = match self.kind {
            StoreKind::KeyValue => vec![("cleanup.policy".into(), "compact".into())],
            // Compaction keeps one record per key; a replay needs every version the history
            // still holds, so compaction waits past the retention (as in Kafka Streams).
            StoreKind::Versioned {
                history_retention_ms,
            } => vec![
                ("cleanup.policy".into(), "compact".into()),
                (
                    "min.compaction.lag.ms".into(),
                    history_retention_ms
                        .saturating_add(CHANGELOG_EXTRA_RETENTION_MS)
                        .to_string(),
                ),
            ],
            StoreKind::Window { retention_ms, .. } | StoreKind::Session { retention_ms } => vec![
                ("cleanup.policy".into(), "compact,delete".into()),
                (
                    "retention.ms".into(),
                    retention_ms
                        .saturating_add(CHANGELOG_EXTRA_RETENTION_MS)
                        .to_string(),
                ),
            ],
        };
        for (key, value) in &self.changelog_overrides {
            configs.retain(|(k, _)| k != key);
            configs.push((key.clone(), value.clone()));
        }
        configs
    }
}

pub(crate) fn state_error(store: &str, e: StateError) -> StreamsError {
    StreamsError::State(format!("store {store}: {e}"))
}

/// What every typed handle shares: the store's name, serdes and the task it belongs to.
pub(crate) struct HandleBase<K, V> {
    pub name: Arc<str>,
    pub keys: Arc<dyn Serde<K>>,
    pub values: Arc<dyn Serde<V>>,
    pub task: Rc<TaskContext>,
}

impl<K, V> Clone for HandleBase<K, V> {
    fn clone(&self) -> Self {
        HandleBase {
            name: self.name.clone(),
            keys: self.keys.clone(),
            values: self.values.clone(),
            task: self.task.clone(),
        }
    }
}

impl<K: 'static, V: 'static> HandleBase<K, V> {
    /// Looks the store `name` up in the task, checks its shape with `pick`, and returns it
    /// with the handle base every typed handle is made of.
    pub(crate) fn open<S>(
        task: &Rc<TaskContext>,
        node: &str,
        name: &str,
        (keys, values): (Arc<dyn Serde<K>>, Arc<dyn Serde<V>>),
        pick: impl FnOnce(&TaskStore) -> Option<S>,
    ) -> Result<(Self, S), StreamsError> {
        let store = task.stores.get(name).ok_or_else(|| {
            StreamsError::Topology(format!(
                "processor {node} has no store called {name}; connect it with Topology::add_state_store"
            ))
        })?;
        let store = pick(store).ok_or_else(|| {
            StreamsError::Topology(format!(
                "processor {node} asked for store {name} as another shape than it is ({})",
                store.shape()
            ))
        })?;
        let base = HandleBase {
            name: name.into(),
            keys,
            values,
            task: task.clone(),
        };
        Ok((base, store))
    }

    pub(crate) fn serde_error(&self, what: &str, e: SerdeError) -> StreamsError {
        StreamsError::Serde {
            context: format!("{what} of store {}", self.name),
            message: e.0,
        }
    }

    pub(crate) fn key_bytes(&self, key: &K) -> Result<Vec<u8>, StreamsError> {
        let mut out = Vec::new();
        self.keys
            .serialize(key, &mut out)
            .map_err(|e| self.serde_error("key", e))?;
        Ok(out)
    }

    pub(crate) fn key(&self, bytes: &[u8]) -> Result<K, StreamsError> {
        self.keys
            .deserialize(bytes)
            .map_err(|e| self.serde_error("key", e))
    }

    pub(crate) fn value(&self, bytes: &[u8]) -> Result<V, StreamsError> {
        self.values
            .deserialize(bytes)
            .map_err(|e| self.serde_error("value", e))
    }

    /// The value's bytes; `None` when the serde writes it as null (a delete).
    pub(crate) fn value_bytes(&self, value: &V) -> Result<Option<Vec<u8>>, StreamsError> {
        crate::serdes::to_bytes(&*self.values, value).map_err(|e| self.serde_error("value", e))
    }

    /// Timestamp of the record (or punctuation) being processed: writes carry it to the
    /// changelog.
    pub(crate) fn timestamp(&self) -> i64 {
        self.task.state.borrow().current_timestamp
    }

    pub(crate) fn state_error(&self, e: StateError) -> StreamsError {
        state_error(&self.name, e)
    }
}
