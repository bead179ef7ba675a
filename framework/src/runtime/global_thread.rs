//! [`GlobalThread`]: fills the instance's global stores from every partition of their
//! topics before any stream thread starts, then keeps them current until the instance
//! closes (Kafka Streams' `GlobalStreamThread`).
//!
//! Stores live in memory and the topic is their changelog: every start reads the topic from
//! the beginning (read_committed under exactly-once), so there is no checkpoint to trust or
//! corrupt. One consumer per topic, assigned every partition, in no group and committing
//! nothing; the end of the first read is the broker's end of each partition, seen as
//! librdkafka's partition-EOF event (which also passes transaction markers).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::client_config::ClientRole;
use crate::config::StreamsConfig;
use crate::error::StreamsError;
use crate::task::global_stores::{apply, GlobalStore, GlobalStores};

/// How long metadata and watermark requests of the first read may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// The threads following the global tables' topics.
pub(crate) struct GlobalThread {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl GlobalThread {
    /// Reads every global table's topic to its current end into `stores`, then starts a
    /// thread per topic that applies what follows. `None` without global tables.
    pub(crate) fn start(
        config: &StreamsConfig,
        stores: &GlobalStores,
    ) -> Result<Option<GlobalThread>, StreamsError> {
        if stores.is_empty() {
            return Ok(None);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for topic in stores.topics() {
            let targets: Vec<GlobalStore> = stores.of_topic(&topic).cloned().collect();
            let consumer = consumer(config, &topic)?;
            fill(&consumer, &topic, &targets)?;
            let stop = stop.clone();
            let handle = std::thread::Builder::new()
                .name(format!("{}-GlobalStreamThread", config.application_id))
                .spawn(move || follow(&consumer, &topic, &targets, &stop))?;
            handles.push(handle);
        }
        Ok(Some(GlobalThread { stop, handles }))
    }

    /// Stops following the topics and waits for the threads.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

impl Drop for GlobalThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An assign-only consumer of every partition of `topic`, from the beginning.
fn consumer(config: &StreamsConfig, topic: &str) -> Result<BaseConsumer, StreamsError> {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &config.bootstrap_servers)
        // Required by librdkafka even for assign-only use; never joined or committed.
        .set("group.id", format!("{}-global", config.application_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set(
            "isolation.level",
            if config.is_exactly_once() {
                "read_committed"
            } else {
                "read_uncommitted"
            },
        );
    config.with_client_properties(ClientRole::RestoreConsumer, &mut cc);
    let consumer: BaseConsumer = cc.create()?;
    let metadata = consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(StreamsError::MissingTopic(format!(
            "global table topic {topic} does not exist; create it before starting the app"
        )));
    }
    let mut assignment = TopicPartitionList::new();
    for p in partitions {
        assignment.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    Ok(consumer)
}

/// Applies the records of `topic` until every partition reached its end once.
fn fill(consumer: &BaseConsumer, topic: &str, stores: &[GlobalStore]) -> Result<(), StreamsError> {
    let partitions: BTreeSet<i32> = consumer
        .assignment()?
        .elements()
        .iter()
        .map(|e| e.partition())
        .collect();
    let mut at_end = BTreeSet::new();
    let (started, mut logged) = (Instant::now(), Instant::now());
    let mut applied: u64 = 0;
    while at_end != partitions {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                for store in stores {
                    apply(
                        store,
                        m.key(),
                        m.payload(),
                        m.timestamp().to_millis().unwrap_or(0),
                    );
                }
                applied += 1;
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => {
                tracing::warn!(topic, error = %e, "global table read failed; retrying");
            }
            None => {}
        }
        if logged.elapsed() >= Duration::from_secs(2) {
            logged = Instant::now();
            tracing::info!(
                topic,
                records = applied,
                partitions_done = at_end.len(),
                partitions = partitions.len(),
                "filling the global stores"
            );
        }
    }
    tracing::info!(topic, records = applied, elapsed = ?started.elapsed(), "global stores filled");
    metrics::counter!("streamtime_global_records_total", "topic" => topic.to_string())
        .increment(applied);
    Ok(())
}

/// Applies the records of `topic` as they come, until `stop`.
fn follow(consumer: &BaseConsumer, topic: &str, stores: &[GlobalStore], stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                for store in stores {
                    apply(
                        store,
                        m.key(),
                        m.payload(),
                        m.timestamp().to_millis().unwrap_or(0),
                    );
                }
                metrics::counter!("streamtime_global_records_total", "topic" => topic.to_string())
                    .increment(1);
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => {
                // librdkafka reconnects on its own; the stores stay as they are meanwhile.
                tracing::warn!(topic, error = %e, "global table read failed; retrying");
            }
        }
    }
}
