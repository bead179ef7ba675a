//! Global tables ([`StreamsBuilder::global_table`]) and stream–global-table joins
//! ([`KStream::join_global`], [`KStream::left_join_global`]).
//!
//! A global table holds every partition of its topic on every instance, so a stream joins
//! it by any key it computes from a record, with no repartitioning and no co-partitioning.
//! Each instance reads the topic into its global store before any task processes
//! (read_committed under exactly-once), then a global thread keeps it current; the topic is
//! its changelog, so nothing else is written. The store is in RocksDB with a checkpoint of
//! the offsets it holds, so a restart reads only what the topic gained since (a checkpoint
//! the topic no longer matches, after it was recreated or its records expired, empties the
//! store and reads the topic again); with `Materialized::in_memory` it is read whole on
//! every start.
//!
//! ```
//! use streamtime::{Consumed, Materialized, Produced, StreamsBuilder, StreamsConfig, TopologyTestDriver};
//! use streamtime::serdes::StringSerde;
//!
//! let builder = StreamsBuilder::new();
//! let countries = builder.global_table("countries", Consumed::with(StringSerde, StringSerde), Materialized::as_("countries"));
//! builder.stream("logins", Consumed::with(StringSerde, StringSerde))
//!     // value: "<user>@<country code>"
//!     .join_global(&countries, |_k, v: &String| v.split('@').nth(1).unwrap_or_default().to_string(),
//!         |login: &String, country: &String| format!("{login} from {country}"))
//!     .to("located-logins", Produced::with(StringSerde, StringSerde));
//! let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("t", "unused")).unwrap();
//! driver.input_topic("countries", StringSerde, StringSerde).pipe("fr".into(), "France".into(), 0).unwrap();
//! driver.input_topic("logins", StringSerde, StringSerde).pipe("s1".into(), "ann@fr".into(), 5).unwrap();
//! let out = driver.output_topic("located-logins", StringSerde, StringSerde).read_key_values();
//! assert_eq!(out, [("s1".to_string(), "ann@fr from France".to_string())]);
//! ```

use std::marker::PhantomData;
use std::sync::Arc;

use super::options::{Consumed, Materialized};
use super::stream::KStream;
use super::StreamsBuilder;
use crate::error::StreamsError;
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serdes::{Serde, TimestampedSerde};
use crate::task::global_stores::GlobalStore;
use crate::ProcessResult;

/// A table of every partition of a topic, on every instance (Kafka Streams'
/// `GlobalKTable`).
pub struct GlobalKTable<K, V> {
    store: String,
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<V>>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> GlobalKTable<K, V> {
    /// The name of the global store.
    pub fn store_name(&self) -> &str {
        &self.store
    }
}

impl StreamsBuilder {
    /// A global table of the latest value per key of `topic`, in the global store named by
    /// `materialized` (or a generated name); a null value deletes the key. Serdes default
    /// to `consumed`'s. The topic may not also be read as a stream or table.
    pub fn global_table<K, V>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        materialized: Materialized<K, V>,
    ) -> GlobalKTable<K, V>
    where
        K: 'static,
        V: 'static,
    {
        let mut state = self.state.borrow_mut();
        let store = materialized
            .name
            .clone()
            .unwrap_or_else(|| state.next_name("GLOBALKTABLE-SOURCE-STATE-STORE"));
        if state.topology.stores.contains_key(&store)
            || state.topology.global_tables.contains_key(&store)
        {
            state.record_error(StreamsError::Topology(format!(
                "store {store} is already defined"
            )));
        } else {
            let spec = crate::topology::GlobalTableSpec {
                topic: topic.to_string(),
                persistent: !materialized.in_memory,
            };
            state.topology.global_tables.insert(store.clone(), spec);
        }
        GlobalKTable {
            store,
            key_serde: materialized.key_serde.unwrap_or(consumed.key_serde),
            value_serde: materialized.value_serde.unwrap_or(consumed.value_serde),
            _types: PhantomData,
        }
    }
}

/// A stream–global-table join reduced to one function: `None` when the record gives no
/// result (inner join, key missing from the table).
type GlobalJoiner<V, GV, VR> = Arc<dyn Fn(&V, Option<&GV>) -> Option<VR> + Send + Sync>;

/// Computes a record's key in the global table.
type KeySelector<K, V, GK> = Arc<dyn Fn(&K, &V) -> GK + Send + Sync>;

impl<K: Clone + 'static, V: Clone + 'static> KStream<K, V> {
    /// Joins each record with the row of `table` whose key is `key_selector(key, value)`:
    /// `joiner(value, row)`, keeping the record's key and timestamp. A record whose row is
    /// missing gives nothing; table updates give nothing (they change what later records
    /// see).
    pub fn join_global<GK, GV, VR>(
        &self,
        table: &GlobalKTable<GK, GV>,
        key_selector: impl Fn(&K, &V) -> GK + Send + Sync + 'static,
        joiner: impl Fn(&V, &GV) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR>
    where
        GK: 'static,
        GV: 'static,
        VR: Clone + 'static,
    {
        self.global_join(
            table,
            Arc::new(key_selector),
            Arc::new(move |v: &V, gv: Option<&GV>| gv.map(|gv| joiner(v, gv))),
        )
    }

    /// Like [`KStream::join_global`], but a record whose row is missing gives
    /// `joiner(value, None)`.
    pub fn left_join_global<GK, GV, VR>(
        &self,
        table: &GlobalKTable<GK, GV>,
        key_selector: impl Fn(&K, &V) -> GK + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&GV>) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR>
    where
        GK: 'static,
        GV: 'static,
        VR: Clone + 'static,
    {
        self.global_join(
            table,
            Arc::new(key_selector),
            Arc::new(move |v: &V, gv: Option<&GV>| Some(joiner(v, gv))),
        )
    }

    fn global_join<GK, GV, VR>(
        &self,
        table: &GlobalKTable<GK, GV>,
        key_selector: KeySelector<K, V, GK>,
        joiner: GlobalJoiner<V, GV, VR>,
    ) -> KStream<K, VR>
    where
        GK: 'static,
        GV: 'static,
        VR: Clone + 'static,
    {
        let (store, ks, vs) = (
            table.store.clone(),
            table.key_serde.clone(),
            table.value_serde.clone(),
        );
        let node = self.add_processor("KSTREAM-GLOBAL-JOIN", &[], Vec::new(), move || {
            StreamGlobalJoin {
                store_name: store.clone(),
                key_serde: ks.clone(),
                value_serde: TimestampedSerde(vs.clone()),
                key_selector: key_selector.clone(),
                joiner: joiner.clone(),
                store: None,
            }
        });
        // The key stays, so a repartition need carries over.
        self.derive(node, self.key_serde(), None, self.is_repartition_required())
    }
}

/// Looks each record's row up in the global store.
struct StreamGlobalJoin<K, V, GK, GV, VR> {
    store_name: String,
    key_serde: Arc<dyn Serde<GK>>,
    value_serde: TimestampedSerde<GV>,
    key_selector: KeySelector<K, V, GK>,
    joiner: GlobalJoiner<V, GV, VR>,
    store: Option<GlobalStore>,
}

impl<K, V, GK, GV, VR> Processor<K, V, K, VR> for StreamGlobalJoin<K, V, GK, GV, VR>
where
    K: Clone + 'static,
    V: 'static,
    GK: 'static,
    GV: 'static,
    VR: Clone + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, VR>) -> ProcessResult {
        let store = ctx.task_context().globals.get(&self.store_name).cloned();
        self.store = Some(store.ok_or_else(|| {
            StreamsError::Topology(format!("no global store called {}", self.store_name))
        })?);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<K, VR>,
        record: Record<K, V>,
    ) -> ProcessResult {
        let serde_error = |e: crate::serdes::SerdeError| StreamsError::Serde {
            context: format!("global store {}", self.store_name),
            message: e.0,
        };
        let key = (self.key_selector)(&record.key, &record.value);
        let mut key_bytes = Vec::new();
        self.key_serde
            .serialize(&key, &mut key_bytes)
            .map_err(serde_error)?;
        let bytes = self.store.as_ref().expect("init ran").get(&key_bytes)?;
        let row = match bytes {
            Some(b) => Some(self.value_serde.deserialize(&b).map_err(serde_error)?.0),
            None => None,
        };
        match (self.joiner)(&record.value, row.as_ref()) {
            Some(value) => ctx.forward(Record {
                key: record.key,
                value,
                timestamp: record.timestamp,
                headers: record.headers,
            }),
            None => Ok(()),
        }
    }
}
