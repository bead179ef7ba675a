//! Sliding-window aggregations on the test driver, against Kafka Streams'
//! `KStreamSlidingWindowAggregate` worked out by hand: left and right windows, records falling
//! into existing windows, equal timestamps, records earlier than the time difference,
//! out-of-order input within grace, late records, emit on window close, and a randomized
//! comparison with the windows computed from their definition.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use streamtime::dsl::{EmitStrategy, SlidingWindows, Window, WindowedSerde};
use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::{
    Consumed, Materialized, Produced, StreamsBuilder, StreamsConfig, StreamsError,
    TopologyTestDriver,
};

/// `(window, aggregate, timestamp)` of an output record: the aggregate lists the values
/// folded into the window, in the order they were folded, joined by `+`.
type Out = (Window, String, i64);

/// A late record as the hook saw it: its timestamp and the window it was reported for.
type Late = (i64, Window);

struct Run {
    /// Output per key, in order.
    out: Vec<(String, Out)>,
    late: Vec<Late>,
    dead_letters: Vec<(String, i64)>,
}

/// Pipes `(key, timestamp)` records, valued with their timestamp, through a sliding
/// aggregate of time difference `d` and `grace`, with `emit`.
fn run(d: u64, grace: u64, emit: EmitStrategy, input: &[(&str, i64)]) -> Run {
    let late = Arc::new(Mutex::new(Vec::new()));
    let seen = late.clone();
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .windowed_by(SlidingWindows::of_time_difference_and_grace(
            Duration::from_millis(d),
            Duration::from_millis(grace),
        ))
        .emit(emit)
        .on_late(move |l| seen.lock().unwrap().push((l.record.timestamp, l.window)))
        .late_records_to("late")
        .aggregate(
            String::new,
            |_k, v: String, agg: String| {
                if agg.is_empty() {
                    v
                } else {
                    format!("{agg}+{v}")
                }
            },
            Materialized::as_("sliding").with_value_serde(StringSerde),
        )
        .to_stream()
        .to(
            "out",
            Produced::with(WindowedSerde::new(StringSerde), StringSerde),
        );
    let driver = TopologyTestDriver::new(
        builder.build().unwrap(),
        StreamsConfig::new("sliding", "unused"),
    )
    .unwrap();
    let topic = driver.input_topic("in", StringSerde, StringSerde);
    for (key, ts) in input {
        topic.pipe(key.to_string(), ts.to_string(), *ts).unwrap();
    }
    let out = driver
        .output_topic("out", WindowedSerde::new(StringSerde), StringSerde)
        .read_records()
        .into_iter()
        .map(|r| (r.key.key, (r.key.window, r.value, r.timestamp)))
        .collect();
    let dead_letters = driver
        .output_topic("late", StringSerde, StringSerde)
        .read_records()
        .into_iter()
        .map(|r| (r.value, r.timestamp))
        .collect();
    let late = late.lock().unwrap().clone();
    Run {
        out,
        late,
        dead_letters,
    }
}

/// One key's records at `timestamps`.
fn one_key(timestamps: &[i64]) -> Vec<(&'static str, i64)> {
    timestamps.iter().map(|ts| ("k", *ts)).collect()
}

fn outputs(run: &Run) -> Vec<Out> {
    run.out.iter().map(|(_, o)| o.clone()).collect()
}

fn o(start: i64, end: i64, agg: &str, ts: i64) -> Out {
    (Window::new(start, end), agg.to_string(), ts)
}

#[test]
fn left_windows_right_windows_existing_windows_and_equal_timestamps() {
    let run = run(
        10,
        100,
        EmitStrategy::OnWindowUpdate,
        &one_key(&[20, 25, 22, 22]),
    );
    assert_eq!(
        outputs(&run),
        vec![
            // 20: its left window.
            o(10, 20, "20", 20),
            // 25: falls into 20's right window, which is created; its left window starts
            // from [10, 20] since 20 is within 10 of 25.
            o(21, 31, "25", 25),
            o(15, 25, "20+25", 25),
            // 22 (out of order): updates the windows containing it, latest first, creates its
            // left window from [10, 20], and its right window from the latest window that
            // contained it before (holding only 25), keeping 25 as timestamp.
            o(21, 31, "25+22", 25),
            o(15, 25, "20+25+22", 25),
            o(12, 22, "20+22", 22),
            o(23, 33, "25", 25),
            // 22 again: every window it needs exists; only the windows containing it change.
            o(21, 31, "25+22+22", 25),
            o(15, 25, "20+25+22+22", 25),
            o(12, 22, "20+22+22", 22),
        ]
    );
    assert!(run.late.is_empty());
}

#[test]
fn records_earlier_than_the_time_difference_share_the_first_window() {
    let run = run(
        10,
        100,
        EmitStrategy::OnWindowUpdate,
        &one_key(&[3, 8, 2, 15, 10, 0]),
    );
    assert_eq!(
        outputs(&run),
        vec![
            // 3 < 10: [0, 10] instead of [-7, 3].
            o(0, 10, "3", 3),
            // 8: 3's right window, and [0, 10].
            o(4, 14, "8", 8),
            o(0, 10, "3+8", 8),
            // 2: its right window holds what [0, 10] held (all after 2).
            o(3, 13, "3+8", 8),
            o(0, 10, "3+8+2", 8),
            // 15: 8's right window, its left window from [4, 14] (8 only).
            o(9, 19, "15", 15),
            o(5, 15, "8+15", 15),
            // 10 = d: [0, 10] is its left window; every window containing it is updated and
            // its right window takes [9, 19] as it was (15 only).
            o(9, 19, "15+10", 15),
            o(5, 15, "8+15+10", 15),
            o(4, 14, "8+10", 10),
            o(3, 13, "3+8+10", 10),
            o(0, 10, "3+8+2+10", 10),
            o(11, 21, "15", 15),
            // 0: its right window [1, 11] holds everything [0, 10] held.
            o(1, 11, "3+8+2+10", 10),
            o(0, 10, "3+8+2+10+0", 10),
        ]
    );
}

#[test]
fn a_previous_right_window_equal_to_the_left_window_is_forwarded_once() {
    // 66's left window [56, 66] is also 55's right window; Kafka Streams creates and forwards
    // it twice with the same value, here it is forwarded once.
    let run = run(
        10,
        100,
        EmitStrategy::OnWindowUpdate,
        &one_key(&[50, 55, 66]),
    );
    assert_eq!(
        outputs(&run),
        vec![
            o(40, 50, "50", 50),
            o(51, 61, "55", 55),
            o(45, 55, "50+55", 55),
            o(56, 66, "66", 66),
        ]
    );
}

/// Grace 5, time difference 10: 18 arrives when all windows containing it are closed but
/// [18, 28] would not be, so it is not dropped; 12 is dropped; 27 is within grace.
const LATE_INPUT: [i64; 6] = [10, 20, 30, 18, 12, 27];

#[test]
fn out_of_order_within_grace_is_aggregated_and_late_records_are_dropped() {
    let run = run(10, 5, EmitStrategy::OnWindowUpdate, &one_key(&LATE_INPUT));
    assert_eq!(
        outputs(&run),
        vec![
            o(0, 10, "10", 10),
            o(11, 21, "20", 20),
            o(10, 20, "10+20", 20),
            o(21, 31, "30", 30),
            o(20, 30, "20+30", 30),
            // 18 at stream time 30 (windows ending before 25 are closed): [11, 21], [10, 20]
            // and its left window [8, 18] are closed, so it is in no window; its right window
            // (20 only) is still created.
            o(19, 29, "20", 20),
            // 12: dropped, 12 + 10 < 25.
            // 27: within grace.
            o(21, 31, "30+27", 30),
            o(20, 30, "20+30+27", 30),
            o(19, 29, "20+27", 27),
            o(17, 27, "20+27", 27),
            o(28, 38, "30", 30),
        ]
    );
    assert_eq!(
        run.late,
        vec![(18, Window::new(11, 21)), (12, Window::new(2, 12))]
    );
    assert_eq!(
        run.dead_letters,
        vec![("18".to_string(), 18), ("12".to_string(), 12)]
    );
}

#[test]
fn a_record_late_for_its_left_window_but_in_an_open_one_is_aggregated_and_not_dropped() {
    // Time difference 10, no grace: at stream time 30, 25's left window [15, 25] is closed,
    // but [20, 30] is open and takes it; its right window [26, 36] holds 30 only.
    let run = run(10, 0, EmitStrategy::OnWindowUpdate, &one_key(&[10, 30, 25]));
    assert_eq!(
        outputs(&run),
        vec![
            o(0, 10, "10", 10),
            o(20, 30, "30", 30),
            o(20, 30, "30+25", 30),
            o(26, 36, "30", 30),
        ]
    );
    assert_eq!(run.late, [], "a record some window took is not dropped");
    assert_eq!(run.dead_letters, []);
}

#[test]
fn emit_on_window_close_forwards_each_final_result_once() {
    let mut input = LATE_INPUT.to_vec();
    input.push(100);
    let run_close = run(10, 5, EmitStrategy::OnWindowClose, &one_key(&input));
    let closed = outputs(&run_close);
    assert_eq!(
        closed,
        vec![
            // At 20 (close time 15): [0, 10].
            o(0, 10, "10", 10),
            // At 30 (close time 25): windows ending before 25.
            o(10, 20, "10+20", 20),
            o(11, 21, "20", 20),
            // At 100: everything else but [90, 100].
            o(17, 27, "20+27", 27),
            o(19, 29, "20+27", 27),
            o(20, 30, "20+30+27", 30),
            o(21, 31, "30+27", 30),
            o(28, 38, "30", 30),
        ]
    );
    assert_eq!(
        run_close.late,
        vec![(18, Window::new(11, 21)), (12, Window::new(2, 12))]
    );
    // Each final result is the last update of that window.
    let updates = run(10, 5, EmitStrategy::OnWindowUpdate, &one_key(&input));
    let mut last: BTreeMap<Window, Out> = BTreeMap::new();
    for out in outputs(&updates) {
        last.insert(out.0, out);
    }
    last.remove(&Window::new(90, 100));
    assert_eq!(closed, last.into_values().collect::<Vec<_>>());
}

#[test]
fn emit_after_window_end_gives_early_results_then_corrections() {
    // Delay 2 < grace 5: a window is due once stream time − 2 reaches end + 1.
    let mut input = LATE_INPUT.to_vec();
    input.push(26);
    let run = run(
        10,
        5,
        EmitStrategy::AfterWindowEnd(Duration::from_millis(2)),
        &one_key(&input),
    );
    assert_eq!(
        outputs(&run),
        vec![
            // Due at 13, emitted at 20.
            o(0, 10, "10", 10),
            // Due at 23, emitted at 30.
            o(10, 20, "10+20", 20),
            o(11, 21, "20", 20),
            // 27 creates [17, 27], due at 30 already: forwarded at once (its other windows
            // are not due yet).
            o(17, 27, "20+27", 27),
            // 26, within grace: corrects the due [17, 27] and creates its due left window.
            o(17, 27, "20+27+26", 27),
            o(16, 26, "20+26", 26),
        ]
    );
}

#[test]
fn keys_have_their_own_windows() {
    let run = run(
        10,
        100,
        EmitStrategy::OnWindowUpdate,
        &[("a", 20), ("b", 25), ("a", 25)],
    );
    assert_eq!(
        run.out,
        vec![
            ("a".to_string(), o(10, 20, "20", 20)),
            ("b".to_string(), o(15, 25, "25", 25)),
            ("a".to_string(), o(21, 31, "25", 25)),
            ("a".to_string(), o(15, 25, "20+25", 25)),
        ]
    );
}

/// The windows of one key's records by definition: each record's left window (`[0, d]` for
/// records before `d`) and each record's right window when a record falls into it, each
/// holding the records within it; the timestamp is the largest of them.
fn expected_windows(records: &[i64], d: i64) -> BTreeMap<Window, (Vec<i64>, i64)> {
    let mut windows = BTreeMap::new();
    for &t in records {
        let left = if t < d {
            Window::new(0, d)
        } else {
            Window::new(t - d, t)
        };
        windows.insert(left, ());
        if records.iter().any(|&r| r > t && r <= t + 1 + d) {
            windows.insert(Window::new(t + 1, t + 1 + d), ());
        }
    }
    windows
        .into_keys()
        .map(|w| {
            let mut inside: Vec<i64> = records
                .iter()
                .copied()
                .filter(|r| (w.start..=w.end).contains(r))
                .collect();
            inside.sort_unstable();
            let max = *inside.last().expect("every window holds a record");
            (w, (inside, max))
        })
        .collect()
}

#[test]
fn random_input_within_grace_gives_exactly_the_windows_of_the_definition() {
    let d = 10;
    let mut seed: u64 = 0x5eed;
    let mut next = |bound: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % bound
    };
    let keys = ["a", "b"];
    let input: Vec<(&str, i64)> = (0..300)
        .map(|_| (keys[next(2) as usize], next(150) as i64))
        .collect();
    let run = run(d as u64, 1_000, EmitStrategy::OnWindowUpdate, &input);
    for key in keys {
        let records: Vec<i64> = input
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, ts)| *ts)
            .collect();
        let mut last: BTreeMap<Window, (Vec<i64>, i64)> = BTreeMap::new();
        for (k, (window, agg, ts)) in &run.out {
            if k == key {
                let mut values: Vec<i64> = agg.split('+').map(|v| v.parse().unwrap()).collect();
                values.sort_unstable();
                last.insert(*window, (values, *ts));
            }
        }
        let expected = expected_windows(&records, d);
        assert_eq!(last.len(), expected.len(), "key {key}: window count");
        for (window, want) in &expected {
            assert_eq!(last.get(window), Some(want), "key {key}, window {window}");
        }
    }
}

#[test]
fn count_and_reduce_use_the_same_windows() {
    let builder = StreamsBuilder::new();
    let stream = builder.stream("in", Consumed::with(StringSerde, I64Serde));
    let windows = SlidingWindows::of_time_difference_with_no_grace(Duration::from_millis(10));
    stream
        .group_by_key()
        .windowed_by(windows)
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(
            "counts",
            Produced::with(WindowedSerde::new(StringSerde), I64Serde),
        );
    stream
        .group_by_key()
        .windowed_by(windows)
        .reduce(|a, b| a + b, Materialized::as_("sums"))
        .to_stream()
        .to(
            "sums",
            Produced::with(WindowedSerde::new(StringSerde), I64Serde),
        );
    let driver = TopologyTestDriver::new(
        builder.build().unwrap(),
        StreamsConfig::new("sliding", "unused"),
    )
    .unwrap();
    let input = driver.input_topic("in", StringSerde, I64Serde);
    input.pipe("k".into(), 1, 20).unwrap();
    input.pipe("k".into(), 2, 25).unwrap();
    let read = |topic: &str| -> Vec<(Window, i64)> {
        driver
            .output_topic(topic, WindowedSerde::new(StringSerde), I64Serde)
            .read_key_values()
            .into_iter()
            .map(|(k, v)| (k.window, v))
            .collect()
    };
    let w = Window::new;
    assert_eq!(
        read("counts"),
        vec![(w(10, 20), 1), (w(21, 31), 1), (w(15, 25), 2)]
    );
    assert_eq!(
        read("sums"),
        vec![(w(10, 20), 1), (w(21, 31), 2), (w(15, 25), 3)]
    );
}

#[test]
fn a_retention_too_short_for_the_algorithm_fails_the_build() {
    let build = |retention_ms: u64| {
        let builder = StreamsBuilder::new();
        builder
            .stream("in", Consumed::with(StringSerde, StringSerde))
            .group_by_key()
            .windowed_by(SlidingWindows::of_time_difference_and_grace(
                Duration::from_millis(10),
                Duration::from_millis(5),
            ))
            .count(Materialized::as_("c").with_retention(Duration::from_millis(retention_ms)))
            .to_stream()
            .to(
                "out",
                Produced::with(WindowedSerde::new(StringSerde), I64Serde),
            );
        builder.build()
    };
    // 2 × 10 + 5 + 2: the window read before a left window must still be there.
    assert!(build(27).is_ok());
    match build(26) {
        Err(StreamsError::Topology(msg)) => assert!(msg.contains("retention"), "{msg}"),
        other => panic!("expected a topology error, got {other:?}"),
    }
}

/// Kafka Streams' `KStreamSlidingWindowAggregateTest.testEarlyRecordsSmallInput` (time
/// difference 50, no grace; its values 1..7 are the timestamps here): every update per
/// window start, and the final results.
#[test]
fn matches_the_kafka_streams_early_records_test() {
    let input = one_key(&[0, 5, 6, 3, 13, 10, 70]);
    let by_start = |run: &Run| {
        let mut windows: BTreeMap<i64, Vec<(String, i64)>> = BTreeMap::new();
        for (_, (window, agg, ts)) in &run.out {
            assert_eq!(window.end - window.start, 50);
            windows
                .entry(window.start)
                .or_default()
                .push((agg.clone(), *ts));
        }
        windows
    };
    let updates = |list: &[(&str, i64)]| -> Vec<(String, i64)> {
        list.iter().map(|(a, t)| (a.to_string(), *t)).collect()
    };
    let expected = BTreeMap::from([
        (
            0,
            updates(&[
                ("0", 0),
                ("0+5", 5),
                ("0+5+6", 6),
                ("0+5+6+3", 6),
                ("0+5+6+3+13", 13),
                ("0+5+6+3+13+10", 13),
            ]),
        ),
        (
            1,
            updates(&[
                ("5", 5),
                ("5+6", 6),
                ("5+6+3", 6),
                ("5+6+3+13", 13),
                ("5+6+3+13+10", 13),
            ]),
        ),
        (4, updates(&[("5+6", 6), ("5+6+13", 13), ("5+6+13+10", 13)])),
        (6, updates(&[("6", 6), ("6+13", 13), ("6+13+10", 13)])),
        (7, updates(&[("13", 13), ("13+10", 13)])),
        (11, updates(&[("13", 13)])),
        (20, updates(&[("70", 70)])),
    ]);
    let on_update = run(50, 0, EmitStrategy::OnWindowUpdate, &input);
    assert_eq!(by_start(&on_update), expected);

    // Final results: the last update of every window ending before 70.
    let on_close = run(50, 0, EmitStrategy::OnWindowClose, &input);
    let mut finals = expected;
    finals.remove(&20);
    for list in finals.values_mut() {
        list.drain(..list.len() - 1);
    }
    assert_eq!(by_start(&on_close), finals);
}
