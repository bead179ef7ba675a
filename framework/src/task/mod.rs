//! Tasks: one sub-topology on one partition of each of its source topics.

pub(crate) mod global_stores;
pub(crate) mod partition_group;
pub(crate) mod record_collector;
pub(crate) mod record_errors;
pub(crate) mod record_queue;
pub(crate) mod stall;
pub(crate) mod state_manager;
pub(crate) mod stream_task;
pub(crate) mod task_context;
pub(crate) mod task_metrics;
pub(crate) mod watermarks;

use std::fmt;

/// Identifies a task: sub-topology `subtopology` on partition `partition` of its sources.
/// Displayed as `s_p`, like Kafka Streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    /// Sub-topology id.
    pub subtopology: u32,
    /// Partition number.
    pub partition: i32,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.subtopology, self.partition)
    }
}

pub use streamtime_state::TopicPartition;
