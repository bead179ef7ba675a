//! [`TaskManager`]: the tasks of one stream thread through their lives — created as
//! partitions are assigned, processed, committed, and closed cleanly or dirty as partitions
//! are revoked, the thread stops, or something fails.
//!
//! Each step has its own home: [`Tasks`] keeps the registry, [`ActiveTaskCreator`] makes
//! tasks, [`StoreChangelogReader`] restores their stores and keeps the standbys current,
//! [`task_executor`] processes them, [`Committer`] commits (and refuses to after an error),
//! [`StreamsProducer`] sends and runs the transaction.
//!
//! A new task restores first, from the stream loop: its input partitions are paused, one
//! batch of changelog records is applied per round, and once its stores are up to date it
//! fetches its input from the committed offsets and runs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use super::active_task_creator::{ActiveTaskCreator, RestoringTask};
use super::app_shared::{AppShared, TaskStatus};
use super::app_state::ThreadPhase;
use super::changelog_reader::{ChangelogOwners, Kind, StoreChangelogReader};
use super::committer::{CommitOutcome, Committer};
use super::kafka_collector::PartitionCache;
use super::member_assignment::{self, PartitionSet};
use super::standby::StandbyTasks;
use super::streams_producer::StreamsProducer;
use super::task_assignment::{self, task_list};
use super::task_executor;
use super::tasks::{Close, Tasks};
use crate::error::StreamsError;
use crate::lifecycle::StateRestoreListener;
use crate::record::RawRecord;
use crate::task::state_manager::StateManager;
use crate::task::{TaskId, TopicPartition};

const COMMITTED_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a thread tries again to compute an assignment it could not compute.
const ASSIGNMENT_RETRY: Duration = Duration::from_millis(250);

/// Tasks closed after an aborted transaction, waiting to be created again.
struct Rebuild {
    since: Instant,
    last_try: Instant,
    /// The partitions they read (still assigned to the consumer, paused).
    assignment: TopicPartitionList,
}

/// The state the changelog reader restores into: restoring tasks' and standbys'.
struct Owners<'a> {
    restoring: &'a mut BTreeMap<TaskId, RestoringTask>,
    standbys: &'a mut StandbyTasks,
    listener: Option<&'a dyn StateRestoreListener>,
}

impl ChangelogOwners for Owners<'_> {
    fn state(&mut self, task: TaskId, kind: Kind) -> Option<&mut StateManager> {
        match kind {
            Kind::Active => self.restoring.get_mut(&task).map(|t| &mut t.state),
            Kind::Standby => self.standbys.state(task),
        }
    }

    fn listener(&self) -> Option<&dyn StateRestoreListener> {
        self.listener
    }
}

/// An assignment of the current generation that waits to be computed.
struct Awaiting {
    since: Instant,
    last_try: Instant,
    /// The partitions librdkafka offered in it.
    offered: PartitionSet,
}

pub(crate) struct TaskManager {
    shared: Arc<AppShared>,
    producer: Arc<StreamsProducer>,
    /// Output topics' partition counts, shared by the thread's tasks.
    partition_cache: PartitionCache,
    tasks: Tasks,
    /// Tasks whose stores are being restored; they become [`Tasks`] when up to date.
    restoring: BTreeMap<TaskId, RestoringTask>,
    reader: StoreChangelogReader,
    creator: ActiveTaskCreator,
    committer: Committer,
    /// This thread's index (0-based).
    thread: usize,
    standbys: StandbyTasks,
    awaiting: Option<Awaiting>,
    rebuild: Option<Rebuild>,
    /// This thread has its tasks of the current generation.
    assigned: bool,
    /// The producer was fenced: the thread must close its tasks, make a new producer and
    /// rejoin the group.
    migration: bool,
    /// An error raised where it cannot be returned (a rebalance callback); the stream loop
    /// ends with it.
    pending_error: Option<StreamsError>,
    /// Why the open transaction must be aborted and the tasks rewound, when it must.
    abort_pending: Option<StreamsError>,
}

impl TaskManager {
    pub(crate) fn new(
        shared: Arc<AppShared>,
        producer: Arc<StreamsProducer>,
        thread: usize,
    ) -> Self {
        let partition_cache = PartitionCache::default();
        TaskManager {
            thread,
            standbys: StandbyTasks::new(shared.clone(), thread),
            awaiting: None,
            rebuild: None,
            assigned: false,
            migration: false,
            creator: ActiveTaskCreator::new(
                shared.clone(),
                producer.clone(),
                partition_cache.clone(),
            ),
            partition_cache,
            committer: Committer::new(&shared.config),
            reader: StoreChangelogReader::new(&shared.config),
            restoring: BTreeMap::new(),
            producer,
            tasks: {
                let mut tasks = Tasks::default();
                if let (true, Some(threshold)) = (
                    shared.config.is_exactly_once(),
                    shared.config.stall_warning_after,
                ) {
                    tasks.watch_open_transactions(threshold);
                }
                tasks
            },
            pending_error: None,
            abort_pending: None,
            shared,
        }
    }

    /// Records an error: nothing is committed from now on, and the stream loop ends with it.
    fn fail(&mut self, error: StreamsError) -> StreamsError {
        self.committer.refuse_after(&error);
        self.pending_error.get_or_insert_with(|| error.clone());
        error
    }

    /// Passes `result` on, recording its error (see [`fail`](Self::fail)) — unless the
    /// producer was fenced, which made the call fail: then the tasks migrate, and their
    /// records are processed again from the last commit; or unless the call failed on a send
    /// the open transaction refused: then [`rewind_if_needed`](Self::rewind_if_needed)
    /// aborts it and rebuilds the tasks from the last commit.
    fn guard<T: Default>(&mut self, result: Result<T, StreamsError>) -> Result<T, StreamsError> {
        match result {
            Ok(v) => Ok(v),
            Err(e) if self.producer.is_fenced() => {
                tracing::warn!(error = %e, "failed because the producer was fenced; migrating the tasks");
                self.migration = true;
                Ok(T::default())
            }
            Err(e) if self.producer.must_abort() => {
                self.abort_pending.get_or_insert(e);
                Ok(T::default())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// The error the stream loop must end with: one raised in a rebalance callback, or a
    /// client that cannot go on.
    pub(crate) fn take_error(&mut self) -> Option<StreamsError> {
        if self.producer.has_failed() && !self.migration {
            if self.producer.is_fenced() {
                tracing::warn!("the producer was fenced; migrating the tasks");
                self.migration = true;
            } else if let Some(e) = self.producer.fatal_error() {
                self.fail(e);
            }
        }
        self.pending_error.take()
    }

    /// Whether the thread must migrate its tasks (its producer was fenced); clears it.
    pub(crate) fn take_migration(&mut self) -> bool {
        std::mem::take(&mut self.migration)
    }

    /// Task migration, after the producer was fenced: closes the tasks dirty (nothing of the
    /// fenced transaction can commit) and continues with `producer`. The caller rejoins the
    /// group, whose assignment creates the tasks again from the committed offsets.
    pub(crate) fn migrate<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        producer: Arc<StreamsProducer>,
    ) {
        metrics::counter!("streamtime_task_migrations_total").increment(1);
        self.close(consumer, Close::Dirty);
        self.awaiting = None;
        self.rebuild = None;
        self.assigned = false;
        self.creator.set_producer(producer.clone());
        self.producer = producer;
    }

    /// Where the thread is: running once its tasks of the current generation exist and have
    /// restored their stores.
    pub(crate) fn phase(&self) -> ThreadPhase {
        if self.assigned
            && self.awaiting.is_none()
            && self.rebuild.is_none()
            && self.restoring.is_empty()
        {
            ThreadPhase::Running
        } else {
            ThreadPhase::Rebalancing
        }
    }

    /// Records an error the stream loop ended with, so nothing commits after it.
    pub(crate) fn record_exit_error(&mut self, error: &StreamsError) {
        self.committer.refuse_after(error);
    }

    /// Whether a task is restoring its stores: the stream loop then waits in the restore,
    /// not in its poll.
    pub(crate) fn is_restoring(&self) -> bool {
        !self.restoring.is_empty()
    }

    /// One round of reading changelogs: applies a batch to the restoring tasks' or the
    /// standbys' stores, and starts the tasks whose stores caught up. Returns the records
    /// applied.
    pub(crate) fn restore<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<usize, StreamsError> {
        let shared = self.shared.clone();
        let mut owners = Owners {
            restoring: &mut self.restoring,
            standbys: &mut self.standbys,
            listener: shared.restore_listener.as_deref(),
        };
        let result = self.reader.read(&mut owners);
        let outcome = self.guard(result)?;
        self.standbys.applied(outcome.standby_records);
        for (id, stats) in outcome.restored {
            if let Some(task) = self.restoring.get_mut(&id) {
                task.restored = Some(stats);
            }
        }
        let result = self.start_restored(consumer);
        self.guard(result)?;
        self.pause_full_holds(consumer);
        Ok(outcome.active_records + outcome.standby_records)
    }

    /// Turns the restoring tasks whose stores are up to date into running tasks, with the
    /// records held for them, and resumes their partitions.
    fn start_restored<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        let ready: Vec<TaskId> = self
            .restoring
            .iter()
            .filter(|(_, t)| t.restored.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            let task = self.restoring.remove(&id).expect("listed above");
            let partitions = task.partition_list();
            self.creator.finish(task, &mut self.tasks)?;
            if let Err(e) = consumer.resume(&partitions) {
                tracing::warn!(task = %id, error = %e, "cannot resume the restored task's partitions");
            }
        }
        Ok(())
    }

    /// Pauses the partitions of restoring tasks that hold a full buffer of records. Not
    /// sooner: librdkafka resumes a paused partition from the last record it delivered, and
    /// before the first one from where its fetcher stood, past records it fetched but dropped
    /// at the pause.
    fn pause_full_holds<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let limit = self.shared.config.buffered_records_per_partition;
        let mut tpl = TopicPartitionList::new();
        for task in self.restoring.values_mut() {
            for (tp, held) in &task.held {
                if held.len() >= limit && task.paused.insert(tp.clone()) {
                    tpl.add_partition(&tp.topic, tp.partition);
                }
            }
        }
        if tpl.count() > 0 {
            if let Err(e) = consumer.pause(&tpl) {
                tracing::warn!(error = %e, "cannot pause the partitions of restoring tasks");
            }
        }
    }

    /// Closes the restoring tasks. With `keep`, each store first checkpoints what it
    /// restored (only what its changelog holds, committed under exactly-once), so the next
    /// restore goes on from there.
    fn close_restoring<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, keep: bool) {
        let mut resume = TopicPartitionList::new();
        for (id, mut task) in std::mem::take(&mut self.restoring) {
            let restored = self.reader.unregister(id, Kind::Active);
            if keep && restored > 0 {
                match task.state.checkpoint(&|_| None) {
                    Ok(()) => tracing::info!(task = %id, records = restored,
                        "closing a task during its restore; the restored records are checkpointed"),
                    Err(e) => tracing::warn!(task = %id, error = %e,
                        "cannot checkpoint a task closed during its restore; its next restore starts over"),
                }
            }
            task.state.close();
            for tp in &task.partitions {
                resume.add_partition(&tp.topic, tp.partition);
            }
        }
        // librdkafka may keep a pause across a reassignment.
        if resume.count() > 0 {
            if let Err(e) = consumer.resume(&resume) {
                tracing::warn!(error = %e, "cannot resume the partitions of closed restoring tasks");
            }
        }
    }

    /// Closes the standbys, checkpointing them (shutdown).
    pub(crate) fn close_standbys(&mut self) {
        self.standbys.close_all(&mut self.reader);
    }

    /// After a rebalance: computes this thread's share of the tasks from the group's members
    /// (see [`task_assignment`]), updates its standbys, creates its active tasks and returns the
    /// partitions the consumer must be assigned. The partitions librdkafka's assignor chose
    /// are ignored.
    ///
    /// `offered` is what librdkafka's assignor gave this member; it identifies the generation
    /// whose member list the assignment must be computed from. When the broker's description
    /// of the group is not (yet) that generation's, the thread assigns itself nothing and
    /// [`retry_assignment`](Self::retry_assignment) tries again shortly.
    pub(crate) fn on_assigned<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        offered: &TopicPartitionList,
    ) -> TopicPartitionList {
        let offered = member_assignment::partition_set(offered);
        self.awaiting = None;
        self.try_assignment(consumer, offered, Instant::now())
            .unwrap_or_default()
    }

    /// While the last assignment is still to be computed, tries again every
    /// `ASSIGNMENT_RETRY`; returns the partitions to assign once it succeeds.
    pub(crate) fn retry_assignment<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Option<TopicPartitionList> {
        let awaiting = self.awaiting.as_ref()?;
        if awaiting.last_try.elapsed() < ASSIGNMENT_RETRY {
            return None;
        }
        let Awaiting { since, offered, .. } = self.awaiting.take()?;
        let tpl = self.try_assignment(consumer, offered, since);
        if let Some(awaiting) = &self.awaiting {
            let waited = awaiting.since.elapsed();
            if waited.as_secs() / 30 > (waited - ASSIGNMENT_RETRY).as_secs() / 30 {
                tracing::warn!(
                    ?waited,
                    "this thread's assignment still cannot be computed; retrying"
                );
            }
        }
        tpl
    }

    fn try_assignment<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        offered: PartitionSet,
        since: Instant,
    ) -> Option<TopicPartitionList> {
        match self.take_assignment(consumer, &offered) {
            Ok(Some(tpl)) => Some(tpl),
            Ok(None) => {
                self.awaiting = Some(Awaiting {
                    since,
                    last_try: Instant::now(),
                    offered,
                });
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot create tasks for the assignment");
                self.fail(e);
                Some(TopicPartitionList::new())
            }
        }
    }

    /// `None` while this thread's tasks cannot be computed yet.
    fn take_assignment<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        offered: &PartitionSet,
    ) -> Result<Option<TopicPartitionList>, StreamsError> {
        let shared = self.shared.clone();
        let app = &shared.config.application_id;
        let counts = match super::internal_topics::live_partition_counts(consumer) {
            Ok(counts) => counts,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read partition counts; retrying the assignment");
                return Ok(None);
            }
        };
        let mut tpl = TopicPartitionList::new();
        let Some(mine) = task_assignment::this_threads_tasks(&shared, consumer, &counts, offered)
        else {
            return Ok(None);
        };
        // A task that becomes active here stops being a standby first, handing its stores and
        // directory lock to the active task, whose restore reads only past the standby's
        // checkpoint.
        self.standbys.update(&mine.standby, &mut self.reader)?;
        for id in &mine.active {
            for topic in &shared.subs[id.subtopology as usize].source_topics {
                let name = topic.resolve(app);
                if counts.get(&name).is_some_and(|&n| id.partition < n) {
                    tpl.add_partition(&name, id.partition);
                }
            }
        }
        tracing::info!(thread = self.thread + 1, active = %task_list(&mine.active),
            standby = %task_list(&mine.standby), "assignment");
        let opened = self
            .creator
            .open(consumer, &tpl, &mut self.restoring, &mut self.reader)?;
        self.assigned = opened;
        Ok(opened.then_some(tpl))
    }

    /// Revocation (eager rebalance) and clean shutdown: commits, then closes every task —
    /// cleanly when the commit covered everything, else dirty. A failed commit ends the
    /// thread with its error.
    pub(crate) fn commit_and_close<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        self.awaiting = None;
        self.rebuild = None;
        self.assigned = false;
        self.close_restoring(consumer, true);
        if self.tasks.is_empty() {
            return;
        }
        let outcome =
            self.committer
                .commit(&mut self.tasks, consumer, &self.producer, &self.shared);
        match outcome {
            Ok(CommitOutcome::Committed) if !self.tasks.needs_commit() => {
                self.close(consumer, Close::Clean)
            }
            Ok(CommitOutcome::Committed | CommitOutcome::Postponed) => {
                // The broker was unreachable, or this member already lost its partitions:
                // the next owner processes again from the last committed offsets and
                // restores state from the changelog.
                tracing::warn!(
                    "closing tasks with uncommitted progress; it will be processed again"
                );
                self.close_dirty(consumer);
            }
            Ok(CommitOutcome::Fenced(e)) => {
                tracing::warn!(error = %e, "the producer was fenced; closing the tasks dirty");
                self.migration = true;
                self.close(consumer, Close::Dirty);
            }
            Ok(CommitOutcome::MustAbort(e)) => {
                tracing::warn!(error = %e, "the transaction must be aborted; closing the tasks dirty");
                self.close_dirty(consumer);
            }
            Err(e) => {
                tracing::error!(error = %e, "commit before closing the tasks failed");
                self.fail(e);
                self.close_dirty(consumer);
            }
        }
    }

    /// The thread goes on with a new consumer (the old one failed beyond repair): the tasks
    /// are closed dirty, and the new consumer's assignment creates them again from the
    /// committed offsets.
    pub(crate) fn abandon<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        self.close_dirty(consumer);
        self.awaiting = None;
        self.rebuild = None;
        self.assigned = false;
    }

    /// Error exit and rewind: aborts the open transaction (exactly-once) and closes every
    /// task without a checkpoint; a failed delivery they caused is forgotten with them.
    pub(crate) fn close_dirty<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        if let Err(e) = self.producer.abort_transaction() {
            // Not retried further on an error exit: the broker aborts the transaction itself
            // when `transaction.timeout.ms` passes, and nothing of it was committed.
            tracing::warn!(error = %e, "cannot abort the transaction; the broker aborts it after its timeout");
        }
        self.close(consumer, Close::Dirty);
    }

    fn close<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, how: Close) {
        self.close_restoring(consumer, false);
        self.tasks
            .close_all(consumer, how, self.producer.deliveries(), &self.shared);
        if how == Close::Dirty {
            self.producer.deliveries().clear();
        }
    }

    /// Hands records of one partition (in offset order) to the task that owns it, or holds
    /// them for it while it restores.
    pub(crate) fn add_records(&mut self, records: Vec<RawRecord>) -> Result<(), StreamsError> {
        if let Some(first) = records.first() {
            let tp = TopicPartition::new(first.topic.clone(), first.partition);
            if let Some(task) = self
                .restoring
                .values_mut()
                .find(|t| t.partitions.contains(&tp))
            {
                task.held.entry(tp).or_default().extend(records);
                return Ok(());
            }
        }
        let result = self.tasks.add_records(records);
        self.guard(result)
    }

    /// Processes up to about `budget` records over all tasks, round-robin. Returns how many.
    pub(crate) fn process<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        now_ms: i64,
        budget: usize,
    ) -> Result<usize, StreamsError> {
        if self.tasks.is_empty() {
            return Ok(0);
        }
        self.partition_cache.start_round();
        let result = self.producer.begin_transaction().and_then(|()| {
            task_executor::process(
                &mut self.tasks,
                consumer,
                now_ms,
                budget,
                &self.shared.commit_gate,
            )
        });
        self.guard(result)
    }

    pub(crate) fn punctuate_wall_clock(&mut self, now_ms: i64) -> Result<(), StreamsError> {
        if self.tasks.is_empty() {
            return Ok(());
        }
        let result = self
            .producer
            .begin_transaction()
            .and_then(|()| task_executor::punctuate_wall_clock(&mut self.tasks, now_ms));
        self.guard(result)
    }

    /// Pauses partitions whose buffer is full and resumes those that drained.
    pub(crate) fn update_pauses<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        let limit = self.shared.config.buffered_records_per_partition;
        let result = self.tasks.update_pauses(consumer, limit);
        self.guard(result)
    }

    /// Applies the app's time-synchronisation exclusions when they changed.
    pub(crate) fn apply_exclusions(&mut self) {
        self.tasks.apply_exclusions(&self.shared);
    }

    /// Sets each task's catching-up flag from its source partitions' lag.
    pub(crate) fn refresh_catching_up<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let threshold = self.shared.config.catching_up_lag_threshold;
        self.tasks.refresh_catching_up(consumer, threshold);
    }

    /// Publishes a status snapshot of every task, its metrics, and checks it for stalls.
    pub(crate) fn publish_status<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let mut statuses = self.tasks.status(consumer);
        statuses.extend(self.restoring.values().map(|t| TaskStatus {
            id: t.id,
            stream_time: -1,
            processed: 0,
            dropped: 0,
            enforced_processing: 0,
            partitions: Vec::new(),
            restored_records: self.reader.restored(t.id),
            restoring: true,
        }));
        self.shared.publish_status(statuses);
        metrics::gauge!("streamtime_record_cache_bytes", "thread" => self.thread.to_string())
            .set(self.creator.cached_bytes() as f64);
    }

    /// The instances of store `name` in this thread's tasks (interactive queries).
    pub(crate) fn task_stores(&self, name: &str) -> Vec<(TaskId, &crate::stores::TaskStore)> {
        self.tasks.stores(name)
    }

    /// Commits (see [`Committer::commit`]). Under exactly-once, a transaction that must be
    /// aborted is, and the tasks are rebuilt from the last committed offsets. Any error is
    /// recorded: nothing commits after it.
    pub(crate) fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        let outcome = self
            .committer
            .commit(&mut self.tasks, consumer, &self.producer, &self.shared)
            .map_err(|e| self.fail(e))?;
        match outcome {
            CommitOutcome::Committed | CommitOutcome::Postponed => Ok(()),
            CommitOutcome::Fenced(error) => {
                tracing::warn!(%error, "the producer was fenced; migrating the tasks: closing them dirty, rejoining with a new producer");
                self.migration = true;
                Ok(())
            }
            CommitOutcome::MustAbort(error) => {
                let result = self.rewind_after_abort(consumer, &error);
                self.guard(result)
            }
        }
    }

    /// After a send the open transaction refused (see [`guard`](Self::guard)): aborts it
    /// and rebuilds the tasks from the committed offsets.
    pub(crate) fn rewind_if_needed<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        let Some(error) = self.abort_pending.take() else {
            return Ok(());
        };
        let result = self.rewind_after_abort(consumer, &error);
        self.guard(result)
    }

    /// An abortable transaction failure: abort, drop the tasks' uncommitted progress and
    /// rebuild them from the committed offsets.
    fn rewind_after_abort<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        error: &dyn std::fmt::Display,
    ) -> Result<(), StreamsError> {
        tracing::warn!(error = %error, "transaction aborted; rewinding tasks to the committed offsets");
        metrics::counter!("streamtime_aborted_transactions_total").increment(1);
        self.producer
            .abort_transaction()
            .map_err(|e| StreamsError::Kafka(format!("cannot abort the transaction: {e}")))?;
        self.close(consumer, Close::Dirty);
        let assignment = consumer.assignment()?;
        // Nothing is fetched for tasks that do not exist yet.
        if let Err(e) = consumer.pause(&assignment) {
            tracing::warn!(error = %e, "cannot pause the partitions while the tasks are rebuilt");
        }
        self.rebuild = Some(Rebuild {
            since: Instant::now(),
            last_try: Instant::now(),
            assignment,
        });
        self.try_rebuild(consumer)
    }

    /// While the tasks wait to be rebuilt after an aborted transaction (the broker did not
    /// answer the committed-offset read, or the previous transaction's offsets are still
    /// unstable), tries again every `ASSIGNMENT_RETRY`, until shutdown.
    pub(crate) fn retry_rebuild<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        match &self.rebuild {
            Some(r) if r.last_try.elapsed() >= ASSIGNMENT_RETRY => {
                let result = self.try_rebuild(consumer);
                self.guard(result)
            }
            _ => Ok(()),
        }
    }

    fn try_rebuild<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        let Some(rebuild) = self.rebuild.as_mut() else {
            return Ok(());
        };
        rebuild.last_try = Instant::now();
        let assignment = rebuild.assignment.clone();
        let since = rebuild.since;
        let seek = consumer
            .committed_offsets(assignment.clone(), COMMITTED_TIMEOUT)
            .and_then(|committed| {
                let mut rewind = TopicPartitionList::new();
                for elem in committed.elements() {
                    let offset = match elem.offset() {
                        Offset::Offset(o) => Offset::Offset(o),
                        _ => Offset::Beginning,
                    };
                    rewind.add_partition_offset(elem.topic(), elem.partition(), offset)?;
                }
                consumer.seek_partitions(rewind, COMMITTED_TIMEOUT)
            });
        if let Err(e) = seek {
            tracing::warn!(error = %e, waited = ?since.elapsed(),
                "cannot rewind to the committed offsets after an aborted transaction; retrying");
            return Ok(());
        }
        // The tasks restore what they cannot trust, then start (see `start_restored`); their
        // partitions stay paused until then.
        if !self
            .creator
            .open(consumer, &assignment, &mut self.restoring, &mut self.reader)?
        {
            tracing::info!(waited = ?since.elapsed(), "the tasks cannot be rebuilt yet; retrying");
            return Ok(());
        }
        self.rebuild = None;
        tracing::info!(waited = ?since.elapsed(), "tasks rebuilt after an aborted transaction");
        Ok(())
    }
}
