//! The live [`RecordCollector`]: sends sink output with the thread's producer.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message};

use super::record_collector::{OutgoingRecord, RecordCollector};
use crate::error::{ProcessResult, StreamsError};

/// Remembers the first failed delivery so the next commit fails instead of committing input
/// offsets whose output was lost.
#[derive(Default)]
pub(crate) struct DeliveryTracker {
    first_error: Mutex<Option<String>>,
}

impl DeliveryTracker {
    pub fn take_error(&self) -> Option<String> {
        self.first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

/// Producer context recording delivery failures.
#[derive(Clone, Default)]
pub(crate) struct CollectorContext {
    pub tracker: Arc<DeliveryTracker>,
}

impl ClientContext for CollectorContext {}

impl ProducerContext for CollectorContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, message)) = result {
            let text = format!(
                "delivery to {}-{} failed: {error}",
                message.topic(),
                message.partition()
            );
            tracing::error!("{text}");
            metrics::counter!("streamtime_production_errors_total").increment(1);
            let mut first = self
                .tracker
                .first_error
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            first.get_or_insert(text);
        }
    }
}

pub(crate) type StreamsProducer = ThreadedProducer<CollectorContext>;

/// Partition counts of output topics, shared by the tasks of one thread.
pub(crate) type PartitionCache = Rc<RefCell<HashMap<String, i32>>>;

pub(crate) struct KafkaRecordCollector {
    pub producer: Arc<StreamsProducer>,
    pub partitions: PartitionCache,
}

impl RecordCollector for KafkaRecordCollector {
    fn partitions(&mut self, topic: &str) -> Result<i32, StreamsError> {
        if let Some(&n) = self.partitions.borrow().get(topic) {
            return Ok(n);
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
        self.partitions.borrow_mut().insert(topic.to_string(), n);
        Ok(n)
    }

    fn send(&mut self, r: OutgoingRecord<'_>) -> ProcessResult {
        let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
        for h in r.headers.iter() {
            headers = headers.insert(Header {
                key: &h.key,
                value: h.value.as_deref(),
            });
        }
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(r.topic)
            .partition(r.partition)
            .timestamp(r.timestamp)
            .headers(headers);
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
