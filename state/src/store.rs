//! What every store, whatever its shape, offers the runtime: a name, flushing and restoring.

use crate::StateError;

/// The lifecycle side of a store, common to key-value, window and session stores and to every
/// wrapper layer (changelog, cache), so the runtime can commit and restore a task's stores
/// without knowing their shape.
///
/// ```
/// use streamtime_state::{InMemoryKeyValueStore, KeyValueStore, StateStore};
/// let mut store = InMemoryKeyValueStore::new("counts");
/// // Restoring replays changelog records in the store's own key layout, without logging them.
/// store.restore_batch(&[(b"a".as_slice(), Some(b"1".as_slice())), (b"b", Some(b"2")), (b"a", None)])?;
/// assert_eq!(store.get(b"a")?, None);
/// assert_eq!(store.get(b"b")?, Some(b"2".to_vec()));
/// store.flush()?;
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
pub trait StateStore: Send {
    /// The store name, as used in the changelog topic `<app>-<name>-changelog`.
    fn name(&self) -> &str;

    /// True when the store keeps its data on disk across restarts, so a checkpoint can save a
    /// full restore. In-memory stores always restore from the start of the changelog.
    fn persistent(&self) -> bool;

    /// Writes out cached updates (commit step 1), then makes everything written so far durable
    /// locally. Because the write-ahead log is off, a checkpoint must only be written after this
    /// returns.
    fn flush(&mut self) -> Result<(), StateError>;

    /// Writes out cached updates only (commit step 1), without the cost of persisting them
    /// locally. Stores without a cache do nothing.
    fn flush_cache(&mut self) -> Result<(), StateError> {
        Ok(())
    }

    /// Applies one changelog record (key in this store's key layout, `None` = tombstone)
    /// without sending it to the changelog again.
    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StateError>;

    /// Applies a batch of changelog records in order; see [`StateStore::restore`]. Stores may
    /// override this to write the batch at once.
    fn restore_batch(&mut self, records: &[(&[u8], Option<&[u8]>)]) -> Result<(), StateError> {
        for (key, value) in records {
            self.restore(key, *value)?;
        }
        Ok(())
    }

    /// Tells a time-segmented store the stream time its task last committed, before the
    /// store is restored: until writes other than restored ones pass it, the store expires
    /// nothing by a later time. Under at-least-once a changelog holds writes from past the
    /// last commit, whose input is processed again; expired by the time of those writes, the
    /// windows that input reads and updates would be gone. Other stores ignore it.
    ///
    /// ```
    /// use streamtime_state::{InMemoryWindowStore, StateStore, WindowStore, WindowStoreConfig};
    /// let mut store = InMemoryWindowStore::new("w", WindowStoreConfig::new(60_000))?;
    /// let mut changelog = Vec::new();
    /// for start in [0, 200_000] {
    ///     let mut scratch = InMemoryWindowStore::new("w", WindowStoreConfig::new(60_000))?;
    ///     if let streamtime_state::WriteOutcome::Written { store_key } =
    ///         scratch.put(b"k", start, b"v", start)?
    ///     {
    ///         changelog.push(store_key);
    ///     }
    /// }
    /// store.limit_expiry(1_000); // the commit was at stream time 1 s
    /// for key in &changelog {
    ///     store.restore(key, Some(b"v"))?;
    /// }
    /// assert_eq!(store.get(b"k", 0)?, Some(b"v".to_vec())); // still live at 1 s
    /// store.put(b"k", 200_000, b"w", 200_000)?; // processing passes the restored time
    /// assert_eq!(store.get(b"k", 0)?, None);
    /// # Ok::<(), streamtime_state::StateError>(())
    /// ```
    fn limit_expiry(&mut self, _committed_stream_time: i64) {}

    /// Tells a time-segmented store the stream time of the commit its task just made: until
    /// the next call it deletes nothing on disk that only a later time expires (reads still
    /// expire by the store's own time). RocksDB may make a delete durable on a flush of its
    /// own, before the next commit; a crash then restarts from this commit, and the input
    /// processed again reads those windows. Other stores ignore it.
    fn keep_since_commit(&mut self, _committed_stream_time: i64) {}
}

impl<T: StateStore + ?Sized> StateStore for Box<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn persistent(&self) -> bool {
        (**self).persistent()
    }
    fn flush(&mut self) -> Result<(), StateError> {
        (**self).flush()
    }
    fn flush_cache(&mut self) -> Result<(), StateError> {
        (**self).flush_cache()
    }
    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StateError> {
        (**self).restore(key, value)
    }
    fn restore_batch(&mut self, records: &[(&[u8], Option<&[u8]>)]) -> Result<(), StateError> {
        (**self).restore_batch(records)
    }
    fn limit_expiry(&mut self, committed_stream_time: i64) {
        (**self).limit_expiry(committed_stream_time)
    }
    fn keep_since_commit(&mut self, committed_stream_time: i64) {
        (**self).keep_since_commit(committed_stream_time)
    }
}
