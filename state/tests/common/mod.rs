//! Store factories shared by the test binaries: contract cases are written once, generic over
//! a [`Backend`], and run against both the in-memory and the RocksDB stores.
#![allow(dead_code)] // each test binary uses a different subset

use streamtime_state::*;
use tempfile::TempDir;

/// Makes stores of one kind.
pub trait Backend {
    type Kv: KeyValueBackend;
    fn kv(&self, name: &str) -> Self::Kv;
    fn window(&self, name: &str, config: WindowStoreConfig) -> SegmentedWindowStore<Self::Kv>;
    fn session(&self, name: &str, retention_ms: i64) -> SegmentedSessionStore<Self::Kv>;
}

pub struct Memory;

impl Backend for Memory {
    type Kv = InMemoryKeyValueStore;
    fn kv(&self, name: &str) -> Self::Kv {
        InMemoryKeyValueStore::new(name)
    }
    fn window(&self, name: &str, config: WindowStoreConfig) -> InMemoryWindowStore {
        InMemoryWindowStore::new(name, config).unwrap()
    }
    fn session(&self, name: &str, retention_ms: i64) -> InMemorySessionStore {
        InMemorySessionStore::new(name, retention_ms).unwrap()
    }
}

/// A temporary state directory with one locked task directory. Stores made from it must be
/// dropped before it (they are, when the test case consumes them).
pub struct Rocks {
    pub dir: TempDir,
    pub task: TaskDirectory,
    pub resources: RocksResources,
}

impl Rocks {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let task = StateDirectory::new(dir.path(), "app")
            .unwrap()
            .lock_task("0_0")
            .unwrap();
        let resources = RocksResources::new(&RocksConfig::with_total_memory(8 << 20)).unwrap();
        Rocks {
            dir,
            task,
            resources,
        }
    }
}

impl Backend for Rocks {
    type Kv = RocksKeyValueStore;
    fn kv(&self, name: &str) -> Self::Kv {
        RocksKeyValueStore::open(&self.task, name, &self.resources).unwrap()
    }
    fn window(&self, name: &str, config: WindowStoreConfig) -> RocksWindowStore {
        RocksWindowStore::open(&self.task, name, config, &self.resources).unwrap()
    }
    fn session(&self, name: &str, retention_ms: i64) -> RocksSessionStore {
        RocksSessionStore::open(&self.task, name, retention_ms, &self.resources).unwrap()
    }
}

/// Instantiates each generic case `fn case<B: Backend>(b: &B)` once per backend.
macro_rules! contract_tests {
    ($($case:ident),* $(,)?) => {
        mod in_memory {
            $( #[test] fn $case() { super::$case(&crate::common::Memory); } )*
        }
        mod rocksdb {
            $( #[test] fn $case() { super::$case(&crate::common::Rocks::new()); } )*
        }
    };
}

pub fn keys(iter: KeyValueIter<'_>) -> Vec<Vec<u8>> {
    iter.map(|kv| kv.unwrap().0).collect()
}

pub fn entries(iter: KeyValueIter<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    iter.collect::<Result<_, _>>().unwrap()
}

/// `(key, start, value)` triples of a window scan.
pub fn windows(iter: WindowIter<'_>) -> Vec<(Vec<u8>, i64, Vec<u8>)> {
    iter.map(|e| {
        let e = e.unwrap();
        (e.key, e.window_start, e.value)
    })
    .collect()
}

/// `(start, end, value)` triples of a session scan.
pub fn sessions(iter: SessionIter<'_>) -> Vec<(i64, i64, Vec<u8>)> {
    iter.map(|s| {
        let s = s.unwrap();
        (s.start, s.end, s.value)
    })
    .collect()
}

/// A deterministic pseudo-random sequence (xorshift), so a failure replays exactly.
pub struct Xorshift(pub u64);

impl Xorshift {
    /// The next number in `[0, n)`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}
