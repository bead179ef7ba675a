//! Grouped streams and their aggregations into tables: `count`, `reduce`, `aggregate`.
//!
//! ```
//! use streamtime::{StreamsBuilder, StreamsConfig, Consumed, Grouped, Materialized, Produced, TopologyTestDriver};
//! use streamtime::serdes::{StringSerde, I64Serde};
//!
//! let builder = StreamsBuilder::new();
//! builder.stream("words", Consumed::with(StringSerde, StringSerde))
//!     .group_by(|_k, word: &String| word.clone(), Grouped::with_serdes(StringSerde, StringSerde))
//!     .count(Materialized::as_("word-counts"))
//!     .to_stream()
//!     .to("counts", Produced::with(StringSerde, I64Serde));
//! let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("wc", "unused")).unwrap();
//! let words = driver.input_topic("words", StringSerde, StringSerde);
//! for (i, w) in ["a", "b", "a"].into_iter().enumerate() { words.pipe("line".into(), w.into(), i as i64).unwrap(); }
//! let counts = driver.output_topic("counts", StringSerde, I64Serde).read_key_values();
//! assert_eq!(counts, vec![("a".into(), 1), ("b".into(), 1), ("a".into(), 2)]);
//! ```

use std::sync::Arc;

use super::cached_forwarder::CachedForwarder;
use super::options::{Grouped, Materialized, Repartitioned};
use super::stream::KStream;
use super::table::KTable;
use crate::error::StreamsError;
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serdes::{I64Serde, Serde, TimestampedSerde};
use crate::stores::{StoreSpec, Stores};
use crate::ProcessResult;

/// A stream grouped by key, ready to aggregate.
pub struct KGroupedStream<K, V> {
    stream: KStream<K, V>,
    grouped: Grouped<K, V>,
}

impl<K: Clone + 'static, V: Clone + 'static> KStream<K, V> {
    /// Groups records by their current key, for an aggregation. If a key-changing operation
    /// came before, the aggregation first repartitions through
    /// `<app>-<name>-repartition`, where the name is the `Grouped` name or else the store's.
    pub fn group_by_key(&self) -> KGroupedStream<K, V> {
        self.group_by_key_with(Grouped::default())
    }

    /// [`group_by_key`](Self::group_by_key) with the serdes and the name of `grouped`: the
    /// repartition topic's name, and the serdes an aggregation after a key-changing operation
    /// needs.
    pub fn group_by_key_with(&self, grouped: Grouped<K, V>) -> KGroupedStream<K, V> {
        KGroupedStream::new(self.clone(), grouped)
    }

    /// Groups records by a new key computed from each record (always repartitions).
    pub fn group_by<K2: Clone + 'static>(
        &self,
        selector: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
        grouped: Grouped<K2, V>,
    ) -> KGroupedStream<K2, V> {
        self.select_key(selector).group_by_key_with(grouped)
    }
}

pub(crate) type Step<K, V, A> = Arc<dyn Fn(&K, V, Option<A>) -> A + Send + Sync>;

/// The fold steps of `count`, `reduce` and `aggregate`, shared by every aggregation that
/// folds a record into one aggregate at a time (per key, per time or sliding window).
pub(crate) mod steps {
    use super::Step;
    use std::sync::Arc;

    pub(crate) fn count<K, V>() -> Step<K, V, i64> {
        Arc::new(|_k: &K, _v: V, n: Option<i64>| n.unwrap_or(0) + 1)
    }

    /// The first value starts the aggregate.
    pub(crate) fn reduce<K, V>(
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
    ) -> Step<K, V, V> {
        Arc::new(move |_k: &K, v: V, old: Option<V>| match old {
            Some(agg) => reducer(agg, v),
            None => v,
        })
    }

    pub(crate) fn aggregate<K, V, A>(
        initializer: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
    ) -> Step<K, V, A> {
        Arc::new(move |k: &K, v: V, old: Option<A>| {
            aggregator(k, v, old.unwrap_or_else(&initializer))
        })
    }
}

/// What every aggregation of a grouped stream starts from: its input (repartitioned when the
/// key changed), store name and serdes.
pub(crate) struct Prepared<K, V, A> {
    pub input: KStream<K, V>,
    pub store_name: String,
    pub key_serde: Arc<dyn Serde<K>>,
    pub agg_serde: Arc<dyn Serde<A>>,
}

/// The one processor behind `count`, `reduce` and `aggregate`: folds each record into the
/// stored aggregate of its key and forwards the new aggregate, stamped with the larger of
/// the record's and the previous aggregate's timestamps.
pub(super) struct AggregateProcessor<K, V, A> {
    pub(super) store_name: String,
    pub(super) key_serde: Arc<dyn Serde<K>>,
    pub(super) agg_serde: Arc<dyn Serde<A>>,
    pub(super) step: Step<K, V, A>,
    pub(super) store: Option<CachedForwarder<K, A>>,
}

impl<K, V, A> Processor<K, V, K, A> for AggregateProcessor<K, V, A>
where
    K: Clone + 'static,
    V: 'static,
    A: Clone + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, A>) -> ProcessResult {
        self.store = Some(CachedForwarder::new(ctx.key_value_store(
            &self.store_name,
            self.key_serde.clone(),
            TimestampedSerde(self.agg_serde.clone()),
        )?));
        Ok(())
    }

    fn process(&mut self, ctx: &mut ProcessorContext<K, A>, record: Record<K, V>) -> ProcessResult {
        let forwarder = self.store.as_mut().expect("init ran");
        let store = forwarder.store();
        let previous = store.get(&record.key)?;
        let (old, old_ts) = match previous {
            Some((a, ts)) => (Some(a), ts),
            None => (None, i64::MIN),
        };
        let timestamp = record.timestamp.max(old_ts);
        let new = (self.step)(&record.key, record.value, old);
        store.put(&record.key, &(new.clone(), timestamp))?;
        let update = Record {
            key: record.key,
            value: new,
            timestamp,
            headers: record.headers,
        };
        forwarder.written(ctx, update, |a| a)
    }

    fn before_commit(&mut self, ctx: &mut ProcessorContext<K, A>) -> ProcessResult {
        let forwarder = self.store.as_mut().expect("init ran");
        forwarder.before_commit(ctx, |a| a)
    }
}

impl<K: Clone + 'static, V: Clone + 'static> KGroupedStream<K, V> {
    pub(crate) fn new(stream: KStream<K, V>, grouped: Grouped<K, V>) -> Self {
        KGroupedStream { stream, grouped }
    }

    /// Cuts the grouped stream into windows: [`super::TimeWindows`] (tumbling, hopping),
    /// [`super::SlidingWindows`] or [`super::SessionWindows`].
    pub fn windowed_by<W: super::windows::WindowKind>(
        self,
        windows: W,
    ) -> super::WindowedKStream<K, V, W> {
        super::WindowedKStream::new(self, windows)
    }

    /// Counts records per key.
    pub fn count(self, materialized: Materialized<K, i64>) -> KTable<K, i64> {
        let materialized = Self::with_default_serde(materialized, Some(Arc::new(I64Serde)));
        self.fold(materialized, steps::count())
    }

    /// Combines the values of each key with `reducer(aggregate, value)`; the first value is
    /// the initial aggregate.
    pub fn reduce(
        self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        let materialized = Self::with_default_serde(materialized, self.stream.value_serde());
        self.fold(materialized, steps::reduce(reducer))
    }

    /// Folds the values of each key into an aggregate starting from `initializer()`.
    pub fn aggregate<A: Clone + 'static>(
        self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> KTable<K, A> {
        self.fold(materialized, steps::aggregate(initializer, aggregator))
    }

    /// Resolves the pieces every aggregation needs; a failure is recorded on the builder and
    /// returned as the store name, for a placeholder result.
    pub(crate) fn prepare<A: Clone + 'static>(
        &self,
        prefix: &str,
        materialized: &Materialized<K, A>,
    ) -> Result<Prepared<K, V, A>, String> {
        let state = self.stream.state().clone();
        let store_name = materialized
            .name
            .clone()
            .unwrap_or_else(|| state.borrow_mut().next_name(prefix));
        let failed = |e: StreamsError| {
            state.borrow_mut().record_error(e);
            store_name.clone()
        };
        // Equal keys must meet in one task: repartition after a key change.
        let input = if self.stream.is_repartition_required() {
            let name = self
                .grouped
                .name
                .clone()
                .unwrap_or_else(|| store_name.clone());
            self.stream.repartition(Repartitioned::implicit(
                name,
                self.grouped.key_serde.clone(),
                self.grouped.value_serde.clone(),
            ))
        } else {
            self.stream.clone()
        };
        let Some(key_serde) = materialized
            .key_serde
            .clone()
            .or_else(|| self.grouped.key_serde.clone())
            .or_else(|| input.key_serde())
        else {
            return Err(failed(StreamsError::Topology(format!(
                "aggregation into {store_name}: the key serde is unknown; pass it in Grouped or Materialized"
            ))));
        };
        let Some(agg_serde) = materialized.value_serde.clone() else {
            return Err(failed(StreamsError::Topology(format!(
                "aggregation into {store_name}: the aggregate's serde is unknown; pass it in Materialized"
            ))));
        };
        Ok(Prepared {
            input,
            store_name,
            key_serde,
            agg_serde,
        })
    }

    /// Registers `spec` (configured by the aggregation's `Materialized`) and adds the
    /// aggregating processor reading `input`; returns the processor's node.
    pub(crate) fn add_aggregate<KO, VO, P>(
        &self,
        input: &KStream<K, V>,
        spec: StoreSpec,
        supplier: impl Fn() -> P + Send + Sync + 'static,
    ) -> Option<usize>
    where
        KO: Clone + 'static,
        VO: Clone + 'static,
        P: Processor<K, V, KO, VO>,
    {
        let state = self.stream.state().clone();
        let name = spec.name.clone();
        // Bound first: a borrow in the condition would last into the block, which borrows again.
        let registered = state.borrow_mut().topology.register_store(spec);
        if let Err(e) = registered {
            state.borrow_mut().record_error(e);
            return None;
        }
        input.add_processor("KSTREAM-AGGREGATE", &[], vec![name], supplier)
    }

    /// Defaults the aggregate serde of `count` and `reduce`.
    pub(crate) fn with_default_serde<A>(
        materialized: Materialized<K, A>,
        default: Option<Arc<dyn Serde<A>>>,
    ) -> Materialized<K, A> {
        Materialized {
            value_serde: materialized.value_serde.or(default),
            ..materialized
        }
    }

    pub(crate) fn stream(&self) -> &KStream<K, V> {
        &self.stream
    }

    pub(crate) fn grouped(&self) -> &Grouped<K, V> {
        &self.grouped
    }

    fn fold<A: Clone + 'static>(
        self,
        materialized: Materialized<K, A>,
        step: Step<K, V, A>,
    ) -> KTable<K, A> {
        let prepared = match self.prepare("KSTREAM-AGGREGATE-STATE-STORE", &materialized) {
            Ok(p) => p,
            Err(store) => {
                return KTable {
                    stream: self.stream.derive(None, None, None, false),
                    store,
                }
            }
        };
        let Prepared {
            input,
            store_name,
            key_serde,
            agg_serde,
        } = prepared;
        let (name, ks, aggs) = (store_name.clone(), key_serde.clone(), agg_serde.clone());
        let node = self.add_aggregate(
            &input,
            materialized.configure(Stores::key_value(&store_name).with_timestamped_values()),
            move || AggregateProcessor {
                store_name: name.clone(),
                key_serde: ks.clone(),
                agg_serde: aggs.clone(),
                step: step.clone(),
                store: None,
            },
        );
        KTable {
            stream: input.derive(node, Some(key_serde), Some(agg_serde), false),
            store: store_name,
        }
    }
}
