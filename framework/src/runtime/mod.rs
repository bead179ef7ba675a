//! The live runtime: stream threads over Kafka consumers and producers.

pub(crate) mod app_shared;
pub(crate) mod assignor;
pub(crate) mod changelog_reader;
pub(crate) mod commit_gate;
pub(crate) mod identity;
pub(crate) mod internal_topics;
pub(crate) mod kafka_collector;
pub(crate) mod member_assignment;
pub(crate) mod membership;
pub(crate) mod message_batch;
pub(crate) mod partition_queues;
pub(crate) mod queries;
pub(crate) mod record_collector;
pub(crate) mod restore_progress;
pub(crate) mod standby;
pub(crate) mod stream_thread;
pub(crate) mod task_manager;

/// Milliseconds since the epoch.
pub(crate) fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
