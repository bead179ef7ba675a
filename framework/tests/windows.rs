//! Windowed aggregations on the test driver: window assignment, grace, every emit strategy on
//! one out-of-order input (expected output listed record by record), late-record counting,
//! hook and dead-letter topic, session merges with tombstones, and build-time checks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use streamtime::dsl::{EmitStrategy, SessionWindows, TimeWindows, Window, Windowed, WindowedSerde};
use streamtime::serdes::{I64Serde, OptionSerde, StringSerde};
use streamtime::{
    Consumed, Materialized, Produced, StreamsBuilder, StreamsConfig, StreamsError,
    TopologyTestDriver,
};

fn config() -> StreamsConfig {
    StreamsConfig::new("windows", "unused")
}

/// `(window start, window end, value, timestamp)` of every output record.
type Out = Vec<(i64, i64, i64, i64)>;

/// Runs a tumbling count (size 10 ms, grace 5 ms) over one key's timestamps, with `emit`;
/// returns the output, the late timestamps the hook saw and the dead-letter records.
fn tumbling_count(emit: EmitStrategy, timestamps: &[i64]) -> (Out, Vec<i64>, Vec<(String, i64)>) {
    let late = Arc::new(Mutex::new(Vec::new()));
    let seen = late.clone();
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_millis(10),
            Duration::from_millis(5),
        ))
        .emit(emit)
        .on_late(move |l| seen.lock().unwrap().push(l.record.timestamp))
        .late_records_to("late-clicks")
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(
            "counts",
            Produced::with(WindowedSerde::new(StringSerde), I64Serde),
        );
    let driver = TopologyTestDriver::new(builder.build().unwrap(), config()).unwrap();
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    for ts in timestamps {
        input.pipe("k".into(), format!("at-{ts}"), *ts).unwrap();
    }
    let out = driver
        .output_topic("counts", WindowedSerde::new(StringSerde), I64Serde)
        .read_records()
        .into_iter()
        .map(|r| (r.key.window.start, r.key.window.end, r.value, r.timestamp))
        .collect();
    let dead = driver
        .output_topic("late-clicks", StringSerde, StringSerde)
        .read_records()
        .into_iter()
        .map(|r| (r.value, r.timestamp))
        .collect();
    let late = late.lock().unwrap().clone();
    (out, late, dead)
}

/// Out of order: 4 is late but within grace; 3 and 2 arrive after [0, 10) closed at 15.
const OUT_OF_ORDER: [i64; 7] = [1, 12, 4, 16, 3, 21, 2];

#[test]
fn emit_on_update_forwards_every_change_and_corrects_within_grace() {
    let (out, late, dead) = tumbling_count(EmitStrategy::OnWindowUpdate, &OUT_OF_ORDER);
    assert_eq!(
        out,
        vec![
            (0, 10, 1, 1),
            (10, 20, 1, 12),
            (0, 10, 2, 4), // the correction: late within grace
            (10, 20, 2, 16),
            (20, 30, 1, 21),
        ]
    );
    assert_eq!(late, vec![3, 2]);
    assert_eq!(dead, vec![("at-3".to_string(), 3), ("at-2".to_string(), 2)]);
}

#[test]
fn emit_on_close_forwards_each_window_once_when_it_closes() {
    let (out, late, _) = tumbling_count(EmitStrategy::OnWindowClose, &OUT_OF_ORDER);
    // [0, 10) closes when stream time reaches 15 (record 16); [10, 20) and [20, 30) are
    // still open at the end of the input.
    assert_eq!(out, vec![(0, 10, 2, 4)]);
    assert_eq!(late, vec![3, 2]);

    let (out, _, _) = tumbling_count(EmitStrategy::OnWindowClose, &[1, 12, 4, 16, 3, 21, 2, 40]);
    assert_eq!(out, vec![(0, 10, 2, 4), (10, 20, 2, 16), (20, 30, 1, 21)]);
}

#[test]
fn emit_after_a_custom_delay_gives_an_early_result_then_corrections() {
    let (out, late, _) = tumbling_count(
        EmitStrategy::AfterWindowEnd(Duration::from_millis(2)),
        &OUT_OF_ORDER,
    );
    // [0, 10) is due at stream time 12; the record at 4 is within grace and corrects it.
    assert_eq!(out, vec![(0, 10, 1, 1), (0, 10, 2, 4)]);
    assert_eq!(late, vec![3, 2]);
}

/// Counts what the `metrics` facade records on this thread: one series per registration.
#[derive(Default)]
struct Counters(Mutex<Vec<(String, Arc<AtomicU64>)>>);

impl Counters {
    /// The sum of counter `name` over every label set.
    fn total(&self, name: &str) -> u64 {
        let counters = self.0.lock().unwrap();
        counters
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, c)| c.load(Ordering::Relaxed))
            .sum()
    }
}

impl metrics::Recorder for Counters {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let counter = Arc::new(AtomicU64::new(0));
        let name = key.name().to_string();
        self.0.lock().unwrap().push((name, counter.clone()));
        metrics::Counter::from_arc(counter)
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

#[test]
fn a_record_late_for_some_of_its_hopping_windows_counts_in_the_others_and_is_not_dropped() {
    // Hopping 10 / 5, grace 0: the record at 9 belongs to [0, 10) and [5, 15); at stream time
    // 12, [0, 10) is closed but [5, 15) is open, so it counts there and is not dropped. The
    // record at 1 belongs to [0, 10) only: dropped, its one closed window named.
    let late = Arc::new(Mutex::new(Vec::new()));
    let seen = late.clone();
    let counters = Counters::default();
    let driver = metrics::with_local_recorder(&counters, || {
        let builder = StreamsBuilder::new();
        builder
            .stream("in", Consumed::with(StringSerde, StringSerde))
            .group_by_key()
            .windowed_by(
                TimeWindows::of_size_with_no_grace(Duration::from_millis(10))
                    .advance_by(Duration::from_millis(5)),
            )
            .on_late(move |l| {
                let windows = l.windows.to_vec();
                seen.lock()
                    .unwrap()
                    .push((l.record.timestamp, l.window, windows))
            })
            .late_records_to("too-late")
            .count(Materialized::as_("hops"))
            .to_stream()
            .to(
                "out",
                Produced::with(WindowedSerde::new(StringSerde), I64Serde),
            );
        TopologyTestDriver::new(builder.build().unwrap(), config()).unwrap()
    });
    let input = driver.input_topic("in", StringSerde, StringSerde);
    for ts in [3, 12, 9, 1, 4] {
        input.pipe("k".into(), "v".into(), ts).unwrap();
    }
    let out: Vec<(Window, i64)> = driver
        .output_topic("out", WindowedSerde::new(StringSerde), I64Serde)
        .read_key_values()
        .into_iter()
        .map(|(k, v): (Windowed<String>, i64)| (k.window, v))
        .collect();
    assert_eq!(
        out,
        vec![
            (Window::new(0, 10), 1),
            (Window::new(5, 15), 1),
            (Window::new(10, 20), 1),
            (Window::new(5, 15), 2),
        ]
    );
    let w = Window::new(0, 10);
    assert_eq!(
        *late.lock().unwrap(),
        vec![(1, w, vec![w]), (4, w, vec![w])],
        "only records no window took reach the hook"
    );
    let dead: Vec<i64> = driver
        .output_topic("too-late", StringSerde, StringSerde)
        .read_records()
        .into_iter()
        .map(|r| r.timestamp)
        .collect();
    assert_eq!(
        dead,
        [1, 4],
        "replaying the dead letters counts nothing twice"
    );
    assert_eq!(counters.total("streamtime_dropped_records_total"), 2);
    assert_eq!(
        counters.total("streamtime_late_window_drops_total"),
        3,
        "one per closed window missed: 9, 1 and 4 each missed [0, 10)"
    );
}

#[test]
fn windowed_aggregate_keeps_the_largest_timestamp_and_uses_the_window_store() {
    let builder = StreamsBuilder::new();
    builder
        .stream("amounts", Consumed::with(StringSerde, I64Serde))
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_secs(60)))
        .aggregate(
            || 0,
            |_k, v, sum| sum + v,
            Materialized::as_("sums").with_value_serde(I64Serde),
        )
        .to_stream()
        .to(
            "sums",
            Produced::with(WindowedSerde::new(StringSerde), I64Serde),
        );
    let topology = builder.build().unwrap();
    let description = topology.describe().to_string();
    assert!(description.contains("(stores: [sums])"), "{description}");
    let driver = TopologyTestDriver::new(topology, config()).unwrap();
    let input = driver.input_topic("amounts", StringSerde, I64Serde);
    input.pipe("a".into(), 5, 30_000).unwrap();
    input.pipe("a".into(), 7, 10_000).unwrap();
    input.pipe("b".into(), 1, 61_000).unwrap();
    let out = driver
        .output_topic("sums", WindowedSerde::new(StringSerde), I64Serde)
        .read_records();
    let got: Vec<(String, i64, i64, i64)> = out
        .into_iter()
        .map(|r| (r.key.key, r.key.window.start, r.value, r.timestamp))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a".into(), 0, 5, 30_000),
            ("a".into(), 0, 12, 30_000), // max(record 10 000, aggregate 30 000)
            ("b".into(), 60_000, 1, 61_000),
        ]
    );
    // Every update was logged to the windowed changelog.
    let changelog = driver.raw_records("windows-sums-changelog");
    assert_eq!(changelog.len(), 3);
}

/// `(session, count or tombstone, timestamp)` of every output record.
type SessionOut = Vec<(Window, Option<i64>, i64)>;

/// A session count (gap 10, grace 10) over `timestamps` of one key.
fn session_count(emit: EmitStrategy, timestamps: &[i64]) -> (SessionOut, Vec<i64>) {
    let late = Arc::new(Mutex::new(Vec::new()));
    let seen = late.clone();
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .windowed_by(SessionWindows::of_inactivity_gap_and_grace(
            Duration::from_millis(10),
            Duration::from_millis(10),
        ))
        .emit(emit)
        .on_late(move |l| seen.lock().unwrap().push(l.record.timestamp))
        .count(Materialized::as_("sessions"))
        .to_stream()
        .to(
            "sessions",
            Produced::with(WindowedSerde::new(StringSerde), OptionSerde(I64Serde)),
        );
    let driver = TopologyTestDriver::new(builder.build().unwrap(), config()).unwrap();
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    for ts in timestamps {
        input.pipe("u".into(), "click".into(), *ts).unwrap();
    }
    let out = driver
        .output_topic(
            "sessions",
            WindowedSerde::new(StringSerde),
            OptionSerde(I64Serde),
        )
        .read_records()
        .into_iter()
        .map(|r| (r.key.window, r.value, r.timestamp))
        .collect();
    let late = late.lock().unwrap().clone();
    (out, late)
}

const SESSION_INPUT: [i64; 6] = [0, 5, 30, 18, 25, 2];

#[test]
fn sessions_merge_with_tombstones_and_drop_late_records() {
    let (out, late) = session_count(EmitStrategy::OnWindowUpdate, &SESSION_INPUT);
    let w = Window::new;
    assert_eq!(
        out,
        vec![
            (w(0, 0), Some(1), 0),
            (w(0, 0), None, 0),
            (w(0, 5), Some(2), 5),
            (w(30, 30), Some(1), 30),
            (w(18, 18), Some(1), 18), // within gap + grace of stream time 30: accepted
            (w(18, 18), None, 18),    // 25 bridges [18, 18] and [30, 30]
            (w(30, 30), None, 30),
            (w(18, 30), Some(3), 30),
        ]
    );
    // 2 would join [0, 5], which closed when stream time passed 5 + gap + grace = 25.
    assert_eq!(late, vec![2]);
}

#[test]
fn sessions_emit_final_results_once_closed() {
    let (out, late) = session_count(EmitStrategy::OnWindowClose, &SESSION_INPUT);
    assert_eq!(out, vec![(Window::new(0, 5), Some(2), 5)]);
    assert_eq!(late, vec![2]);
}

#[test]
fn a_retention_shorter_than_size_plus_grace_fails_the_build() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_secs(60),
            Duration::from_secs(30),
        ))
        .count(Materialized::as_("short").with_retention(Duration::from_secs(80)))
        .to_stream()
        .to(
            "out",
            Produced::with(WindowedSerde::new(StringSerde), I64Serde),
        );
    match builder.build() {
        Err(StreamsError::Topology(msg)) => assert!(msg.contains("retention"), "{msg}"),
        other => panic!("expected a topology error, got {other:?}"),
    }
}

#[test]
fn invalid_windows_fail_the_build() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .windowed_by(
            TimeWindows::of_size_with_no_grace(Duration::from_secs(10))
                .advance_by(Duration::from_secs(20)),
        )
        .count(Materialized::as_("bad"));
    assert!(matches!(builder.build(), Err(StreamsError::Topology(_))));
}
