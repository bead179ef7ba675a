//! Table operators on the test driver: filter, filter_not and map_values follow a table's
//! changes (updates and deletions), keep timestamps, survive in their own stores, and feed
//! joins like any other table.

use streamtime::serdes::{I64Serde, OptionSerde, StringSerde};
use streamtime::{
    Consumed, Materialized, Produced, StreamsBuilder, StreamsConfig, TopologyTestDriver,
};

type Change = (String, Option<i64>, i64);

fn set(k: &str, v: i64, ts: i64) -> Change {
    (k.to_string(), Some(v), ts)
}

fn del(k: &str, ts: i64) -> Change {
    (k.to_string(), None, ts)
}

fn changes(driver: &TopologyTestDriver, topic: &str) -> Vec<Change> {
    driver
        .output_topic(topic, StringSerde, OptionSerde(I64Serde))
        .read_records()
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect()
}

/// `prices` (a table of i64) through `build`, whose result's changes go to `out`.
fn driver_for(
    build: impl FnOnce(streamtime::KTable<String, i64>) -> streamtime::KTable<String, i64>,
) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    let prices = builder.table(
        "prices",
        Consumed::with(StringSerde, I64Serde),
        Materialized::as_("prices"),
    );
    build(prices)
        .to_change_stream()
        .to("out", Produced::with(StringSerde, OptionSerde(I64Serde)));
    // No record cache: every change goes downstream, as in Kafka Streams with
    // statestore.cache.max.bytes=0.
    TopologyTestDriver::new(
        builder.build().unwrap(),
        StreamsConfig::new("tables", "unused").cache_max_bytes(0),
    )
    .unwrap()
}

#[test]
fn a_filtered_table_deletes_a_row_whose_update_fails_the_predicate() {
    let driver = driver_for(|t| t.filter(|_, p| *p >= 100, Materialized::as_("expensive")));
    let input = driver.input_topic("prices", StringSerde, OptionSerde(I64Serde));
    input.pipe("tv".into(), Some(400), 1).unwrap();
    input.pipe("pen".into(), Some(2), 2).unwrap();
    input.pipe("tv".into(), Some(90), 3).unwrap();
    input.pipe("pen".into(), Some(150), 4).unwrap();
    input.pipe("pen".into(), None, 5).unwrap();
    assert_eq!(
        changes(&driver, "out"),
        vec![
            set("tv", 400, 1),
            // Kafka Streams without old values: a rejected update is a tombstone, also for
            // a key the result never held.
            del("pen", 2),
            del("tv", 3),
            set("pen", 150, 4),
            del("pen", 5),
        ]
    );
    let rows = driver
        .key_value_store_entries("expensive", StringSerde, streamtime::serdes::BytesSerde)
        .unwrap();
    assert!(rows.is_empty(), "every row was deleted again: {rows:?}");
}

#[test]
fn filter_not_keeps_exactly_the_rows_filter_drops() {
    let driver = driver_for(|t| t.filter_not(|_, p| *p >= 100, Materialized::default()));
    let input = driver.input_topic("prices", StringSerde, OptionSerde(I64Serde));
    input.pipe("tv".into(), Some(400), 1).unwrap();
    input.pipe("pen".into(), Some(2), 2).unwrap();
    assert_eq!(
        changes(&driver, "out"),
        vec![del("tv", 1), set("pen", 2, 2)]
    );
}

#[test]
fn map_values_maps_updates_and_passes_deletions_with_their_timestamps() {
    let driver = driver_for(|t| {
        t.map_values(
            |p| p * 2,
            Materialized::as_("doubled").with_value_serde(I64Serde),
        )
    });
    let input = driver.input_topic("prices", StringSerde, OptionSerde(I64Serde));
    input.pipe("tv".into(), Some(400), 10).unwrap();
    input.pipe("tv".into(), None, 20).unwrap();
    input.pipe("cup".into(), Some(3), 30).unwrap();
    assert_eq!(
        changes(&driver, "out"),
        vec![set("tv", 800, 10), del("tv", 20), set("cup", 6, 30)]
    );
    let rows = driver
        .timestamped_key_value_store("doubled", StringSerde, I64Serde)
        .unwrap();
    assert_eq!(rows, [("cup".to_string(), 6, 30)]);
}

#[test]
fn map_values_without_a_value_serde_fails_the_build_naming_the_store() {
    let builder = StreamsBuilder::new();
    builder
        .table(
            "prices",
            Consumed::with(StringSerde, I64Serde),
            Materialized::as_("prices"),
        )
        .map_values(|p| p.to_string(), Materialized::as_("as-text"));
    let Err(err) = builder.build() else {
        panic!("the build succeeds without the result's value serde");
    };
    let err = err.to_string();
    assert!(err.contains("as-text"), "{err}");
}

#[test]
fn a_filtered_table_joins_a_stream() {
    let builder = StreamsBuilder::new();
    let expensive = builder
        .table(
            "prices",
            Consumed::with(StringSerde, I64Serde),
            Materialized::as_("prices"),
        )
        .filter(|_, p| *p >= 100, Materialized::as_("expensive"));
    builder
        .stream("orders", Consumed::with(StringSerde, StringSerde))
        .left_join_table(&expensive, |who: &String, price: Option<&i64>| {
            format!(
                "{who}:{}",
                price.map_or("cheap".to_string(), i64::to_string)
            )
        })
        .to("priced", Produced::with(StringSerde, StringSerde));
    let driver =
        TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("t", "unused"))
            .unwrap();
    let prices = driver.input_topic("prices", StringSerde, I64Serde);
    let orders = driver.input_topic("orders", StringSerde, StringSerde);
    prices.pipe("tv".into(), 400, 1).unwrap();
    orders.pipe("tv".into(), "ann".into(), 2).unwrap();
    prices.pipe("tv".into(), 90, 3).unwrap();
    orders.pipe("tv".into(), "bob".into(), 4).unwrap();
    let out = driver
        .output_topic("priced", StringSerde, StringSerde)
        .read_key_values();
    assert_eq!(
        out,
        vec![
            ("tv".to_string(), "ann:400".to_string()),
            ("tv".to_string(), "bob:cheap".to_string())
        ]
    );
}

/// `prices` read as a table (stored as read, or with serdes of its store's own) and
/// `expensive` derived from it, under `config`.
fn source_tables(config: StreamsConfig) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    builder
        .table(
            "prices",
            Consumed::with(StringSerde, I64Serde),
            Materialized::as_("prices"),
        )
        .filter(|_k, v: &i64| *v >= 100, Materialized::as_("expensive"))
        .to_change_stream()
        .to(
            "expensive",
            Produced::with(StringSerde, OptionSerde(I64Serde)),
        );
    builder.table(
        "rates",
        Consumed::with(StringSerde, I64Serde),
        Materialized::as_("rates").with_serdes(StringSerde, I64Serde),
    );
    TopologyTestDriver::new(builder.build().unwrap(), config).unwrap()
}

#[test]
fn reusing_source_topics_a_table_read_from_a_topic_writes_no_changelog_of_its_own() {
    use streamtime::config::TopologyOptimization;
    let run = |config: StreamsConfig| {
        let driver = source_tables(config);
        driver
            .input_topic("prices", StringSerde, I64Serde)
            .pipe("tv".into(), 400, 1)
            .unwrap();
        driver
            .input_topic("rates", StringSerde, I64Serde)
            .pipe("eur".into(), 2, 1)
            .unwrap();
        let logged = |store: &str| {
            driver
                .raw_records(&format!("tables-{store}-changelog"))
                .len()
        };
        let stored = driver
            .timestamped_key_value_store("prices", StringSerde, I64Serde)
            .unwrap();
        (
            [logged("prices"), logged("expensive"), logged("rates")],
            stored,
            changes(&driver, "expensive"),
        )
    };
    let config = || StreamsConfig::new("tables", "unused");
    let (plain, plain_rows, plain_out) = run(config());
    let (reused, reused_rows, reused_out) =
        run(config().topology_optimization(TopologyOptimization::ReuseSourceTopics));
    assert_eq!(plain, [1, 1, 1], "every table logs its rows");
    assert_eq!(
        reused,
        [0, 1, 1],
        "only the table stored as its topic holds it goes without a changelog; a derived \
         table and one with serdes of its own keep theirs"
    );
    assert_eq!(reused_rows, plain_rows, "the table holds the same rows");
    assert_eq!(reused_out, plain_out);
    assert_eq!(reused_out, [set("tv", 400, 1)]);
}
