//! The live [`RecordCollector`]: sends sink output with the thread's producer.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message};

use super::record_collector::{OutgoingRecord, RecordCollector};
use crate::error::{ProcessResult, StreamsError};

/// Remembers the first failed delivery so the next commit fails instead of committing input
/// offsets whose output was lost.
///
/// It also keeps the last acknowledged offset of every changelog partition: a checkpoint may
/// only claim changelog records the broker has.
#[derive(Default)]
pub(crate) struct DeliveryTracker {
    first_error: Mutex<Option<String>>,
    /// By topic, then partition: a delivery report finds its entry without allocating.
    changelog_offsets: Mutex<HashMap<String, HashMap<i32, i64>>>,
}

impl DeliveryTracker {
    pub fn take_error(&self) -> Option<String> {
        self.first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    pub fn record_error(&self, text: String) {
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(text);
    }

    pub fn changelog_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.changelog_offsets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(topic)
            .and_then(|partitions| partitions.get(&partition))
            .copied()
    }
}

/// Producer context recording delivery failures.
#[derive(Clone, Default)]
pub(crate) struct CollectorContext {
    pub tracker: Arc<DeliveryTracker>,
    /// The production error policy is `Continue`: lost output (never changelog) is counted
    /// and logged instead of failing the next commit.
    pub continue_on_error: bool,
}

impl ClientContext for CollectorContext {}

impl ProducerContext for CollectorContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) if message.topic().ends_with("-changelog") => {
                let mut offsets = self
                    .tracker
                    .changelog_offsets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let topic = message.topic();
                let partitions = match offsets.get_mut(topic) {
                    Some(partitions) => partitions,
                    None => offsets.entry(topic.to_string()).or_default(),
                };
                let entry = partitions.entry(message.partition()).or_insert(-1);
                *entry = (*entry).max(message.offset());
            }
            Ok(_) => {}
            Err((error, message)) => {
                let text = format!(
                    "delivery to {}-{} failed: {error}",
                    message.topic(),
                    message.partition()
                );
                metrics::counter!("streamtime_production_errors_total").increment(1);
                if self.continue_on_error && !message.topic().ends_with("-changelog") {
                    tracing::warn!("{text}; skipped (production error policy: continue)");
                    return;
                }
                tracing::error!("{text}");
                self.tracker.record_error(text);
            }
        }
    }
}

pub(crate) type StreamsProducer = ThreadedProducer<CollectorContext>;

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
        let metadata = self
            .producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(30))?;
        let n = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().len() as i32)
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                StreamsError::MissingTopic(format!("output topic {topic} does not exist"))
            })?;
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
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(r.topic)
            .partition(r.partition)
            .timestamp(r.timestamp);
        // An empty header list is still a librdkafka allocation and a copy per record.
        if !r.headers.is_empty() {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for h in r.headers.iter() {
                headers = headers.insert(Header {
                    key: &h.key,
                    value: h.value.as_deref(),
                });
            }
            record = record.headers(headers);
        }
        if let Some(k) = r.key {
            record = record.key(k);
        }
        if let Some(v) = r.value {
            record = record.payload(v);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // The producer's own thread drains the queue; wait for room.
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => {
                    return Err(StreamsError::Kafka(format!(
                        "cannot send to {}-{}: {e}",
                        r.topic, r.partition
                    )))
                }
            }
        }
    }
}

/// Sends a store's changes to its changelog partition with the thread's producer (inside the
/// open transaction under exactly-once).
pub(crate) struct KafkaChangelogWriter {
    pub producer: Arc<StreamsProducer>,
    pub tracker: Arc<DeliveryTracker>,
    pub topic: String,
    pub partition: i32,
    pub sent: Arc<std::sync::atomic::AtomicU64>,
}

impl streamtime_state::ChangelogWriter for KafkaChangelogWriter {
    fn send(&mut self, key: &[u8], value: Option<&[u8]>, timestamp: i64) {
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic)
            .partition(self.partition)
            .key(key)
            .timestamp(timestamp);
        if let Some(v) = value {
            record = record.payload(v);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => {
                    // Surfaces at the next commit, which then fails instead of committing
                    // offsets past a change the changelog never got.
                    self.tracker.record_error(format!(
                        "cannot send to {}-{}: {e}",
                        self.topic, self.partition
                    ));
                    return;
                }
            }
        }
    }
}
