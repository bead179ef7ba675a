//! Topics that grow while the app runs: records on partitions added to a source topic get
//! tasks and are processed, sinks route to partitions added to their topic, and a join whose
//! inputs stop being co-partitioned stops the app with a clear error.

use std::collections::BTreeSet;
use std::time::Duration;

use streamtime::partitioner::partition_for_key;
use streamtime::serdes::StringSerde;
use streamtime::{
    Consumed, JoinWindows, KafkaStreams, Produced, StreamJoined, StreamsBuilder, StreamsConfig,
    StreamsError,
};
use streamtime_integration_tests::records::{self, TestRecord};
use streamtime_integration_tests::wait::{eventually_async, WAIT};
use streamtime_integration_tests::{bootstrap_servers, topics};

fn config(app: &str, servers: &str) -> StreamsConfig {
    StreamsConfig::new(app, servers)
        .commit_interval(Duration::from_millis(200))
        .metadata_refresh_interval(Duration::from_secs(1))
}

fn passthrough(servers: &str, input: &str, output: &str) -> KafkaStreams {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(StringSerde, StringSerde))
        .to(output, Produced::default());
    let app_id = topics::unique_name("growth-app");
    let mut app = KafkaStreams::new(builder.build().unwrap(), config(&app_id, servers)).unwrap();
    app.start().unwrap();
    app
}

fn values(out: &[TestRecord]) -> BTreeSet<String> {
    out.iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_on_partitions_added_to_a_source_topic_are_processed() {
    let servers = bootstrap_servers();
    let input = topics::unique_name("grow-src-in");
    let output = topics::unique_name("grow-src-out");
    topics::create(&servers, &input, 2).await;
    topics::create(&servers, &output, 2).await;
    let app = passthrough(&servers, &input, &output);
    let before: Vec<TestRecord> = (0..10)
        .map(|i| TestRecord::new(&format!("k{i}"), format!("before-{i}").into_bytes(), i))
        .collect();
    records::produce(&servers, &input, before).await;
    records::consume(&servers, &output, 10, WAIT).await;

    topics::add_partitions(&servers, &input, 4).await;
    let after: Vec<TestRecord> = (0..10)
        .map(|i| {
            let mut r =
                TestRecord::new(&format!("k{i}"), format!("after-{i}").into_bytes(), 100 + i);
            r.partition = Some(2 + (i as i32 % 2));
            r
        })
        .collect();
    records::produce(&servers, &input, after).await;
    let out = records::consume(&servers, &output, 20, WAIT).await;
    let tasks = app.task_status().len();
    drop(app);
    let want: BTreeSet<String> = (0..10)
        .flat_map(|i| [format!("before-{i}"), format!("after-{i}")])
        .collect();
    assert_eq!(values(&out), want);
    assert_eq!(tasks, 4, "one task per input partition after the growth");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sinks_route_to_partitions_added_to_their_topic() {
    let servers = bootstrap_servers();
    let input = topics::unique_name("grow-sink-in");
    let output = topics::unique_name("grow-sink-out");
    topics::create(&servers, &input, 1).await;
    topics::create(&servers, &output, 2).await;
    let app = passthrough(&servers, &input, &output);
    let batch = |name: &str| -> Vec<TestRecord> {
        (0..40)
            .map(|i| TestRecord::new(&format!("key-{i}"), format!("{name}-{i}").into_bytes(), i))
            .collect()
    };
    records::produce(&servers, &input, batch("before")).await;
    records::consume(&servers, &output, 40, WAIT).await;

    topics::add_partitions(&servers, &output, 4).await;
    // Longer than the metadata refresh interval: the sink's partition count is stale by then.
    tokio::time::sleep(Duration::from_secs(3)).await;
    records::produce(&servers, &input, batch("after")).await;
    let out = records::consume(&servers, &output, 80, WAIT).await;
    drop(app);
    let mut on_new_partitions = 0;
    for r in out
        .iter()
        .filter(|r| r.value.as_deref().unwrap().starts_with(b"after"))
    {
        let key = r.key.as_deref().unwrap();
        assert_eq!(
            r.partition,
            Some(partition_for_key(key, 4)),
            "{} routed by the grown partition count",
            r.key_str()
        );
        on_new_partitions += usize::from(r.partition >= Some(2));
    }
    assert!(
        on_new_partitions > 0,
        "some keys hash to the new partitions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_whose_inputs_stop_being_copartitioned_stops_with_a_clear_error() {
    let servers = bootstrap_servers();
    let (left, right) = (
        topics::unique_name("grow-left"),
        topics::unique_name("grow-right"),
    );
    let output = topics::unique_name("grow-joined");
    for t in [&left, &right, &output] {
        topics::create(&servers, t, 2).await;
    }
    let builder = StreamsBuilder::new();
    let l = builder.stream(&left, Consumed::with(StringSerde, StringSerde));
    let r = builder.stream(&right, Consumed::with(StringSerde, StringSerde));
    l.join(
        &r,
        |a: &String, b: &String| format!("{a}+{b}"),
        JoinWindows::of_time_difference_with_no_grace(Duration::from_secs(60)),
        StreamJoined::with_serdes(StringSerde, StringSerde, StringSerde),
    )
    .to(&output, Produced::with(StringSerde, StringSerde));
    let app_id = topics::unique_name("grow-join-app");
    let mut app = KafkaStreams::new(builder.build().unwrap(), config(&app_id, &servers)).unwrap();
    app.start().unwrap();
    records::produce(
        &servers,
        &left,
        vec![TestRecord::new("k", b"a".to_vec(), 1)],
    )
    .await;
    records::produce(
        &servers,
        &right,
        vec![TestRecord::new("k", b"b".to_vec(), 2)],
    )
    .await;
    records::consume(&servers, &output, 1, WAIT).await;

    topics::add_partitions(&servers, &left, 3).await;
    let running = &app;
    eventually_async(
        WAIT,
        "the app to fail on join inputs no longer co-partitioned",
        move || async move {
            match running.error() {
                Some(_) => Ok(()),
                None => Err("the app keeps running with mismatched join inputs".to_string()),
            }
        },
    )
    .await;
    let error = app.close().expect_err("the thread failed");
    let StreamsError::Topology(message) = &error else {
        panic!("expected a topology error, got {error:?}");
    };
    assert!(message.contains("co-partitioned"), "{message}");
    assert!(
        message.contains(&left) && message.contains(&right),
        "{message}"
    );
}
