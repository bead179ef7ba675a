//! [`TaskManager`]: the tasks of one stream thread, created and closed as partitions are
//! assigned and revoked, and the commit of their offsets.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ffi::CString;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use super::app_shared::{AppShared, PartitionStatus, TaskStatus};
use super::assignor::{self, Member, MemberTasks};
use super::changelog_reader;
use super::identity::parse_member;
use super::kafka_collector::{
    DeliveryTracker, KafkaChangelogWriter, KafkaRecordCollector, PartitionCache, StreamsProducer,
};
use super::member_assignment::{self, PartitionSet};
use super::standby::StandbyTasks;
use crate::error::StreamsError;
use crate::record::RawRecord;
use crate::task::state_manager::StateManager;
use crate::task::stream_task::StreamTask;
use crate::task::{TaskId, TopicPartition};
use crate::topology::Topology;
use streamtime_state::ChangelogWriter;

const COMMITTED_TIMEOUT: Duration = Duration::from_secs(30);
const GROUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a thread tries again to compute an assignment it could not compute.
const ASSIGNMENT_RETRY: Duration = Duration::from_millis(250);
/// How long a task waits for its state directory while another thread of this instance
/// still holds it as a standby it is about to give up.
const DIRECTORY_WAIT: Duration = Duration::from_secs(30);
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);
/// Changelog records after which a running task writes a checkpoint (at-least-once).
const CHECKPOINT_AFTER: u64 = 10_000;

/// Commit metadata: the partition time, so stream time survives a task moving, then the
/// task's processor metadata: `streamtime:v1:<partition time>[;<name>=<value>,...]`.
fn encode_metadata(partition_time: i64, processor: &BTreeMap<String, i64>) -> String {
    let mut out = format!("streamtime:v1:{partition_time}");
    for (i, (k, v)) in processor.iter().enumerate() {
        out.push(if i == 0 { ';' } else { ',' });
        out.push_str(&format!("{k}={v}"));
    }
    out
}

/// Partition time and processor metadata; `None` for metadata streamtime did not write.
fn decode_metadata(metadata: &str) -> Option<(i64, BTreeMap<String, i64>)> {
    let rest = metadata.strip_prefix("streamtime:v1:")?;
    let (pt, processor) = rest.split_once(';').unwrap_or((rest, ""));
    let processor = processor
        .split(',')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect::<Option<_>>()?;
    Some((pt.parse().ok()?, processor))
}

/// Logs why a commit did not happen and counts it; the caller leaves the progress
/// uncommitted for the next attempt.
fn postpone_commit(what: &str, error: &KafkaError) {
    metrics::counter!("streamtime_commit_retries_total").increment(1);
    tracing::warn!(%error, "{what}; the commit is retried at the next interval");
}

/// Fails when topics that must be co-partitioned (join inputs) no longer have equal partition
/// counts, e.g. after partitions were added to only one of them: joining them would silently
/// miss matches.
fn check_copartitioning(
    topology: &Topology,
    app: &str,
    counts: &BTreeMap<String, i32>,
) -> Result<(), StreamsError> {
    let live = topology
        .copartition_groups
        .iter()
        .flatten()
        .filter_map(|t| counts.get(&t.resolve(app)).map(|&n| (t.clone(), n)))
        .collect();
    topology.check_copartitioning(&live).map_err(|e| {
        StreamsError::Topology(format!(
            "{e}; the topics' partition counts changed while the app runs"
        ))
    })
}

pub(crate) struct TaskManager {
    shared: Arc<AppShared>,
    producer: Arc<StreamsProducer>,
    tracker: Arc<DeliveryTracker>,
    partition_cache: PartitionCache,
    tasks: BTreeMap<TaskId, StreamTask>,
    owner: HashMap<TopicPartition, TaskId>,
    /// Next offset to fetch per partition, for lag.
    positions: HashMap<TopicPartition, i64>,
    paused: HashSet<TopicPartition>,
    exclusions_seen: u64,
    eos: bool,
    in_transaction: bool,
    purger: RepartitionPurger,
    /// This thread's index (0-based).
    thread: usize,
    standbys: StandbyTasks,
    /// Changelog records each task restored when it was created.
    restored: HashMap<TaskId, u64>,
    /// Reads changelogs into new tasks' stores; made at the first restore and kept, as a
    /// connected consumer makes the next restore start at once.
    restore_consumer: Option<BaseConsumer<changelog_reader::RestoreContext>>,
    /// Since when the assignment of the current generation waits to be computed, and the
    /// partitions librdkafka offered in it.
    awaiting: Option<(Instant, PartitionSet)>,
    pub fatal: Option<StreamsError>,
}

impl TaskManager {
    pub fn new(
        shared: Arc<AppShared>,
        producer: Arc<StreamsProducer>,
        tracker: Arc<DeliveryTracker>,
        thread: usize,
    ) -> Self {
        TaskManager {
            thread,
            standbys: StandbyTasks::new(shared.clone(), thread),
            restored: HashMap::new(),
            restore_consumer: None,
            awaiting: None,
            producer,
            tracker,
            partition_cache: Default::default(),
            tasks: BTreeMap::new(),
            owner: HashMap::new(),
            positions: HashMap::new(),
            paused: HashSet::new(),
            exclusions_seen: u64::MAX,
            eos: shared.config.is_exactly_once(),
            in_transaction: false,
            purger: RepartitionPurger::new(&shared.config),
            fatal: None,
            shared,
        }
    }

    pub fn has_tasks(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// Brings standby stores up to date with what their changelogs received.
    pub fn update_standbys(&mut self) -> Result<usize, StreamsError> {
        self.standbys.poll()
    }

    /// Closes the standbys, checkpointing them (shutdown).
    pub fn close_standbys(&mut self) {
        self.standbys.close_all();
    }

    /// After a rebalance: computes this thread's share of the tasks from the group's members
    /// (see [`assignor`]), updates its standbys, creates its active tasks and returns the
    /// partitions the consumer must be assigned. The partitions librdkafka's assignor chose
    /// are ignored.
    ///
    /// `offered` is what librdkafka's assignor gave this member; it identifies the generation
    /// whose member list the assignment must be computed from. When the broker's description
    /// of the group is not (yet) that generation's, the thread assigns itself nothing and
    /// [`retry_assignment`](Self::retry_assignment) tries again shortly.
    pub fn on_assigned<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        offered: &TopicPartitionList,
    ) -> TopicPartitionList {
        let offered = member_assignment::partition_set(offered);
        self.awaiting = None;
        self.try_assignment(consumer, offered).unwrap_or_default()
    }

    /// While the last assignment is still to be computed, tries again every
    /// `ASSIGNMENT_RETRY`; returns the partitions to assign once it succeeds.
    pub fn retry_assignment<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Option<TopicPartitionList> {
        let (at, _) = self.awaiting.as_ref()?;
        if at.elapsed() < ASSIGNMENT_RETRY {
            return None;
        }
        let (_, offered) = self.awaiting.take()?;
        self.try_assignment(consumer, offered)
    }

    fn try_assignment<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        offered: PartitionSet,
    ) -> Option<TopicPartitionList> {
        match self.take_assignment(consumer, &offered) {
            Ok(Some(tpl)) => Some(tpl),
            Ok(None) => {
                self.awaiting = Some((Instant::now(), offered));
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot create tasks for the assignment");
                self.fatal.get_or_insert(e);
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
        let Some(mine) = self.my_tasks(consumer, &counts, offered) else {
            return Ok(None);
        };
        // A task that becomes active here stops being a standby first, handing its stores and
        // directory lock to the active task, whose restore reads only past the standby's
        // checkpoint.
        self.standbys.update(&mine.standby)?;
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
        Ok(self.assign(consumer, &tpl)?.then_some(tpl))
    }

    /// This thread's tasks, computed from the group's current members; `None` when the
    /// broker's description of the group is not the generation this member joined (the group
    /// is re-forming, or the description lags), or it cannot be read.
    fn my_tasks<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        counts: &BTreeMap<String, i32>,
        offered: &PartitionSet,
    ) -> Option<MemberTasks> {
        let shared = &self.shared;
        let app = &shared.config.application_id;
        let groups = match consumer.fetch_group_list(Some(app), GROUP_TIMEOUT) {
            Ok(groups) => groups,
            Err(e) => {
                tracing::warn!(error = %e, "cannot describe the group; retrying the assignment");
                return None;
            }
        };
        let Some(group) = groups.groups().iter().find(|g| g.name() == app) else {
            tracing::warn!("the group is not described by the broker; retrying the assignment");
            return None;
        };
        if group.state() != "Stable" {
            // Members that read the list now could see different ones; either a rebalance is
            // under way (it gives everyone a new assignment) or the description lags.
            tracing::info!(
                state = group.state(),
                "the group is not stable yet; retrying the assignment"
            );
            return None;
        }
        let me = member_id(consumer)?;
        let Some(described) = group.members().iter().find(|m| m.id() == me) else {
            tracing::info!(member = %me, "the group's description does not list this thread yet; retrying the assignment");
            return None;
        };
        if described
            .assignment()
            .and_then(member_assignment::parse_assignment)
            .as_ref()
            != Some(offered)
        {
            tracing::info!(member = %me, "the group's description is of another generation; retrying the assignment");
            return None;
        }
        let members: Vec<Member> = group
            .members()
            .iter()
            .filter_map(|m| parse_member(app, m.client_id(), m.id()))
            .collect();
        let mut assignment = assignor::assign_app(shared, counts, &members);
        let instances: BTreeSet<&str> = members.iter().map(|m| m.instance.as_str()).collect();
        tracing::debug!(
            members = members.len(),
            instances = instances.len(),
            "computed the assignment"
        );
        Some(assignment.remove(&me).unwrap_or_default())
    }

    /// Creates the tasks of `tpl`; `false` when it must be tried again later (nothing was
    /// created).
    fn assign<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
    ) -> Result<bool, StreamsError> {
        let shared = self.shared.clone();
        let app = &shared.config.application_id;
        let mut grouped: BTreeMap<TaskId, Vec<TopicPartition>> = BTreeMap::new();
        for elem in tpl.elements() {
            let Some(sub) = Topology::subtopology_reading(&self.shared.subs, app, elem.topic())
            else {
                tracing::warn!(
                    topic = elem.topic(),
                    "assigned a topic no source reads; ignoring it"
                );
                continue;
            };
            grouped
                .entry(TaskId {
                    subtopology: sub,
                    partition: elem.partition(),
                })
                .or_default()
                .push(TopicPartition::new(elem.topic(), elem.partition()));
        }
        // Partition counts as they are now: source topics may have grown since the start.
        let counts = super::internal_topics::live_partition_counts(consumer)?;
        check_copartitioning(&shared.topology, app, &counts)?;
        let committed = match consumer.committed_offsets(tpl.clone(), COMMITTED_TIMEOUT) {
            Ok(committed) => committed,
            Err(e) => {
                // E.g. the previous owner's transaction is still open (its offsets are
                // unstable until it ends): nothing is created yet, so try again shortly.
                tracing::warn!(error = %e, "cannot read the committed offsets; retrying the assignment");
                return Ok(false);
            }
        };
        // Stores first, all restored together by one consumer, then the tasks.
        let mut opened = Vec::with_capacity(grouped.len());
        for (id, partitions) in grouped {
            let sub = &self.shared.subs[id.subtopology as usize];
            let expected = sub
                .source_topics
                .iter()
                .filter(|t| {
                    counts
                        .get(&t.resolve(app))
                        .is_some_and(|&n| id.partition < n)
                })
                .count();
            if partitions.len() != expected {
                tracing::warn!(task = %id, got = partitions.len(), expected,
                    "task got only some of its source partitions; the others are on another instance");
            }
            let (producer, tracker) = (self.producer.clone(), self.tracker.clone());
            let writer = move |topic: &str, partition: i32, sent| -> Box<dyn ChangelogWriter> {
                Box::new(KafkaChangelogWriter {
                    producer: producer.clone(),
                    tracker: tracker.clone(),
                    topic: topic.to_string(),
                    partition,
                    sent,
                })
            };
            let open = || {
                StateManager::open(
                    id,
                    &shared.topology,
                    &sub.stores,
                    app,
                    &shared.store_env,
                    &writer,
                )
            };
            opened.push((id, partitions, retry_while_locked(id, open)?));
        }
        let mut restoring: Vec<_> = opened
            .iter_mut()
            .map(|(id, _, state)| (*id, state))
            .collect();
        let restored =
            changelog_reader::restore(&shared.config, &mut self.restore_consumer, &mut restoring)?;
        // Processors may forward from init.
        self.begin_transaction()?;
        for ((id, partitions, state), restored) in opened.into_iter().zip(restored) {
            let sub = &self.shared.subs[id.subtopology as usize];
            self.restored.insert(id, restored.records);
            let collector = Box::new(KafkaRecordCollector {
                producer: self.producer.clone(),
                partitions: self.partition_cache.clone(),
                max_age: shared.config.metadata_refresh_interval,
            });
            let mut task = StreamTask::new(
                id,
                &shared.topology,
                sub,
                &partitions,
                (collector, state),
                &shared.task_config,
                super::wall_clock_ms(),
            )?;
            for tp in &partitions {
                if let Some(elem) = committed.find_partition(&tp.topic, tp.partition) {
                    if let Offset::Offset(o) = elem.offset() {
                        self.positions.insert(tp.clone(), o);
                    }
                    if let Some((pt, processor)) = decode_metadata(elem.metadata()) {
                        task.restore_partition_time(tp, pt);
                        task.restore_processor_metadata(&processor);
                    }
                }
                self.owner.insert(tp.clone(), id);
            }
            task.init()?;
            tracing::info!(task = %id, stream_time = task.stream_time(), "task created");
            self.tasks.insert(id, task);
        }
        self.exclusions_seen = u64::MAX;
        Ok(true)
    }

    /// Commits and closes every task (eager rebalance or shutdown).
    pub fn on_revoked<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        self.awaiting = None;
        if self.tasks.is_empty() {
            return;
        }
        if let Err(e) = self.commit(consumer) {
            tracing::error!(error = %e, "commit on revocation failed");
            self.fatal.get_or_insert(e);
            self.close_all(consumer, false);
            return;
        }
        if self.tasks.values().any(|t| t.needs_commit()) {
            // The commit was postponed (broker unreachable, or this member already lost its
            // partitions): close without a checkpoint; the next owner replays from the last
            // committed offsets and restores state from the changelog (at-least-once).
            tracing::warn!("partitions revoked with uncommitted progress; it will be reprocessed");
            self.close_all(consumer, false);
            return;
        }
        self.close_all(consumer, true);
    }

    /// Closes every task; after a successful commit (`checkpoint`), their stores are flushed
    /// and checkpointed first so a restart restores only what follows.
    ///
    /// Partitions paused for back-pressure are resumed: librdkafka keeps an application pause
    /// across a rewind (and, in some versions, a reassignment), and with the tasks gone
    /// nothing would resume them.
    pub fn close_all<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, checkpoint: bool) {
        self.resume_paused(consumer);
        for (id, mut task) in std::mem::take(&mut self.tasks) {
            if checkpoint {
                let tracker = &self.tracker;
                if let Err(e) = task
                    .state()
                    .checkpoint(&|t, p| tracker.changelog_offset(t, p))
                {
                    tracing::warn!(task = %id, error = %e, "cannot checkpoint on close; the next start restores from scratch");
                }
            }
            task.close();
            self.restored.remove(&id);
            tracing::info!(task = %id, "task closed");
        }
        self.owner.clear();
        self.positions.clear();
        self.shared.clear_status();
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

    pub fn add_record(&mut self, record: RawRecord) -> Result<(), StreamsError> {
        self.add_records(vec![record])
    }

    /// Hands records of one partition (in offset order) to the task that owns it.
    pub fn add_records(&mut self, records: Vec<RawRecord>) -> Result<(), StreamsError> {
        let Some(first) = records.first() else {
            return Ok(());
        };
        let tp = TopicPartition::new(first.topic.clone(), first.partition);
        let mut next = self.positions.get(&tp).copied();
        for record in &records {
            if next.is_some_and(|next| record.offset < next) {
                // Offset order within a partition is what every guarantee rests on.
                tracing::warn!(partition = %tp, offset = record.offset, expected = next,
                    "a record arrived out of offset order");
            }
            next = Some(record.offset + 1);
        }
        if let Some(next) = next {
            self.positions.insert(tp.clone(), next);
        }
        match self.owner.get(&tp).and_then(|id| self.tasks.get_mut(id)) {
            Some(task) => task.add_records(&tp, records),
            None => {
                tracing::debug!(partition = %tp, "records for a partition without a task; dropped until reassigned");
                Ok(())
            }
        }
    }

    /// Processes up to `budget` records over all tasks, round-robin. Returns how many.
    pub fn process<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        now_ms: i64,
        budget: usize,
    ) -> Result<usize, StreamsError> {
        let mut done = 0;
        self.begin_transaction()?;
        self.partition_cache.start_round();
        let ids: Vec<TaskId> = self.tasks.keys().copied().collect();
        loop {
            let mut progressed = false;
            for id in &ids {
                let positions = &self.positions;
                let lag = |tp: &TopicPartition| lag(consumer, positions, tp);
                let task = self.tasks.get_mut(id).expect("task exists");
                let mut n = 0;
                let result = loop {
                    if n >= 100 {
                        break Ok(());
                    }
                    match task.process(now_ms, &lag) {
                        Ok(true) => n += 1,
                        Ok(false) => break Ok(()),
                        Err(e) => break Err(e),
                    }
                };
                if task.take_commit_request() {
                    self.shared.commit_gate.request();
                }
                result?;
                done += n;
                progressed |= n > 0;
            }
            if !progressed || done >= budget {
                return Ok(done);
            }
        }
    }

    pub fn punctuate_wall_clock(&mut self, now_ms: i64) -> Result<(), StreamsError> {
        self.begin_transaction()?;
        for task in self.tasks.values_mut() {
            task.punctuate_wall_clock(now_ms)?;
        }
        Ok(())
    }

    /// Pauses partitions whose buffer is full and resumes those that drained.
    pub fn update_pauses<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        let limit = self.shared.config.buffered_records_per_partition;
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

    /// Applies the app's time-synchronisation exclusions when they changed.
    pub fn apply_exclusions(&mut self) {
        let version = self.shared.exclusions_version();
        if version == self.exclusions_seen {
            return;
        }
        self.exclusions_seen = version;
        let excluded = self.shared.exclusions();
        for task in self.tasks.values_mut() {
            let partitions: Vec<TopicPartition> = task.partitions().cloned().collect();
            for tp in partitions {
                let is_excluded = excluded.contains(&(tp.topic.to_string(), Some(tp.partition)))
                    || excluded.contains(&(tp.topic.to_string(), None));
                task.set_excluded(&tp, is_excluded);
            }
        }
    }

    /// Under exactly-once, opens the thread's transaction if none is open, so every send
    /// belongs to one.
    fn begin_transaction(&mut self) -> Result<(), StreamsError> {
        if self.eos && !self.in_transaction && !self.tasks.is_empty() {
            self.producer
                .begin_transaction()
                .map_err(|e| StreamsError::Kafka(format!("cannot begin a transaction: {e}")))?;
            self.in_transaction = true;
        }
        Ok(())
    }

    /// Offsets and partition-time metadata of every task with uncommitted progress.
    fn offsets_to_commit(&self) -> Result<TopicPartitionList, StreamsError> {
        let mut tpl = TopicPartitionList::new();
        for task in self.tasks.values().filter(|t| t.needs_commit()) {
            for (tp, consumed) in task.committable() {
                let mut elem = tpl.add_partition(&tp.topic, tp.partition);
                elem.set_offset(Offset::Offset(consumed.next_offset))?;
                elem.set_metadata(encode_metadata(
                    consumed.partition_time,
                    &consumed.processor_metadata,
                ));
            }
        }
        Ok(tpl)
    }

    /// Commits, in the order of SPEC §6: flush the producer and wait for every in-flight
    /// send, then commit the input offsets with partition-time metadata. A failed delivery
    /// fails the commit, so offsets never move past lost output. Under exactly-once the
    /// offsets go into the transaction, which then commits; an abortable failure aborts it
    /// and rewinds the tasks to the last committed offsets.
    pub fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        let started = std::time::Instant::now();
        for task in self.tasks.values_mut() {
            task.state().flush_caches()?;
        }
        let tpl = self.offsets_to_commit()?;
        if self.eos {
            if !self.in_transaction {
                return Ok(());
            }
            if let Err(e) = self.commit_transaction(consumer, &tpl) {
                return self.recover_from_failed_transaction(consumer, e);
            }
        } else {
            // While the broker is unreachable the flush or the offset commit fails; the
            // progress stays uncommitted and the next commit tries again, so nothing is
            // skipped. Output the producer gave up on is lost for good, so that is fatal.
            if let Err(e) = self.producer.flush(FLUSH_TIMEOUT) {
                postpone_commit("the producer could not flush", &e);
                return Ok(());
            }
            if let Some(e) = self.tracker.take_error() {
                return Err(StreamsError::Kafka(e));
            }
            if tpl.count() > 0 {
                if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
                    postpone_commit("the offset commit failed", &e);
                    return Ok(());
                }
            }
        }
        for task in self.tasks.values_mut() {
            task.mark_committed();
        }
        self.maybe_checkpoint()?;
        self.purger
            .after_commit(&tpl, &self.shared.repartition_topics);
        let latency = started.elapsed();
        for task in self.tasks.values() {
            task.metrics().committed(latency);
        }
        tracing::debug!(partitions = tpl.count(), ?latency, "committed");
        Ok(())
    }

    /// Commit step 4 (at-least-once): checkpoint tasks whose stores sent more than
    /// [`CHECKPOINT_AFTER`] changelog records since their last checkpoint.
    fn maybe_checkpoint(&mut self) -> Result<(), StreamsError> {
        let tracker = &self.tracker;
        for task in self.tasks.values_mut() {
            let state = task.state();
            if state.checkpoints_while_running() && state.sent_since_checkpoint() > CHECKPOINT_AFTER
            {
                state.checkpoint(&|t, p| tracker.changelog_offset(t, p))?;
            }
        }
        Ok(())
    }

    fn commit_transaction<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
    ) -> Result<(), KafkaError> {
        if tpl.count() > 0 {
            let group = consumer
                .group_metadata()
                .ok_or(KafkaError::MetadataFetch(RDKafkaErrorCode::State))?;
            retry_transaction_call("sending the offsets to the transaction", || {
                self.producer
                    .send_offsets_to_transaction(tpl, &group, FLUSH_TIMEOUT)
            })?;
        }
        // Committing the transaction flushes every send of it first.
        retry_transaction_call("committing the transaction", || {
            self.producer.commit_transaction(FLUSH_TIMEOUT)
        })?;
        self.in_transaction = false;
        Ok(())
    }

    /// An abortable transaction failure: abort, drop the tasks' uncommitted progress and
    /// rebuild them from the committed offsets. Anything else (such as being fenced by a
    /// newer instance) is fatal for the thread.
    fn recover_from_failed_transaction<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        error: KafkaError,
    ) -> Result<(), StreamsError> {
        let abortable = matches!(&error, KafkaError::Transaction(e) if e.txn_requires_abort());
        if !abortable {
            return Err(StreamsError::Kafka(format!("transaction failed: {error}")));
        }
        tracing::warn!(error = %error, "transaction aborted; rewinding tasks to the committed offsets");
        metrics::counter!("streamtime_aborted_transactions_total").increment(1);
        self.producer
            .abort_transaction(FLUSH_TIMEOUT)
            .map_err(|e| StreamsError::Kafka(format!("cannot abort the transaction: {e}")))?;
        self.in_transaction = false;
        let _ = self.tracker.take_error();
        self.close_all(consumer, false);
        let assignment = consumer.assignment()?;
        let committed = consumer.committed_offsets(assignment.clone(), COMMITTED_TIMEOUT)?;
        let mut rewind = TopicPartitionList::new();
        for elem in committed.elements() {
            let offset = match elem.offset() {
                Offset::Offset(o) => Offset::Offset(o),
                _ => Offset::Beginning,
            };
            rewind.add_partition_offset(elem.topic(), elem.partition(), offset)?;
        }
        consumer.seek_partitions(rewind, COMMITTED_TIMEOUT)?;
        if self.assign(consumer, &assignment)? {
            Ok(())
        } else {
            Err(StreamsError::Kafka(
                "cannot rebuild the tasks after an aborted transaction".into(),
            ))
        }
    }

    /// Publishes a status snapshot of every task, its metrics, and checks it for stalls.
    pub fn publish_status<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        self.publish_task_health(consumer);
        let statuses = self
            .tasks
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
                    partitions: group
                        .queues()
                        .iter()
                        .map(|q| PartitionStatus {
                            partition: q.tp.clone(),
                            buffered: q.len(),
                            partition_time: q.partition_time,
                            excluded: q.excluded,
                            paused: self.paused.contains(&q.tp),
                        })
                        .collect(),
                }
            })
            .collect();
        self.shared.publish_status(statuses);
    }
}

impl TaskManager {
    /// Per-task gauges, consumer lag and the stall check (SPEC §10).
    fn publish_task_health<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let now = super::wall_clock_ms();
        let positions = &self.positions;
        for task in self.tasks.values_mut() {
            let broker_lag: Option<i64> = task
                .partitions()
                .map(|tp| lag(consumer, positions, tp))
                .sum();
            task.publish_health(now, broker_lag.map(|l| l.max(0) as u64));
        }
    }
}

/// Interactive queries, apart from the rest of the task manager.
impl TaskManager {
    /// The instances of store `name` in this thread's tasks.
    pub fn task_stores(&self, name: &str) -> Vec<(TaskId, &crate::stores::TaskStore)> {
        self.tasks
            .values()
            .filter_map(|t| t.store(name).map(|s| (t.id(), s)))
            .collect()
    }
}

/// Catching up (SPEC §8, reprocessing), apart from the rest of the task manager.
impl TaskManager {
    /// Sets each task's catching-up flag from its source partitions' lag: the high watermark
    /// (librdkafka's cached value, which every fetch response refreshes: no network call)
    /// minus the next offset the task will process. Partitions whose watermark is not known
    /// yet do not count; a task with none known keeps its flag.
    pub fn refresh_catching_up<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let threshold = self.shared.config.catching_up_lag_threshold;
        for task in self.tasks.values() {
            let lags: Vec<i64> = task
                .partitions()
                .filter_map(|tp| {
                    lag(consumer, &self.positions, tp).map(|l| l + task.buffered_in(tp) as i64)
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

/// Deletes records of repartition topics that this thread has committed past (SPEC §6
/// step 5), at most once per purge interval, off the processing thread.
struct RepartitionPurger {
    admin: Option<Arc<AdminClient<DefaultClientContext>>>,
    interval: Duration,
    last: std::time::Instant,
    /// Highest committed offset per repartition partition not yet purged.
    pending: BTreeMap<(String, i32), i64>,
}

impl RepartitionPurger {
    fn new(config: &crate::config::StreamsConfig) -> Self {
        let admin = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &config.bootstrap_servers)
            .create()
            .map_err(|e| tracing::warn!(error = %e, "no admin client: repartition topics will not be purged"))
            .ok()
            .map(Arc::new);
        RepartitionPurger {
            admin,
            interval: config.repartition_purge_interval,
            last: std::time::Instant::now(),
            pending: BTreeMap::new(),
        }
    }

    fn after_commit(
        &mut self,
        committed: &TopicPartitionList,
        repartition: &std::collections::BTreeSet<String>,
    ) {
        for elem in committed.elements() {
            if let (true, Offset::Offset(o)) = (repartition.contains(elem.topic()), elem.offset()) {
                self.pending
                    .insert((elem.topic().to_string(), elem.partition()), o);
            }
        }
        if self.pending.is_empty() || self.last.elapsed() < self.interval {
            return;
        }
        let Some(admin) = self.admin.clone() else {
            return;
        };
        self.last = std::time::Instant::now();
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in std::mem::take(&mut self.pending) {
            let _ = tpl.add_partition_offset(&topic, partition, Offset::Offset(offset));
        }
        // The admin call completes on librdkafka's thread; waiting for it must not stall
        // processing, and a failed purge only delays disk reclamation.
        std::thread::spawn(move || {
            let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
            match futures::executor::block_on(admin.delete_records(&tpl, &options)) {
                Ok(_) => tracing::debug!(partitions = tpl.count(), "purged repartition topics"),
                Err(e) => tracing::warn!(error = %e, "purging repartition topics failed"),
            }
        });
    }
}

/// Repeats a transaction call that failed in a retriable way (it timed out, e.g. while the
/// broker is unreachable): librdkafka resumes the same operation when it is called again, and
/// nothing else may happen in the transaction meanwhile. Any other outcome is returned.
fn retry_transaction_call(
    what: &str,
    call: impl Fn() -> Result<(), KafkaError>,
) -> Result<(), KafkaError> {
    let mut backoff = Duration::from_millis(100);
    loop {
        match call() {
            Err(KafkaError::Transaction(e)) if e.is_retriable() => {
                metrics::counter!("streamtime_commit_retries_total").increment(1);
                tracing::warn!(error = %e, ?backoff, "{what} timed out; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

fn task_list(tasks: &BTreeSet<TaskId>) -> String {
    let ids: Vec<String> = tasks.iter().map(TaskId::to_string).collect();
    format!("[{}]", ids.join(" "))
}

/// This consumer's member id in its group; `None` before it joined.
fn member_id<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> Option<String> {
    // SAFETY: the client pointer is valid while `consumer` lives; the returned string is
    // owned by us and freed with the matching librdkafka function after copying it.
    unsafe {
        let rk = consumer.client().native_ptr();
        let ptr = rdkafka::bindings::rd_kafka_memberid(rk);
        if ptr.is_null() {
            return None;
        }
        let id = std::ffi::CStr::from_ptr(ptr).to_string_lossy().into_owned();
        rdkafka::bindings::rd_kafka_mem_free(rk, ptr.cast());
        (!id.is_empty()).then_some(id)
    }
}

/// Opens a task's state, waiting while another thread of this instance still holds the
/// task's directory (a standby it gives up in its own rebalance callback).
fn retry_while_locked(
    task: TaskId,
    open: impl Fn() -> Result<StateManager, StreamsError>,
) -> Result<StateManager, StreamsError> {
    let deadline = std::time::Instant::now() + DIRECTORY_WAIT;
    loop {
        match open() {
            Err(StreamsError::State(msg))
                if msg.contains("is locked") && std::time::Instant::now() < deadline =>
            {
                tracing::debug!(%task, "state directory still locked; waiting");
                std::thread::sleep(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// Records the broker holds beyond what this thread fetched, from librdkafka's cached
/// watermarks (no network call); `None` until a fetch response told us.
fn lag<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    positions: &HashMap<TopicPartition, i64>,
    tp: &TopicPartition,
) -> Option<i64> {
    let topic = CString::new(tp.topic.as_bytes()).ok()?;
    let (mut low, mut high) = (-1_i64, -1_i64);
    // SAFETY: the client pointer is valid while `consumer` lives, the topic is a valid C
    // string, and the out-pointers are valid for the call; the function only reads the
    // client's cached state.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            tp.partition,
            &mut low,
            &mut high,
        )
    };
    tracing::trace!(partition = %tp, ?err, low, high, position = ?positions.get(tp), "cached watermarks");
    if err != rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        || high < 0
        || low < 0
    {
        return None;
    }
    // Without a committed offset the consumer starts at the earliest offset.
    let position = positions.get(tp).copied().unwrap_or(low);
    Some((high - position).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_metadata_round_trips_and_tolerates_foreign_values() {
        let none = BTreeMap::new();
        assert_eq!(
            decode_metadata(&encode_metadata(1234, &none)),
            Some((1234, none.clone()))
        );
        assert_eq!(
            decode_metadata(&encode_metadata(-1, &none)),
            Some((-1, none.clone()))
        );
        let processor: BTreeMap<String, i64> = [
            ("3.observed".to_string(), 99),
            ("3.emitted".to_string(), -5),
        ]
        .into();
        assert_eq!(
            decode_metadata(&encode_metadata(7, &processor)),
            Some((7, processor))
        );
        assert_eq!(decode_metadata(""), None);
        assert_eq!(decode_metadata("AQAAAXg="), None);
        assert_eq!(decode_metadata("streamtime:v1:5;x=notanumber"), None);
    }
}
