//! Change logging for key-value stores.

use super::ChangelogWriter;
use crate::{KeyValueIter, KeyValueStore, StateError, WrappedStateStore};

/// A [`KeyValueStore`] that sends each put and delete to a changelog after applying it.
/// Deletes are logged even for keys the store does not hold: this layer cannot know whether
/// an older changelog record still carries a value for them.
///
/// ```
/// use streamtime_state::{InMemoryKeyValueStore, KeyValueStore, LoggedKeyValueStore, MemoryChangelog, StateStore};
/// let log = MemoryChangelog::new();
/// let mut store = LoggedKeyValueStore::new(InMemoryKeyValueStore::new("s"), log.clone());
/// store.put(b"k", b"v", 100)?;
/// store.delete(b"k", 200)?;
/// store.restore(b"j", Some(b"w"))?; // restoring is not logged
/// let log = log.records();
/// assert_eq!((log.len(), log[1].value.clone(), log[1].timestamp), (2, None, 200));
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
pub struct LoggedKeyValueStore<S> {
    inner: S,
    writer: Box<dyn ChangelogWriter>,
}

impl<S: KeyValueStore> LoggedKeyValueStore<S> {
    /// Logs `inner`'s writes to `writer`.
    pub fn new(inner: S, writer: impl ChangelogWriter + 'static) -> Self {
        LoggedKeyValueStore {
            inner,
            writer: Box::new(writer),
        }
    }

    /// The store underneath (read-only: writing to it directly would bypass the changelog).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Unwraps the store.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

// Restoring passes the records to `inner` without going through `put`, so they are not logged.
impl<S: KeyValueStore> WrappedStateStore for LoggedKeyValueStore<S> {
    type Inner = S;
    fn wrapped(&self) -> &S {
        &self.inner
    }
    fn wrapped_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S: KeyValueStore> KeyValueStore for LoggedKeyValueStore<S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.inner.get(key)
    }

    fn put(&mut self, key: &[u8], value: &[u8], timestamp: i64) -> Result<(), StateError> {
        // Store first: a record in the changelog that the store refused would be replayed
        // into a state that never existed.
        self.inner.put(key, value, timestamp)?;
        self.writer.send(key, Some(value), timestamp);
        Ok(())
    }

    fn delete(&mut self, key: &[u8], timestamp: i64) -> Result<(), StateError> {
        self.inner.delete(key, timestamp)?;
        self.writer.send(key, None, timestamp);
        Ok(())
    }

    fn range(&self, from: &[u8], to: &[u8]) -> KeyValueIter<'_> {
        self.inner.range(from, to)
    }

    fn all(&self) -> KeyValueIter<'_> {
        self.inner.all()
    }

    fn approximate_num_entries(&self) -> Result<u64, StateError> {
        self.inner.approximate_num_entries()
    }
}
