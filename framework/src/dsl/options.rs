//! Options of DSL operations: serdes, names, partition counts.

use std::sync::Arc;

use crate::processor::node::Partitioner;
use crate::serdes::Serde;
use crate::timestamp::TimestampExtractor;

/// How a source reads a topic: serdes and, optionally, a timestamp extractor.
pub struct Consumed<K, V> {
    pub(crate) key_serde: Arc<dyn Serde<K>>,
    pub(crate) value_serde: Arc<dyn Serde<V>>,
    pub(crate) extractor: Option<Arc<dyn TimestampExtractor>>,
    pub(crate) name: Option<String>,
}

impl<K, V> Consumed<K, V> {
    /// Read with these serdes.
    pub fn with(key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> Self {
        Consumed {
            key_serde: Arc::new(key_serde),
            value_serde: Arc::new(value_serde),
            extractor: None,
            name: None,
        }
    }

    /// Use this timestamp extractor for the source.
    pub fn with_timestamp_extractor(mut self, extractor: impl TimestampExtractor) -> Self {
        self.extractor = Some(Arc::new(extractor));
        self
    }

    /// Name the source node.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// How a sink writes a topic. Serdes default to the stream's own, when it knows them.
pub struct Produced<K, V> {
    pub(crate) key_serde: Option<Arc<dyn Serde<K>>>,
    pub(crate) value_serde: Option<Arc<dyn Serde<V>>>,
    pub(crate) partitioner: Option<Partitioner<K, V>>,
    pub(crate) name: Option<String>,
}

impl<K, V> Default for Produced<K, V> {
    fn default() -> Self {
        Produced {
            key_serde: None,
            value_serde: None,
            partitioner: None,
            name: None,
        }
    }
}

impl<K, V> Produced<K, V> {
    /// Write with these serdes.
    pub fn with(key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> Self {
        Produced {
            key_serde: Some(Arc::new(key_serde)),
            value_serde: Some(Arc::new(value_serde)),
            partitioner: None,
            name: None,
        }
    }

    /// Write keys with `key_serde`; values with the stream's value serde (Kafka Streams'
    /// `Produced.keySerde`).
    pub fn with_key_serde(mut self, key_serde: impl Serde<K>) -> Self {
        self.key_serde = Some(Arc::new(key_serde));
        self
    }

    /// Write values with `value_serde`; keys with the stream's key serde.
    pub fn with_value_serde(mut self, value_serde: impl Serde<V>) -> Self {
        self.value_serde = Some(Arc::new(value_serde));
        self
    }

    /// Choose partitions with `(key, value, partitions) -> partition`.
    pub fn with_partitioner(
        mut self,
        partitioner: impl Fn(&K, &V, i32) -> i32 + Send + Sync + 'static,
    ) -> Self {
        self.partitioner = Some(Arc::new(partitioner));
        self
    }

    /// Name the sink node.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// How a stream is repartitioned through an internal topic `<app>-<name>-repartition`.
pub struct Repartitioned<K, V> {
    pub(crate) name: Option<String>,
    pub(crate) partitions: Option<i32>,
    pub(crate) watermarks: bool,
    pub(crate) key_serde: Option<Arc<dyn Serde<K>>>,
    pub(crate) value_serde: Option<Arc<dyn Serde<V>>>,
    /// Added by a key-based operation, not asked for: may be merged with others.
    pub(crate) optimizable: bool,
}

impl<K, V> Default for Repartitioned<K, V> {
    fn default() -> Self {
        Repartitioned {
            name: None,
            partitions: None,
            watermarks: false,
            key_serde: None,
            value_serde: None,
            optimizable: false,
        }
    }
}

impl<K, V> Repartitioned<K, V> {
    /// A repartition topic named `<app>-<name>-repartition` (Kafka Streams' `Repartitioned.as`).
    pub fn as_(name: impl Into<String>) -> Self {
        Repartitioned {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    /// The topic a key-based operation (aggregation, join, `to_table`) adds after a key
    /// change, with these serdes (the stream's where `None`).
    pub(crate) fn implicit(
        name: impl Into<String>,
        key_serde: Option<Arc<dyn Serde<K>>>,
        value_serde: Option<Arc<dyn Serde<V>>>,
    ) -> Self {
        Repartitioned {
            name: Some(name.into()),
            key_serde,
            value_serde,
            optimizable: true,
            ..Default::default()
        }
    }

    /// Serdes for the topic.
    pub fn with_serdes(mut self, key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> Self {
        self.key_serde = Some(Arc::new(key_serde));
        self.value_serde = Some(Arc::new(value_serde));
        self
    }

    /// A fixed partition count instead of the derived one.
    pub fn with_partitions(mut self, partitions: i32) -> Self {
        self.partitions = Some(partitions);
        self
    }

    /// Carries the writers' progress through the topic (beyond Kafka Streams): every task
    /// writing it puts its stream time into each partition at every commit, and the windowed
    /// aggregations reading it advance their stream time only to the smallest progress of
    /// the writers still reporting (`StreamsConfig::watermark_writer_timeout`). Records
    /// from a writer that lags the others are then not dropped as late: a record is late
    /// only if it is behind every writer. Windows close as the slowest writer progresses.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streamtime::dsl::TimeWindows;
    /// use streamtime::serdes::StringSerde;
    /// use streamtime::{Consumed, Materialized, Repartitioned, StreamsBuilder};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream("clicks", Consumed::with(StringSerde, StringSerde))
    ///     .select_key(|_k, page: &String| page.clone())
    ///     .repartition(Repartitioned::as_("by-page").with_watermarks())
    ///     .group_by_key()
    ///     .windowed_by(TimeWindows::of_size_and_grace(Duration::from_secs(60), Duration::from_secs(10)))
    ///     .count(Materialized::as_("views-per-minute"));
    /// # builder.build().unwrap();
    /// ```
    pub fn with_watermarks(mut self) -> Self {
        self.watermarks = true;
        self
    }
}

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
    pub(crate) retention: Option<std::time::Duration>,
    pub(crate) caching: bool,
    pub(crate) changelog_configs: Vec<(String, String)>,
    pub(crate) history_retention: Option<std::time::Duration>,
    pub(crate) supplier: Option<crate::stores::Supplied>,
}

impl<K, V> Default for Materialized<K, V> {
    fn default() -> Self {
        Materialized {
            name: None,
            key_serde: None,
            value_serde: None,
            in_memory: false,
            logging: true,
            retention: None,
            caching: true,
            changelog_configs: Vec::new(),
            history_retention: None,
            supplier: None,
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

    /// A versioned store called `name` (Kafka Streams'
    /// `Materialized.as(Stores.persistentVersionedKeyValueStore(name, historyRetention))`):
    /// the table keeps every value `history_retention` after it was replaced, and
    /// stream–table joins look it up as of each stream record's time. Only tables read from
    /// a topic ([`crate::StreamsBuilder::table`], [`crate::KStream::to_table`]) can be
    /// versioned; other operators fail the build. An update older than the key's latest
    /// value goes into the history and is not forwarded (its change is not the table's
    /// current state); one older than the history retention is dropped.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streamtime::{Consumed, Materialized, StreamsBuilder};
    /// use streamtime::serdes::{I64Serde, StringSerde};
    /// let builder = StreamsBuilder::new();
    /// let prices = builder.table(
    ///     "prices",
    ///     Consumed::with(StringSerde, I64Serde),
    ///     Materialized::as_versioned("prices", Duration::from_secs(3600)),
    /// );
    /// # let _ = prices;
    /// ```
    pub fn as_versioned(name: impl Into<String>, history_retention: std::time::Duration) -> Self {
        Materialized {
            name: Some(name.into()),
            history_retention: Some(history_retention),
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

    /// Sets a config of the store's changelog topic (`min.insync.replicas`,
    /// `segment.bytes`...), over streamtime's own (Kafka Streams' `withLoggingEnabled`).
    pub fn with_changelog_config(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.changelog_configs.push((key.into(), value.into()));
        self
    }

    /// Whether the store's key-value writes go through the record cache
    /// (`StreamsConfig::cache_max_bytes`; default on, as in Kafka Streams). Off, every
    /// update reaches the store, its changelog and the processors downstream at once.
    pub fn with_caching(mut self, caching: bool) -> Self {
        self.caching = caching;
        self
    }

    /// Keep the table in a store of your own, which `supplier` opens in each task (Kafka
    /// Streams' `Materialized.as(KeyValueBytesStoreSupplier)`); see
    /// [`crate::stores::KeyValueStoreSupplier`]. A windowed, session or versioned table
    /// with a key-value store supplier fails the build naming the store.
    pub fn with_store_supplier(
        mut self,
        supplier: impl crate::stores::KeyValueStoreSupplier,
    ) -> Self {
        self.supplier = Some(crate::stores::Supplied::KeyValue(Arc::new(supplier)));
        self
    }

    /// Keep a windowed aggregation's windows (time or sliding windows) in a store of your
    /// own (Kafka Streams' `Materialized.as(WindowBytesStoreSupplier)`); see
    /// [`crate::stores::WindowStoreSupplier`]. Behind any other store, the build fails
    /// naming the store.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use streamtime::stores::{InMemoryWindowStore, StateError, StoreLocation};
    /// # use streamtime::stores::{WindowStore, WindowStoreConfig, WindowStoreSupplier};
    /// use streamtime::dsl::TimeWindows;
    /// use streamtime::serdes::StringSerde;
    /// use streamtime::{Consumed, Materialized, StreamsBuilder};
    /// # struct MyWindows;
    /// # impl WindowStoreSupplier for MyWindows {
    /// #     fn open(&self, at: &StoreLocation<'_>, config: WindowStoreConfig)
    /// #         -> Result<Box<dyn WindowStore>, StateError> {
    /// #         Ok(Box::new(InMemoryWindowStore::new(at.name, config)?))
    /// #     }
    /// # }
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream("clicks", Consumed::with(StringSerde, StringSerde))
    ///     .group_by_key()
    ///     .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_secs(60)))
    ///     .count(Materialized::as_("per-minute").with_window_store_supplier(MyWindows));
    /// # builder.build().unwrap();
    /// ```
    pub fn with_window_store_supplier(
        mut self,
        supplier: impl crate::stores::WindowStoreSupplier,
    ) -> Self {
        self.supplier = Some(crate::stores::Supplied::Window(Arc::new(supplier)));
        self
    }

    /// Keep a session aggregation's sessions in a store of your own (Kafka Streams'
    /// `Materialized.as(SessionBytesStoreSupplier)`); see
    /// [`crate::stores::SessionStoreSupplier`]. Behind any other store, the build fails
    /// naming the store.
    pub fn with_session_store_supplier(
        mut self,
        supplier: impl crate::stores::SessionStoreSupplier,
    ) -> Self {
        self.supplier = Some(crate::stores::Supplied::Session(Arc::new(supplier)));
        self
    }

    /// `spec` stored as this says: in memory or on disk, logged or not (with its changelog
    /// configs), cached or not. A versioned store is not for the operators that call this
    /// (aggregations, joins): their store is then rejected when registered.
    pub(crate) fn configure(&self, mut spec: crate::stores::StoreSpec) -> crate::stores::StoreSpec {
        if self.history_retention.is_some() {
            spec.rejected = Some(format!(
                "store {}: Materialized::as_versioned is for tables read from a topic \
                 (StreamsBuilder::table, KStream::to_table) only",
                spec.name
            ));
        }
        self.configure_storage(spec)
    }

    /// [`configure`](Self::configure) for a table read from a topic, which may be versioned.
    pub(crate) fn configure_table(&self, name: &str) -> crate::stores::StoreSpec {
        let spec = match self.history_retention {
            Some(retention) => crate::stores::Stores::versioned_key_value(name, retention),
            None => crate::stores::Stores::key_value(name),
        };
        self.configure_storage(spec.with_timestamped_values())
    }

    fn configure_storage(&self, spec: crate::stores::StoreSpec) -> crate::stores::StoreSpec {
        let mut spec = spec.with_logging(self.logging).with_caching(self.caching);
        if let Some(supplier) = &self.supplier {
            spec = spec.with_supplier(supplier.clone());
        }
        if self.in_memory {
            spec = spec.in_memory();
        }
        for (key, value) in &self.changelog_configs {
            spec = spec.with_changelog_config(key.clone(), value.clone());
        }
        spec
    }

    /// How long a windowed store keeps windows (default: size + grace, or longer when the
    /// emit strategy waits longer than grace). Shorter than that fails the build.
    pub fn with_retention(mut self, retention: std::time::Duration) -> Self {
        self.retention = Some(retention);
        self
    }
}
