//! What happens to records too late for their windows: a record no window takes is dropped,
//! counted in `streamtime_dropped_records_total{reason="late"}`, logged with its
//! coordinates, and handed to an optional hook and/or written to a dead-letter topic. A
//! record late for some of its windows (hopping and sliding windows) but taken by others is
//! not dropped: only `streamtime_late_window_drops_total`, one per closed window a record
//! missed (Kafka Streams' `dropped-records` unit), counts it.

use std::sync::Arc;

use super::windows::Window;
use crate::processor::ProcessorContext;
use crate::record::{Record, RecordMetadata};
use crate::serdes::{to_bytes, Serde};
use crate::ProcessResult;

/// Serdes of a windowed operation's input, for its dead-letter topic.
pub(crate) type LateSerdes<K, V> = Option<(Arc<dyn Serde<K>>, Arc<dyn Serde<V>>)>;

/// A record that arrived after every window it belongs to closed.
#[derive(Debug)]
pub struct LateRecord<'a, K, V> {
    /// The record as the windowed operator received it.
    pub record: &'a Record<K, V>,
    /// The latest closed window it belonged to.
    pub window: Window,
    /// Every closed window it belonged to, by start.
    pub windows: &'a [Window],
    /// The operator's observed stream time when the record arrived.
    pub stream_time: i64,
    /// Where the record was read from (the input record of the task).
    pub source: Option<RecordMetadata>,
}

/// A callback for late records.
pub type OnLate<K, V> = Arc<dyn Fn(&LateRecord<'_, K, V>) + Send + Sync>;

/// The late-record policy of a windowed operation, set on the windowed stream.
pub(crate) struct LatePolicy<K, V> {
    pub on_late: Option<OnLate<K, V>>,
    pub dead_letter_topic: Option<Arc<str>>,
}

impl<K, V> Default for LatePolicy<K, V> {
    fn default() -> Self {
        LatePolicy {
            on_late: None,
            dead_letter_topic: None,
        }
    }
}

impl<K, V> Clone for LatePolicy<K, V> {
    fn clone(&self) -> Self {
        LatePolicy {
            on_late: self.on_late.clone(),
            dead_letter_topic: self.dead_letter_topic.clone(),
        }
    }
}

/// The per-task side of a [`LatePolicy`]: counts, logs, calls the hook, writes the
/// dead-letter record (with the input serdes, so it can be replayed as it was).
pub(crate) struct LateRecordHandler<K, V> {
    node: Arc<str>,
    policy: LatePolicy<K, V>,
    serdes: LateSerdes<K, V>,
    dropped: u64,
    counter: metrics::Counter,
    /// One per closed window a record missed, dropped or not.
    missed: metrics::Counter,
}

/// Late drops are logged at warn for the first and then every this many, the rest at debug,
/// so a burst of late data cannot flood the logs.
const WARN_EVERY: u64 = 10_000;

impl<K: 'static, V: 'static> LateRecordHandler<K, V> {
    pub(super) fn new(
        node: &str,
        task: &str,
        policy: LatePolicy<K, V>,
        serdes: LateSerdes<K, V>,
    ) -> Self {
        LateRecordHandler {
            node: Arc::from(node),
            policy,
            serdes,
            dropped: 0,
            counter: metrics::counter!("streamtime_dropped_records_total",
                "reason" => "late", "task" => task.to_string(), "node" => node.to_string()),
            missed: metrics::counter!("streamtime_late_window_drops_total",
                "task" => task.to_string(), "node" => node.to_string()),
        }
    }

    /// Counts `n` closed windows a record missed while other windows took it.
    pub(super) fn missed_windows(&mut self, n: usize) {
        self.missed.increment(n as u64);
    }

    /// The handler of the windowed processor `ctx` belongs to.
    pub(super) fn for_node<KO, VO>(
        ctx: &ProcessorContext<KO, VO>,
        policy: LatePolicy<K, V>,
        serdes: LateSerdes<K, V>,
    ) -> Self {
        Self::new(ctx.node_name(), &ctx.task_id().to_string(), policy, serdes)
    }

    /// Drops `record`, too late for every one of its `windows` (closed, by start; not
    /// empty).
    pub(super) fn drop_late<KO: Clone + 'static, VO: Clone + 'static>(
        &mut self,
        ctx: &mut ProcessorContext<KO, VO>,
        record: &Record<K, V>,
        windows: &[Window],
        stream_time: i64,
    ) -> ProcessResult {
        let window = *windows.last().expect("a late record has a closed window");
        self.dropped += 1;
        self.counter.increment(1);
        self.missed.increment(windows.len() as u64);
        let source = ctx.record_metadata();
        let (topic, partition, offset) = source
            .as_ref()
            .map_or(("-", -1, -1), |m| (&*m.topic, m.partition, m.offset));
        if self.dropped == 1 || self.dropped.is_multiple_of(WARN_EVERY) {
            tracing::warn!(node = %self.node, topic, partition, offset, timestamp = record.timestamp,
                window_start = window.start, window_end = window.end, stream_time,
                dropped = self.dropped, "dropping a record too late for its window");
        } else {
            tracing::debug!(node = %self.node, topic, partition, offset, timestamp = record.timestamp,
                window_start = window.start, window_end = window.end, stream_time,
                "dropping a record too late for its window");
        }
        if let Some(hook) = &self.policy.on_late {
            hook(&LateRecord {
                record,
                window,
                windows,
                stream_time,
                source,
            });
        }
        if let (Some(topic), Some((keys, values))) = (&self.policy.dead_letter_topic, &self.serdes)
        {
            let serde_error =
                |what: &str, e: crate::serdes::SerdeError| crate::StreamsError::Serde {
                    context: format!("{what} for dead-letter topic {topic} (node {})", self.node),
                    message: e.0,
                };
            let key = to_bytes(&**keys, &record.key).map_err(|e| serde_error("key", e))?;
            let value = to_bytes(&**values, &record.value).map_err(|e| serde_error("value", e))?;
            ctx.send_bytes(
                topic,
                key.as_deref(),
                value.as_deref(),
                record.timestamp,
                &record.headers,
            )?;
        }
        Ok(())
    }
}
