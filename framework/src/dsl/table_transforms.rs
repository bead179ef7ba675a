//! Stateless table operators — [`KTable::filter`], [`KTable::filter_not`] and
//! [`KTable::map_values`] — each giving a new table with its own store.
//!
//! They follow a table's changes, not only its updates: an update a filter rejects deletes
//! the key from the result (a `None` change, a tombstone on a changelog or output topic),
//! whether or not the key was in it, as Kafka Streams' filter does without old values; a
//! deletion passes through. Timestamps and headers are kept.
//!
//! ```
//! use streamtime::{StreamsBuilder, StreamsConfig, Consumed, Materialized, Produced, TopologyTestDriver};
//! use streamtime::serdes::{I64Serde, OptionSerde, StringSerde};
//!
//! let builder = StreamsBuilder::new();
//! let prices = builder.table("prices", Consumed::with(StringSerde, I64Serde), Materialized::as_("prices"));
//! prices
//!     .filter(|_item: &String, price: &i64| *price >= 100, Materialized::as_("expensive"))
//!     .to_change_stream()
//!     .to("expensive", Produced::with(StringSerde, OptionSerde(I64Serde)));
//! let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("t", "unused")).unwrap();
//! let input = driver.input_topic("prices", StringSerde, I64Serde);
//! input.pipe("tv".into(), 400, 1).unwrap();
//! input.pipe("tv".into(), 90, 2).unwrap();
//! let out = driver.output_topic("expensive", StringSerde, OptionSerde(I64Serde)).read_key_values();
//! assert_eq!(out, vec![("tv".into(), Some(400)), ("tv".into(), None)]);
//! ```

use std::sync::Arc;

use super::options::Materialized;
use super::table::{materialize, KTable};
use crate::error::StreamsError;
use crate::record::Record;
use crate::serdes::{OptionSerde, Serde};

impl<K: Clone + 'static, V: Clone + 'static> KTable<K, V> {
    /// The rows for which `predicate` holds, kept in the store `materialized` names (or a
    /// generated one); serdes default to this table's. An update that fails the predicate
    /// deletes its key from the result.
    pub fn filter(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        let serde = self.stream.value_serde();
        self.transform_values("KTABLE-FILTER", materialized, serde, move |k, v| {
            v.filter(|v| predicate(k, v))
        })
    }

    /// The rows for which `predicate` does not hold; see [`KTable::filter`].
    pub fn filter_not(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        self.filter(move |k, v| !predicate(k, v), materialized)
    }

    /// Every row's value replaced by `mapper(value)`, kept in the store `materialized`
    /// names, which must give the new value's serde (the key serde defaults to this table's).
    pub fn map_values<V2: Clone + 'static>(
        &self,
        mapper: impl Fn(&V) -> V2 + Send + Sync + 'static,
        materialized: Materialized<K, V2>,
    ) -> KTable<K, V2> {
        self.transform_values("KTABLE-MAPVALUES", materialized, None, move |_, v| {
            v.map(|v| mapper(&v))
        })
    }

    /// A table whose changes are `change(key, this table's change)`, materialized like a
    /// source table.
    fn transform_values<V2: Clone + 'static>(
        &self,
        prefix: &str,
        materialized: Materialized<K, V2>,
        default_value_serde: Option<Arc<dyn Serde<V2>>>,
        change: impl Fn(&K, Option<V>) -> Option<V2> + Send + Sync + 'static,
    ) -> KTable<K, V2> {
        let state = self.stream.state().clone();
        let store = materialized.name.clone().unwrap_or_else(|| {
            state
                .borrow_mut()
                .next_name(&format!("{prefix}-STATE-STORE"))
        });
        let key_serde = materialized
            .key_serde
            .clone()
            .or_else(|| self.stream.key_serde());
        let value_serde = materialized.value_serde.clone().or(default_value_serde);
        let (Some(key_serde), Some(value_serde)) = (key_serde, value_serde) else {
            state
                .borrow_mut()
                .record_error(StreamsError::Topology(format!(
                    "{prefix} into {store}: the serdes of the result are unknown; pass them with \
                 Materialized::with_key_serde / with_value_serde"
                )));
            return KTable {
                stream: self.stream.derive(None, None, None, false),
                store,
            };
        };
        let changes = self.to_change_stream();
        let node = changes.add_step::<K, Option<V2>>(
            prefix,
            &[],
            Arc::new(move |ctx, r: Record<K, Option<V>>| {
                let value = change(&r.key, r.value);
                ctx.forward(Record {
                    key: r.key,
                    value,
                    timestamp: r.timestamp,
                    headers: r.headers,
                })
            }),
        );
        let option_serde: Arc<dyn Serde<Option<V2>>> = Arc::new(OptionSerde(value_serde.clone()));
        let transformed = changes.derive(node, Some(key_serde.clone()), Some(option_serde), false);
        let stream = materialize(
            &transformed,
            prefix,
            &store,
            &materialized,
            key_serde,
            value_serde,
        );
        KTable { stream, store }
    }
}
