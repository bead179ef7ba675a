//! The typed session store.

use super::SerdeRef;
use crate::{SessionStore, StateError, WriteOutcome};

/// A typed session: `(start, end, value)`.
pub type TypedSession<V> = (i64, i64, V);

/// A [`SessionStore`] seen through a key serde and a value serde.
///
/// ```
/// use streamtime_state::{BincodeSerde, InMemorySessionStore, StringSerde, TypedSessionStore};
/// let store = InMemorySessionStore::new("s", 600_000)?;
/// let mut sessions = TypedSessionStore::new(store, StringSerde, BincodeSerde::<u32>::new());
/// sessions.put(&"u".to_owned(), 0, 30, &2, 30)?;
/// let found: Vec<(i64, i64, u32)> = sessions.find_sessions(&"u".to_owned(), 25, 40)?.collect::<Result<_, _>>()?;
/// assert_eq!(found, vec![(0, 30, 2)]);
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
pub struct TypedSessionStore<S, K, V> {
    inner: S,
    keys: SerdeRef<K>,
    values: SerdeRef<V>,
}

impl<S: SessionStore, K: 'static, V: 'static> TypedSessionStore<S, K, V> {
    /// Wraps `inner` with owned serdes.
    pub fn new(
        inner: S,
        keys: impl crate::StateSerde<K> + 'static,
        values: impl crate::StateSerde<V> + 'static,
    ) -> Self {
        Self::with_serdes(
            inner,
            std::sync::Arc::new(keys),
            std::sync::Arc::new(values),
        )
    }

    /// Wraps `inner` with shared serdes.
    pub fn with_serdes(inner: S, keys: SerdeRef<K>, values: SerdeRef<V>) -> Self {
        TypedSessionStore {
            inner,
            keys,
            values,
        }
    }

    /// The byte store underneath.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The byte store underneath, mutably (for flush and restore).
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the byte store.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Stores `value` for `key`'s session `[start, end]`.
    pub fn put(
        &mut self,
        key: &K,
        start: i64,
        end: i64,
        value: &V,
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        let k = self.keys.encode(key)?;
        let v = self.values.encode(value)?;
        self.inner.put(&k, start, end, &v, timestamp)
    }

    /// Removes `key`'s session `[start, end]`.
    pub fn remove(
        &mut self,
        key: &K,
        start: i64,
        end: i64,
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        let k = self.keys.encode(key)?;
        self.inner.remove(&k, start, end, timestamp)
    }

    /// The value of exactly `key`'s session `[start, end]`.
    pub fn fetch_session(&self, key: &K, start: i64, end: i64) -> Result<Option<V>, StateError> {
        match self
            .inner
            .fetch_session(&self.keys.encode(key)?, start, end)?
        {
            Some(v) => self.values.decode(&v).map(Some),
            None => Ok(None),
        }
    }

    /// `key`'s sessions overlapping `[earliest_session_end, latest_session_start]`; see
    /// [`SessionStore::find_sessions`].
    pub fn find_sessions(
        &self,
        key: &K,
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<impl Iterator<Item = Result<TypedSession<V>, StateError>> + '_, StateError> {
        let k = self.keys.encode(key)?;
        Ok(self
            .inner
            .find_sessions(&k, earliest_session_end, latest_session_start)
            .map(move |s| {
                let s = s?;
                Ok((s.start, s.end, self.values.decode(&s.value)?))
            }))
    }

    /// Every live session of `key`.
    pub fn fetch(
        &self,
        key: &K,
    ) -> Result<impl Iterator<Item = Result<TypedSession<V>, StateError>> + '_, StateError> {
        self.find_sessions(key, 0, i64::MAX)
    }
}
