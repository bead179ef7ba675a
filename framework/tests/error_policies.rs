//! Error policies on the test driver: malformed records failing the app with their
//! coordinates, skipped and counted, or dead-lettered with their original bytes; processing
//! errors failing or skipped.

use streamtime::error_policy::{headers, DeserializationErrorPolicy, ProcessingErrorPolicy};
use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::{
    Consumed, Headers, ProcessResult, Processor, ProcessorContext, Produced, Record,
    StreamsBuilder, StreamsConfig, StreamsError, Topology, TopologyTestDriver,
};

fn passthrough() -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream("nums", Consumed::with(StringSerde, I64Serde))
        .map_values(|n: i64| n * 10)
        .to("out", Produced::with(StringSerde, I64Serde));
    builder.build().unwrap()
}

/// Pipes valid values and, after every third, a 3-byte value no i64 serde accepts.
fn pipe_mixed(driver: &TopologyTestDriver) -> Result<(), StreamsError> {
    let input = driver.input_topic("nums", StringSerde, I64Serde);
    for i in 0..9_i64 {
        input.pipe(format!("k{i}"), i, i)?;
        if i % 3 == 2 {
            input.pipe_raw(
                Some(format!("bad{i}").into_bytes()),
                Some(vec![1, 2, 3]),
                i,
                Headers::new().with("origin", "test"),
                None,
            )?;
        }
    }
    Ok(())
}

fn outputs(driver: &TopologyTestDriver) -> Vec<i64> {
    driver
        .output_topic("out", StringSerde, I64Serde)
        .read_key_values()
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

#[test]
fn by_default_a_malformed_record_stops_processing_with_its_coordinates() {
    let driver = TopologyTestDriver::new(passthrough(), StreamsConfig::new("p", "x")).unwrap();
    let err = pipe_mixed(&driver).expect_err("the first malformed record fails");
    let StreamsError::Deserialization { context, .. } = &err else {
        panic!("expected a deserialization error, got {err:?}");
    };
    // k0, k1, k2 took offsets 0..=2; the malformed record is offset 3.
    assert!(context.contains("nums-0@3"), "{context}");
    assert_eq!(outputs(&driver), vec![0, 10, 20]);
}

#[test]
fn log_and_continue_skips_and_counts_malformed_records() {
    let config = StreamsConfig::new("p", "x")
        .deserialization_error_policy(DeserializationErrorPolicy::LogAndContinue);
    let driver = TopologyTestDriver::new(passthrough(), config).unwrap();
    pipe_mixed(&driver).unwrap();
    assert_eq!(outputs(&driver), (0..9).map(|i| i * 10).collect::<Vec<_>>());
    assert_eq!(driver.dropped_records(), 3);
}

#[test]
fn dead_letter_keeps_the_original_bytes_and_says_where_they_came_from() {
    let config = StreamsConfig::new("p", "x").deserialization_error_policy(
        DeserializationErrorPolicy::DeadLetter {
            topic: "nums-dead".into(),
        },
    );
    let driver = TopologyTestDriver::new(passthrough(), config).unwrap();
    pipe_mixed(&driver).unwrap();
    assert_eq!(outputs(&driver).len(), 9);
    assert_eq!(driver.dropped_records(), 3);
    let dead = driver.raw_records("nums-dead");
    assert_eq!(dead.len(), 3);
    for (record, (i, offset)) in dead.iter().zip([(2, 3), (5, 7), (8, 11)]) {
        assert_eq!(record.key.as_deref(), Some(format!("bad{i}").as_bytes()));
        assert_eq!(record.value.as_deref(), Some(&[1_u8, 2, 3][..]));
        assert_eq!(record.timestamp, i);
        let header = |name: &str| {
            record
                .headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value.clone())
                .map(|v| String::from_utf8(v).unwrap())
        };
        assert_eq!(header("origin").as_deref(), Some("test"));
        assert_eq!(header(headers::TOPIC).as_deref(), Some("nums"));
        assert_eq!(header(headers::PARTITION).as_deref(), Some("0"));
        assert_eq!(header(headers::OFFSET), Some(offset.to_string()));
        assert!(header(headers::ERROR)
            .unwrap()
            .contains(&format!("nums-0@{offset}")));
    }
}

/// Fails on negative values; forwards the others.
struct RejectNegative;

impl Processor<String, i64, String, i64> for RejectNegative {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<String, i64>,
        r: Record<String, i64>,
    ) -> ProcessResult {
        if r.value < 0 {
            return Err(StreamsError::processing(format!(
                "negative amount {}",
                r.value
            )));
        }
        ctx.forward(r)
    }
}

fn rejecting() -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream("nums", Consumed::with(StringSerde, I64Serde))
        .process(|| RejectNegative)
        .to("out", Produced::with(StringSerde, I64Serde));
    builder.build().unwrap()
}

fn pipe_signed(driver: &TopologyTestDriver) -> Result<(), StreamsError> {
    let input = driver.input_topic("nums", StringSerde, I64Serde);
    for v in [1, -2, 3, -4, 5] {
        input.pipe("k".into(), v, 0)?;
    }
    Ok(())
}

#[test]
fn a_processing_error_fails_with_the_record_coordinates_by_default() {
    let driver = TopologyTestDriver::new(rejecting(), StreamsConfig::new("p", "x")).unwrap();
    let err = pipe_signed(&driver).expect_err("-2 is rejected");
    let StreamsError::Processing { context, message } = &err else {
        panic!("expected a processing error, got {err:?}");
    };
    assert!(context.contains("nums-0@1"), "{context}");
    assert!(message.contains("negative amount -2"), "{message}");
    assert_eq!(outputs(&driver), vec![1]);
}

#[test]
fn continue_skips_records_a_processor_fails_on() {
    let config =
        StreamsConfig::new("p", "x").processing_error_policy(ProcessingErrorPolicy::Continue);
    let driver = TopologyTestDriver::new(rejecting(), config).unwrap();
    pipe_signed(&driver).unwrap();
    assert_eq!(outputs(&driver), vec![1, 3, 5]);
    assert_eq!(driver.dropped_records(), 2);
}
