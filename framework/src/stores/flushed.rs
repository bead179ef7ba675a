//! The updates a cached key-value store writes out, typed, for the processors that write the
//! store to pass downstream (Kafka Streams' cache flush listener).
//!
//! A task keeps one collector per store, so several processors writing one store (the
//! inputs of a cogroup) see the same updates and headers: whichever forwards first sends
//! them all, once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::HandleBase;
use crate::error::StreamsError;
use crate::record::Headers;
use streamtime_state::{FlushListener, FlushedEntry};

/// One update the cache wrote out: the key, its value (`None`: deleted), the time a deletion
/// goes downstream with and the headers noted for it.
pub(crate) struct FlushedUpdate<K, V> {
    pub key: K,
    pub value: Option<V>,
    pub write_timestamp: i64,
    pub headers: Headers,
}

/// What one store's cache wrote out and its owners have not forwarded yet.
#[derive(Default)]
pub(crate) struct PendingFlushes {
    entries: Vec<FlushedEntry>,
    /// Headers of the last update of each cached key that had any: they go downstream with
    /// the folded update, as Kafka Streams' cache keeps each entry's record context.
    headers: HashMap<Vec<u8>, Headers>,
}

/// The collector of one store, shared by the task's handles on it.
pub(crate) type SharedFlushes = Arc<Mutex<PendingFlushes>>;

/// A listener that feeds `pending`.
pub(crate) fn listener(pending: &SharedFlushes) -> FlushListener {
    let sink = pending.clone();
    Box::new(move |entry| {
        sink.lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .push(entry)
    })
}

/// Hands `base`'s store's cache flushes to the task's collector for that store, registering
/// one through `set_listener` on first use; `None` when the store has no cache (the setter
/// refuses the listener).
pub(crate) fn collector<K, V>(
    base: &HandleBase<K, V>,
    set_listener: impl FnOnce(FlushListener) -> bool,
) -> Option<SharedFlushes> {
    let mut flushes = base.task.flushes.borrow_mut();
    if let Some(pending) = flushes.get(&*base.name) {
        return Some(pending.clone());
    }
    let pending = SharedFlushes::default();
    if !set_listener(listener(&pending)) {
        return None;
    }
    flushes.insert(base.name.to_string(), pending.clone());
    Some(pending)
}

/// How a flushed entry turns into the typed key and value processors forward (and the time
/// a deletion goes downstream with), and a typed key back into the store's key bytes.
pub(crate) trait FlushedCodec<K, V>: 'static {
    fn key_bytes(&self, key: &K) -> Result<Vec<u8>, StreamsError>;
    fn decode(&self, entry: &FlushedEntry) -> Result<(K, Option<V>, i64), StreamsError>;
}

/// A key-value store's layout is the serialized key and value; a deletion goes downstream
/// with the time of the write that made it.
impl<K: 'static, V: 'static> FlushedCodec<K, V> for HandleBase<K, V> {
    fn key_bytes(&self, key: &K) -> Result<Vec<u8>, StreamsError> {
        HandleBase::key_bytes(self, key)
    }
    fn decode(&self, e: &FlushedEntry) -> Result<(K, Option<V>, i64), StreamsError> {
        let value = e.new_value.as_deref().map(|v| self.value(v)).transpose()?;
        Ok((self.key(&e.key)?, value, e.timestamp))
    }
}

/// A typed view of one store's collector.
pub(crate) struct FlushedUpdates<K, V> {
    pending: SharedFlushes,
    codec: Box<dyn FlushedCodec<K, V>>,
}

impl<K: 'static, V: 'static> FlushedUpdates<K, V> {
    pub(crate) fn new(pending: SharedFlushes, codec: impl FlushedCodec<K, V>) -> Self {
        FlushedUpdates {
            pending,
            codec: Box::new(codec),
        }
    }

    /// Notes the headers of the update just written under `key` (replacing those of an
    /// earlier update), to go downstream with it.
    pub(crate) fn note_headers(&self, key: &K, headers: Headers) -> Result<(), StreamsError> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if headers.is_empty() && pending.headers.is_empty() {
            return Ok(());
        }
        let key = self.codec.key_bytes(key)?;
        if headers.is_empty() {
            pending.headers.remove(&key);
        } else {
            pending.headers.insert(key, headers);
        }
        Ok(())
    }

    /// The updates written out since the last call, in write order.
    pub(crate) fn take(&self) -> Result<Vec<FlushedUpdate<K, V>>, StreamsError> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let entries = std::mem::take(&mut pending.entries);
        entries
            .into_iter()
            .map(|e| {
                let (key, value, write_timestamp) = self.codec.decode(&e)?;
                Ok(FlushedUpdate {
                    key,
                    value,
                    write_timestamp,
                    headers: pending.headers.remove(&e.key).unwrap_or_default(),
                })
            })
            .collect()
    }
}
