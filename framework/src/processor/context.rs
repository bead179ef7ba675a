//! [`ProcessorContext`]: what a processor can do besides computing.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::children::{call, Child};
use super::{PunctuationType, PunctuatorId};
use crate::error::{ProcessResult, StreamsError};
use crate::record::{Record, RecordMetadata};
use crate::serdes::Serde;
use crate::stores::{
    KeyValueStoreHandle, SessionStoreHandle, VersionedStoreHandle, WindowStoreHandle,
};
use crate::task::task_context::TaskContext;
use crate::task::TaskId;

/// The context of one processor node in one task: forwarding to children, punctuation
/// schedules, and the metadata of the record being processed.
pub struct ProcessorContext<K, V> {
    node_name: Arc<str>,
    node_index: usize,
    children: Vec<Child<K, V>>,
    task: Rc<TaskContext>,
    /// Set for the processors of `KStream::process_values`: whether a forwarded key is the
    /// key of the record being processed (any key passes outside `process`).
    same_key: Option<KeyCheck<K>>,
}

/// Whether a forwarded key is allowed.
pub(crate) type KeyCheck<K> = Rc<dyn Fn(&K) -> bool>;

impl<K: Clone + 'static, V: Clone + 'static> ProcessorContext<K, V> {
    pub(crate) fn new(
        node_name: Arc<str>,
        node_index: usize,
        children: Vec<Child<K, V>>,
        task: Rc<TaskContext>,
    ) -> Self {
        ProcessorContext {
            node_name,
            node_index,
            children,
            task,
            same_key: None,
        }
    }

    /// Makes every forward check its key with `same_key` (see `KStream::process_values`).
    pub(crate) fn require_same_key(&mut self, same_key: KeyCheck<K>) {
        self.same_key = Some(same_key);
    }

    fn check_key(&self, record: &Record<K, V>) -> ProcessResult {
        match &self.same_key {
            Some(same) if !same(&record.key) => Err(StreamsError::processing(format!(
                "processor {} of process_values forwarded a record with another key than the \
                 one it was given; a processor that changes keys belongs in KStream::process",
                self.node_name
            ))),
            _ => Ok(()),
        }
    }

    /// Sends `record` to every child, in the order the children were added, and returns when
    /// all of them (and everything downstream) have processed it.
    pub fn forward(&mut self, record: Record<K, V>) -> ProcessResult {
        self.check_key(&record)?;
        let Some((last, rest)) = self.children.split_last() else {
            return Ok(());
        };
        for child in rest {
            call(&child.node, record.clone())?;
        }
        call(&last.node, record)
    }

    /// Sends `record` to the child called `child` only.
    pub fn forward_to(&mut self, child: &str, record: Record<K, V>) -> ProcessResult {
        self.check_key(&record)?;
        match self.children.iter().find(|c| &*c.name == child) {
            Some(c) => call(&c.node, record),
            None => Err(StreamsError::Topology(format!(
                "node {} has no child called {child}",
                self.node_name
            ))),
        }
    }

    /// Sends `record` to the `index`-th child (in the order children were added).
    pub fn forward_to_index(&mut self, index: usize, record: Record<K, V>) -> ProcessResult {
        self.check_key(&record)?;
        match self.children.get(index) {
            Some(c) => call(&c.node, record),
            None => Err(StreamsError::Topology(format!(
                "node {} has no child number {index}",
                self.node_name
            ))),
        }
    }
}

impl<K, V> ProcessorContext<K, V> {
    /// The task's shared context.
    pub(crate) fn task_context(&self) -> &TaskContext {
        &self.task
    }

    /// Name of this node.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// Names of the children, in forwarding order.
    pub fn child_names(&self) -> Vec<&str> {
        self.children.iter().map(|c| &*c.name).collect()
    }

    /// The task this node runs in.
    pub fn task_id(&self) -> TaskId {
        self.task.task_id
    }

    /// The application id.
    pub fn application_id(&self) -> &str {
        &self.task.application_id
    }

    /// Topic, partition and offset of the input record being processed; `None` inside a
    /// punctuation.
    pub fn record_metadata(&self) -> Option<RecordMetadata> {
        self.task.state.borrow().current.clone()
    }

    /// The task's stream time: the largest record timestamp it has processed (ms), or -1.
    pub fn stream_time(&self) -> i64 {
        self.task.state.borrow().stream_time
    }

    /// Whether the task is catching up: one of its source partitions has more records left
    /// to process than [`crate::StreamsConfig::catching_up_lag_threshold`] (a reprocessing
    /// after a reset, a long outage). A processor with side effects that matter only for
    /// fresh records (notifications, calls to other systems) can skip them meanwhile.
    ///
    /// The runtime refreshes it from the broker's high watermarks between batches of
    /// records, not per record; until the first fetch tells them, it is `false`. The test
    /// driver sets it with [`crate::TopologyTestDriver::set_catching_up`].
    ///
    /// ```
    /// use streamtime::{Processor, ProcessorContext, ProcessResult, Record};
    ///
    /// struct Notify { sent: Vec<String> }
    ///
    /// impl Processor<String, String, String, String> for Notify {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<String, String>, r: Record<String, String>) -> ProcessResult {
    ///         if !ctx.is_catching_up() {
    ///             self.sent.push(format!("mail {}", r.key)); // the side effect
    ///         }
    ///         ctx.forward(r)
    ///     }
    /// }
    /// ```
    pub fn is_catching_up(&self) -> bool {
        self.task.state.borrow().catching_up
    }

    /// The task reads watermarked repartition topics: the smallest progress of their active
    /// writers, which windowed operators keep their stream time at or below.
    pub(crate) fn watermark(&self) -> Option<i64> {
        self.task.state.borrow().watermark
    }

    /// Current wall-clock time in ms as the runtime (or the test driver) sees it.
    pub fn wall_clock_ms(&self) -> i64 {
        self.task.state.borrow().wall_clock_ms
    }

    /// Schedules [`crate::Processor::punctuate`] every `interval` of stream time or
    /// wall-clock time. Stream-time schedules are aligned to multiples of the interval and
    /// fire once however many intervals a jump in stream time skips.
    pub fn schedule(&mut self, interval: Duration, kind: PunctuationType) -> PunctuatorId {
        let interval_ms = (interval.as_millis() as i64).max(1);
        self.task
            .state
            .borrow_mut()
            .schedule(self.node_index, interval_ms, kind)
    }

    /// Cancels a schedule made by this node.
    pub fn cancel(&mut self, id: PunctuatorId) {
        self.task.state.borrow_mut().cancel(id);
    }

    /// A typed handle on the key-value store `name` of this task. The store must have been
    /// connected to this processor (`Topology::add_state_store`, or by the DSL).
    pub fn key_value_store<SK: 'static, SV: 'static>(
        &self,
        name: &str,
        key_serde: impl Serde<SK>,
        value_serde: impl Serde<SV>,
    ) -> Result<KeyValueStoreHandle<SK, SV>, StreamsError> {
        KeyValueStoreHandle::open(&self.task, &self.node_name, name, key_serde, value_serde)
    }

    /// A typed handle on the versioned store `name` of this task (see
    /// [`crate::stores::Stores::versioned_key_value`]), for reads as of a time.
    pub fn versioned_store<SK: 'static, SV: 'static>(
        &self,
        name: &str,
        key_serde: impl Serde<SK>,
        value_serde: impl Serde<SV>,
    ) -> Result<VersionedStoreHandle<SK, SV>, StreamsError> {
        VersionedStoreHandle::open(&self.task, &self.node_name, name, key_serde, value_serde)
    }

    /// A typed handle on the window store `name` of this task (see
    /// [`crate::stores::Stores::window`]).
    pub fn window_store<SK: 'static, SV: 'static>(
        &self,
        name: &str,
        key_serde: impl Serde<SK>,
        value_serde: impl Serde<SV>,
    ) -> Result<WindowStoreHandle<SK, SV>, StreamsError> {
        WindowStoreHandle::open(
            &self.task,
            &self.node_name,
            name,
            Arc::new(key_serde),
            Arc::new(value_serde),
        )
    }

    /// A typed handle on the session store `name` of this task (see
    /// [`crate::stores::Stores::session`]).
    pub fn session_store<SK: 'static, SV: 'static>(
        &self,
        name: &str,
        key_serde: impl Serde<SK>,
        value_serde: impl Serde<SV>,
    ) -> Result<SessionStoreHandle<SK, SV>, StreamsError> {
        SessionStoreHandle::open(
            &self.task,
            &self.node_name,
            name,
            Arc::new(key_serde),
            Arc::new(value_serde),
        )
    }

    /// A number this processor saved with [`ProcessorContext::set_committed_metadata`], as of
    /// the last commit of the task (or set since). Like Kafka Streams' processor metadata, it
    /// travels in the committed offsets' metadata, so it moves with the task and, under
    /// exactly-once, commits atomically with the output.
    pub fn committed_metadata(&self, name: &str) -> Option<i64> {
        let key = format!("{}.{name}", self.node_index);
        self.task
            .state
            .borrow()
            .processor_metadata
            .get(&key)
            .copied()
    }

    /// Saves a number with the next commit (see [`ProcessorContext::committed_metadata`]).
    /// Keep names short: Kafka limits commit metadata to a few kilobytes per partition.
    pub fn set_committed_metadata(&mut self, name: &str, value: i64) {
        let key = format!("{}.{name}", self.node_index);
        self.task
            .state
            .borrow_mut()
            .processor_metadata
            .insert(key, value);
    }

    /// Writes already serialized bytes to `topic` (a side output such as a dead-letter
    /// topic), partitioned by the key's bytes like a sink without a partitioner.
    pub(crate) fn send_bytes(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
        headers: &crate::record::Headers,
    ) -> ProcessResult {
        let mut collector = self.task.collector.borrow_mut();
        let partitions = collector.partitions(topic)?;
        let partition = key.map_or(0, |k| crate::partitioner::partition_for_key(k, partitions));
        collector.send(crate::task::record_collector::OutgoingRecord {
            topic,
            partition,
            key,
            value,
            headers,
            timestamp,
        })
    }

    /// Asks for a commit as soon as possible.
    pub fn request_commit(&mut self) {
        self.task.state.borrow_mut().commit_requested = true;
    }
}
