//! DSL aggregations on the test driver: counts, reductions and aggregates per key, their
//! output timestamps, repartitioning before grouping, the changelog they write (or not, with
//! logging off), and typed reads of their key-value, window and session stores.

use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::{
    Consumed, Grouped, Materialized, Produced, StreamsBuilder, StreamsConfig, TopologyTestDriver,
};

fn config() -> StreamsConfig {
    StreamsConfig::new("agg", "unused")
}

#[test]
fn count_after_a_key_change_repartitions_and_counts_per_key() {
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .group_by(|_user, page: &String| page.clone(), Grouped::as_("by-page"))
        .count(Materialized::as_("page-counts"))
        .to_stream()
        .to("page-counts", Produced::with(StringSerde, I64Serde));
    let topology = builder.build().unwrap();
    let description = topology.describe().to_string();
    assert!(description.contains("Sub-topology: 1"), "{description}");
    assert!(description.contains("by-page-repartition"), "{description}");
    assert!(
        description.contains("(stores: [page-counts])"),
        "{description}"
    );

    let driver = TopologyTestDriver::with_partitions(topology, config(), &[("clicks", 2)]).unwrap();
    let clicks = driver.input_topic("clicks", StringSerde, StringSerde);
    let pages = ["home", "cart", "home", "faq", "home", "cart"];
    for (i, page) in pages.iter().enumerate() {
        clicks
            .pipe(format!("user-{i}"), page.to_string(), 100 * i as i64)
            .unwrap();
    }
    let out = driver
        .output_topic("page-counts", StringSerde, I64Serde)
        .read_records();
    let mut last = std::collections::BTreeMap::new();
    for r in &out {
        last.insert(r.key.clone(), r.value);
    }
    assert_eq!(last.get("home"), Some(&3));
    assert_eq!(last.get("cart"), Some(&2));
    assert_eq!(last.get("faq"), Some(&1));
    assert_eq!(out.len(), pages.len(), "one update per record (no cache)");

    // The store holds the same counts, and every update went to the changelog.
    let stored = driver
        .timestamped_key_value_store("page-counts", StringSerde, I64Serde)
        .unwrap();
    let mut counts: Vec<(String, i64)> = stored.into_iter().map(|(k, n, _)| (k, n)).collect();
    counts.sort();
    assert_eq!(
        counts,
        vec![("cart".into(), 2), ("faq".into(), 1), ("home".into(), 3)]
    );
    let changelog = driver.raw_records("agg-page-counts-changelog");
    assert_eq!(changelog.len(), pages.len());
    assert!(changelog
        .iter()
        .all(|r| r.key.is_some() && r.value.is_some()));
}

#[test]
fn aggregate_timestamps_are_the_max_of_record_and_previous_aggregate() {
    let builder = StreamsBuilder::new();
    builder
        .stream("amounts", Consumed::with(StringSerde, I64Serde))
        .group_by_key()
        .reduce(|a, b| a + b, Materialized::as_("sums"))
        .to_stream()
        .to("sums", Produced::default());
    let topology = builder.build().unwrap();
    assert!(
        !topology.describe().to_string().contains("repartition"),
        "no key change, no repartition"
    );
    let driver = TopologyTestDriver::new(topology, config()).unwrap();
    let input = driver.input_topic("amounts", StringSerde, I64Serde);
    input.pipe("a".into(), 5, 1_000).unwrap();
    input.pipe("a".into(), 7, 400).unwrap(); // late: the aggregate keeps 1000
    input.pipe("a".into(), 1, 2_000).unwrap();
    input.pipe("b".into(), 2, 10).unwrap();
    let out: Vec<(String, i64, i64)> = driver
        .output_topic("sums", StringSerde, I64Serde)
        .read_records()
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    assert_eq!(
        out,
        vec![
            ("a".into(), 5, 1_000),
            ("a".into(), 12, 1_000),
            ("a".into(), 13, 2_000),
            ("b".into(), 2, 10)
        ]
    );
}

#[test]
fn aggregate_folds_from_the_initializer() {
    let builder = StreamsBuilder::new();
    builder
        .stream("words", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .aggregate(
            String::new,
            |_k, word: String, acc: String| {
                if acc.is_empty() {
                    word
                } else {
                    format!("{acc},{word}")
                }
            },
            Materialized::as_("joined")
                .with_value_serde(StringSerde)
                .in_memory(),
        )
        .to_stream()
        .to("joined", Produced::default());
    let driver = TopologyTestDriver::new(builder.build().unwrap(), config()).unwrap();
    let input = driver.input_topic("words", StringSerde, StringSerde);
    for (i, w) in ["x", "y", "z"].iter().enumerate() {
        input.pipe("k".into(), w.to_string(), i as i64).unwrap();
    }
    let values: Vec<String> = driver
        .output_topic("joined", StringSerde, StringSerde)
        .read_key_values()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(values, vec!["x", "x,y", "x,y,z"]);
}

#[test]
fn an_aggregate_without_a_serde_is_a_build_error() {
    let builder = StreamsBuilder::new();
    builder
        .stream("words", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .aggregate(
            Vec::<u8>::new,
            |_k, _w, acc| acc,
            Materialized::as_("bytes"),
        )
        .to_stream()
        .to(
            "out",
            Produced::with(StringSerde, streamtime::serdes::BytesSerde),
        );
    let err = builder.build().unwrap_err().to_string();
    assert!(err.contains("bytes") && err.contains("serde"), "{err}");
}

#[test]
fn a_store_materialized_without_logging_writes_no_changelog_and_still_aggregates() {
    let builder = StreamsBuilder::new();
    let clicks = builder.stream("clicks", Consumed::with(StringSerde, StringSerde));
    clicks.group_by_key().count(Materialized::as_("logged"));
    clicks
        .group_by_key()
        .count(Materialized::as_("unlogged").with_logging(false));
    let driver = TopologyTestDriver::new(builder.build().unwrap(), config()).unwrap();
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe("ann".into(), "/".into(), 1).unwrap();
    input.pipe("ann".into(), "/faq".into(), 2).unwrap();
    assert_eq!(driver.raw_records("agg-logged-changelog").len(), 2);
    assert!(driver.raw_records("agg-unlogged-changelog").is_empty());
    for store in ["logged", "unlogged"] {
        let rows = driver
            .timestamped_key_value_store(store, StringSerde, I64Serde)
            .unwrap();
        assert_eq!(rows, [("ann".to_string(), 2, 2)], "{store}");
    }
}

#[test]
fn the_driver_reads_window_and_session_stores_with_typed_keys_values_and_timestamps() {
    use std::time::Duration;
    use streamtime::dsl::{SessionWindows, TimeWindows};
    let builder = StreamsBuilder::new();
    let clicks = builder.stream("clicks", Consumed::with(StringSerde, StringSerde));
    clicks
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_millis(
            10,
        )))
        .count(Materialized::as_("per-10ms").with_retention(Duration::from_secs(1)));
    clicks
        .group_by_key()
        .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(
            Duration::from_millis(5),
        ))
        .count(Materialized::as_("sessions").with_retention(Duration::from_secs(1)));
    let driver = TopologyTestDriver::new(builder.build().unwrap(), config()).unwrap();
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    for ts in [1, 3, 12, 30] {
        input.pipe("ann".into(), "/".into(), ts).unwrap();
    }
    let windows = driver
        .timestamped_window_store("per-10ms", StringSerde, I64Serde)
        .unwrap();
    let ann = |start, n, ts| ("ann".to_string(), start, n, ts);
    assert_eq!(windows, [ann(0, 2, 3), ann(10, 1, 12), ann(30, 1, 30)]);
    let sessions = driver
        .session_store_entries("sessions", StringSerde, I64Serde)
        .unwrap();
    assert_eq!(sessions, [ann(1, 3, 2), ann(12, 12, 1), ann(30, 30, 1)]);
    let wrong_kind = driver
        .session_store_entries("per-10ms", StringSerde, I64Serde)
        .unwrap_err()
        .to_string();
    assert!(
        wrong_kind.contains("no task has a session store called per-10ms"),
        "{wrong_kind}"
    );
}

#[test]
fn an_aggregation_into_a_store_name_already_taken_fails_the_build_with_an_error() {
    let builder = StreamsBuilder::new();
    let clicks = builder.stream("clicks", Consumed::with(StringSerde, StringSerde));
    clicks.group_by_key().count(Materialized::as_("counts"));
    clicks.group_by_key().count(Materialized::as_("counts"));
    let err = builder.build().unwrap_err().to_string();
    assert!(err.contains("store counts is already defined"), "{err}");
}
