//! [`restore`]: brings a task's stores up to date from their changelogs before it processes
//! anything, with a separate assign-based consumer (no group membership, nothing committed).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};

use super::client_health::OutageLog;
use super::native::queue::{BatchMessage, ConsumerQueue, MessageBatch};
use super::restore_progress::RestoreProgress;
use crate::config::StreamsConfig;
use crate::error::StreamsError;
use crate::lifecycle::StateRestoreListener;
use crate::task::state_manager::StateManager;
use crate::task::{TaskId, TopicPartition};

const BATCH: usize = 2_000;
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// What a restore did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RestoreStats {
    pub records: u64,
    pub elapsed: Duration,
}

/// How a restore ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Restore {
    /// Every store is up to date with its changelog; per task, what was restored.
    Done(Vec<RestoreStats>),
    /// Nothing was restored: these tasks (indices into the restored slice) have a checkpoint
    /// beyond the end of a changelog, which was deleted and created again (an application
    /// reset that kept local state, say). Their local state cannot be trusted: the caller
    /// wipes it and restores again.
    StaleCheckpoints(Vec<usize>),
    /// The application shuts down: the restore stopped within a batch, and every store
    /// checkpointed what it restored, so the next start goes on from there.
    Interrupted,
}

/// How [`restore_with`] ended.
enum Ended {
    Complete,
    Stale(Vec<usize>),
    Interrupted,
}

/// The restore consumer's context: reaching the end of a partition is how a restore knows it
/// is done, not an error worth logging; other errors are logged once per outage.
#[derive(Default)]
pub(crate) struct RestoreContext {
    errors: OutageLog,
}

impl ClientContext for RestoreContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let eof = matches!(
            error,
            KafkaError::PartitionEOF(_)
                | KafkaError::Global(rdkafka::error::RDKafkaErrorCode::PartitionEOF)
        );
        if !eof {
            self.errors.observe("restore consumer", &error, reason);
        }
    }
}

impl ConsumerContext for RestoreContext {}

/// An assign-based changelog consumer (no group membership, nothing committed), reading
/// committed records only under exactly-once.
pub(crate) fn consumer(
    config: &StreamsConfig,
) -> Result<BaseConsumer<RestoreContext>, StreamsError> {
    consumer_with(config, config.is_exactly_once())
}

fn consumer_with(
    config: &StreamsConfig,
    read_committed: bool,
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
    cc.set(
        "isolation.level",
        if read_committed {
            "read_committed"
        } else {
            "read_uncommitted"
        },
    );
    Ok(cc.create_with_context(RestoreContext::default())?)
}

/// The clients a stream thread restores with, made at first use and kept: a connected
/// consumer makes the next restore start at once.
pub(crate) struct RestoreClients {
    reader: Option<BaseConsumer<RestoreContext>>,
    /// Exactly-once only: reads the high watermark. The reader (`read_committed`) sees the
    /// last stable offset as the end, which stops short of it while a transaction is open.
    watermarks: Option<BaseConsumer<RestoreContext>>,
    shutdown: Arc<AtomicBool>,
}

impl RestoreClients {
    pub fn new(shutdown: Arc<AtomicBool>) -> Self {
        RestoreClients {
            reader: None,
            watermarks: None,
            shutdown,
        }
    }
}

/// One changelog partition being restored: the task and store it feeds and where it ends.
struct Restoring {
    task: usize,
    store: usize,
    store_name: String,
    topic: String,
    partition: i32,
    /// Records applied so far, for the restore listener.
    restored: u64,
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
    clients: &mut RestoreClients,
    tasks: &mut [(TaskId, &mut StateManager)],
    listener: Option<&dyn StateRestoreListener>,
) -> Result<Restore, StreamsError> {
    let mut stats = vec![RestoreStats::default(); tasks.len()];
    if tasks.iter().all(|(_, state)| state.changelogs().is_empty()) {
        return Ok(Restore::Done(stats));
    }
    let started = Instant::now();
    if config.is_exactly_once() && clients.watermarks.is_none() {
        clients.watermarks = Some(consumer_with(config, false)?);
    }
    let consumer = match &mut clients.reader {
        Some(c) => c,
        None => clients.reader.insert(self::consumer(config)?),
    };
    let ends = Ends {
        reader: consumer,
        watermarks: clients.watermarks.as_ref(),
        shutdown: &clients.shutdown,
    };
    let result = restore_with(&ends, tasks, &mut stats, started, listener);
    // Whatever happened, the consumer stops fetching until the next restore.
    if let Err(e) = consumer.unassign() {
        tracing::warn!(error = %e, "cannot unassign the restore consumer");
    }
    Ok(match result? {
        Ended::Complete => Restore::Done(stats),
        Ended::Stale(stale) => Restore::StaleCheckpoints(stale),
        Ended::Interrupted => Restore::Interrupted,
    })
}

/// Where changelog partitions end, for a restore.
struct Ends<'a> {
    reader: &'a BaseConsumer<RestoreContext>,
    watermarks: Option<&'a BaseConsumer<RestoreContext>>,
    shutdown: &'a AtomicBool,
}

impl Ends<'_> {
    /// The partition's first offset, the end a restore reads up to, and its high watermark.
    ///
    /// Under exactly-once the reader sees the last stable offset as the end. While another
    /// producer's transaction is open on the changelog (a previous owner that crashed, until
    /// the broker aborts it after `transaction.timeout.ms`) that stops short of records
    /// committed after the transaction began, by this task's owners since: restoring only to
    /// it would lose them. So the restore waits until the stable offset reaches the high
    /// watermark seen at the start, logging the wait every 10 s, until shutdown.
    /// `None` when the application shuts down while waiting.
    fn of(&self, topic: &str, partition: i32) -> Result<Option<(i64, i64, i64)>, StreamsError> {
        let fetch = |c: &BaseConsumer<RestoreContext>| {
            c.fetch_watermarks(topic, partition, METADATA_TIMEOUT)
                .map_err(|e| {
                    StreamsError::Kafka(format!(
                        "cannot read the end of changelog {topic}-{partition}: {e}"
                    ))
                })
        };
        let (low, mut end) = fetch(self.reader)?;
        let Some(watermarks) = self.watermarks else {
            return Ok(Some((low, end, end)));
        };
        let (_, high) = fetch(watermarks)?;
        let started = Instant::now();
        let mut reported = Instant::now();
        while end < high {
            if self.shutdown.load(Ordering::Relaxed) {
                tracing::info!(
                    topic,
                    partition,
                    stable = end,
                    high,
                    "shutting down while waiting for the changelog's open transaction to end"
                );
                return Ok(None);
            }
            if reported.elapsed() >= Duration::from_secs(10) {
                reported = Instant::now();
                tracing::warn!(topic, partition, stable = end, high, waited = ?started.elapsed(),
                    "a transaction is open on the changelog; the restore waits for it to end");
            }
            std::thread::sleep(Duration::from_millis(200));
            end = fetch(self.reader)?.1;
        }
        if started.elapsed() > Duration::from_millis(500) {
            tracing::info!(topic, partition, waited = ?started.elapsed(), "the changelog's open transaction ended");
        }
        Ok(Some((low, end, high)))
    }
}

/// Restores every task, or none and returns the tasks with stale checkpoints.
fn restore_with(
    ends: &Ends<'_>,
    tasks: &mut [(TaskId, &mut StateManager)],
    stats: &mut [RestoreStats],
    started: Instant,
    listener: Option<&dyn StateRestoreListener>,
) -> Result<Ended, StreamsError> {
    // Every changelog's range first, so progress is reported against each task's total.
    let mut plan = Vec::new();
    let mut stale = Vec::new();
    let mut totals = vec![0_u64; tasks.len()];
    let mut assignment = TopicPartitionList::new();
    for (i, (task, state)) in tasks.iter().enumerate() {
        for changelog in state.changelogs() {
            let Some((low, high, watermark)) = ends.of(&changelog.topic, changelog.partition)?
            else {
                return Ok(Ended::Interrupted);
            };
            if changelog.from.is_some_and(|from| from > watermark) {
                // The checkpoint claims records the changelog does not have: it is not the
                // changelog the local state was built from.
                tracing::warn!(%task, topic = %changelog.topic, partition = changelog.partition,
                    checkpoint = changelog.from.map(|f| f - 1), end = watermark,
                    "the checkpoint is beyond the end of its changelog (was the topic recreated?); wiping local state to restore it");
                metrics::counter!("streamtime_stale_checkpoints_total", "task" => task.to_string())
                    .increment(1);
                stale.push(i);
                continue;
            }
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
            if let Some(l) = listener {
                l.on_restore_start(
                    &TopicPartition::new(changelog.topic.as_str(), changelog.partition),
                    &changelog.store_name,
                    start,
                    high,
                );
            }
            plan.push(Restoring {
                task: i,
                store: changelog.store,
                store_name: changelog.store_name,
                topic: changelog.topic,
                partition: changelog.partition,
                restored: 0,
                next: start,
                end: high,
                done: false,
            });
        }
    }
    stale.dedup();
    if !stale.is_empty() {
        return Ok(Ended::Stale(stale));
    }
    if plan.is_empty() {
        return Ok(Ended::Complete);
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
        listener,
    };
    let mut left: Vec<usize> = vec![0; tasks.len()];
    for r in &plan {
        left[r.task] += 1;
    }
    let consumer = ends.reader;
    consumer.assign(&assignment)?;
    let queue = ConsumerQueue::of(consumer);
    let mut batch = MessageBatch::new(BATCH);
    let mut remaining = plan.len();
    while remaining > 0 {
        if ends.shutdown.load(Ordering::Relaxed) {
            return keep_what_was_restored(tasks, &tally);
        }
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
                        tally.write_run(&mut plan[at], tasks, &mut records, last)?;
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
            tally.write_run(&mut plan[at], tasks, &mut records, last)?;
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
    Ok(Ended::Complete)
}

/// Shutdown during a restore: every store flushes and checkpoints what it restored (only
/// what its changelog holds, committed under exactly-once), so nothing of it is read twice.
fn keep_what_was_restored(
    tasks: &mut [(TaskId, &mut StateManager)],
    tally: &Tally<'_>,
) -> Result<Ended, StreamsError> {
    for (i, (task, state)) in tasks.iter_mut().enumerate() {
        if tally.restored[i] == 0 {
            continue;
        }
        state.checkpoint(&|_, _| None)?;
        tracing::info!(%task, records = tally.restored[i],
            "shutting down during the restore; the restored records are checkpointed");
    }
    Ok(Ended::Interrupted)
}

fn same_partition(r: &Restoring, m: &BatchMessage<'_>) -> bool {
    r.partition == m.partition() && m.topic() == Some(r.topic.as_str())
}

/// What each task restored so far: its progress report, counter and total.
struct Tally<'l> {
    progress: Vec<Option<RestoreProgress>>,
    counters: Vec<metrics::Counter>,
    restored: Vec<u64>,
    listener: Option<&'l dyn StateRestoreListener>,
}

impl Tally<'_> {
    /// Writes the records collected for one changelog partition to its store.
    fn write_run(
        &mut self,
        r: &mut Restoring,
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
        r.restored += n;
        if let Some(l) = self.listener {
            let tp = TopicPartition::new(r.topic.as_str(), r.partition);
            l.on_batch_restored(&tp, &r.store_name, last_offset, n);
            if last_offset + 1 >= r.end {
                l.on_restore_end(&tp, &r.store_name, r.restored);
            }
        }
        result
    }
}
