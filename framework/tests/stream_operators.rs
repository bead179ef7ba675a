//! Stream operators on the test driver: flat_map (new keys, repartitioned before an
//! aggregation), flat_map_values, foreach and print.

use std::sync::{Arc, Mutex};

use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::{
    Consumed, Materialized, Produced, StreamsBuilder, StreamsConfig, TopologyTestDriver,
};

fn config() -> StreamsConfig {
    StreamsConfig::new("stream-operators", "unused")
}

#[test]
fn flat_map_gives_each_word_its_own_key_and_a_count_after_it_repartitions() {
    let builder = StreamsBuilder::new();
    builder
        .stream("lines", Consumed::with(StringSerde, StringSerde))
        .flat_map(|_line_id: String, line: String| {
            line.split_whitespace()
                .map(|w| (w.to_string(), 1_i64))
                .collect::<Vec<_>>()
        })
        .with_serdes(StringSerde, I64Serde)
        .group_by_key()
        .count(Materialized::as_("word-counts"))
        .to_stream()
        .to("counts", Produced::with(StringSerde, I64Serde));
    let topology = builder.build().unwrap();
    let driver = TopologyTestDriver::new(topology, config()).unwrap();
    let lines = driver.input_topic("lines", StringSerde, StringSerde);
    lines.pipe("1".into(), "a b a".into(), 10).unwrap();
    lines.pipe("2".into(), "b".into(), 20).unwrap();
    let out = driver
        .output_topic("counts", StringSerde, I64Serde)
        .read_records();
    let got: Vec<(String, i64, i64)> = out
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    let want = |k: &str, n: i64, ts: i64| (k.to_string(), n, ts);
    assert_eq!(
        got,
        vec![
            want("a", 1, 10),
            want("b", 1, 10),
            want("a", 2, 10),
            want("b", 2, 20)
        ]
    );
}

#[test]
fn flat_map_values_keeps_the_key_and_drops_records_mapped_to_nothing() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .flat_map_values(|v: String| v.chars().map(|c| c.to_string()).collect::<Vec<_>>())
        .to("out", Produced::with(StringSerde, StringSerde));
    let driver = TopologyTestDriver::new(builder.build().unwrap(), config()).unwrap();
    let input = driver.input_topic("in", StringSerde, StringSerde);
    input.pipe("k".into(), "xy".into(), 1).unwrap();
    input.pipe("j".into(), "".into(), 2).unwrap();
    let out = driver
        .output_topic("out", StringSerde, StringSerde)
        .read_key_values();
    assert_eq!(
        out,
        vec![
            ("k".to_string(), "x".to_string()),
            ("k".to_string(), "y".to_string())
        ]
    );
}

#[test]
fn foreach_sees_every_record_in_order_and_forwards_nothing() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let builder = StreamsBuilder::new();
    let stream = builder.stream("in", Consumed::with(StringSerde, StringSerde));
    let sink = seen.clone();
    stream.foreach(move |k: &String, v: &String| sink.lock().unwrap().push(format!("{k}={v}")));
    stream.print("in");
    let driver = TopologyTestDriver::new(builder.build().unwrap(), config()).unwrap();
    let input = driver.input_topic("in", StringSerde, StringSerde);
    input.pipe("a".into(), "1".into(), 1).unwrap();
    input.pipe("b".into(), "2".into(), 2).unwrap();
    assert_eq!(*seen.lock().unwrap(), vec!["a=1", "b=2"]);
}
