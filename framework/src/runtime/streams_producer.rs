//! [`StreamsProducer`]: a stream thread's Kafka producer — the one send path for sink,
//! repartition, dead-letter and changelog records, the thread's transaction, and the record
//! of what the broker acknowledged or refused.
//!
//! A delivery the producer gave up on is remembered until the tasks that sent it are closed
//! dirty ([`DeliveryTracker::clear`]): every commit in between fails, so input offsets never
//! move past output the broker does not have.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message, TopicPartitionList};

use super::client_health::ClientHealth;
use crate::error::StreamsError;
use crate::faults::{FaultPoint, Faults};
use crate::record::Headers;
use crate::task::TopicPartition;

/// How long a transaction call may block before it is retried (and shutdown is checked).
const TRANSACTION_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an at-least-once flush waits for acknowledgements before the commit is postponed.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);
/// A send that waits this long for room in the producer's queue is reported, once.
const QUEUE_FULL_REPORT_AFTER: Duration = Duration::from_secs(5);

/// What a record is, for what a failed delivery means: lost output may be skipped by the
/// production error policy, a lost changelog record never (the store would disagree with
/// its changelog). Travels with the record as librdkafka's per-message opaque, so delivery
/// reports need no topic-name convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Destination {
    /// Sink, repartition and dead-letter records.
    Output,
    /// A store's changelog.
    Changelog,
}

impl Destination {
    fn opaque(self) -> usize {
        self as usize
    }

    fn from_opaque(opaque: usize) -> Self {
        if opaque == Destination::Changelog as usize {
            Destination::Changelog
        } else {
            Destination::Output
        }
    }
}

/// Remembers the first failed delivery, and the last acknowledged offset of every changelog
/// partition: a checkpoint may only claim changelog records the broker has.
#[derive(Default)]
pub(crate) struct DeliveryTracker {
    first_error: Mutex<Option<String>>,
    /// By topic, then partition: a delivery report finds its entry without allocating.
    changelog_offsets: Mutex<HashMap<String, HashMap<i32, i64>>>,
}

impl DeliveryTracker {
    /// The first failed delivery since the last [`clear`](Self::clear). It stays until then:
    /// a commit that saw it must not be followed by one that does not.
    pub(crate) fn error(&self) -> Option<String> {
        self.first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forgets a failed delivery once the tasks that sent it were closed dirty, so their
    /// input is processed again from the last commit.
    pub(crate) fn clear(&self) {
        self.first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    /// A record that could not even be handed to the producer; the next commit fails.
    pub(crate) fn record_failed_send(&self, text: String) {
        self.record_error(text);
    }

    fn record_error(&self, text: String) {
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(text);
    }

    /// The last acknowledged offset of changelog partition `tp`.
    pub(crate) fn changelog_offset(&self, tp: &TopicPartition) -> Option<i64> {
        self.changelog_offsets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&*tp.topic)
            .and_then(|partitions| partitions.get(&tp.partition))
            .copied()
    }

    fn acknowledged_changelog(&self, topic: &str, partition: i32, offset: i64) {
        let mut offsets = self
            .changelog_offsets
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let partitions = match offsets.get_mut(topic) {
            Some(partitions) => partitions,
            None => offsets.entry(topic.to_string()).or_default(),
        };
        let entry = partitions.entry(partition).or_insert(-1);
        *entry = (*entry).max(offset);
    }
}

/// The producer's librdkafka context: delivery reports and client errors.
pub(crate) struct DeliveryContext {
    tracker: Arc<DeliveryTracker>,
    health: Arc<ClientHealth>,
    /// The production error policy is `Continue`: lost output (never changelog) is counted
    /// and logged instead of failing the next commit.
    continue_on_error: bool,
}

impl ClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.health.observe("producer", &error, reason);
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let destination = Destination::from_opaque(opaque);
        match result {
            Ok(message) => {
                if destination == Destination::Changelog {
                    self.tracker.acknowledged_changelog(
                        message.topic(),
                        message.partition(),
                        message.offset(),
                    );
                }
            }
            Err((error, message)) => {
                let text = format!(
                    "delivery to {}-{} failed: {error}",
                    message.topic(),
                    message.partition()
                );
                metrics::counter!("streamtime_production_errors_total").increment(1);
                if self.continue_on_error && destination == Destination::Output {
                    tracing::warn!("{text}; skipped (production error policy: continue)");
                    return;
                }
                tracing::error!("{text}");
                self.tracker.record_error(text);
            }
        }
    }
}

/// One record to send, its partition already chosen.
pub(crate) struct ProducerRecord<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Option<&'a Headers>,
    pub timestamp: i64,
}

/// See the module documentation.
pub(crate) struct StreamsProducer {
    producer: ThreadedProducer<DeliveryContext>,
    tracker: Arc<DeliveryTracker>,
    health: Arc<ClientHealth>,
    eos: bool,
    in_transaction: AtomicBool,
    /// A send was refused because the open transaction failed in a way that needs an
    /// abort; cleared by the abort.
    must_abort: AtomicBool,
    /// Set when the application shuts down: blocking loops give up instead of waiting on.
    shutdown: Arc<AtomicBool>,
    faults: Faults,
}

impl StreamsProducer {
    /// Creates the producer from `config`; under exactly-once, initialises its transactions,
    /// retrying while the broker cannot be reached.
    pub(crate) fn new(
        config: rdkafka::ClientConfig,
        eos: bool,
        continue_on_error: bool,
        health: Arc<ClientHealth>,
        shutdown: Arc<AtomicBool>,
        faults: Faults,
    ) -> Result<Self, StreamsError> {
        let tracker = Arc::new(DeliveryTracker::default());
        let context = DeliveryContext {
            tracker: tracker.clone(),
            health: health.clone(),
            continue_on_error,
        };
        let producer = StreamsProducer {
            producer: config.create_with_context(context)?,
            tracker,
            health,
            eos,
            in_transaction: AtomicBool::new(false),
            must_abort: AtomicBool::new(false),
            shutdown,
            faults,
        };
        if eos {
            producer
                .retry("initialising transactions", || {
                    producer
                        .producer
                        .init_transactions(TRANSACTION_CALL_TIMEOUT)
                })
                .map_err(|e| StreamsError::Kafka(format!("cannot initialise transactions: {e}")))?;
        }
        Ok(producer)
    }

    /// Sends one record; the outcome arrives as a delivery report. Waits for room while the
    /// producer's queue is full (the broker is slow or away), until shutdown.
    pub(crate) fn send(
        &self,
        destination: Destination,
        r: ProducerRecord<'_>,
    ) -> Result<(), StreamsError> {
        if self.faults.fail_at(FaultPoint::Send) {
            return Err(StreamsError::Kafka(format!(
                "cannot send to {}: {}",
                r.topic,
                crate::faults::injected(FaultPoint::Send)
            )));
        }
        if self.eos && self.faults.fail_at(FaultPoint::SendInFailedTransaction) {
            return Err(self.refused(&r, KafkaError::MessageProduction(RDKafkaErrorCode::State)));
        }
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(r.topic, destination.opaque())
                .partition(r.partition)
                .timestamp(r.timestamp);
        // An empty header list is still a librdkafka allocation and a copy per record.
        if let Some(headers) = r.headers.filter(|h| !h.is_empty()) {
            let mut native = OwnedHeaders::new_with_capacity(headers.len());
            for h in headers.iter() {
                native = native.insert(Header {
                    key: &h.key,
                    value: h.value.as_deref(),
                });
            }
            record = record.headers(native);
        }
        if let Some(k) = r.key {
            record = record.key(k);
        }
        if let Some(v) = r.value {
            record = record.payload(v);
        }
        let mut waiting_since: Option<Instant> = None;
        let mut reported = false;
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    if reported {
                        tracing::info!(topic = r.topic, waited = ?waiting_since.map(|t| t.elapsed()),
                            "the producer's queue has room again");
                    }
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // The producer's own thread drains the queue; wait for room.
                    record = back;
                    let since = *waiting_since.get_or_insert_with(Instant::now);
                    if self.shutdown.load(Ordering::Relaxed) {
                        return Err(StreamsError::Kafka(format!(
                            "shut down while waiting {:?} for room in the producer's queue to send to {}-{}",
                            since.elapsed(),
                            r.topic,
                            r.partition
                        )));
                    }
                    if !reported && since.elapsed() >= QUEUE_FULL_REPORT_AFTER {
                        reported = true;
                        tracing::warn!(topic = r.topic, partition = r.partition, waited = ?since.elapsed(),
                            "the producer's queue is full (is the broker reachable?); waiting for room");
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(self.refused(&r, e)),
            }
        }
    }

    /// The error for a send the producer refused with `e`.
    fn refused(&self, r: &ProducerRecord<'_>, e: KafkaError) -> StreamsError {
        if self.eos
            && self.in_transaction()
            && matches!(e, KafkaError::MessageProduction(RDKafkaErrorCode::State))
        {
            // librdkafka refuses sends once the open transaction failed in an abortable way,
            // e.g. when the broker timed it out during an outage longer than
            // `transaction.timeout.ms`: the app aborts and goes on from the last commit
            // instead of failing (a fatal error is told apart by `has_failed`).
            self.must_abort.store(true, Ordering::Relaxed);
        }
        StreamsError::Kafka(format!("cannot send to {}-{}: {e}", r.topic, r.partition))
    }

    /// The delivery record: acknowledged changelog offsets and the first failed delivery.
    pub(crate) fn deliveries(&self) -> &DeliveryTracker {
        &self.tracker
    }

    /// Current partition count of `topic`, from the broker.
    pub(crate) fn partition_count(&self, topic: &str) -> Result<i32, StreamsError> {
        let metadata = self
            .producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(30))?;
        metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().len() as i32)
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                StreamsError::MissingTopic(format!("output topic {topic} does not exist"))
            })
    }

    /// At-least-once commit step 2: waits for every in-flight send. `Err` when the broker
    /// did not acknowledge them in time (the commit is postponed, nothing is lost).
    pub(crate) fn flush(&self) -> Result<(), KafkaError> {
        if self.faults.fail_at(FaultPoint::Flush) {
            return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
        }
        self.producer.flush(FLUSH_TIMEOUT)
    }

    /// Under exactly-once, opens the thread's transaction if none is open, so every send
    /// belongs to one.
    pub(crate) fn begin_transaction(&self) -> Result<(), StreamsError> {
        if self.eos && !self.in_transaction.load(Ordering::Relaxed) {
            self.producer
                .begin_transaction()
                .map_err(|e| StreamsError::Kafka(format!("cannot begin a transaction: {e}")))?;
            self.in_transaction.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether a transaction is open.
    pub(crate) fn in_transaction(&self) -> bool {
        self.in_transaction.load(Ordering::Relaxed)
    }

    /// Exactly-once commit steps 2 and 3: the offsets join the transaction, which then
    /// commits (flushing every send of it first). Timeouts are retried until shutdown.
    pub(crate) fn commit_transaction(
        &self,
        offsets: &TopicPartitionList,
        group: &ConsumerGroupMetadata,
    ) -> Result<(), KafkaError> {
        if self.faults.fail_at(FaultPoint::CommitTransaction) {
            // An error that is neither a timeout nor abortable nor fencing: the thread fails.
            return Err(KafkaError::Global(
                RDKafkaErrorCode::InvalidTransactionalState,
            ));
        }
        if offsets.count() > 0 {
            self.retry("sending the offsets to the transaction", || {
                self.producer
                    .send_offsets_to_transaction(offsets, group, TRANSACTION_CALL_TIMEOUT)
            })?;
        }
        self.retry("committing the transaction", || {
            self.producer.commit_transaction(TRANSACTION_CALL_TIMEOUT)
        })?;
        self.in_transaction.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Whether a send was refused because the open transaction must be aborted (see
    /// [`StreamsProducer::send`]); the next successful abort clears it.
    pub(crate) fn must_abort(&self) -> bool {
        self.must_abort.load(Ordering::Relaxed) && !self.has_failed()
    }

    /// Aborts the open transaction, if any: none of its sends or offsets become visible.
    /// Timeouts are retried until shutdown.
    pub(crate) fn abort_transaction(&self) -> Result<(), KafkaError> {
        if !self.in_transaction.load(Ordering::Relaxed) {
            self.must_abort.store(false, Ordering::Relaxed);
            return Ok(());
        }
        if self.faults.fail_at(FaultPoint::AbortTransaction) {
            return Err(KafkaError::Global(
                RDKafkaErrorCode::InvalidTransactionalState,
            ));
        }
        self.retry("aborting the transaction", || {
            self.producer.abort_transaction(TRANSACTION_CALL_TIMEOUT)
        })?;
        self.in_transaction.store(false, Ordering::Relaxed);
        self.must_abort.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// The producer's fatal error, if librdkafka raised one (e.g. fenced by a newer producer
    /// with the same transactional id).
    pub(crate) fn fatal_error(&self) -> Option<StreamsError> {
        self.health.take_fatal(self.producer.client())
    }

    /// Whether the producer was fenced (see [`ClientHealth::is_fenced`]).
    pub(crate) fn is_fenced(&self) -> bool {
        self.eos && self.health.is_fenced(self.producer.client())
    }

    /// Whether a client error ends the thread or migrates its tasks; cheap (a flag), for
    /// every round of the stream loop.
    pub(crate) fn has_failed(&self) -> bool {
        self.health.is_failed()
    }

    /// Repeats a transaction call that failed in a retriable way (it timed out, e.g. while
    /// the broker is unreachable): librdkafka resumes the same operation when it is called
    /// again, and nothing else may happen in the transaction meanwhile. Gives up on shutdown;
    /// any other outcome is returned.
    fn retry(
        &self,
        what: &str,
        call: impl Fn() -> Result<(), KafkaError>,
    ) -> Result<(), KafkaError> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            match call() {
                Err(KafkaError::Transaction(e)) if e.is_retriable() => {
                    metrics::counter!("streamtime_commit_retries_total").increment(1);
                    if self.shutdown.load(Ordering::Relaxed) {
                        tracing::warn!(error = %e, waited = ?started.elapsed(),
                            "{what} timed out; not retrying while shutting down");
                        return Err(KafkaError::Transaction(e));
                    }
                    tracing::warn!(error = %e, waited = ?started.elapsed(), ?backoff,
                        "{what} timed out; retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                other => return other,
            }
        }
    }
}
