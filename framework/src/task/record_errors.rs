//! [`RecordErrorHandler`]: applies the deserialization and processing error policies to a
//! record that failed inside a task: skip it (counted, logged, maybe dead-lettered) or fail.

use std::sync::Arc;

use super::{TaskId, TopicPartition};
use crate::error::StreamsError;
use crate::error_policy::{headers, DeserializationErrorPolicy, ProcessingErrorPolicy};
use crate::partitioner::partition_for_key;
use crate::record::RawRecord;
use crate::task::record_collector::{OutgoingRecord, RecordCollector};

/// Skips are logged at warn for the first and then every this many per task and reason (the
/// rest at debug), so a flood of poison records cannot flood the logs.
const WARN_EVERY: u64 = 1_000;

/// The error policies a task applies.
#[derive(Debug, Clone, Default)]
pub(crate) struct ErrorPolicies {
    pub deserialization: DeserializationErrorPolicy,
    pub processing: ProcessingErrorPolicy,
}

struct Reason {
    name: &'static str,
    skipped: u64,
    counter: metrics::Counter,
}

impl Reason {
    fn new(name: &'static str, task: TaskId) -> Self {
        Reason {
            name,
            skipped: 0,
            counter: metrics::counter!("streamtime_dropped_records_total",
                "reason" => name, "task" => task.to_string()),
        }
    }
}

pub(crate) struct RecordErrorHandler {
    task: TaskId,
    policies: ErrorPolicies,
    dead_letter_topic: Option<Arc<str>>,
    deserialization: Reason,
    processing: Reason,
}

impl RecordErrorHandler {
    pub(crate) fn new(task: TaskId, policies: ErrorPolicies) -> Self {
        let dead_letter_topic = match &policies.deserialization {
            DeserializationErrorPolicy::DeadLetter { topic } => Some(Arc::from(topic.as_str())),
            _ => None,
        };
        RecordErrorHandler {
            task,
            policies,
            dead_letter_topic,
            deserialization: Reason::new("deserialization_error", task),
            processing: Reason::new("processing_error", task),
        }
    }

    /// Records skipped so far by either policy.
    pub(crate) fn skipped(&self) -> u64 {
        self.deserialization.skipped + self.processing.skipped
    }

    /// Decides the fate of `raw`, read from `tp`, which failed with `error`: `Ok` when the
    /// record was skipped and processing goes on, the error when the policy is to fail.
    pub(crate) fn handle(
        &mut self,
        error: StreamsError,
        tp: &TopicPartition,
        raw: &RawRecord,
        collector: &mut dyn RecordCollector,
    ) -> Result<(), StreamsError> {
        let reason = match (&error, &self.policies) {
            (StreamsError::Deserialization { .. }, p)
                if p.deserialization != DeserializationErrorPolicy::Fail =>
            {
                if let Some(topic) = &self.dead_letter_topic {
                    send_dead_letter(collector, topic, tp, raw, &error)?;
                }
                &mut self.deserialization
            }
            (StreamsError::Processing { .. } | StreamsError::Serde { .. }, p)
                if p.processing == ProcessingErrorPolicy::Continue =>
            {
                &mut self.processing
            }
            _ => return Err(error),
        };
        reason.skipped += 1;
        reason.counter.increment(1);
        let (task, skipped, why) = (self.task, reason.skipped, reason.name);
        if skipped == 1 || skipped.is_multiple_of(WARN_EVERY) {
            tracing::warn!(%task, partition = %tp, offset = raw.offset, reason = why, skipped,
                error = %error, "skipping a record the topology cannot handle");
        } else {
            tracing::debug!(%task, partition = %tp, offset = raw.offset, reason = why,
                error = %error, "skipping a record the topology cannot handle");
        }
        Ok(())
    }
}

/// Writes the record's original bytes to the dead-letter topic, with where it came from and
/// why it failed in headers.
fn send_dead_letter(
    collector: &mut dyn RecordCollector,
    topic: &str,
    tp: &TopicPartition,
    raw: &RawRecord,
    error: &StreamsError,
) -> Result<(), StreamsError> {
    let partitions = collector.partitions(topic)?;
    let partition = raw
        .key
        .as_deref()
        .map_or(0, |k| partition_for_key(k, partitions));
    let headers = raw
        .headers
        .clone()
        .with(headers::ERROR, error.to_string())
        .with(headers::TOPIC, tp.topic.as_bytes())
        .with(headers::PARTITION, tp.partition.to_string())
        .with(headers::OFFSET, raw.offset.to_string());
    collector.send(OutgoingRecord {
        topic,
        partition,
        key: raw.key.as_deref(),
        value: raw.value.as_deref(),
        headers: &headers,
        timestamp: raw.timestamp,
    })
}
