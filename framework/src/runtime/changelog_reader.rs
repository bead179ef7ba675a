//! [`restore`]: brings a task's stores up to date from their changelogs before it processes
//! anything, with a separate assign-based consumer (no group membership, nothing committed).

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::ClientContext;
use rdkafka::{Message, Offset, TopicPartitionList};

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
/// to the current end of its changelog partition.
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
    let mut total = 0_u64;
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
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&changelog.topic, changelog.partition, Offset::Offset(start))?;
        consumer.assign(&tpl)?;
        let to_restore = high - start;
        tracing::info!(%task, topic = %changelog.topic, partition = changelog.partition, from = start, to = high,
            records = to_restore, "restoring store from its changelog");
        let counter =
            metrics::counter!("streamtime_restored_records_total", "task" => task.to_string());
        let remaining_gauge =
            metrics::gauge!("streamtime_restore_remaining_records", "task" => task.to_string());
        let mut batch: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(BATCH);
        let mut last_offset = start - 1;
        let mut restored = 0_u64;
        let mut last_report = Instant::now();
        let flush =
            |batch: &mut Vec<(Vec<u8>, Option<Vec<u8>>)>, state: &mut StateManager, last: i64| {
                if batch.is_empty() {
                    return Ok(());
                }
                let view: Vec<(&[u8], Option<&[u8]>)> = batch
                    .iter()
                    .map(|(k, v)| (k.as_slice(), v.as_deref()))
                    .collect();
                let result = state.restore(changelog.store, &view, last);
                batch.clear();
                result
            };
        loop {
            match consumer.poll(Duration::from_millis(500)) {
                Some(Ok(m)) => {
                    let Some(key) = m.key() else {
                        tracing::warn!(topic = %changelog.topic, offset = m.offset(), "skipping changelog record without key");
                        continue;
                    };
                    batch.push((key.to_vec(), m.payload().map(<[u8]>::to_vec)));
                    last_offset = m.offset();
                    restored += 1;
                    if batch.len() >= BATCH {
                        flush(&mut batch, state, last_offset)?;
                        counter.increment(BATCH as u64);
                    }
                    if m.offset() + 1 >= high {
                        break;
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(e)) => {
                    tracing::warn!(%task, error = %e, "changelog read error during restore; retrying");
                }
                None => {}
            }
            if last_report.elapsed() >= PROGRESS_EVERY {
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                let remaining = (high - last_offset - 1).max(0);
                remaining_gauge.set(remaining as f64);
                let rate = restored as f64 / secs;
                tracing::info!(%task, topic = %changelog.topic, restored, remaining,
                    rate = format!("{rate:.0}/s"),
                    eta = format!("{:.0}s", remaining as f64 / rate.max(1.0)),
                    "restore progress");
                last_report = Instant::now();
            }
        }
        let pending = batch.len() as u64;
        flush(&mut batch, state, last_offset)?;
        counter.increment(pending);
        remaining_gauge.set(0.0);
        total += restored;
    }
    let stats = RestoreStats {
        records: total,
        elapsed: started.elapsed(),
    };
    if total > 0 {
        tracing::info!(%task, records = total, elapsed = ?stats.elapsed,
            rate = format!("{:.0}/s", total as f64 / stats.elapsed.as_secs_f64().max(1e-3)),
            "restore finished");
    }
    Ok(stats)
}
