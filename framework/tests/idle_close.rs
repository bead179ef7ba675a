//! Closing emit-final windows on a quiet stream (`EmitStrategy::OnWindowCloseOrIdle`) on the
//! test driver, whose wall clock drives it: once no record has advanced an operator's stream
//! time for the idle time, windows whose end plus grace is behind the wall clock minus the
//! allowed lateness are emitted once, and records for them arriving later are late. Without
//! it the last windows of a stream that stops are never emitted, as in Kafka Streams.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use streamtime::dsl::{EmitStrategy, SessionWindows, SlidingWindows, TimeWindows, WindowedSerde};
use streamtime::serdes::{I64Serde, OptionSerde, StringSerde};
use streamtime::{
    Consumed, Materialized, Produced, StreamsBuilder, StreamsConfig, TopologyTestDriver,
};

const SECOND: i64 = 1_000;

/// Idle 30 s, events at most 5 s behind the wall clock.
fn idle_close() -> EmitStrategy {
    EmitStrategy::OnWindowCloseOrIdle {
        idle: Duration::from_secs(30),
        allowed_lateness: Duration::from_secs(5),
    }
}

/// A count per key in tumbling windows of 10 s with 2 s of grace, emitted as `emit` says;
/// the timestamps of the records dropped as late go to `late`.
fn tumbling(emit: EmitStrategy, late: Arc<Mutex<Vec<i64>>>) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_secs(10),
            Duration::from_secs(2),
        ))
        .emit(emit)
        .on_late(move |l| late.lock().unwrap().push(l.record.timestamp))
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(
            "counts",
            Produced::with(WindowedSerde::new(StringSerde), I64Serde),
        );
    let config = StreamsConfig::new("idle-close", "unused");
    TopologyTestDriver::new(builder.build().unwrap(), config).unwrap()
}

fn pipe(driver: &TopologyTestDriver, timestamps: &[i64]) {
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    for ts in timestamps {
        input.pipe("k".into(), String::new(), *ts).unwrap();
    }
}

/// `(window start, count)` of the windows emitted since the last call.
fn emitted(driver: &TopologyTestDriver) -> Vec<(i64, i64)> {
    driver
        .output_topic("counts", WindowedSerde::new(StringSerde), I64Serde)
        .read_records()
        .into_iter()
        .map(|r| (r.key.window.start, r.value))
        .collect()
}

fn advance(driver: &TopologyTestDriver, seconds: u64) {
    driver
        .advance_wall_clock(Duration::from_secs(seconds))
        .unwrap();
}

#[test]
fn the_last_window_of_a_stream_that_stops_is_emitted_once_the_stream_was_idle_long_enough() {
    let late = Arc::new(Mutex::new(Vec::new()));
    let driver = tumbling(idle_close(), late.clone());
    pipe(&driver, &[SECOND, 5 * SECOND, 12 * SECOND]);
    assert_eq!(
        emitted(&driver),
        [(0, 2)],
        "[0, 10 s) closed by stream time"
    );
    advance(&driver, 29);
    assert_eq!(emitted(&driver), [], "idle for 29 s of the 30");
    advance(&driver, 2);
    // Wall clock 31 s: stream time moves to 26 s, which closes [10 s, 20 s).
    assert_eq!(emitted(&driver), [(10 * SECOND, 1)]);
    advance(&driver, 600);
    assert_eq!(emitted(&driver), [], "each window is emitted once");
    // A record for the window closed by the wall clock is late; a later one is not.
    pipe(&driver, &[15 * SECOND, 700 * SECOND]);
    assert_eq!(*late.lock().unwrap(), [15 * SECOND]);
    assert_eq!(emitted(&driver), [], "[700 s, 710 s) is open");
}

#[test]
fn without_idle_close_the_last_window_of_a_stream_that_stops_is_never_emitted() {
    let driver = tumbling(EmitStrategy::OnWindowClose, Arc::default());
    pipe(&driver, &[SECOND, 5 * SECOND, 12 * SECOND]);
    assert_eq!(emitted(&driver), [(0, 2)]);
    advance(&driver, 3_600);
    assert_eq!(emitted(&driver), [], "as in Kafka Streams");
}

#[test]
fn idle_time_counts_from_the_last_record_that_advanced_stream_time() {
    let driver = tumbling(idle_close(), Arc::default());
    pipe(&driver, &[12 * SECOND]);
    advance(&driver, 25);
    pipe(&driver, &[13 * SECOND]);
    advance(&driver, 29);
    assert_eq!(emitted(&driver), [], "29 s since 13 s advanced stream time");
    // A record that does not advance stream time does not hold the close back.
    pipe(&driver, &[11 * SECOND]);
    advance(&driver, 2);
    assert_eq!(emitted(&driver), [(10 * SECOND, 3)]);
}

#[test]
fn session_and_sliding_windows_close_on_a_quiet_stream_too() {
    let builder = StreamsBuilder::new();
    let clicks = builder.stream("clicks", Consumed::with(StringSerde, StringSerde));
    clicks
        .group_by_key()
        .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(
            Duration::from_secs(5),
        ))
        .emit(idle_close())
        .count(Materialized::as_("sessions"))
        .to_stream()
        .to(
            "sessions",
            Produced::with(WindowedSerde::new(StringSerde), OptionSerde(I64Serde)),
        );
    clicks
        .group_by_key()
        .windowed_by(SlidingWindows::of_time_difference_with_no_grace(
            Duration::from_secs(10),
        ))
        .emit(idle_close())
        .count(Materialized::as_("sliding"))
        .to_stream()
        .to(
            "sliding",
            Produced::with(WindowedSerde::new(StringSerde), I64Serde),
        );
    let config = StreamsConfig::new("idle-close", "unused");
    let driver = TopologyTestDriver::new(builder.build().unwrap(), config).unwrap();
    pipe(&driver, &[SECOND, 3 * SECOND]);
    let sessions = |driver: &TopologyTestDriver| -> Vec<(i64, i64, Option<i64>)> {
        driver
            .output_topic(
                "sessions",
                WindowedSerde::new(StringSerde),
                OptionSerde(I64Serde),
            )
            .read_records()
            .into_iter()
            .map(|r| (r.key.window.start, r.key.window.end, r.value))
            .collect()
    };
    let sliding = |driver: &TopologyTestDriver| -> Vec<(i64, i64, i64)> {
        driver
            .output_topic("sliding", WindowedSerde::new(StringSerde), I64Serde)
            .read_records()
            .into_iter()
            .map(|r| (r.key.window.start, r.key.window.end, r.value))
            .collect()
    };
    advance(&driver, 29);
    assert_eq!(sessions(&driver), []);
    assert_eq!(sliding(&driver), []);
    advance(&driver, 2);
    assert_eq!(sessions(&driver), [(SECOND, 3 * SECOND, Some(2))]);
    assert_eq!(
        sliding(&driver),
        [(0, 10 * SECOND, 2), (SECOND + 1, 11 * SECOND + 1, 1)],
        "[0, 10 s] holds both records, 1 s's right window the one at 3 s"
    );
}
