//! DSL joins on the test driver, with sides arriving out of order: stream–stream (inner,
//! left, outer; unmatched records emitted only once their window closed; late records
//! dropped), stream–table, table–table with deletions, and co-partitioning.

use std::time::Duration;

use streamtime::dsl::{JoinWindows, StreamJoined};
use streamtime::serdes::{OptionSerde, StringSerde};
use streamtime::{
    Consumed, Materialized, Produced, StreamsBuilder, StreamsConfig, TopologyTestDriver,
};

fn config() -> StreamsConfig {
    StreamsConfig::new("joins", "unused")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn show(v: Option<&String>) -> &str {
    v.map_or("null", |s| s.as_str())
}

/// `(key, value, timestamp)` of every unread record of `topic`.
fn read(driver: &TopologyTestDriver, topic: &str) -> Vec<(String, String, i64)> {
    driver
        .output_topic(topic, StringSerde, StringSerde)
        .read_records()
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect()
}

fn rec(key: &str, value: &str, ts: i64) -> (String, String, i64) {
    (key.to_string(), value.to_string(), ts)
}

/// A driver for `left` ⋈ `right` (both String → String topics) written to "out".
fn stream_stream(
    join: impl FnOnce(
        streamtime::KStream<String, String>,
        streamtime::KStream<String, String>,
    ) -> streamtime::KStream<String, String>,
) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    let left = builder.stream("left", Consumed::with(StringSerde, StringSerde));
    let right = builder.stream("right", Consumed::with(StringSerde, StringSerde));
    join(left, right).to("out", Produced::with(StringSerde, StringSerde));
    TopologyTestDriver::new(builder.build().unwrap(), config()).unwrap()
}

#[test]
fn inner_join_pairs_out_of_order_sides_within_the_window_and_drops_late_records() {
    let driver = stream_stream(|l, r| {
        l.join(
            &r,
            |a: &String, b: &String| format!("{a}+{b}"),
            JoinWindows::of_time_difference_and_grace(ms(10), ms(5)),
            StreamJoined::as_("inner"),
        )
    });
    let left = driver.input_topic("left", StringSerde, StringSerde);
    let right = driver.input_topic("right", StringSerde, StringSerde);
    left.pipe("a".into(), "L1".into(), 100).unwrap();
    assert!(read(&driver, "out").is_empty());
    right.pipe("a".into(), "R1".into(), 105).unwrap();
    assert_eq!(read(&driver, "out"), vec![rec("a", "L1+R1", 105)]);
    // Older than stream time (105) but within before + grace: joins, stamped with the later
    // side's time.
    right.pipe("a".into(), "R0".into(), 95).unwrap();
    assert_eq!(read(&driver, "out"), vec![rec("a", "L1+R0", 100)]);
    left.pipe("a".into(), "L2".into(), 112).unwrap();
    assert_eq!(read(&driver, "out"), vec![rec("a", "L2+R1", 112)]);
    // Other keys never meet.
    right.pipe("b".into(), "Rb".into(), 113).unwrap();
    assert!(read(&driver, "out").is_empty());
    // 90 + 10 + 5 < 113: the left record's window closed; it is dropped although R0 (95)
    // is still buffered.
    left.pipe("a".into(), "L0".into(), 90).unwrap();
    assert!(read(&driver, "out").is_empty());
    // 99 + 10 + 5 >= 113: still in grace.
    right.pipe("a".into(), "R9".into(), 99).unwrap();
    assert_eq!(read(&driver, "out"), vec![rec("a", "L1+R9", 100)]);
}

#[test]
fn left_join_emits_an_unmatched_left_record_only_after_its_window_closed() {
    let driver = stream_stream(|l, r| {
        l.left_join(
            &r,
            |a: &String, b: Option<&String>| format!("{a}+{}", show(b)),
            JoinWindows::of_time_difference_with_no_grace(ms(10)),
            StreamJoined::as_("left"),
        )
    });
    let left = driver.input_topic("left", StringSerde, StringSerde);
    let right = driver.input_topic("right", StringSerde, StringSerde);
    left.pipe("a".into(), "L1".into(), 100).unwrap();
    assert!(read(&driver, "out").is_empty(), "no premature null result");
    // The match arrives later, within the window: one result, and never "L1+null".
    right.pipe("a".into(), "R1".into(), 108).unwrap();
    assert_eq!(read(&driver, "out"), vec![rec("a", "L1+R1", 108)]);
    left.pipe("b".into(), "Lb".into(), 110).unwrap();
    right.pipe("x".into(), "Rx".into(), 115).unwrap();
    right.pipe("x".into(), "Rx".into(), 120).unwrap();
    assert!(
        read(&driver, "out").is_empty(),
        "Lb's window closes after 120"
    );
    // Stream time 121 passes 110 + 10: Lb comes out alone, with its own timestamp.
    right.pipe("x".into(), "Rx".into(), 121).unwrap();
    assert_eq!(read(&driver, "out"), vec![rec("b", "Lb+null", 110)]);
    left.pipe("c".into(), "Lc".into(), 125).unwrap();
    right.pipe("c".into(), "Rc".into(), 130).unwrap();
    assert_eq!(read(&driver, "out"), vec![rec("c", "Lc+Rc", 130)]);
    // Late (105 + 10 < 130): dropped, so it is not emitted alone later either.
    left.pipe("d".into(), "Ld".into(), 105).unwrap();
    right.pipe("y".into(), "Ry".into(), 500).unwrap();
    assert!(read(&driver, "out").is_empty());
}

#[test]
fn outer_join_with_asymmetric_windows_emits_both_sides_alone_after_their_windows() {
    // A left record at t joins right records in [t - 2, t + 10]; grace 5. So a left record's
    // window closes at t + 15 and a right record's at t + 7.
    let driver = stream_stream(|l, r| {
        l.outer_join(
            &r,
            |a: Option<&String>, b: Option<&String>| format!("{}+{}", show(a), show(b)),
            JoinWindows::of_time_difference_and_grace(ms(10), ms(5)).before(ms(2)),
            StreamJoined::as_("outer"),
        )
    });
    let left = driver.input_topic("left", StringSerde, StringSerde);
    let right = driver.input_topic("right", StringSerde, StringSerde);
    right.pipe("a".into(), "R1".into(), 100).unwrap();
    // 103 is after 100 + 2: no match either way.
    left.pipe("a".into(), "L3".into(), 103).unwrap();
    assert!(read(&driver, "out").is_empty());
    // Stream time 108 passes R1's close (107) but not L3's (118).
    left.pipe("x".into(), "Lx".into(), 108).unwrap();
    assert_eq!(read(&driver, "out"), vec![rec("a", "null+R1", 100)]);
    // Out of order but within grace: matches the waiting L3, which is then never alone.
    right.pipe("a".into(), "R4".into(), 104).unwrap();
    assert_eq!(read(&driver, "out"), vec![rec("a", "L3+R4", 104)]);
    right.pipe("x".into(), "Rx".into(), 130).unwrap();
    assert_eq!(read(&driver, "out"), vec![rec("x", "Lx+null", 108)]);
    // Late: 99 + 10 + 5 < 130.
    left.pipe("a".into(), "L9".into(), 99).unwrap();
    assert!(read(&driver, "out").is_empty());
    left.pipe("z".into(), "Lz".into(), 200).unwrap();
    assert_eq!(read(&driver, "out"), vec![rec("x", "null+Rx", 130)]);
}

#[test]
fn a_record_emitted_alone_never_joins_a_partner_accepted_afterwards() {
    // Left records see right records up to 10 before and 2 after them, no grace: a left
    // record at 100 closes at 102, but a right record at 102 stays acceptable until 112
    // and lies in that left record's window.
    let driver = stream_stream(|l, r| {
        l.outer_join(
            &r,
            |a: Option<&String>, b: Option<&String>| format!("{}+{}", show(a), show(b)),
            JoinWindows::of_time_difference_with_no_grace(ms(2)).before(ms(10)),
            StreamJoined::as_("strict"),
        )
    });
    let left = driver.input_topic("left", StringSerde, StringSerde);
    let right = driver.input_topic("right", StringSerde, StringSerde);
    left.pipe("a".into(), "L1".into(), 100).unwrap();
    left.pipe("other".into(), "Lo".into(), 103).unwrap();
    assert_eq!(read(&driver, "out"), vec![rec("a", "L1+null", 100)]);
    right.pipe("a".into(), "R2".into(), 102).unwrap();
    assert!(read(&driver, "out").is_empty(), "no L1+R2 after L1+null");
    left.pipe("other".into(), "Lo".into(), 113).unwrap();
    assert_eq!(
        read(&driver, "out"),
        vec![rec("a", "null+R2", 102), rec("other", "Lo+null", 103)]
    );
}

#[test]
fn a_join_input_whose_key_changed_is_repartitioned_to_the_other_sides_partition_count() {
    let builder = StreamsBuilder::new();
    let left = builder
        .stream("left", Consumed::with(StringSerde, StringSerde))
        .select_key(|_k, v: &String| v.clone());
    let right = builder.stream("right", Consumed::with(StringSerde, StringSerde));
    left.join(
        &right,
        |a: &String, b: &String| format!("{a}+{b}"),
        JoinWindows::of_time_difference_with_no_grace(ms(10)),
        StreamJoined::as_("rekeyed"),
    )
    .to("out", Produced::with(StringSerde, StringSerde));
    let topology = builder.build().unwrap();
    let description = topology.describe().to_string();
    assert!(
        description.contains("rekeyed-left-repartition"),
        "{description}"
    );
    let driver =
        TopologyTestDriver::with_partitions(topology, config(), &[("left", 2), ("right", 3)])
            .unwrap();
    let left = driver.input_topic("left", StringSerde, StringSerde);
    let right = driver.input_topic("right", StringSerde, StringSerde);
    for (i, key) in ["k1", "k2", "k3", "k4"].iter().enumerate() {
        right
            .pipe(key.to_string(), format!("r{i}"), 10 + i as i64)
            .unwrap();
        // The left key is the value: after repartitioning it meets the right record.
        left.pipe(format!("x{i}"), key.to_string(), 12 + i as i64)
            .unwrap();
    }
    let mut out = read(&driver, "out");
    out.sort();
    assert_eq!(
        out,
        vec![
            rec("k1", "k1+r0", 12),
            rec("k2", "k2+r1", 13),
            rec("k3", "k3+r2", 14),
            rec("k4", "k4+r3", 15),
        ]
    );
    let repartitioned = driver.raw_records("joins-rekeyed-left-repartition");
    assert_eq!(repartitioned.len(), 4);
    assert!(repartitioned.iter().all(|r| (0..3).contains(&r.partition)));
}

#[test]
fn joining_inputs_with_different_partition_counts_fails_before_processing() {
    let builder = StreamsBuilder::new();
    let left = builder.stream("left", Consumed::with(StringSerde, StringSerde));
    let right = builder.stream("right", Consumed::with(StringSerde, StringSerde));
    left.join(
        &right,
        |a: &String, b: &String| format!("{a}+{b}"),
        JoinWindows::of_time_difference_with_no_grace(ms(10)),
        StreamJoined::default(),
    )
    .to("out", Produced::with(StringSerde, StringSerde));
    let err = TopologyTestDriver::with_partitions(
        builder.build().unwrap(),
        config(),
        &[("left", 2), ("right", 3)],
    )
    .err()
    .expect("mismatched partition counts must fail");
    let message = err.to_string();
    assert!(message.contains("co-partitioned"), "{message}");
    assert!(message.contains("left (2 partitions)"), "{message}");
    assert!(message.contains("right (3 partitions)"), "{message}");

    let builder = StreamsBuilder::new();
    let users = builder.table(
        "users",
        Consumed::with(StringSerde, StringSerde),
        Materialized::as_("users"),
    );
    builder
        .stream("orders", Consumed::with(StringSerde, StringSerde))
        .join_table(&users, |o: &String, u: &String| format!("{o}/{u}"))
        .to("out", Produced::with(StringSerde, StringSerde));
    let err = TopologyTestDriver::with_partitions(
        builder.build().unwrap(),
        config(),
        &[("orders", 4), ("users", 1)],
    )
    .err()
    .expect("mismatched partition counts must fail");
    assert!(err.to_string().contains("orders (4 partitions)"), "{err}");
}

#[test]
fn stream_table_joins_see_the_table_as_of_processing_order() {
    let builder = StreamsBuilder::new();
    let users = builder.table(
        "users",
        Consumed::with(StringSerde, StringSerde),
        Materialized::as_("users"),
    );
    let orders = builder.stream("orders", Consumed::with(StringSerde, StringSerde));
    orders
        .join_table(&users, |o: &String, u: &String| format!("{o}/{u}"))
        .to("inner", Produced::with(StringSerde, StringSerde));
    orders
        .left_join_table(&users, |o: &String, u: Option<&String>| {
            format!("{o}/{}", show(u))
        })
        .to("left", Produced::with(StringSerde, StringSerde));
    let driver = TopologyTestDriver::new(builder.build().unwrap(), config()).unwrap();
    let order = driver.input_topic("orders", StringSerde, StringSerde);
    let user = driver.input_topic("users", StringSerde, OptionSerde(StringSerde));

    order.pipe("u1".into(), "o1".into(), 10).unwrap();
    user.pipe("u1".into(), Some("Ann".into()), 20).unwrap();
    // Older than the table's update, but processed after it: sees it.
    order.pipe("u1".into(), "o2".into(), 15).unwrap();
    // An out-of-order table update still replaces the value; it emits nothing.
    user.pipe("u1".into(), Some("Bob".into()), 5).unwrap();
    order.pipe("u1".into(), "o3".into(), 30).unwrap();
    user.pipe("u1".into(), None, 40).unwrap();
    order.pipe("u1".into(), "o4".into(), 50).unwrap();
    assert_eq!(
        read(&driver, "inner"),
        vec![rec("u1", "o2/Ann", 15), rec("u1", "o3/Bob", 30)]
    );
    assert_eq!(
        read(&driver, "left"),
        vec![
            rec("u1", "o1/null", 10),
            rec("u1", "o2/Ann", 15),
            rec("u1", "o3/Bob", 30),
            rec("u1", "o4/null", 50),
        ]
    );

    // Records waiting together are taken in timestamp order: the order at 60 goes before
    // the table update at 70 that was piped first.
    driver.hold();
    user.pipe("u2".into(), Some("Cy".into()), 70).unwrap();
    order.pipe("u2".into(), "o5".into(), 60).unwrap();
    order.pipe("u2".into(), "o6".into(), 80).unwrap();
    driver.release().unwrap();
    assert_eq!(read(&driver, "inner"), vec![rec("u2", "o6/Cy", 80)]);
    assert_eq!(
        read(&driver, "left"),
        vec![rec("u2", "o5/null", 60), rec("u2", "o6/Cy", 80)]
    );
    let table = driver
        .timestamped_key_value_store("users", StringSerde, StringSerde)
        .unwrap();
    let rows: Vec<(&str, &str)> = table
        .iter()
        .map(|(k, v, _)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(rows, [("u2", "Cy")], "u1 was deleted");
}

#[test]
fn table_table_joins_follow_updates_and_deletions() {
    let builder = StreamsBuilder::new();
    let left = builder.table(
        "left",
        Consumed::with(StringSerde, StringSerde),
        Materialized::as_("left-table"),
    );
    let right = builder.table(
        "right",
        Consumed::with(StringSerde, StringSerde),
        Materialized::as_("right-table"),
    );
    let changes = Produced::with(StringSerde, OptionSerde(StringSerde));
    left.join(
        &right,
        |a: &String, b: &String| format!("{a}+{b}"),
        Materialized::as_("inner").with_value_serde(StringSerde),
    )
    .to_change_stream()
    .to("inner", changes);
    left.left_join(
        &right,
        |a: &String, b: Option<&String>| format!("{a}+{}", show(b)),
        Materialized::as_("left-join").with_value_serde(StringSerde),
    )
    .to_change_stream()
    .to(
        "left-join",
        Produced::with(StringSerde, OptionSerde(StringSerde)),
    );
    let outer = left.outer_join(
        &right,
        |a: Option<&String>, b: Option<&String>| format!("{}+{}", show(a), show(b)),
        Materialized::as_("outer").with_value_serde(StringSerde),
    );
    outer.to_change_stream().to(
        "outer",
        Produced::with(StringSerde, OptionSerde(StringSerde)),
    );
    outer
        .to_stream()
        .to("outer-updates", Produced::with(StringSerde, StringSerde));
    let driver = TopologyTestDriver::new(builder.build().unwrap(), config()).unwrap();
    let l = driver.input_topic("left", StringSerde, OptionSerde(StringSerde));
    let r = driver.input_topic("right", StringSerde, OptionSerde(StringSerde));

    l.pipe("k".into(), Some("A".into()), 10).unwrap();
    r.pipe("k".into(), Some("X".into()), 5).unwrap();
    r.pipe("j".into(), Some("Y".into()), 7).unwrap();
    l.pipe("k".into(), Some("B".into()), 20).unwrap();
    r.pipe("k".into(), None, 30).unwrap();
    l.pipe("k".into(), None, 40).unwrap();
    r.pipe("j".into(), None, 50).unwrap();

    let changes = |topic: &str| -> Vec<(String, Option<String>, i64)> {
        driver
            .output_topic(topic, StringSerde, OptionSerde(StringSerde))
            .read_records()
            .into_iter()
            .map(|r| (r.key, r.value, r.timestamp))
            .collect()
    };
    let set = |k: &str, v: &str, ts: i64| (k.to_string(), Some(v.to_string()), ts);
    let del = |k: &str, ts: i64| (k.to_string(), None, ts);
    assert_eq!(
        changes("inner"),
        vec![set("k", "A+X", 10), set("k", "B+X", 20), del("k", 30)]
    );
    assert_eq!(
        changes("left-join"),
        vec![
            set("k", "A+null", 10),
            set("k", "A+X", 10),
            set("k", "B+X", 20),
            set("k", "B+null", 30),
            del("k", 40),
        ]
    );
    assert_eq!(
        changes("outer"),
        vec![
            set("k", "A+null", 10),
            set("k", "A+X", 10),
            set("j", "null+Y", 7),
            set("k", "B+X", 20),
            set("k", "B+null", 30),
            del("k", 40),
            del("j", 50),
        ]
    );
    // The updates stream leaves the deletions out.
    assert_eq!(
        read(&driver, "outer-updates"),
        vec![
            rec("k", "A+null", 10),
            rec("k", "A+X", 10),
            rec("j", "null+Y", 7),
            rec("k", "B+X", 20),
            rec("k", "B+null", 30),
        ]
    );
    // Every result was deleted again, so the joined tables are empty.
    for store in ["inner", "left-join", "outer"] {
        let entries = driver
            .key_value_store_entries(store, StringSerde, streamtime::serdes::BytesSerde)
            .unwrap();
        assert!(entries.is_empty(), "{store}: {entries:?}");
    }
}

#[test]
fn joins_without_known_serdes_fail_to_build_with_a_clear_error() {
    let builder = StreamsBuilder::new();
    let left = builder
        .stream("left", Consumed::with(StringSerde, StringSerde))
        .map_values(|v| v.len() as i64);
    let right = builder.stream("right", Consumed::with(StringSerde, StringSerde));
    left.join(
        &right,
        |a: &i64, b: &String| format!("{a}+{b}"),
        JoinWindows::of_time_difference_with_no_grace(ms(10)),
        StreamJoined::as_("typed"),
    )
    .to("out", Produced::with(StringSerde, StringSerde));
    let Err(err) = builder.build() else {
        panic!("the i64 serde is unknown: building must fail");
    };
    assert!(
        err.to_string().contains("StreamJoined::with_serdes"),
        "{err}"
    );

    let builder = StreamsBuilder::new();
    let a = builder.table(
        "a",
        Consumed::with(StringSerde, StringSerde),
        Materialized::as_("a"),
    );
    let b = builder.table(
        "b",
        Consumed::with(StringSerde, StringSerde),
        Materialized::as_("b"),
    );
    let _ = a.join(
        &b,
        |x: &String, y: &String| format!("{x}{y}"),
        Materialized::as_("ab"),
    );
    let Err(err) = builder.build() else {
        panic!("the result serde is unknown: building must fail");
    };
    assert!(err.to_string().contains("with_value_serde"), "{err}");
}
