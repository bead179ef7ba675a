//! Global stores: one copy per instance of each global table's topic (every partition),
//! shared read-only by every task of every stream thread, written by the global thread (or
//! the test driver). Entries are the topic's key bytes and, as in a table's store, the
//! record's timestamp (8 bytes big-endian) followed by its value bytes; a null value deletes.
//!
//! Persistent global stores (the default) live in RocksDB under `<state dir>/<app>/global`,
//! with a checkpoint per topic (`.checkpoint-<topic>`: the offset of the last record of each
//! partition the stores hold), so a restart reads only what follows; in-memory ones read
//! their topic from the beginning on every start.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::error::StreamsError;
use crate::topology::Topology;
use streamtime_state::{
    CheckpointFile, InMemoryKeyValueStore, KeyValueStore, RocksKeyValueStore, RocksResources,
    StateDirectory, StateError, StateStore, TaskDirectory,
};

/// The directory of the instance's global stores (Kafka Streams' `global` task directory).
const GLOBAL_DIR: &str = "global";

/// One global table's entries. A mutex, not a read-write lock: the RocksDB store buffers
/// writes behind interior mutability, so it is `Send` but not `Sync`; each read holds the
/// lock for one lookup.
#[derive(Clone)]
pub(crate) struct GlobalStore {
    name: Arc<str>,
    store: Arc<Mutex<Box<dyn KeyValueStore>>>,
}

impl GlobalStore {
    fn new(name: &str, store: Box<dyn KeyValueStore>) -> Self {
        GlobalStore {
            name: name.into(),
            store: Arc::new(Mutex::new(store)),
        }
    }

    /// The store's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Box<dyn KeyValueStore>> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn error(&self, e: StateError) -> StreamsError {
        StreamsError::State(format!("global store {}: {e}", self.name))
    }

    /// The stored bytes of `key`.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StreamsError> {
        self.lock().get(key).map_err(|e| self.error(e))
    }

    /// Applies one record of the store's topic.
    pub(crate) fn apply(
        &self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
    ) -> Result<(), StreamsError> {
        // A record without a key names no row (Kafka Streams drops it too).
        let Some(key) = key else {
            return Ok(());
        };
        let mut store = self.lock();
        match value {
            Some(v) => {
                let mut stored = Vec::with_capacity(8 + v.len());
                stored.extend_from_slice(&timestamp.to_be_bytes());
                stored.extend_from_slice(v);
                store.put(key, &stored, timestamp)
            }
            None => store.delete(key, timestamp),
        }
        .map_err(|e| self.error(e))
    }

    /// Makes everything applied so far durable (before a checkpoint claims it).
    pub(crate) fn flush(&self) -> Result<(), StreamsError> {
        self.lock().flush().map_err(|e| self.error(e))
    }

    /// Deletes every entry: the store no longer matches its checkpoint's topic.
    pub(crate) fn clear(&self) -> Result<(), StreamsError> {
        let mut store = self.lock();
        let keys: Vec<Vec<u8>> = store
            .all()
            .map(|kv| kv.map(|(k, _)| k))
            .collect::<Result<_, _>>()
            .map_err(|e| self.error(e))?;
        for key in keys {
            store.delete(&key, 0).map_err(|e| self.error(e))?;
        }
        store.flush().map_err(|e| self.error(e))
    }
}

/// The stores following one topic.
#[derive(Clone)]
pub(crate) struct TopicStores {
    pub stores: Vec<GlobalStore>,
    /// Where the stores record how far they have read, when every one of them is persistent
    /// (an in-memory one needs the whole topic on every start anyway).
    pub checkpoint: Option<CheckpointFile>,
}

/// The global stores of an instance, by store name, with the topic each follows.
#[derive(Clone, Default)]
pub(crate) struct GlobalStores {
    stores: Arc<BTreeMap<String, (String, GlobalStore)>>,
    /// Holds the global directory's lock while the stores are open.
    directory: Option<TaskDirectory>,
}

impl GlobalStores {
    /// An empty in-memory store for each global table of `topology` (the test driver).
    pub(crate) fn in_memory(topology: &Topology) -> Self {
        let stores = topology
            .global_tables
            .iter()
            .map(|(name, spec)| {
                let store = GlobalStore::new(name, Box::new(InMemoryKeyValueStore::new(name)));
                (name.clone(), (spec.topic.clone(), store))
            })
            .collect();
        GlobalStores {
            stores: Arc::new(stores),
            directory: None,
        }
    }

    /// Opens the global stores of `topology`: persistent ones in the instance's global
    /// directory (locked while open), the others in memory.
    pub(crate) fn open(
        topology: &Topology,
        state_dir: Option<&StateDirectory>,
        rocks: Option<&RocksResources>,
    ) -> Result<Self, StreamsError> {
        let persistent = topology.global_tables.values().any(|s| s.persistent);
        let disk = match (persistent, state_dir, rocks) {
            (false, _, _) => None,
            (true, Some(dir), Some(rocks)) => Some((
                dir.lock_task(GLOBAL_DIR)
                    .map_err(|e| StreamsError::State(format!("global stores: {e}")))?,
                rocks,
            )),
            (true, _, _) => {
                return Err(StreamsError::State(
                    "persistent global stores need a state directory".into(),
                ))
            }
        };
        let mut stores = BTreeMap::new();
        for (name, spec) in &topology.global_tables {
            let store: Box<dyn KeyValueStore> = match &disk {
                Some((dir, rocks)) if spec.persistent => Box::new(
                    RocksKeyValueStore::open(dir, name, rocks)
                        .map_err(|e| StreamsError::State(format!("global store {name}: {e}")))?,
                ),
                _ => Box::new(InMemoryKeyValueStore::new(name)),
            };
            stores.insert(
                name.clone(),
                (spec.topic.clone(), GlobalStore::new(name, store)),
            );
        }
        Ok(GlobalStores {
            stores: Arc::new(stores),
            directory: disk.map(|(dir, _)| dir),
        })
    }

    /// The store called `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&GlobalStore> {
        self.stores.get(name).map(|(_, s)| s)
    }

    /// The stores that follow `topic`, and their checkpoint.
    pub(crate) fn of_topic(&self, topic: &str) -> TopicStores {
        let stores: Vec<(&String, &GlobalStore)> = self
            .stores
            .iter()
            .filter(|(_, (t, _))| t == topic)
            .map(|(name, (_, s))| (name, s))
            .collect();
        let all_on_disk = stores.iter().all(|(_, s)| s.lock().persistent());
        let checkpoint = match &self.directory {
            Some(dir) if all_on_disk => Some(CheckpointFile::new(
                dir.path().join(format!(".checkpoint-{topic}")),
            )),
            _ => None,
        };
        TopicStores {
            stores: stores.into_iter().map(|(_, s)| s.clone()).collect(),
            checkpoint,
        }
    }

    /// The topics the stores follow.
    pub(crate) fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.stores.values().map(|(t, _)| t.clone()).collect();
        topics.sort();
        topics.dedup();
        topics
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.stores.is_empty()
    }
}
