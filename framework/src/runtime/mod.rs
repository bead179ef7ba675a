//! The live runtime: stream threads over Kafka consumers and producers.

pub(crate) mod active_task_creator;
pub(crate) mod app_shared;
pub(crate) mod app_state;
pub(crate) mod assignor;
pub(crate) mod changelog_reader;
pub(crate) mod client_health;
pub(crate) mod commit_gate;
pub(crate) mod commit_metadata;
pub(crate) mod committer;
pub(crate) mod consumed_record;
pub(crate) mod global_thread;
pub(crate) mod identity;
pub(crate) mod internal_topics;
pub(crate) mod kafka_collector;
pub(crate) mod member_assignment;
pub(crate) mod membership;
pub(crate) mod native;
pub(crate) mod open_transaction_watch;
pub(crate) mod partition_queues;
pub(crate) mod queries;
pub(crate) mod repartition_purger;
pub(crate) mod restore_progress;
pub(crate) mod shutdown_request;
pub(crate) mod standby;
pub(crate) mod stream_thread;
pub(crate) mod streams_producer;
pub(crate) mod task_assignment;
pub(crate) mod task_executor;
pub(crate) mod task_manager;
pub(crate) mod tasks;

/// Milliseconds since the epoch.
pub(crate) fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
