//! [`restore`]: brings a task's stores up to date from their changelogs before it processes
//! anything, with a separate assign-based consumer (no group membership, nothing committed).

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};

use super::message_batch::{BatchMessage, ConsumerQueue, MessageBatch};
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
        // librdkafka stops fetching for `fetch.queue.backoff.ms` (1 s by default) whenever its
        // queue holds `queued.min.messages`: a restore drains that in well under a second and
        // then sat idle, at a fraction of its rate.
        .set("fetch.queue.backoff.ms", "10");
    if config.is_exactly_once() {
        cc.set("isolation.level", "read_committed");
    }
    Ok(cc.create_with_context(RestoreContext)?)
}

/// One changelog partition being restored: the task and store it feeds and where it ends.
struct Restoring {
    task: usize,
    store: usize,
    topic: String,
    partition: i32,
    /// The next offset to apply: anything before it is a duplicate or left over from an
    /// earlier restore of the same partition.
    next: i64,
    end: i64,
    done: bool,
}

/// Restores every changelogged store of `tasks` from its checkpointed offset (or the start)
/// to the current end of its changelog partition, logging each task's progress (records done
/// of the total, rate, time left) every couple of seconds.
///
/// All changelog partitions are read by one consumer at once, as Kafka Streams' restore
/// consumer does: the broker fetches every partition while this thread writes to the stores,
/// instead of one partition after another with a new connection each.
pub(crate) fn restore(
    config: &StreamsConfig,
    consumer: &mut Option<BaseConsumer<RestoreContext>>,
    tasks: &mut [(TaskId, &mut StateManager)],
) -> Result<Vec<RestoreStats>, StreamsError> {
    let mut stats = vec![RestoreStats::default(); tasks.len()];
    if tasks.iter().all(|(_, state)| state.changelogs().is_empty()) {
        return Ok(stats);
    }
    let started = Instant::now();
    let consumer = match consumer {
        Some(c) => c,
        None => consumer.insert(self::consumer(config)?),
    };
    let result = restore_with(consumer, tasks, &mut stats, started);
    // Whatever happened, the consumer stops fetching until the next restore.
    if let Err(e) = consumer.unassign() {
        tracing::warn!(error = %e, "cannot unassign the restore consumer");
    }
    result.map(|()| stats)
}

fn restore_with(
    consumer: &BaseConsumer<RestoreContext>,
    tasks: &mut [(TaskId, &mut StateManager)],
    stats: &mut [RestoreStats],
    started: Instant,
) -> Result<(), StreamsError> {
    // Every changelog's range first, so progress is reported against each task's total.
    let mut plan = Vec::new();
    let mut totals = vec![0_u64; tasks.len()];
    let mut assignment = TopicPartitionList::new();
    for (i, (task, state)) in tasks.iter().enumerate() {
        for changelog in state.changelogs() {
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
            tracing::info!(%task, topic = %changelog.topic, partition = changelog.partition, from = start,
                to = high, records = high - start, "restoring store from its changelog");
            assignment.add_partition_offset(
                &changelog.topic,
                changelog.partition,
                Offset::Offset(start),
            )?;
            totals[i] += (high - start) as u64;
            plan.push(Restoring {
                task: i,
                store: changelog.store,
                topic: changelog.topic,
                partition: changelog.partition,
                next: start,
                end: high,
                done: false,
            });
        }
    }
    if plan.is_empty() {
        return Ok(());
    }
    let progress = tasks
        .iter()
        .zip(&totals)
        .map(|((task, _), &total)| {
            (total > 0).then(|| {
                tracing::info!(%task, records = total, "restoring stores from their changelogs");
                RestoreProgress::new(*task, total, PROGRESS_EVERY)
            })
        })
        .collect();
    let counters = tasks
        .iter()
        .map(|(task, _)| {
            metrics::counter!("streamtime_restored_records_total", "task" => task.to_string())
        })
        .collect();
    let mut tally = Tally {
        progress,
        counters,
        restored: vec![0; tasks.len()],
    };
    let mut left: Vec<usize> = vec![0; tasks.len()];
    for r in &plan {
        left[r.task] += 1;
    }
    consumer.assign(&assignment)?;
    let queue = ConsumerQueue::of(consumer);
    let mut batch = MessageBatch::new(BATCH);
    let mut remaining = plan.len();
    while remaining > 0 {
        // A batch call waits until its batch is full or its timeout passes: take what is
        // there, and wait only briefly when nothing is.
        if batch.fill(&queue, Duration::ZERO) == 0
            && batch.fill(&queue, Duration::from_millis(5)) == 0
        {
            continue;
        }
        // Messages come in runs of one partition (one fetch each); each run is written to
        // its store as one batch, keys and values read in place from librdkafka's buffers.
        let mut records: Vec<(&[u8], Option<&[u8]>)> = Vec::with_capacity(BATCH);
        let mut run: Option<(usize, i64)> = None;
        for m in batch.iter() {
            let at = match run {
                Some((at, _)) if same_partition(&plan[at], &m) => at,
                _ => {
                    if let Some((at, last)) = run.take() {
                        tally.write_run(&plan[at], tasks, &mut records, last)?;
                    }
                    let Some(at) = plan.iter().position(|r| same_partition(r, &m)) else {
                        continue;
                    };
                    run = Some((at, -1));
                    at
                }
            };
            let r = &mut plan[at];
            if r.done || (m.error().is_none() && m.offset() < r.next) {
                continue;
            }
            if let Some(err) = m.error() {
                if err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    r.done = true;
                } else {
                    tracing::warn!(topic = %r.topic, partition = r.partition, error = ?err,
                        "changelog read error during restore; retrying");
                }
            } else {
                if let Some(key) = m.key() {
                    records.push((key, m.payload()));
                    run = Some((at, m.offset()));
                } else {
                    tracing::warn!(topic = %r.topic, offset = m.offset(), "skipping changelog record without key");
                }
                r.next = m.offset() + 1;
                r.done = r.next >= r.end;
            }
            if r.done {
                remaining -= 1;
                left[r.task] -= 1;
                if left[r.task] == 0 {
                    stats[r.task].elapsed = started.elapsed();
                }
            }
        }
        if let Some((at, last)) = run {
            tally.write_run(&plan[at], tasks, &mut records, last)?;
        }
    }
    for (i, (task, state)) in tasks.iter_mut().enumerate() {
        stats[i].records = tally.restored[i];
        let Some(progress) = tally.progress[i].as_mut() else {
            continue;
        };
        state.flush_stores()?;
        let done = progress.finish();
        tracing::info!(%task, records = stats[i].records, elapsed = ?stats[i].elapsed,
            "restore finished: {done}");
    }
    Ok(())
}

fn same_partition(r: &Restoring, m: &BatchMessage<'_>) -> bool {
    r.partition == m.partition() && m.topic() == Some(r.topic.as_str())
}

/// What each task restored so far: its progress report, counter and total.
struct Tally {
    progress: Vec<Option<RestoreProgress>>,
    counters: Vec<metrics::Counter>,
    restored: Vec<u64>,
}

impl Tally {
    /// Writes the records collected for one changelog partition to its store.
    fn write_run(
        &mut self,
        r: &Restoring,
        tasks: &mut [(TaskId, &mut StateManager)],
        records: &mut Vec<(&[u8], Option<&[u8]>)>,
        last_offset: i64,
    ) -> Result<(), StreamsError> {
        if records.is_empty() {
            return Ok(());
        }
        let n = records.len() as u64;
        let result = tasks[r.task].1.restore(r.store, records, last_offset);
        records.clear();
        self.counters[r.task].increment(n);
        if let Some(p) = self.progress[r.task].as_mut() {
            p.advance(n);
        }
        self.restored[r.task] += n;
        result
    }
}
