//! [`RecordCollector`]: where sinks hand their serialized records.
//!
//! The live runtime sends them with the Kafka producer; the test driver appends them to
//! in-memory topics. Either way the sink has already chosen the partition.

use crate::error::{ProcessResult, StreamsError};
use crate::record::Headers;

/// A serialized output record with its destination partition.
#[derive(Debug)]
pub(crate) struct OutgoingRecord<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a Headers,
    pub timestamp: i64,
}

pub(crate) trait RecordCollector {
    /// Current partition count of `topic`.
    fn partitions(&mut self, topic: &str) -> Result<i32, StreamsError>;
    /// Sends (or queues for sending) one record.
    fn send(&mut self, record: OutgoingRecord<'_>) -> ProcessResult;
}
