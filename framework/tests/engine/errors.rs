//! Errors: missing serdes, type mismatches, malformed records and invalid timestamps.

use super::*;

#[test]
fn missing_serde_after_type_change_fails_the_build() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .map(|k: String, v: String| (k.len() as i64, v))
        .to("out", Produced::default());
    let err = builder.build().expect_err("no serde for the i64 key");
    let message = err.to_string();
    assert!(matches!(err, StreamsError::Topology(_)), "{err:?}");
    assert!(message.contains("to(out)"), "{message}");
    assert!(message.contains("key serde"), "{message}");

    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .map_values(|v: String| v.len() as i64)
        .repartition(Repartitioned::as_("r"));
    let message = builder.build().expect_err("no value serde").to_string();
    assert!(message.contains("repartition"), "{message}");
    assert!(message.contains("value serde"), "{message}");

    // Giving the serdes, on the operation or on the stream, is enough.
    let builder = StreamsBuilder::new();
    let mapped = builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .map(|k: String, v: String| (k.len() as i64, v));
    mapped.to("out1", Produced::with(I64Serde, StringSerde));
    mapped
        .with_serdes(I64Serde, StringSerde)
        .to("out2", Produced::default());
    assert!(builder.build().is_ok());
}

/// Takes i64 values, so it cannot follow a String-valued source.
struct TakesI64;

impl Processor<String, i64, String, i64> for TakesI64 {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<String, i64>,
        record: Record<String, i64>,
    ) -> ProcessResult {
        ctx.forward(record)
    }
}

#[test]
fn processor_type_mismatch_names_both_nodes() {
    let mut topology = Topology::new();
    topology
        .add_source("words-source", &["words"], StringSerde, StringSerde)
        .unwrap();
    let err = topology
        .add_processor("counter", || TakesI64, &["words-source"])
        .expect_err("String values cannot feed an i64 processor");
    let StreamsError::Topology(message) = &err else {
        panic!("expected a topology error, got {err:?}");
    };
    assert!(message.contains("words-source"), "{message}");
    assert!(message.contains("counter"), "{message}");
    assert!(message.contains("i64"), "{message}");
    // The failed node was not added, so its name is still free and nothing dangles.
    assert_eq!(topology.node_count(), 1);

    let mut topology = Topology::new();
    topology
        .add_source("nums", &["nums"], StringSerde, I64Serde)
        .unwrap()
        .add_processor("counter", || TakesI64, &["nums"])
        .unwrap();
    let message = topology
        .add_sink("text-sink", "text", StringSerde, StringSerde, &["counter"])
        .expect_err("an i64 processor cannot feed a String sink")
        .to_string();
    assert!(message.contains("counter"), "{message}");
    assert!(message.contains("text-sink"), "{message}");
}

#[test]
fn malformed_record_fails_with_its_coordinates() {
    let builder = StreamsBuilder::new();
    builder
        .stream("nums", Consumed::with(StringSerde, I64Serde))
        .to("out", Produced::default());
    let driver = TopologyTestDriver::new(builder.build().unwrap(), config()).unwrap();
    let input = driver.input_topic("nums", StringSerde, I64Serde);
    input.pipe(s("k"), 1, 10).unwrap();
    let err = input
        .pipe_raw(
            Some(b"k".to_vec()),
            Some(vec![1, 2, 3]),
            11,
            Headers::new(),
            None,
        )
        .expect_err("3 bytes are not an i64");
    let StreamsError::Deserialization { context, message } = &err else {
        panic!("expected a deserialization error, got {err:?}");
    };
    // Topic nums, partition 0, offset 1 (the valid record took offset 0).
    assert!(context.contains("nums-0@1"), "{context}");
    assert!(context.contains("value"), "{context}");
    assert!(message.contains("got 3"), "{message}");
    assert!(err.to_string().contains("nums-0@1"), "{err}");
    // Only the valid record got through.
    assert_eq!(
        driver
            .output_topic("out", StringSerde, I64Serde)
            .read_key_values(),
        vec![(s("k"), 1)]
    );
}

fn passthrough() -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, I64Serde))
        .to("out", Produced::default());
    builder.build().unwrap()
}

#[test]
fn negative_timestamp_fails_by_default() {
    let driver = TopologyTestDriver::new(passthrough(), config()).unwrap();
    let input = driver.input_topic("in", StringSerde, I64Serde);
    input.pipe(s("k"), 1, 10).unwrap();
    let err = input
        .pipe(s("k"), 2, -5)
        .expect_err("negative timestamps fail by default");
    assert_eq!(
        err,
        StreamsError::InvalidTimestamp {
            context: s("in-0@1"),
            timestamp: -5,
        }
    );
}

#[test]
fn negative_timestamp_is_skipped_under_log_and_skip() {
    let config = config().invalid_timestamp_policy(InvalidTimestampPolicy::LogAndSkip);
    let driver = TopologyTestDriver::new(passthrough(), config).unwrap();
    let input = driver.input_topic("in", StringSerde, I64Serde);
    input.pipe(s("k"), 1, -5).unwrap();
    input.pipe(s("k"), 2, 20).unwrap();
    input.pipe(s("k"), 3, -1).unwrap();
    input.pipe(s("k"), 4, 30).unwrap();
    let out: Vec<(i64, i64)> = driver
        .output_topic("out", StringSerde, I64Serde)
        .read_records()
        .into_iter()
        .map(|r| (r.value, r.timestamp))
        .collect();
    assert_eq!(out, vec![(2, 20), (4, 30)]);
    assert_eq!(driver.stream_time(task(0, 0)), Some(30));
}

#[test]
fn negative_timestamp_takes_partition_time_under_use_partition_time() {
    let config = config().invalid_timestamp_policy(InvalidTimestampPolicy::UsePartitionTime);
    let driver = TopologyTestDriver::new(passthrough(), config).unwrap();
    let input = driver.input_topic("in", StringSerde, I64Serde);
    // Dropped: there is no partition time yet.
    input.pipe(s("k"), 1, -5).unwrap();
    input.pipe(s("k"), 2, 20).unwrap();
    input.pipe(s("k"), 3, -1).unwrap();
    let out: Vec<(i64, i64)> = driver
        .output_topic("out", StringSerde, I64Serde)
        .read_records()
        .into_iter()
        .map(|r| (r.value, r.timestamp))
        .collect();
    assert_eq!(out, vec![(2, 20), (3, 20)]);
}
