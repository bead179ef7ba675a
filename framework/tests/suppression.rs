//! Suppression on the test driver: final results of windows, rate limiting by a time limit,
//! and bounded buffers that emit early or stop the application when full.
//!
//! The expected outputs are those of Kafka Streams' `SuppressScenarioTest`
//! (`shouldSuppressIntermediateEventsWithTimeLimit`,
//! `shouldSuppressIntermediateEventsWithRecordLimit`,
//! `shouldShutdownWhenRecordConstraintIsViolated`,
//! `shouldSupportFinalResultsForTimeWindows`), on streamtime's tables without a record cache.

use std::time::Duration;

use streamtime::dsl::{BufferConfig, Suppressed, TimeWindows, WindowedSerde};
use streamtime::serdes::{I64Serde, StringSerde, UnitSerde};
use streamtime::{
    Consumed, Grouped, KTable, Materialized, Produced, StreamsBuilder, StreamsConfig,
    TopologyTestDriver,
};

/// Kafka Streams' scenario topology: a table of `k -> v` counted by value, its raw changes
/// to `output-raw` and its suppressed changes to `output-suppressed`.
fn value_counts(suppressed: Suppressed<String>) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    let counts: KTable<String, i64> = builder
        .table(
            "input",
            Consumed::with(StringSerde, StringSerde),
            Materialized::as_("input"),
        )
        .group_by(
            |_k, v| (v.clone(), ()),
            Grouped::with_serdes(StringSerde, UnitSerde),
        )
        .count(Materialized::as_("counts"));
    counts
        .to_stream()
        .to("output-raw", Produced::with(StringSerde, I64Serde));
    counts
        .suppress(suppressed)
        .to_stream()
        .to("output-suppressed", Produced::with(StringSerde, I64Serde));
    TopologyTestDriver::new(
        builder.build().unwrap(),
        StreamsConfig::new("suppress", "unused"),
    )
    .unwrap()
}

fn pipe(driver: &TopologyTestDriver, key: &str, value: &str, ts: i64) {
    driver
        .input_topic("input", StringSerde, StringSerde)
        .pipe(key.into(), value.into(), ts)
        .unwrap();
}

/// `key:value@timestamp` of the records written to `topic` since the last read.
fn drain(driver: &TopologyTestDriver, topic: &str) -> Vec<String> {
    driver
        .output_topic(topic, StringSerde, I64Serde)
        .read_records()
        .into_iter()
        .map(|r| format!("{}:{}@{}", r.key, r.value, r.timestamp))
        .collect()
}

#[test]
fn a_time_limit_forwards_each_key_once_stream_time_passes_its_first_held_change() {
    let driver = value_counts(Suppressed::until_time_limit(
        Duration::from_millis(2),
        BufferConfig::unbounded(),
    ));
    pipe(&driver, "k1", "v1", 0);
    pipe(&driver, "k1", "v2", 1);
    pipe(&driver, "k2", "v1", 2);
    assert_eq!(
        drain(&driver, "output-raw"),
        ["v1:1@0", "v1:0@1", "v2:1@1", "v1:1@2"]
    );
    assert_eq!(drain(&driver, "output-suppressed"), ["v1:1@2"]);
    // A tick only advances stream time.
    pipe(&driver, "tick", "tick", 3);
    assert_eq!(drain(&driver, "output-raw"), ["tick:1@3"]);
    assert_eq!(drain(&driver, "output-suppressed"), ["v2:1@1"]);
    pipe(&driver, "tick", "tock", 4);
    assert_eq!(drain(&driver, "output-raw"), ["tick:0@4", "tock:1@4"]);
    // tick was first held at 3: not due before 5.
    assert_eq!(drain(&driver, "output-suppressed"), Vec::<String>::new());
}

#[test]
fn a_full_buffer_that_emits_early_forwards_its_oldest_change() {
    let driver = value_counts(Suppressed::until_time_limit(
        Duration::MAX,
        BufferConfig::max_records(1).emit_early_when_full(),
    ));
    pipe(&driver, "k1", "v1", 0);
    pipe(&driver, "k1", "v2", 1);
    pipe(&driver, "k2", "v1", 2);
    assert_eq!(
        drain(&driver, "output-raw"),
        ["v1:1@0", "v1:0@1", "v2:1@1", "v1:1@2"]
    );
    assert_eq!(drain(&driver, "output-suppressed"), ["v1:0@1", "v2:1@1"]);
}

#[test]
fn a_full_buffer_that_shuts_down_stops_with_an_error_naming_the_suppression() {
    let driver = value_counts(
        Suppressed::until_time_limit(
            Duration::MAX,
            BufferConfig::max_records(1).shut_down_when_full(),
        )
        .with_name("rate-limit"),
    );
    pipe(&driver, "k1", "v1", 0);
    let err = driver
        .input_topic("input", StringSerde, StringSerde)
        .pipe("k1".into(), "v2".into(), 1)
        .expect_err("the second held change does not fit")
        .to_string();
    assert!(err.contains("suppression rate-limit is full"), "{err}");
}

#[test]
fn until_window_closes_forwards_each_window_once_after_its_grace() {
    let builder = StreamsBuilder::new();
    let counts = builder
        .stream("input", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_millis(2),
            Duration::from_millis(1),
        ))
        .count(Materialized::as_("counts"));
    counts
        .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()))
        .to_stream()
        .to(
            "output-suppressed",
            Produced::with(WindowedSerde::new(StringSerde), I64Serde),
        );
    let driver = TopologyTestDriver::new(
        builder.build().unwrap(),
        StreamsConfig::new("suppress", "unused"),
    )
    .unwrap();
    let input = driver.input_topic("input", StringSerde, StringSerde);
    for ts in [0, 1, 2, 1, 0, 5, 0] {
        input.pipe("k1".into(), "v1".into(), ts).unwrap();
    }
    let out: Vec<String> = driver
        .output_topic(
            "output-suppressed",
            WindowedSerde::new(StringSerde),
            I64Serde,
        )
        .read_records()
        .into_iter()
        .map(|r| {
            let w = r.key.window;
            format!(
                "[{}@{}/{}]:{}@{}",
                r.key.key, w.start, w.end, r.value, r.timestamp
            )
        })
        .collect();
    // The late record at 0 (after stream time 5) is dropped by the count.
    assert_eq!(out, ["[k1@0/2]:4@1", "[k1@2/4]:1@2"]);
}

#[test]
fn until_window_closes_with_a_buffer_that_emits_early_fails_the_build() {
    let builder = StreamsBuilder::new();
    builder
        .stream("input", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_millis(2)))
        .count(Materialized::as_("counts"))
        .suppress(Suppressed::until_window_closes(BufferConfig::max_records(
            10,
        )));
    let Err(err) = builder.build() else {
        panic!("final results must not be emitted early");
    };
    assert!(err.to_string().contains("must not emit early"), "{err}");
}
