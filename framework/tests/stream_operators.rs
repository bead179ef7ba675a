//! Stream operators on the test driver: flat_map (new keys, repartitioned before an
//! aggregation), flat_map_values, foreach, print, split with named branches, to_table,
//! to_stream with a key mapper, and Processor API processors with stores in the DSL.

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
    // The record cache folds the two counts of `a` from the first line into one update,
    // sent after `b`'s because `a` was counted last (Kafka Streams' default cache).
    assert_eq!(
        got,
        vec![want("b", 1, 10), want("a", 2, 10), want("b", 2, 20)]
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

#[test]
fn split_sends_each_record_to_its_first_matching_branch_and_names_the_branches() {
    use streamtime::Branched;
    let builder = StreamsBuilder::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let branches = builder
        .stream("n", Consumed::with(StringSerde, I64Serde))
        .split("n-")
        .branch(|_k, n: &i64| *n < 0, Branched::as_("negative"))
        .branch(|_k, n: &i64| *n == 0, Branched::default())
        .branch(
            |_k, n: &i64| *n > 100,
            Branched::with_consumer(
                move |s| s.foreach(move |k: &String, _| sink.lock().unwrap().push(k.clone())),
                "large",
            ),
        )
        .branch(
            |_k, n: &i64| *n % 2 == 0,
            Branched::with_function(|s| s.map_values(|n: i64| n / 2), "even"),
        )
        .default_branch(Branched::default());
    let names: Vec<&str> = branches.keys().map(String::as_str).collect();
    assert_eq!(names, ["n-0", "n-2", "n-even", "n-negative"]);
    for (name, stream) in &branches {
        stream.to(name, Produced::with(StringSerde, I64Serde));
    }
    let driver = TopologyTestDriver::new(builder.build().unwrap(), config()).unwrap();
    let input = driver.input_topic("n", StringSerde, I64Serde);
    for (k, n) in [
        ("a", -4),
        ("b", 0),
        ("c", 200),
        ("d", 6),
        ("e", 7),
        ("f", -1),
    ] {
        input.pipe(k.into(), n, 1).unwrap();
    }
    let read = |topic: &str| {
        driver
            .output_topic(topic, StringSerde, I64Serde)
            .read_key_values()
            .into_iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(read("n-negative"), ["a=-4", "f=-1"]);
    assert_eq!(read("n-2"), ["b=0"]);
    assert_eq!(
        read("n-even"),
        ["d=3"],
        "the function's stream is the branch"
    );
    assert_eq!(read("n-0"), ["e=7"], "the default branch takes the rest");
    assert_eq!(*seen.lock().unwrap(), ["c"], "the consumer got its branch");
}

#[test]
fn without_a_default_branch_a_record_no_predicate_accepts_is_dropped() {
    let builder = StreamsBuilder::new();
    let branches = builder
        .stream("n", Consumed::with(StringSerde, I64Serde))
        .split("")
        .branch(|_k, n: &i64| *n > 0, streamtime::Branched::default())
        .no_default_branch();
    assert_eq!(branches.keys().collect::<Vec<_>>(), ["1"]);
    branches["1"].to("positive", Produced::with(StringSerde, I64Serde));
    let driver = TopologyTestDriver::new(builder.build().unwrap(), config()).unwrap();
    let input = driver.input_topic("n", StringSerde, I64Serde);
    input.pipe("a".into(), -1, 1).unwrap();
    input.pipe("b".into(), 1, 2).unwrap();
    let out = driver
        .output_topic("positive", StringSerde, I64Serde)
        .read_key_values();
    assert_eq!(out, [("b".into(), 1)]);
}

#[test]
fn to_table_keeps_the_latest_value_per_key_and_repartitions_after_a_key_change() {
    let builder = StreamsBuilder::new();
    builder
        .stream("readings", Consumed::with(StringSerde, I64Serde))
        // "sensor-3/room-a" -> "room-a"
        .select_key(|k: &String, _| k.split('/').nth(1).unwrap_or_default().to_string())
        .to_table(Materialized::as_("latest-per-room"))
        .to_stream()
        .to("latest", Produced::with(StringSerde, I64Serde));
    let topology = builder.build().unwrap();
    let description = topology.describe().to_string();
    assert!(
        description.contains("latest-per-room-repartition"),
        "{description}"
    );
    let driver = TopologyTestDriver::new(topology, config()).unwrap();
    let input = driver.input_topic("readings", StringSerde, I64Serde);
    input.pipe("s1/room-a".into(), 20, 1).unwrap();
    input.pipe("s2/room-b".into(), 18, 2).unwrap();
    input.pipe("s3/room-a".into(), 22, 3).unwrap();
    let out = driver
        .output_topic("latest", StringSerde, I64Serde)
        .read_key_values();
    assert_eq!(
        out,
        [
            ("room-a".into(), 20),
            ("room-b".into(), 18),
            ("room-a".into(), 22)
        ]
    );
    let mut stored: Vec<String> = driver
        .key_value_store_entries(
            "latest-per-room",
            StringSerde,
            streamtime::serdes::BytesSerde,
        )
        .unwrap()
        .into_iter()
        .map(|(room, _)| room)
        .collect();
    stored.sort();
    assert_eq!(stored, ["room-a", "room-b"]);
}

#[test]
fn a_windowed_table_to_stream_with_key_gives_plain_keys_and_keeps_the_value_serde() {
    use std::time::Duration;
    use streamtime::dsl::TimeWindows;
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_millis(
            10,
        )))
        .count(Materialized::as_("clicks-per-10ms"))
        .to_stream_with_key(|window, _| format!("{}@{}", window.key, window.window.start))
        .to("counts", Produced::default().with_key_serde(StringSerde));
    let driver = TopologyTestDriver::new(builder.build().unwrap(), config()).unwrap();
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    input.pipe("u".into(), "x".into(), 1).unwrap();
    input.pipe("u".into(), "x".into(), 12).unwrap();
    let out = driver
        .output_topic("counts", StringSerde, I64Serde)
        .read_key_values();
    assert_eq!(out, [("u@0".into(), 1), ("u@10".into(), 1)]);
}

/// Adds its input's length to a running total per key, in the store `totals`.
#[derive(Default)]
struct RunningTotal(Option<streamtime::stores::KeyValueStoreHandle<String, i64>>);

impl streamtime::Processor<String, String, String, i64> for RunningTotal {
    fn init(
        &mut self,
        ctx: &mut streamtime::ProcessorContext<String, i64>,
    ) -> streamtime::ProcessResult {
        self.0 = Some(ctx.key_value_store("totals", StringSerde, I64Serde)?);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut streamtime::ProcessorContext<String, i64>,
        r: streamtime::Record<String, String>,
    ) -> streamtime::ProcessResult {
        let store = self.0.as_ref().expect("init ran");
        let total = store.get(&r.key)?.unwrap_or(0) + r.value.len() as i64;
        store.put(&r.key, &total)?;
        // "moved:" records come out under another key, which process_values refuses.
        let key = match r.value.strip_prefix("moved:") {
            Some(to) => to.to_string(),
            None => r.key.clone(),
        };
        ctx.forward(r.with_value(total).with_key(key))
    }
}

fn running_totals(values_only: bool) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    builder.add_state_store(streamtime::stores::Stores::key_value("totals"));
    let input = builder.stream("words", Consumed::with(StringSerde, StringSerde));
    let totals = if values_only {
        input.process_values_with_stores(RunningTotal::default, &["totals"])
    } else {
        input.process_with_stores(RunningTotal::default, &["totals"])
    };
    totals
        .with_serdes(StringSerde, I64Serde)
        .group_by_key()
        .count(Materialized::as_("updates"))
        .to_stream()
        .to("updates", Produced::with(StringSerde, I64Serde));
    let topology = builder.build().unwrap();
    let repartitions = topology
        .describe()
        .to_string()
        .matches("-repartition")
        .count();
    assert_eq!(
        repartitions > 0,
        !values_only,
        "process repartitions before the count; process_values does not"
    );
    TopologyTestDriver::new(topology, config()).unwrap()
}

#[test]
fn a_processor_with_a_connected_store_keeps_state_per_key() {
    for values_only in [false, true] {
        let driver = running_totals(values_only);
        let input = driver.input_topic("words", StringSerde, StringSerde);
        input.pipe("a".into(), "xx".into(), 1).unwrap();
        input.pipe("b".into(), "y".into(), 2).unwrap();
        input.pipe("a".into(), "zzz".into(), 3).unwrap();
        let mut totals = driver
            .key_value_store_entries("totals", StringSerde, I64Serde)
            .unwrap();
        totals.sort();
        assert_eq!(totals, [("a".into(), 5), ("b".into(), 1)], "{values_only}");
    }
}

#[test]
fn process_values_fails_the_record_whose_processor_changes_its_key() {
    let driver = running_totals(true);
    let input = driver.input_topic("words", StringSerde, StringSerde);
    input.pipe("a".into(), "ok".into(), 1).unwrap();
    let err = input
        .pipe("a".into(), "moved:b".into(), 2)
        .expect_err("a changed key is refused")
        .to_string();
    assert!(err.contains("KSTREAM-PROCESSVALUES"), "{err}");
    assert!(err.contains("KStream::process"), "{err}");
}

#[test]
fn a_processor_naming_a_store_nobody_added_fails_the_build() {
    let builder = StreamsBuilder::new();
    builder
        .stream("words", Consumed::with(StringSerde, StringSerde))
        .process_with_stores(RunningTotal::default, &["totals"])
        .to("out", Produced::with(StringSerde, I64Serde));
    let err = match builder.build() {
        Ok(topology) => TopologyTestDriver::new(topology, config())
            .err()
            .expect("an unknown store fails the topology")
            .to_string(),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("totals"), "{err}");
}
