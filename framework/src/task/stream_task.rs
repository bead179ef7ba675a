//! [`StreamTask`]: one sub-topology on one partition of its sources, processing records one at
//! a time, depth-first, in timestamp order across its partitions.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use super::partition_group::PartitionGroup;
use super::record_errors::{ErrorPolicies, RecordErrorHandler};
use super::record_queue::RecordQueue;
use super::stall::{StallDetector, StallState};
use super::state_manager::StateManager;
use super::task_metrics::TaskMetrics;
use super::watermarks::{WatermarkReader, WatermarkWriter};
use super::{TaskId, TopicPartition};
use crate::error::{ProcessResult, StreamsError};
use crate::faults::FaultPoint;
use crate::processor::node::{Lifecycle, RawInput};
use crate::processor::PunctuationType;
use crate::record::{RawRecord, RecordMetadata};
use crate::task::record_collector::RecordCollector;
use crate::task::task_context::{TaskContext, TaskState};
use crate::timestamp::{InvalidTimestampPolicy, TimestampExtractor};
use crate::topology::{SubTopology, Topology};

/// Settings a task takes from the application config.
#[derive(Clone)]
pub(crate) struct TaskConfig {
    pub application_id: Arc<str>,
    pub max_task_idle_ms: Option<i64>,
    pub invalid_timestamp_policy: InvalidTimestampPolicy,
    pub default_extractor: Arc<dyn TimestampExtractor>,
    pub error_policies: ErrorPolicies,
    pub stall_warning_after_ms: Option<i64>,
    pub faults: crate::faults::Faults,
    /// The instance's global stores (filled before any task processes).
    pub globals: super::global_stores::GlobalStores,
    /// Resolved names of the repartition topics that carry watermarks.
    pub watermark_topics: Arc<std::collections::BTreeSet<String>>,
    /// A watermark writer silent for this long no longer holds readers back.
    pub watermark_writer_timeout_ms: i64,
}

impl TaskConfig {
    pub(crate) fn from_config(config: &crate::StreamsConfig) -> Self {
        TaskConfig {
            application_id: Arc::from(config.application_id.as_str()),
            max_task_idle_ms: config.max_task_idle_ms(),
            invalid_timestamp_policy: config.invalid_timestamp_policy,
            default_extractor: config.default_extractor.clone(),
            faults: config.faults.clone(),
            globals: Default::default(),
            watermark_topics: Default::default(),
            watermark_writer_timeout_ms: config.watermark_writer_timeout.as_millis() as i64,
            error_policies: ErrorPolicies {
                deserialization: config.deserialization_error_policy.clone(),
                processing: config.processing_error_policy,
            },
            stall_warning_after_ms: config
                .stall_warning_after
                .map(|d| d.as_millis().min(i64::MAX as u128) as i64),
        }
    }
}

/// What a task has consumed from one partition, for the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Consumed {
    /// Next offset to process.
    pub next_offset: i64,
    /// Partition time to persist in the commit metadata.
    pub partition_time: i64,
    /// The task's processor metadata, saved with every partition of the task.
    pub processor_metadata: BTreeMap<String, i64>,
}

pub(crate) struct StreamTask {
    id: TaskId,
    ctx: Rc<TaskContext>,
    group: PartitionGroup,
    sources: Vec<Rc<RefCell<dyn RawInput>>>,
    nodes: BTreeMap<usize, Rc<RefCell<dyn Lifecycle>>>,
    init_order: Vec<usize>,
    state: StateManager,
    /// Per queue of `group` (same order): the last offset processed.
    consumed: Vec<Option<i64>>,
    uncommitted: bool,
    processed: u64,
    metrics: TaskMetrics,
    stall: StallDetector,
    errors: RecordErrorHandler,
    closed: bool,
    faults: crate::faults::Faults,
    /// Reports the task's progress to the watermarked topics its sinks write.
    watermark_writer: Option<WatermarkWriter>,
    /// The writers' progress on the watermarked topics the task reads.
    watermark_reader: Option<WatermarkReader>,
}

impl StreamTask {
    /// Builds the task's nodes and queues for `partitions` (resolved topic names).
    pub(crate) fn new(
        id: TaskId,
        topology: &Topology,
        sub: &SubTopology,
        partitions: &[TopicPartition],
        (collector, state): (Box<dyn RecordCollector>, StateManager),
        config: &TaskConfig,
        wall_clock_ms: i64,
    ) -> Result<Self, StreamsError> {
        let ctx = Rc::new(TaskContext {
            task_id: id,
            application_id: config.application_id.clone(),
            state: RefCell::new(TaskState::new(wall_clock_ms)),
            collector: RefCell::new(collector),
            stores: state.stores(),
            globals: config.globals.clone(),
            flushes: RefCell::default(),
        });
        let graph = topology.build_task_graph(sub, ctx.clone())?;
        let mut sources: Vec<Rc<RefCell<dyn RawInput>>> = Vec::new();
        let mut queues = Vec::new();
        for tp in partitions {
            let source = graph
                .sources
                .iter()
                .find(|s| *s.topic == *tp.topic)
                .ok_or_else(|| {
                    StreamsError::Topology(format!(
                        "task {id} was given {tp}, which no source of sub-topology {} reads",
                        sub.id
                    ))
                })?;
            let extractor = source
                .extractor
                .clone()
                .unwrap_or_else(|| config.default_extractor.clone());
            sources.push(source.node.clone());
            queues.push(RecordQueue::new(tp.clone(), sources.len() - 1, extractor));
        }
        let init_order = graph.nodes.iter().map(|(i, _)| *i).collect();
        let consumed = vec![None; queues.len()];
        let watermarked: Vec<bool> = queues
            .iter()
            .map(|q: &RecordQueue| config.watermark_topics.contains(&*q.tp.topic))
            .collect();
        let written: Vec<String> = sub
            .sink_topics
            .iter()
            .map(|t| t.resolve(&config.application_id))
            .filter(|t| config.watermark_topics.contains(t))
            .collect();
        let watermark_reader =
            WatermarkReader::new(&watermarked, config.watermark_writer_timeout_ms);
        if watermark_reader.is_some() {
            ctx.state.borrow_mut().watermark = Some(i64::MIN);
        }
        Ok(StreamTask {
            id,
            ctx,
            group: PartitionGroup::new(
                queues,
                config.max_task_idle_ms,
                config.invalid_timestamp_policy,
            ),
            sources,
            nodes: graph.nodes.into_iter().collect(),
            init_order,
            state,
            consumed,
            uncommitted: false,
            processed: 0,
            metrics: TaskMetrics::new(id),
            stall: StallDetector::new(config.stall_warning_after_ms),
            errors: RecordErrorHandler::new(id, config.error_policies.clone()),
            closed: false,
            faults: config.faults.clone(),
            watermark_writer: WatermarkWriter::new(&id.to_string(), written),
            watermark_reader,
        })
    }

    pub(crate) fn id(&self) -> TaskId {
        self.id
    }

    /// Initializes every node, upstream first.
    pub(crate) fn init(&mut self) -> ProcessResult {
        for i in &self.init_order {
            let node = &self.nodes[i];
            self.guarded(|| node.borrow_mut().init())
                .map_err(|e| self.with_task(e))?;
        }
        Ok(())
    }

    /// Runs `call` (user code below it), turning a panic into a processing error: one
    /// caught by the processor node where it happened (which names the node) even if a
    /// parent ignored its `forward` result, else one caught here (a serde, say).
    fn guarded(&self, call: impl FnOnce() -> ProcessResult) -> ProcessResult {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call))
            .unwrap_or_else(|panic| Err(crate::error::panic_error(String::new(), panic.as_ref())));
        match self.ctx.state.borrow_mut().caught_panic.take() {
            Some(panic) => Err(panic),
            None => result,
        }
    }

    /// Adds the task id to the context of an error raised outside any record.
    fn with_task(&self, e: StreamsError) -> StreamsError {
        match e {
            StreamsError::Processing { context, message } => StreamsError::Processing {
                context: format!(
                    "task {}{}{context}",
                    self.id,
                    if context.is_empty() { "" } else { ", " }
                ),
                message,
            },
            other => other,
        }
    }

    pub(crate) fn partitions(&self) -> impl Iterator<Item = &TopicPartition> {
        self.group.partitions()
    }

    pub(crate) fn partition_group(&self) -> &PartitionGroup {
        &self.group
    }

    pub(crate) fn add_records(
        &mut self,
        tp: &TopicPartition,
        records: impl IntoIterator<Item = RawRecord>,
    ) -> Result<(), StreamsError> {
        self.group.add_records(tp, records)
    }

    pub(crate) fn buffered_in(&self, tp: &TopicPartition) -> usize {
        self.group.buffered_in(tp)
    }

    pub(crate) fn set_excluded(&mut self, tp: &TopicPartition, excluded: bool) -> bool {
        self.group.set_excluded(tp, excluded)
    }

    /// The excluded partitions that rejoined on data since the last call.
    pub(crate) fn take_rejoined(&mut self) -> Vec<TopicPartition> {
        self.group.take_rejoined()
    }

    /// Starts from `tp`'s committed position (`next_offset`, the next record to read): a
    /// commit before any new record (a punctuator's output, an operator's clock) commits it
    /// again with the task's metadata, instead of leaving the metadata out.
    pub(crate) fn restore_position(&mut self, tp: &TopicPartition, next_offset: i64) {
        let queue = self.group.queues().iter().position(|q| &q.tp == tp);
        if let (Some(i), true) = (queue, next_offset > 0) {
            self.consumed[i] = Some(next_offset - 1);
        }
    }

    pub(crate) fn restore_partition_time(&mut self, tp: &TopicPartition, partition_time: i64) {
        self.group.restore_partition_time(tp, partition_time);
        self.ctx.state.borrow_mut().stream_time = self.group.stream_time();
    }

    pub(crate) fn stream_time(&self) -> i64 {
        self.group.stream_time()
    }

    /// Restores processor metadata read from a committed offset, before `init`. Every
    /// partition of a task carries a copy; values only grow, so the largest wins.
    pub(crate) fn restore_processor_metadata(&mut self, metadata: &BTreeMap<String, i64>) {
        let mut state = self.ctx.state.borrow_mut();
        for (k, v) in metadata {
            let slot = state.processor_metadata.entry(k.clone()).or_insert(*v);
            *slot = (*slot).max(*v);
        }
    }

    pub(crate) fn processed(&self) -> u64 {
        self.processed
    }

    /// Sets what [`crate::ProcessorContext::is_catching_up`] answers; returns whether it
    /// changed.
    pub(crate) fn set_catching_up(&self, catching_up: bool) -> bool {
        let mut state = self.ctx.state.borrow_mut();
        std::mem::replace(&mut state.catching_up, catching_up) != catching_up
    }

    pub(crate) fn set_wall_clock(&self, wall_clock_ms: i64) {
        self.ctx.state.borrow_mut().wall_clock_ms = wall_clock_ms;
    }

    /// Processes the next record if the task is ready, then fires due stream-time
    /// punctuators. Returns whether a record was processed.
    pub(crate) fn process(
        &mut self,
        wall_clock_ms: i64,
        lag: &dyn Fn(&TopicPartition) -> Option<i64>,
    ) -> Result<bool, StreamsError> {
        if self.group.ready_to_process(wall_clock_ms, lag).is_err() {
            return Ok(false);
        }
        let stream_time_before = self.group.stream_time();
        let Some((queue, mut record, timestamp)) = self.group.next_record()? else {
            return Ok(false);
        };
        let source = self.group.queues()[queue].source;
        let tp = self.group.queues()[queue].tp.clone();
        let offset = record.offset;
        if let Some(reader) = &mut self.watermark_reader {
            // A writer's progress: taken in partition order, never processed.
            if reader.take(queue, &record, wall_clock_ms) {
                let (known, active) = reader.writers(wall_clock_ms);
                let task = self.id.to_string();
                metrics::gauge!("streamtime_watermark_ms", "task" => task.clone())
                    .set(reader.watermark(wall_clock_ms) as f64);
                metrics::gauge!("streamtime_watermark_writers", "task" => task.clone(), "state" => "active")
                    .set(active as f64);
                metrics::gauge!("streamtime_watermark_writers", "task" => task, "state" => "silent")
                    .set((known - active) as f64);
                self.consumed[queue] = Some(offset);
                self.uncommitted = true;
                return Ok(true);
            }
            self.ctx.state.borrow_mut().watermark = Some(reader.watermark(wall_clock_ms));
        }
        {
            let mut state = self.ctx.state.borrow_mut();
            state.stream_time = self.group.stream_time();
            state.current_timestamp = timestamp;
            state.wall_clock_ms = wall_clock_ms;
            state.current = Some(RecordMetadata {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset,
            });
        }
        let node = &self.sources[source];
        let faults = &self.faults;
        let result = self.guarded(|| {
            if faults.fail_at(FaultPoint::Process) {
                return Err(StreamsError::Processing {
                    context: String::new(),
                    message: crate::faults::injected(FaultPoint::Process),
                });
            }
            node.borrow_mut().process_raw(&mut record, timestamp)
        });
        self.ctx.state.borrow_mut().current = None;
        if let Err(e) = result {
            let e = self.with_context(e, &tp, offset);
            let mut collector = self.ctx.collector.borrow_mut();
            self.errors.handle(e, &tp, &record, &mut **collector)?;
        }
        self.consumed[queue] = Some(offset);
        self.uncommitted = true;
        self.processed += 1;
        self.metrics.processed(stream_time_before, timestamp);
        self.punctuate(PunctuationType::StreamTime, self.group.stream_time())?;
        Ok(true)
    }

    fn record_context(&self, tp: &TopicPartition, offset: i64, context: &str) -> String {
        format!(
            "task {} record {tp}@{offset}{}{}",
            self.id,
            if context.is_empty() { "" } else { ", " },
            context
        )
    }

    fn with_context(&self, e: StreamsError, tp: &TopicPartition, offset: i64) -> StreamsError {
        match e {
            StreamsError::Processing { context, message } => StreamsError::Processing {
                context: self.record_context(tp, offset, &context),
                message,
            },
            // A serde failing inside the topology (a sink, a store) says which one, not on
            // which input record.
            StreamsError::Serde { context, message } => StreamsError::Serde {
                context: self.record_context(tp, offset, &context),
                message,
            },
            other => other,
        }
    }

    /// Fires the due punctuators of `kind` at `now`. Returns whether any fired.
    pub(crate) fn punctuate(
        &mut self,
        kind: PunctuationType,
        now: i64,
    ) -> Result<bool, StreamsError> {
        if kind == PunctuationType::StreamTime && now < 0 {
            return Ok(false);
        }
        let due = self.ctx.state.borrow_mut().take_due(kind, now);
        for (node, punctuation) in &due {
            self.ctx.state.borrow_mut().current_timestamp = punctuation.timestamp;
            if let Some(n) = self.nodes.get(node) {
                self.guarded(|| n.borrow_mut().punctuate(*punctuation))
                    .map_err(|e| self.with_task(e))?;
                self.uncommitted = true;
            }
        }
        Ok(!due.is_empty())
    }

    /// Fires due wall-clock punctuators.
    pub(crate) fn punctuate_wall_clock(
        &mut self,
        wall_clock_ms: i64,
    ) -> Result<bool, StreamsError> {
        self.set_wall_clock(wall_clock_ms);
        self.punctuate(PunctuationType::WallClockTime, wall_clock_ms)
    }

    /// Commit step 1: every node forwards what it held back (upstream first, so what they
    /// forward reaches downstream nodes before those are called), then every store writes
    /// out its cache.
    pub(crate) fn flush_for_commit(&mut self) -> Result<(), StreamsError> {
        for i in &self.init_order {
            let node = &self.nodes[i];
            self.guarded(|| node.borrow_mut().before_commit())
                .map_err(|e| self.with_task(e))?;
        }
        // After everything the commit sends: a reader takes the progress only once it has
        // read the records sent before it.
        if let Some(writer) = &mut self.watermark_writer {
            let mut collector = self.ctx.collector.borrow_mut();
            writer.report(self.group.stream_time(), &mut **collector)?;
        }
        self.state.flush_caches()
    }

    /// Whether anything was processed since the last commit.
    pub(crate) fn needs_commit(&self) -> bool {
        self.uncommitted
    }

    /// Takes and clears a commit request made by a processor.
    pub(crate) fn take_commit_request(&self) -> bool {
        std::mem::take(&mut self.ctx.state.borrow_mut().commit_requested)
    }

    /// Offsets and partition times to commit, per partition processed so far.
    pub(crate) fn committable(&self) -> Vec<(TopicPartition, Consumed)> {
        let processor_metadata = self.ctx.state.borrow().processor_metadata.clone();
        self.group
            .queues()
            .iter()
            .zip(&self.consumed)
            .filter_map(|(q, offset)| offset.map(|offset| (q, offset)))
            .map(|(q, offset)| {
                let partition_time = q.partition_time;
                (
                    q.tp.clone(),
                    Consumed {
                        next_offset: offset + 1,
                        partition_time,
                        processor_metadata: processor_metadata.clone(),
                    },
                )
            })
            .collect()
    }

    /// Checkpoints the task's stores (see `StateManager::checkpoint_with`): changelog
    /// offsets as `delivered` gives them, and for a table restoring from its source topic
    /// the offset of the last record processed from it.
    pub(crate) fn checkpoint(
        &mut self,
        delivered: &dyn Fn(&TopicPartition) -> Option<i64>,
    ) -> Result<(), StreamsError> {
        let processed: Vec<(TopicPartition, i64)> = self
            .group
            .queues()
            .iter()
            .zip(&self.consumed)
            .filter_map(|(q, offset)| offset.map(|o| (q.tp.clone(), o)))
            .collect();
        let processed_offset = |tp: &TopicPartition| {
            processed
                .iter()
                .find(|(p, _)| p == tp)
                .map(|(_, offset)| *offset)
        };
        self.state.checkpoint_with(delivered, &processed_offset)
    }

    pub(crate) fn mark_committed(&mut self) {
        self.uncommitted = false;
        self.state.committed_at(self.group.stream_time());
    }

    /// Publishes the task's gauges and checks it for a stall at wall-clock `now_ms`.
    /// `broker_lag`: records the broker holds past the fetch position of its partitions.
    pub(crate) fn publish_health(&mut self, now_ms: i64, broker_lag: Option<u64>) {
        self.metrics.publish(&self.group, broker_lag);
        let buffered = self.group.queues().iter().map(|q| q.len()).sum();
        match self.stall.observe(now_ms, buffered, self.processed) {
            StallState::Stalled { since_ms, first } => {
                self.metrics.set_stalled(true);
                if first {
                    let partitions: Vec<String> = self
                        .group
                        .queues()
                        .iter()
                        .map(|q| format!("{} buffered={} excluded={}", q.tp, q.len(), q.excluded))
                        .collect();
                    tracing::warn!(task = %self.id, buffered, stalled_ms = now_ms - since_ms,
                        stream_time = self.group.stream_time(), ?partitions,
                        "task has buffered records but processed none: stalled");
                }
            }
            StallState::Recovered { stalled_ms } => {
                self.metrics.set_stalled(false);
                tracing::info!(task = %self.id, stalled_ms, "task is processing again");
            }
            StallState::Healthy | StallState::Waiting => self.metrics.set_stalled(false),
        }
    }

    /// The task's metric handles.
    pub(crate) fn metrics(&self) -> &TaskMetrics {
        &self.metrics
    }

    /// Records dropped by this task: invalid timestamps, and records skipped by the
    /// deserialization and processing error policies.
    pub(crate) fn dropped(&self) -> u64 {
        self.group.dropped() + self.errors.skipped()
    }

    /// Enforced-processing decisions so far.
    pub(crate) fn enforced_processing(&self) -> u64 {
        self.group.enforced_processing
    }

    /// The store called `name`, if the task has it.
    pub(crate) fn store(&self, name: &str) -> Option<&crate::stores::TaskStore> {
        self.ctx.stores.get(name)
    }

    /// The task's stores.
    pub(crate) fn state(&mut self) -> &mut StateManager {
        &mut self.state
    }

    /// Closes every node, downstream last, drops buffered records and closes the stores.
    pub(crate) fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        for i in &self.init_order {
            self.nodes[i].borrow_mut().close();
        }
        self.group.clear();
        self.state.close();
    }
}
