//! The stream-time engine without Kafka: punctuation, monotonic stream time, depth-first
//! order, sub-topology cutting and naming, repartitioning, partition counts, error reporting
//! and `max_task_idle`, all through `TopologyTestDriver` and the public API. One module per
//! topic; the helpers they share are here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use streamtime::partitioner::partition_for_key;
use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::timestamp::InvalidTimestampPolicy;
use streamtime::{
    Consumed, Headers, ProcessResult, Processor, ProcessorContext, Produced, Punctuation,
    PunctuationType, Record, Repartitioned, StreamsBuilder, StreamsConfig, StreamsError, TaskId,
    TimestampType, Topology, TopologyTestDriver,
};

type Log<T> = Arc<Mutex<Vec<T>>>;

fn log<T>() -> Log<T> {
    Arc::new(Mutex::new(Vec::new()))
}

fn taken<T: Clone>(log: &Log<T>) -> Vec<T> {
    std::mem::take(&mut *log.lock().unwrap())
}

fn config() -> StreamsConfig {
    StreamsConfig::new("app", "unused")
}

fn task(subtopology: u32, partition: i32) -> TaskId {
    TaskId {
        subtopology,
        partition,
    }
}

fn s(v: &str) -> String {
    v.to_string()
}

fn rekeyed(name: &str) -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .select_key(|_, v: &String| v.split(':').next().unwrap_or_default().to_string())
        .repartition(Repartitioned::as_(name))
        .to("out", Produced::default());
    builder.build().unwrap()
}

mod depth_first;
mod errors;
mod partition_counts;
mod punctuation;
mod repartitioning;
mod stream_time;
mod subtopologies;
mod task_idle;
