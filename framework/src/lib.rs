//! # streamtime
//!
//! Stateful stream processing on Apache Kafka in the style of Kafka Streams.
//!
//! A [`Topology`] is built in code, with the [`StreamsBuilder`] DSL or the Processor API. The
//! framework cuts it into sub-topologies at repartition topics and runs one task per
//! sub-topology and input partition. Each task keeps its own stream time, picks the next
//! record by timestamp across its partitions, and pushes it depth-first through the graph.
//!
//! This page is a guide in five steps: build, test, run, watch, and the time model behind
//! it all. The `streamtime-examples` crate has complete programs to copy (bank overdrafts,
//! sensor averages, word count, clickstream sessions).
//!
//! ## 1. Build a topology
//!
//! The DSL chains operators on a [`KStream`]; grouping and aggregating gives a [`KTable`]
//! backed by a state store. Everything the DSL does can also be written by hand with
//! [`Topology::add_source`], [`Topology::add_processor`] (a [`Processor`] of your own) and
//! [`Topology::add_sink`].
//!
//! ```
//! use streamtime::{Consumed, Grouped, Materialized, Produced, StreamsBuilder};
//! use streamtime::serdes::{I64Serde, StringSerde};
//!
//! fn word_count() -> Result<streamtime::Topology, streamtime::StreamsError> {
//!     let builder = StreamsBuilder::new();
//!     builder
//!         .stream("lines", Consumed::with(StringSerde, StringSerde))
//!         .flat_map_values(|line: String| {
//!             line.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>()
//!         })
//!         // A new key: records move through the repartition topic `<app>-words-repartition`.
//!         .group_by(|_, word: &String| word.clone(), Grouped::as_("words"))
//!         // Counts live in the store `counts`, mirrored to `<app>-counts-changelog`.
//!         .count(Materialized::as_("counts"))
//!         .to_stream()
//!         .to("word-counts", Produced::with(StringSerde, I64Serde));
//!     builder.build()
//! }
//!
//! let topology = word_count().unwrap();
//! // Two sub-topologies, cut at the repartition topic. `to_mermaid()` draws the same.
//! let description = topology.describe();
//! assert_eq!(description.subtopologies.len(), 2);
//! assert!(description.to_string().contains("Processor: KSTREAM-AGGREGATE"));
//! assert!(description.to_mermaid().contains("counts-changelog"));
//! ```
//!
//! ## 2. Test it without Kafka
//!
//! [`TopologyTestDriver`] runs the same tasks a cluster would (one per sub-topology and
//! partition, repartition topics in memory), deterministically, so its output equals a
//! cluster's for the same input order.
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
//! let driver = TopologyTestDriver::new(topology, StreamsConfig::new("words-app", "unused")).unwrap();
//! driver.input_topic("sentences", StringSerde, StringSerde)
//!     .pipe("s1".into(), "Hello Streams".into(), 1_000).unwrap();
//! let words = driver.output_topic("words", StringSerde, StringSerde).read_key_values();
//! assert_eq!(words, vec![("s1".into(), "hello".into()), ("s1".into(), "streams".into())]);
//! ```
//!
//! ## 3. Run it on Kafka
//!
//! [`KafkaStreams`] joins the consumer group named by the application id, creates the
//! internal topics, restores state from changelogs and processes until shut down. Start as
//! many instances as you like: partitions, and with them tasks, spread over them.
//!
//! ```no_run
//! use std::time::Duration;
//! use streamtime::{Consumed, KafkaStreams, Produced, ProcessingGuarantee, StreamsBuilder, StreamsConfig};
//! use streamtime::serdes::StringSerde;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), streamtime::StreamsError> {
//!     let builder = StreamsBuilder::new();
//!     builder
//!         .stream("orders", Consumed::with(StringSerde, StringSerde))
//!         .filter(|_, order| !order.is_empty())
//!         .to("valid-orders", Produced::default());
//!     let config = StreamsConfig::new("orders-app", "localhost:9092")
//!         .processing_guarantee(ProcessingGuarantee::ExactlyOnce)
//!         .num_stream_threads(2)
//!         // Wait up to 100 ms for an empty input partition before choosing without it.
//!         .max_task_idle(Some(Duration::from_millis(100)))
//!         .state_dir("/var/lib/orders-app");
//!     let mut app = KafkaStreams::new(builder.build()?, config)?;
//!     app.start()?;
//!     // Until SIGTERM or ctrl-c; then commit, checkpoint, leave the group.
//!     app.run_until_signal().await
//! }
//! ```
//!
//! ## 4. Watch it
//!
//! * Logs go through [`tracing`](https://docs.rs/tracing): task creation, restore progress
//!   (records done of the total, rate, time left), dropped records with their coordinates,
//!   and a warning when a task holds buffered records but processes none
//!   ([`StreamsConfig::stall_warning_after`]).
//! * Metrics go through the [`metrics`](https://docs.rs/metrics) facade, every per-task series
//!   labelled `task="<sub-topology>_<partition>"`: processed and dropped records (by
//!   `reason`), enforced processing, stream time, record lateness, commit latency, consumer
//!   lag, restore progress. Install any `metrics` recorder, or enable the `prometheus`
//!   feature and set `StreamsConfig::prometheus_endpoint` to serve them for scraping.
//! * [`KafkaStreams::task_status`] and [`KafkaStreams::status_report`] show each task's
//!   partitions, buffers, stream time and time-synchronisation exclusions.
//!
//! ## 5. The time model
//!
//! Every record has a timestamp (by default the Kafka record's; see [`timestamp`] for
//! extractors). A task's *stream time* is the largest timestamp it has processed and never
//! goes back; a record older than that is *late* by the difference. Among its input
//! partitions a task always takes the record with the smallest timestamp at the head of a
//! partition's buffer (ties to the lowest topic-partition); within a partition, offset order
//! always wins. Before choosing, it waits for an empty partition whose data is still on the
//! broker, and for `max_task_idle` once it is caught up. Windowed operators close a window
//! when their own observed stream time passes its end plus the grace period; records for a
//! closed window are dropped, counted and logged. Partition time is committed with the input
//! offsets, so stream time survives a restart or a task moving to another instance.

#![warn(missing_docs, unreachable_pub)]

pub(crate) mod client_config;
pub mod config;
pub mod dsl;
pub mod error;
pub mod error_policy;
#[cfg(feature = "fault-injection")]
pub mod faults;
#[cfg(not(feature = "fault-injection"))]
pub(crate) mod faults;
pub mod kafka_streams;
#[doc(inline)]
pub use kafka_streams::query;
pub mod lifecycle;
pub mod partitioner;
pub mod processor;
#[cfg(feature = "prometheus")]
pub mod prometheus;
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
    Branched, Consumed, GlobalKTable, Grouped, JoinWindows, Joined, KGroupedStream, KGroupedTable,
    KStream, KTable, Materialized, Produced, Repartitioned, StreamJoined, StreamsBuilder,
};
pub use error::{ProcessResult, StreamsError};
pub use kafka_streams::{CommitRequest, KafkaStreams, ShutdownHandle, StatusHandle, TaskStatus};
pub use processor::{Processor, ProcessorContext, Punctuation, PunctuationType, PunctuatorId};
pub use record::{Header, Headers, RawRecord, Record, RecordMetadata, TimestampType};
pub use task::{TaskId, TopicPartition};
pub use test_driver::{TestInputTopic, TestOutputTopic, TopologyTestDriver};
pub use topology::{TopicName, Topology, TopologyDescription};
