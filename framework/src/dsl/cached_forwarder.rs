//! How an aggregation or a table passes its updates downstream: each at once when its store
//! has no cache, else as the cache writes them out (on eviction, and at every commit), so
//! updates of a key between commits reach downstream processors folded into one, as in
//! Kafka Streams.

use crate::error::ProcessResult;
use crate::processor::ProcessorContext;
use crate::record::Record;
use crate::stores::{FlushedUpdates, KeyValueStoreHandle};

/// Forwards the updates of one timestamped key-value store. Several forwarders may share a
/// store (the inputs of a cogroup, whose outputs merge): each update goes out once, through
/// whichever of them takes it first.
pub(crate) struct CachedForwarder<K, V> {
    store: KeyValueStoreHandle<K, (V, i64)>,
    /// `None`: the store has no cache.
    flushed: Option<FlushedUpdates<K, (V, i64)>>,
}

impl<K: Clone + 'static, V: Clone + 'static> CachedForwarder<K, V> {
    pub(crate) fn new(store: KeyValueStoreHandle<K, (V, i64)>) -> Self {
        CachedForwarder {
            flushed: store.collect_flushed(),
            store,
        }
    }

    /// The store.
    pub(crate) fn store(&self) -> &KeyValueStoreHandle<K, (V, i64)> {
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
