//! Grouped tables on the test driver: `KTable::group_by` with `count`, `reduce` and
//! `aggregate`, where a row's old value leaves its group before its new value joins one.
//!
//! The expected outputs of the first four tests are those of Kafka Streams' own
//! `KTableAggregateTest` (`testAggBasic`, `testAggRepartition`, `testCount`,
//! `testRemoveOldBeforeAddNew`), without its record cache (every update is forwarded) and
//! without the null keys a Rust selector cannot return.

use streamtime::serdes::{I64Serde, OptionSerde, StringSerde, UnitSerde};
use streamtime::{
    Consumed, Grouped, KTable, Materialized, Produced, StreamsBuilder, StreamsConfig,
    TopologyTestDriver,
};

fn table(builder: &StreamsBuilder) -> KTable<String, String> {
    builder.table(
        "input",
        Consumed::with(StringSerde, StringSerde),
        Materialized::as_("input-table"),
    )
}

fn driver(builder: StreamsBuilder) -> TopologyTestDriver {
    TopologyTestDriver::new(
        builder.build().unwrap(),
        StreamsConfig::new("grouped-tables", "unused").cache_max_bytes(0),
    )
    .unwrap()
}

/// Kafka Streams' `MockAggregator.TOSTRING_ADDER` / `TOSTRING_REMOVER` over `"0"`.
fn to_string_aggregate(
    grouped: streamtime::KGroupedTable<String, String>,
) -> KTable<String, String> {
    grouped.aggregate(
        || "0".to_string(),
        |_k, v, agg| format!("{agg}+{v}"),
        |_k, v, agg| format!("{agg}-{v}"),
        Materialized::as_("aggregate").with_value_serde(StringSerde),
    )
}

fn pipe_all(driver: &TopologyTestDriver, rows: &[(&str, Option<&str>)]) {
    let input = driver.input_topic("input", StringSerde, OptionSerde(StringSerde));
    for (i, (k, v)) in rows.iter().enumerate() {
        input
            .pipe(k.to_string(), v.map(str::to_string), 10 * (i as i64 + 1))
            .unwrap();
    }
}

fn outputs(driver: &TopologyTestDriver) -> Vec<String> {
    driver
        .output_topic("out", StringSerde, StringSerde)
        .read_key_values()
        .into_iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect()
}

#[test]
fn a_row_that_keeps_its_group_is_subtracted_and_added_in_one_step() {
    let builder = StreamsBuilder::new();
    let grouped = table(&builder).group_by(
        |k, v| (k.clone(), v.clone()),
        Grouped::with_serdes(StringSerde, StringSerde),
    );
    to_string_aggregate(grouped)
        .to_stream()
        .to("out", Produced::with(StringSerde, StringSerde));
    let driver = driver(builder);
    pipe_all(
        &driver,
        &[
            ("A", Some("1")),
            ("B", Some("2")),
            ("A", Some("3")),
            ("B", Some("4")),
            ("C", Some("5")),
            ("D", Some("6")),
            ("B", Some("7")),
            ("C", Some("8")),
        ],
    );
    assert_eq!(
        outputs(&driver),
        [
            "A:0+1",
            "B:0+2",
            "A:0+1-1+3",
            "B:0+2-2+4",
            "C:0+5",
            "D:0+6",
            "B:0+2-2+4-4+7",
            "C:0+5-5+8",
        ]
    );
}

#[test]
fn a_row_that_changes_group_leaves_the_old_one_before_joining_the_new_one() {
    let builder = StreamsBuilder::new();
    let grouped = table(&builder).group_by(
        |_k, v| (v.clone(), v.clone()),
        Grouped::with_serdes(StringSerde, StringSerde),
    );
    to_string_aggregate(grouped)
        .to_stream()
        .to("out", Produced::with(StringSerde, StringSerde));
    let driver = driver(builder);
    pipe_all(
        &driver,
        &[
            ("A", Some("1")),
            ("A", None),
            ("A", Some("1")),
            ("B", Some("2")),
            ("B", Some("4")),
            ("B", Some("7")),
        ],
    );
    assert_eq!(
        outputs(&driver),
        [
            "1:0+1",
            "1:0+1-1",
            "1:0+1-1+1",
            "2:0+2",
            "2:0+2-2",
            "4:0+4",
            "4:0+4-4",
            "7:0+7",
        ]
    );
}

#[test]
fn a_grouped_count_follows_rows_between_groups_and_keeps_a_group_at_zero() {
    let builder = StreamsBuilder::new();
    table(&builder)
        .group_by(
            |_k, colour| (colour.clone(), ()),
            Grouped::with_serdes(StringSerde, UnitSerde),
        )
        .count(Materialized::as_("colours"))
        .to_stream()
        .to("out", Produced::with(StringSerde, I64Serde));
    let driver = driver(builder);
    pipe_all(
        &driver,
        &[
            ("A", Some("green")),
            ("B", Some("green")),
            ("A", Some("blue")),
            ("C", Some("yellow")),
            ("D", Some("green")),
            ("C", None),
        ],
    );
    let counts: Vec<String> = driver
        .output_topic("out", StringSerde, I64Serde)
        .read_key_values()
        .into_iter()
        .map(|(k, n)| format!("{k}:{n}"))
        .collect();
    assert_eq!(
        counts,
        ["green:1", "green:2", "green:1", "blue:1", "yellow:1", "green:2", "yellow:0"]
    );
}

#[test]
fn the_old_value_is_removed_before_the_new_one_is_added() {
    let builder = StreamsBuilder::new();
    table(&builder)
        .group_by(
            |k, _v| (k[..1].to_string(), k[1..2].to_string()),
            Grouped::with_serdes(StringSerde, StringSerde),
        )
        .aggregate(
            String::new,
            |_k, v, agg| agg + &v,
            |_k, v, agg| agg.replace(&v, ""),
            Materialized::as_("some-store").with_value_serde(StringSerde),
        )
        .to_stream()
        .to("out", Produced::with(StringSerde, StringSerde));
    let driver = driver(builder);
    pipe_all(
        &driver,
        &[
            ("11", Some("A")),
            ("12", Some("B")),
            ("11", None),
            ("12", Some("C")),
        ],
    );
    assert_eq!(outputs(&driver), ["1:1", "1:12", "1:2", "1:2"]);
}

#[test]
fn a_grouped_reduce_sums_per_group_with_the_latest_timestamp_of_its_rows() {
    let builder = StreamsBuilder::new();
    builder
        .table(
            "accounts",
            Consumed::with(StringSerde, I64Serde),
            Materialized::as_("accounts"),
        )
        // account "eu-1" belongs to region "eu"
        .group_by(
            |account, balance| (account[..2].to_string(), *balance),
            Grouped::with_serdes(StringSerde, I64Serde).named("by-region"),
        )
        .reduce(
            |a, b| a + b,
            |a, b| a - b,
            Materialized::as_("region-totals"),
        )
        .to_stream()
        .to("out", Produced::with(StringSerde, I64Serde));
    let topology = builder.build().unwrap();
    let description = topology.describe().to_string();
    assert!(
        description.contains("by-region-repartition"),
        "{description}"
    );
    let driver = TopologyTestDriver::new(topology, StreamsConfig::new("t", "unused")).unwrap();
    let input = driver.input_topic("accounts", StringSerde, OptionSerde(I64Serde));
    input.pipe("eu-1".into(), Some(100), 5).unwrap();
    input.pipe("eu-2".into(), Some(50), 3).unwrap();
    input.pipe("us-1".into(), Some(7), 9).unwrap();
    input.pipe("eu-1".into(), Some(80), 4).unwrap();
    input.pipe("eu-2".into(), None, 12).unwrap();
    let out: Vec<(String, i64, i64)> = driver
        .output_topic("out", StringSerde, I64Serde)
        .read_records()
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    let row = |k: &str, v, ts| (k.to_string(), v, ts);
    assert_eq!(
        out,
        vec![
            row("eu", 100, 5),
            row("eu", 150, 5),
            row("us", 7, 9),
            row("eu", 130, 5),
            row("eu", 80, 12),
        ]
    );
}

#[test]
fn a_row_a_filtered_table_never_held_moves_nothing() {
    let builder = StreamsBuilder::new();
    table(&builder)
        .filter(|_k, v| v != "hidden", Materialized::as_("visible"))
        .group_by(
            |_k, v| (v.clone(), ()),
            Grouped::with_serdes(StringSerde, UnitSerde),
        )
        .count(Materialized::as_("visible-counts"))
        .to_stream()
        .to("out", Produced::with(StringSerde, I64Serde));
    let driver = driver(builder);
    pipe_all(
        &driver,
        &[
            ("A", Some("hidden")),
            ("A", Some("x")),
            ("A", Some("hidden")),
            ("B", None),
        ],
    );
    let counts = driver
        .output_topic("out", StringSerde, I64Serde)
        .read_key_values();
    assert_eq!(counts, vec![("x".into(), 1), ("x".into(), 0)]);
}

#[test]
fn grouping_a_table_without_serdes_fails_the_build_naming_the_table() {
    let builder = StreamsBuilder::new();
    table(&builder)
        .group_by(|_k, v| (v.clone(), ()), Grouped::default())
        .count(Materialized::as_("counts"));
    let Err(err) = builder.build() else {
        panic!("the build should fail without serdes");
    };
    let err = err.to_string();
    assert!(err.contains("input-table"), "{err}");
    assert!(err.contains("Grouped::with_serdes"), "{err}");
}
