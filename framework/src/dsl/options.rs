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
    pub(crate) key_serde: Option<Arc<dyn Serde<K>>>,
    pub(crate) value_serde: Option<Arc<dyn Serde<V>>>,
}

impl<K, V> Default for Repartitioned<K, V> {
    fn default() -> Self {
        Repartitioned {
            name: None,
            partitions: None,
            key_serde: None,
            value_serde: None,
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
}
