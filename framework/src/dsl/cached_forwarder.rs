//! How an aggregation or a table passes its updates downstream: each at once when its store
//! has no cache, else as the cache writes them out (on eviction, and at every commit), so
//! updates of a key between commits reach downstream processors folded into one, as in
//! Kafka Streams.

use crate::dsl::windows::{Window, Windowed};
use crate::error::ProcessResult;
use crate::error::StreamsError;
use crate::processor::ProcessorContext;
use crate::record::Record;
use crate::stores::{FlushedUpdates, KeyValueStoreHandle, SessionStoreHandle, WindowStoreHandle};

/// A store whose cache can be written out on demand.
pub(crate) trait CachedStore {
    fn flush_cache(&self) -> Result<(), StreamsError>;
}

impl<K: 'static, V: 'static> CachedStore for KeyValueStoreHandle<K, V> {
    fn flush_cache(&self) -> Result<(), StreamsError> {
        KeyValueStoreHandle::flush_cache(self)
    }
}

impl<K: 'static, V: 'static> CachedStore for WindowStoreHandle<K, V> {
    fn flush_cache(&self) -> Result<(), StreamsError> {
        WindowStoreHandle::flush_cache(self)
    }
}

impl<K: 'static, V: 'static> CachedStore for SessionStoreHandle<K, V> {
    fn flush_cache(&self) -> Result<(), StreamsError> {
        SessionStoreHandle::flush_cache(self)
    }
}

/// Forwards the updates of one timestamped store, keyed as forwarded (`K`). Several
/// forwarders may share a store (the inputs of a cogroup, whose outputs merge): each update
/// goes out once, through whichever of them takes it first.
pub(crate) struct CachedForwarder<K, V, S = KeyValueStoreHandle<K, (V, i64)>> {
    store: S,
    /// `None`: the store has no cache.
    flushed: Option<FlushedUpdates<K, (V, i64)>>,
}

impl<K: Clone + 'static, V: Clone + 'static> CachedForwarder<K, V> {
    /// Forwards a key-value store's updates.
    pub(crate) fn new(store: KeyValueStoreHandle<K, (V, i64)>) -> Self {
        CachedForwarder {
            flushed: store.collect_flushed(),
            store,
        }
    }
}

impl<K: Clone + 'static, V: Clone + 'static>
    CachedForwarder<Windowed<K>, V, WindowStoreHandle<K, (V, i64)>>
{
    /// Forwards a store's updates of windows `size_ms` long.
    pub(crate) fn windowed(store: WindowStoreHandle<K, (V, i64)>, size_ms: i64) -> Self {
        let to_key = move |key, start: i64| {
            Windowed::new(key, Window::new(start, start.saturating_add(size_ms)))
        };
        let from_key: fn(&Windowed<K>) -> (&K, i64) = |w| (&w.key, w.window.start);
        CachedForwarder {
            flushed: store.collect_flushed(to_key, from_key),
            store,
        }
    }
}

impl<K: Clone + 'static, V: Clone + 'static>
    CachedForwarder<Windowed<K>, V, SessionStoreHandle<K, V>>
{
    /// Forwards a session store's updates, each at its session's end.
    pub(crate) fn sessions(store: SessionStoreHandle<K, V>) -> Self {
        let to_key = |key, start, end| Windowed::new(key, Window::new(start, end));
        let from_key: fn(&Windowed<K>) -> (&K, i64, i64) =
            |w| (&w.key, w.window.start, w.window.end);
        CachedForwarder {
            flushed: store.collect_flushed(to_key, from_key),
            store,
        }
    }
}

impl<K: Clone + 'static, V: Clone + 'static, S: CachedStore> CachedForwarder<K, V, S> {
    /// The store.
    pub(crate) fn store(&self) -> &S {
        &self.store
    }

    /// `record`, the update just written to the store, goes downstream now when the store
    /// has no cache; otherwise it waits in the cache, and whatever the write evicted goes.
    /// `out` turns a stored value (`None`: deleted) into what is forwarded, or nothing.
    pub(crate) fn written<VO: Clone + 'static>(
        &self,
        ctx: &mut ProcessorContext<K, VO>,
        record: Record<K, VO>,
        out: fn(Option<V>) -> Option<VO>,
    ) -> ProcessResult {
        let Some(flushed) = &self.flushed else {
            return ctx.forward(record);
        };
        flushed.note_headers(&record.key, record.headers)?;
        self.forward_flushed(ctx, out)
    }

    /// Writes the cache out and forwards every update in it.
    pub(crate) fn before_commit<VO: Clone + 'static>(
        &self,
        ctx: &mut ProcessorContext<K, VO>,
        out: fn(Option<V>) -> Option<VO>,
    ) -> ProcessResult {
        if self.flushed.is_none() {
            return Ok(());
        }
        self.store.flush_cache()?;
        self.forward_flushed(ctx, out)
    }

    fn forward_flushed<VO: Clone + 'static>(
        &self,
        ctx: &mut ProcessorContext<K, VO>,
        out: fn(Option<V>) -> Option<VO>,
    ) -> ProcessResult {
        let Some(flushed) = &self.flushed else {
            return Ok(());
        };
        let updates = flushed.take()?;
        if updates.is_empty() {
            return Ok(());
        }
        let processing = ctx.task_context().state.borrow().current_timestamp;
        for update in updates {
            let (value, timestamp) = match update.value {
                Some((v, ts)) => (Some(v), ts),
                None => (None, update.write_timestamp),
            };
            let Some(value) = out(value) else {
                continue;
            };
            // Writes downstream carry the forwarded update's time, not the time of the
            // record whose write evicted it.
            ctx.task_context().state.borrow_mut().current_timestamp = timestamp;
            ctx.forward(Record {
                key: update.key,
                value,
                timestamp,
                headers: update.headers,
            })?;
        }
        ctx.task_context().state.borrow_mut().current_timestamp = processing;
        Ok(())
    }
}
