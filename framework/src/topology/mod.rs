//! [`Topology`]: the graph of sources, processors and sinks, built in code with the
//! Processor API (here) or the DSL ([`crate::StreamsBuilder`]).
//!
//! ```
//! use streamtime::{Topology, Processor, ProcessorContext, ProcessResult, Record};
//! use streamtime::serdes::StringSerde;
//!
//! struct Upper;
//! impl Processor<String, String, String, String> for Upper {
//!     fn process(&mut self, ctx: &mut ProcessorContext<String, String>,
//!                r: Record<String, String>) -> ProcessResult {
//!         let upper = r.value.to_uppercase();
//!         ctx.forward(r.with_value(upper))
//!     }
//! }
//!
//! let mut topology = Topology::new();
//! topology.add_source("in", &["words"], StringSerde, StringSerde).unwrap();
//! topology.add_processor("upper", || Upper, &["in"]).unwrap();
//! topology.add_sink("out", "shouted", StringSerde, StringSerde, &["upper"]).unwrap();
//! assert!(topology.describe().to_string().contains("Sub-topology: 0"));
//! ```

mod build;
mod describe;
mod optimize;
mod subtopology;

pub use describe::{
    NodeDescription, StoreDescription, SubtopologyDescription, TopologyDescription,
};
pub(crate) use subtopology::SubTopology;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use crate::error::StreamsError;
use crate::processor::node::{
    BuiltNode, NodeBuild, Partitioner, ProcessorNode, SinkNode, SourceNode,
};
use crate::processor::Processor;
use crate::serdes::Serde;
use crate::stores::StoreSpec;
use crate::timestamp::TimestampExtractor;

/// A topic as the topology names it. Internal topics get the application id as a prefix when
/// the application runs: `<application_id>-<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopicName {
    /// A user topic, used as is.
    External(Arc<str>),
    /// An internal topic (repartition, changelog), named without the application prefix.
    Internal(Arc<str>),
}

impl TopicName {
    /// The topic's name on the cluster for application `application_id`.
    pub fn resolve(&self, application_id: &str) -> String {
        match self {
            TopicName::External(t) => t.to_string(),
            TopicName::Internal(t) => format!("{application_id}-{t}"),
        }
    }

    /// True for internal topics.
    pub fn is_internal(&self) -> bool {
        matches!(self, TopicName::Internal(_))
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicName::External(t) | TopicName::Internal(t) => f.write_str(t),
        }
    }
}

/// Configuration of one repartition topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RepartitionTopic {
    /// Fixed partition count, or `None` to derive it from the writers' inputs.
    pub partitions: Option<i32>,
    /// Writers put their progress into it (`Repartitioned::with_watermarks`).
    pub watermarks: bool,
    /// Added by a key-based operation rather than by `KStream::repartition`: may be merged
    /// with others after the same key change.
    pub optimizable: bool,
}

pub(crate) type Factory = Arc<dyn Fn(NodeBuild) -> Result<BuiltNode, StreamsError> + Send + Sync>;

pub(crate) enum NodeKind {
    Source {
        topics: Vec<TopicName>,
        extractor: Option<Arc<dyn TimestampExtractor>>,
    },
    Processor,
    Sink {
        topic: TopicName,
    },
}

pub(crate) struct NodeDef {
    pub name: Arc<str>,
    pub kind: NodeKind,
    pub parents: Vec<usize>,
    pub stores: Vec<String>,
    /// `type_name` of the `(key, value)` the node takes (sources: none).
    pub input_type: &'static str,
    /// `type_name` of the `(key, value)` the node forwards (sinks: none).
    pub output_type: &'static str,
    /// The node may change keys (`map`, `select_key`, `flat_map`, `process`): where merged
    /// repartition topics are written.
    pub key_changing: bool,
    pub factory: Factory,
}

/// The processing graph of an application. See the module docs.
#[derive(Default)]
pub struct Topology {
    pub(crate) nodes: Vec<NodeDef>,
    names: HashMap<Arc<str>, usize>,
    pub(crate) repartition_topics: BTreeMap<TopicName, RepartitionTopic>,
    pub(crate) copartition_groups: Vec<BTreeSet<TopicName>>,
    source_topics: HashMap<TopicName, usize>,
    pub(crate) stores: BTreeMap<String, StoreSpec>,
    /// Topics processors write to besides sinks (dead-letter topics): checked at start.
    pub(crate) side_output_topics: BTreeSet<String>,
    /// Global tables by store name: the topic each follows (every partition, on every
    /// instance).
    pub(crate) global_tables: BTreeMap<String, GlobalTableSpec>,
}

/// A global table's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GlobalTableSpec {
    /// The topic it follows.
    pub topic: String,
    /// In RocksDB with a checkpoint (else in memory, read from the topic's start on every
    /// start).
    pub persistent: bool,
}

fn kv_type<K, V>() -> &'static str {
    std::any::type_name::<(K, V)>()
}

impl Topology {
    /// An empty topology.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a source node reading `topics` with the given serdes and the configured default
    /// timestamp extractor.
    pub fn add_source<K, V>(
        &mut self,
        name: &str,
        topics: &[&str],
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> Result<&mut Self, StreamsError>
    where
        K: Clone + 'static,
        V: Clone + 'static,
    {
        let topics = topics
            .iter()
            .map(|t| TopicName::External(Arc::from(*t)))
            .collect();
        self.add_source_node(
            name,
            topics,
            Arc::new(key_serde),
            Arc::new(value_serde),
            None,
        )?;
        Ok(self)
    }

    /// Like [`Topology::add_source`] with a timestamp extractor for this source only.
    pub fn add_source_with_extractor<K, V>(
        &mut self,
        name: &str,
        topics: &[&str],
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        extractor: impl TimestampExtractor,
    ) -> Result<&mut Self, StreamsError>
    where
        K: Clone + 'static,
        V: Clone + 'static,
    {
        let topics = topics
            .iter()
            .map(|t| TopicName::External(Arc::from(*t)))
            .collect();
        self.add_source_node(
            name,
            topics,
            Arc::new(key_serde),
            Arc::new(value_serde),
            Some(Arc::new(extractor)),
        )?;
        Ok(self)
    }

    /// Adds a processor created by `supplier` (once per task) as a child of `parents`.
    pub fn add_processor<KIn, VIn, KOut, VOut, P>(
        &mut self,
        name: &str,
        supplier: impl Fn() -> P + Send + Sync + 'static,
        parents: &[&str],
    ) -> Result<&mut Self, StreamsError>
    where
        P: Processor<KIn, VIn, KOut, VOut>,
        KIn: 'static,
        VIn: 'static,
        KOut: Clone + 'static,
        VOut: Clone + 'static,
    {
        let parents = self.parent_indices(name, parents)?;
        self.add_processor_node(name, parents, Vec::new(), supplier)?;
        Ok(self)
    }

    /// Adds a sink writing to `topic` as a child of `parents`; keys are partitioned like
    /// Kafka's default partitioner (murmur2).
    pub fn add_sink<K, V>(
        &mut self,
        name: &str,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        parents: &[&str],
    ) -> Result<&mut Self, StreamsError>
    where
        K: 'static,
        V: 'static,
    {
        let parents = self.parent_indices(name, parents)?;
        self.add_sink_node(
            name,
            TopicName::External(Arc::from(topic)),
            Arc::new(key_serde),
            Arc::new(value_serde),
            None,
            parents,
        )?;
        Ok(self)
    }

    /// Like [`Topology::add_sink`] with a custom partitioner `(key, value, partitions) ->
    /// partition`.
    pub fn add_sink_with_partitioner<K, V>(
        &mut self,
        name: &str,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        partitioner: impl Fn(&K, &V, i32) -> i32 + Send + Sync + 'static,
        parents: &[&str],
    ) -> Result<&mut Self, StreamsError>
    where
        K: 'static,
        V: 'static,
    {
        let parents = self.parent_indices(name, parents)?;
        self.add_sink_node(
            name,
            TopicName::External(Arc::from(topic)),
            Arc::new(key_serde),
            Arc::new(value_serde),
            Some(Arc::new(partitioner)),
            parents,
        )?;
        Ok(self)
    }

    /// Adds a state store and connects it to `processors`; every task of their sub-topology
    /// gets its own instance. Processors sharing a store always end up in one sub-topology.
    pub fn add_state_store(
        &mut self,
        spec: StoreSpec,
        processors: &[&str],
    ) -> Result<&mut Self, StreamsError> {
        if let Some(why) = &spec.rejected {
            return Err(StreamsError::Topology(why.clone()));
        }
        if self.stores.contains_key(&spec.name) || self.global_tables.contains_key(&spec.name) {
            return Err(StreamsError::Topology(format!(
                "store {} is already defined",
                spec.name
            )));
        }
        let indices = self.parent_indices(&spec.name, processors)?;
        for &i in &indices {
            if !matches!(self.nodes[i].kind, NodeKind::Processor) {
                return Err(StreamsError::Topology(format!(
                    "store {} can only be connected to processors, not to {}",
                    spec.name, self.nodes[i].name
                )));
            }
        }
        for i in indices {
            self.nodes[i].stores.push(spec.name.clone());
        }
        self.stores.insert(spec.name.clone(), spec);
        Ok(self)
    }

    /// Registers a store that processor nodes name in their own store lists (the DSL).
    pub(crate) fn register_store(&mut self, spec: StoreSpec) -> Result<(), StreamsError> {
        if let Some(why) = &spec.rejected {
            return Err(StreamsError::Topology(why.clone()));
        }
        if self.stores.contains_key(&spec.name) || self.global_tables.contains_key(&spec.name) {
            return Err(StreamsError::Topology(format!(
                "store {} is already defined",
                spec.name
            )));
        }
        self.stores.insert(spec.name.clone(), spec);
        Ok(())
    }

    /// Connects an existing store to more processors.
    pub fn connect_store(
        &mut self,
        store: &str,
        processors: &[&str],
    ) -> Result<&mut Self, StreamsError> {
        if !self.stores.contains_key(store) {
            return Err(StreamsError::Topology(format!("unknown store {store}")));
        }
        for i in self.parent_indices(store, processors)? {
            if !self.nodes[i].stores.iter().any(|s| s == store) {
                self.nodes[i].stores.push(store.to_string());
            }
        }
        Ok(self)
    }

    /// The changelog topic of a logged store.
    pub(crate) fn changelog_topic(store: &str) -> TopicName {
        TopicName::Internal(Arc::from(format!("{store}-changelog")))
    }

    /// The internal topics the application `application_id` runs this topology with: its
    /// repartition topics and the changelogs of its logged stores, by full name (none for
    /// tables restoring from their source topics, with `reuse_source_topics`).
    pub(crate) fn internal_topic_names(
        &self,
        application_id: &str,
        reuse_source_topics: bool,
    ) -> Vec<String> {
        let repartition = self.repartition_topics.keys();
        let changelogs = self
            .subtopologies()
            .into_iter()
            .flat_map(|sub| sub.stores)
            .filter(|store| {
                self.stores
                    .get(store)
                    .is_some_and(|s| s.has_own_changelog(reuse_source_topics))
            })
            .map(|store| Topology::changelog_topic(&store));
        let mut names: Vec<String> = repartition
            .cloned()
            .chain(changelogs)
            .map(|t| t.resolve(application_id))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Requires `topics` to have equal partition counts (checked when the app starts).
    pub fn copartition(&mut self, topics: &[&str]) -> &mut Self {
        self.copartition_groups.push(
            topics
                .iter()
                .map(|t| TopicName::External(Arc::from(*t)))
                .collect(),
        );
        self
    }

    /// A stable text description of sub-topologies, nodes, edges, topics and stores.
    pub fn describe(&self) -> TopologyDescription {
        describe::describe(self)
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    // ---- crate-internal building blocks shared with the DSL ----

    pub(crate) fn parent_indices(
        &self,
        child: &str,
        parents: &[&str],
    ) -> Result<Vec<usize>, StreamsError> {
        if parents.is_empty() {
            return Err(StreamsError::Topology(format!(
                "node {child} needs at least one parent"
            )));
        }
        parents
            .iter()
            .map(|p| {
                self.names.get(*p).copied().ok_or_else(|| {
                    StreamsError::Topology(format!("node {child}: unknown parent {p}"))
                })
            })
            .collect()
    }

    fn check_new_name(&self, name: &str) -> Result<(), StreamsError> {
        if name.is_empty() {
            return Err(StreamsError::Topology(
                "node names must not be empty".into(),
            ));
        }
        if self.names.contains_key(name) {
            return Err(StreamsError::Topology(format!(
                "node {name} is already defined"
            )));
        }
        Ok(())
    }

    fn push_node(&mut self, def: NodeDef) -> Result<usize, StreamsError> {
        self.check_new_name(&def.name)?;
        for &p in &def.parents {
            let parent = &self.nodes[p];
            if matches!(parent.kind, NodeKind::Sink { .. }) {
                return Err(StreamsError::Topology(format!(
                    "sink {} cannot be the parent of {}",
                    parent.name, def.name
                )));
            }
            if parent.output_type != def.input_type {
                return Err(StreamsError::Topology(format!(
                    "node {} forwards {} but its child {} takes {}",
                    parent.name, parent.output_type, def.name, def.input_type
                )));
            }
        }
        let index = self.nodes.len();
        self.names.insert(def.name.clone(), index);
        self.nodes.push(def);
        Ok(index)
    }

    pub(crate) fn add_source_node<K, V>(
        &mut self,
        name: &str,
        topics: Vec<TopicName>,
        key_serde: Arc<dyn Serde<K>>,
        value_serde: Arc<dyn Serde<V>>,
        extractor: Option<Arc<dyn TimestampExtractor>>,
    ) -> Result<usize, StreamsError>
    where
        K: Clone + 'static,
        V: Clone + 'static,
    {
        if topics.is_empty() {
            return Err(StreamsError::Topology(format!(
                "source {name} reads no topic"
            )));
        }
        for topic in &topics {
            if let Some(&other) = self.source_topics.get(topic) {
                return Err(StreamsError::Topology(format!(
                    "topic {topic} is already read by source {}",
                    self.nodes[other].name
                )));
            }
        }
        let index = self.push_node(NodeDef {
            name: Arc::from(name),
            kind: NodeKind::Source {
                topics: topics.clone(),
                extractor,
            },
            parents: Vec::new(),
            stores: Vec::new(),
            input_type: "",
            output_type: kv_type::<K, V>(),
            key_changing: false,
            factory: Arc::new(move |build| {
                SourceNode::build(build, key_serde.clone(), value_serde.clone())
            }),
        })?;
        for topic in topics {
            self.source_topics.insert(topic, index);
        }
        Ok(index)
    }

    pub(crate) fn add_processor_node<KIn, VIn, KOut, VOut, P>(
        &mut self,
        name: &str,
        parents: Vec<usize>,
        stores: Vec<String>,
        supplier: impl Fn() -> P + Send + Sync + 'static,
    ) -> Result<usize, StreamsError>
    where
        P: Processor<KIn, VIn, KOut, VOut>,
        KIn: 'static,
        VIn: 'static,
        KOut: Clone + 'static,
        VOut: Clone + 'static,
    {
        self.push_node(NodeDef {
            name: Arc::from(name),
            kind: NodeKind::Processor,
            parents,
            stores,
            input_type: kv_type::<KIn, VIn>(),
            output_type: kv_type::<KOut, VOut>(),
            key_changing: false,
            factory: Arc::new(move |build| {
                ProcessorNode::<KIn, VIn, KOut, VOut>::build(build, Box::new(supplier()))
            }),
        })
    }

    pub(crate) fn add_sink_node<K, V>(
        &mut self,
        name: &str,
        topic: TopicName,
        key_serde: Arc<dyn Serde<K>>,
        value_serde: Arc<dyn Serde<V>>,
        partitioner: Option<Partitioner<K, V>>,
        parents: Vec<usize>,
    ) -> Result<usize, StreamsError>
    where
        K: 'static,
        V: 'static,
    {
        let sink_topic = topic.clone();
        self.push_node(NodeDef {
            name: Arc::from(name),
            kind: NodeKind::Sink { topic },
            parents,
            stores: Vec::new(),
            input_type: kv_type::<K, V>(),
            output_type: "",
            key_changing: false,
            factory: Arc::new(move |build| {
                let resolved: Arc<str> = Arc::from(sink_topic.resolve(&build.task.application_id));
                SinkNode::build(
                    build,
                    resolved,
                    key_serde.clone(),
                    value_serde.clone(),
                    partitioner.clone(),
                )
            }),
        })
    }

    pub(crate) fn add_repartition_topic(&mut self, topic: TopicName, config: RepartitionTopic) {
        self.repartition_topics.insert(topic, config);
    }

    /// Marks node `index` as one that may change keys.
    pub(crate) fn mark_key_changing(&mut self, index: usize) {
        self.nodes[index].key_changing = true;
    }

    /// Resolved names of the repartition topics that carry watermarks.
    pub(crate) fn watermarked_topics(&self, application_id: &str) -> BTreeSet<String> {
        self.repartition_topics
            .iter()
            .filter(|(_, t)| t.watermarks)
            .map(|(name, _)| name.resolve(application_id))
            .collect()
    }

    /// Every topic a source node reads.
    pub(crate) fn all_source_topics(&self) -> impl Iterator<Item = &TopicName> {
        self.nodes.iter().flat_map(|n| match &n.kind {
            NodeKind::Source { topics, .. } => topics.as_slice(),
            _ => &[],
        })
    }

    /// Every topic a sink writes.
    pub(crate) fn all_sink_topics(&self) -> impl Iterator<Item = &TopicName> {
        self.nodes.iter().filter_map(|n| match &n.kind {
            NodeKind::Sink { topic } => Some(topic),
            _ => None,
        })
    }
}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.describe())
    }
}
