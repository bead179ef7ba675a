//! [`TopicPartition`]: a partition of a topic, the one type the workspace names partitions by
//! (changelog partitions in checkpoints, input partitions of tasks).

use std::fmt;
use std::sync::Arc;

/// A partition of a topic. Ordered by topic name, then partition: the tie-break order of the
/// record chooser.
///
/// ```
/// use streamtime_state::TopicPartition;
/// let tp = TopicPartition::new("orders", 3);
/// assert_eq!(tp.to_string(), "orders-3");
/// assert!(TopicPartition::new("a", 9) < TopicPartition::new("b", 0));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name (Kafka topic names have no whitespace).
    pub topic: Arc<str>,
    /// Partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic partition.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
