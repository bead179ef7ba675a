//! [`StoreChangelogReader`]: reads changelog partitions into the stores they back — an
//! active task's stores up to the end of their changelogs before the task processes anything,
//! a standby's stores for as long as it lives — with one assign-based consumer per stream
//! thread (no group membership, nothing committed), one batch per round of the stream loop.
//!
//! Reading a batch per round instead of restoring inside the rebalance callback is what Kafka
//! Streams does too (`StreamThread.runOnce` restores in its own phase): the thread keeps
//! polling its group consumer, so a long restore neither exceeds `max.poll.interval.ms` nor
//! delays a shutdown by more than one batch, and tasks that are ready process while others
//! still restore.

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
use crate::client_config::ClientRole;
use crate::config::StreamsConfig;
use crate::error::StreamsError;
use crate::faults::FaultPoint;
use crate::lifecycle::StateRestoreListener;
use crate::task::state_manager::StateManager;
use crate::task::{TaskId, TopicPartition};

/// Changelog records taken per round. At about 1 µs a record to apply, a round stays in the
/// low milliseconds, so the group consumer is polled often whatever the backlog.
const BATCH: usize = 2_000;
/// How long a round waits for changelog records while an active task restores: the restore
/// is the thread's only work then, and the stream loop does not block in its own poll.
const RESTORE_WAIT: Duration = Duration::from_millis(10);
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
const METADATA_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the second try of a failed watermark read may take, metadata refresh included
/// (short: the assignment is retried anyway).
const METADATA_REFRESH_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a restore that waits for another producer's open transaction says so.
const WAIT_REPORT_EVERY: Duration = Duration::from_secs(10);

/// Whose stores a changelog partition feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An active task that processes once its stores are up to date.
    Active,
    /// A standby replica, read for as long as it lives.
    Standby,
}

/// What restoring an active task's stores did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RestoreStats {
    pub records: u64,
    pub elapsed: Duration,
}

/// How registering an active task went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Registration {
    /// Its stores are behind their changelogs; [`StoreChangelogReader::read`] reports when
    /// they caught up.
    Restoring,
    /// Its stores are up to date already (or have no changelog).
    UpToDate,
    /// A checkpoint claims records its changelog does not have: the changelog was deleted
    /// and created again (an application reset that kept local state, say). Nothing was
    /// registered; the local state cannot be trusted, so the caller wipes it and registers
    /// the task again.
    StaleCheckpoint,
}

/// Where [`StoreChangelogReader::read`] finds the state a changelog partition feeds.
pub(crate) trait ChangelogOwners {
    /// The state of `task`, or `None` when it is gone.
    fn state(&mut self, task: TaskId, kind: Kind) -> Option<&mut StateManager>;
    /// The user's restore listener.
    fn listener(&self) -> Option<&dyn StateRestoreListener>;
}

/// What one [`StoreChangelogReader::read`] did.
#[derive(Debug, Default)]
pub(crate) struct ReadOutcome {
    /// Active tasks whose stores caught up with their changelogs in this read.
    pub restored: Vec<(TaskId, RestoreStats)>,
    /// Records applied to active tasks' stores.
    pub active_records: usize,
    /// Records applied to standbys' stores.
    pub standby_records: usize,
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
fn consumer(config: &StreamsConfig) -> Result<BaseConsumer<RestoreContext>, StreamsError> {
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
    config.with_client_properties(ClientRole::RestoreConsumer, &mut cc);
    Ok(cc.create_with_context(RestoreContext::default())?)
}

/// The records collected for one changelog partition, read in place from librdkafka's
/// buffers, and their timestamps.
type PendingRun<'r, 'm> = (&'r mut Vec<(&'m [u8], Option<&'m [u8]>)>, &'r mut Vec<i64>);

/// One changelog partition being read.
struct ChangelogPartition {
    task: TaskId,
    kind: Kind,
    store: usize,
    store_name: String,
    tp: TopicPartition,
    /// The next offset to apply (`None`: from the beginning). Anything before it is left over
    /// from an earlier assignment of the reader.
    next: Option<i64>,
    /// Active: the high watermark when the restore began, which the store must reach.
    end: i64,
    /// Records applied, for the restore listener.
    restored: u64,
    /// Active: since when the reader has been at the stable end, short of `end`, and when
    /// that was last reported.
    waiting: Option<(Instant, Instant)>,
}

impl ChangelogPartition {
    fn is(&self, m: &BatchMessage<'_>) -> bool {
        self.tp.partition == m.partition() && m.topic() == Some(&*self.tp.topic)
    }
}

/// One active task's restore over all its changelogs.
struct TaskRestore {
    progress: RestoreProgress,
    counter: metrics::Counter,
    started: Instant,
    records: u64,
}

pub(crate) struct StoreChangelogReader {
    config: StreamsConfig,
    /// Made at first use and kept: a connected consumer starts the next restore at once.
    reader: Option<BaseConsumer<RestoreContext>>,
    /// Exactly-once only: reads high watermarks. The reader (`read_committed`) sees the last
    /// stable offset as a partition's end, which stops short of the high watermark while
    /// another producer's transaction is open on it.
    watermarks: Option<BaseConsumer<RestoreContext>>,
    partitions: Vec<ChangelogPartition>,
    restores: std::collections::BTreeMap<TaskId, TaskRestore>,
    /// The reader's assignment no longer matches `partitions`.
    reassign: bool,
}

impl StoreChangelogReader {
    pub(crate) fn new(config: &StreamsConfig) -> Self {
        StoreChangelogReader {
            config: config.clone(),
            reader: None,
            watermarks: None,
            partitions: Vec::new(),
            restores: Default::default(),
            reassign: false,
        }
    }

    fn reader(&mut self) -> Result<&BaseConsumer<RestoreContext>, StreamsError> {
        if self.reader.is_none() {
            self.reader = Some(consumer(&self.config)?);
        }
        Ok(self.reader.as_ref().expect("made above"))
    }

    /// A partition's first offset and high watermark.
    fn range(&mut self, tp: &TopicPartition) -> Result<(i64, i64), StreamsError> {
        if self.config.is_exactly_once() && self.watermarks.is_none() {
            self.watermarks = Some(consumer_with(&self.config, false)?);
        }
        let fetch = |c: &BaseConsumer<RestoreContext>| {
            c.fetch_watermarks(&tp.topic, tp.partition, METADATA_TIMEOUT)
                .or_else(|_| {
                    // After a broker restart librdkafka can hold a partition it saw no
                    // metadata for as unknown until its next periodic refresh
                    // (topic.metadata.refresh.interval.ms, 5 min): a chaos run's restore
                    // retried for those 5 minutes. Asking for the topic refreshes it.
                    let _ = c.fetch_metadata(Some(&tp.topic), METADATA_REFRESH_TIMEOUT);
                    c.fetch_watermarks(&tp.topic, tp.partition, METADATA_REFRESH_TIMEOUT)
                })
                .map_err(|e| {
                    StreamsError::Kafka(format!("cannot read the end of changelog {tp}: {e}"))
                })
        };
        let (low, end) = fetch(self.reader()?)?;
        match &self.watermarks {
            Some(w) => Ok((low, fetch(w)?.1)),
            None => Ok((low, end)),
        }
    }

    /// Registers the changelogs of an active task whose stores `state` holds, each from its
    /// checkpointed offset (or the start) to the partition's current high watermark.
    ///
    /// Under exactly-once the restore reads committed records only, and a crashed previous
    /// owner's transaction can still be open on a changelog (until the broker aborts it after
    /// `transaction.timeout.ms`): its stable offset then stops short of records committed
    /// after that transaction began. Reading only to the stable offset would lose them, so
    /// the restore is complete only at the high watermark, and says every 10 s that it waits.
    ///
    /// A table's source topic serving as its changelog is restored only up to `committed`,
    /// the offset the application committed on it: processing goes on from there, and
    /// nothing after it is in the table yet. Nothing committed: nothing to restore.
    pub(crate) fn register_active(
        &mut self,
        task: TaskId,
        state: &StateManager,
        listener: Option<&dyn StateRestoreListener>,
        committed: &dyn Fn(&TopicPartition) -> Option<i64>,
    ) -> Result<Registration, StreamsError> {
        let mut plan = Vec::new();
        for changelog in state.changelogs() {
            let (low, high) = self.range(&changelog.tp)?;
            let high = match changelog.source {
                true => committed(&changelog.tp).unwrap_or(low).clamp(low, high),
                false => high,
            };
            if changelog.from.is_some_and(|from| from > high) {
                tracing::warn!(%task, partition = %changelog.tp,
                    checkpoint = changelog.from.map(|f| f - 1), end = high,
                    "the checkpoint is beyond the end of its changelog (was the topic recreated?); wiping local state to restore it");
                metrics::counter!("streamtime_stale_checkpoints_total", "task" => task.to_string())
                    .increment(1);
                return Ok(Registration::StaleCheckpoint);
            }
            let start = changelog.from.unwrap_or(low).max(low);
            if start >= high {
                tracing::debug!(%task, topic = %changelog.tp.topic, "store is up to date with its changelog");
                continue;
            }
            plan.push((changelog, start, high));
        }
        if plan.is_empty() {
            return Ok(Registration::UpToDate);
        }
        let mut total = 0;
        for (changelog, start, high) in plan {
            tracing::info!(%task, partition = %changelog.tp, from = start,
                to = high, records = high - start, "restoring store from its changelog");
            if let Some(l) = listener {
                l.on_restore_start(&changelog.tp, &changelog.store_name, start, high);
            }
            total += (high - start) as u64;
            self.partitions.push(ChangelogPartition {
                task,
                kind: Kind::Active,
                store: changelog.store,
                store_name: changelog.store_name,
                tp: changelog.tp,
                next: Some(start),
                end: high,
                restored: 0,
                waiting: None,
            });
        }
        tracing::info!(%task, records = total, "restoring stores from their changelogs");
        self.restores.insert(
            task,
            TaskRestore {
                progress: RestoreProgress::new(task, total, PROGRESS_EVERY),
                counter: metrics::counter!("streamtime_restored_records_total", "task" => task.to_string()),
                started: Instant::now(),
                records: 0,
            },
        );
        self.reassign = true;
        Ok(Registration::Restoring)
    }

    /// Registers the changelogs of a standby whose stores `state` holds, each from its
    /// checkpointed offset (or the start), to be read for as long as the standby lives.
    ///
    /// A table's source topic is not followed: the standby would run ahead of what the
    /// active task committed. Taking over restores such a table from its topic.
    pub(crate) fn register_standby(&mut self, task: TaskId, state: &StateManager) {
        for changelog in state.changelogs().into_iter().filter(|c| !c.source) {
            self.partitions.push(ChangelogPartition {
                task,
                kind: Kind::Standby,
                store: changelog.store,
                store_name: changelog.store_name,
                tp: changelog.tp,
                next: changelog.from,
                end: i64::MAX,
                restored: 0,
                waiting: None,
            });
        }
        self.reassign = true;
    }

    /// Stops reading `task`'s changelogs (its task closed, or stopped being a standby here);
    /// returns the records restored into it so far.
    pub(crate) fn unregister(&mut self, task: TaskId, kind: Kind) -> u64 {
        let before = self.partitions.len();
        self.partitions
            .retain(|p| !(p.task == task && p.kind == kind));
        self.reassign |= self.partitions.len() != before;
        match kind {
            Kind::Active => self.restores.remove(&task).map_or(0, |r| r.records),
            Kind::Standby => 0,
        }
    }

    /// Records restored so far into active task `task`'s stores.
    pub(crate) fn restored(&self, task: TaskId) -> u64 {
        self.restores.get(&task).map_or(0, |r| r.records)
    }

    /// Whether an active task's restore is under way.
    pub(crate) fn is_restoring(&self) -> bool {
        !self.restores.is_empty()
    }

    /// Points the reader at the partitions to read, each from its next offset: while an
    /// active task restores, only active changelogs (the task processes sooner), else the
    /// standbys'.
    fn assign(&mut self) -> Result<(), StreamsError> {
        let restoring = self.is_restoring();
        let mut tpl = TopicPartitionList::new();
        for p in &self.partitions {
            if (p.kind == Kind::Active) == restoring {
                let offset = p.next.map_or(Offset::Beginning, Offset::Offset);
                tpl.add_partition_offset(&p.tp.topic, p.tp.partition, offset)?;
            }
        }
        self.reader()?.assign(&tpl)?;
        self.reassign = false;
        Ok(())
    }

    /// Applies the changelog records that arrived, one batch at most; waits briefly for them
    /// while an active task restores. Reports the active tasks whose stores caught up (their
    /// changelogs are no longer read, and their stores are flushed).
    pub(crate) fn read(
        &mut self,
        owners: &mut dyn ChangelogOwners,
    ) -> Result<ReadOutcome, StreamsError> {
        if self.partitions.is_empty() {
            if self.reassign {
                if let Some(reader) = &self.reader {
                    reader.unassign()?;
                }
                self.reassign = false;
            }
            return Ok(ReadOutcome::default());
        }
        if self.reassign {
            self.assign()?;
        }
        let wait = if self.is_restoring() {
            RESTORE_WAIT
        } else {
            Duration::ZERO
        };
        // Out of `self` while its queue is borrowed, so the batch can be applied through it.
        let reader = self.reader.take().expect("assigned above");
        let result = self.read_from(&reader, wait, owners);
        self.reader = Some(reader);
        result
    }

    fn read_from(
        &mut self,
        reader: &BaseConsumer<RestoreContext>,
        wait: Duration,
        owners: &mut dyn ChangelogOwners,
    ) -> Result<ReadOutcome, StreamsError> {
        let mut outcome = ReadOutcome::default();
        let queue = ConsumerQueue::of(reader);
        let mut batch = MessageBatch::new(BATCH);
        // A batch call waits until its batch is full or its timeout passes: take what is
        // there, and wait only when nothing is.
        if batch.fill(&queue, Duration::ZERO) == 0
            && (wait.is_zero() || batch.fill(&queue, wait) == 0)
        {
            self.report_waits();
            return Ok(outcome);
        }
        let mut done = Vec::new();
        // Messages come in runs of one partition (one fetch each); each run is written to
        // its store as one batch, keys and values read in place from librdkafka's buffers.
        let mut records: Vec<(&[u8], Option<&[u8]>)> = Vec::with_capacity(BATCH);
        let mut timestamps: Vec<i64> = Vec::with_capacity(BATCH);
        let mut run: Option<(usize, i64)> = None;
        for m in batch.iter() {
            let at = match run {
                Some((at, _)) if self.partitions[at].is(&m) => at,
                _ => {
                    if let Some((at, last)) = run.take() {
                        let pending = (&mut records, &mut timestamps);
                        self.write_run(at, owners, pending, last, &mut outcome)?;
                    }
                    let Some(at) = self.partitions.iter().position(|p| p.is(&m)) else {
                        continue;
                    };
                    run = Some((at, -1));
                    at
                }
            };
            let p = &mut self.partitions[at];
            if let Some(err) = m.error() {
                if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    tracing::warn!(partition = %p.tp, error = ?err, "changelog read error; retrying");
                } else if p.kind == Kind::Active {
                    if m.offset() >= p.end {
                        done.push(at);
                    } else if p.waiting.is_none() {
                        tracing::info!(partition = %p.tp, stable = m.offset(), high = p.end,
                            "the changelog's stable end is short of its high watermark; the restore waits for the open transaction to end");
                        p.waiting = Some((Instant::now(), Instant::now()));
                    }
                }
                continue;
            }
            if p.next.is_some_and(|next| m.offset() < next) {
                continue;
            }
            if p.kind == Kind::Active && m.offset() >= p.end {
                // A source topic goes on past the committed offset the restore stops at
                // (records after a transaction marker can come first).
                done.push(at);
                continue;
            }
            if let Some(key) = m.key() {
                records.push((key, m.payload()));
                timestamps.push(m.timestamp().to_millis().unwrap_or(-1));
                run = Some((at, m.offset()));
            } else {
                tracing::warn!(partition = %p.tp, offset = m.offset(), "skipping changelog record without key");
            }
            p.next = Some(m.offset() + 1);
            p.waiting = None;
            if p.kind == Kind::Active && m.offset() + 1 >= p.end {
                done.push(at);
            }
        }
        if let Some((at, last)) = run {
            let pending = (&mut records, &mut timestamps);
            self.write_run(at, owners, pending, last, &mut outcome)?;
        }
        drop(records);
        drop(batch);
        self.finish(done, owners, &mut outcome)?;
        Ok(outcome)
    }

    /// Says every [`WAIT_REPORT_EVERY`] which restores wait for another producer's open
    /// transaction, and how long they have.
    fn report_waits(&mut self) {
        for p in &mut self.partitions {
            let Some((since, reported)) = &mut p.waiting else {
                continue;
            };
            if reported.elapsed() >= WAIT_REPORT_EVERY {
                *reported = Instant::now();
                tracing::warn!(partition = %p.tp, high = p.end, waited = ?since.elapsed(),
                    "a transaction is open on the changelog; the restore waits for it to end");
            }
        }
    }

    /// Writes the records collected for one changelog partition (with their timestamps) to
    /// its store.
    fn write_run(
        &mut self,
        at: usize,
        owners: &mut dyn ChangelogOwners,
        (records, timestamps): PendingRun<'_, '_>,
        last_offset: i64,
        outcome: &mut ReadOutcome,
    ) -> Result<(), StreamsError> {
        if records.is_empty() {
            return Ok(());
        }
        let n = records.len();
        let p = &mut self.partitions[at];
        if p.kind == Kind::Active && self.config.faults.fail_at(FaultPoint::Restore) {
            records.clear();
            timestamps.clear();
            return Err(StreamsError::State(format!(
                "task {}: store {}: {}",
                p.task,
                p.store_name,
                crate::faults::injected(FaultPoint::Restore)
            )));
        }
        let result = match owners.state(p.task, p.kind) {
            Some(state) => state.restore(p.store, records, timestamps, last_offset),
            None => Ok(()),
        };
        records.clear();
        timestamps.clear();
        result?;
        p.restored += n as u64;
        match p.kind {
            Kind::Standby => {
                outcome.standby_records += n;
                metrics::counter!("streamtime_standby_records_total", "task" => p.task.to_string())
                    .increment(n as u64);
            }
            Kind::Active => {
                outcome.active_records += n;
                if let Some(r) = self.restores.get_mut(&p.task) {
                    r.records += n as u64;
                    r.counter.increment(n as u64);
                    r.progress.advance(n as u64);
                }
                if let Some(l) = owners.listener() {
                    l.on_batch_restored(&p.tp, &p.store_name, last_offset, n as u64);
                }
            }
        }
        Ok(())
    }

    /// Changelog partitions `done` reached their end: a task whose partitions all did is
    /// restored.
    fn finish(
        &mut self,
        mut done: Vec<usize>,
        owners: &mut dyn ChangelogOwners,
        outcome: &mut ReadOutcome,
    ) -> Result<(), StreamsError> {
        if done.is_empty() {
            return Ok(());
        }
        done.sort_unstable();
        done.dedup();
        let mut tasks = Vec::new();
        for &at in done.iter().rev() {
            let p = self.partitions.remove(at);
            if let Some(l) = owners.listener() {
                l.on_restore_end(&p.tp, &p.store_name, p.restored);
            }
            tasks.push(p.task);
        }
        self.reassign = true;
        tasks.sort_unstable();
        tasks.dedup();
        for task in tasks {
            if self
                .partitions
                .iter()
                .any(|p| p.task == task && p.kind == Kind::Active)
            {
                continue;
            }
            let Some(mut restore) = self.restores.remove(&task) else {
                continue;
            };
            if let Some(state) = owners.state(task, Kind::Active) {
                state.flush_stores()?;
            }
            let stats = RestoreStats {
                records: restore.records,
                elapsed: restore.started.elapsed(),
            };
            let snapshot = restore.progress.finish();
            tracing::info!(%task, records = stats.records, elapsed = ?stats.elapsed,
                "restore finished: {snapshot}");
            outcome.restored.push((task, stats));
        }
        Ok(())
    }
}
