//! Versioned tables (`Materialized::as_versioned`) and the stream–table joins that read them
//! as of each stream record's time, with and without a grace period, on the test driver.
//!
//! The grace-period cases port the expectations of Kafka Streams' `KStreamKTableJoinTest`
//! (`shouldDelayJoinByGracePeriod`, `shouldHandleLateJoinsWithGracePeriod`,
//! `shouldFailIfTableIsNotVersioned`, `shouldFailIfGracePeriodIsLongerThanHistoryRetention`).

use std::time::Duration;

use streamtime::serdes::{I32Serde, I64Serde, StringSerde};
use streamtime::{
    Consumed, Headers, Joined, Materialized, Produced, Record, StreamsBuilder, StreamsConfig,
    TopologyTestDriver,
};

const FIVE_MINUTES: Duration = Duration::from_secs(300);

fn driver(builder: StreamsBuilder) -> TopologyTestDriver {
    TopologyTestDriver::new(
        builder.build().unwrap(),
        StreamsConfig::new("versioned", "unused"),
    )
    .unwrap()
}

/// `stream` joined with the versioned table `table` (5 minutes of history) into `out`, with
/// `joined`; values are `stream+table`.
fn grace_join(grace: Option<Duration>) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    let table = builder.table(
        "table",
        Consumed::with(I32Serde, StringSerde),
        Materialized::as_versioned("V-grace", FIVE_MINUTES),
    );
    let joined = match grace {
        Some(g) => Joined::with_grace_period(g).with_name("Grace"),
        None => Joined::default(),
    };
    builder
        .stream("stream", Consumed::with(I32Serde, StringSerde))
        .join_table_with(&table, |s: &String, t: &String| format!("{s}+{t}"), joined)
        .to("out", Produced::with(I32Serde, StringSerde));
    driver(builder)
}

fn out(driver: &TopologyTestDriver) -> Vec<(i32, String, i64)> {
    driver
        .output_topic("out", I32Serde, StringSerde)
        .read_records()
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect()
}

fn kvt(k: i32, v: &str, ts: i64) -> (i32, String, i64) {
    (k, v.to_string(), ts)
}

/// Keys 0..n with `prefix<key>`, at timestamp `ts_of(key)`.
fn push(
    topic: &streamtime::TestInputTopic<i32, String>,
    n: i32,
    prefix: &str,
    ts_of: impl Fn(i32) -> i64,
) {
    for k in 0..n {
        topic.pipe(k, format!("{prefix}{k}"), ts_of(k)).unwrap();
    }
}

#[test]
fn a_versioned_table_is_read_as_of_each_stream_records_time() {
    let builder = StreamsBuilder::new();
    let prices = builder.table(
        "prices",
        Consumed::with(StringSerde, I64Serde),
        Materialized::as_versioned("prices", FIVE_MINUTES),
    );
    let plain = builder.table(
        "prices-plain",
        Consumed::with(StringSerde, I64Serde),
        Materialized::as_("plain"),
    );
    let orders = builder.stream("orders", Consumed::with(StringSerde, I64Serde));
    orders
        .left_join_table(&prices, |q: &i64, p: Option<&i64>| p.map_or(-1, |p| q * p))
        .to("versioned-totals", Produced::with(StringSerde, I64Serde));
    orders
        .left_join_table(&plain, |q: &i64, p: Option<&i64>| p.map_or(-1, |p| q * p))
        .to("plain-totals", Produced::with(StringSerde, I64Serde));
    let d = driver(builder);
    for topic in ["prices", "prices-plain"] {
        let t = d.input_topic(topic, StringSerde, I64Serde);
        t.pipe("pen".into(), 2, 100).unwrap();
        t.pipe("pen".into(), 5, 300).unwrap();
    }
    let orders = d.input_topic("orders", StringSerde, I64Serde);
    // Orders replayed after the price changes: as of 50 there was no price, as of 200 it
    // was 2, as of 400 it is 5. The plain table only knows its latest value.
    for ts in [50, 200, 400] {
        orders.pipe("pen".into(), 10, ts).unwrap();
    }
    let values = |topic| d.output_topic(topic, StringSerde, I64Serde).read_values();
    assert_eq!(values("versioned-totals"), vec![-1, 20, 50]);
    assert_eq!(values("plain-totals"), vec![50, 50, 50]);
}

#[test]
fn an_out_of_order_table_update_goes_into_the_history_and_is_not_forwarded() {
    let builder = StreamsBuilder::new();
    builder
        .table(
            "prices",
            Consumed::with(StringSerde, I64Serde),
            Materialized::as_versioned("prices", FIVE_MINUTES),
        )
        .to_change_stream()
        .to(
            "changes",
            Produced::with(StringSerde, streamtime::serdes::OptionSerde(I64Serde)),
        );
    let d = driver(builder);
    let prices = d.input_topic("prices", StringSerde, I64Serde);
    prices.pipe("pen".into(), 2, 100).unwrap();
    prices.pipe("pen".into(), 5, 300).unwrap();
    prices.pipe("pen".into(), 3, 200).unwrap(); // late: the table's current value stays 5
    let changes: Vec<(String, Option<i64>)> = d
        .output_topic(
            "changes",
            StringSerde,
            streamtime::serdes::OptionSerde(I64Serde),
        )
        .read_key_values();
    assert_eq!(
        changes,
        vec![("pen".to_string(), Some(2)), ("pen".to_string(), Some(5))]
    );
    let at = |t| {
        d.versioned_store_as_of("prices", StringSerde, I64Serde, &"pen".to_string(), t)
            .unwrap()
    };
    assert_eq!(at(150), Some((2, 100, Some(200))));
    assert_eq!(at(250), Some((3, 200, Some(300))));
    assert_eq!(at(350), Some((5, 300, None)));
    let latest = d
        .timestamped_key_value_store("prices", StringSerde, I64Serde)
        .unwrap();
    assert_eq!(latest, vec![("pen".to_string(), 5, 300)]);
}

#[test]
fn a_table_update_older_than_the_history_retention_is_dropped() {
    let builder = StreamsBuilder::new();
    builder
        .table(
            "prices",
            Consumed::with(StringSerde, I64Serde),
            Materialized::as_versioned("prices", Duration::from_millis(100)),
        )
        .to_stream()
        .to("updates", Produced::with(StringSerde, I64Serde));
    let d = driver(builder);
    let prices = d.input_topic("prices", StringSerde, I64Serde);
    prices.pipe("pen".into(), 2, 1_000).unwrap();
    prices.pipe("ink".into(), 7, 1_050).unwrap();
    prices.pipe("pen".into(), 9, 899).unwrap(); // 151 ms behind stream time: expired
    prices.pipe("pen".into(), 4, 960).unwrap(); // within the history: kept, not forwarded
    let updates = d
        .output_topic("updates", StringSerde, I64Serde)
        .read_values();
    assert_eq!(updates, vec![2, 7]);
    let at = |t| {
        d.versioned_store_as_of("prices", StringSerde, I64Serde, &"pen".to_string(), t)
            .unwrap()
    };
    assert_eq!(at(970), Some((4, 960, Some(1_000))));
    assert_eq!(
        at(940),
        None,
        "before the history retention nothing is read"
    );
}

#[test]
fn a_grace_period_delays_each_join_until_stream_time_passes_it() {
    let d = grace_join(Some(Duration::from_millis(2)));
    let table = d.input_topic("table", I32Serde, StringSerde);
    let stream = d.input_topic("stream", I32Serde, StringSerde);
    push(&table, 4, "Y", |_| 0);
    push(&stream, 4, "X", i64::from);
    assert_eq!(out(&d), vec![kvt(0, "X0+Y0", 0), kvt(1, "X1+Y1", 1)]);
    push(&table, 4, "YY", |_| 0);
    assert_eq!(out(&d), vec![]);
    push(&stream, 4, "X", i64::from);
    assert_eq!(out(&d), vec![kvt(0, "X0+YY0", 0), kvt(1, "X1+YY1", 1)]);
    stream.pipe(5, "test".into(), 7).unwrap();
    assert_eq!(
        out(&d),
        vec![
            kvt(2, "X2+YY2", 2),
            kvt(2, "X2+YY2", 2),
            kvt(3, "X3+YY3", 3),
            kvt(3, "X3+YY3", 3)
        ]
    );
    push(&table, 4, "YYY", |_| 0);
    assert_eq!(out(&d), vec![]);
}

#[test]
fn a_stream_record_already_older_than_the_grace_period_is_joined_at_once() {
    let d = grace_join(Some(Duration::from_millis(2)));
    let table = d.input_topic("table", I32Serde, StringSerde);
    let stream = d.input_topic("stream", I32Serde, StringSerde);
    push(&table, 4, "Y", |_| 0);
    push(&stream, 4, "X", i64::from);
    assert_eq!(out(&d), vec![kvt(0, "X0+Y0", 0), kvt(1, "X1+Y1", 1)]);
    push(&stream, 1, "X", i64::from);
    assert_eq!(out(&d), vec![kvt(0, "X0+Y0", 0)]);
}

#[test]
fn held_records_are_joined_in_timestamp_order_with_the_table_as_of_their_time_and_their_headers() {
    let d = grace_join(Some(Duration::from_millis(10)));
    let table = d.input_topic("table", I32Serde, StringSerde);
    let stream = d.input_topic("stream", I32Serde, StringSerde);
    table.pipe(1, "old".into(), 0).unwrap();
    let tagged = |v: &str, ts: i64, tag: &str| {
        Record::new(1, v.to_string(), ts).with_headers(Headers::new().with("tag", tag))
    };
    stream.pipe_record(tagged("b", 6, "second"), None).unwrap();
    stream.pipe_record(tagged("a", 3, "first"), None).unwrap();
    table.pipe(1, "new".into(), 5).unwrap(); // late table update: applies to b, not to a
    assert_eq!(out(&d), vec![]);
    stream.pipe(2, "release".into(), 16).unwrap(); // cutoff 6
    let records = d.output_topic("out", I32Serde, StringSerde).read_records();
    let seen: Vec<(String, i64, Option<Vec<u8>>)> = records
        .iter()
        .map(|r| {
            (
                r.value.clone(),
                r.timestamp,
                r.headers.last("tag").map(<[u8]>::to_vec),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("a+old".to_string(), 3, Some(b"first".to_vec())),
            ("b+new".to_string(), 6, Some(b"second".to_vec())),
        ]
    );
}

#[test]
fn without_a_grace_period_a_versioned_join_answers_at_once() {
    let d = grace_join(None);
    let table = d.input_topic("table", I32Serde, StringSerde);
    let stream = d.input_topic("stream", I32Serde, StringSerde);
    table.pipe(1, "t10".into(), 10).unwrap();
    stream.pipe(1, "s5".into(), 5).unwrap(); // no version yet at 5: inner join gives nothing
    stream.pipe(1, "s12".into(), 12).unwrap();
    assert_eq!(out(&d), vec![kvt(1, "s12+t10", 12)]);
}

#[test]
fn a_grace_period_on_a_table_that_is_not_versioned_fails_the_build() {
    let builder = StreamsBuilder::new();
    let table = builder.table(
        "table",
        Consumed::with(StringSerde, StringSerde),
        Materialized::as_("plain"),
    );
    builder
        .stream("stream", Consumed::with(StringSerde, StringSerde))
        .join_table_with(
            &table,
            |a: &String, b: &String| format!("{a}{b}"),
            Joined::with_grace_period(Duration::from_millis(6)),
        )
        .to("out", Produced::with(StringSerde, StringSerde));
    let err = builder.build().unwrap_err().to_string();
    assert!(
        err.contains("a grace period needs a versioned table"),
        "{err}"
    );
}

#[test]
fn a_grace_period_longer_than_the_history_retention_fails_the_build() {
    let builder = StreamsBuilder::new();
    let table = builder.table(
        "table",
        Consumed::with(StringSerde, StringSerde),
        Materialized::as_versioned("tableB", FIVE_MINUTES),
    );
    builder
        .stream("stream", Consumed::with(StringSerde, StringSerde))
        .join_table_with(
            &table,
            |a: &String, b: &String| format!("{a}{b}"),
            Joined::with_grace_period(Duration::from_secs(360)),
        )
        .to("out", Produced::with(StringSerde, StringSerde));
    let err = builder.build().unwrap_err().to_string();
    assert!(
        err.contains("exceeds the table's history retention"),
        "{err}"
    );
}

#[test]
fn a_versioned_store_for_an_aggregation_fails_the_build() {
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .count(Materialized::as_versioned("counts", FIVE_MINUTES));
    let err = builder.build().unwrap_err().to_string();
    assert!(
        err.contains("Materialized::as_versioned is for tables"),
        "{err}"
    );
}
