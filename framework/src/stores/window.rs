//! [`WindowStoreHandle`]: a typed view of a task's window store.

use std::rc::Rc;
use std::sync::Arc;

use super::flushed::FlushedCodec;
use super::{FlushedUpdates, HandleBase, Shared, TaskStore};
use crate::error::StreamsError;
use crate::serdes::Serde;
use crate::task::task_context::TaskContext;
use streamtime_state::window::{split_window_key, window_key};
use streamtime_state::{FlushedEntry, StateError, WindowIter, WindowStore, WriteOutcome};

/// A typed view of a window store: values per key and window start, expiring with the
/// store's stream time. Writes carry the current record's timestamp into the changelog.
///
/// ```
/// use std::time::Duration;
/// use streamtime::{Processor, ProcessorContext, ProcessResult, Record, Topology};
/// use streamtime::serdes::{StringSerde, I64Serde};
/// use streamtime::stores::{Stores, WindowStoreHandle};
///
/// /// Counts records per key and minute.
/// #[derive(Default)]
/// struct PerMinute { store: Option<WindowStoreHandle<String, i64>> }
///
/// impl Processor<String, String, String, i64> for PerMinute {
///     fn init(&mut self, ctx: &mut ProcessorContext<String, i64>) -> ProcessResult {
///         self.store = Some(ctx.window_store("per-minute", StringSerde, I64Serde)?);
///         Ok(())
///     }
///     fn process(&mut self, ctx: &mut ProcessorContext<String, i64>, r: Record<String, String>) -> ProcessResult {
///         let store = self.store.as_ref().expect("initialised");
///         let start = r.timestamp / 60_000 * 60_000;
///         let n = store.get(&r.key, start)?.unwrap_or(0) + 1;
///         store.put(&r.key, start, &n)?;
///         ctx.forward(r.with_value(n))
///     }
/// }
///
/// let mut topology = Topology::new();
/// topology.add_source("in", &["clicks"], StringSerde, StringSerde).unwrap();
/// topology.add_processor("count", PerMinute::default, &["in"]).unwrap();
/// topology.add_state_store(Stores::window("per-minute", Duration::from_secs(3600), false), &["count"]).unwrap();
/// ```
pub struct WindowStoreHandle<K, V> {
    base: HandleBase<K, V>,
    store: Shared<dyn WindowStore>,
}

impl<K, V> Clone for WindowStoreHandle<K, V> {
    fn clone(&self) -> Self {
        WindowStoreHandle {
            base: self.base.clone(),
            store: self.store.clone(),
        }
    }
}

impl<K: 'static, V: 'static> WindowStoreHandle<K, V> {
    pub(crate) fn open(
        task: &Rc<TaskContext>,
        node: &str,
        name: &str,
        keys: Arc<dyn Serde<K>>,
        values: Arc<dyn Serde<V>>,
    ) -> Result<Self, StreamsError> {
        let (base, store) = HandleBase::open(task, node, name, (keys, values), |s| match s {
            TaskStore::Window(s) => Some(s.clone()),
            _ => None,
        })?;
        Ok(WindowStoreHandle { base, store })
    }

    /// Stores `value` for `key`'s window starting at `window_start`. Returns `false` when the
    /// window had already expired, so the write was dropped (and counted by the store).
    pub fn put(&self, key: &K, window_start: i64, value: &V) -> Result<bool, StreamsError> {
        let key = self.base.key_bytes(key)?;
        let timestamp = self.base.timestamp();
        let outcome = match self.base.value_bytes(value)? {
            Some(bytes) => self
                .store
                .borrow_mut()
                .put(&key, window_start, &bytes, timestamp),
            None => self
                .store
                .borrow_mut()
                .delete(&key, window_start, timestamp),
        }
        .map_err(|e| self.base.state_error(e))?;
        Ok(matches!(outcome, WriteOutcome::Written { .. }))
    }

    /// Removes `key`'s window at `window_start`.
    pub fn delete(&self, key: &K, window_start: i64) -> Result<(), StreamsError> {
        let key = self.base.key_bytes(key)?;
        let timestamp = self.base.timestamp();
        self.store
            .borrow_mut()
            .delete(&key, window_start, timestamp)
            .map_err(|e| self.base.state_error(e))?;
        Ok(())
    }

    /// The value of `key`'s window at `window_start`, unless expired.
    pub fn get(&self, key: &K, window_start: i64) -> Result<Option<V>, StreamsError> {
        let key = self.base.key_bytes(key)?;
        let bytes = self
            .store
            .borrow()
            .get(&key, window_start)
            .map_err(|e| self.base.state_error(e))?;
        bytes.map(|b| self.base.value(&b)).transpose()
    }

    /// `key`'s windows starting in `[time_from, time_to]` (both inclusive), ascending by
    /// start: `(start, value)`.
    pub fn fetch(
        &self,
        key: &K,
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<(i64, V)>, StreamsError> {
        let key = self.base.key_bytes(key)?;
        let store = self.store.borrow();
        self.collect(store.fetch(&key, time_from, time_to), |_, start, v| {
            Ok((start, v))
        })
    }

    /// Every key's windows starting in `[time_from, time_to]`: `(key, start, value)`, by
    /// start, then serialized key.
    pub fn fetch_all(
        &self,
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<(K, i64, V)>, StreamsError> {
        let store = self.store.borrow();
        let mut found: Vec<(Vec<u8>, i64, Vec<u8>)> = store
            .fetch_all(time_from, time_to)
            .map(|e| {
                let e = e.map_err(|e| self.base.state_error(e))?;
                Ok((e.key, e.window_start, e.value))
            })
            .collect::<Result<_, StreamsError>>()?;
        // The store orders by segment first; emit in time order whatever the segments.
        found.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        found
            .into_iter()
            .map(|(k, start, v)| Ok((self.base.key(&k)?, start, self.base.value(&v)?)))
            .collect()
    }

    fn collect<T>(
        &self,
        iter: WindowIter<'_>,
        f: impl Fn(K, i64, V) -> Result<T, StreamsError>,
    ) -> Result<Vec<T>, StreamsError> {
        iter.map(|e| {
            let e = e.map_err(|e| self.base.state_error(e))?;
            f(
                self.base.key(&e.key)?,
                e.window_start,
                self.base.value(&e.value)?,
            )
        })
        .collect()
    }

    /// Hands the updates the store's cache writes out to the returned collector from now on,
    /// keyed by `to_key(key, window start)` (`from_key` undoes it); `None` when the store has
    /// no cache (every write reaches it at once).
    pub(crate) fn collect_flushed<KO: 'static>(
        &self,
        to_key: impl Fn(K, i64) -> KO + 'static,
        from_key: fn(&KO) -> (&K, i64),
    ) -> Option<FlushedUpdates<KO, V>> {
        let pending = super::flushed::collector(&self.base, |listener| {
            self.store.borrow_mut().set_flush_listener(listener)
        })?;
        let codec = WindowCodec {
            base: self.base.clone(),
            to_key: Box::new(to_key),
            from_key,
        };
        Some(FlushedUpdates::new(pending, codec))
    }

    /// Expires nothing by a time later than `cap` (see `StateStore::cap_expiry`).
    pub(crate) fn cap_expiry(&self, cap: Option<i64>) {
        self.store.borrow_mut().cap_expiry(cap);
    }

    /// Writes the store's cached updates out now.
    pub(crate) fn flush_cache(&self) -> Result<(), StreamsError> {
        self.store
            .borrow_mut()
            .flush_cache()
            .map_err(|e| self.base.state_error(e))
    }

    /// The largest window start written so far (the store's stream time).
    pub fn observed_stream_time(&self) -> Option<i64> {
        self.store.borrow().observed_stream_time()
    }

    /// The store's retention in milliseconds.
    pub fn retention_ms(&self) -> i64 {
        self.store.borrow().retention_ms()
    }
}

/// A window store's flushed entries (`key ++ window start`) as the keys its operator
/// forwards.
struct WindowCodec<K, V, KO> {
    base: HandleBase<K, V>,
    to_key: Box<dyn Fn(K, i64) -> KO>,
    from_key: fn(&KO) -> (&K, i64),
}

impl<K: 'static, V: 'static, KO: 'static> FlushedCodec<KO, V> for WindowCodec<K, V, KO> {
    fn key_bytes(&self, key: &KO) -> Result<Vec<u8>, StreamsError> {
        let (key, start) = (self.from_key)(key);
        Ok(window_key(&self.base.key_bytes(key)?, start, None))
    }

    fn decode(&self, e: &FlushedEntry) -> Result<(KO, Option<V>, i64), StreamsError> {
        let (key, start, _) = split_window_key(&e.key, false).ok_or_else(|| {
            self.base.state_error(StateError::corrupt(
                format!("window store {}", self.base.name),
                format!("flushed key of {} bytes is too short", e.key.len()),
            ))
        })?;
        let value = e
            .new_value
            .as_deref()
            .map(|v| self.base.value(v))
            .transpose()?;
        Ok((
            (self.to_key)(self.base.key(key)?, start),
            value,
            e.timestamp,
        ))
    }
}
