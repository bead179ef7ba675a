//! The live [`RecordCollector`] and changelog writer: both hand their records to the
//! thread's [`StreamsProducer`].

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::streams_producer::{Destination, ProducerRecord, StreamsProducer};
use crate::error::{ProcessResult, StreamsError};
use crate::task::record_collector::{OutgoingRecord, RecordCollector};
use crate::task::TopicPartition;

/// Partition counts of output topics with when they were read, shared by the tasks of one
/// thread.
pub(crate) type PartitionCache = Rc<PartitionCounts>;

/// See [`PartitionCache`]. Every record sent asks for its topic's count, so the lookup is a
/// scan of a few names (cheaper than hashing one) against a clock read once per processing
/// round rather than per record.
#[derive(Default)]
pub(crate) struct PartitionCounts {
    counts: RefCell<Vec<(String, i32, Instant)>>,
    round_start: Cell<Option<Instant>>,
}

impl PartitionCounts {
    /// Starts a processing round: counts are judged fresh or stale against this instant until
    /// the next round.
    pub(crate) fn start_round(&self) {
        self.round_start.set(Some(Instant::now()));
    }

    fn now(&self) -> Instant {
        self.round_start.get().unwrap_or_else(Instant::now)
    }

    fn get(&self, topic: &str) -> Option<(i32, Instant)> {
        self.counts
            .borrow()
            .iter()
            .find(|(t, _, _)| t == topic)
            .map(|&(_, n, read)| (n, read))
    }

    fn set(&self, topic: &str, n: i32, read: Instant) {
        let mut counts = self.counts.borrow_mut();
        match counts.iter_mut().find(|(t, _, _)| t == topic) {
            Some((_, count, at)) => (*count, *at) = (n, read),
            None => counts.push((topic.to_string(), n, read)),
        }
    }
}

pub(crate) struct KafkaRecordCollector {
    pub producer: Arc<StreamsProducer>,
    pub partitions: PartitionCache,
    /// How long a partition count is trusted: partitions added to an output topic get
    /// records once it has passed.
    pub max_age: Duration,
}

impl RecordCollector for KafkaRecordCollector {
    fn partitions(&mut self, topic: &str) -> Result<i32, StreamsError> {
        let cached = self.partitions.get(topic);
        if let Some((n, read)) = cached {
            if self.partitions.now().saturating_duration_since(read) < self.max_age {
                return Ok(n);
            }
        }
        let n = self.producer.partition_count(topic)?;
        let previous = cached.map(|(old, _)| old);
        if previous.is_some_and(|old| old != n) {
            tracing::info!(
                topic,
                partitions = n,
                previous,
                "output topic changed its partition count"
            );
        }
        self.partitions.set(topic, n, Instant::now());
        Ok(n)
    }

    fn send(&mut self, r: OutgoingRecord<'_>) -> ProcessResult {
        self.producer.send(
            Destination::Output,
            ProducerRecord {
                topic: r.topic,
                partition: r.partition,
                key: r.key,
                value: r.value,
                headers: Some(r.headers),
                timestamp: r.timestamp,
            },
        )
    }
}

/// Sends a store's changes to its changelog partition with the thread's producer (inside the
/// open transaction under exactly-once).
pub(crate) struct KafkaChangelogWriter {
    pub producer: Arc<StreamsProducer>,
    pub changelog: TopicPartition,
    pub sent: Arc<std::sync::atomic::AtomicU64>,
}

impl streamtime_state::ChangelogWriter for KafkaChangelogWriter {
    fn send(&mut self, key: &[u8], value: Option<&[u8]>, timestamp: i64) {
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sent = self.producer.send(
            Destination::Changelog,
            ProducerRecord {
                topic: &self.changelog.topic,
                partition: self.changelog.partition,
                key: Some(key),
                value,
                headers: None,
                timestamp,
            },
        );
        if let Err(e) = sent {
            // Surfaces at the next commit, which then fails instead of committing offsets
            // past a change the changelog never got.
            self.producer.deliveries().record_failed_send(e.to_string());
        }
    }
}
