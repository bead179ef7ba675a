//! One byte budget shared by several caches, as Kafka Streams shares one cache per stream
//! thread among every store of its tasks: a busy store may use what idle ones leave.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The bytes several caches may hold together. A cache over the shared limit evicts its own
/// least recently written entries (a cache never evicts another's), so the total can
/// overshoot by what idle caches hold until they next write or flush.
///
/// ```
/// use streamtime_state::{CacheBudget, CachingKeyValueStore, InMemoryKeyValueStore, KeyValueStore};
/// let budget = CacheBudget::new(1 << 20);
/// let mut a = CachingKeyValueStore::with_budget(InMemoryKeyValueStore::new("a"), budget.clone());
/// let mut b = CachingKeyValueStore::with_budget(InMemoryKeyValueStore::new("b"), budget.clone());
/// a.put(b"k", b"v", 0)?;
/// b.put(b"k", b"v", 0)?;
/// assert_eq!(budget.used_bytes(), a.cached_bytes() + b.cached_bytes());
/// drop(a); // a cache going away hands its bytes back
/// assert_eq!(budget.used_bytes(), b.cached_bytes());
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
#[derive(Debug)]
pub struct CacheBudget {
    max_bytes: usize,
    used: AtomicUsize,
}

impl CacheBudget {
    /// A budget of `max_bytes`; 0 turns caching off for every cache on it.
    pub fn new(max_bytes: usize) -> Arc<Self> {
        Arc::new(CacheBudget {
            max_bytes,
            used: AtomicUsize::new(0),
        })
    }

    /// The limit.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// What the caches on this budget hold now.
    pub fn used_bytes(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub(crate) fn add(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn sub(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    pub(crate) fn over_limit(&self) -> bool {
        self.used_bytes() > self.max_bytes
    }
}
