//! The stream-time engine without Kafka: punctuation, monotonic stream time, depth-first
//! order, sub-topology cutting and naming, repartitioning, partition counts, error reporting
//! and `max_task_idle`, all through `TopologyTestDriver` and the public API.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use streamtime::partitioner::partition_for_key;
use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::timestamp::InvalidTimestampPolicy;
use streamtime::{
    Consumed, Headers, ProcessResult, Processor, ProcessorContext, Produced, Punctuation,
    PunctuationType, Record, Repartitioned, StreamsBuilder, StreamsConfig, StreamsError, TaskId,
    TimestampType, Topology, TopologyTestDriver,
};

type Log<T> = Arc<Mutex<Vec<T>>>;

fn log<T>() -> Log<T> {
    Arc::new(Mutex::new(Vec::new()))
}

fn taken<T: Clone>(log: &Log<T>) -> Vec<T> {
    std::mem::take(&mut *log.lock().unwrap())
}

fn config() -> StreamsConfig {
    StreamsConfig::new("app", "unused")
}

fn task(subtopology: u32, partition: i32) -> TaskId {
    TaskId {
        subtopology,
        partition,
    }
}

fn s(v: &str) -> String {
    v.to_string()
}

// ---------------------------------------------------------------------------------------------
// 1. Punctuation
// ---------------------------------------------------------------------------------------------

/// Schedules one punctuator in `init`, ignores its input, and forwards a `tick` record per
/// punctuation so the punctuation timestamp can be checked on the output topic too.
struct Ticker {
    interval: Duration,
    kind: PunctuationType,
    fired: Log<i64>,
}

impl Processor<String, String, String, i64> for Ticker {
    fn init(&mut self, ctx: &mut ProcessorContext<String, i64>) -> ProcessResult {
        ctx.schedule(self.interval, self.kind);
        Ok(())
    }

    fn process(
        &mut self,
        _ctx: &mut ProcessorContext<String, i64>,
        _record: Record<String, String>,
    ) -> ProcessResult {
        Ok(())
    }

    fn punctuate(
        &mut self,
        ctx: &mut ProcessorContext<String, i64>,
        punctuation: Punctuation,
    ) -> ProcessResult {
        assert_eq!(punctuation.kind, self.kind);
        // There is no input record during a punctuation, so nothing to inherit metadata from.
        assert_eq!(ctx.record_metadata(), None);
        self.fired.lock().unwrap().push(punctuation.timestamp);
        ctx.forward(Record::new(
            s("tick"),
            punctuation.timestamp,
            punctuation.timestamp,
        ))
    }
}

fn ticker_topology(interval: Duration, kind: PunctuationType, fired: &Log<i64>) -> Topology {
    let fired = fired.clone();
    let mut topology = Topology::new();
    topology
        .add_source("src", &["in"], StringSerde, StringSerde)
        .unwrap()
        .add_processor(
            "ticker",
            move || Ticker {
                interval,
                kind,
                fired: fired.clone(),
            },
            &["src"],
        )
        .unwrap()
        .add_sink("ticks", "ticks", StringSerde, I64Serde, &["ticker"])
        .unwrap();
    topology
}

/// (value, timestamp) of every unread tick.
fn read_ticks(driver: &TopologyTestDriver) -> Vec<(i64, i64)> {
    driver
        .output_topic("ticks", StringSerde, I64Serde)
        .read_records()
        .into_iter()
        .map(|r| (r.value, r.timestamp))
        .collect()
}

#[test]
fn stream_time_punctuation_is_aligned_and_fires_once_per_jump() {
    let fired = log();
    let driver = TopologyTestDriver::new(
        ticker_topology(
            Duration::from_millis(10),
            PunctuationType::StreamTime,
            &fired,
        ),
        config(),
    )
    .unwrap();
    let input = driver.input_topic("in", StringSerde, StringSerde);
    // Nothing fires before the first record: stream time is still -1.
    assert_eq!(taken(&fired), Vec::<i64>::new());

    // (record timestamp, punctuations it must cause)
    let steps: [(i64, &[i64]); 7] = [
        (0, &[0]), // aligned to 0: due as soon as stream time reaches 0
        (5, &[]),
        (12, &[12]),   // the 10 boundary was crossed; fires at the current stream time
        (100, &[100]), // jumps over 20..=100: once, not nine times
        (105, &[]),    // next due is 110, not 100 + 10 after a catch-up
        (109, &[]),
        (110, &[110]),
    ];
    for (ts, expected) in steps {
        input.pipe(s("k"), s("v"), ts).unwrap();
        assert_eq!(taken(&fired), expected, "after a record at {ts}");
    }
    // A late record does not move stream time, so it cannot re-trigger anything.
    input.pipe(s("k"), s("late"), 3).unwrap();
    assert_eq!(taken(&fired), Vec::<i64>::new());
    // Wall-clock time does not drive stream-time punctuators.
    driver
        .advance_wall_clock(Duration::from_secs(3600))
        .unwrap();
    assert_eq!(taken(&fired), Vec::<i64>::new());

    assert_eq!(
        read_ticks(&driver),
        vec![(0, 0), (12, 12), (100, 100), (110, 110)]
    );
}

#[test]
fn wall_clock_punctuation_fires_once_per_advance() {
    let fired = log();
    let driver = TopologyTestDriver::new(
        ticker_topology(
            Duration::from_secs(1),
            PunctuationType::WallClockTime,
            &fired,
        ),
        config(),
    )
    .unwrap();
    assert_eq!(driver.wall_clock_ms(), 0);

    driver
        .advance_wall_clock(Duration::from_millis(500))
        .unwrap();
    assert_eq!(taken(&fired), Vec::<i64>::new());
    driver
        .advance_wall_clock(Duration::from_millis(500))
        .unwrap();
    assert_eq!(taken(&fired), vec![1_000]);
    // Ten intervals elapse at once: one punctuation, no storm.
    driver.advance_wall_clock(Duration::from_secs(10)).unwrap();
    assert_eq!(taken(&fired), vec![11_000]);
    // The schedule keeps its phase after skipping: the next one is due at 12 000.
    driver
        .advance_wall_clock(Duration::from_millis(999))
        .unwrap();
    assert_eq!(taken(&fired), Vec::<i64>::new());
    driver.advance_wall_clock(Duration::from_millis(1)).unwrap();
    assert_eq!(taken(&fired), vec![12_000]);

    // Record timestamps do not drive wall-clock punctuators.
    driver
        .input_topic("in", StringSerde, StringSerde)
        .pipe(s("k"), s("v"), 1_000_000)
        .unwrap();
    assert_eq!(taken(&fired), Vec::<i64>::new());

    assert_eq!(
        read_ticks(&driver),
        vec![(1_000, 1_000), (11_000, 11_000), (12_000, 12_000)]
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Stream time
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// 3. Depth-first processing
// ---------------------------------------------------------------------------------------------

/// Logs `<name><value>` and forwards the record unchanged.
struct Tag {
    name: &'static str,
    log: Log<String>,
}

impl Processor<String, String, String, String> for Tag {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<String, String>,
        record: Record<String, String>,
    ) -> ProcessResult {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}{}", self.name, record.value));
        ctx.forward(record)
    }
}

fn add_tag(topology: &mut Topology, name: &'static str, parent: &str, log: &Log<String>) {
    let log = log.clone();
    topology
        .add_processor(
            name,
            move || Tag {
                name,
                log: log.clone(),
            },
            &[parent],
        )
        .unwrap();
}

const DEPTH_FIRST: [&str; 8] = ["A1", "B1", "D1", "C1", "A2", "B2", "D2", "C2"];

fn pipe_two(driver: &TopologyTestDriver) {
    let input = driver.input_topic("in", StringSerde, StringSerde);
    input.pipe(s("k"), s("1"), 1).unwrap();
    input.pipe(s("k"), s("2"), 2).unwrap();
}

#[test]
fn processor_api_graph_is_walked_depth_first_in_child_order() {
    // Added as source, A, B, C, D: D is added after its uncle C but still runs before it.
    let order = log();
    let mut topology = Topology::new();
    topology
        .add_source("src", &["in"], StringSerde, StringSerde)
        .unwrap();
    add_tag(&mut topology, "A", "src", &order);
    add_tag(&mut topology, "B", "A", &order);
    add_tag(&mut topology, "C", "A", &order);
    add_tag(&mut topology, "D", "B", &order);
    let driver = TopologyTestDriver::new(topology, config()).unwrap();
    pipe_two(&driver);
    assert_eq!(taken(&order), DEPTH_FIRST);
}

#[test]
fn processor_api_children_order_is_insertion_order_not_name_order() {
    // C is added before B here, so A forwards to C first even though B sorts first.
    let order = log();
    let mut topology = Topology::new();
    topology
        .add_source("src", &["in"], StringSerde, StringSerde)
        .unwrap();
    add_tag(&mut topology, "A", "src", &order);
    add_tag(&mut topology, "C", "A", &order);
    add_tag(&mut topology, "B", "A", &order);
    add_tag(&mut topology, "D", "B", &order);
    let driver = TopologyTestDriver::new(topology, config()).unwrap();
    pipe_two(&driver);
    assert_eq!(
        taken(&order),
        ["A1", "C1", "B1", "D1", "A2", "C2", "B2", "D2"]
    );
}

#[test]
fn dsl_streams_sharing_a_parent_are_walked_depth_first() {
    let order: Log<String> = log();
    let tag = |name: &'static str| {
        let order = order.clone();
        move |_: &String, v: &String| order.lock().unwrap().push(format!("{name}{v}"))
    };
    let builder = StreamsBuilder::new();
    let a = builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .peek(tag("A"));
    let d = a.peek(tag("B")).peek(tag("D"));
    let c = a.peek(tag("C"));
    // Sinks sit in the graph too: each branch's output is written before the next branch runs.
    d.to("out", Produced::default());
    c.to("out", Produced::default());
    let driver = TopologyTestDriver::new(builder.build().unwrap(), config()).unwrap();
    pipe_two(&driver);
    assert_eq!(taken(&order), DEPTH_FIRST);
    let values: Vec<String> = driver
        .output_topic("out", StringSerde, StringSerde)
        .read_key_values()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(values, ["1", "1", "2", "2"]);
}

// ---------------------------------------------------------------------------------------------
// 4. Sub-topologies and names
// ---------------------------------------------------------------------------------------------

fn linear_pipeline() -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, I64Serde))
        .filter(|_, v| *v > 0)
        .map_values(|v| v * 100)
        .to("out", Produced::default());
    builder.build().unwrap()
}

#[test]
fn linear_pipeline_is_one_subtopology_in_kafka_streams_format() {
    let expected = "\
Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [in])
      --> KSTREAM-FILTER-0000000001
    Processor: KSTREAM-FILTER-0000000001 (stores: [])
      --> KSTREAM-MAPVALUES-0000000002
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-MAPVALUES-0000000002 (stores: [])
      --> KSTREAM-SINK-0000000003
      <-- KSTREAM-FILTER-0000000001
    Sink: KSTREAM-SINK-0000000003 (topic: out)
      <-- KSTREAM-MAPVALUES-0000000002

";
    assert_eq!(linear_pipeline().describe().to_string(), expected);
}

fn rekeyed(name: &str) -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .select_key(|_, v: &String| v.split(':').next().unwrap_or_default().to_string())
        .repartition(Repartitioned::as_(name))
        .to("out", Produced::default());
    builder.build().unwrap()
}

#[test]
fn repartition_cuts_the_graph_into_two_subtopologies() {
    let description = rekeyed("by-x").describe();
    let expected = "\
Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [in])
      --> KSTREAM-KEY-SELECT-0000000001
    Processor: KSTREAM-KEY-SELECT-0000000001 (stores: [])
      --> by-x-repartition-sink
      <-- KSTREAM-SOURCE-0000000000
    Sink: by-x-repartition-sink (topic: by-x-repartition)
      <-- KSTREAM-KEY-SELECT-0000000001

   Sub-topology: 1
    Source: by-x-repartition-source (topics: [by-x-repartition])
      --> KSTREAM-SINK-0000000002
    Sink: KSTREAM-SINK-0000000002 (topic: out)
      <-- by-x-repartition-source

";
    assert_eq!(description.to_string(), expected);

    let mermaid = description.to_mermaid();
    assert!(mermaid.starts_with("flowchart TD\n"), "{mermaid}");
    for needle in [
        "subgraph sub0",
        "subgraph sub1",
        "KSTREAM-SOURCE-0000000000",
        "KSTREAM-KEY-SELECT-0000000001",
        "by-x-repartition-sink",
        "by-x-repartition-source",
        "KSTREAM-SINK-0000000002",
        "{{\"by-x-repartition\"}}",
        "[\"in\"]",
        "[\"out\"]",
        // The repartition topic links the two sub-topologies: written by one, read by the other.
        "by_x_repartition_sink --> topic_by_x_repartition",
        "topic_by_x_repartition{{\"by-x-repartition\"}} --> by_x_repartition_source",
        "class topic_by_x_repartition repartition",
        "KSTREAM_KEY_SELECT_0000000001 --> by_x_repartition_sink",
    ] {
        assert!(
            mermaid.contains(needle),
            "{needle:?} missing from\n{mermaid}"
        );
    }
}

#[test]
fn independent_sources_are_numbered_by_first_added_node() {
    // "b" is added first, so it is sub-topology 0 even though "a" sorts first.
    let builder = StreamsBuilder::new();
    builder
        .stream("b", Consumed::with(StringSerde, StringSerde))
        .to("out-b", Produced::default());
    builder
        .stream("a", Consumed::with(StringSerde, StringSerde))
        .to("out-a", Produced::default());
    let description = builder.build().unwrap().describe();
    let subs: Vec<(u32, Vec<String>)> = description
        .subtopologies
        .iter()
        .map(|s| (s.id, s.nodes.iter().map(|n| n.name.clone()).collect()))
        .collect();
    assert_eq!(
        subs,
        vec![
            (
                0,
                vec![s("KSTREAM-SOURCE-0000000000"), s("KSTREAM-SINK-0000000001")]
            ),
            (
                1,
                vec![s("KSTREAM-SOURCE-0000000002"), s("KSTREAM-SINK-0000000003")]
            ),
        ]
    );
    assert_eq!(description.subtopologies[0].nodes[0].topics, ["b"]);
    assert_eq!(description.subtopologies[1].nodes[0].topics, ["a"]);

    // A component whose nodes are interleaved with another's and joined late keeps the id of
    // its earliest node: x(0) and z(2) meet at p(3), y(1) stays alone.
    let mut topology = Topology::new();
    topology
        .add_source("sx", &["x"], StringSerde, StringSerde)
        .unwrap()
        .add_source("sy", &["y"], StringSerde, StringSerde)
        .unwrap()
        .add_source("sz", &["z"], StringSerde, StringSerde)
        .unwrap()
        .add_sink("p", "out", StringSerde, StringSerde, &["sz", "sx"])
        .unwrap();
    let subs: Vec<Vec<String>> = topology
        .describe()
        .subtopologies
        .iter()
        .map(|s| s.nodes.iter().map(|n| n.name.clone()).collect())
        .collect();
    assert_eq!(subs, vec![vec![s("sx"), s("sz"), s("p")], vec![s("sy")]]);
    // Tasks follow the same numbering.
    let driver = TopologyTestDriver::new(topology, config()).unwrap();
    assert_eq!(driver.task_ids(), vec![task(0, 0), task(1, 0)]);
}

#[test]
fn merged_sources_are_one_subtopology() {
    let builder = StreamsBuilder::new();
    let a = builder.stream("a", Consumed::with(StringSerde, StringSerde));
    let b = builder.stream("b", Consumed::with(StringSerde, StringSerde));
    a.merge(&b).to("out", Produced::default());
    let expected = "\
Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [a])
      --> KSTREAM-MERGE-0000000002
    Source: KSTREAM-SOURCE-0000000001 (topics: [b])
      --> KSTREAM-MERGE-0000000002
    Processor: KSTREAM-MERGE-0000000002 (stores: [])
      --> KSTREAM-SINK-0000000003
      <-- KSTREAM-SOURCE-0000000000, KSTREAM-SOURCE-0000000001
    Sink: KSTREAM-SINK-0000000003 (topic: out)
      <-- KSTREAM-MERGE-0000000002

";
    let topology = builder.build().unwrap();
    assert_eq!(topology.describe().to_string(), expected);
    let driver = TopologyTestDriver::new(topology, config()).unwrap();
    assert_eq!(driver.task_ids(), vec![task(0, 0)]);
}

fn generated_names() -> Topology {
    let builder = StreamsBuilder::new();
    let branches = builder
        .stream("in", Consumed::with(StringSerde, I64Serde))
        .filter(|_, v| *v != 0)
        .select_key(|_, v| v.to_string())
        .repartition(Repartitioned::default())
        .branch(vec![Box::new(|_, v| *v > 0), Box::new(|_, _| true)]);
    branches[0].to("pos", Produced::default());
    branches[1]
        .map_values(|v| -v)
        .to("neg", Produced::default());
    builder.build().unwrap()
}

#[test]
fn generated_names_are_deterministic() {
    let first = generated_names().describe().to_string();
    let second = generated_names().describe().to_string();
    assert_eq!(first, second);
    for name in [
        "Source: KSTREAM-SOURCE-0000000000 (topics: [in])",
        "Processor: KSTREAM-FILTER-0000000001 ",
        "Processor: KSTREAM-KEY-SELECT-0000000002 ",
        "Sink: KSTREAM-REPARTITION-0000000003-repartition-sink (topic: KSTREAM-REPARTITION-0000000003-repartition)",
        "Source: KSTREAM-REPARTITION-0000000003-repartition-source (topics: [KSTREAM-REPARTITION-0000000003-repartition])",
        "Processor: KSTREAM-BRANCH-0000000004 ",
        "Processor: KSTREAM-BRANCHCHILD-0000000005 ",
        "Processor: KSTREAM-BRANCHCHILD-0000000006 ",
        "Sink: KSTREAM-SINK-0000000007 (topic: pos)",
        "Processor: KSTREAM-MAPVALUES-0000000008 ",
        "Sink: KSTREAM-SINK-0000000009 (topic: neg)",
    ] {
        assert!(first.contains(name), "{name:?} missing from\n{first}");
    }
    // The generated repartition topic gets the application id prefix when the app runs.
    let driver = TopologyTestDriver::new(generated_names(), config()).unwrap();
    driver
        .input_topic("in", StringSerde, I64Serde)
        .pipe(s("k"), -4, 7)
        .unwrap();
    let raw = driver.raw_records("app-KSTREAM-REPARTITION-0000000003-repartition");
    assert_eq!(raw.len(), 1);
    assert_eq!(raw[0].key.as_deref(), Some(&b"-4"[..]));
    assert_eq!(
        driver
            .output_topic("neg", StringSerde, I64Serde)
            .read_key_values(),
        vec![(s("-4"), 4)]
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Repartitioning through the driver
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// 6. Partition counts and co-partitioning
// ---------------------------------------------------------------------------------------------

fn tasks(specs: &[(u32, i32)]) -> Vec<TaskId> {
    specs
        .iter()
        .flat_map(|&(sub, n)| (0..n).map(move |p| task(sub, p)))
        .collect()
}

#[test]
fn repartition_topic_inherits_the_upstream_partition_count() {
    let driver =
        TopologyTestDriver::with_partitions(rekeyed("by-x"), config(), &[("in", 4)]).unwrap();
    assert_eq!(driver.task_ids(), tasks(&[(0, 4), (1, 4)]));

    // Records land in the repartition partition of their new key, and the task for that
    // partition processes them.
    let input = driver.input_topic("in", StringSerde, StringSerde);
    let keys = ["a", "b", "c", "d", "e", "f", "g", "h"];
    for (i, key) in keys.iter().enumerate() {
        input
            .pipe(format!("in-{i}"), format!("{key}:{i}"), i as i64)
            .unwrap();
    }
    let raw = driver.raw_records("app-by-x-repartition");
    assert_eq!(raw.len(), keys.len());
    for r in &raw {
        let key = r.key.as_deref().unwrap();
        assert_eq!(r.partition, partition_for_key(key, 4), "{r:?}");
    }
    let used: std::collections::BTreeSet<i32> = raw.iter().map(|r| r.partition).collect();
    assert!(used.len() > 1, "all keys in one partition: {used:?}");
    for p in 0..4 {
        let expected = raw
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| r.timestamp)
            .max();
        assert_eq!(
            driver.stream_time(task(1, p)),
            Some(expected.unwrap_or(-1)),
            "task 1_{p}"
        );
    }
}

#[test]
fn fixed_repartition_count_wins_and_propagates_downstream() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .select_key(|_, v| v.clone())
        .repartition(Repartitioned::as_("fixed").with_partitions(2))
        .select_key(|_, v| v.to_uppercase())
        // Written by sub-topology 1, which reads only "fixed" (2): so 2, not 4.
        .repartition(Repartitioned::as_("derived"))
        .to("out", Produced::default());
    let driver =
        TopologyTestDriver::with_partitions(builder.build().unwrap(), config(), &[("in", 4)])
            .unwrap();
    assert_eq!(driver.task_ids(), tasks(&[(0, 4), (1, 2), (2, 2)]));
}

#[test]
fn repartition_count_is_the_max_over_the_writers_inputs() {
    let builder = StreamsBuilder::new();
    let a = builder.stream("a", Consumed::with(StringSerde, StringSerde));
    let b = builder.stream("b", Consumed::with(StringSerde, StringSerde));
    a.merge(&b)
        .select_key(|_, v| v.clone())
        .repartition(Repartitioned::as_("merged"))
        .to("out", Produced::default());
    let driver = TopologyTestDriver::with_partitions(
        builder.build().unwrap(),
        config(),
        &[("a", 1), ("b", 3)],
    )
    .unwrap();
    assert_eq!(driver.task_ids(), tasks(&[(0, 3), (1, 3)]));
}

fn copartitioned() -> Topology {
    let builder = StreamsBuilder::new();
    let a = builder.stream("a", Consumed::with(StringSerde, StringSerde));
    let b = builder.stream("b", Consumed::with(StringSerde, StringSerde));
    a.merge(&b).to("out", Produced::default());
    let mut topology = builder.build().unwrap();
    topology.copartition(&["a", "b"]);
    topology
}

#[test]
fn copartitioned_topics_with_different_counts_are_rejected() {
    let err = TopologyTestDriver::with_partitions(copartitioned(), config(), &[("a", 2), ("b", 3)])
        .err()
        .expect("co-partitioning violation must fail");
    let StreamsError::Topology(message) = &err else {
        panic!("expected a topology error, got {err:?}");
    };
    assert!(message.contains("a (2 partitions)"), "{message}");
    assert!(message.contains("b (3 partitions)"), "{message}");
    assert!(message.contains("co-partitioned"), "{message}");

    let driver =
        TopologyTestDriver::with_partitions(copartitioned(), config(), &[("a", 3), ("b", 3)])
            .unwrap();
    assert_eq!(driver.task_ids(), tasks(&[(0, 3)]));
}

// ---------------------------------------------------------------------------------------------
// 7. Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_serde_after_type_change_fails_the_build() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .map(|k: String, v: String| (k.len() as i64, v))
        .to("out", Produced::default());
    let err = builder.build().expect_err("no serde for the i64 key");
    let message = err.to_string();
    assert!(matches!(err, StreamsError::Topology(_)), "{err:?}");
    assert!(message.contains("to(out)"), "{message}");
    assert!(message.contains("key serde"), "{message}");

    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .map_values(|v: String| v.len() as i64)
        .repartition(Repartitioned::as_("r"));
    let message = builder.build().expect_err("no value serde").to_string();
    assert!(message.contains("repartition"), "{message}");
    assert!(message.contains("value serde"), "{message}");

    // Giving the serdes, on the operation or on the stream, is enough.
    let builder = StreamsBuilder::new();
    let mapped = builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .map(|k: String, v: String| (k.len() as i64, v));
    mapped.to("out1", Produced::with(I64Serde, StringSerde));
    mapped
        .with_serdes(I64Serde, StringSerde)
        .to("out2", Produced::default());
    assert!(builder.build().is_ok());
}

/// Takes i64 values, so it cannot follow a String-valued source.
struct TakesI64;

impl Processor<String, i64, String, i64> for TakesI64 {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<String, i64>,
        record: Record<String, i64>,
    ) -> ProcessResult {
        ctx.forward(record)
    }
}

#[test]
fn processor_type_mismatch_names_both_nodes() {
    let mut topology = Topology::new();
    topology
        .add_source("words-source", &["words"], StringSerde, StringSerde)
        .unwrap();
    let err = topology
        .add_processor("counter", || TakesI64, &["words-source"])
        .expect_err("String values cannot feed an i64 processor");
    let StreamsError::Topology(message) = &err else {
        panic!("expected a topology error, got {err:?}");
    };
    assert!(message.contains("words-source"), "{message}");
    assert!(message.contains("counter"), "{message}");
    assert!(message.contains("i64"), "{message}");
    // The failed node was not added, so its name is still free and nothing dangles.
    assert_eq!(topology.node_count(), 1);

    let mut topology = Topology::new();
    topology
        .add_source("nums", &["nums"], StringSerde, I64Serde)
        .unwrap()
        .add_processor("counter", || TakesI64, &["nums"])
        .unwrap();
    let message = topology
        .add_sink("text-sink", "text", StringSerde, StringSerde, &["counter"])
        .expect_err("an i64 processor cannot feed a String sink")
        .to_string();
    assert!(message.contains("counter"), "{message}");
    assert!(message.contains("text-sink"), "{message}");
}

#[test]
fn malformed_record_fails_with_its_coordinates() {
    let builder = StreamsBuilder::new();
    builder
        .stream("nums", Consumed::with(StringSerde, I64Serde))
        .to("out", Produced::default());
    let driver = TopologyTestDriver::new(builder.build().unwrap(), config()).unwrap();
    let input = driver.input_topic("nums", StringSerde, I64Serde);
    input.pipe(s("k"), 1, 10).unwrap();
    let err = input
        .pipe_raw(
            Some(b"k".to_vec()),
            Some(vec![1, 2, 3]),
            11,
            Headers::new(),
            None,
        )
        .expect_err("3 bytes are not an i64");
    let StreamsError::Deserialization { context, message } = &err else {
        panic!("expected a deserialization error, got {err:?}");
    };
    // Topic nums, partition 0, offset 1 (the valid record took offset 0).
    assert!(context.contains("nums-0@1"), "{context}");
    assert!(context.contains("value"), "{context}");
    assert!(message.contains("got 3"), "{message}");
    assert!(err.to_string().contains("nums-0@1"), "{err}");
    // Only the valid record got through.
    assert_eq!(
        driver
            .output_topic("out", StringSerde, I64Serde)
            .read_key_values(),
        vec![(s("k"), 1)]
    );
}

fn passthrough() -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, I64Serde))
        .to("out", Produced::default());
    builder.build().unwrap()
}

#[test]
fn negative_timestamp_fails_by_default() {
    let driver = TopologyTestDriver::new(passthrough(), config()).unwrap();
    let input = driver.input_topic("in", StringSerde, I64Serde);
    input.pipe(s("k"), 1, 10).unwrap();
    let err = input
        .pipe(s("k"), 2, -5)
        .expect_err("negative timestamps fail by default");
    assert_eq!(
        err,
        StreamsError::InvalidTimestamp {
            context: s("in-0@1"),
            timestamp: -5,
        }
    );
}

#[test]
fn negative_timestamp_is_skipped_under_log_and_skip() {
    let config = config().invalid_timestamp_policy(InvalidTimestampPolicy::LogAndSkip);
    let driver = TopologyTestDriver::new(passthrough(), config).unwrap();
    let input = driver.input_topic("in", StringSerde, I64Serde);
    input.pipe(s("k"), 1, -5).unwrap();
    input.pipe(s("k"), 2, 20).unwrap();
    input.pipe(s("k"), 3, -1).unwrap();
    input.pipe(s("k"), 4, 30).unwrap();
    let out: Vec<(i64, i64)> = driver
        .output_topic("out", StringSerde, I64Serde)
        .read_records()
        .into_iter()
        .map(|r| (r.value, r.timestamp))
        .collect();
    assert_eq!(out, vec![(2, 20), (4, 30)]);
    assert_eq!(driver.stream_time(task(0, 0)), Some(30));
}

#[test]
fn negative_timestamp_takes_partition_time_under_use_partition_time() {
    let config = config().invalid_timestamp_policy(InvalidTimestampPolicy::UsePartitionTime);
    let driver = TopologyTestDriver::new(passthrough(), config).unwrap();
    let input = driver.input_topic("in", StringSerde, I64Serde);
    // Dropped: there is no partition time yet.
    input.pipe(s("k"), 1, -5).unwrap();
    input.pipe(s("k"), 2, 20).unwrap();
    input.pipe(s("k"), 3, -1).unwrap();
    let out: Vec<(i64, i64)> = driver
        .output_topic("out", StringSerde, I64Serde)
        .read_records()
        .into_iter()
        .map(|r| (r.value, r.timestamp))
        .collect();
    assert_eq!(out, vec![(2, 20), (3, 20)]);
}

// ---------------------------------------------------------------------------------------------
// 8. max_task_idle
// ---------------------------------------------------------------------------------------------

fn merged_ab(idle: Option<Duration>) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    let a = builder.stream("a", Consumed::with(StringSerde, I64Serde));
    let b = builder.stream("b", Consumed::with(StringSerde, I64Serde));
    a.merge(&b).to("out", Produced::default());
    TopologyTestDriver::new(builder.build().unwrap(), config().max_task_idle(idle)).unwrap()
}

/// Timestamps of the unread output records.
fn out_timestamps(driver: &TopologyTestDriver) -> Vec<i64> {
    driver
        .output_topic("out", StringSerde, I64Serde)
        .read_records()
        .into_iter()
        .map(|r| r.timestamp)
        .collect()
}

#[test]
fn task_waits_max_task_idle_for_an_empty_partition() {
    let driver = merged_ab(Some(Duration::from_millis(100)));
    let a = driver.input_topic("a", StringSerde, I64Serde);
    let b = driver.input_topic("b", StringSerde, I64Serde);

    a.pipe(s("k"), 0, 20).unwrap();
    a.pipe(s("k"), 0, 30).unwrap();
    assert_eq!(out_timestamps(&driver), Vec::<i64>::new());
    // b gets data: the older record goes first, then the task waits for b again.
    b.pipe(s("k"), 0, 10).unwrap();
    assert_eq!(out_timestamps(&driver), vec![10]);
    b.pipe(s("k"), 0, 25).unwrap();
    assert_eq!(out_timestamps(&driver), vec![20, 25]);

    // 30 on a waits until b has been empty for the full 100 ms.
    driver
        .advance_wall_clock(Duration::from_millis(99))
        .unwrap();
    assert_eq!(out_timestamps(&driver), Vec::<i64>::new());
    driver.advance_wall_clock(Duration::from_millis(1)).unwrap();
    assert_eq!(out_timestamps(&driver), vec![30]);
    assert_eq!(driver.stream_time(task(0, 0)), Some(30));
}

#[test]
fn idle_wait_is_measured_from_when_the_partition_became_empty() {
    let driver = merged_ab(Some(Duration::from_millis(100)));
    let a = driver.input_topic("a", StringSerde, I64Serde);
    driver.advance_wall_clock(Duration::from_secs(5)).unwrap();
    // Time that passed before there was anything to wait for does not count.
    a.pipe(s("k"), 0, 1).unwrap();
    assert_eq!(out_timestamps(&driver), Vec::<i64>::new());
    driver
        .advance_wall_clock(Duration::from_millis(50))
        .unwrap();
    assert_eq!(out_timestamps(&driver), Vec::<i64>::new());
    driver
        .advance_wall_clock(Duration::from_millis(50))
        .unwrap();
    assert_eq!(out_timestamps(&driver), vec![1]);
}

#[test]
fn no_idle_wait_without_max_task_idle() {
    let driver = merged_ab(None);
    driver
        .input_topic("a", StringSerde, I64Serde)
        .pipe(s("k"), 0, 20)
        .unwrap();
    assert_eq!(out_timestamps(&driver), vec![20]);
}

#[test]
fn excluded_partition_is_not_waited_for_until_included_again() {
    let driver = merged_ab(Some(Duration::from_millis(100)));
    let a = driver.input_topic("a", StringSerde, I64Serde);

    a.pipe(s("k"), 0, 10).unwrap();
    assert_eq!(out_timestamps(&driver), Vec::<i64>::new());
    // Excluding b releases the record already waiting for it.
    driver.set_excluded("b", 0, true).unwrap();
    assert_eq!(out_timestamps(&driver), vec![10]);
    a.pipe(s("k"), 0, 20).unwrap();
    assert_eq!(out_timestamps(&driver), vec![20]);

    // Including it again restores waiting.
    driver.set_excluded("b", 0, false).unwrap();
    a.pipe(s("k"), 0, 30).unwrap();
    assert_eq!(out_timestamps(&driver), Vec::<i64>::new());
    driver
        .advance_wall_clock(Duration::from_millis(100))
        .unwrap();
    assert_eq!(out_timestamps(&driver), vec![30]);

    assert!(matches!(
        driver.set_excluded("nope", 0, true),
        Err(StreamsError::MissingTopic(_))
    ));
}

#[test]
fn excluded_partition_rejoins_when_a_record_arrives_on_it() {
    let driver = merged_ab(Some(Duration::from_millis(100)));
    let a = driver.input_topic("a", StringSerde, I64Serde);
    let b = driver.input_topic("b", StringSerde, I64Serde);
    driver.set_excluded("b", 0, true).unwrap();
    a.pipe(s("k"), 0, 10).unwrap();
    assert_eq!(out_timestamps(&driver), vec![10]);

    // b is back in time synchronisation. Its record waits for a (empty, not excluded) like
    // any record; once a has data, 30 goes first and 40 then waits for b.
    b.pipe(s("k"), 0, 30).unwrap();
    assert_eq!(out_timestamps(&driver), Vec::<i64>::new());
    a.pipe(s("k"), 0, 40).unwrap();
    assert_eq!(out_timestamps(&driver), vec![30]);
    driver
        .advance_wall_clock(Duration::from_millis(99))
        .unwrap();
    assert_eq!(out_timestamps(&driver), Vec::<i64>::new());
    driver.advance_wall_clock(Duration::from_millis(1)).unwrap();
    assert_eq!(out_timestamps(&driver), vec![40]);
}
