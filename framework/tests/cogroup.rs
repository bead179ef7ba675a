//! Cogrouping on the test driver: grouped streams of different value types fold into one
//! aggregate per key, in timestamp order, with each input repartitioned on its own after a
//! key change; windowed, both inputs fold into each window and records beyond grace are
//! dropped. The first test follows Kafka Streams' `CogroupedKStreamImplTest`
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
