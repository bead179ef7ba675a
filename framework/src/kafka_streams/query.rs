//! Interactive queries: read-only access to the stores of a running application's local
//! tasks, and which instance hosts a key, for building a query layer (an HTTP endpoint per
//! instance that answers for its own keys and forwards the others).
//!
//! Reads go to the stream thread that owns the store and run between two batches of records
//! (see the runtime's design note), so they see **every record processed so far**, committed
//! or not; under exactly-once, output of an aborted transaction can be taken back. A read
//! blocks for up to the handle's timeout (10 s by default) and fails while the thread
//! restores or rebalances; retry then. Query from outside the topology: a processor reading
//! through these handles would wait for its own thread (use its context's store handles).
//!
//! ```no_run
//! use streamtime::{KafkaStreams, StreamsBuilder, StreamsConfig, Consumed, Grouped, Materialized};
//! use streamtime::serdes::{StringSerde, I64Serde};
//!
//! # fn run() -> Result<(), streamtime::StreamsError> {
//! let builder = StreamsBuilder::new();
//! builder.stream("clicks", Consumed::with(StringSerde, StringSerde))
//!     .group_by_key()
//!     .count(Materialized::as_("clicks-per-user"));
//! let config = StreamsConfig::new("clicks-app", "localhost:9092")
//!     .application_server("clicks-1.internal:8080");
//! let mut app = KafkaStreams::new(builder.build()?, config)?;
//! app.start()?;
//!
//! let counts = app.key_value_store("clicks-per-user", StringSerde, I64Serde)?;
//! let user = "alice".to_string();
//! let where_ = app.query_metadata_for_key("clicks-per-user", &user, &StringSerde)?;
//! if where_.local {
//!     println!("alice clicked {:?} times", counts.get(&user)?);
//! } else {
//!     println!("ask {:?}", where_.host); // another instance's application_server
//! }
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use crate::error::StreamsError;
use crate::partitioner::partition_for_key;
use crate::runtime::app_shared::AppShared;
use crate::runtime::membership;
use crate::serdes::Serde;
use crate::stores::{state_error, StoreKind, TaskStore};
use crate::task::TaskId;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a key of a store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyQueryMetadata {
    /// The key's partition (of the store's changelog and its task's source topics).
    pub partition: i32,
    /// The task that holds the key.
    pub task: TaskId,
    /// Whether that task runs on this instance now.
    pub local: bool,
    /// The `application_server` of the instance running the task: this instance's when
    /// local, else the one the owning group member published; `None` when unknown (not
    /// configured, or the task is unassigned during a rebalance).
    pub host: Option<String>,
}

/// The store a handle reads: its name, its tasks, and the way to its threads.
#[derive(Clone)]
struct StoreTarget {
    name: Arc<str>,
    subtopology: u32,
    partitions: i32,
    /// Values start with an 8-byte timestamp to strip.
    timestamped: bool,
    shared: Arc<AppShared>,
    timeout: Duration,
}

impl StoreTarget {
    fn new(shared: &Arc<AppShared>, name: &str, kind: &str) -> Result<Self, StreamsError> {
        let spec = shared.topology.stores.get(name).ok_or_else(|| {
            StreamsError::Topology(format!("the topology has no store called {name}"))
        })?;
        let matches = match spec.kind {
            // A versioned store answers key queries with its latest values.
            StoreKind::KeyValue | StoreKind::Versioned { .. } => kind == "key-value",
            StoreKind::Window { .. } => kind == "window",
            StoreKind::Session { .. } => kind == "session",
        };
        if !matches {
            return Err(StreamsError::Topology(format!(
                "store {name} is not a {kind} store ({:?})",
                spec.kind
            )));
        }
        let sub = shared
            .subs
            .iter()
            .find(|s| s.stores.iter().any(|s| s == name))
            .ok_or_else(|| {
                StreamsError::Topology(format!("store {name} is connected to no processor"))
            })?;
        let app = &shared.config.application_id;
        let partitions = sub
            .source_topics
            .iter()
            .filter_map(|t| shared.partition_counts.get(&t.resolve(app)).copied())
            .max()
            .unwrap_or(1);
        Ok(StoreTarget {
            name: name.into(),
            subtopology: sub.id,
            partitions,
            timestamped: spec.timestamped,
            shared: shared.clone(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// A stored value as the user's serde wrote it.
    fn value<V: 'static>(&self, serde: &dyn Serde<V>, bytes: &[u8]) -> Result<V, StreamsError> {
        let bytes = match (self.timestamped, bytes.get(8..)) {
            (false, _) => bytes,
            (true, Some(rest)) => rest,
            (true, None) => {
                return Err(StreamsError::Serde {
                    context: format!("value of store {}", self.name),
                    message: "timestamped value shorter than its 8-byte timestamp".into(),
                })
            }
        };
        serde
            .deserialize(bytes)
            .map_err(|e| serde_error(&self.name, "value", e))
    }

    fn partition_of(&self, key: &[u8]) -> i32 {
        partition_for_key(key, self.partitions)
    }

    /// Runs `read` on the local instance of the store in the task of `partition`.
    fn read_partition<T: Send + 'static>(
        &self,
        partition: i32,
        read: impl Fn(&TaskStore) -> Result<T, StreamsError> + Clone + Send + 'static,
    ) -> Result<T, StreamsError> {
        let answers = self
            .shared
            .queries
            .ask(&self.name, self.timeout, move |stores| {
                stores
                    .iter()
                    .find(|(id, _)| id.partition == partition)
                    .map(|(_, store)| read(store))
                    .transpose()
            })?;
        answers.into_iter().flatten().next().ok_or_else(|| {
            StreamsError::State(format!(
                "store {}: partition {partition} is not hosted by this instance \
                 (see KafkaStreams::query_metadata_for_key)",
                self.name
            ))
        })
    }

    /// Runs `read` on every local instance of the store; the answers in task order.
    fn read_all<T: Send + 'static>(
        &self,
        read: impl Fn(&TaskStore) -> Result<T, StreamsError> + Clone + Send + 'static,
    ) -> Result<Vec<T>, StreamsError> {
        let answers = self
            .shared
            .queries
            .ask(&self.name, self.timeout, move |stores| {
                stores
                    .iter()
                    .map(|(id, store)| Ok((*id, read(store)?)))
                    .collect::<Result<Vec<_>, StreamsError>>()
            })?;
        let mut all: Vec<(TaskId, T)> = answers.into_iter().flatten().collect();
        all.sort_by_key(|(id, _)| *id);
        Ok(all.into_iter().map(|(_, t)| t).collect())
    }
}

fn serde_error(store: &str, what: &str, e: crate::serdes::SerdeError) -> StreamsError {
    StreamsError::Serde {
        context: format!("{what} of store {store}"),
        message: e.0,
    }
}

fn to_bytes<T: 'static>(
    store: &str,
    serde: &dyn Serde<T>,
    value: &T,
) -> Result<Vec<u8>, StreamsError> {
    let mut out = Vec::new();
    serde
        .serialize(value, &mut out)
        .map_err(|e| serde_error(store, "key", e))?;
    Ok(out)
}

/// Read-only view of a key-value store over this instance's tasks
/// ([`crate::KafkaStreams::key_value_store`]). Cheap to clone and usable from any thread.
pub struct ReadOnlyKeyValueStore<K, V> {
    target: StoreTarget,
    keys: Arc<dyn Serde<K>>,
    values: Arc<dyn Serde<V>>,
}

impl<K, V> Clone for ReadOnlyKeyValueStore<K, V> {
    fn clone(&self) -> Self {
        ReadOnlyKeyValueStore {
            target: self.target.clone(),
            keys: self.keys.clone(),
            values: self.values.clone(),
        }
    }
}

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

impl<K: 'static, V: 'static> ReadOnlyKeyValueStore<K, V> {
    pub(crate) fn new(
        shared: &Arc<AppShared>,
        name: &str,
        keys: impl Serde<K>,
        values: impl Serde<V>,
    ) -> Result<Self, StreamsError> {
        Ok(ReadOnlyKeyValueStore {
            target: StoreTarget::new(shared, name, "key-value")?,
            keys: Arc::new(keys),
            values: Arc::new(values),
        })
    }

    /// How long a read waits for the stream threads (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.target.timeout = timeout;
        self
    }

    /// The value of `key`, from the task of the key's partition. Fails when that task does
    /// not run on this instance.
    pub fn get(&self, key: &K) -> Result<Option<V>, StreamsError> {
        let name = self.target.name.clone();
        let key = to_bytes(&name, &*self.keys, key)?;
        let partition = self.target.partition_of(&key);
        let bytes = self
            .target
            .read_partition(partition, move |store| match store {
                TaskStore::KeyValue(s) => s.borrow().get(&key).map_err(|e| state_error(&name, e)),
                _ => Ok(None),
            })?;
        bytes
            .map(|b| self.target.value(&*self.values, &b))
            .transpose()
    }

    /// Entries with keys in `[from, to]` (serialized key order, both inclusive) over every
    /// local task, in serialized key order.
    pub fn range(&self, from: &K, to: &K) -> Result<Vec<(K, V)>, StreamsError> {
        let name = self.target.name.clone();
        let from = to_bytes(&name, &*self.keys, from)?;
        let to = to_bytes(&name, &*self.keys, to)?;
        self.collect(move |store| match store {
            TaskStore::KeyValue(s) => s
                .borrow()
                .range(&from, &to)
                .collect::<Result<Entries, _>>()
                .map_err(|e| state_error(&name, e)),
            _ => Ok(Vec::new()),
        })
    }

    /// Every entry over every local task, in serialized key order.
    pub fn all(&self) -> Result<Vec<(K, V)>, StreamsError> {
        let name = self.target.name.clone();
        self.collect(move |store| match store {
            TaskStore::KeyValue(s) => s
                .borrow()
                .all()
                .collect::<Result<Entries, _>>()
                .map_err(|e| state_error(&name, e)),
            _ => Ok(Vec::new()),
        })
    }

    fn collect(
        &self,
        read: impl Fn(&TaskStore) -> Result<Entries, StreamsError> + Clone + Send + 'static,
    ) -> Result<Vec<(K, V)>, StreamsError> {
        let mut entries: Entries = self.target.read_all(read)?.into_iter().flatten().collect();
        entries.sort();
        let name = &self.target.name;
        entries
            .into_iter()
            .map(|(k, v)| {
                Ok((
                    self.keys
                        .deserialize(&k)
                        .map_err(|e| serde_error(name, "key", e))?,
                    self.target.value(&*self.values, &v)?,
                ))
            })
            .collect()
    }
}

/// Read-only view of a window store over this instance's tasks
/// ([`crate::KafkaStreams::window_store`]). Cheap to clone and usable from any thread.
pub struct ReadOnlyWindowStore<K, V> {
    target: StoreTarget,
    keys: Arc<dyn Serde<K>>,
    values: Arc<dyn Serde<V>>,
}

impl<K, V> Clone for ReadOnlyWindowStore<K, V> {
    fn clone(&self) -> Self {
        ReadOnlyWindowStore {
            target: self.target.clone(),
            keys: self.keys.clone(),
            values: self.values.clone(),
        }
    }
}

type WindowEntries = Vec<(Vec<u8>, i64, Vec<u8>)>;

impl<K: 'static, V: 'static> ReadOnlyWindowStore<K, V> {
    pub(crate) fn new(
        shared: &Arc<AppShared>,
        name: &str,
        keys: impl Serde<K>,
        values: impl Serde<V>,
    ) -> Result<Self, StreamsError> {
        Ok(ReadOnlyWindowStore {
            target: StoreTarget::new(shared, name, "window")?,
            keys: Arc::new(keys),
            values: Arc::new(values),
        })
    }

    /// How long a read waits for the stream threads (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.target.timeout = timeout;
        self
    }

    /// `key`'s windows starting in `[time_from, time_to]` (both inclusive), ascending by
    /// start: `(start, value)`; from the task of the key's partition, which must run on this
    /// instance.
    pub fn fetch(
        &self,
        key: &K,
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<(i64, V)>, StreamsError> {
        let name = self.target.name.clone();
        let key = to_bytes(&name, &*self.keys, key)?;
        let partition = self.target.partition_of(&key);
        let found = self
            .target
            .read_partition(partition, move |store| match store {
                TaskStore::Window(s) => s
                    .borrow()
                    .fetch(&key, time_from, time_to)
                    .map(|e| e.map(|e| (e.window_start, e.value)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| state_error(&name, e)),
                _ => Ok(Vec::new()),
            })?;
        found
            .into_iter()
            .map(|(start, v)| Ok((start, self.target.value(&*self.values, &v)?)))
            .collect()
    }

    /// Every key's windows starting in `[time_from, time_to]` over every local task:
    /// `(key, start, value)` by start, then serialized key.
    pub fn fetch_all(
        &self,
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<(K, i64, V)>, StreamsError> {
        let name = self.target.name.clone();
        let mut found: WindowEntries = self
            .target
            .read_all(move |store| match store {
                TaskStore::Window(s) => s
                    .borrow()
                    .fetch_all(time_from, time_to)
                    .map(|e| e.map(|e| (e.key, e.window_start, e.value)))
                    .collect::<Result<WindowEntries, _>>()
                    .map_err(|e| state_error(&name, e)),
                _ => Ok(Vec::new()),
            })?
            .into_iter()
            .flatten()
            .collect();
        found.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        let name = &self.target.name;
        found
            .into_iter()
            .map(|(k, start, v)| {
                Ok((
                    self.keys
                        .deserialize(&k)
                        .map_err(|e| serde_error(name, "key", e))?,
                    start,
                    self.target.value(&*self.values, &v)?,
                ))
            })
            .collect()
    }
}

/// Where `key` of `store` lives (see [`crate::KafkaStreams::query_metadata_for_key`]).
pub(crate) fn metadata_for_key<K: 'static>(
    shared: &Arc<AppShared>,
    store: &str,
    key: &K,
    serializer: &dyn Serde<K>,
) -> Result<KeyQueryMetadata, StreamsError> {
    let target = StoreTarget::new_any(shared, store)?;
    let bytes = to_bytes(store, serializer, key)?;
    let partition = target.partition_of(&bytes);
    let task = TaskId {
        subtopology: target.subtopology,
        partition,
    };
    let local = shared.status().iter().any(|t| t.id == task);
    let config = &shared.config;
    let host = if local {
        config.application_server.clone()
    } else {
        membership::server_running(shared, task, DEFAULT_TIMEOUT)?
    };
    Ok(KeyQueryMetadata {
        partition,
        task,
        local,
        host,
    })
}

impl StoreTarget {
    /// A target for a store of any kind.
    fn new_any(shared: &Arc<AppShared>, name: &str) -> Result<Self, StreamsError> {
        let kind = match shared.topology.stores.get(name).map(|s| s.kind) {
            Some(StoreKind::KeyValue | StoreKind::Versioned { .. }) => "key-value",
            Some(StoreKind::Window { .. }) => "window",
            Some(StoreKind::Session { .. }) => "session",
            None => "unknown",
        };
        Self::new(shared, name, kind)
    }
}
