//! Sub-topologies and names: cutting at repartition topics, numbering, deterministic generated names.

use super::*;

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
