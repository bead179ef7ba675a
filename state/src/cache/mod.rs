//! Write-back caching for key-value, window and session stores: updates to a key (a window,
//! a session) between flushes fold into one entry, written to the (logged) store underneath
//! only when flushed or evicted, so the store and its changelog see one write per key per
//! commit interval instead of one per record.
//!
//! An optional [`FlushListener`] receives every entry written out, so the operator that
//! owns the store can pass the folded updates downstream as Kafka Streams' caches do. Caches
//! can share one [`CacheBudget`].

mod budget;
mod kv;
mod lru;
mod merge;
mod segmented;
mod session;
mod window;

pub use budget::CacheBudget;
pub use kv::CachingKeyValueStore;
pub use session::CachingSessionStore;
pub use window::CachingWindowStore;

/// An entry leaving the cache for the store underneath.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushedEntry {
    /// The key.
    pub key: Vec<u8>,
    /// The value written, `None` for a delete.
    pub new_value: Option<Vec<u8>>,
    /// The value the store held before, when old values were requested (and always for
    /// deletes, which are skipped when the store did not hold the key).
    pub old_value: Option<Vec<u8>>,
    /// Timestamp of the last record that updated the entry.
    pub timestamp: i64,
}

/// Receives every entry a cache writes to its store, in write order.
pub type FlushListener = Box<dyn FnMut(FlushedEntry) + Send>;
