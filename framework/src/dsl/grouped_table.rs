//! Grouped tables ([`KTable::group_by`]) and their aggregations with a subtractor:
//! [`KGroupedTable::count`], [`KGroupedTable::reduce`] and [`KGroupedTable::aggregate`].
//!
//! Each row of the table belongs to the group its selector gives it. When a row changes, its
//! old value leaves its old group (the subtractor) and its new value joins its new group
//! (the adder), through a repartition topic, as in Kafka Streams: a row that stays in its
//! group travels as one record carrying both values, so the group's aggregate moves in one
//! step; a row that changes group is sent twice, the subtraction first. A deleted row only
//! leaves its group.
//!
//! ```
//! use streamtime::{StreamsBuilder, StreamsConfig, Consumed, Grouped, Materialized, Produced, TopologyTestDriver};
//! use streamtime::serdes::{I64Serde, StringSerde};
//!
//! // user -> region; how many users live in each region?
//! let builder = StreamsBuilder::new();
//! builder.table("user-regions", Consumed::with(StringSerde, StringSerde), Materialized::as_("user-regions"))
//!     .group_by(|_user: &String, region: &String| (region.clone(), ()), Grouped::with_serdes(StringSerde, streamtime::serdes::UnitSerde))
//!     .count(Materialized::as_("users-per-region"))
//!     .to_stream()
//!     .to("region-counts", Produced::with(StringSerde, I64Serde));
//! let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("regions", "unused")).unwrap();
//! let users = driver.input_topic("user-regions", StringSerde, StringSerde);
//! users.pipe("ann".into(), "eu".into(), 1).unwrap();
//! users.pipe("bob".into(), "eu".into(), 2).unwrap();
//! users.pipe("ann".into(), "us".into(), 3).unwrap(); // ann moves: eu loses her, us gains her
//! let counts = driver.output_topic("region-counts", StringSerde, I64Serde).read_key_values();
//! assert_eq!(counts, vec![
//!     ("eu".into(), 1), ("eu".into(), 2), ("eu".into(), 1), ("us".into(), 1),
//! ]);
//! ```

use std::sync::Arc;

use super::cached_forwarder::CachedForwarder;
use super::grouped::{steps, KGroupedStream, Prepared, Step};
use super::options::{Grouped, Materialized};
use super::table::KTable;
use crate::error::StreamsError;
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serdes::{I64Serde, Serde, SerdeError, TimestampedSerde};
use crate::stores::{KeyValueStoreHandle, Stores};
use crate::ProcessResult;

/// A table regrouped by [`KTable::group_by`], ready to aggregate with an adder and a
/// subtractor.
pub struct KGroupedTable<K, V> {
    /// The rows' moves, keyed by group and marked for repartitioning.
    moves: KGroupedStream<K, Change<V>>,
    /// The selected value's serde, from `Grouped` (`reduce` stores values of that type).
    value_serde: Option<Arc<dyn Serde<V>>>,
}

/// What one row change does to one group: the value that leaves it and the value that joins
/// it (Kafka Streams' `Change` with old and new value).
#[derive(Clone)]
pub(crate) struct Change<V> {
    old: Option<V>,
    new: Option<V>,
}

/// A [`Change`] on the repartition topic: a flag byte (1 = old value present, 2 = new value
/// present), the old value's length (4 bytes big-endian) when both are present, then the
/// old value's bytes and the new value's.
struct ChangeSerde<V>(Arc<dyn Serde<V>>);

const HAS_OLD: u8 = 1;
const HAS_NEW: u8 = 2;

impl<V: 'static> Serde<Change<V>> for ChangeSerde<V> {
    fn serialize(&self, change: &Change<V>, out: &mut Vec<u8>) -> Result<(), SerdeError> {
        let flags =
            change.old.as_ref().map_or(0, |_| HAS_OLD) | change.new.as_ref().map_or(0, |_| HAS_NEW);
        out.push(flags);
        if let Some(old) = &change.old {
            if change.new.is_some() {
                let at = out.len();
                out.extend_from_slice(&[0; 4]);
                self.0.serialize(old, out)?;
                let len = u32::try_from(out.len() - at - 4)
                    .map_err(|_| SerdeError::new("old value longer than 4 GiB"))?;
                out[at..at + 4].copy_from_slice(&len.to_be_bytes());
            } else {
                self.0.serialize(old, out)?;
            }
        }
        if let Some(new) = &change.new {
            self.0.serialize(new, out)?;
        }
        Ok(())
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<Change<V>, SerdeError> {
        let (&flags, rest) = bytes
            .split_first()
            .ok_or_else(|| SerdeError::new("empty table change"))?;
        match flags {
            HAS_OLD => Ok(Change {
                old: Some(self.0.deserialize(rest)?),
                new: None,
            }),
            HAS_NEW => Ok(Change {
                old: None,
                new: Some(self.0.deserialize(rest)?),
            }),
            f if f == HAS_OLD | HAS_NEW => {
                if rest.len() < 4 {
                    return Err(SerdeError::new(
                        "table change shorter than its length field",
                    ));
                }
                let len = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
                let rest = &rest[4..];
                if rest.len() < len {
                    return Err(SerdeError::new("table change shorter than its old value"));
                }
                Ok(Change {
                    old: Some(self.0.deserialize(&rest[..len])?),
                    new: Some(self.0.deserialize(&rest[len..])?),
                })
            }
            f => Err(SerdeError::new(format!(
                "table change with unknown flags {f}"
            ))),
        }
    }
}

impl<K: Clone + 'static, V: Clone + 'static> KTable<K, V> {
    /// Regroups the rows by `selector(key, value)`, which gives each row its group key and the
    /// value it contributes, for an aggregation with a subtractor. Always repartitions,
    /// through `<app>-<name>-repartition` (the `Grouped` name, or else the aggregate's store
    /// name); `grouped` must give the serdes of the group key and the selected value.
    ///
    /// The grouping keeps each row's last value in a store of its own (changelogged), so that
    /// a change knows what to subtract. Kafka Streams reads the old value from the table's
    /// store instead, which every table processor threads down as an old value; a streamtime
    /// table has already overwritten its store when its change arrives, and its change stream
    /// carries only the new value, so the grouping pays one key-value store for the rows.
    pub fn group_by<K2, V2>(
        &self,
        selector: impl Fn(&K, &V) -> (K2, V2) + Send + Sync + 'static,
        grouped: Grouped<K2, V2>,
    ) -> KGroupedTable<K2, V2>
    where
        K2: Clone + PartialEq + 'static,
        V2: Clone + 'static,
    {
        let state = self.stream.state().clone();
        let changes = self.to_change_stream();
        let failed = |e: StreamsError| {
            state.borrow_mut().record_error(e);
            KGroupedTable {
                moves: KGroupedStream::new(
                    changes.derive(None, None, None, true),
                    Grouped::default(),
                ),
                value_serde: None,
            }
        };
        let what = format!("group_by of table {}", self.store);
        let (Some(group_serde), Some(value_serde)) =
            (grouped.key_serde.clone(), grouped.value_serde.clone())
        else {
            return failed(StreamsError::Topology(format!(
                "{what}: the group key's or the selected value's serde is unknown; pass them with \
                 Grouped::with_serdes"
            )));
        };
        let (row_keys, row_values) = match (self.stream.key_serde(), self.stream.value_serde()) {
            (Some(k), Some(v)) => (k, v),
            _ => {
                return failed(StreamsError::Topology(format!(
                    "{what}: the table's serdes are unknown; materialize it with serdes"
                )))
            }
        };
        let rows = match &grouped.name {
            Some(name) => format!("{name}-rows"),
            None => state.borrow_mut().next_name("KTABLE-GROUPBY-ROWS-STORE"),
        };
        let registered = state
            .borrow_mut()
            .topology
            .register_store(Stores::key_value(&rows));
        if let Err(e) = registered {
            return failed(e);
        }
        let selector = Arc::new(selector);
        let store = rows.clone();
        let node = changes.add_processor("KTABLE-SELECT", &[], vec![rows], move || GroupBySelect {
            rows_name: store.clone(),
            key_serde: row_keys.clone(),
            value_serde: row_values.clone(),
            selector: selector.clone(),
            rows: None,
        });
        let change_serde: Arc<dyn Serde<Change<V2>>> = Arc::new(ChangeSerde(value_serde.clone()));
        let moves = changes.derive(
            node,
            Some(group_serde.clone()),
            Some(change_serde.clone()),
            true,
        );
        KGroupedTable {
            moves: KGroupedStream::new(
                moves,
                Grouped {
                    name: grouped.name,
                    key_serde: Some(group_serde),
                    value_serde: Some(change_serde),
                },
            ),
            value_serde: Some(value_serde),
        }
    }
}

/// A row's group selector.
type Selector<K, V, K2, V2> = Arc<dyn Fn(&K, &V) -> (K2, V2) + Send + Sync>;

/// Turns each change of a row into the moves between groups it causes, keeping the row's
/// last value to know what its next change subtracts.
struct GroupBySelect<K, V, K2, V2> {
    rows_name: String,
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<V>>,
    selector: Selector<K, V, K2, V2>,
    rows: Option<KeyValueStoreHandle<K, V>>,
}

impl<K, V, K2, V2> Processor<K, Option<V>, K2, Change<V2>> for GroupBySelect<K, V, K2, V2>
where
    K: Clone + 'static,
    V: Clone + 'static,
    K2: Clone + PartialEq + 'static,
    V2: Clone + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K2, Change<V2>>) -> ProcessResult {
        self.rows = Some(ctx.key_value_store(
            &self.rows_name,
            self.key_serde.clone(),
            self.value_serde.clone(),
        )?);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<K2, Change<V2>>,
        record: Record<K, Option<V>>,
    ) -> ProcessResult {
        let rows = self.rows.as_ref().expect("init ran");
        let old = rows.get(&record.key)?;
        match &record.value {
            Some(v) => rows.put(&record.key, v)?,
            None if old.is_some() => rows.delete(&record.key)?,
            None => {}
        }
        let leaves = old.map(|v| (self.selector)(&record.key, &v));
        let joins = record
            .value
            .as_ref()
            .map(|v| (self.selector)(&record.key, v));
        let (timestamp, headers) = (record.timestamp, record.headers);
        let send = |ctx: &mut ProcessorContext<K2, Change<V2>>, key: K2, change: Change<V2>| {
            ctx.forward(Record {
                key,
                value: change,
                timestamp,
                headers: headers.clone(),
            })
        };
        match (leaves, joins) {
            (Some((from, old)), Some((to, new))) if from == to => send(
                ctx,
                to,
                Change {
                    old: Some(old),
                    new: Some(new),
                },
            ),
            (leaves, joins) => {
                // The subtraction first, as Kafka Streams sends it.
                if let Some((from, old)) = leaves {
                    send(
                        ctx,
                        from,
                        Change {
                            old: Some(old),
                            new: None,
                        },
                    )?;
                }
                match joins {
                    Some((to, new)) => send(
                        ctx,
                        to,
                        Change {
                            old: None,
                            new: Some(new),
                        },
                    ),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Takes a value out of an aggregate.
type Subtract<K, V, A> = Arc<dyn Fn(&K, V, A) -> A + Send + Sync>;

impl<K: Clone + 'static, V: Clone + 'static> KGroupedTable<K, V> {
    /// Counts the rows in each group; a group whose rows all left counts 0.
    pub fn count(self, materialized: Materialized<K, i64>) -> KTable<K, i64> {
        let materialized = KGroupedStream::<K, Change<V>>::with_default_serde(
            materialized,
            Some(Arc::new(I64Serde)),
        );
        self.fold(
            materialized,
            steps::count(),
            Arc::new(|_: &K, _: V, n: i64| n - 1),
        )
    }

    /// Combines each group's values with `adder(aggregate, value)` (the first value is the
    /// initial aggregate) and takes a leaving value out with `subtractor(aggregate, value)`.
    /// The stored value serde is `grouped`'s unless `materialized` gives one.
    pub fn reduce(
        self,
        adder: impl Fn(V, V) -> V + Send + Sync + 'static,
        subtractor: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        let materialized = KGroupedStream::<K, Change<V>>::with_default_serde(
            materialized,
            self.value_serde.clone(),
        );
        self.fold(
            materialized,
            steps::reduce(adder),
            Arc::new(move |_: &K, v: V, agg: V| subtractor(agg, v)),
        )
    }

    /// Folds each group's values into an aggregate starting from `initializer()` with
    /// `adder(group, value, aggregate)`, and takes a leaving value out with
    /// `subtractor(group, value, aggregate)`.
    pub fn aggregate<A: Clone + 'static>(
        self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        adder: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        subtractor: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> KTable<K, A> {
        self.fold(
            materialized,
            steps::aggregate(initializer, adder),
            Arc::new(subtractor),
        )
    }

    fn fold<A: Clone + 'static>(
        self,
        materialized: Materialized<K, A>,
        add: Step<K, V, A>,
        subtract: Subtract<K, V, A>,
    ) -> KTable<K, A> {
        let placeholder = |store| KTable {
            stream: self.moves.stream().derive(None, None, None, false),
            store,
        };
        let prepared = match self
            .moves
            .prepare("KTABLE-AGGREGATE-STATE-STORE", &materialized)
        {
            Ok(p) => p,
            Err(store) => return placeholder(store),
        };
        let Prepared {
            input,
            store_name,
            key_serde,
            agg_serde,
        } = prepared;
        let (name, ks, aggs) = (store_name.clone(), key_serde.clone(), agg_serde.clone());
        let node = self.moves.add_aggregate(
            &input,
            materialized.configure(Stores::key_value(&store_name).with_timestamped_values()),
            move || TableAggregate {
                store_name: name.clone(),
                key_serde: ks.clone(),
                agg_serde: aggs.clone(),
                add: add.clone(),
                subtract: subtract.clone(),
                store: None,
            },
        );
        KTable {
            stream: input.derive(node, Some(key_serde), Some(agg_serde), false),
            store: store_name,
        }
    }
}

/// Applies each move to its group's aggregate: subtracts the value leaving (when the group
/// has an aggregate), then adds the value joining, and forwards the new aggregate stamped with
/// the larger of the move's and the previous aggregate's timestamps (Kafka Streams'
/// `KTableAggregate`).
struct TableAggregate<K, V, A> {
    store_name: String,
    key_serde: Arc<dyn Serde<K>>,
    agg_serde: Arc<dyn Serde<A>>,
    add: Step<K, V, A>,
    subtract: Subtract<K, V, A>,
    store: Option<CachedForwarder<K, A>>,
}

impl<K, V, A> Processor<K, Change<V>, K, A> for TableAggregate<K, V, A>
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

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<K, A>,
        record: Record<K, Change<V>>,
    ) -> ProcessResult {
        let forwarder = self.store.as_mut().expect("init ran");
        let store = forwarder.store();
        let (aggregate, timestamp) = match store.get(&record.key)? {
            Some((a, ts)) => (Some(a), record.timestamp.max(ts)),
            None => (None, record.timestamp),
        };
        let Change { old, new } = record.value;
        let aggregate = match (old, aggregate) {
            (Some(old), Some(a)) => Some((self.subtract)(&record.key, old, a)),
            (_, a) => a,
        };
        let aggregate = match (new, aggregate) {
            (Some(new), a) => (self.add)(&record.key, new, a),
            (None, Some(a)) => a,
            // A value leaving a group that has no aggregate (its changelog was lost, or the
            // subtraction arrived first): nothing to subtract from, nothing to say.
            (None, None) => return Ok(()),
        };
        store.put(&record.key, &(aggregate.clone(), timestamp))?;
        let update = Record {
            key: record.key,
            value: aggregate,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serdes::StringSerde;

    fn serde() -> ChangeSerde<String> {
        ChangeSerde(Arc::new(StringSerde))
    }

    fn round_trip(old: Option<&str>, new: Option<&str>) {
        let change = Change {
            old: old.map(str::to_string),
            new: new.map(str::to_string),
        };
        let mut bytes = Vec::new();
        serde().serialize(&change, &mut bytes).unwrap();
        let back = serde().deserialize(&bytes).unwrap();
        assert_eq!((back.old, back.new), (change.old, change.new));
    }

    #[test]
    fn a_change_survives_the_repartition_topic_with_either_or_both_values() {
        round_trip(Some("old"), None);
        round_trip(None, Some("new"));
        round_trip(Some("old"), Some("new"));
        round_trip(Some(""), Some(""));
    }

    #[test]
    fn a_truncated_or_unknown_change_is_an_error_not_a_guess() {
        for bytes in [
            &[][..],
            &[HAS_OLD | HAS_NEW, 0, 0][..],
            &[HAS_OLD | HAS_NEW, 0, 0, 0, 9, b'a'][..],
            &[7][..],
        ] {
            assert!(serde().deserialize(bytes).is_err(), "{bytes:?}");
        }
    }
}
