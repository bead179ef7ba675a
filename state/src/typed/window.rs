//! The typed window store.

use super::SerdeRef;
use crate::{StateError, WindowStore, WriteOutcome};

/// A [`WindowStore`] seen through a key serde and a value serde.
///
/// ```
/// use streamtime_state::{BincodeSerde, InMemoryWindowStore, StringSerde, TypedWindowStore, WindowStoreConfig};
/// let store = InMemoryWindowStore::new("w", WindowStoreConfig::new(600_000))?;
/// let mut sums = TypedWindowStore::new(store, StringSerde, BincodeSerde::<i64>::new());
/// sums.put(&"k".to_owned(), 0, &5, 1)?;
/// sums.put(&"k".to_owned(), 10_000, &7, 10_001)?;
/// let all: Vec<(i64, i64)> = sums.fetch(&"k".to_owned(), 0, 10_000)?.collect::<Result<_, _>>()?;
/// assert_eq!(all, vec![(0, 5), (10_000, 7)]);
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
pub struct TypedWindowStore<S, K, V> {
    inner: S,
    keys: SerdeRef<K>,
    values: SerdeRef<V>,
}

impl<S: WindowStore, K: 'static, V: 'static> TypedWindowStore<S, K, V> {
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
        TypedWindowStore {
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

    /// Stores `value` for `key`'s window at `window_start`.
    pub fn put(
        &mut self,
        key: &K,
        window_start: i64,
        value: &V,
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        let k = self.keys.encode(key)?;
        let v = self.values.encode(value)?;
        self.inner.put(&k, window_start, &v, timestamp)
    }

    /// Removes `key`'s window at `window_start`.
    pub fn delete(
        &mut self,
        key: &K,
        window_start: i64,
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        let k = self.keys.encode(key)?;
        self.inner.delete(&k, window_start, timestamp)
    }

    /// The value of `key`'s window at `window_start`.
    pub fn get(&self, key: &K, window_start: i64) -> Result<Option<V>, StateError> {
        match self.inner.get(&self.keys.encode(key)?, window_start)? {
            Some(v) => self.values.decode(&v).map(Some),
            None => Ok(None),
        }
    }

    /// `(window start, value)` of `key`'s windows starting in `[time_from, time_to]`.
    pub fn fetch(
        &self,
        key: &K,
        time_from: i64,
        time_to: i64,
    ) -> Result<impl Iterator<Item = Result<(i64, V), StateError>> + '_, StateError> {
        let k = self.keys.encode(key)?;
        Ok(self.inner.fetch(&k, time_from, time_to).map(move |e| {
            let e = e?;
            Ok((e.window_start, self.values.decode(&e.value)?))
        }))
    }

    /// `(key, window start, value)` of all windows starting in `[time_from, time_to]`.
    pub fn fetch_all(
        &self,
        time_from: i64,
        time_to: i64,
    ) -> impl Iterator<Item = Result<(K, i64, V), StateError>> + '_ {
        self.inner.fetch_all(time_from, time_to).map(move |e| {
            let e = e?;
            Ok((
                self.keys.decode(&e.key)?,
                e.window_start,
                self.values.decode(&e.value)?,
            ))
        })
    }
}
