//! Change logging for versioned stores.

use super::ChangelogWriter;
use crate::versioned::{changelog_value, put_timestamped};
use crate::{KeyValueIter, KeyValueStore, StateError, WrappedStateStore};
use crate::{VersionedKeyValueStore, VersionedPut, VersionedRecord};

/// A [`VersionedKeyValueStore`] that sends each accepted write to a changelog, as a
/// [`changelog_value`] (deletions too: see [`crate::versioned`]). A write older than the
/// history retention is not logged, since the store did not take it.
///
/// ```
/// use streamtime_state::*;
/// let log = MemoryChangelog::new();
/// let mut store = LoggedVersionedStore::new(InMemoryVersionedStore::new("prices", 1_000), log.clone());
/// store.put_version(b"k", Some(b"a"), 5_000)?;
/// store.put_version(b"k", None, 6_000)?;
/// store.put_version(b"k", Some(b"old"), 10)?; // expired: neither stored nor logged
/// let mut copy = InMemoryVersionedStore::new("prices", 1_000);
/// for r in log.records() {
///     copy.restore(&r.key, r.value.as_deref())?;
/// }
/// assert_eq!(log.len(), 2);
/// assert_eq!(copy.get_as_of(b"k", 5_500)?.map(|r| r.value), Some(b"a".to_vec()));
/// assert_eq!(copy.get_latest(b"k")?, None);
/// # Ok::<(), StateError>(())
/// ```
pub struct LoggedVersionedStore<S> {
    inner: S,
    writer: Box<dyn ChangelogWriter>,
}

impl<S: VersionedKeyValueStore> LoggedVersionedStore<S> {
    /// Logs `inner`'s writes to `writer`.
    pub fn new(inner: S, writer: impl ChangelogWriter + 'static) -> Self {
        LoggedVersionedStore {
            inner,
            writer: Box::new(writer),
        }
    }

    /// The store underneath (read-only: writing to it directly would bypass the changelog).
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

// Restoring passes the records to `inner` without going through `put_version`, so they are
// not logged again.
impl<S: VersionedKeyValueStore> WrappedStateStore for LoggedVersionedStore<S> {
    type Inner = S;
    fn wrapped(&self) -> &S {
        &self.inner
    }
    fn wrapped_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S: VersionedKeyValueStore> VersionedKeyValueStore for LoggedVersionedStore<S> {
    fn history_retention_ms(&self) -> i64 {
        self.inner.history_retention_ms()
    }

    fn observed_stream_time(&self) -> i64 {
        self.inner.observed_stream_time()
    }

    fn put_version(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        timestamp: i64,
    ) -> Result<VersionedPut, StateError> {
        // Store first: a record in the changelog that the store refused would be replayed
        // into a state that never existed.
        let outcome = self.inner.put_version(key, value, timestamp)?;
        if outcome != VersionedPut::Expired {
            self.writer
                .send(key, Some(&changelog_value(value, timestamp)), timestamp);
        }
        Ok(outcome)
    }

    fn get_latest(&self, key: &[u8]) -> Result<Option<VersionedRecord>, StateError> {
        self.inner.get_latest(key)
    }

    fn get_as_of(&self, key: &[u8], as_of: i64) -> Result<Option<VersionedRecord>, StateError> {
        self.inner.get_as_of(key, as_of)
    }
}

impl<S: VersionedKeyValueStore> KeyValueStore for LoggedVersionedStore<S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.inner.get(key)
    }

    fn put(&mut self, key: &[u8], value: &[u8], _timestamp: i64) -> Result<(), StateError> {
        put_timestamped(self, key, value)
    }

    fn delete(&mut self, key: &[u8], timestamp: i64) -> Result<(), StateError> {
        self.put_version(key, None, timestamp).map(|_| ())
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

    fn as_versioned(&self) -> Option<&dyn VersionedKeyValueStore> {
        Some(self)
    }

    fn as_versioned_mut(&mut self) -> Option<&mut dyn VersionedKeyValueStore> {
        Some(self)
    }
}
