//! Merged repartition topics (`TopologyOptimization::MergeRepartitionTopics`, Kafka Streams'
//! `merge.repartition.topics`): the key-based operations after one key change read one topic,
//! and give what they give with a topic each. After Kafka Streams' `RepartitionOptimizingTest`,
//! which counts the repartition topics with and without the optimization and compares the
//! outputs.

use std::collections::BTreeMap;

use streamtime::config::TopologyOptimization;
use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::{
    Consumed, Materialized, Produced, Repartitioned, StreamsBuilder, StreamsConfig, Topology,
    TopologyTestDriver,
};

const OUTPUTS: [&str; 6] = [
    "counts", "largest", "enriched", "totals", "spread", "explicit",
];

fn amount(order: &str) -> i64 {
    order.split(':').nth(1).unwrap().parse().unwrap()
}

/// Orders `customer:amount` re-keyed by customer, then counted, reduced behind a filter,
/// joined with the customers table, cogrouped, summed after a value-type change and counted
/// after an explicit repartition.
fn topology(config: &StreamsConfig) -> Topology {
    let builder = StreamsBuilder::new();
    let customers = builder.table(
        "customers",
        Consumed::with(StringSerde, StringSerde),
        Materialized::as_("customers"),
    );
    let by_customer = builder
        .stream("orders", Consumed::with(StringSerde, StringSerde))
        .select_key(|_, order: &String| order.split(':').next().unwrap().to_string());
    let strings = || Produced::with(StringSerde, StringSerde);
    let counts = || Produced::with(StringSerde, I64Serde);
    by_customer
        .group_by_key()
        .count(Materialized::as_("order-counts"))
        .to_stream()
        .to("counts", counts());
    by_customer
        .filter(|_, order| amount(order) >= 10)
        .group_by_key()
        .reduce(
            |a, b| if amount(&b) > amount(&a) { b } else { a },
            Materialized::as_("largest-order"),
        )
        .to_stream()
        .to("largest", strings());
    by_customer
        .join_table(&customers, |order, name: &String| format!("{order}@{name}"))
        .to("enriched", strings());
    by_customer
        .map_values(|order: String| amount(&order))
        .with_serdes(StringSerde, I64Serde)
        .group_by_key()
        .reduce(|a, b| a + b, Materialized::as_("totals"))
        .to_stream()
        .to("totals", counts());
    by_customer
        .group_by_key()
        .cogroup(|_, order: String, (lo, hi): (i64, i64)| {
            (lo.min(amount(&order)), hi.max(amount(&order)))
        })
        .cogroup(
            by_customer.peek(|_, _| {}).group_by_key(),
            |_, order: String, (lo, hi): (i64, i64)| (lo.min(-amount(&order)), hi),
        )
        .aggregate(
            || (i64::MAX, i64::MIN),
            Materialized::as_("spread").with_value_serde(streamtime::serdes::BincodeSerde::new()),
        )
        .to_stream()
        .map_values(|(lo, hi)| hi - lo)
        .to("spread", counts());
    by_customer
        .repartition(Repartitioned::as_("by-customer"))
        .group_by_key()
        .count(Materialized::as_("explicit-counts"))
        .to_stream()
        .to("explicit", counts());
    builder.build_with(config).unwrap()
}

/// Every output record by topic, as `key=value@timestamp`, and how many records each
/// repartition topic carried.
type Run = (BTreeMap<&'static str, Vec<String>>, BTreeMap<String, usize>);

fn run(optimization: TopologyOptimization) -> (Run, Vec<String>) {
    let config = StreamsConfig::new("merged", "unused")
        .topology_optimization(optimization)
        .cache_max_bytes(0);
    let topology = topology(&config);
    let described = topology.describe().repartition_topics;
    let driver =
        TopologyTestDriver::with_partitions(topology, config, &[("orders", 3), ("customers", 2)])
            .unwrap();
    let customers = driver.input_topic("customers", StringSerde, StringSerde);
    for (id, name) in [("c1", "Ann"), ("c2", "Bob"), ("c3", "Cy")] {
        customers.pipe(id.into(), name.into(), 0).unwrap();
    }
    let orders = driver.input_topic("orders", StringSerde, StringSerde);
    for i in 0..60_i64 {
        let customer = ["c1", "c2", "c3", "c4"][(i * 7 % 4) as usize];
        let order = format!("{customer}:{}", (i * 13) % 29);
        // Out of order now and then, so stream time and record choice take part.
        let ts = 10_000 + 1_000 * i - if i % 5 == 0 { 3_500 } else { 0 };
        orders.pipe(format!("o{i}"), order, ts).unwrap();
    }
    let mut outputs = BTreeMap::new();
    for topic in OUTPUTS {
        let records: Vec<String> = if matches!(topic, "largest" | "enriched") {
            let out = driver.output_topic(topic, StringSerde, StringSerde);
            out.read_records()
                .into_iter()
                .map(|r| format!("{}={}@{}", r.key, r.value, r.timestamp))
                .collect()
        } else {
            let out = driver.output_topic(topic, StringSerde, I64Serde);
            out.read_records()
                .into_iter()
                .map(|r| format!("{}={}@{}", r.key, r.value, r.timestamp))
                .collect()
        };
        outputs.insert(topic, records);
    }
    let carried = described
        .iter()
        .map(|t| (t.clone(), driver.raw_records(&format!("merged-{t}")).len()))
        .collect();
    ((outputs, carried), described)
}

#[test]
fn the_operations_after_one_key_change_read_one_repartition_topic_and_give_the_same_results() {
    let ((plain, plain_carried), plain_topics) = run(TopologyOptimization::None);
    let ((merged, merged_carried), merged_topics) =
        run(TopologyOptimization::MergeRepartitionTopics);

    assert_eq!(
        plain_topics.len(),
        7,
        "one topic per operation: {plain_topics:?}"
    );
    assert_eq!(
        merged_topics,
        [
            "by-customer-repartition",
            "order-counts-repartition",
            "totals-repartition"
        ],
        "the count, the filtered reduce, the join and both cogroup inputs share the first \
         operation's topic; the sum after a value-type change and the explicit repartition keep \
         their own"
    );
    assert_eq!(
        merged_carried["order-counts-repartition"], 60,
        "each order is written to the merged topic once, filtered ones included"
    );
    for topic in OUTPUTS {
        assert!(!plain[topic].is_empty(), "{topic} has output");
        if topic != "spread" {
            assert_eq!(merged[topic], plain[topic], "{topic}");
        }
    }
    // The cogroup gets each order from both of its inputs. With a topic each, the record
    // choice takes them in topic order (input 0 first); from one topic, the record goes
    // depth first to the inputs in the order the topology built their steps (the `peek` of
    // input 1 first). The updates in between differ; each customer's spread does not.
    let last = |records: &[String]| -> BTreeMap<String, String> {
        records
            .iter()
            .map(|r| {
                let (key, rest) = r.split_once('=').unwrap();
                (key.to_string(), rest.to_string())
            })
            .collect()
    };
    assert_eq!(last(&merged["spread"]), last(&plain["spread"]));
    assert_eq!(merged["spread"].len(), plain["spread"].len());
    let written = |carried: &BTreeMap<String, usize>| carried.values().sum::<usize>();
    assert!(
        written(&merged_carried) < written(&plain_carried),
        "{merged_carried:?} against {plain_carried:?}"
    );
}

#[test]
fn a_key_change_feeding_one_operation_keeps_its_topic_and_its_filter_before_the_write() {
    let topics = |optimization| {
        let builder = StreamsBuilder::new();
        builder
            .stream("orders", Consumed::with(StringSerde, StringSerde))
            .select_key(|_, order: &String| order.clone())
            .filter(|_, order| amount(order) >= 10)
            .group_by_key()
            .count(Materialized::as_("big-orders"));
        let config = StreamsConfig::new("merged", "unused").topology_optimization(optimization);
        let topology = builder.build_with(&config).unwrap();
        topology.describe().to_string()
    };
    assert_eq!(
        topics(TopologyOptimization::All),
        topics(TopologyOptimization::None)
    );
}
