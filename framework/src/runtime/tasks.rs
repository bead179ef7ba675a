//! [`Tasks`]: the active tasks of one stream thread, which partition feeds which task, how far
//! each partition was fetched, and which partitions are paused for back-pressure.

use std::collections::{BTreeMap, HashMap, HashSet};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::TopicPartitionList;

use super::app_shared::{AppShared, PartitionStatus, TaskStatus};
use super::native::client::cached_watermarks;
use super::open_transaction_watch::{FetchProgress, OpenTransactionWatch};
use super::streams_producer::DeliveryTracker;
use crate::error::StreamsError;
use crate::record::RawRecord;
use crate::task::stream_task::StreamTask;
use crate::task::{TaskId, TopicPartition};

/// How a task is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Close {
    /// After a commit that covered everything it processed: its stores are flushed and
    /// checkpointed first, so a restart restores only what follows.
    Clean,
    /// After an error, or with progress that was not committed: no checkpoint, so the next
    /// owner processes again from the last commit and restores what it cannot trust.
    Dirty,
}

#[derive(Default)]
pub(crate) struct Tasks {
    tasks: BTreeMap<TaskId, StreamTask>,
    owner: HashMap<TopicPartition, TaskId>,
    /// Next offset to fetch per partition, for lag.
    positions: HashMap<TopicPartition, i64>,
    paused: HashSet<TopicPartition>,
    /// Changelog records each task restored when it was created.
    restored: HashMap<TaskId, u64>,
    exclusions_seen: Option<u64>,
    /// Exactly-once: input partitions blocked by an open transaction.
    open_transactions: Option<OpenTransactionWatch>,
}

impl Tasks {
    /// Reports input partitions that an open transaction blocks for `threshold` (for
    /// `read_committed` consumers; see [`OpenTransactionWatch`]).
    pub(crate) fn watch_open_transactions(&mut self, threshold: std::time::Duration) {
        self.open_transactions = Some(OpenTransactionWatch::new(threshold));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Adds a created task; `positions` are the committed offsets of its partitions.
    pub(crate) fn insert(
        &mut self,
        task: StreamTask,
        positions: Vec<(TopicPartition, i64)>,
        restored: u64,
    ) {
        let id = task.id();
        for tp in task.partitions() {
            self.owner.insert(tp.clone(), id);
        }
        self.positions.extend(positions);
        self.restored.insert(id, restored);
        self.tasks.insert(id, task);
        // Exclusions are applied to the new task at the next round.
        self.exclusions_seen = None;
    }

    pub(crate) fn ids(&self) -> Vec<TaskId> {
        self.tasks.keys().copied().collect()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &StreamTask> {
        self.tasks.values()
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut StreamTask> {
        self.tasks.values_mut()
    }

    /// Whether any task processed something the last commit did not cover.
    pub(crate) fn needs_commit(&self) -> bool {
        self.tasks.values().any(StreamTask::needs_commit)
    }

    /// Splits the registry for one processing round: the tasks, and a lag function over the
    /// fetch positions.
    pub(crate) fn for_round<'a, C: ConsumerContext>(
        &'a mut self,
        consumer: &'a BaseConsumer<C>,
    ) -> (
        &'a mut BTreeMap<TaskId, StreamTask>,
        impl Fn(&TopicPartition) -> Option<i64> + 'a,
    ) {
        let positions = fetch_positions(consumer, &self.positions);
        (&mut self.tasks, move |tp| lag(consumer, &positions, tp))
    }

    /// Hands records of one partition (in offset order) to the task that owns it.
    pub(crate) fn add_records(&mut self, records: Vec<RawRecord>) -> Result<(), StreamsError> {
        let Some(first) = records.first() else {
            return Ok(());
        };
        let tp = TopicPartition::new(first.topic.clone(), first.partition);
        let Some(task) = self.owner.get(&tp).and_then(|id| self.tasks.get_mut(id)) else {
            // A restoring task's partitions are paused, but records fetched before the pause
            // took effect may still arrive: the task fetches them again from its committed
            // offset when it starts.
            tracing::debug!(partition = %tp, "records for a partition without a running task; dropped");
            return Ok(());
        };
        let (records, next) = past_position(&tp, self.positions.get(&tp).copied(), records);
        if let Some(next) = next {
            self.positions.insert(tp.clone(), next);
        }
        if records.is_empty() {
            return Ok(());
        }
        task.add_records(&tp, records)
    }

    /// Pauses partitions whose buffer is full and resumes those that drained.
    pub(crate) fn update_pauses<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        limit: usize,
    ) -> Result<(), StreamsError> {
        let mut pause = TopicPartitionList::new();
        let mut resume = TopicPartitionList::new();
        for task in self.tasks.values() {
            for tp in task.partitions() {
                let buffered = task.buffered_in(tp);
                if buffered > limit && !self.paused.contains(tp) {
                    pause.add_partition(&tp.topic, tp.partition);
                } else if buffered <= limit / 2 && self.paused.contains(tp) {
                    resume.add_partition(&tp.topic, tp.partition);
                }
            }
        }
        if pause.count() > 0 {
            consumer.pause(&pause)?;
            for e in pause.elements() {
                self.paused
                    .insert(TopicPartition::new(e.topic(), e.partition()));
            }
        }
        if resume.count() > 0 {
            consumer.resume(&resume)?;
            for e in resume.elements() {
                self.paused
                    .remove(&TopicPartition::new(e.topic(), e.partition()));
            }
        }
        Ok(())
    }

    /// Tells the app which excluded partitions rejoined on data, then applies its
    /// time-synchronisation exclusions when they changed (or the tasks did).
    pub(crate) fn apply_exclusions(&mut self, shared: &AppShared) {
        for task in self.tasks.values_mut() {
            for tp in task.take_rejoined() {
                shared.rejoined(&tp);
            }
        }
        let version = shared.exclusions_version();
        if self.exclusions_seen == Some(version) {
            return;
        }
        self.exclusions_seen = Some(version);
        for task in self.tasks.values_mut() {
            let partitions: Vec<TopicPartition> = task.partitions().cloned().collect();
            for tp in partitions {
                task.set_excluded(&tp, shared.is_excluded(&tp));
            }
        }
    }

    /// Closes every task. A clean close checkpoints each task's stores with the changelog
    /// offsets `deliveries` acknowledged; a dirty one writes no checkpoint.
    ///
    /// Partitions paused for back-pressure are resumed: librdkafka keeps an application pause
    /// across a rewind (and, in some versions, a reassignment), and with the tasks gone
    /// nothing would resume them.
    pub(crate) fn close_all<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        how: Close,
        deliveries: &DeliveryTracker,
        shared: &AppShared,
    ) {
        self.resume_paused(consumer);
        for (id, mut task) in std::mem::take(&mut self.tasks) {
            if how == Close::Clean {
                if let Err(e) = task.checkpoint(&|tp| deliveries.changelog_offset(tp)) {
                    tracing::warn!(task = %id, error = %e, "cannot checkpoint on close; the next start restores from scratch");
                }
            }
            task.close();
            tracing::info!(task = %id, ?how, "task closed");
        }
        self.restored.clear();
        self.owner.clear();
        self.positions.clear();
        shared.clear_status();
    }

    fn resume_paused<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let mut resume = TopicPartitionList::new();
        for tp in std::mem::take(&mut self.paused) {
            resume.add_partition(&tp.topic, tp.partition);
        }
        if resume.count() > 0 {
            if let Err(e) = consumer.resume(&resume) {
                // Not fatal: the stall detector reports a partition that stays paused.
                tracing::warn!(error = %e, "cannot resume paused partitions on close");
            }
        }
    }

    /// A status snapshot of every task, after publishing its metrics and checking it for
    /// stalls (docs/semantics.md §10).
    pub(crate) fn status<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Vec<TaskStatus> {
        let now = super::wall_clock_ms();
        let positions = &fetch_positions(consumer, &self.positions);
        for task in self.tasks.values_mut() {
            let broker_lag: Option<i64> = task
                .partitions()
                .map(|tp| lag(consumer, positions, tp))
                .sum();
            task.publish_health(now, broker_lag.map(|l| l.max(0) as u64));
        }
        let blocked = match &mut self.open_transactions {
            Some(watch) => {
                let progress = self.tasks.values().flat_map(|task| {
                    task.partitions().filter_map(|tp| {
                        let (low, high) = cached_watermarks(consumer, &tp.topic, tp.partition)?;
                        Some(FetchProgress {
                            partition: tp.clone(),
                            position: positions.get(tp).copied().unwrap_or(low),
                            high_watermark: high,
                            paused: self.paused.contains(tp),
                        })
                    })
                });
                watch.observe(progress)
            }
            None => HashMap::new(),
        };
        self.tasks
            .values()
            .map(|task| {
                let group = task.partition_group();
                TaskStatus {
                    id: task.id(),
                    stream_time: task.stream_time(),
                    processed: task.processed(),
                    dropped: task.dropped(),
                    enforced_processing: task.enforced_processing(),
                    restored_records: self.restored.get(&task.id()).copied().unwrap_or(0),
                    restoring: false,
                    partitions: group
                        .queues()
                        .iter()
                        .map(|q| PartitionStatus {
                            partition: q.tp.clone(),
                            buffered: q.len(),
                            partition_time: q.partition_time,
                            excluded: q.excluded,
                            paused: self.paused.contains(&q.tp),
                            blocked_by_open_transaction: blocked.get(&q.tp).copied(),
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// The instances of store `name` in these tasks (interactive queries).
    pub(crate) fn stores(&self, name: &str) -> Vec<(TaskId, &crate::stores::TaskStore)> {
        self.tasks
            .values()
            .filter_map(|t| t.store(name).map(|s| (t.id(), s)))
            .collect()
    }

    /// Sets each task's catching-up flag from its source partitions' lag: the high watermark
    /// (librdkafka's cached value, which every fetch response refreshes: no network call)
    /// minus the next offset the task will process. Partitions whose watermark is not known
    /// yet do not count; a task with none known keeps its flag (docs/semantics.md §8,
    /// reprocessing).
    pub(crate) fn refresh_catching_up<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        threshold: i64,
    ) {
        let positions = fetch_positions(consumer, &self.positions);
        for task in self.tasks.values() {
            let lags: Vec<i64> = task
                .partitions()
                .filter_map(|tp| {
                    lag(consumer, &positions, tp).map(|l| l + task.buffered_in(tp) as i64)
                })
                .collect();
            let Some(&max_lag) = lags.iter().max() else {
                continue;
            };
            let catching_up = max_lag > threshold;
            if task.set_catching_up(catching_up) {
                let id = task.id();
                if catching_up {
                    tracing::info!(task = %id, lag = max_lag, threshold, "task is catching up");
                } else {
                    tracing::info!(task = %id, lag = max_lag, threshold, "task caught up");
                }
                metrics::gauge!("streamtime_catching_up", "task" => id.to_string())
                    .set(if catching_up { 1.0 } else { 0.0 });
            }
        }
    }
}

/// Each partition's position on the broker: one past the last record handed to its task, or
/// the consumer's position when it is further, past entries it never hands over (the commit
/// and abort markers of transactions, aborted records under read_committed). Without it a
/// partition written by a transactional producer — a repartition topic under exactly-once —
/// ends on a marker and looks one record behind forever: a task reading it with another
/// partition would wait for that record instead of processing (librdkafka stores the offsets
/// of control messages as the position since 1.4).
fn fetch_positions<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    handed: &HashMap<TopicPartition, i64>,
) -> HashMap<TopicPartition, i64> {
    let mut positions = handed.clone();
    // A local read of the consumer's assignment and positions, no network call.
    if let Ok(list) = consumer.position() {
        for e in list.elements() {
            if let rdkafka::Offset::Offset(at) = e.offset() {
                let tp = TopicPartition::new(e.topic(), e.partition());
                let entry = positions.entry(tp).or_insert(at);
                *entry = (*entry).max(at);
            }
        }
    }
    positions
}

fn lag<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    positions: &HashMap<TopicPartition, i64>,
    tp: &TopicPartition,
) -> Option<i64> {
    let (low, high) = cached_watermarks(consumer, &tp.topic, tp.partition)?;
    // Without a committed offset the consumer starts at the earliest offset.
    let position = positions.get(tp).copied().unwrap_or(low);
    Some((high - position).max(0))
}

/// The records of `tp` at or past `next` (the committed offset, or one past the last record
/// handed to the task) and the position after them. A record before it was committed
/// already or is in the task's buffer: processing it again would count it twice in every
/// store it reaches, so it is dropped and counted. Consumers deliver each offset once, but
/// a partition's records come through two queues around a rebalance (the consumer's queue
/// and the partition's own, see `partition_queues`), and records held for a restoring task
/// meet the fetch that resumes after them: the position is the one place to guard.
fn past_position(
    tp: &TopicPartition,
    mut next: Option<i64>,
    mut records: Vec<RawRecord>,
) -> (Vec<RawRecord>, Option<i64>) {
    let before = records.len();
    records.retain(|record| {
        if next.is_some_and(|next| record.offset < next) {
            return false;
        }
        next = Some(record.offset + 1);
        true
    });
    let dropped = before - records.len();
    if dropped > 0 {
        tracing::warn!(partition = %tp, dropped, position = next,
            "records delivered again below the partition's position; dropped, not processed twice");
        metrics::counter!("streamtime_redelivered_records_dropped_total").increment(dropped as u64);
    }
    (records, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::TimestampType;

    fn at(offset: i64) -> RawRecord {
        RawRecord {
            topic: "in".into(),
            partition: 0,
            offset,
            timestamp: offset,
            timestamp_type: TimestampType::CreateTime,
            key: None,
            value: None,
            headers: Default::default(),
        }
    }

    fn offsets(records: &[RawRecord]) -> Vec<i64> {
        records.iter().map(|r| r.offset).collect()
    }

    #[test]
    fn records_below_the_committed_offset_are_not_handed_to_the_task() {
        let tp = TopicPartition::new("in", 0);
        let (kept, next) = past_position(&tp, Some(5), (3..8).map(at).collect());
        assert_eq!(offsets(&kept), [5, 6, 7]);
        assert_eq!(next, Some(8));
    }

    #[test]
    fn a_batch_delivered_again_after_the_records_held_for_a_restore_is_dropped() {
        let tp = TopicPartition::new("in", 0);
        let (held, next) = past_position(&tp, Some(0), (0..4).map(at).collect());
        assert_eq!(offsets(&held), [0, 1, 2, 3]);
        let (again, next) = past_position(&tp, next, (2..6).map(at).collect());
        assert_eq!(offsets(&again), [4, 5]);
        assert_eq!(next, Some(6));
    }

    #[test]
    fn a_partition_without_a_position_takes_every_record() {
        let tp = TopicPartition::new("in", 0);
        let (kept, next) = past_position(&tp, None, (10..12).map(at).collect());
        assert_eq!(offsets(&kept), [10, 11]);
        assert_eq!(next, Some(12));
    }
}
