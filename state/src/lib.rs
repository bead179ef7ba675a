//! State stores for streamtime: key-value, window and session stores over RocksDB and
//! memory, with change logging, write-back caching, checkpoints and the task directory lock.
//!
//! This crate knows nothing about Kafka, and stores bytes: the framework's serdes turn typed
//! keys and values into them. The runtime hands each logged store a
//! [`ChangelogWriter`] and feeds changelog records back through [`StateStore::restore`].
//!
//! # Layers
//!
//! A store is built inside out, each layer implementing the same trait:
//!
//! ```text
//! CachingKeyValueStore          folds updates, writes them out in write order on flush
//!   └ LoggedKeyValueStore       sends every applied write to the changelog
//!       └ RocksKeyValueStore    (or InMemoryKeyValueStore, its twin)
//! ```
//!
//! Window and session stores have the same `Caching*` and `Logged*` layers (a window store
//! that retains duplicates, for joins, has nothing to fold and passes writes straight through
//! its cache), and versioned stores ([`VersionedStore`], values over time for as-of reads)
//! only [`LoggedVersionedStore`]: a cache would fold the versions they keep. Every
//! write carries the timestamp of the record that caused it, which the changelog layer sends
//! along. Each layer
//! gets [`StateStore`] by implementing [`WrappedStateStore`], which passes the lifecycle calls
//! (flush, restore, ...) down to the layer below.
//!
//! # Segments
//!
//! Window and session stores keep data in time segments of `max(retention / 2, 60 s)`,
//! stored as key prefixes (`segment id`, 8 bytes big-endian) in a single backend store; an
//! expired segment is dropped with one range delete. The same code drives the RocksDB and
//! in-memory twins ([`SegmentedWindowStore`] and [`SegmentedSessionStore`] over a
//! [`KeyValueBackend`]). Stream time and the duplicate sequence counter are saved on flush,
//! so a reopened RocksDB store resumes where it was.
//!
//! # Example
//!
//! ```
//! use streamtime_state::*;
//! let log = MemoryChangelog::new();
//! let logged = LoggedKeyValueStore::new(InMemoryKeyValueStore::new("counts"), log.clone());
//! let mut store = CachingKeyValueStore::new(logged, 1 << 20);
//! store.put(b"a", b"1", 10)?;
//! store.put(b"a", b"2", 20)?;
//! store.flush()?; // commit: one changelog record for two updates
//! assert_eq!(log.records(), vec![ChangelogRecord { key: b"a".to_vec(), value: Some(b"2".to_vec()), timestamp: 20 }]);
//! # Ok::<(), StateError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cache;
mod changelog;
mod checkpoint;
mod directory;
mod error;
pub mod kv;
mod rocks;
mod segment_filter;
mod segments;
pub mod session;
mod store;
pub mod time_key;
mod topic_partition;
pub mod versioned;
pub mod window;

pub use cache::{CacheBudget, CachingKeyValueStore, CachingSessionStore, CachingWindowStore};
pub use cache::{FlushListener, FlushedEntry};
pub use changelog::{ChangelogRecord, ChangelogWriter, MemoryChangelog};
pub use changelog::{
    LoggedKeyValueStore, LoggedSessionStore, LoggedVersionedStore, LoggedWindowStore,
};
pub use checkpoint::{CheckpointFile, CheckpointOffsets};
pub use directory::{StateDirectory, TaskDirectory};
pub use error::StateError;
pub use kv::RocksKeyValueStore;
pub use kv::{InMemoryKeyValueStore, KeyValue, KeyValueBackend, KeyValueIter, KeyValueStore};
pub use rocks::{RocksConfig, RocksResources};
pub use session::{InMemorySessionStore, RocksSessionStore, SegmentedSessionStore};
pub use session::{SessionEntry, SessionIter, SessionStore};
pub use store::{StateStore, WrappedStateStore};
pub use topic_partition::TopicPartition;
pub use versioned::{InMemoryVersionedStore, RocksVersionedStore, VersionedStore};
pub use versioned::{VersionedKeyValueStore, VersionedPut, VersionedRecord};
pub use window::{InMemoryWindowStore, RocksWindowStore, SegmentedWindowStore};
pub use window::{WindowIter, WindowStore, WindowStoreConfig, WindowedEntry, WriteOutcome};
