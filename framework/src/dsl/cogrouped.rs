//! Cogrouping (Kafka Streams' KIP-150): several grouped streams, of different value types,
//! folded into one aggregate per key in one store ([`KGroupedStream::cogroup`],
//! [`CogroupedKStream::cogroup`], [`CogroupedKStream::aggregate`]).
//!
//! Each input keeps its own aggregator and is repartitioned on its own when its key
//! changed (through `<app>-<name>-repartition`, the input's `Grouped` name, or else
//! `<store>-cogroup-<n>`); all inputs are co-partitioned and update the same aggregate, in
//! timestamp order across the inputs within a task.
//!
//! ```
//! use streamtime::{Consumed, Materialized, Produced, StreamsBuilder, StreamsConfig, TopologyTestDriver};
//! use streamtime::serdes::{I64Serde, StringSerde};
//!
//! // customer -> cents spent, from two kinds of events
//! let builder = StreamsBuilder::new();
//! let orders = builder.stream("orders", Consumed::with(StringSerde, I64Serde)).group_by_key();
//! let refunds = builder.stream("refunds", Consumed::with(StringSerde, StringSerde)).group_by_key();
//! orders
//!     .cogroup(|_customer, cents: i64, total: i64| total + cents)
//!     .cogroup(refunds, |_customer, cents: String, total: i64| total - cents.parse::<i64>().unwrap_or(0))
//!     .aggregate(|| 0, Materialized::as_("spent").with_value_serde(I64Serde))
//!     .to_stream()
//!     .to("spent", Produced::with(StringSerde, I64Serde));
//! let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("t", "unused")).unwrap();
//! driver.input_topic("orders", StringSerde, I64Serde).pipe("ann".into(), 500, 1).unwrap();
//! driver.input_topic("refunds", StringSerde, StringSerde).pipe("ann".into(), "200".into(), 2).unwrap();
//! let out = driver.output_topic("spent", StringSerde, I64Serde).read_key_values();
//! assert_eq!(out, [("ann".into(), 500), ("ann".into(), 300)]);
//! ```

use std::sync::Arc;

use super::grouped::{steps, AggregateProcessor, KGroupedStream};
use super::join::require_copartitioned;
use super::options::{Materialized, Repartitioned};
use super::stream::KStream;
use super::table::KTable;
use crate::error::StreamsError;
use crate::serdes::Serde;
use crate::stores::Stores;

/// Where a cogroup's inputs fold into: the store, its serdes and the shared initializer.
struct Target<K, A> {
    store: String,
    key_serde: Arc<dyn Serde<K>>,
    agg_serde: Arc<dyn Serde<A>>,
    initializer: Arc<dyn Fn() -> A + Send + Sync>,
}

/// Adds one input's aggregating processor (the input numbered by the `usize`); returns its
/// output stream, or an error for the build.
type AddInput<K, A> = Box<dyn FnOnce(&Target<K, A>, usize) -> Result<KStream<K, A>, StreamsError>>;

/// Grouped streams being cogrouped into one aggregate; end with
/// [`CogroupedKStream::aggregate`].
#[must_use = "a cogroup builds nothing until aggregate"]
pub struct CogroupedKStream<K, A> {
    /// The first input's stream, with its key serde (the builder, the default key serde).
    first: KStream<K, ()>,
    inputs: Vec<AddInput<K, A>>,
}

impl<K: Clone + 'static, V: Clone + 'static> KGroupedStream<K, V> {
    /// Starts a cogroup with this grouped stream, folded into the aggregate by
    /// `aggregator(key, value, aggregate)`.
    pub fn cogroup<A: Clone + 'static>(
        self,
        aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
    ) -> CogroupedKStream<K, A> {
        // The first input's key serde is the aggregate's unless `Materialized` gives one.
        let key_serde = self
            .grouped()
            .key_serde
            .clone()
            .or_else(|| self.stream().key_serde());
        let first = self
            .stream()
            .derive(self.stream().node(), key_serde, None, false);
        CogroupedKStream {
            first,
            inputs: vec![input(self, aggregator)],
        }
    }
}

impl<K: Clone + 'static, A: Clone + 'static> CogroupedKStream<K, A> {
    /// Adds `grouped`, folded into the same aggregate by `aggregator(key, value, aggregate)`.
    pub fn cogroup<V: Clone + 'static>(
        mut self,
        grouped: KGroupedStream<K, V>,
        aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
    ) -> Self {
        self.inputs.push(input(grouped, aggregator));
        self
    }

    /// The aggregate per key of every input, starting from `initializer()`, kept in the store
    /// `materialized` names (or a generated one), which must give the aggregate's serde.
    pub fn aggregate(
        self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> KTable<K, A> {
        let state = self.first.state().clone();
        let store = materialized.name.clone().unwrap_or_else(|| {
            state
                .borrow_mut()
                .next_name("COGROUPKSTREAM-AGGREGATE-STATE-STORE")
        });
        let failed = |e: StreamsError| {
            state.borrow_mut().record_error(e);
            KTable {
                stream: self.first.derive(None, None, None, false),
                store: store.clone(),
            }
        };
        let Some(agg_serde) = materialized.value_serde.clone() else {
            return failed(StreamsError::Topology(format!(
                "cogroup into {store}: the aggregate's serde is unknown; pass it in Materialized"
            )));
        };
        let key_serde = match materialized.key_serde.clone() {
            Some(k) => k,
            None => match self.first.key_serde() {
                Some(k) => k,
                None => {
                    return failed(StreamsError::Topology(format!(
                        "cogroup into {store}: the key serde is unknown; pass it in Grouped or \
                         Materialized"
                    )))
                }
            },
        };
        let spec = materialized.configure(Stores::key_value(&store).with_timestamped_values());
        let registered = state.borrow_mut().topology.register_store(spec);
        if let Err(e) = registered {
            return failed(e);
        }
        let target = Target {
            store: store.clone(),
            key_serde: key_serde.clone(),
            agg_serde: agg_serde.clone(),
            initializer: Arc::new(initializer),
        };
        let mut outputs: Vec<KStream<K, A>> = Vec::new();
        for (n, add) in self.inputs.into_iter().enumerate() {
            match add(&target, n + 1) {
                Ok(out) => outputs.push(out),
                Err(e) => return failed(e),
            }
        }
        let nodes: Option<Vec<usize>> = outputs.iter().map(|o| o.node()).collect();
        let Some(nodes) = nodes else {
            return failed(StreamsError::Topology(format!(
                "cogroup into {store}: an input failed to build"
            )));
        };
        for pair in nodes.windows(2) {
            require_copartitioned(&state, pair[0], pair[1]);
        }
        let mut merged = outputs.remove(0);
        for other in &outputs {
            merged = merged.merge(other);
        }
        KTable {
            stream: merged.with_serdes(key_serde, agg_serde),
            store,
        }
    }
}

/// One input of a cogroup: repartitioned if its key changed, then folded into the target.
fn input<K, V, A>(
    grouped: KGroupedStream<K, V>,
    aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
) -> AddInput<K, A>
where
    K: Clone + 'static,
    V: Clone + 'static,
    A: Clone + 'static,
{
    Box::new(move |target: &Target<K, A>, n: usize| {
        let stream = grouped.stream();
        let input = if stream.is_repartition_required() {
            let name = grouped
                .grouped()
                .name
                .clone()
                .unwrap_or_else(|| format!("{}-cogroup-{n}", target.store));
            let mut options = Repartitioned::<K, V>::as_(name);
            options.key_serde = grouped.grouped().key_serde.clone();
            options.value_serde = grouped.grouped().value_serde.clone();
            stream.repartition(options)
        } else {
            stream.clone()
        };
        let initializer = target.initializer.clone();
        let step = steps::aggregate(move || initializer(), aggregator);
        let (store, ks, aggs) = (
            target.store.clone(),
            target.key_serde.clone(),
            target.agg_serde.clone(),
        );
        let node = input.add_processor(
            "COGROUPKSTREAM-AGGREGATE",
            &[],
            vec![target.store.clone()],
            move || AggregateProcessor {
                store_name: store.clone(),
                key_serde: ks.clone(),
                agg_serde: aggs.clone(),
                step: step.clone(),
                store: None,
            },
        );
        Ok(input.derive(
            node,
            Some(target.key_serde.clone()),
            Some(target.agg_serde.clone()),
            false,
        ))
    })
}
