//! # streamtime
//!
//! Stateful stream processing on Apache Kafka in the style of Kafka Streams.
//!
//! A [`Topology`] is built in code, with the [`StreamsBuilder`] DSL or the Processor API. The
//! framework cuts it into sub-topologies at repartition topics and runs one task per
//! sub-topology and input partition. Each task keeps its own stream time, picks the next
//! record by timestamp across its partitions, and pushes it depth-first through the graph.
//!
//! ```
//! use streamtime::{StreamsBuilder, StreamsConfig, Consumed, Produced, TopologyTestDriver};
//! use streamtime::serdes::StringSerde;
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream("sentences", Consumed::with(StringSerde, StringSerde))
//!     .flat_map_values(|s: String| s.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>())
//!     .to("words", Produced::default());
//! let topology = builder.build().unwrap();
//!
//! // Test it without Kafka...
//! let driver = TopologyTestDriver::new(topology, StreamsConfig::new("words-app", "unused")).unwrap();
//! driver.input_topic("sentences", StringSerde, StringSerde)
//!     .pipe("s1".into(), "Hello Streams".into(), 1_000).unwrap();
//! let words = driver.output_topic("words", StringSerde, StringSerde).read_key_values();
//! assert_eq!(words, vec![("s1".into(), "hello".into()), ("s1".into(), "streams".into())]);
//! // ...or run it against a cluster with `KafkaStreams::new(topology, config)?.start()`.
//! ```

pub mod config;
pub mod dsl;
pub mod error;
pub mod error_policy;
pub mod kafka_streams;
pub mod partitioner;
pub mod processor;
pub mod query;
pub mod record;
pub(crate) mod runtime;
pub mod serdes;
pub mod stores;
pub(crate) mod task;
pub mod test_driver;
pub mod timestamp;
pub mod tools;
pub mod topology;

pub use config::{ProcessingGuarantee, StreamsConfig};
pub use dsl::{
    Consumed, Grouped, JoinWindows, KGroupedStream, KStream, KTable, Materialized, Produced,
    Repartitioned, StreamJoined, StreamsBuilder,
};
pub use error::{ProcessResult, StreamsError};
pub use kafka_streams::{CommitRequest, KafkaStreams, ShutdownHandle, TaskStatus};
pub use processor::{Processor, ProcessorContext, Punctuation, PunctuationType, PunctuatorId};
pub use record::{Header, Headers, RawRecord, Record, RecordMetadata, TimestampType};
pub use task::{TaskId, TopicPartition};
pub use test_driver::{TestInputTopic, TestOutputTopic, TopologyTestDriver};
pub use topology::{TopicName, Topology, TopologyDescription};
