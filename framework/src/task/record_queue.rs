//! [`RecordQueue`]: the buffer of fetched, not yet processed records of one input partition.

use std::collections::VecDeque;
use std::sync::Arc;

use super::TopicPartition;
use crate::error::StreamsError;
use crate::record::RawRecord;
use crate::timestamp::{InvalidTimestampPolicy, TimestampExtractor};

/// Records of one partition in offset order, with the extracted timestamp of the head.
pub(crate) struct RecordQueue {
    pub tp: TopicPartition,
    /// Index of the task's source node that reads this partition.
    pub source: usize,
    extractor: Arc<dyn TimestampExtractor>,
    records: VecDeque<RawRecord>,
    head_timestamp: Option<i64>,
    /// Largest timestamp that reached the head of this queue; -1 before any.
    pub partition_time: i64,
    /// Excluded from time synchronisation until a record arrives or the app includes it.
    pub excluded: bool,
    /// Records dropped for invalid timestamps.
    pub dropped: u64,
}

impl RecordQueue {
    pub(crate) fn new(
        tp: TopicPartition,
        source: usize,
        extractor: Arc<dyn TimestampExtractor>,
    ) -> Self {
        RecordQueue {
            tp,
            source,
            extractor,
            records: VecDeque::new(),
            head_timestamp: None,
            partition_time: -1,
            excluded: false,
            dropped: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub(crate) fn push(&mut self, record: RawRecord) {
        self.records.push_back(record);
    }

    /// Extracted timestamp of the head record, if the queue has one with a valid timestamp.
    pub(crate) fn head_timestamp(&self) -> Option<i64> {
        self.head_timestamp
    }

    /// Makes sure the head record's timestamp is extracted, dropping invalid records as the
    /// policy says. Errors only under [`InvalidTimestampPolicy::Fail`].
    pub(crate) fn update_head(
        &mut self,
        policy: InvalidTimestampPolicy,
    ) -> Result<(), StreamsError> {
        while self.head_timestamp.is_none() {
            let Some(head) = self.records.front() else {
                return Ok(());
            };
            let extracted = self.extractor.extract(head, self.partition_time);
            let timestamp = if extracted >= 0 {
                extracted
            } else {
                match policy {
                    InvalidTimestampPolicy::Fail => {
                        return Err(StreamsError::InvalidTimestamp {
                            context: format!("{}-{}@{}", head.topic, head.partition, head.offset),
                            timestamp: extracted,
                        })
                    }
                    InvalidTimestampPolicy::UsePartitionTime if self.partition_time >= 0 => {
                        self.partition_time
                    }
                    _ => {
                        tracing::warn!(
                            topic = %head.topic, partition = head.partition, offset = head.offset,
                            timestamp = extracted,
                            "dropping record with invalid timestamp"
                        );
                        self.records.pop_front();
                        // Counted per task by `TaskMetrics`, which knows the task id.
                        self.dropped += 1;
                        continue;
                    }
                }
            };
            self.head_timestamp = Some(timestamp);
            self.partition_time = self.partition_time.max(timestamp);
        }
        Ok(())
    }

    /// Removes the head record with its timestamp. Call [`RecordQueue::update_head`] first.
    pub(crate) fn pop(&mut self) -> Option<(RawRecord, i64)> {
        let timestamp = self.head_timestamp.take()?;
        self.records.pop_front().map(|r| (r, timestamp))
    }

    /// Discards everything buffered (the partition is being closed).
    pub(crate) fn clear(&mut self) {
        self.records.clear();
        self.head_timestamp = None;
    }
}
