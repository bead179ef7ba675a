//! Global stores: one copy per instance of each global table's topic (every partition),
//! shared read-only by every task of every stream thread, written by the global thread (or
//! the test driver). Entries are the topic's key bytes and, as in a table's store, the
//! record's timestamp (8 bytes big-endian) followed by its value bytes; a null value deletes.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::topology::Topology;

/// One global table's entries.
pub(crate) type GlobalStore = Arc<RwLock<BTreeMap<Vec<u8>, Vec<u8>>>>;

/// The global stores of an instance, by store name, with the topic each follows.
#[derive(Clone, Default)]
pub(crate) struct GlobalStores(Arc<BTreeMap<String, (String, GlobalStore)>>);

impl GlobalStores {
    /// An empty store for each global table of `topology`.
    pub(crate) fn for_topology(topology: &Topology) -> Self {
        GlobalStores(Arc::new(
            topology
                .global_tables
                .iter()
                .map(|(store, topic)| (store.clone(), (topic.clone(), GlobalStore::default())))
                .collect(),
        ))
    }

    /// The store called `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&GlobalStore> {
        self.0.get(name).map(|(_, s)| s)
    }

    /// The stores that follow `topic`.
    pub(crate) fn of_topic<'a>(&'a self, topic: &'a str) -> impl Iterator<Item = &'a GlobalStore> {
        self.0
            .values()
            .filter(move |(t, _)| t == topic)
            .map(|(_, s)| s)
    }

    /// The topics the stores follow.
    pub(crate) fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.0.values().map(|(t, _)| t.clone()).collect();
        topics.sort();
        topics.dedup();
        topics
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Applies one record of a global table's topic to `store`.
pub(crate) fn apply(store: &GlobalStore, key: Option<&[u8]>, value: Option<&[u8]>, timestamp: i64) {
    // A record without a key names no row (Kafka Streams drops it too).
    let Some(key) = key else {
        return;
    };
    let mut entries = store.write().unwrap_or_else(|e| e.into_inner());
    match value {
        Some(v) => {
            let mut stored = Vec::with_capacity(8 + v.len());
            stored.extend_from_slice(&timestamp.to_be_bytes());
            stored.extend_from_slice(v);
            entries.insert(key.to_vec(), stored);
        }
        None => {
            entries.remove(key);
        }
    }
}
