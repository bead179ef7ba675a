//! Global tables on the test driver: a stream joins the row its key selector names, from
//! any partition, with no repartition; updates and deletions change what later records see.

use streamtime::serdes::{OptionSerde, StringSerde};
use streamtime::{
    Consumed, Materialized, Produced, StreamsBuilder, StreamsConfig, TopologyTestDriver,
};

fn driver(left: bool) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    let products = builder.global_table(
        "products",
        Consumed::with(StringSerde, StringSerde),
        Materialized::as_("products"),
    );
    // clicks: user -> product id
    let clicks = builder.stream("clicks", Consumed::with(StringSerde, StringSerde));
    let select = |_user: &String, product: &String| product.clone();
    let joined = if left {
        clicks.left_join_global(&products, select, |p: &String, name: Option<&String>| {
            format!("{p}:{}", name.map_or("?", |n| n.as_str()))
        })
    } else {
        clicks.join_global(&products, select, |p: &String, name: &String| {
            format!("{p}:{name}")
        })
    };
    joined.to("out", Produced::with(StringSerde, StringSerde));
    let topology = builder.build().unwrap();
    let description = topology.describe().to_string();
    assert!(!description.contains("repartition"), "{description}");
    // Four partitions of clicks, one of products: every task sees every product.
    TopologyTestDriver::with_partitions(
        topology,
        StreamsConfig::new("global", "unused"),
        &[("clicks", 4)],
    )
    .unwrap()
}

fn product(driver: &TopologyTestDriver, id: &str, name: Option<&str>, ts: i64) {
    driver
        .input_topic("products", StringSerde, OptionSerde(StringSerde))
        .pipe(id.into(), name.map(str::to_string), ts)
        .unwrap();
}

fn click(driver: &TopologyTestDriver, user: &str, product: &str, ts: i64) {
    driver
        .input_topic("clicks", StringSerde, StringSerde)
        .pipe(user.into(), product.into(), ts)
        .unwrap();
}

fn out(driver: &TopologyTestDriver) -> Vec<String> {
    driver
        .output_topic("out", StringSerde, StringSerde)
        .read_key_values()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

#[test]
fn each_record_joins_the_row_its_selector_names_as_the_table_is_then() {
    let driver = driver(false);
    product(&driver, "p1", Some("lamp"), 0);
    click(&driver, "ann", "p1", 1);
    click(&driver, "bob", "p2", 2);
    product(&driver, "p2", Some("desk"), 3);
    click(&driver, "bob", "p2", 4);
    product(&driver, "p1", Some("red lamp"), 5);
    click(&driver, "cy", "p1", 6);
    product(&driver, "p1", None, 7);
    click(&driver, "dee", "p1", 8);
    assert_eq!(
        out(&driver),
        ["ann=p1:lamp", "bob=p2:desk", "cy=p1:red lamp"],
        "a missing row gives nothing; updates and deletions count from then on"
    );
}

#[test]
fn a_left_join_gives_every_record_a_result() {
    let driver = driver(true);
    click(&driver, "ann", "p1", 1);
    product(&driver, "p1", Some("lamp"), 2);
    click(&driver, "bob", "p1", 3);
    assert_eq!(out(&driver), ["ann=p1:?", "bob=p1:lamp"]);
}

#[test]
fn a_global_table_store_name_used_twice_fails_the_build() {
    let builder = StreamsBuilder::new();
    builder.table(
        "a",
        Consumed::with(StringSerde, StringSerde),
        Materialized::as_("shared"),
    );
    builder.global_table(
        "b",
        Consumed::with(StringSerde, StringSerde),
        Materialized::<String, String>::as_("shared"),
    );
    let Err(err) = builder.build() else {
        panic!("one name, two stores");
    };
    assert!(err.to_string().contains("shared"), "{err}");
}
