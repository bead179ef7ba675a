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

use super::stream::KStream;
use super::Repartitioned;
use crate::error::StreamsError;
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serdes::{I64Serde, Serde, SerdeError};
use crate::stores::{KeyValueStoreHandle, StoreSpec, Stores};
use crate::ProcessResult;

/// How a stream is grouped: the repartition topic's name and serdes.
pub struct Grouped<K, V> {
    pub(crate) name: Option<String>,
    pub(crate) key_serde: Option<Arc<dyn Serde<K>>>,
    pub(crate) value_serde: Option<Arc<dyn Serde<V>>>,
}

impl<K, V> Default for Grouped<K, V> {
    fn default() -> Self {
        Grouped {
            name: None,
            key_serde: None,
            value_serde: None,
        }
    }
}

impl<K, V> Grouped<K, V> {
    /// Names the repartition topic `<app>-<name>-repartition`.
    pub fn as_(name: impl Into<String>) -> Self {
        Grouped {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    /// Serdes for the repartition topic.
    pub fn with_serdes(key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> Self {
        Grouped {
            name: None,
            key_serde: Some(Arc::new(key_serde)),
            value_serde: Some(Arc::new(value_serde)),
        }
    }

    /// Names the repartition topic too.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// How an aggregation's table is stored: store name, value serde, in memory or RocksDB,
/// changelogged or not.
pub struct Materialized<K, V> {
    pub(crate) name: Option<String>,
    pub(crate) key_serde: Option<Arc<dyn Serde<K>>>,
    pub(crate) value_serde: Option<Arc<dyn Serde<V>>>,
    pub(crate) in_memory: bool,
    pub(crate) logging: bool,
}

impl<K, V> Default for Materialized<K, V> {
    fn default() -> Self {
        Materialized {
            name: None,
            key_serde: None,
            value_serde: None,
            in_memory: false,
            logging: true,
        }
    }
}

impl<K, V> Materialized<K, V> {
    /// A store called `name` (changelog `<app>-<name>-changelog`).
    pub fn as_(name: impl Into<String>) -> Self {
        Materialized {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    /// Serdes of the stored keys and values.
    pub fn with_serdes(mut self, key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> Self {
        self.key_serde = Some(Arc::new(key_serde));
        self.value_serde = Some(Arc::new(value_serde));
        self
    }

    /// Serde of the stored values only.
    pub fn with_value_serde(mut self, value_serde: impl Serde<V>) -> Self {
        self.value_serde = Some(Arc::new(value_serde));
        self
    }

    /// Keep the table in memory instead of RocksDB.
    pub fn in_memory(mut self) -> Self {
        self.in_memory = true;
        self
    }

    /// Turn the changelog off (the table is then lost with the instance).
    pub fn with_logging(mut self, logging: bool) -> Self {
        self.logging = logging;
        self
    }
}

/// A stream grouped by key, ready to aggregate.
pub struct KGroupedStream<K, V> {
    stream: KStream<K, V>,
    grouped: Grouped<K, V>,
}

/// A changelog-backed table: the latest aggregate per key.
pub struct KTable<K, V> {
    stream: KStream<K, V>,
    store: String,
}

impl<K: Clone + 'static, V: Clone + 'static> KTable<K, V> {
    /// The stream of the table's updates.
    pub fn to_stream(&self) -> KStream<K, V> {
        self.stream.clone()
    }

    /// The name of the store holding the table.
    pub fn store_name(&self) -> &str {
        &self.store
    }
}

/// A value with the timestamp of its latest update: 8 bytes big-endian timestamp, then the
/// value's own bytes.
struct TimestampedSerde<A>(Arc<dyn Serde<A>>);

impl<A: 'static> Serde<(A, i64)> for TimestampedSerde<A> {
    fn serialize(&self, value: &(A, i64), out: &mut Vec<u8>) -> Result<(), SerdeError> {
        out.extend_from_slice(&value.1.to_be_bytes());
        self.0.serialize(&value.0, out)
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<(A, i64), SerdeError> {
        if bytes.len() < 8 {
            return Err(SerdeError::new(
                "timestamped value shorter than its 8-byte timestamp",
            ));
        }
        let ts = i64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        Ok((self.0.deserialize(&bytes[8..])?, ts))
    }
}

type Step<K, V, A> = Arc<dyn Fn(&K, V, Option<A>) -> A + Send + Sync>;

/// The one processor behind `count`, `reduce` and `aggregate`: folds each record into the
/// stored aggregate of its key and forwards the new aggregate, stamped with the larger of
/// the record's and the previous aggregate's timestamps.
struct AggregateProcessor<K, V, A> {
    store_name: String,
    key_serde: Arc<dyn Serde<K>>,
    agg_serde: Arc<dyn Serde<A>>,
    step: Step<K, V, A>,
    store: Option<KeyValueStoreHandle<K, (A, i64)>>,
}

impl<K, V, A> Processor<K, V, K, A> for AggregateProcessor<K, V, A>
where
    K: Clone + 'static,
    V: 'static,
    A: Clone + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, A>) -> ProcessResult {
        self.store = Some(ctx.key_value_store(
            &self.store_name,
            SharedSerde(self.key_serde.clone()),
            TimestampedSerde(self.agg_serde.clone()),
        )?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut ProcessorContext<K, A>, record: Record<K, V>) -> ProcessResult {
        let store = self.store.as_ref().expect("init ran");
        let previous = store.get(&record.key)?;
        let (old, old_ts) = match previous {
            Some((a, ts)) => (Some(a), ts),
            None => (None, i64::MIN),
        };
        let timestamp = record.timestamp.max(old_ts);
        let new = (self.step)(&record.key, record.value, old);
        store.put(&record.key, &(new.clone(), timestamp))?;
        ctx.forward(Record {
            key: record.key,
            value: new,
            timestamp,
            headers: record.headers,
        })
    }
}

/// An `Arc<dyn Serde>` used where an owned serde is expected.
struct SharedSerde<T>(Arc<dyn Serde<T>>);

impl<T: 'static> Serde<T> for SharedSerde<T> {
    fn serialize(&self, value: &T, out: &mut Vec<u8>) -> Result<(), SerdeError> {
        self.0.serialize(value, out)
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<T, SerdeError> {
        self.0.deserialize(bytes)
    }
    fn null_value(&self) -> Result<T, SerdeError> {
        self.0.null_value()
    }
    fn is_null(&self, value: &T) -> bool {
        self.0.is_null(value)
    }
}

impl<K: Clone + 'static, V: Clone + 'static> KGroupedStream<K, V> {
    pub(crate) fn new(stream: KStream<K, V>, grouped: Grouped<K, V>) -> Self {
        KGroupedStream { stream, grouped }
    }

    /// Counts records per key.
    pub fn count(self, materialized: Materialized<K, i64>) -> KTable<K, i64> {
        let materialized = Materialized {
            value_serde: materialized
                .value_serde
                .or_else(|| Some(Arc::new(I64Serde))),
            ..materialized
        };
        self.fold(
            materialized,
            Arc::new(|_k: &K, _v: V, n: Option<i64>| n.unwrap_or(0) + 1),
        )
    }

    /// Combines the values of each key with `reducer(aggregate, value)`; the first value is
    /// the initial aggregate.
    pub fn reduce(
        self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        let materialized = Materialized {
            value_serde: materialized
                .value_serde
                .or_else(|| self.stream.value_serde()),
            ..materialized
        };
        self.fold(
            materialized,
            Arc::new(move |_k: &K, v: V, old: Option<V>| match old {
                Some(agg) => reducer(agg, v),
                None => v,
            }),
        )
    }

    /// Folds the values of each key into an aggregate starting from `initializer()`.
    pub fn aggregate<A: Clone + 'static>(
        self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> KTable<K, A> {
        self.fold(
            materialized,
            Arc::new(move |k: &K, v: V, old: Option<A>| {
                aggregator(k, v, old.unwrap_or_else(&initializer))
            }),
        )
    }

    fn fold<A: Clone + 'static>(
        self,
        materialized: Materialized<K, A>,
        step: Step<K, V, A>,
    ) -> KTable<K, A> {
        let state = self.stream.state().clone();
        let store_name = materialized.name.clone().unwrap_or_else(|| {
            state
                .borrow_mut()
                .next_name("KSTREAM-AGGREGATE-STATE-STORE")
        });
        let failed = |e: StreamsError| {
            state.borrow_mut().record_error(e);
            KTable {
                stream: self.stream.derive(None, None, None, false),
                store: store_name.clone(),
            }
        };
        // Equal keys must meet in one task: repartition after a key change.
        let input = if self.stream.is_repartition_required() {
            let name = self
                .grouped
                .name
                .clone()
                .unwrap_or_else(|| store_name.clone());
            let mut options = Repartitioned::<K, V>::as_(name);
            options.key_serde = self.grouped.key_serde.clone();
            options.value_serde = self.grouped.value_serde.clone();
            self.stream.repartition(options)
        } else {
            self.stream.clone()
        };
        let key_serde = match materialized
            .key_serde
            .clone()
            .or_else(|| self.grouped.key_serde.clone())
            .or_else(|| input.key_serde())
        {
            Some(k) => k,
            None => return failed(StreamsError::Topology(format!(
                "aggregation into {store_name}: the key serde is unknown; pass it in Grouped or Materialized"
            ))),
        };
        let Some(agg_serde) = materialized.value_serde.clone() else {
            return failed(StreamsError::Topology(format!(
                "aggregation into {store_name}: the aggregate's serde is unknown; pass it in Materialized"
            )));
        };
        let mut spec: StoreSpec = Stores::key_value(&store_name).with_logging(materialized.logging);
        if materialized.in_memory {
            spec = spec.in_memory();
        }
        if let Err(e) = state.borrow_mut().topology.register_store(spec) {
            return failed(e);
        }
        let (name, ks, aggs) = (store_name.clone(), key_serde.clone(), agg_serde.clone());
        let node = input.add_processor(
            "KSTREAM-AGGREGATE",
            &[],
            vec![store_name.clone()],
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
