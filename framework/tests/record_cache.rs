//! The record cache on the test driver: between commits an aggregation's or a table's
//! updates of a key fold into one, sent downstream at the commit (the driver commits after
//! each piped record, or after `release` of records piped while held) or when the cache
//! overflows, as Kafka Streams' `statestore.cache.max.bytes` does, for key-value, window
//! (time and sliding) and session stores alike; with no cache, or a store that opts out, every update goes downstream.

use std::time::Duration;

use streamtime::dsl::{SessionWindows, SlidingWindows, TimeWindows, WindowedSerde};
use streamtime::serdes::{I64Serde, OptionSerde, StringSerde};
use streamtime::{
    Consumed, Grouped, Headers, Materialized, Produced, Record, StreamsBuilder, StreamsConfig,
    TopologyTestDriver,
};

/// `words` (key: word) counted per word into `counts`.
fn word_count(config: StreamsConfig, counts: Materialized<String, i64>) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    builder
        .stream("words", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .count(counts)
        .to_stream()
        .to("counts", Produced::with(StringSerde, I64Serde));
    TopologyTestDriver::new(builder.build().unwrap(), config).unwrap()
}

fn config() -> StreamsConfig {
    StreamsConfig::new("record-cache", "unused")
}

/// Pipes `words` while the driver holds them, then processes them all before one commit.
fn pipe_between_commits(driver: &TopologyTestDriver, words: &[&str]) {
    let input = driver.input_topic("words", StringSerde, StringSerde);
    driver.hold();
    for (i, w) in words.iter().enumerate() {
        input.pipe(w.to_string(), String::new(), i as i64).unwrap();
    }
    driver.release().unwrap();
}

fn counts(driver: &TopologyTestDriver) -> Vec<(String, i64, i64)> {
    driver
        .output_topic("counts", StringSerde, I64Serde)
        .read_records()
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect()
}

fn count(word: &str, n: i64, ts: i64) -> (String, i64, i64) {
    (word.to_string(), n, ts)
}

#[test]
fn a_count_sends_one_update_per_key_per_commit_in_the_order_of_the_last_updates() {
    let driver = word_count(config(), Materialized::as_("counts"));
    pipe_between_commits(&driver, &["a", "b", "a", "c", "a", "b"]);
    assert_eq!(
        counts(&driver),
        vec![count("c", 1, 3), count("a", 3, 4), count("b", 2, 5)],
        "each key's last count, stamped with its last update, in last-update order"
    );
    // The next commit sends only what changed since; a count keeps the time of its latest
    // update, also when later records carry earlier times.
    pipe_between_commits(&driver, &["c", "c"]);
    assert_eq!(counts(&driver), vec![count("c", 3, 3)]);
}

#[test]
fn without_a_cache_or_with_caching_off_for_the_store_every_update_goes_downstream() {
    let every_update = vec![
        count("a", 1, 0),
        count("b", 1, 1),
        count("a", 2, 2),
        count("b", 2, 3),
    ];
    let words = ["a", "b", "a", "b"];
    let driver = word_count(config().cache_max_bytes(0), Materialized::as_("counts"));
    pipe_between_commits(&driver, &words);
    assert_eq!(counts(&driver), every_update);
    let driver = word_count(config(), Materialized::as_("counts").with_caching(false));
    pipe_between_commits(&driver, &words);
    assert_eq!(counts(&driver), every_update);
}

#[test]
fn a_cache_too_small_for_every_key_sends_evicted_counts_early_and_loses_none() {
    // Entries count about 85 bytes: three fit. A hot key written every other record stays
    // cached; five cold keys take turns in the other two places, each evicted (and sent)
    // before it comes round again.
    let driver = word_count(config().cache_max_bytes(300), Materialized::as_("counts"));
    let words: Vec<String> = (0..40)
        .map(|i| match i % 2 {
            0 => "hot".to_string(),
            _ => format!("cold{}", (i / 2) % 5),
        })
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    pipe_between_commits(&driver, &words);
    let out = counts(&driver);
    let of = |key: &str| -> Vec<i64> { out.iter().filter(|c| c.0 == key).map(|c| c.1).collect() };
    assert_eq!(of("hot"), vec![20], "the hot key folds into one update");
    for cold in 0..5 {
        let key = format!("cold{cold}");
        assert_eq!(
            of(&key),
            vec![1, 2, 3, 4],
            "{key}: each eviction sent its count"
        );
    }
}

#[test]
fn a_folded_update_carries_the_headers_of_the_last_record_that_changed_it() {
    let driver = word_count(config(), Materialized::as_("counts"));
    let input = driver.input_topic("words", StringSerde, StringSerde);
    driver.hold();
    for (i, trace) in ["t1", "t2", "t3"].iter().enumerate() {
        let headers = Headers::new().with("trace", trace.as_bytes());
        let record = Record {
            headers,
            ..Record::new("a".to_string(), String::new(), i as i64)
        };
        input.pipe_record(record, None).unwrap();
    }
    input.pipe("b".into(), String::new(), 9).unwrap();
    driver.release().unwrap();
    let out = driver
        .output_topic("counts", StringSerde, I64Serde)
        .read_records();
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].key.as_str(), out[0].value), ("a", 3));
    assert_eq!(out[0].headers.last("trace"), Some(&b"t3"[..]));
    assert_eq!((out[1].key.as_str(), out[1].value), ("b", 1));
    assert!(out[1].headers.is_empty(), "b's record had no headers");
}

#[test]
fn a_table_folds_its_updates_and_sends_nothing_for_a_row_added_and_deleted_between_commits() {
    let builder = StreamsBuilder::new();
    builder
        .table(
            "prices",
            Consumed::with(StringSerde, I64Serde),
            Materialized::as_("prices"),
        )
        .to_change_stream()
        .to(
            "changes",
            Produced::with(StringSerde, OptionSerde(I64Serde)),
        );
    let driver = TopologyTestDriver::new(builder.build().unwrap(), config()).unwrap();
    let input = driver.input_topic("prices", StringSerde, OptionSerde(I64Serde));
    input.pipe("tv".into(), Some(400), 1).unwrap();
    driver.hold();
    input.pipe("tv".into(), Some(390), 2).unwrap();
    input.pipe("tv".into(), Some(380), 3).unwrap();
    input.pipe("pen".into(), Some(2), 4).unwrap();
    input.pipe("pen".into(), None, 5).unwrap();
    input.pipe("tv".into(), None, 6).unwrap();
    driver.release().unwrap();
    let changes: Vec<(String, Option<i64>, i64)> = driver
        .output_topic("changes", StringSerde, OptionSerde(I64Serde))
        .read_records()
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    assert_eq!(
        changes,
        vec![
            ("tv".to_string(), Some(400), 1),
            // The held updates: tv's three fold into its deletion; pen never reached the
            // store, so its addition and deletion send nothing.
            ("tv".to_string(), None, 6),
        ]
    );
}

#[test]
fn a_grouped_table_count_folds_the_moves_of_one_commit_through_its_repartition_topic() {
    let builder = StreamsBuilder::new();
    builder
        .table(
            "users",
            Consumed::with(StringSerde, StringSerde),
            Materialized::as_("users"),
        )
        .group_by(
            |_user, region: &String| (region.clone(), ()),
            Grouped::with_serdes(StringSerde, streamtime::serdes::UnitSerde).named("by-region"),
        )
        .count(Materialized::as_("region-counts"))
        .to_stream()
        .to("counts", Produced::with(StringSerde, I64Serde));
    let driver = TopologyTestDriver::new(builder.build().unwrap(), config()).unwrap();
    let input = driver.input_topic("users", StringSerde, StringSerde);
    driver.hold();
    for (i, (user, region)) in [("ann", "eu"), ("bob", "eu"), ("ann", "us"), ("cy", "us")]
        .iter()
        .enumerate()
    {
        input
            .pipe(user.to_string(), region.to_string(), i as i64)
            .unwrap();
    }
    driver.release().unwrap();
    // The users table sends bob's, ann's (last: us) and cy's rows once each; the counts
    // store folds what they do to each region.
    assert_eq!(counts(&driver), vec![count("eu", 1, 1), count("us", 2, 3)]);
}

#[test]
fn a_table_join_sends_one_result_per_key_per_commit_and_none_for_a_result_made_and_undone() {
    let builder = StreamsBuilder::new();
    let prices = builder.table(
        "prices",
        Consumed::with(StringSerde, I64Serde),
        Materialized::as_("prices"),
    );
    let stock = builder.table(
        "stock",
        Consumed::with(StringSerde, I64Serde),
        Materialized::as_("stock"),
    );
    prices
        .join(
            &stock,
            |price: &i64, units: &i64| price * units,
            Materialized::as_("worth").with_value_serde(I64Serde),
        )
        .to_change_stream()
        .to("worth", Produced::with(StringSerde, OptionSerde(I64Serde)));
    let driver = TopologyTestDriver::new(builder.build().unwrap(), config()).unwrap();
    let prices = driver.input_topic("prices", StringSerde, OptionSerde(I64Serde));
    let stock = driver.input_topic("stock", StringSerde, OptionSerde(I64Serde));
    driver.hold();
    prices.pipe("tv".into(), Some(400), 1).unwrap();
    stock.pipe("tv".into(), Some(2), 2).unwrap();
    prices.pipe("tv".into(), Some(390), 3).unwrap();
    prices.pipe("pen".into(), Some(2), 4).unwrap();
    stock.pipe("pen".into(), Some(10), 5).unwrap();
    stock.pipe("pen".into(), None, 6).unwrap();
    driver.release().unwrap();
    let changes: Vec<(String, Option<i64>, i64)> = driver
        .output_topic("worth", StringSerde, OptionSerde(I64Serde))
        .read_records()
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    // tv's two results fold into the last; pen's result was made and undone before the
    // commit, so nothing is said about it.
    assert_eq!(changes, [("tv".to_string(), Some(780), 3)]);
}

/// `clicks` counted per key in hopping windows (10 s, advancing 5 s), every update emitted.
fn hopping_count(config: StreamsConfig) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .windowed_by(
            TimeWindows::of_size_and_grace(Duration::from_secs(10), Duration::from_secs(60))
                .advance_by(Duration::from_secs(5)),
        )
        .count(Materialized::as_("hopping-counts"))
        .to_stream()
        .to(
            "window-counts",
            Produced::with(WindowedSerde::new(StringSerde), I64Serde),
        );
    let topology = builder.build().unwrap();
    TopologyTestDriver::new(topology, config).unwrap()
}

#[test]
fn a_windowed_count_sends_one_update_per_key_and_window_per_commit() {
    let clicks = [("a", 1_000), ("a", 6_000), ("b", 7_000), ("a", 8_000)];
    let run = |config: StreamsConfig| -> Vec<(String, i64, i64, i64)> {
        let driver = hopping_count(config);
        let input = driver.input_topic("clicks", StringSerde, StringSerde);
        driver.hold();
        for (key, ts) in clicks {
            input.pipe(key.to_string(), String::new(), ts).unwrap();
        }
        driver.release().unwrap();
        driver
            .output_topic("window-counts", WindowedSerde::new(StringSerde), I64Serde)
            .read_records()
            .into_iter()
            .map(|r| (r.key.key, r.key.window.start, r.value, r.timestamp))
            .collect()
    };
    let update = |key: &str, start, n, ts| (key.to_string(), start, n, ts);
    assert_eq!(
        run(config()),
        vec![
            update("b", 0, 1, 7_000),
            update("b", 5_000, 1, 7_000),
            update("a", 0, 3, 8_000),
            update("a", 5_000, 2, 8_000),
        ],
        "each window's last count, stamped with its latest record, in last-update order"
    );
    assert_eq!(
        run(config().cache_max_bytes(0)),
        vec![
            update("a", 0, 1, 1_000),
            update("a", 0, 2, 6_000),
            update("a", 5_000, 1, 6_000),
            update("b", 0, 1, 7_000),
            update("b", 5_000, 1, 7_000),
            update("a", 0, 3, 8_000),
            update("a", 5_000, 2, 8_000),
        ],
        "without a cache every update goes downstream"
    );
}

/// `clicks` counted per key in sliding windows of 10 ms, every update emitted.
fn sliding_updates(config: StreamsConfig, clicks: &[i64]) -> Vec<(i64, i64, i64, i64)> {
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .windowed_by(SlidingWindows::of_time_difference_and_grace(
            Duration::from_millis(10),
            Duration::from_secs(60),
        ))
        .count(Materialized::as_("sliding-counts"))
        .to_stream()
        .to(
            "sliding-counts",
            Produced::with(WindowedSerde::new(StringSerde), I64Serde),
        );
    let driver = TopologyTestDriver::new(builder.build().unwrap(), config).unwrap();
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    driver.hold();
    for ts in clicks {
        input.pipe("a".to_string(), String::new(), *ts).unwrap();
    }
    driver.release().unwrap();
    driver
        .output_topic("sliding-counts", WindowedSerde::new(StringSerde), I64Serde)
        .read_records()
        .into_iter()
        .map(|r| (r.key.window.start, r.key.window.end, r.value, r.timestamp))
        .collect()
}

#[test]
fn a_sliding_window_count_sends_one_update_per_window_per_commit() {
    let clicks = [20, 25, 27];
    assert_eq!(
        sliding_updates(config().cache_max_bytes(0), &clicks),
        [
            (10, 20, 1, 20),
            (21, 31, 1, 25),
            (15, 25, 2, 25),
            (21, 31, 2, 27),
            (26, 36, 1, 27),
            (17, 27, 3, 27),
        ],
        "without a cache every update goes downstream"
    );
    assert_eq!(
        sliding_updates(config(), &clicks),
        [
            (10, 20, 1, 20),
            (15, 25, 2, 25),
            (21, 31, 2, 27),
            (26, 36, 1, 27),
            (17, 27, 3, 27),
        ],
        "[21, 31] sends only its last count, each window in last-update order"
    );
}

/// `clicks` counted per key in sessions with a 10 s gap, every update emitted.
fn session_count(config: StreamsConfig) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .windowed_by(SessionWindows::of_inactivity_gap_and_grace(
            Duration::from_secs(10),
            Duration::from_secs(60),
        ))
        .count(Materialized::as_("session-counts"))
        .to_stream()
        .to(
            "session-counts",
            Produced::with(WindowedSerde::new(StringSerde), OptionSerde(I64Serde)),
        );
    TopologyTestDriver::new(builder.build().unwrap(), config).unwrap()
}

type SessionUpdate = (i64, i64, Option<i64>, i64);

/// Pipes each batch of click times (key `u`) between two commits; the updates sent.
fn sessions_per_commit(config: StreamsConfig, batches: &[&[i64]]) -> Vec<SessionUpdate> {
    let driver = session_count(config);
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    for batch in batches {
        driver.hold();
        for ts in *batch {
            input.pipe("u".to_string(), String::new(), *ts).unwrap();
        }
        driver.release().unwrap();
    }
    driver
        .output_topic(
            "session-counts",
            WindowedSerde::new(StringSerde),
            OptionSerde(I64Serde),
        )
        .read_records()
        .into_iter()
        .map(|r| (r.key.window.start, r.key.window.end, r.value, r.timestamp))
        .collect()
}

#[test]
fn a_session_count_sends_one_update_per_commit_and_no_retraction_of_a_session_never_sent() {
    let batches: [&[i64]; 2] = [&[0, 5_000, 8_000], &[12_000]];
    assert_eq!(
        sessions_per_commit(config(), &batches),
        vec![
            // [0, 0] and [0, 5 s] were made and merged away before the first commit.
            (0, 8_000, Some(3), 8_000),
            (0, 8_000, None, 8_000),
            (0, 12_000, Some(4), 12_000),
        ],
        "each session at its end; a session sent is retracted when merged away"
    );
    assert_eq!(
        sessions_per_commit(config().cache_max_bytes(0), &batches),
        vec![
            (0, 0, Some(1), 0),
            (0, 0, None, 0),
            (0, 5_000, Some(2), 5_000),
            (0, 5_000, None, 5_000),
            (0, 8_000, Some(3), 8_000),
            (0, 8_000, None, 8_000),
            (0, 12_000, Some(4), 12_000),
        ],
        "without a cache every session update and retraction goes downstream"
    );
}
