//! The typed key-value store.

use super::SerdeRef;
use crate::{KeyValueStore, StateError};

/// A [`KeyValueStore`] seen through a key serde and a value serde.
///
/// ```
/// use streamtime_state::{BincodeSerde, InMemoryKeyValueStore, StringSerde, TypedKeyValueStore};
/// let mut counts = TypedKeyValueStore::new(
///     InMemoryKeyValueStore::new("counts"),
///     StringSerde,
///     BincodeSerde::<u64>::new(),
/// );
/// counts.put(&"a".to_owned(), &3, 0)?;
/// assert_eq!(counts.get(&"a".to_owned())?, Some(3));
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
pub struct TypedKeyValueStore<S, K, V> {
    inner: S,
    keys: SerdeRef<K>,
    values: SerdeRef<V>,
}

impl<S: KeyValueStore, K: 'static, V: 'static> TypedKeyValueStore<S, K, V> {
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
        TypedKeyValueStore {
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

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>, StateError> {
        match self.inner.get(&self.keys.encode(key)?)? {
            Some(v) => self.values.decode(&v).map(Some),
            None => Ok(None),
        }
    }

    /// Stores `value` under `key`; `timestamp` is the causing record's.
    pub fn put(&mut self, key: &K, value: &V, timestamp: i64) -> Result<(), StateError> {
        let k = self.keys.encode(key)?;
        let v = self.values.encode(value)?;
        self.inner.put(&k, &v, timestamp)
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: &K, timestamp: i64) -> Result<(), StateError> {
        let k = self.keys.encode(key)?;
        self.inner.delete(&k, timestamp)
    }

    /// Entries with serialized keys in `[from, to]` (inclusive), in byte order.
    pub fn range(
        &self,
        from: &K,
        to: &K,
    ) -> Result<impl Iterator<Item = Result<(K, V), StateError>> + '_, StateError> {
        let (from, to) = (self.keys.encode(from)?, self.keys.encode(to)?);
        Ok(self.decode(self.inner.range(&from, &to)))
    }

    /// Every entry, in serialized key order.
    pub fn all(&self) -> impl Iterator<Item = Result<(K, V), StateError>> + '_ {
        self.decode(self.inner.all())
    }

    fn decode<'a>(
        &'a self,
        entries: crate::KeyValueIter<'a>,
    ) -> impl Iterator<Item = Result<(K, V), StateError>> + 'a {
        entries.map(move |kv| {
            let (k, v) = kv?;
            Ok((self.keys.decode(&k)?, self.values.decode(&v)?))
        })
    }
}
