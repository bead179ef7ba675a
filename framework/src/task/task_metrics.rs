//! [`TaskMetrics`]: the per-task series of docs/semantics.md §10, each labelled
//! `task="<s>_<p>"`.
//!
//! | series | kind | meaning |
//! |---|---|---|
//! | `streamtime_processed_records_total` | counter | records the task processed |
//! | `streamtime_dropped_records_total{reason}` | counter | records dropped: `invalid_timestamp`, `late` (also `node`), `deserialization_error`, `processing_error` |
//! | `streamtime_enforced_processing_total` | counter | times the task processed without an empty, caught-up partition after `max_task_idle` |
//! | `streamtime_stream_time_ms` | gauge | the task's stream time |
//! | `streamtime_record_lateness_ms` | histogram | stream time minus timestamp of each record, 0 when in order |
//! | `streamtime_commit_latency_seconds` | histogram | duration of the commits the task took part in |
//! | `streamtime_consumer_lag_records` | gauge | records of its partitions not processed yet: on the broker past the fetch position, plus buffered |
//! | `streamtime_buffered_records` | gauge | records buffered in the task |
//! | `streamtime_excluded_partitions` | gauge | partitions excluded from time synchronisation |
//! | `streamtime_task_stalled` | gauge | 1 while the stall detector reports the task stalled |
//! | `streamtime_restore_total_records`, `streamtime_restored_records_total`, `streamtime_restore_remaining_records`, `streamtime_restore_rate_records_per_second` | gauge, counter, gauge, gauge | restore progress (`runtime::changelog_reader`) |

use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};

use super::partition_group::PartitionGroup;
use super::TaskId;

/// Metric handles of one task; registered once, so the hot path is an atomic add.
pub(crate) struct TaskMetrics {
    processed: Counter,
    lateness: Histogram,
    enforced: Counter,
    invalid_timestamp: Counter,
    stream_time: Gauge,
    buffered: Gauge,
    excluded: Gauge,
    lag: Gauge,
    stalled: Gauge,
    commit_latency: Histogram,
    /// Counts of the partition group already turned into counter increments.
    seen_enforced: u64,
    seen_invalid: u64,
}

impl TaskMetrics {
    pub(crate) fn new(task: TaskId) -> Self {
        let id = task.to_string();
        TaskMetrics {
            processed: metrics::counter!("streamtime_processed_records_total", "task" => id.clone()),
            lateness: metrics::histogram!("streamtime_record_lateness_ms", "task" => id.clone()),
            enforced: metrics::counter!("streamtime_enforced_processing_total", "task" => id.clone()),
            invalid_timestamp: metrics::counter!("streamtime_dropped_records_total",
                "reason" => "invalid_timestamp", "task" => id.clone()),
            stream_time: metrics::gauge!("streamtime_stream_time_ms", "task" => id.clone()),
            buffered: metrics::gauge!("streamtime_buffered_records", "task" => id.clone()),
            excluded: metrics::gauge!("streamtime_excluded_partitions", "task" => id.clone()),
            lag: metrics::gauge!("streamtime_consumer_lag_records", "task" => id.clone()),
            stalled: metrics::gauge!("streamtime_task_stalled", "task" => id.clone()),
            commit_latency: metrics::histogram!("streamtime_commit_latency_seconds", "task" => id),
            seen_enforced: 0,
            seen_invalid: 0,
        }
    }

    /// One record processed at `timestamp`, when the task's stream time was
    /// `stream_time_before` (−1 before the first record).
    pub(crate) fn processed(&self, stream_time_before: i64, timestamp: i64) {
        self.processed.increment(1);
        if stream_time_before >= 0 {
            self.lateness
                .record(stream_time_before.saturating_sub(timestamp).max(0) as f64);
        }
    }

    pub(crate) fn committed(&self, latency: Duration) {
        self.commit_latency.record(latency.as_secs_f64());
    }

    pub(crate) fn set_stalled(&self, stalled: bool) {
        self.stalled.set(if stalled { 1.0 } else { 0.0 });
    }

    /// Publishes the gauges and turns the partition group's own counts (kept without a
    /// task label) into the task's counters. `broker_lag` is what the broker holds past the
    /// fetch position over the task's partitions, when known.
    pub(crate) fn publish(&mut self, group: &PartitionGroup, broker_lag: Option<u64>) {
        let queues = group.queues();
        let buffered: usize = queues.iter().map(|q| q.len()).sum();
        self.stream_time.set(group.stream_time() as f64);
        self.buffered.set(buffered as f64);
        self.excluded
            .set(queues.iter().filter(|q| q.excluded).count() as f64);
        if let Some(lag) = broker_lag {
            self.lag.set((lag + buffered as u64) as f64);
        }
        let enforced = group.enforced_processing;
        self.enforced
            .increment(enforced.saturating_sub(self.seen_enforced));
        self.seen_enforced = enforced;
        let invalid = group.dropped();
        self.invalid_timestamp
            .increment(invalid.saturating_sub(self.seen_invalid));
        self.seen_invalid = invalid;
    }
}
