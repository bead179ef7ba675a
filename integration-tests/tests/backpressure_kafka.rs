//! Back-pressure across a rebalance: partitions paused because their queues were full must
//! not stay paused when the member gets them back. librdkafka keeps an application pause
//! across a revocation and a new assignment, so the framework has to lift it itself.

use std::collections::BTreeSet;
use std::time::Duration;

use streamtime::serdes::StringSerde;
use streamtime::{Consumed, KafkaStreams, Produced, StreamsBuilder, StreamsConfig};
use streamtime_integration_tests::records::{self, TestRecord};
use streamtime_integration_tests::wait::{eventually_async, WAIT};
use streamtime_integration_tests::{bootstrap_servers, topics};

const BACKLOG: usize = 100_000;
const RECORDS: usize = BACKLOG + 10_000;

fn instance(
    app_id: &str,
    state_dir: &std::path::Path,
    servers: &str,
    input: &str,
    output: &str,
) -> KafkaStreams {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(StringSerde, StringSerde))
        .to(output, Produced::default());
    // A queue limit far below a fetch batch: nearly every partition is paused at any moment.
    // Its own state directory: an instance's identity is kept there.
    let config = StreamsConfig::new(app_id, servers)
        .state_dir(state_dir)
        .commit_interval(Duration::from_millis(200))
        .buffered_records_per_partition(10);
    let mut app = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
    app.start().unwrap();
    app
}

fn record(i: usize) -> TestRecord {
    TestRecord::new(
        &format!("k{}", i % 97),
        format!("v{i}").into_bytes(),
        1_000 + i as i64,
    )
}

/// Waits until the two instances own two tasks each; panics after [`WAIT`].
async fn settled(first: &KafkaStreams, second: &KafkaStreams) {
    let awaited = "the group to settle on two tasks per instance";
    eventually_async(WAIT, awaited, move || async move {
        let owned = (first.task_status().len(), second.task_status().len());
        if owned == (2, 2) {
            Ok(())
        } else {
            Err(format!("tasks per instance {owned:?}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_paused_when_a_rebalance_starts_are_consumed_after_it() {
    let servers = bootstrap_servers();
    let input = topics::unique_name("pause-in");
    let output = topics::unique_name("pause-out");
    topics::create(&servers, &input, 4).await;
    topics::create(&servers, &output, 4).await;
    records::produce(&servers, &input, (0..BACKLOG).map(record).collect()).await;

    let app_id = topics::unique_name("pause-app");
    let dirs = [(); 2].map(|_| std::env::temp_dir().join(topics::unique_name("pause-state")));
    let first = instance(&app_id, &dirs[0], &servers, &input, &output);
    // The first instance is busy with its backlog (and pausing) when the second one joins.
    records::consume(&servers, &output, 2_000, WAIT).await;
    let second = instance(&app_id, &dirs[1], &servers, &input, &output);
    settled(&first, &second).await;
    // Records that arrive after the rebalance, on every partition.
    records::produce(&servers, &input, (BACKLOG..RECORDS).map(record).collect()).await;

    let out = records::consume(&servers, &output, RECORDS, WAIT).await;
    drop(first);
    drop(second);
    for dir in &dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
    let got: BTreeSet<String> = out
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    let missing: Vec<usize> = (0..RECORDS)
        .filter(|i| !got.contains(&format!("v{i}")))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {RECORDS} records never came out ({} of them sent after the rebalance), e.g. {:?}",
        missing.len(),
        missing.iter().filter(|i| **i >= BACKLOG).count(),
        &missing[..missing.len().min(5)]
    );
}
