//! Partition counts of repartition topics, and co-partitioning checks.

use super::*;

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
