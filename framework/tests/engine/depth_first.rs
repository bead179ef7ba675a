//! Depth-first processing: every record walks the whole graph, children in the order they were added.

use super::*;

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
