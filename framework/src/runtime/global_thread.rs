//! [`GlobalThread`]: fills the instance's global stores from every partition of their
//! topics before any stream thread starts, then keeps them current until the instance
//! closes (Kafka Streams' `GlobalStreamThread`).
//!
//! The topic is the stores' changelog (read_committed under exactly-once). Persistent stores
//! keep a checkpoint per topic, written after flushing them once per commit interval and when
//! the instance closes: a restart reads each partition from after its checkpointed offset. A
//! checkpoint the topic no longer matches (an offset past a partition's end after the topic
//! was recreated, or before its start after records expired), or none, empties the stores
//! first, as stale keys would otherwise survive the reread. In-memory stores read the topic
//! from the beginning on every start. One consumer per topic, assigned every partition, in
//! no group and committing nothing; the end of the first read is the broker's end of each
//! partition, seen as librdkafka's partition-EOF event (which also passes transaction
//! markers). Restores are reported to the instance's restore listener.

use std::collections::{BTreeMap, BTreeSet};
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
use crate::faults::FaultPoint;
use crate::lifecycle::StateRestoreListener;
use crate::task::global_stores::{GlobalStores, TopicStores};
use streamtime_state::{CheckpointOffsets, TopicPartition};

/// How long metadata and watermark requests of the first read may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// The threads following the global tables' topics.
pub(crate) struct GlobalThread {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl GlobalThread {
    /// Reads every global table's topic to its current end into `stores`, then starts a
    /// thread per topic that applies what follows. `None` without global tables. A thread
    /// whose stores cannot be written stops and hands the error to `failed`, which stops
    /// the instance (as in Kafka Streams, where the global thread's death is the client's).
    pub(crate) fn start(
        config: &StreamsConfig,
        stores: &GlobalStores,
        listener: Option<Arc<dyn StateRestoreListener>>,
        failed: Arc<dyn Fn(StreamsError) + Send + Sync>,
    ) -> Result<Option<GlobalThread>, StreamsError> {
        if stores.is_empty() {
            return Ok(None);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for topic in stores.topics() {
            let (consumer, partitions) = consumer(config, &topic)?;
            let mut reader = TopicReader {
                targets: stores.of_topic(&topic),
                positions: BTreeMap::new(),
                unsaved: false,
                checkpoint_interval: config.effective_commit_interval(),
                topic,
            };
            let ends = reader.assign(&consumer, &partitions)?;
            reader.fill(&consumer, &ends, listener.as_deref())?;
            reader.save()?;
            let stop = stop.clone();
            let (failed, faults) = (failed.clone(), config.faults.clone());
            let handle = std::thread::Builder::new()
                .name(format!("{}-GlobalStreamThread", config.application_id))
                .spawn(move || {
                    if let Err(e) = reader.follow(&consumer, &stop, &faults) {
                        failed(e);
                    }
                })?;
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

/// An assign-only consumer for `topic`, and the topic's partitions.
fn consumer(config: &StreamsConfig, topic: &str) -> Result<(BaseConsumer, Vec<i32>), StreamsError> {
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
    config.with_client_properties(ClientRole::GlobalConsumer, &mut cc);
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
    Ok((consumer, partitions))
}

/// Reads one topic into the stores that follow it.
struct TopicReader {
    topic: String,
    targets: TopicStores,
    /// Per partition, the offset of the last record the stores hold.
    positions: BTreeMap<i32, i64>,
    /// Records applied since the last checkpoint.
    unsaved: bool,
    checkpoint_interval: Duration,
}

impl TopicReader {
    /// Assigns every partition from after its checkpointed offset (from the beginning
    /// without a checkpoint the topic matches, after emptying the stores). Returns each
    /// partition's end offset at the start.
    fn assign(
        &mut self,
        consumer: &BaseConsumer,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, i64>, StreamsError> {
        let topic = self.topic.as_str();
        let mut bounds = BTreeMap::new();
        for &p in partitions {
            bounds.insert(p, consumer.fetch_watermarks(topic, p, METADATA_TIMEOUT)?);
        }
        let checkpoint = self.targets.checkpoint.as_ref().and_then(|c| c.read());
        let saved: Option<BTreeMap<i32, i64>> = checkpoint.and_then(|offsets| {
            offsets
                .into_iter()
                .map(|(tp, offset)| {
                    let (low, high) = *bounds.get(&tp.partition)?;
                    let next = offset + 1;
                    (&*tp.topic == topic && next >= low && next <= high)
                        .then_some((tp.partition, offset))
                })
                .collect()
        });
        match saved {
            Some(positions) => {
                tracing::info!(
                    topic,
                    ?positions,
                    "global stores continue from their checkpoint"
                );
                self.positions = positions;
            }
            None => {
                if self.targets.checkpoint.is_some() {
                    tracing::info!(
                        topic,
                        "no checkpoint matches the topic: emptying its global stores to read it again"
                    );
                }
                for store in &self.targets.stores {
                    store.clear()?;
                }
                self.positions.clear();
                // Even an empty topic's stores then get a checkpoint that matches it.
                self.unsaved = true;
            }
        }
        let mut assignment = TopicPartitionList::new();
        for &p in partitions {
            let offset = match self.positions.get(&p) {
                Some(o) => Offset::Offset(o + 1),
                None => Offset::Beginning,
            };
            assignment.add_partition_offset(topic, p, offset)?;
        }
        consumer.assign(&assignment)?;
        Ok(bounds.into_iter().map(|(p, (_, high))| (p, high)).collect())
    }

    fn apply(&mut self, m: &rdkafka::message::BorrowedMessage<'_>) -> Result<(), StreamsError> {
        let timestamp = m.timestamp().to_millis().unwrap_or(0);
        for store in &self.targets.stores {
            store.apply(m.key(), m.payload(), timestamp)?;
        }
        self.positions.insert(m.partition(), m.offset());
        self.unsaved = true;
        Ok(())
    }

    /// Flushes the stores and records how far they have read (persistent stores only).
    fn save(&mut self) -> Result<(), StreamsError> {
        let Some(file) = &self.targets.checkpoint else {
            return Ok(());
        };
        if !self.unsaved {
            return Ok(());
        }
        for store in &self.targets.stores {
            store.flush()?;
        }
        let offsets: CheckpointOffsets = self
            .positions
            .iter()
            .map(|(&p, &o)| (TopicPartition::new(self.topic.as_str(), p), o))
            .collect();
        file.write(&offsets)
            .map_err(|e| StreamsError::State(format!("global stores of {}: {e}", self.topic)))?;
        self.unsaved = false;
        Ok(())
    }

    /// Applies the records of the topic until every partition reached its end once.
    fn fill(
        &mut self,
        consumer: &BaseConsumer,
        ends: &BTreeMap<i32, i64>,
        listener: Option<&dyn StateRestoreListener>,
    ) -> Result<(), StreamsError> {
        let topic = self.topic.clone();
        let tp = |p: i32| TopicPartition::new(topic.as_str(), p);
        let starts: BTreeMap<i32, i64> = ends
            .keys()
            .map(|&p| (p, self.positions.get(&p).map_or(0, |o| o + 1)))
            .collect();
        if let Some(listener) = listener {
            for (&p, &end) in ends {
                for store in &self.targets.stores {
                    listener.on_restore_start(&tp(p), store.name(), starts[&p], end);
                }
            }
        }
        let mut at_end = BTreeSet::new();
        let (started, mut logged) = (Instant::now(), Instant::now());
        let mut applied: BTreeMap<i32, u64> = BTreeMap::new();
        while at_end.len() != ends.len() {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    self.apply(&m)?;
                    *applied.entry(m.partition()).or_default() += 1;
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
                    records = applied.values().sum::<u64>(),
                    partitions_done = at_end.len(),
                    partitions = ends.len(),
                    "filling the global stores"
                );
            }
        }
        let total: u64 = applied.values().sum();
        tracing::info!(topic, records = total, elapsed = ?started.elapsed(), "global stores filled");
        metrics::counter!("streamtime_global_records_total", "topic" => topic.clone())
            .increment(total);
        if let Some(listener) = listener {
            for &p in ends.keys() {
                let n = applied.get(&p).copied().unwrap_or(0);
                for store in &self.targets.stores {
                    listener.on_restore_end(&tp(p), store.name(), n);
                }
            }
        }
        Ok(())
    }

    /// Applies the records of the topic as they come, checkpointing once per interval and
    /// on the way out, until `stop`; an error writing the stores ends it.
    fn follow(
        mut self,
        consumer: &BaseConsumer,
        stop: &AtomicBool,
        faults: &crate::faults::Faults,
    ) -> Result<(), StreamsError> {
        let topic = self.topic.clone();
        let records =
            metrics::counter!("streamtime_global_records_total", "topic" => topic.clone());
        let mut saved = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let applied = match faults.fail_at(FaultPoint::GlobalApply) {
                        true => Err(StreamsError::State(format!(
                            "global store of {topic}: {}",
                            crate::faults::injected(FaultPoint::GlobalApply)
                        ))),
                        false => self.apply(&m),
                    };
                    if let Err(e) = applied {
                        // The stores cannot be written: serving them ever staler is worse
                        // than stopping the instance, loudly.
                        tracing::error!(topic, error = %e, "global stores stop following their topic; stopping the instance");
                        return Err(e);
                    }
                    records.increment(1);
                }
                Some(Err(KafkaError::PartitionEOF(_))) | None => {}
                Some(Err(e)) => {
                    // librdkafka reconnects on its own; the stores stay as they are meanwhile.
                    tracing::warn!(topic, error = %e, "global table read failed; retrying");
                }
            }
            if saved.elapsed() >= self.checkpoint_interval {
                saved = Instant::now();
                if let Err(e) = self.save() {
                    tracing::warn!(topic, error = %e, "global store checkpoint failed; retrying at the next interval");
                }
            }
        }
        if let Err(e) = self.save() {
            tracing::warn!(topic, error = %e, "global store checkpoint failed on close; the next start reads more");
        }
        Ok(())
    }
}
