//! Smoke tests of the broker harness through rdkafka: keyed records with timestamps and headers
//! round-trip, and transactions are honoured by read_committed consumers.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use streamtime::partitioner::partition_for_key;
use streamtime_integration_tests::records::{self, TestRecord};
use streamtime_integration_tests::{bootstrap_servers, topics};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_round_trip_with_timestamps_and_headers() {
    let servers = bootstrap_servers();
    let topic = topics::unique_name("smoke-roundtrip");
    topics::create(&servers, &topic, 3).await;

    let base_ts = 1_700_000_000_000_i64;
    let sent: Vec<TestRecord> = (0..60_i64)
        .map(|i| {
            // Timestamps deliberately out of offset order.
            TestRecord::new(
                &format!("key-{}", i % 7),
                format!("value-{i}").into_bytes(),
                base_ts + (i * 7919) % 1000,
            )
            .with_header("seq", i.to_string().as_bytes())
            .with_header("origin", b"smoke")
        })
        .collect();
    records::produce(&servers, &topic, sent.clone()).await;

    let seen = records::consume(&servers, &topic, sent.len(), WAIT).await;
    assert_eq!(seen.len(), sent.len(), "every record arrives exactly once");
    let by_value: BTreeMap<&[u8], &TestRecord> = sent
        .iter()
        .map(|r| (r.value.as_deref().unwrap(), r))
        .collect();
    for record in &seen {
        let original = by_value[record.value.as_deref().unwrap()];
        assert_eq!(record.key, original.key);
        assert_eq!(record.timestamp, original.timestamp);
        assert_eq!(record.headers, original.headers);
        assert_eq!(
            record.partition,
            Some(partition_for_key(original.key.as_deref().unwrap(), 3)),
            "keys land where Kafka's default partitioner puts them"
        );
    }
    // Within a partition, records arrive in the order they were produced.
    for p in 0..3 {
        let order: Vec<usize> = seen
            .iter()
            .filter(|r| r.partition == Some(p))
            .map(|r| sent.iter().position(|s| s.value == r.value).unwrap())
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "partition {p} keeps produce order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_transactions_are_invisible_to_read_committed() {
    let servers = bootstrap_servers();
    let topic = topics::unique_name("smoke-txn");
    topics::create(&servers, &topic, 2).await;

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .set("transactional.id", topics::unique_name("smoke-txn-id"))
        .create()
        .expect("transactional producer config is valid");
    let timeout = Duration::from_secs(30);
    producer
        .init_transactions(timeout)
        .expect("init_transactions");

    for (label, commit) in [("aborted", false), ("committed", true)] {
        producer.begin_transaction().expect("begin");
        for i in 0..20 {
            producer
                .send(
                    FutureRecord::to(&topic)
                        .key(&format!("k{i}"))
                        .payload(&format!("{label}-{i}")),
                    timeout,
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("send failed: {e}"));
        }
        if commit {
            producer.commit_transaction(timeout).expect("commit");
        } else {
            producer.abort_transaction(timeout).expect("abort");
        }
    }

    let value = |r: &TestRecord| String::from_utf8(r.value.clone().unwrap()).unwrap();
    let committed = records::consume_with(&servers, &topic, 20, WAIT, "read_committed").await;
    let values: Vec<String> = committed.iter().map(value).collect();
    assert_eq!(
        values.len(),
        20,
        "exactly the committed records are visible: {values:?}"
    );
    assert!(
        values.iter().all(|v| v.starts_with("committed-")),
        "{values:?}"
    );

    // The aborted records really were written: an uncommitted reader sees both batches.
    let everything = records::consume_with(&servers, &topic, 40, WAIT, "read_uncommitted").await;
    assert_eq!(everything.len(), 40);
    assert_eq!(
        everything
            .iter()
            .filter(|r| value(r).starts_with("aborted-"))
            .count(),
        20
    );
}

#[test]
fn the_test_broker_publishes_its_port_on_the_loopback_interface_only() {
    use streamtime_integration_tests::kafka::{broker, published_addresses, BrokerMode};
    // An external cluster is not the harness's to check.
    if let BrokerMode::Container { id, .. } = &broker().mode {
        let addresses = published_addresses(id);
        assert!(!addresses.is_empty(), "container {id} publishes its port");
        assert!(
            addresses.iter().all(|a| a == "127.0.0.1"),
            "container {id} publishes on {addresses:?}"
        );
    }
}
