//! Runtime nodes of a task's processing graph: processor, source and sink nodes, and how
//! the topology's factories build them for one task.
//!
//! Nodes are built per task from the topology's factories. A node is held as
//! `Rc<RefCell<_>>` so that a node with several parents (merge) can be a child of each; the
//! graph is acyclic and single-threaded, so a borrow never conflicts.

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use super::children::{new_children, Node, NodeRef};
use super::context::ProcessorContext;
use super::{Processor, Punctuation};
use crate::error::{ProcessResult, StreamsError};
use crate::partitioner;
use crate::record::Record;
use crate::serdes::{from_bytes, Serde};
use crate::task::record_collector::OutgoingRecord;
use crate::task::task_context::TaskContext;

type NamedChildren<K, V> = Vec<(Arc<str>, NodeRef<K, V>)>;

/// Life-cycle calls every node gets, whatever its types.
pub(crate) trait Lifecycle {
    fn init(&mut self) -> ProcessResult {
        Ok(())
    }
    fn punctuate(&mut self, _punctuation: Punctuation) -> ProcessResult {
        Ok(())
    }
    fn before_commit(&mut self) -> ProcessResult {
        Ok(())
    }
    fn close(&mut self) {}
}

/// A source node: deserializes raw records and starts their trip through the graph.
pub(crate) trait RawInput {
    /// Deserializes `raw` (failing with [`StreamsError::Deserialization`]) and forwards it.
    /// Deserializes and forwards `raw`. Its value bytes move into the value when the serde
    /// can keep them; they are left in place if deserialization fails.
    fn process_raw(&mut self, raw: &mut crate::record::RawRecord, timestamp: i64) -> ProcessResult;
}

/// A built node's input side, type-erased so the topology can wire parents to children.
pub(crate) struct BuiltNode {
    /// `NodeRef<K, V>` of the node's input types, for parents to forward into.
    pub input: Option<Rc<dyn Any>>,
    /// Set for source nodes.
    pub raw: Option<Rc<RefCell<dyn RawInput>>>,
    pub lifecycle: Rc<RefCell<dyn Lifecycle>>,
}

/// A child as handed to its parent's factory.
pub(crate) struct ChildHandle {
    pub name: Arc<str>,
    pub input: Rc<dyn Any>,
    pub input_type: &'static str,
}

/// Everything a node factory needs to build one node for one task.
pub(crate) struct NodeBuild {
    pub name: Arc<str>,
    pub index: usize,
    pub task: Rc<TaskContext>,
    pub children: Vec<ChildHandle>,
    pub output_type: &'static str,
}

impl NodeBuild {
    /// The children as typed node references; fails when a child takes other types.
    pub(crate) fn typed_children<K: 'static, V: 'static>(
        &mut self,
    ) -> Result<NamedChildren<K, V>, StreamsError> {
        std::mem::take(&mut self.children)
            .into_iter()
            .map(|c| {
                c.input
                    .downcast_ref::<NodeRef<K, V>>()
                    .cloned()
                    .map(|node| (c.name.clone(), node))
                    .ok_or_else(|| {
                        StreamsError::Topology(format!(
                            "node {} forwards {} but its child {} takes {}",
                            self.name, self.output_type, c.name, c.input_type
                        ))
                    })
            })
            .collect()
    }

    pub(crate) fn context<K: Clone + 'static, V: Clone + 'static>(
        &mut self,
    ) -> Result<ProcessorContext<K, V>, StreamsError> {
        let children = new_children(self.typed_children::<K, V>()?);
        Ok(ProcessorContext::new(
            self.name.clone(),
            self.index,
            children,
            self.task.clone(),
        ))
    }
}

pub(crate) struct ProcessorNode<KIn, VIn, KOut, VOut> {
    processor: Box<dyn Processor<KIn, VIn, KOut, VOut>>,
    ctx: ProcessorContext<KOut, VOut>,
}

impl<KIn, VIn, KOut, VOut> ProcessorNode<KIn, VIn, KOut, VOut>
where
    KIn: 'static,
    VIn: 'static,
    KOut: Clone + 'static,
    VOut: Clone + 'static,
{
    pub(crate) fn build(
        mut build: NodeBuild,
        processor: Box<dyn Processor<KIn, VIn, KOut, VOut>>,
    ) -> Result<BuiltNode, StreamsError> {
        let ctx = build.context::<KOut, VOut>()?;
        let node = Rc::new(RefCell::new(ProcessorNode { processor, ctx }));
        let input: NodeRef<KIn, VIn> = node.clone();
        Ok(BuiltNode {
            input: Some(Rc::new(input)),
            raw: None,
            lifecycle: node,
        })
    }
}

impl<KIn: 'static, VIn: 'static, KOut: 'static, VOut: 'static> ProcessorNode<KIn, VIn, KOut, VOut> {
    /// Runs user code, turning a panic into a processing error that names this node. The
    /// happy path costs nothing: unwinding tables, no extra work per call.
    fn guarded(
        &mut self,
        what: &str,
        call: impl FnOnce(&mut Self) -> ProcessResult,
    ) -> ProcessResult {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(self))) {
            Ok(result) => result,
            Err(panic) => {
                let error = crate::error::panic_error(
                    format!("node {}{what}", self.ctx.node_name()),
                    panic.as_ref(),
                );
                self.ctx
                    .task_context()
                    .state
                    .borrow_mut()
                    .caught_panic
                    .get_or_insert_with(|| error.clone());
                Err(error)
            }
        }
    }
}

impl<KIn: 'static, VIn: 'static, KOut: 'static, VOut: 'static> Node<KIn, VIn>
    for ProcessorNode<KIn, VIn, KOut, VOut>
{
    fn process(&mut self, record: Record<KIn, VIn>) -> ProcessResult {
        self.guarded("", |node| node.processor.process(&mut node.ctx, record))
    }
}

impl<KIn: 'static, VIn: 'static, KOut: 'static, VOut: 'static> Lifecycle
    for ProcessorNode<KIn, VIn, KOut, VOut>
{
    fn init(&mut self) -> ProcessResult {
        self.guarded(" (init)", |node| node.processor.init(&mut node.ctx))
    }
    fn punctuate(&mut self, punctuation: Punctuation) -> ProcessResult {
        self.guarded(" (punctuate)", |node| {
            node.processor.punctuate(&mut node.ctx, punctuation)
        })
    }
    fn before_commit(&mut self) -> ProcessResult {
        self.guarded(" (before commit)", |node| {
            node.processor.before_commit(&mut node.ctx)
        })
    }
    fn close(&mut self) {
        let name = self.ctx.node_name().to_string();
        if let Err(panic) =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.processor.close()))
        {
            // Closing goes on for the other nodes: the task is going away either way.
            let error = crate::error::panic_error(format!("node {name} (close)"), panic.as_ref());
            tracing::error!(%error, "a processor panicked while closing");
        }
    }
}

pub(crate) struct SourceNode<K, V> {
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<V>>,
    ctx: ProcessorContext<K, V>,
}

impl<K: Clone + 'static, V: Clone + 'static> SourceNode<K, V> {
    pub(crate) fn build(
        mut build: NodeBuild,
        key_serde: Arc<dyn Serde<K>>,
        value_serde: Arc<dyn Serde<V>>,
    ) -> Result<BuiltNode, StreamsError> {
        let ctx = build.context::<K, V>()?;
        let node = Rc::new(RefCell::new(SourceNode {
            key_serde,
            value_serde,
            ctx,
        }));
        Ok(BuiltNode {
            input: None,
            raw: Some(node.clone()),
            lifecycle: node,
        })
    }
}

impl<K: Clone + 'static, V: Clone + 'static> RawInput for SourceNode<K, V> {
    fn process_raw(&mut self, raw: &mut crate::record::RawRecord, timestamp: i64) -> ProcessResult {
        let serde_error =
            |what: &str, e: crate::serdes::SerdeError| StreamsError::Deserialization {
                context: format!(
                    "{}-{}@{} ({what}, source node {})",
                    raw.topic,
                    raw.partition,
                    raw.offset,
                    self.ctx.node_name()
                ),
                message: e.0,
            };
        let key =
            from_bytes(&*self.key_serde, raw.key.as_deref()).map_err(|e| serde_error("key", e))?;
        // The key is read from a copy, so a value that fails leaves both original byte
        // strings in `raw` for a dead-letter record.
        let value = match raw.value.take() {
            None => self.value_serde.null_value(),
            Some(bytes) => self
                .value_serde
                .deserialize_owned(bytes)
                .map_err(|(e, bytes)| {
                    raw.value = Some(bytes);
                    e
                }),
        }
        .map_err(|e| serde_error("value", e))?;
        self.ctx.forward(Record {
            key,
            value,
            timestamp,
            headers: raw.headers.clone(),
        })
    }
}

impl<K, V> Lifecycle for SourceNode<K, V> {}

/// Chooses the partition of an output record from its key, value and the partition count.
pub(crate) type Partitioner<K, V> = Arc<dyn Fn(&K, &V, i32) -> i32 + Send + Sync>;

pub(crate) struct SinkNode<K, V> {
    name: Arc<str>,
    topic: Arc<str>,
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<V>>,
    partitioner: Option<Partitioner<K, V>>,
    task: Rc<TaskContext>,
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
    round_robin: i32,
}

impl<K: 'static, V: 'static> SinkNode<K, V> {
    pub(crate) fn build(
        build: NodeBuild,
        topic: Arc<str>,
        key_serde: Arc<dyn Serde<K>>,
        value_serde: Arc<dyn Serde<V>>,
        partitioner: Option<Partitioner<K, V>>,
    ) -> Result<BuiltNode, StreamsError> {
        let node = Rc::new(RefCell::new(SinkNode {
            name: build.name.clone(),
            topic,
            key_serde,
            value_serde,
            partitioner,
            task: build.task.clone(),
            key_buf: Vec::new(),
            value_buf: Vec::new(),
            round_robin: 0,
        }));
        let input: NodeRef<K, V> = node.clone();
        Ok(BuiltNode {
            input: Some(Rc::new(input)),
            raw: None,
            lifecycle: node,
        })
    }

    fn serde_error(&self, what: &str, e: crate::serdes::SerdeError) -> StreamsError {
        StreamsError::Serde {
            context: format!("{what} for topic {} (sink node {})", self.topic, self.name),
            message: e.0,
        }
    }
}

impl<K, V> Node<K, V> for SinkNode<K, V>
where
    K: 'static,
    V: 'static,
{
    fn process(&mut self, record: Record<K, V>) -> ProcessResult {
        let key_null = self.key_serde.is_null(&record.key);
        let value_null = self.value_serde.is_null(&record.value);
        self.key_buf.clear();
        self.value_buf.clear();
        if !key_null {
            self.key_serde
                .serialize(&record.key, &mut self.key_buf)
                .map_err(|e| self.serde_error("key", e))?;
        }
        if !value_null {
            self.value_serde
                .serialize(&record.value, &mut self.value_buf)
                .map_err(|e| self.serde_error("value", e))?;
        }
        let mut collector = self.task.collector.borrow_mut();
        let partitions = collector.partitions(&self.topic)?;
        // Partitions are chosen here, not by the producer, so that the test driver and a
        // cluster agree and keys land where Java clients would put them (murmur2).
        let partition = if let Some(p) = &self.partitioner {
            p(&record.key, &record.value, partitions)
        } else if key_null {
            self.round_robin = (self.round_robin + 1) % partitions;
            self.round_robin
        } else {
            partitioner::partition_for_key(&self.key_buf, partitions)
        };
        if !(0..partitions).contains(&partition) {
            return Err(StreamsError::Processing {
                context: format!("sink node {}", self.name),
                message: format!(
                    "partitioner chose partition {partition} of topic {} which has {partitions}",
                    self.topic
                ),
            });
        }
        collector.send(OutgoingRecord {
            topic: &self.topic,
            partition,
            key: (!key_null).then_some(&self.key_buf[..]),
            value: (!value_null).then_some(&self.value_buf[..]),
            headers: &record.headers,
            timestamp: record.timestamp,
        })
    }
}

impl<K, V> Lifecycle for SinkNode<K, V> {}
