//! The cache's bookkeeping: entries in key order, their write recency and their byte size.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::CacheBudget;

/// Per-entry bookkeeping overhead counted against the size bound, so a cache of many tiny
/// entries is bounded too (map nodes and the recency index are not free).
const ENTRY_OVERHEAD: usize = 64;

/// A key and its cached value (`None` = pending delete), as snapshotted for scans.
pub(crate) type CachedPair = (Vec<u8>, Option<Vec<u8>>);

/// One cached entry.
#[derive(Debug, Clone)]
pub(crate) struct Cached {
    /// `None` is a pending delete.
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
    /// Not yet written to the store underneath.
    pub dirty: bool,
    tick: u64,
}

/// Entries in key order plus a least-recently-written index; the bytes it holds count
/// against a budget it may share with other caches.
#[derive(Debug)]
pub(crate) struct LruCache {
    budget: Arc<CacheBudget>,
    bytes: usize,
    next_tick: u64,
    entries: BTreeMap<Vec<u8>, Cached>,
    by_recency: BTreeMap<u64, Vec<u8>>,
}

/// What an entry counts against the size bound.
pub(crate) fn size(key: &[u8], value: Option<&[u8]>) -> usize {
    key.len() + value.map_or(0, <[u8]>::len) + ENTRY_OVERHEAD
}

impl LruCache {
    pub(crate) fn new(budget: Arc<CacheBudget>) -> Self {
        LruCache {
            budget,
            bytes: 0,
            next_tick: 0,
            entries: BTreeMap::new(),
            by_recency: BTreeMap::new(),
        }
    }

    pub(crate) fn max_bytes(&self) -> usize {
        self.budget.max_bytes()
    }

    fn grow(&mut self, bytes: usize) {
        self.bytes += bytes;
        self.budget.add(bytes);
    }

    fn shrink(&mut self, bytes: usize) {
        self.bytes -= bytes;
        self.budget.sub(bytes);
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the caches on this one's budget hold more than it allows.
    pub(crate) fn over_limit(&self) -> bool {
        self.budget.over_limit()
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&Cached> {
        self.entries.get(key)
    }

    /// Records a write (dirty) and makes it the most recent entry.
    pub(crate) fn put(&mut self, key: &[u8], value: Option<Vec<u8>>, timestamp: i64) {
        self.remove(key);
        let tick = self.next_tick;
        self.next_tick += 1;
        self.grow(size(key, value.as_deref()));
        self.by_recency.insert(tick, key.to_vec());
        self.entries.insert(
            key.to_vec(),
            Cached {
                value,
                timestamp,
                dirty: true,
                tick,
            },
        );
    }

    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Cached> {
        let old = self.entries.remove(key)?;
        self.by_recency.remove(&old.tick);
        self.shrink(size(key, old.value.as_deref()));
        Some(old)
    }

    /// Removes and returns the least recently written entry.
    pub(crate) fn pop_oldest(&mut self) -> Option<(Vec<u8>, Cached)> {
        let (_, key) = self.by_recency.pop_first()?;
        let entry = self.remove_indexed(&key);
        Some((key, entry))
    }

    fn remove_indexed(&mut self, key: &[u8]) -> Cached {
        let entry = self
            .entries
            .remove(key)
            .expect("recency index and entries agree");
        self.shrink(size(key, entry.value.as_deref()));
        entry
    }

    /// Dirty entries, least recently written first (copies; mark each clean once it is
    /// written). This is the order of the updates that last changed them, which is the
    /// order Kafka Streams' cache forwards them in.
    pub(crate) fn dirty(&self) -> Vec<(Vec<u8>, Option<Vec<u8>>, i64)> {
        self.by_recency
            .values()
            .filter_map(|k| {
                let e = &self.entries[k];
                e.dirty.then(|| (k.clone(), e.value.clone(), e.timestamp))
            })
            .collect()
    }

    /// How many dirty entries are puts (not deletes).
    pub(crate) fn dirty_puts(&self) -> usize {
        self.entries
            .values()
            .filter(|e| e.dirty && e.value.is_some())
            .count()
    }

    /// Marks a written entry clean. A written delete leaves nothing worth caching.
    pub(crate) fn mark_clean(&mut self, key: &[u8]) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        if entry.value.is_none() {
            self.remove(key);
        } else {
            entry.dirty = false;
        }
    }

    /// Entries (including pending deletes) with keys in `[from, to]`, in key order.
    pub(crate) fn range(&self, from: &[u8], to: &[u8]) -> Vec<CachedPair> {
        if from > to {
            return Vec::new();
        }
        use std::ops::Bound::Included;
        self.entries
            .range::<[u8], _>((Included(from), Included(to)))
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect()
    }

    /// Every entry (including pending deletes), in key order.
    pub(crate) fn all(&self) -> Vec<CachedPair> {
        self.entries
            .iter()
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect()
    }
}

impl Drop for LruCache {
    fn drop(&mut self) {
        self.budget.sub(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_is_least_recently_written_and_size_is_tracked() {
        let budget = CacheBudget::new(1_000);
        let mut c = LruCache::new(budget.clone());
        c.put(b"a", Some(vec![1]), 0);
        c.put(b"b", Some(vec![2]), 0);
        c.put(b"a", Some(vec![3, 3]), 0);
        assert_eq!(c.bytes(), 2 * ENTRY_OVERHEAD + 1 + 1 + 1 + 2);
        assert_eq!(c.pop_oldest().map(|(k, _)| k), Some(b"b".to_vec()));
        assert_eq!(c.pop_oldest().map(|(k, _)| k), Some(b"a".to_vec()));
        assert_eq!((c.bytes(), c.len(), budget.used_bytes()), (0, 0, 0));
    }
}
