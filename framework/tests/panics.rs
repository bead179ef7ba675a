//! Panics in user code on the test driver: a panicking processor is a processing error of its
//! task that names the task, the node and the record, and the processing policy applies — even
//! when a parent ignores what `forward` returned, in a punctuator, and in a DSL closure.

use std::time::Duration;

use streamtime::error_policy::ProcessingErrorPolicy;
use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::{
    Consumed, ProcessResult, Processor, ProcessorContext, Produced, PunctuationType, Record,
    StreamsBuilder, StreamsConfig, StreamsError, Topology, TopologyTestDriver,
};

/// Panics on negative values; forwards the others.
struct PanicOnNegative;

impl Processor<String, i64, String, i64> for PanicOnNegative {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<String, i64>,
        r: Record<String, i64>,
    ) -> ProcessResult {
        assert!(r.value >= 0, "negative amount {}", r.value);
        ctx.forward(r)
    }
}

/// Forwards and ignores what its child said.
struct IgnoresForwardResult;

impl Processor<String, i64, String, i64> for IgnoresForwardResult {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<String, i64>,
        r: Record<String, i64>,
    ) -> ProcessResult {
        let _ = ctx.forward(r);
        Ok(())
    }
}

fn panicking(parent_ignores_errors: bool) -> Topology {
    let builder = StreamsBuilder::new();
    let stream = builder.stream("nums", Consumed::with(StringSerde, I64Serde));
    let stream = if parent_ignores_errors {
        stream.process(|| IgnoresForwardResult)
    } else {
        stream
    };
    stream
        .process(|| PanicOnNegative)
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

fn outputs(driver: &TopologyTestDriver) -> Vec<i64> {
    driver
        .output_topic("out", StringSerde, I64Serde)
        .read_key_values()
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

fn expect_panic_error(err: &StreamsError) -> (&str, &str) {
    let StreamsError::Processing { context, message } = err else {
        panic!("expected a processing error, got {err:?}");
    };
    (context, message)
}

#[test]
fn a_panicking_processor_fails_with_its_task_node_and_record() {
    let driver = TopologyTestDriver::new(panicking(false), StreamsConfig::new("p", "x")).unwrap();
    let err = pipe_signed(&driver).expect_err("-2 panics");
    let (context, message) = expect_panic_error(&err);
    assert!(context.contains("task 0_0"), "{context}");
    assert!(context.contains("nums-0@1"), "{context}");
    assert!(context.contains("node KSTREAM-PROCESSOR"), "{context}");
    assert!(
        message.contains("panicked: negative amount -2"),
        "{message}"
    );
    assert_eq!(outputs(&driver), vec![1]);
}

#[test]
fn continue_skips_records_a_processor_panics_on() {
    let config =
        StreamsConfig::new("p", "x").processing_error_policy(ProcessingErrorPolicy::Continue);
    let driver = TopologyTestDriver::new(panicking(false), config).unwrap();
    pipe_signed(&driver).unwrap();
    assert_eq!(outputs(&driver), vec![1, 3, 5]);
    assert_eq!(driver.dropped_records(), 2);
}

#[test]
fn a_panic_below_a_parent_that_ignores_forward_errors_still_fails_the_record() {
    let driver = TopologyTestDriver::new(panicking(true), StreamsConfig::new("p", "x")).unwrap();
    let err = pipe_signed(&driver).expect_err("-2 panics even though the parent swallows it");
    let (context, message) = expect_panic_error(&err);
    assert!(context.contains("nums-0@1"), "{context}");
    assert!(message.contains("negative amount -2"), "{message}");
    assert_eq!(outputs(&driver), vec![1]);
}

#[test]
fn a_panic_in_a_dsl_closure_names_its_node() {
    let builder = StreamsBuilder::new();
    builder
        .stream("nums", Consumed::with(StringSerde, I64Serde))
        .map_values(|n: i64| 100 / n)
        .to("out", Produced::with(StringSerde, I64Serde));
    let driver =
        TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("p", "x")).unwrap();
    let input = driver.input_topic("nums", StringSerde, I64Serde);
    input.pipe("k".into(), 5, 0).unwrap();
    let err = input.pipe("k".into(), 0, 0).expect_err("division by zero");
    let (context, message) = expect_panic_error(&err);
    assert!(context.contains("node KSTREAM-MAPVALUES"), "{context}");
    assert!(context.contains("nums-0@1"), "{context}");
    assert!(message.contains("divide by zero"), "{message}");
    assert_eq!(outputs(&driver), vec![20]);
}

/// Schedules a wall-clock punctuator that panics.
struct PanickingPunctuator;

impl Processor<String, i64, String, i64> for PanickingPunctuator {
    fn init(&mut self, ctx: &mut ProcessorContext<String, i64>) -> ProcessResult {
        ctx.schedule(Duration::from_secs(1), PunctuationType::WallClockTime);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<String, i64>,
        r: Record<String, i64>,
    ) -> ProcessResult {
        ctx.forward(r)
    }

    fn punctuate(
        &mut self,
        _ctx: &mut ProcessorContext<String, i64>,
        _punctuation: streamtime::Punctuation,
    ) -> ProcessResult {
        panic!("punctuator broke");
    }
}

#[test]
fn a_panicking_punctuator_fails_with_its_task_and_node() {
    let builder = StreamsBuilder::new();
    builder
        .stream("nums", Consumed::with(StringSerde, I64Serde))
        .process(|| PanickingPunctuator)
        .to("out", Produced::with(StringSerde, I64Serde));
    let driver =
        TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("p", "x")).unwrap();
    driver
        .input_topic("nums", StringSerde, I64Serde)
        .pipe("k".into(), 1, 0)
        .unwrap();
    let err = driver
        .advance_wall_clock(Duration::from_secs(2))
        .expect_err("the punctuator panics");
    let (context, message) = expect_panic_error(&err);
    assert!(context.contains("task 0_0"), "{context}");
    assert!(context.contains("(punctuate)"), "{context}");
    assert!(message.contains("punctuator broke"), "{message}");
}

#[test]
fn a_panic_on_a_cached_update_sent_at_the_commit_fails_the_commit_naming_its_task_and_node() {
    let builder = StreamsBuilder::new();
    builder
        .stream("nums", Consumed::with(StringSerde, I64Serde))
        .group_by_key()
        .count(streamtime::Materialized::as_("counts"))
        .to_stream()
        .map_values(|n: i64| 100 / (n - 2))
        .to("out", Produced::with(StringSerde, I64Serde));
    let driver =
        TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("p", "x")).unwrap();
    let input = driver.input_topic("nums", StringSerde, I64Serde);
    driver.hold();
    for ts in 0..2 {
        input.pipe("k".into(), 1, ts).unwrap();
    }
    // The count of 2 reaches the closure only when the commit sends it downstream.
    let err = driver
        .release()
        .expect_err("division by zero at the commit");
    let (context, message) = expect_panic_error(&err);
    assert!(context.contains("task 0_0"), "{context}");
    assert!(context.contains("node KSTREAM-MAPVALUES"), "{context}");
    assert!(message.contains("divide by zero"), "{message}");
    assert!(outputs(&driver).is_empty(), "nothing was sent");
}
