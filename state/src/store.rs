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
}
