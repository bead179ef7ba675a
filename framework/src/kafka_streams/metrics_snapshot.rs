//! [`KafkaStreams::metrics`]: an in-process snapshot of the instance's task metrics, as Kafka
//! Streams' `metrics()`, for health checks and tests that do not scrape an exporter.
//!
//! Names are those of the series recorded through the `metrics` facade
//! (`docs/operations.md` lists them), so a snapshot and a Prometheus scrape agree, except
//! that dropped records are one total per task (the series splits them by reason) and the
//! snapshot adds per-partition values (`streamtime_partition_buffered_records`,
//! `streamtime_partition_time_ms`) and `streamtime_restoring`. It is built from the task
//! status the stream threads publish a few times a second, not from a recorder: an
//! application keeps whatever recorder it installed.

use super::{KafkaStreams, StatusHandle, TaskStatus};

/// One value of a [`KafkaStreams::metrics`] snapshot.
///
/// ```
/// use streamtime::kafka_streams::Metric;
/// let m = Metric { name: "streamtime_processed_records_total", tags: vec![("task", "0_1".into())], value: 42.0 };
/// assert_eq!(m.tag("task"), Some("0_1"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The metric's name, as exported.
    pub name: &'static str,
    /// Its tags: `task`, and `partition` for per-partition values.
    pub tags: Vec<(&'static str, String)>,
    /// Its value.
    pub value: f64,
}

impl Metric {
    /// The value of tag `name`.
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The metrics of `tasks`, task by task.
fn snapshot(tasks: &[TaskStatus]) -> Vec<Metric> {
    let mut out = Vec::new();
    for task in tasks {
        let id = task.id.to_string();
        let per_task = |name, value: f64| Metric {
            name,
            tags: vec![("task", id.clone())],
            value,
        };
        out.push(per_task(
            "streamtime_processed_records_total",
            task.processed as f64,
        ));
        out.push(per_task(
            "streamtime_dropped_records_total",
            task.dropped as f64,
        ));
        out.push(per_task(
            "streamtime_enforced_processing_total",
            task.enforced_processing as f64,
        ));
        out.push(per_task(
            "streamtime_stream_time_ms",
            task.stream_time as f64,
        ));
        out.push(per_task(
            "streamtime_restored_records_total",
            task.restored_records as f64,
        ));
        out.push(per_task(
            "streamtime_restoring",
            if task.restoring { 1.0 } else { 0.0 },
        ));
        let buffered: usize = task.partitions.iter().map(|p| p.buffered).sum();
        out.push(per_task("streamtime_buffered_records", buffered as f64));
        for p in &task.partitions {
            let per_partition = |name, value: f64| Metric {
                name,
                tags: vec![("task", id.clone()), ("partition", p.partition.to_string())],
                value,
            };
            out.push(per_partition(
                "streamtime_partition_buffered_records",
                p.buffered as f64,
            ));
            out.push(per_partition(
                "streamtime_partition_time_ms",
                p.partition_time as f64,
            ));
            out.push(per_partition(
                "streamtime_excluded_partitions",
                if p.excluded { 1.0 } else { 0.0 },
            ));
            out.push(per_partition(
                "streamtime_blocked_by_open_transaction",
                if p.blocked_by_open_transaction.is_some() {
                    1.0
                } else {
                    0.0
                },
            ));
        }
    }
    out
}

impl KafkaStreams {
    /// A snapshot of this instance's task metrics (processed and dropped records, stream
    /// time, restores, buffered records per partition...), refreshed a few times a second;
    /// empty before [`KafkaStreams::start`].
    pub fn metrics(&self) -> Vec<Metric> {
        snapshot(&self.task_status())
    }
}

impl StatusHandle {
    /// [`KafkaStreams::metrics`] from a handle.
    pub fn metrics(&self) -> Vec<Metric> {
        snapshot(&self.task_status())
    }
}
