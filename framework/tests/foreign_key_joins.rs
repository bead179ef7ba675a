//! Foreign-key table joins on the test driver: results follow updates and deletions on both
//! sides and changes of the foreign key, and an answer to a value the left row no longer has
//! never reaches the result.
//!
//! The scenarios follow Kafka Streams' `KTableKTableForeignKeyJoinScenarioTest` and
//! `KTableKTableForeignKeyJoinIntegrationTest`: left values are `"<value>|<foreign key>"`,
//! results `"(<left value>,<right value>)"`. Where Kafka Streams forwards a tombstone for a
//! key that had no result, streamtime forwards nothing.

use streamtime::serdes::{OptionSerde, StringSerde};
use streamtime::{
    Consumed, Materialized, Produced, StreamsBuilder, StreamsConfig, TopologyTestDriver,
};

fn foreign_key(value: &str) -> String {
    value.split('|').nth(1).unwrap_or_default().to_string()
}

fn driver(left_join: bool) -> TopologyTestDriver {
    driver_with_partitions(left_join, &[])
}

fn driver_with_partitions(left_join: bool, partitions: &[(&str, i32)]) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    let left = builder.table(
        "left",
        Consumed::with(StringSerde, StringSerde),
        Materialized::as_("left"),
    );
    let right = builder.table(
        "right",
        Consumed::with(StringSerde, StringSerde),
        Materialized::as_("right"),
    );
    let materialized = Materialized::as_("joined").with_value_serde(StringSerde);
    let joined = if left_join {
        left.left_join_foreign_key(
            &right,
            |v: &String| foreign_key(v),
            |l: &String, r: Option<&String>| format!("({l},{})", r.map_or("null", |r| r.as_str())),
            materialized,
        )
    } else {
        left.join_foreign_key(
            &right,
            |v: &String| foreign_key(v),
            |l: &String, r: &String| format!("({l},{r})"),
            materialized,
        )
    };
    joined
        .to_change_stream()
        .to("out", Produced::with(StringSerde, OptionSerde(StringSerde)));
    let topology = builder.build().unwrap();
    let config = StreamsConfig::new("fk", "unused");
    TopologyTestDriver::with_partitions(topology, config, partitions).unwrap()
}

struct Sides<'a> {
    driver: &'a TopologyTestDriver,
}

impl Sides<'_> {
    fn left(&self, key: &str, value: Option<&str>, ts: i64) {
        self.pipe("left", key, value, ts);
    }

    fn right(&self, key: &str, value: Option<&str>, ts: i64) {
        self.pipe("right", key, value, ts);
    }

    fn pipe(&self, topic: &str, key: &str, value: Option<&str>, ts: i64) {
        self.driver
            .input_topic(topic, StringSerde, OptionSerde(StringSerde))
            .pipe(key.to_string(), value.map(str::to_string), ts)
            .unwrap();
    }

    /// The results since the last call: `key=value` or `key=null` for a deletion.
    fn out(&self) -> Vec<String> {
        self.driver
            .output_topic("out", StringSerde, OptionSerde(StringSerde))
            .read_key_values()
            .into_iter()
            .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("null")))
            .collect()
    }
}

#[test]
fn an_inner_join_appears_when_both_rows_exist_and_goes_when_either_is_deleted() {
    let driver = driver(false);
    let sides = Sides { driver: &driver };
    sides.left("lhs1", Some("lhsValue1|rhs1"), 1);
    assert_eq!(sides.out(), Vec::<String>::new(), "no right row yet");
    sides.right("rhs1", Some("rhsValue1"), 2);
    assert_eq!(sides.out(), ["lhs1=(lhsValue1|rhs1,rhsValue1)"]);
    sides.right("rhs1", Some("rhsValue2"), 3);
    assert_eq!(sides.out(), ["lhs1=(lhsValue1|rhs1,rhsValue2)"]);
    sides.right("rhs1", None, 4);
    assert_eq!(sides.out(), ["lhs1=null"], "the right row was deleted");
    sides.right("rhs1", Some("rhsValue3"), 5);
    assert_eq!(sides.out(), ["lhs1=(lhsValue1|rhs1,rhsValue3)"]);
    sides.left("lhs1", None, 6);
    assert_eq!(sides.out(), ["lhs1=null"], "the left row was deleted");
    sides.right("rhs1", Some("rhsValue4"), 7);
    assert_eq!(
        sides.out(),
        Vec::<String>::new(),
        "a deleted row is unsubscribed"
    );
}

#[test]
fn a_changed_foreign_key_moves_the_row_to_its_new_right_row() {
    let driver = driver(false);
    let sides = Sides { driver: &driver };
    sides.right("rhs1", Some("rhsValue1"), 1);
    sides.left("lhs1", Some("lhsValue1|rhs1"), 2);
    assert_eq!(sides.out(), ["lhs1=(lhsValue1|rhs1,rhsValue1)"]);
    // The new foreign key has no row: the inner result goes.
    sides.left("lhs1", Some("lhsValue2|rhs2"), 3);
    assert_eq!(sides.out(), ["lhs1=null"]);
    sides.right("rhs1", Some("rhsValue1b"), 4);
    assert_eq!(sides.out(), Vec::<String>::new(), "unsubscribed from rhs1");
    sides.right("rhs2", Some("rhsValue2"), 5);
    assert_eq!(sides.out(), ["lhs1=(lhsValue2|rhs2,rhsValue2)"]);
    // Back to rhs1, which exists: one update, no deletion in between.
    sides.left("lhs1", Some("lhsValue3|rhs1"), 6);
    assert_eq!(sides.out(), ["lhs1=(lhsValue3|rhs1,rhsValue1b)"]);
}

#[test]
fn a_left_join_keeps_every_left_row_with_null_while_the_right_row_is_missing() {
    let driver = driver(true);
    let sides = Sides { driver: &driver };
    sides.left("lhs1", Some("lhsValue1|rhs1"), 1);
    assert_eq!(sides.out(), ["lhs1=(lhsValue1|rhs1,null)"]);
    sides.right("rhs1", Some("rhsValue1"), 2);
    assert_eq!(sides.out(), ["lhs1=(lhsValue1|rhs1,rhsValue1)"]);
    sides.left("lhs1", Some("lhsValue2|rhs2"), 3);
    assert_eq!(sides.out(), ["lhs1=(lhsValue2|rhs2,null)"]);
    sides.right("rhs2", Some("rhsValue2"), 4);
    assert_eq!(sides.out(), ["lhs1=(lhsValue2|rhs2,rhsValue2)"]);
    sides.right("rhs2", None, 5);
    assert_eq!(sides.out(), ["lhs1=(lhsValue2|rhs2,null)"]);
    sides.left("lhs1", None, 6);
    assert_eq!(sides.out(), ["lhs1=null"]);
}

#[test]
fn many_left_rows_share_a_right_row_and_each_gets_its_changes() {
    let driver = driver(false);
    let sides = Sides { driver: &driver };
    sides.right("rhs1", Some("R"), 1);
    for (i, key) in ["a", "b", "c"].iter().enumerate() {
        sides.left(key, Some(&format!("{key}|rhs1")), 2 + i as i64);
    }
    sides.left("d", Some("d|rhs10"), 5);
    assert_eq!(
        sides.out(),
        ["a=(a|rhs1,R)", "b=(b|rhs1,R)", "c=(c|rhs1,R)"]
    );
    // "rhs10" shares a prefix with "rhs1" and must not be answered by rhs1's change.
    sides.right("rhs1", Some("R2"), 6);
    let mut out = sides.out();
    out.sort();
    assert_eq!(out, ["a=(a|rhs1,R2)", "b=(b|rhs1,R2)", "c=(c|rhs1,R2)"]);
}

#[test]
fn an_answer_to_a_value_the_row_no_longer_has_is_dropped() {
    // Tables with different partition counts, as a foreign-key join allows: the left rows'
    // tasks and the right rows' tasks answer in whatever order the driver picks.
    let driver = driver_with_partitions(false, &[("left", 4), ("right", 3)]);
    let sides = Sides { driver: &driver };
    sides.right("rhs1", Some("R1"), 1);
    sides.right("rhs2", Some("R2"), 2);
    // Both subscriptions are in flight before either answer comes back.
    driver.hold();
    sides.left("lhs1", Some("first|rhs1"), 3);
    sides.left("lhs1", Some("second|rhs2"), 4);
    driver.release().unwrap();
    let out = sides.out();
    assert!(
        !out.iter().any(|r| r.contains("R1")),
        "the answer for the first value never joins the second: {out:?}"
    );
    assert_eq!(
        out.last().map(String::as_str),
        Some("lhs1=(second|rhs2,R2)")
    );
    let rows = driver
        .timestamped_key_value_store("joined", StringSerde, StringSerde)
        .unwrap();
    let rows: Vec<(&str, &str)> = rows
        .iter()
        .map(|(k, v, _)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(rows, [("lhs1", "(second|rhs2,R2)")]);
}

#[test]
fn a_foreign_key_join_without_a_result_serde_fails_the_build_naming_it() {
    let builder = StreamsBuilder::new();
    let left = builder.table(
        "left",
        Consumed::with(StringSerde, StringSerde),
        Materialized::as_("left"),
    );
    let right = builder.table(
        "right",
        Consumed::with(StringSerde, StringSerde),
        Materialized::as_("right"),
    );
    left.join_foreign_key(
        &right,
        |v: &String| foreign_key(v),
        |l: &String, r: &String| format!("{l}{r}"),
        Materialized::as_("joined"),
    );
    let Err(err) = builder.build() else {
        panic!("the build should fail without a result serde");
    };
    let err = err.to_string();
    assert!(err.contains("foreign-key join into joined"), "{err}");
}
