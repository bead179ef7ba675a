//! Repartitioning through the driver: records keep their timestamps and headers.

use super::*;

fn header(value: &str) -> Headers {
    Headers::new()
        .with("h", value.as_bytes().to_vec())
        .with("trace", b"t".to_vec())
}

/// Key, value, timestamp, timestamp type and headers of a raw record.
type RawSummary = (Vec<u8>, Vec<u8>, i64, TimestampType, Headers);

fn check_repartition_keeps_time_and_headers(topology: Topology) {
    let driver = TopologyTestDriver::new(topology, config()).unwrap();
    let input = driver.input_topic("in", StringSerde, StringSerde);
    // Out of timestamp order on purpose: the repartition topic must keep each record's own.
    for (k, v, ts, h) in [
        ("k1", "x:1", 100, "1"),
        ("k2", "y:2", 50, "2"),
        ("k3", "x:3", 75, "3"),
    ] {
        input
            .pipe_record(Record::new(s(k), s(v), ts).with_headers(header(h)), None)
            .unwrap();
    }

    let repartitioned: Vec<RawSummary> = driver
        .raw_records("app-by-x-repartition")
        .into_iter()
        .map(|r| {
            (
                r.key.unwrap(),
                r.value.unwrap(),
                r.timestamp,
                r.timestamp_type,
                r.headers,
            )
        })
        .collect();
    let created = TimestampType::CreateTime;
    assert_eq!(
        repartitioned,
        vec![
            (b"x".to_vec(), b"x:1".to_vec(), 100, created, header("1")),
            (b"y".to_vec(), b"y:2".to_vec(), 50, created, header("2")),
            (b"x".to_vec(), b"x:3".to_vec(), 75, created, header("3")),
        ]
    );
    // Internal topics are only ever addressed by their prefixed name.
    assert!(driver.raw_records("by-x-repartition").is_empty());

    let out = driver
        .output_topic("out", StringSerde, StringSerde)
        .read_records();
    assert_eq!(
        out,
        vec![
            Record::new(s("x"), s("x:1"), 100).with_headers(header("1")),
            Record::new(s("y"), s("y:2"), 50).with_headers(header("2")),
            Record::new(s("x"), s("x:3"), 75).with_headers(header("3")),
        ]
    );
    // The downstream task's stream time comes from the event times carried through the topic.
    assert_eq!(driver.stream_time(task(1, 0)), Some(100));
}

#[test]
fn select_key_repartition_keeps_timestamps_and_headers() {
    check_repartition_keeps_time_and_headers(rekeyed("by-x"));
}

#[test]
fn map_repartition_keeps_timestamps_and_headers() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .map(|_k, v: String| (v.split(':').next().unwrap_or_default().to_string(), v))
        .repartition(Repartitioned::as_("by-x"))
        .to("out", Produced::default());
    check_repartition_keeps_time_and_headers(builder.build().unwrap());
}
