//! [`PartitionQueues`]: a fetch queue of its own for every assigned partition, read in turn.
//!
//! librdkafka hands a consumer's messages over in one queue, in the order fetch responses
//! arrived, and a single response can carry a whole producer batch of one partition (10 000
//! records and more). Read from that queue, the tasks of a thread work through a backlog one
//! partition after the other: one task runs while the others wait for minutes. Splitting the
//! queue per partition lets the thread take a few records from each partition per round, the
//! way Kafka Streams fills each partition's buffer.

use std::sync::Arc;

use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

use crate::error::StreamsError;
use crate::record::RawRecord;

pub(crate) struct PartitionQueues<C: ConsumerContext + 'static> {
    /// The assignment the queues were split for.
    version: u64,
    /// Each queue with its topic name, shared by the records read from it.
    queues: Vec<(Option<Arc<str>>, PartitionQueue<C>)>,
}

impl<C: ConsumerContext + 'static> PartitionQueues<C> {
    pub fn new() -> Self {
        PartitionQueues {
            version: 0,
            queues: Vec::new(),
        }
    }

    /// Splits a queue off for every assigned partition when the assignment changed since the
    /// last call (an assignment ends the queues of the previous one). Messages fetched before
    /// the split still arrive through the consumer's own queue.
    pub fn follow_assignment(
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
            if let Some(queue) = consumer.split_partition_queue(elem.topic(), elem.partition()) {
                self.queues.push((None, queue));
            }
        }
        Ok(())
    }

    /// Takes up to `per_partition` waiting records from each partition, without blocking, and
    /// hands them to `sink`; returns how many.
    pub fn poll(
        &mut self,
        per_partition: usize,
        mut sink: impl FnMut(RawRecord) -> Result<(), StreamsError>,
    ) -> Result<usize, StreamsError> {
        let mut polled = 0;
        for (topic, queue) in &mut self.queues {
            for _ in 0..per_partition {
                match queue.poll(std::time::Duration::ZERO) {
                    None => break,
                    Some(Ok(message)) => {
                        sink(super::stream_thread::to_raw(&message, topic))?;
                        polled += 1;
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "consumer error");
                        break;
                    }
                }
            }
        }
        Ok(polled)
    }
}
