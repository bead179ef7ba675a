//! [`restore`]: brings a task's stores up to date from their changelogs before it processes
//! anything, with a separate assign-based consumer (no group membership, nothing committed).

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};

use super::message_batch::{ConsumerQueue, MessageBatch};
use super::restore_progress::RestoreProgress;
use crate::config::StreamsConfig;
use crate::error::StreamsError;
use crate::task::state_manager::StateManager;
use crate::task::TaskId;

const BATCH: usize = 2_000;
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// What a restore did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RestoreStats {
    pub records: u64,
    pub elapsed: Duration,
}

/// The restore consumer's context: reaching the end of a partition is how a restore knows it
/// is done, not an error worth logging.
pub(crate) struct RestoreContext;

impl ClientContext for RestoreContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let eof = matches!(
            error,
            KafkaError::PartitionEOF(_)
                | KafkaError::Global(rdkafka::error::RDKafkaErrorCode::PartitionEOF)
        );
        if !eof {
            tracing::error!(error = %error, reason, "restore consumer error");
        }
    }
}

impl ConsumerContext for RestoreContext {}

/// An assign-based changelog consumer (no group membership, nothing committed).
pub(crate) fn consumer(
    config: &StreamsConfig,
) -> Result<BaseConsumer<RestoreContext>, StreamsError> {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &config.bootstrap_servers)
        // Required by librdkafka even for assign-only use; never joined or committed.
        .set("group.id", format!("{}-restore", config.application_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760");
    if config.is_exactly_once() {
        cc.set("isolation.level", "read_committed");
    }
    Ok(cc.create_with_context(RestoreContext)?)
}

/// Restores every changelogged store of a task from its checkpointed offset (or the start)
/// to the current end of its changelog partition, logging progress (records done of the
/// total, rate, time left) every couple of seconds.
pub(crate) fn restore(
    config: &StreamsConfig,
    task: TaskId,
    state: &mut StateManager,
) -> Result<RestoreStats, StreamsError> {
    let changelogs = state.changelogs();
    if changelogs.is_empty() {
        return Ok(RestoreStats::default());
    }
    let started = Instant::now();
    let consumer = consumer(config)?;
    // Every changelog's range first, so progress is reported against the task's total.
    let mut plan = Vec::new();
    for changelog in changelogs {
        let (low, high) = consumer
            .fetch_watermarks(&changelog.topic, changelog.partition, METADATA_TIMEOUT)
            .map_err(|e| {
                StreamsError::Kafka(format!(
                    "cannot read the end of changelog {}-{}: {e}",
                    changelog.topic, changelog.partition
                ))
            })?;
        let start = changelog.from.unwrap_or(low).max(low);
        if start >= high {
            tracing::debug!(%task, topic = %changelog.topic, "store is up to date with its changelog");
            continue;
        }
        plan.push((changelog, start, high));
    }
    let total: u64 = plan
        .iter()
        .map(|(_, start, high)| (high - start) as u64)
        .sum();
    if total == 0 {
        return Ok(RestoreStats::default());
    }
    tracing::info!(%task, records = total, changelogs = plan.len(), "restoring stores from their changelogs");
    let mut progress = RestoreProgress::new(task, total, PROGRESS_EVERY);
    let counter =
        metrics::counter!("streamtime_restored_records_total", "task" => task.to_string());
    let mut restored_total = 0_u64;
    let queue = ConsumerQueue::of(&consumer);
    let mut batch = MessageBatch::new(BATCH);
    for (changelog, start, high) in plan {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&changelog.topic, changelog.partition, Offset::Offset(start))?;
        consumer.assign(&tpl)?;
        tracing::info!(%task, topic = %changelog.topic, partition = changelog.partition, from = start, to = high,
            records = high - start, "restoring store from its changelog");
        let mut done = false;
        while !done {
            // A batch call waits until its batch is full or its timeout passes: take what is
            // there, and wait only briefly when nothing is.
            if batch.fill(&queue, Duration::ZERO) == 0
                && batch.fill(&queue, Duration::from_millis(5)) == 0
            {
                continue;
            }
            // Keys and values are read in place from librdkafka's buffers.
            let mut records: Vec<(&[u8], Option<&[u8]>)> = Vec::with_capacity(BATCH);
            let mut last_offset = start - 1;
            for m in batch.iter() {
                if let Some(err) = m.error() {
                    if err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__PARTITION_EOF {
                        done = true;
                        break;
                    }
                    tracing::warn!(%task, error = ?err, "changelog read error during restore; retrying");
                    continue;
                }
                if m.partition() != changelog.partition {
                    // Left over from the previous changelog's partition.
                    continue;
                }
                let Some(key) = m.key() else {
                    tracing::warn!(topic = %changelog.topic, offset = m.offset(), "skipping changelog record without key");
                    continue;
                };
                records.push((key, m.payload()));
                last_offset = m.offset();
                if m.offset() + 1 >= high {
                    done = true;
                    break;
                }
            }
            if records.is_empty() {
                continue;
            }
            let result = state.restore(changelog.store, &records, last_offset);
            counter.increment(records.len() as u64);
            progress.advance(records.len() as u64);
            restored_total += records.len() as u64;
            result?;
        }
    }
    state.flush_stores()?;
    let done = progress.finish();
    let stats = RestoreStats {
        records: restored_total,
        elapsed: started.elapsed(),
    };
    tracing::info!(%task, records = restored_total, elapsed = ?stats.elapsed,
        "restore finished: {done}");
    Ok(stats)
}
