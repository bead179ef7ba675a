//! Watermarks through repartition topics on the test driver (`Repartitioned::with_watermarks`),
//! whose repartition topics carry them as a broker's would: four upstream tasks write one
//! repartition partition, one of them far behind the others in event time. Without
//! watermarks the downstream windowed count judges the slow writer's records by the fast
//! writers' time and drops many as late; with them it drops none and every window ends at
//! the count worked out here from the input.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use streamtime::dsl::{TimeWindows, WindowedSerde};
use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::{
    Consumed, Materialized, Produced, Record, Repartitioned, StreamsBuilder, StreamsConfig,
    TopologyTestDriver,
};

const SIZE: i64 = 10_000;
const ADVANCE: i64 = 5_000;

/// Three fast upstream partitions (a record a second of event time each) and one slow one
/// (a record every 250 ms), all for the key `page`, interleaved as they are processed.
fn input() -> Vec<(i32, i64)> {
    let mut records = Vec::new();
    for i in 0..120 {
        for p in 0..3 {
            records.push((p, i * 1_000));
        }
        records.push((3, i * 250));
    }
    records
}

/// The count of every window start, each record counted in every window containing it.
fn truth(records: &[(i32, i64)]) -> BTreeMap<i64, i64> {
    let mut counts = BTreeMap::new();
    for (_, ts) in records {
        let first = (ts - SIZE + ADVANCE).max(0) / ADVANCE * ADVANCE;
        for start in (first..=*ts).step_by(ADVANCE as usize) {
            *counts.entry(start).or_insert(0) += 1;
        }
    }
    counts
}

/// The final count per window start of the hopping count behind a repartition (with
/// watermarks or not), and the number of records dropped as late.
fn run(watermarks: bool) -> (BTreeMap<i64, i64>, usize) {
    let late = Arc::new(Mutex::new(0));
    let seen = late.clone();
    let builder = StreamsBuilder::new();
    let mut repartitioned = Repartitioned::as_("by-page");
    if watermarks {
        repartitioned = repartitioned.with_watermarks();
    }
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .repartition(repartitioned)
        .group_by_key()
        .windowed_by(
            TimeWindows::of_size_with_no_grace(Duration::from_millis(SIZE as u64))
                .advance_by(Duration::from_millis(ADVANCE as u64)),
        )
        .on_late(move |_| *seen.lock().unwrap() += 1)
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(
            "counts",
            Produced::with(WindowedSerde::new(StringSerde), I64Serde),
        );
    let driver = TopologyTestDriver::with_partitions(
        builder.build().unwrap(),
        StreamsConfig::new("watermarks", "unused"),
        &[("clicks", 4)],
    )
    .unwrap();
    let clicks = driver.input_topic("clicks", StringSerde, StringSerde);
    for (partition, ts) in input() {
        let record = Record::new("page".to_string(), String::new(), ts);
        clicks.pipe_record(record, Some(partition)).unwrap();
    }
    let mut last = BTreeMap::new();
    for r in driver
        .output_topic("counts", WindowedSerde::new(StringSerde), I64Serde)
        .read_records()
    {
        last.insert(r.key.window.start, r.value);
    }
    let dropped = *late.lock().unwrap();
    (last, dropped)
}

#[test]
fn without_watermarks_a_slow_writers_records_are_dropped_as_late() {
    let (counts, dropped) = run(false);
    assert!(dropped > 100, "only {dropped} records dropped");
    assert_ne!(counts, truth(&input()));
}

#[test]
fn with_watermarks_no_record_is_late_and_every_window_is_exact() {
    let (counts, dropped) = run(true);
    assert_eq!(dropped, 0);
    assert_eq!(counts, truth(&input()));
}

#[test]
fn control_records_reach_no_processor_and_the_sink_writes_one_per_progress_and_partition() {
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .repartition(Repartitioned::as_("by-page").with_watermarks())
        .to("out", Produced::with(StringSerde, StringSerde));
    let driver = TopologyTestDriver::with_partitions(
        builder.build().unwrap(),
        StreamsConfig::new("watermarks", "unused"),
        &[("clicks", 2)],
    )
    .unwrap();
    let clicks = driver.input_topic("clicks", StringSerde, StringSerde);
    for (partition, ts) in [(0, 5), (1, 7), (0, 6), (0, 6)] {
        let record = Record::new("k".to_string(), format!("at-{ts}"), ts);
        clicks.pipe_record(record, Some(partition)).unwrap();
    }
    let out: Vec<String> = driver
        .output_topic("out", StringSerde, StringSerde)
        .read_records()
        .into_iter()
        .map(|r| r.value)
        .collect();
    assert_eq!(out, ["at-5", "at-7", "at-6", "at-6"], "data only");
    let control: Vec<(String, i32, i64)> = driver
        .raw_records("watermarks-by-page-repartition")
        .into_iter()
        .filter(|r| r.headers.last("streamtime.watermark").is_some())
        .map(|r| {
            let writer = String::from_utf8(r.key.unwrap()).unwrap();
            (writer, r.partition, r.timestamp)
        })
        .collect();
    // Each writer reports to both partitions when its stream time advanced: 0_0 at 5 and 6
    // (not again for the second 6), 0_1 at 7.
    assert_eq!(
        control,
        [
            ("0_0".to_string(), 0, 5),
            ("0_0".to_string(), 1, 5),
            ("0_1".to_string(), 0, 7),
            ("0_1".to_string(), 1, 7),
            ("0_0".to_string(), 0, 6),
            ("0_0".to_string(), 1, 6),
        ]
    );
}
