//! [`PartitionQueues`]: a fetch queue of its own for every assigned partition, read in turn.
//!
//! librdkafka hands a consumer's messages over in one queue, in the order fetch responses
//! arrived, and a single response can carry a whole producer batch of one partition (10 000
//! records and more). Read from that queue, the tasks of a thread work through a backlog one
//! partition after the other: one task runs while the others wait for minutes. Splitting the
//! queue per partition lets the thread take a few records from each partition per round, the
//! way Kafka Streams fills each partition's buffer.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::types::RDKafkaRespErr;

use super::native::queue::{MessageBatch, PartitionFetchQueue};
use crate::error::StreamsError;
use crate::record::RawRecord;

pub(crate) struct PartitionQueues<C: ConsumerContext + 'static> {
    /// The assignment the queues were split for.
    version: u64,
    /// Each queue with its topic name, shared by the records read from it.
    queues: Vec<(Arc<str>, PartitionFetchQueue<C>)>,
    /// Reused for every read: one librdkafka call takes a partition's waiting records.
    batch: MessageBatch,
}

impl<C: ConsumerContext + 'static> PartitionQueues<C> {
    /// Queues read `per_partition` records at a time.
    pub(crate) fn new(per_partition: usize) -> Self {
        PartitionQueues {
            version: 0,
            queues: Vec::new(),
            batch: MessageBatch::new(per_partition),
        }
    }

    /// Splits a queue off for every assigned partition when the assignment changed since the
    /// last call (an assignment ends the queues of the previous one). Messages fetched before
    /// the split still arrive through the consumer's own queue.
    pub(crate) fn follow_assignment(
        &mut self,
        consumer: &Arc<BaseConsumer<C>>,
        version: u64,
    ) -> Result<(), StreamsError> {
        if version == self.version {
            return Ok(());
        }
        self.version = version;
        self.queues.clear();
        for elem in consumer.assignment()?.elements() {
            if let Some(queue) =
                PartitionFetchQueue::split(consumer, elem.topic(), elem.partition())
            {
                self.queues.push((Arc::from(elem.topic()), queue));
            }
        }
        Ok(())
    }

    /// Takes the records waiting in each partition's queue (up to the batch size each),
    /// without blocking, and hands each partition's to `sink` at once; returns how many.
    pub(crate) fn poll(
        &mut self,
        mut sink: impl FnMut(Vec<RawRecord>) -> Result<(), StreamsError>,
    ) -> Result<usize, StreamsError> {
        let mut polled = 0;
        for (topic, queue) in &self.queues {
            let n = self.batch.fill(queue, Duration::ZERO);
            if n == 0 {
                continue;
            }
            let mut records = Vec::with_capacity(n);
            for m in self.batch.iter() {
                if let Some(err) = m.error() {
                    if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__PARTITION_EOF {
                        tracing::warn!(%topic, partition = m.partition(), error = ?err, "consumer error");
                    }
                    continue;
                }
                records.push(super::consumed_record::raw_record(
                    topic.clone(),
                    m.partition(),
                    m.offset(),
                    m.timestamp(),
                    m.key(),
                    m.payload(),
                    m.headers(),
                ));
            }
            polled += records.len();
            sink(records)?;
        }
        Ok(polled)
    }
}
