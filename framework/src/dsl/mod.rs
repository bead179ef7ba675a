//! The DSL: a fluent, typed way to build topologies.
//!
//! ```
//! use streamtime::{StreamsBuilder, Consumed, Produced};
//! use streamtime::serdes::{StringSerde, I64Serde};
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream("orders", Consumed::with(StringSerde, I64Serde))
//!     .filter(|_customer, amount| *amount > 0)
//!     .map_values(|amount| amount * 100)
//!     .to("orders-in-cents", Produced::default());
//! let topology = builder.build().unwrap();
//! assert_eq!(topology.node_count(), 4);
//! ```

mod branched;
mod cached_forwarder;
mod cogrouped;
mod emit;
mod foreign_key_join;
mod global_table;
mod grouped;
mod grouped_table;
mod join;
mod late;
mod options;
mod pending_windows;
mod process;
mod session_windowed;
mod sliding_windowed;
mod stream;
mod stream_table_join;
mod suppress;
mod table;
mod table_transforms;
mod windowed;
mod windows;

pub use branched::{Branched, BranchedKStream};
pub use cogrouped::{CogroupedKStream, TimeWindowedCogroupedKStream, WindowedCogroupedKStream};
pub use cogrouped::{SessionWindowedCogroupedKStream, SlidingWindowedCogroupedKStream};
pub use global_table::GlobalKTable;
pub use grouped::KGroupedStream;
pub use grouped_table::KGroupedTable;
pub use join::{JoinWindows, StreamJoined};
pub use late::{LateRecord, OnLate};
pub use options::{Consumed, Grouped, Materialized, Produced, Repartitioned};
pub use session_windowed::SessionWindowedKStream;
pub use sliding_windowed::SlidingWindowedKStream;
pub use stream::KStream;
pub use stream_table_join::Joined;
pub use suppress::{BufferConfig, Suppressed};
pub use table::KTable;
pub use windowed::{TimeWindowedKStream, WindowedKStream};
pub use windows::{
    EmitStrategy, SessionWindows, SlidingWindows, TimeWindows, Window, WindowKind, Windowed,
    WindowedSerde,
};

use std::cell::RefCell;
use std::rc::Rc;

use crate::config::StreamsConfig;
use crate::error::StreamsError;
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::topology::Topology;
use crate::ProcessResult;

pub(crate) struct BuilderState {
    pub topology: Topology,
    counter: usize,
    pub first_error: Option<StreamsError>,
    /// Tables whose updates include deletions: store name -> the node forwarding
    /// `(K, Option<V>)` changes (see `KTable::to_change_stream`).
    pub table_changes: std::collections::HashMap<String, usize>,
    /// For the store of each windowed aggregation, how long after a window's end it closes
    /// (grace, plus the inactivity gap for sessions): what `until_window_closes` waits.
    pub window_close_after: std::collections::HashMap<String, i64>,
}

impl BuilderState {
    /// The next generated name, `PREFIX-0000000007` style: deterministic in build order.
    pub(crate) fn next_name(&mut self, prefix: &str) -> String {
        let name = format!("{prefix}-{:010}", self.counter);
        self.counter += 1;
        name
    }

    pub(crate) fn record_error(&mut self, error: StreamsError) {
        if self.first_error.is_none() {
            self.first_error = Some(error);
        }
    }
}

/// Builds a [`Topology`] with the DSL. Errors (a missing serde, a name used twice...) are
/// kept and reported by [`StreamsBuilder::build`].
#[derive(Clone)]
pub struct StreamsBuilder {
    state: Rc<RefCell<BuilderState>>,
}

impl Default for StreamsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        StreamsBuilder {
            state: Rc::new(RefCell::new(BuilderState {
                topology: Topology::new(),
                counter: 0,
                first_error: None,
                table_changes: Default::default(),
                window_close_after: Default::default(),
            })),
        }
    }

    /// A stream of the records of `topic`.
    pub fn stream<K, V>(&self, topic: &str, consumed: Consumed<K, V>) -> KStream<K, V>
    where
        K: Clone + 'static,
        V: Clone + 'static,
    {
        self.stream_from(&[topic], consumed)
    }

    /// A stream of the records of several topics (one source node).
    pub fn stream_from<K, V>(&self, topics: &[&str], consumed: Consumed<K, V>) -> KStream<K, V>
    where
        K: Clone + 'static,
        V: Clone + 'static,
    {
        KStream::source(self.state.clone(), topics, consumed)
    }

    /// The topology, or the first error made while building it. Streams of this builder
    /// that are still alive must not be used afterwards: they add to an empty topology.
    pub fn build(self) -> Result<Topology, StreamsError> {
        let mut state = self.state.borrow_mut();
        match state.first_error.take() {
            Some(e) => Err(e),
            None => Ok(std::mem::take(&mut state.topology)),
        }
    }

    /// The topology rewritten as `config`'s `topology.optimization` asks (Kafka Streams'
    /// `build(props)`), so that [`Topology::describe`] shows what will run. The application
    /// and the test driver apply the same rewrite to a topology from [`StreamsBuilder::build`].
    ///
    /// ```
    /// use streamtime::config::TopologyOptimization;
    /// use streamtime::serdes::{I64Serde, StringSerde};
    /// use streamtime::{Consumed, Materialized, StreamsBuilder, StreamsConfig};
    ///
    /// let builder = StreamsBuilder::new();
    /// let by_word = builder
    ///     .stream("lines", Consumed::with(StringSerde, StringSerde))
    ///     .select_key(|_, line: &String| line.clone());
    /// by_word.group_by_key().count(Materialized::as_("counts"));
    /// by_word.group_by_key().count(Materialized::as_("counts-again"));
    /// let config = StreamsConfig::new("app", "localhost:9092")
    ///     .topology_optimization(TopologyOptimization::MergeRepartitionTopics);
    /// let topology = builder.build_with(&config).unwrap();
    /// // One repartition topic feeds both counts.
    /// assert_eq!(topology.describe().repartition_topics, vec!["counts-repartition"]);
    /// ```
    pub fn build_with(self, config: &StreamsConfig) -> Result<Topology, StreamsError> {
        let mut topology = self.build()?;
        if config.merges_repartition_topics() {
            topology.merge_repartition_topics();
        }
        Ok(topology)
    }
}

/// The single processor behind every stateless DSL operation: a closure over the context and
/// the record.
pub(crate) struct FnProcessor<F>(pub F);

impl<KIn, VIn, KOut, VOut, F> Processor<KIn, VIn, KOut, VOut> for FnProcessor<F>
where
    F: FnMut(&mut ProcessorContext<KOut, VOut>, Record<KIn, VIn>) -> ProcessResult + 'static,
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<KOut, VOut>,
        record: Record<KIn, VIn>,
    ) -> ProcessResult {
        (self.0)(ctx, record)
    }
}
