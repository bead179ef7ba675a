//! Cogrouping on the test driver: grouped streams of different value types fold into one
//! aggregate per key, in timestamp order, with each input repartitioned on its own after a
//! key change; windowed (time, sliding and session windows), both inputs fold into each
//! window and records beyond grace are dropped. The sliding and session tests port Kafka
//! Streams' `SlidingWindowedCogroupedKStreamImplTest` and
//! `SessionWindowedCogroupedKStreamImplTest`. The first test follows Kafka Streams' `CogroupedKStreamImplTest`
//! (`shouldCogroupAndAggregateTwoKStreamsWithDistinctKeys`: adders that append and subtract
//! characters over `""`).

use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::{
    Consumed, Grouped, Materialized, Produced, StreamsBuilder, StreamsConfig, TopologyTestDriver,
};

fn driver(builder: StreamsBuilder) -> TopologyTestDriver {
    TopologyTestDriver::new(
        builder.build().unwrap(),
        StreamsConfig::new("cogroup", "unused"),
    )
    .unwrap()
}

#[test]
fn two_streams_fold_into_one_aggregate_per_key_in_timestamp_order() {
    let builder = StreamsBuilder::new();
    let one = builder
        .stream("one", Consumed::with(StringSerde, StringSerde))
        .group_by_key();
    let two = builder
        .stream("two", Consumed::with(StringSerde, StringSerde))
        .group_by_key();
    one.cogroup(|_k, v: String, agg: String| agg + &v)
        .cogroup(two, |_k, v: String, agg: String| format!("{agg}-{v}"))
        .aggregate(
            String::new,
            Materialized::as_("cogrouped").with_value_serde(StringSerde),
        )
        .to_stream()
        .to("out", Produced::with(StringSerde, StringSerde));
    let driver = driver(builder);
    let one = driver.input_topic("one", StringSerde, StringSerde);
    let two = driver.input_topic("two", StringSerde, StringSerde);
    one.pipe("k1".into(), "A".into(), 0).unwrap();
    one.pipe("k2".into(), "B".into(), 0).unwrap();
    two.pipe("k1".into(), "C".into(), 3).unwrap();
    one.pipe("k1".into(), "D".into(), 1).unwrap();
    two.pipe("k2".into(), "E".into(), 10).unwrap();
    let out: Vec<String> = driver
        .output_topic("out", StringSerde, StringSerde)
        .read_records()
        .into_iter()
        .map(|r| format!("{}:{}@{}", r.key, r.value, r.timestamp))
        .collect();
    // The aggregate's timestamp is the latest of its inputs'.
    assert_eq!(
        out,
        ["k1:A@0", "k2:B@0", "k1:A-C@3", "k1:A-CD@3", "k2:B-E@10"]
    );
    let stored = driver
        .timestamped_key_value_store("cogrouped", StringSerde, StringSerde)
        .unwrap();
    let mut stored: Vec<(String, String)> = stored.into_iter().map(|(k, v, _)| (k, v)).collect();
    stored.sort();
    assert_eq!(
        stored,
        [("k1".into(), "A-CD".into()), ("k2".into(), "B-E".into())]
    );
}

#[test]
fn an_input_whose_key_changed_is_repartitioned_on_its_own() {
    let builder = StreamsBuilder::new();
    let clicks = builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .group_by_key();
    // purchases are keyed by order; the user is in the value
    let purchases = builder
        .stream("purchases", Consumed::with(StringSerde, StringSerde))
        .group_by(
            |_order, user_and_cents: &String| user_and_cents.split(':').next().unwrap().to_string(),
            Grouped::with_serdes(StringSerde, StringSerde).named("purchases-by-user"),
        );
    clicks
        .cogroup(|_user, _page: String, (n, cents): (i64, i64)| (n + 1, cents))
        .cogroup(purchases, |_user, v: String, (n, cents): (i64, i64)| {
            (
                n,
                cents + v.split(':').nth(1).unwrap().parse::<i64>().unwrap(),
            )
        })
        .aggregate(
            || (0, 0),
            Materialized::as_("activity")
                .with_value_serde(streamtime::serdes::BincodeSerde::<(i64, i64)>::new()),
        )
        .to_stream()
        .map_values(|(clicks, cents): (i64, i64)| clicks * 1_000_000 + cents)
        .to("out", Produced::with(StringSerde, I64Serde));
    let topology = builder.build().unwrap();
    let description = topology.describe().to_string();
    assert!(
        description.contains("purchases-by-user-repartition"),
        "{description}"
    );
    assert!(
        !description.contains("activity-cogroup-1-repartition"),
        "clicks keep their key: {description}"
    );
    let driver = TopologyTestDriver::new(topology, StreamsConfig::new("c", "unused")).unwrap();
    driver
        .input_topic("clicks", StringSerde, StringSerde)
        .pipe("ann".into(), "/".into(), 1)
        .unwrap();
    driver
        .input_topic("purchases", StringSerde, StringSerde)
        .pipe("order-9".into(), "ann:250".into(), 2)
        .unwrap();
    let out = driver
        .output_topic("out", StringSerde, I64Serde)
        .read_key_values();
    assert_eq!(out, [("ann".into(), 1_000_000), ("ann".into(), 1_000_250)]);
}

#[test]
fn a_cogroup_without_an_aggregate_serde_fails_the_build_naming_the_store() {
    let builder = StreamsBuilder::new();
    builder
        .stream("one", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .cogroup(|_k, v: String, agg: String| agg + &v)
        .aggregate(String::new, Materialized::as_("no-serde"));
    let Err(err) = builder.build() else {
        panic!("the aggregate needs a serde");
    };
    assert!(err.to_string().contains("cogroup into no-serde"), "{err}");
}

#[test]
fn a_windowed_cogroup_folds_both_inputs_into_each_window_and_drops_what_is_too_late() {
    use std::time::Duration;
    use streamtime::dsl::{TimeWindows, WindowedSerde};
    let builder = StreamsBuilder::new();
    let one = builder
        .stream("one", Consumed::with(StringSerde, StringSerde))
        .group_by_key();
    let two = builder
        .stream("two", Consumed::with(StringSerde, StringSerde))
        .group_by_key();
    one.cogroup(|_k, v: String, agg: String| agg + &v)
        .cogroup(two, |_k, v: String, agg: String| format!("{agg}-{v}"))
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_secs(10),
            Duration::from_secs(5),
        ))
        .aggregate(
            String::new,
            Materialized::as_("per-window").with_value_serde(StringSerde),
        )
        .to_stream()
        .to(
            "out",
            Produced::with(WindowedSerde::new(StringSerde), StringSerde),
        );
    let driver = driver(builder);
    let one = driver.input_topic("one", StringSerde, StringSerde);
    let two = driver.input_topic("two", StringSerde, StringSerde);
    one.pipe("k".into(), "A".into(), 1_000).unwrap();
    two.pipe("k".into(), "B".into(), 2_000).unwrap();
    one.pipe("k".into(), "C".into(), 12_000).unwrap();
    two.pipe("k".into(), "D".into(), 9_000).unwrap();
    // Within grace: [0, 10 s) closes at 15 s.
    one.pipe("k".into(), "E".into(), 4_000).unwrap();
    one.pipe("k".into(), "F".into(), 25_000).unwrap();
    // Too late for [0, 10 s) now that the input's stream time is 25 s.
    one.pipe("k".into(), "G".into(), 3_000).unwrap();
    let out: Vec<String> = driver
        .output_topic("out", WindowedSerde::new(StringSerde), StringSerde)
        .read_records()
        .into_iter()
        .map(|r| {
            format!(
                "{}@{}:{}@{}",
                r.key.key, r.key.window.start, r.value, r.timestamp
            )
        })
        .collect();
    assert_eq!(
        out,
        [
            "k@0:A@1000",
            "k@0:A-B@2000",
            "k@10000:C@12000",
            "k@0:A-B-D@9000",
            "k@0:A-B-DE@9000",
            "k@20000:F@25000",
        ]
    );
    let stored = driver
        .timestamped_window_store("per-window", StringSerde, StringSerde)
        .unwrap();
    // The window store keeps a window size + grace after its start: [0, 10 s) is gone.
    let windows: Vec<(i64, String)> = stored.into_iter().map(|(_, s, v, _)| (s, v)).collect();
    assert_eq!(windows, [(10_000, "C".into()), (20_000, "F".into())]);
}

#[test]
fn a_windowed_cogroup_without_the_aggregate_serde_fails_the_build() {
    use std::time::Duration;
    use streamtime::dsl::TimeWindows;
    let builder = StreamsBuilder::new();
    builder
        .stream("one", Consumed::with(StringSerde, I64Serde))
        .group_by_key()
        .cogroup(|_k, v: i64, agg: i64| agg + v)
        .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_secs(1)))
        .aggregate(|| 0, Materialized::as_("sums"));
    let err = builder.build().expect_err("no serde for the aggregate");
    assert!(err.to_string().contains("sums"), "{err}");
}

/// The cogroup of Kafka Streams' windowed cogroup tests: `one` appends `+v`, `two` appends
/// `-v`, both to an aggregate starting at `"0"`.
fn adder_and_remover(
    builder: &StreamsBuilder,
) -> streamtime::dsl::CogroupedKStream<String, String> {
    let one = builder
        .stream("one", Consumed::with(StringSerde, StringSerde))
        .group_by_key();
    let two = builder
        .stream("two", Consumed::with(StringSerde, StringSerde))
        .group_by_key();
    one.cogroup(|_k, v: String, agg: String| format!("{agg}+{v}"))
        .cogroup(two, |_k, v: String, agg: String| format!("{agg}-{v}"))
}

/// Kafka Streams' `SlidingWindowedCogroupedKStreamImplTest.slidingWindowAggregateStreamsTest`
/// (time difference 500 ms, grace 2 s): every update of every left, right and existing
/// window, in Kafka Streams' order.
#[test]
fn a_sliding_windowed_cogroup_makes_the_windows_of_a_sliding_aggregation() {
    use std::time::Duration;
    use streamtime::dsl::{SlidingWindows, WindowedSerde};
    let builder = StreamsBuilder::new();
    adder_and_remover(&builder)
        .windowed_by(SlidingWindows::of_time_difference_and_grace(
            Duration::from_millis(500),
            Duration::from_secs(2),
        ))
        .aggregate(
            || "0".to_string(),
            Materialized::as_("sliding").with_value_serde(StringSerde),
        )
        .to_stream()
        .to(
            "out",
            Produced::with(WindowedSerde::new(StringSerde), StringSerde),
        );
    let driver = driver(builder);
    let one = driver.input_topic("one", StringSerde, StringSerde);
    for (key, value, ts) in [
        ("k1", "A", 500),
        ("k2", "A", 500),
        ("k2", "A", 501),
        ("k1", "A", 502),
        ("k1", "B", 503),
        ("k2", "B", 503),
        ("k2", "B", 504),
        ("k1", "B", 504),
    ] {
        one.pipe(key.into(), value.into(), ts).unwrap();
    }
    let out: Vec<String> = driver
        .output_topic("out", WindowedSerde::new(StringSerde), StringSerde)
        .read_records()
        .into_iter()
        .map(|r| {
            let w = r.key.window;
            format!(
                "{}[{},{}]:{}@{}",
                r.key.key, w.start, w.end, r.value, r.timestamp
            )
        })
        .collect();
    assert_eq!(
        out,
        [
            "k1[0,500]:0+A@500",
            "k2[0,500]:0+A@500",
            "k2[501,1001]:0+A@501",
            "k2[1,501]:0+A+A@501",
            "k1[501,1001]:0+A@502",
            "k1[2,502]:0+A+A@502",
            "k1[501,1001]:0+A+B@503",
            "k1[503,1003]:0+B@503",
            "k1[3,503]:0+A+A+B@503",
            "k2[501,1001]:0+A+B@503",
            "k2[502,1002]:0+B@503",
            "k2[3,503]:0+A+A+B@503",
            "k2[502,1002]:0+B+B@504",
            "k2[501,1001]:0+A+B+B@504",
            "k2[504,1004]:0+B@504",
            "k2[4,504]:0+A+A+B+B@504",
            "k1[503,1003]:0+B+B@504",
            "k1[501,1001]:0+A+B+B@504",
            "k1[504,1004]:0+B@504",
            "k1[4,504]:0+A+A+B+B@504",
        ]
    );
}

/// Kafka Streams' `SessionWindowedCogroupedKStreamImplTest.sessionWindowMixAggregatorsTest`
/// (gap 100 ms, merger `a+b`): a record joining a session merges the initial aggregate with
/// it first (`0+0+A+A`); each merged-away session is retracted before the merged one is
/// sent.
#[test]
fn a_session_windowed_cogroup_merges_sessions_across_its_inputs() {
    use std::time::Duration;
    use streamtime::dsl::{SessionWindows, WindowedSerde};
    use streamtime::serdes::OptionSerde;
    let builder = StreamsBuilder::new();
    adder_and_remover(&builder)
        .windowed_by(SessionWindows::of_inactivity_gap_and_grace(
            Duration::from_millis(100),
            Duration::from_secs(3600),
        ))
        .aggregate(
            || "0".to_string(),
            |_k, a: String, b: String| format!("{a}+{b}"),
            Materialized::as_("sessions").with_value_serde(StringSerde),
        )
        .to_stream()
        .to(
            "out",
            Produced::with(WindowedSerde::new(StringSerde), OptionSerde(StringSerde)),
        );
    let driver = driver(builder);
    let one = driver.input_topic("one", StringSerde, StringSerde);
    let two = driver.input_topic("two", StringSerde, StringSerde);
    one.pipe("k1".into(), "A".into(), 0).unwrap();
    one.pipe("k11".into(), "A".into(), 0).unwrap();
    one.pipe("k11".into(), "A".into(), 1).unwrap();
    one.pipe("k1".into(), "A".into(), 2).unwrap();
    two.pipe("k1".into(), "B".into(), 3).unwrap();
    two.pipe("k11".into(), "B".into(), 3).unwrap();
    two.pipe("k11".into(), "B".into(), 444).unwrap();
    two.pipe("k1".into(), "B".into(), 444).unwrap();
    let out: Vec<String> = driver
        .output_topic(
            "out",
            WindowedSerde::new(StringSerde),
            OptionSerde(StringSerde),
        )
        .read_records()
        .into_iter()
        .map(|r| {
            let w = r.key.window;
            let value = r.value.unwrap_or_else(|| "-".into());
            format!(
                "{}[{},{}]:{value}@{}",
                r.key.key, w.start, w.end, r.timestamp
            )
        })
        .collect();
    assert_eq!(
        out,
        [
            "k1[0,0]:0+A@0",
            "k11[0,0]:0+A@0",
            "k11[0,0]:-@0",
            "k11[0,1]:0+0+A+A@1",
            "k1[0,0]:-@0",
            "k1[0,2]:0+0+A+A@2",
            "k1[0,2]:-@2",
            "k1[0,3]:0+0+0+A+A-B@3",
            "k11[0,1]:-@1",
            "k11[0,3]:0+0+0+A+A-B@3",
            "k11[444,444]:0-B@444",
            "k1[444,444]:0-B@444",
        ]
    );
    let mut stored = driver
        .session_store_entries("sessions", StringSerde, StringSerde)
        .unwrap();
    stored.sort();
    assert_eq!(
        stored,
        [
            ("k1".into(), 0, 3, "0+0+0+A+A-B".into()),
            ("k1".into(), 444, 444, "0-B".into()),
            ("k11".into(), 0, 3, "0+0+0+A+A-B".into()),
            ("k11".into(), 444, 444, "0-B".into()),
        ]
    );
}
