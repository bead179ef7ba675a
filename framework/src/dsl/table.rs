//! Tables read from topics ([`StreamsBuilder::table`]), stream–table joins
//! ([`KStream::join_table`], [`KStream::left_join_table`]) and table–table joins
//! ([`KTable::join`], [`KTable::left_join`], [`KTable::outer_join`]).
//!
//! A table's updates may delete keys. Rust values cannot be null, so a table forwards its
//! changes internally as `Option<V>` (`None` = the key was deleted); [`KTable::to_stream`]
//! gives the updates that set a value and [`KTable::to_change_stream`] every change,
//! deletions included. Every table is materialized: a key-value store of `(value, timestamp
//! of its last update)`, which joins look up.
//!
//! ```
//! use streamtime::{StreamsBuilder, StreamsConfig, Consumed, Materialized, Produced, TopologyTestDriver};
//! use streamtime::serdes::StringSerde;
//!
//! let builder = StreamsBuilder::new();
//! let names = builder.table("names", Consumed::with(StringSerde, StringSerde), Materialized::as_("names"));
//! builder.stream("orders", Consumed::with(StringSerde, StringSerde))
//!     .left_join_table(&names, |order: &String, name: Option<&String>| {
//!         format!("{order} for {}", name.map_or("?", |n| n.as_str()))
//!     })
//!     .to("named-orders", Produced::with(StringSerde, StringSerde));
//! let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("t", "unused")).unwrap();
//! let orders = driver.input_topic("orders", StringSerde, StringSerde);
//! orders.pipe("c1".into(), "book".into(), 1).unwrap();
//! driver.input_topic("names", StringSerde, StringSerde).pipe("c1".into(), "Ann".into(), 2).unwrap();
//! orders.pipe("c1".into(), "pen".into(), 3).unwrap();
//! let out = driver.output_topic("named-orders", StringSerde, StringSerde).read_key_values();
//! assert_eq!(out, vec![("c1".into(), "book for ?".into()), ("c1".into(), "pen for Ann".into())]);
//! ```

use std::sync::Arc;

use super::cached_forwarder::CachedForwarder;
use super::join::require_copartitioned;
use super::options::Consumed;
use super::options::Materialized;
use super::stream::KStream;
use super::StreamsBuilder;
use crate::error::StreamsError;
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serdes::{OptionSerde, Serde, TimestampedSerde};
use crate::stores::{KeyValueStoreHandle, StoreKind, Stores, VersionedPut, VersionedStoreHandle};
use crate::ProcessResult;

/// A changelog-backed table: the latest aggregate per key.
pub struct KTable<K, V> {
    pub(crate) stream: KStream<K, V>,
    pub(crate) store: String,
}

impl<K: Clone + 'static, V: Clone + 'static> KTable<K, V> {
    /// The stream of the table's updates.
    pub fn to_stream(&self) -> KStream<K, V> {
        self.stream.clone()
    }

    /// The stream of the table's updates, each keyed by `mapper(key, value)` (Kafka Streams'
    /// `toStream(KeyValueMapper)`): the value serde stays; the stream is marked for
    /// repartitioning, as after any key change. For a windowed table,
    /// `to_stream_with_key(|window, _| window.key.clone())` gives the plain keys.
    pub fn to_stream_with_key<K2: Clone + 'static>(
        &self,
        mapper: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
    ) -> KStream<K2, V> {
        self.stream.select_key(mapper)
    }

    /// The name of the store holding the table.
    pub fn store_name(&self) -> &str {
        &self.store
    }
}

impl<K: Clone + 'static, V: Clone + 'static> KStream<K, V> {
    /// The table of the latest value per key of this stream (Kafka Streams' `toTable`), kept
    /// in the store `materialized` names (or a generated one); serdes default to the
    /// stream's. After a key change the stream is repartitioned first, through
    /// `<app>-<store>-repartition`.
    pub fn to_table(&self, materialized: Materialized<K, V>) -> KTable<K, V> {
        let state = self.state().clone();
        let store = materialized
            .name
            .clone()
            .unwrap_or_else(|| state.borrow_mut().next_name("KSTREAM-TOTABLE-STATE-STORE"));
        let key_serde = materialized.key_serde.clone().or_else(|| self.key_serde());
        let value_serde = materialized
            .value_serde
            .clone()
            .or_else(|| self.value_serde());
        let (Some(key_serde), Some(value_serde)) = (key_serde, value_serde) else {
            state
                .borrow_mut()
                .record_error(StreamsError::Topology(format!(
                    "to_table into {store}: the serdes are unknown; pass them with \
                 Materialized::with_serdes"
                )));
            return KTable {
                stream: self.derive(None, None, None, false),
                store,
            };
        };
        let input = if self.is_repartition_required() {
            self.repartition(super::Repartitioned::implicit(
                store.clone(),
                Some(key_serde.clone()),
                Some(value_serde.clone()),
            ))
        } else {
            self.clone()
        };
        let option_serde: Arc<dyn Serde<Option<V>>> = Arc::new(OptionSerde(value_serde.clone()));
        let changes = input
            .map_values(Some)
            .with_serdes(key_serde.clone(), option_serde);
        let stream = materialize(
            &changes,
            "KSTREAM-TOTABLE",
            &store,
            &materialized,
            key_serde,
            value_serde,
        );
        KTable { stream, store }
    }
}

impl StreamsBuilder {
    /// A table of the latest value per key of `topic`: each record sets its key's value, a
    /// record with a null value deletes the key. The table is kept in the key-value store
    /// named by `materialized` (or a generated name); serdes default to `consumed`'s.
    pub fn table<K, V>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V>
    where
        K: Clone + 'static,
        V: Clone + 'static,
    {
        let store = materialized.name.clone().unwrap_or_else(|| {
            self.state
                .borrow_mut()
                .next_name("KTABLE-SOURCE-STATE-STORE")
        });
        let key_serde = materialized
            .key_serde
            .clone()
            .unwrap_or_else(|| consumed.key_serde.clone());
        let value_serde = materialized
            .value_serde
            .clone()
            .unwrap_or_else(|| consumed.value_serde.clone());
        // The topic is the store's changelog as is only when the store keeps it as read:
        // its own serdes, versioning or timestamps would make the rows differ.
        let reusable = materialized.key_serde.is_none()
            && materialized.value_serde.is_none()
            && materialized.history_retention.is_none()
            && consumed.extractor.is_none();
        let readable = {
            let (keys, values) = (key_serde.clone(), value_serde.clone());
            move |key: &[u8], value: Option<&[u8]>| {
                keys.deserialize(key).is_ok() && value.is_none_or(|v| values.deserialize(v).is_ok())
            }
        };
        // Null values are deletions, so the source reads `Option<V>`.
        let source = KStream::<K, Option<V>>::source(
            self.state.clone(),
            &[topic],
            Consumed {
                key_serde: consumed.key_serde,
                value_serde: Arc::new(OptionSerde(consumed.value_serde)),
                extractor: consumed.extractor,
                name: consumed.name,
            },
        );
        let changes = materialize(
            &source,
            "KTABLE-SOURCE",
            &store,
            &materialized,
            key_serde,
            value_serde,
        );
        if reusable {
            let mut state = self.state.borrow_mut();
            if let Some(spec) = state.topology.stores.get_mut(&store) {
                if spec.kind == StoreKind::KeyValue {
                    spec.source_changelog = Some(crate::stores::SourceChangelog {
                        topic: topic.to_string(),
                        readable: Arc::new(readable),
                    });
                }
            }
        }
        KTable {
            stream: changes,
            store,
        }
    }
}

/// Registers the key-value store `store` and adds a processor keeping the changes of
/// `changes` in it; returns the stream of non-deleting updates (what `to_stream` gives) and
/// records the change node for `to_change_stream`.
pub(super) fn materialize<K, V, X>(
    changes: &KStream<K, Option<V>>,
    prefix: &str,
    store: &str,
    materialized: &Materialized<K, X>,
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<V>>,
) -> KStream<K, V>
where
    K: Clone + 'static,
    V: Clone + 'static,
{
    let state = changes.state().clone();
    let spec = materialized.configure_table(store);
    let versioned = matches!(spec.kind(), StoreKind::Versioned { .. });
    let registered = state.borrow_mut().topology.register_store(spec);
    if let Err(e) = registered {
        state.borrow_mut().record_error(e);
        return changes.derive(None, None, None, false);
    }
    let (name, ks, vs) = (store.to_string(), key_serde.clone(), value_serde.clone());
    let node = changes.add_processor(prefix, &[], vec![store.to_string()], move || {
        TableMaterializer {
            store_name: name.clone(),
            key_serde: ks.clone(),
            value_serde: vs.clone(),
            versioned,
            store: None,
            expired: None,
        }
    });
    updates_of(changes, node, store, key_serde, value_serde)
}

/// The updates stream of a table whose changes node is `node`: remembers the node under the
/// table's store name and filters the deletions out.
pub(super) fn updates_of<K, V, X>(
    parent: &KStream<K, X>,
    node: Option<usize>,
    store: &str,
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<V>>,
) -> KStream<K, V>
where
    K: Clone + 'static,
    V: Clone + 'static,
    X: Clone + 'static,
{
    let Some(node) = node else {
        return parent.derive(None, None, None, false);
    };
    let state = parent.state().clone();
    state
        .borrow_mut()
        .table_changes
        .insert(store.to_string(), node);
    let option_serde: Arc<dyn Serde<Option<V>>> = Arc::new(OptionSerde(value_serde.clone()));
    parent
        .derive::<K, Option<V>>(
            Some(node),
            Some(key_serde.clone()),
            Some(option_serde),
            false,
        )
        .flat_map_values(|v: Option<V>| v)
        .with_serdes(key_serde, value_serde)
}

/// Keeps a table's changes in its store (`None` deletes) and passes them on.
struct TableMaterializer<K, V> {
    store_name: String,
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<V>>,
    versioned: bool,
    store: Option<TableStore<K, V>>,
    /// Updates a versioned table dropped as older than its history retention.
    expired: Option<(u64, metrics::Counter)>,
}

/// A table's store: the latest value per key, or every key's values over time.
enum TableStore<K, V> {
    Latest(CachedForwarder<K, V>),
    Versioned(VersionedStoreHandle<K, V>),
}

impl<K: Clone + 'static, V: Clone + 'static> Processor<K, Option<V>, K, Option<V>>
    for TableMaterializer<K, V>
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, Option<V>>) -> ProcessResult {
        let (name, keys, values) = (
            &self.store_name,
            self.key_serde.clone(),
            self.value_serde.clone(),
        );
        self.store = Some(if self.versioned {
            self.expired = Some((
                0,
                metrics::counter!("streamtime_dropped_records_total", "reason" => "late",
                    "task" => ctx.task_id().to_string(), "node" => ctx.node_name().to_string()),
            ));
            TableStore::Versioned(ctx.versioned_store(name, keys, values)?)
        } else {
            let store = ctx.key_value_store(name, keys, TimestampedSerde(values))?;
            TableStore::Latest(CachedForwarder::new(store))
        });
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<K, Option<V>>,
        record: Record<K, Option<V>>,
    ) -> ProcessResult {
        let (key, ts) = (&record.key, record.timestamp);
        let outcome = match (self.store.as_mut().expect("init ran"), &record.value) {
            (TableStore::Latest(forwarder), value) => {
                match value {
                    Some(v) => forwarder.store().put(key, &(v.clone(), ts))?,
                    None => forwarder.store().delete(key)?,
                }
                return forwarder.written(ctx, record, Some);
            }
            (TableStore::Versioned(store), Some(v)) => store.put(key, v, ts)?,
            (TableStore::Versioned(store), None) => store.delete(key, ts)?,
        };
        match outcome {
            VersionedPut::Latest => ctx.forward(record),
            // Kafka Streams' versioned tables (KIP-914) do not forward an out-of-order
            // update either: downstream operators see the table's current state only.
            VersionedPut::History => Ok(()),
            VersionedPut::Expired => {
                let (dropped, counter) = self.expired.as_mut().expect("versioned");
                *dropped += 1;
                counter.increment(1);
                if *dropped == 1 || dropped.is_multiple_of(10_000) {
                    tracing::warn!(store = %self.store_name, timestamp = ts, dropped = *dropped,
                        "dropping a table update older than the versioned store's history retention");
                }
                Ok(())
            }
        }
    }

    fn before_commit(&mut self, ctx: &mut ProcessorContext<K, Option<V>>) -> ProcessResult {
        match self.store.as_mut().expect("init ran") {
            TableStore::Latest(forwarder) => forwarder.before_commit(ctx, Some),
            TableStore::Versioned(_) => Ok(()),
        }
    }
}

impl<K: Clone + 'static, V: Clone + 'static> KTable<K, V> {
    /// Every change of the table, in order: `Some(value)` for an update, `None` for a
    /// deletion. (Tables from aggregations never delete: their changes are their updates.)
    pub fn to_change_stream(&self) -> KStream<K, Option<V>> {
        let state = self.stream.state().clone();
        let node = state.borrow().table_changes.get(&self.store).copied();
        let option_serde = self
            .stream
            .value_serde()
            .map(|s| Arc::new(OptionSerde(s)) as Arc<dyn Serde<Option<V>>>);
        match node {
            Some(node) => {
                self.stream
                    .derive(Some(node), self.stream.key_serde(), option_serde, false)
            }
            None => {
                let changes = self.stream.map_values(Some);
                match (self.stream.key_serde(), option_serde) {
                    (Some(k), Some(v)) => changes.with_serdes(k, v),
                    _ => changes,
                }
            }
        }
    }

    /// The table's key serde and its value serde, or a build error naming `what`.
    pub(super) fn serdes(&self, what: &str) -> Result<SerdePair<K, V>, StreamsError> {
        match (self.stream.key_serde(), self.stream.value_serde()) {
            (Some(k), Some(v)) => Ok((k, v)),
            _ => Err(StreamsError::Topology(format!(
                "{what}: the serdes of table {} are unknown; materialize it with serdes",
                self.store
            ))),
        }
    }

    /// An error unless the table's store is a key-value store (joins look keys up in it).
    pub(super) fn check_lookup(&self, what: &str) -> Result<(), StreamsError> {
        let state = self.stream.state().clone();
        let s = state.borrow();
        match s.topology.stores.get(&self.store).map(|spec| spec.kind()) {
            Some(StoreKind::KeyValue | StoreKind::Versioned { .. }) => Ok(()),
            Some(_) => Err(StreamsError::Topology(format!(
                "{what}: table {} is windowed; only key-value tables can be joined by key",
                self.store
            ))),
            None => Err(StreamsError::Topology(format!(
                "{what}: table {} has no store",
                self.store
            ))),
        }
    }

    /// Inner join with `other` on the key: whenever either table changes, the joined value
    /// `joiner(left, right)` is updated when both have the key, and deleted (a `None`
    /// change) when one of them loses it. The result is a table kept in the store that
    /// `materialized` names, which must give the result's value serde. Timestamps are the
    /// later of the two sides' latest updates. Both tables must be co-partitioned.
    pub fn join<V2, VR>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(&V, &V2) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR>
    where
        V2: Clone + 'static,
        VR: Clone + 'static,
    {
        self.table_join(
            other,
            Arc::new(move |a: Option<&V>, b: Option<&V2>| match (a, b) {
                (Some(a), Some(b)) => Some(joiner(a, b)),
                _ => None,
            }),
            materialized,
        )
    }

    /// Left join with `other`: every key of this table has a joined value
    /// `joiner(left, right)`, with `None` while `other` lacks the key.
    pub fn left_join<V2, VR>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(&V, Option<&V2>) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR>
    where
        V2: Clone + 'static,
        VR: Clone + 'static,
    {
        self.table_join(
            other,
            Arc::new(move |a: Option<&V>, b: Option<&V2>| a.map(|a| joiner(a, b))),
            materialized,
        )
    }

    /// Outer join with `other`: every key of either table has a joined value
    /// `joiner(left, right)`; it is deleted when both tables lose the key.
    pub fn outer_join<V2, VR>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(Option<&V>, Option<&V2>) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR>
    where
        V2: Clone + 'static,
        VR: Clone + 'static,
    {
        self.table_join(
            other,
            Arc::new(move |a: Option<&V>, b: Option<&V2>| {
                (a.is_some() || b.is_some()).then(|| joiner(a, b))
            }),
            materialized,
        )
    }

    fn table_join<V2, VR>(
        &self,
        other: &KTable<K, V2>,
        joiner: TableJoiner<V, V2, VR>,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR>
    where
        V2: Clone + 'static,
        VR: Clone + 'static,
    {
        let state = self.stream.state().clone();
        let store = materialized
            .name
            .clone()
            .unwrap_or_else(|| state.borrow_mut().next_name("KTABLE-JOIN-STATE-STORE"));
        let failed = |e: StreamsError| {
            state.borrow_mut().record_error(e);
            KTable {
                stream: self.stream.derive(None, None, None, false),
                store: store.clone(),
            }
        };
        let what = format!("table join into {store}");
        let serdes = self.serdes(&what).and_then(|(k, v1)| {
            let (_, v2) = other.serdes(&what)?;
            self.check_lookup(&what)?;
            other.check_lookup(&what)?;
            let vr = materialized.value_serde.clone().ok_or_else(|| {
                StreamsError::Topology(format!(
                    "{what}: the joined value's serde is unknown; pass it with \
                     Materialized::with_value_serde"
                ))
            })?;
            Ok((materialized.key_serde.clone().unwrap_or(k), v1, v2, vr))
        });
        let (key_serde, v1_serde, v2_serde, vr_serde) = match serdes {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        let left = self.to_change_stream();
        let right = other.to_change_stream();
        let (Some(left_node), Some(right_node)) = (left.node(), right.node()) else {
            return failed(StreamsError::Topology(format!(
                "{what}: an input table failed to build"
            )));
        };
        require_copartitioned(&state, left_node, right_node);
        let spec = materialized.configure(Stores::key_value(&store).with_timestamped_values());
        let registered = state.borrow_mut().topology.register_store(spec);
        if let Err(e) = registered {
            return failed(e);
        }

        let left_side = {
            let (other_store, result_store) = (other.store.clone(), store.clone());
            let (ks, os, rs) = (key_serde.clone(), v2_serde.clone(), vr_serde.clone());
            let j = joiner.clone();
            move || TableJoinSide::<K, V, V2, VR> {
                other_store_name: other_store.clone(),
                result_store_name: result_store.clone(),
                key_serde: ks.clone(),
                other_serde: os.clone(),
                result_serde: rs.clone(),
                joiner: j.clone(),
                stores: None,
            }
        };
        let right_side = {
            let (other_store, result_store) = (self.store.clone(), store.clone());
            let (ks, os, rs) = (key_serde.clone(), v1_serde.clone(), vr_serde.clone());
            let j = joiner;
            move || TableJoinSide::<K, V2, V, VR> {
                other_store_name: other_store.clone(),
                result_store_name: result_store.clone(),
                key_serde: ks.clone(),
                other_serde: os.clone(),
                result_serde: rs.clone(),
                joiner: {
                    let j = j.clone();
                    Arc::new(move |this: Option<&V2>, other: Option<&V>| j(other, this))
                },
                stores: None,
            }
        };
        let left_stores = vec![other.store.clone(), store.clone()];
        let right_stores = vec![self.store.clone(), store.clone()];
        let left_out = left.add_processor("KTABLE-JOINTHIS", &[], left_stores, left_side);
        let right_out = right.add_processor("KTABLE-JOINOTHER", &[], right_stores, right_side);
        let option_serde: Arc<dyn Serde<Option<VR>>> = Arc::new(OptionSerde(vr_serde.clone()));
        let left_out = left.derive::<K, Option<VR>>(
            left_out,
            Some(key_serde.clone()),
            Some(option_serde.clone()),
            false,
        );
        let right_out = right.derive::<K, Option<VR>>(
            right_out,
            Some(key_serde.clone()),
            Some(option_serde),
            false,
        );
        let merged = left_out.merge(&right_out);
        let stream = updates_of(&merged, merged.node(), &store, key_serde, vr_serde);
        KTable { stream, store }
    }
}

type SerdePair<K, V> = (Arc<dyn Serde<K>>, Arc<dyn Serde<V>>);

/// A table join reduced to one function of both sides' current values: `None` when the
/// result has no value for the key (so a previous result is deleted).
type TableJoiner<V1, V2, VR> = Arc<dyn Fn(Option<&V1>, Option<&V2>) -> Option<VR> + Send + Sync>;

type StoreHandles<K, VOther, VR> = (
    KeyValueStoreHandle<K, (VOther, i64)>,
    CachedForwarder<K, VR>,
);

/// One side of a table–table join: on a change of its table it looks the key up in the
/// other table and updates the joined table (its store and its change stream).
struct TableJoinSide<K, VThis, VOther, VR> {
    other_store_name: String,
    result_store_name: String,
    key_serde: Arc<dyn Serde<K>>,
    other_serde: Arc<dyn Serde<VOther>>,
    result_serde: Arc<dyn Serde<VR>>,
    joiner: TableJoiner<VThis, VOther, VR>,
    stores: Option<StoreHandles<K, VOther, VR>>,
}

impl<K, VThis, VOther, VR> Processor<K, Option<VThis>, K, Option<VR>>
    for TableJoinSide<K, VThis, VOther, VR>
where
    K: Clone + 'static,
    VThis: Clone + 'static,
    VOther: Clone + 'static,
    VR: Clone + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, Option<VR>>) -> ProcessResult {
        self.stores = Some((
            ctx.key_value_store(
                &self.other_store_name,
                self.key_serde.clone(),
                TimestampedSerde(self.other_serde.clone()),
            )?,
            CachedForwarder::new(ctx.key_value_store(
                &self.result_store_name,
                self.key_serde.clone(),
                TimestampedSerde(self.result_serde.clone()),
            )?),
        ));
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<K, Option<VR>>,
        record: Record<K, Option<VThis>>,
    ) -> ProcessResult {
        let (other, result) = self.stores.as_ref().expect("init ran");
        let other_entry = other.get(&record.key)?;
        let timestamp = other_entry
            .as_ref()
            .map_or(record.timestamp, |(_, ts)| record.timestamp.max(*ts));
        let joined = (self.joiner)(record.value.as_ref(), other_entry.as_ref().map(|(v, _)| v));
        match update_joined(result.store(), &record.key, joined, timestamp)? {
            Some(value) => {
                let change = Record {
                    key: record.key,
                    value,
                    timestamp,
                    headers: record.headers,
                };
                result.written(ctx, change, Some)
            }
            None => Ok(()),
        }
    }

    fn before_commit(&mut self, ctx: &mut ProcessorContext<K, Option<VR>>) -> ProcessResult {
        let (_, result) = self.stores.as_ref().expect("init ran");
        result.before_commit(ctx, Some)
    }
}

/// Applies a table join's new result for `key` to the joined table's store: stores a value,
/// or deletes a result that existed. Returns the change to forward, or `None` when there is
/// nothing to say (no result before, none now).
pub(super) fn update_joined<K, VR>(
    result: &KeyValueStoreHandle<K, (VR, i64)>,
    key: &K,
    joined: Option<VR>,
    timestamp: i64,
) -> Result<Option<Option<VR>>, StreamsError>
where
    K: 'static,
    VR: Clone + 'static,
{
    match joined {
        Some(v) => {
            result.put(key, &(v.clone(), timestamp))?;
            Ok(Some(Some(v)))
        }
        None if result.get(key)?.is_some() => {
            result.delete(key)?;
            Ok(Some(None))
        }
        None => Ok(None),
    }
}
