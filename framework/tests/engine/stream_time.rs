//! Stream time: the running maximum of processed timestamps, across partitions in record-choice order.

use super::*;

/// Logs (topic, record timestamp, stream time seen while processing it) and passes records on.
struct StreamTimeProbe {
    seen: Log<(String, i64, i64)>,
}

impl Processor<String, String, String, String> for StreamTimeProbe {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<String, String>,
        record: Record<String, String>,
    ) -> ProcessResult {
        let topic = ctx.record_metadata().expect("processing a record").topic;
        self.seen
            .lock()
            .unwrap()
            .push((topic.to_string(), record.timestamp, ctx.stream_time()));
        ctx.forward(record)
    }
}

fn probe_topology(topics: &[&str], seen: &Log<(String, i64, i64)>) -> Topology {
    let seen = seen.clone();
    let mut topology = Topology::new();
    let sources: Vec<String> = topics.iter().map(|t| format!("src-{t}")).collect();
    for (topic, source) in topics.iter().zip(&sources) {
        topology
            .add_source(source, &[topic], StringSerde, StringSerde)
            .unwrap();
    }
    let parents: Vec<&str> = sources.iter().map(String::as_str).collect();
    topology
        .add_processor(
            "probe",
            move || StreamTimeProbe { seen: seen.clone() },
            &parents,
        )
        .unwrap()
        .add_sink("out", "out", StringSerde, StringSerde, &["probe"])
        .unwrap();
    topology
}

#[test]
fn stream_time_is_the_running_max_of_processed_timestamps() {
    let seen = log();
    let driver = TopologyTestDriver::new(probe_topology(&["in"], &seen), config()).unwrap();
    assert_eq!(driver.stream_time(task(0, 0)), Some(-1));
    let input = driver.input_topic("in", StringSerde, StringSerde);
    for ts in [10, 5, 20, 15, 3, 21] {
        input.pipe(s("k"), s("v"), ts).unwrap();
    }
    let stream_times: Vec<(i64, i64)> =
        taken(&seen).into_iter().map(|(_, t, st)| (t, st)).collect();
    assert_eq!(
        stream_times,
        vec![(10, 10), (5, 10), (20, 20), (15, 20), (3, 20), (21, 21)]
    );
    assert_eq!(driver.stream_time(task(0, 0)), Some(21));
    // Late records are processed, not dropped, and keep their own timestamp.
    let out: Vec<i64> = driver
        .output_topic("out", StringSerde, StringSerde)
        .read_records()
        .iter()
        .map(|r| r.timestamp)
        .collect();
    assert_eq!(out, vec![10, 5, 20, 15, 3, 21]);
}

#[test]
fn stream_time_across_partitions_follows_record_choice_and_never_decreases() {
    let seen = log();
    let driver = TopologyTestDriver::new(probe_topology(&["a", "b"], &seen), config()).unwrap();
    let a = driver.input_topic("a", StringSerde, StringSerde);
    let b = driver.input_topic("b", StringSerde, StringSerde);
    // Buffered together, as when an app starts with data waiting on the broker.
    driver.hold();
    a.pipe(s("k"), s("a0"), 10).unwrap();
    a.pipe(s("k"), s("a1"), 30).unwrap();
    b.pipe(s("k"), s("b0"), 20).unwrap();
    b.pipe(s("k"), s("b1"), 5).unwrap();
    driver.release().unwrap();
    assert_eq!(
        taken(&seen),
        vec![
            (s("a"), 10, 10),
            (s("b"), 20, 20),
            // Offset order inside b beats timestamp order: 5 comes after 20 and is late.
            (s("b"), 5, 20),
            (s("a"), 30, 30),
        ]
    );
    assert_eq!(driver.stream_time(task(0, 0)), Some(30));
    assert_eq!(driver.stream_time(task(0, 1)), None);
}
