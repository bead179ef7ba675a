//! Smoke tests of the broker harness through rdkafka: keyed records with timestamps and headers
//! round-trip, and transactions are honoured by read_committed consumers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::Timestamp;
use streamtime_integration_tests::{bootstrap_servers, topics};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    key: String,
    value: String,
    partition: i32,
    timestamp: Timestamp,
    headers: Vec<(String, Vec<u8>)>,
}

fn consumer(servers: &str, topic: &str, isolation: &str) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", topics::unique_name("smoke-group"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer config is valid");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// Reads until `expected` records arrived, then keeps reading for `settle` to catch extras.
async fn read(consumer: &StreamConsumer, expected: usize, settle: Duration) -> Vec<Seen> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let remaining = if seen.len() >= expected {
            settle
        } else {
            deadline.saturating_duration_since(Instant::now())
        };
        match tokio::time::timeout(remaining, consumer.recv()).await {
            Ok(Ok(m)) => seen.push(Seen {
                key: String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap(),
                value: String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap(),
                partition: m.partition(),
                timestamp: m.timestamp(),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            Ok(Err(e)) => panic!("consume failed: {e}"),
            Err(_) if seen.len() >= expected => return seen,
            Err(_) => panic!(
                "only {} of {expected} records arrived within 60 s",
                seen.len()
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_round_trip_with_timestamps_and_headers() {
    let servers = bootstrap_servers();
    let topic = topics::unique_name("smoke-roundtrip");
    topics::create(&servers, &topic, 3).await;

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .set("enable.idempotence", "true")
        .create()
        .expect("producer config is valid");

    let base_ts = 1_700_000_000_000_i64;
    let mut sent = BTreeMap::new();
    for i in 0..60_i64 {
        let key = format!("key-{}", i % 7);
        let value = format!("value-{i}");
        // Timestamps deliberately out of offset order.
        let ts = base_ts + (i * 7919) % 1000;
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "seq",
                value: Some(i.to_string().as_bytes()),
            })
            .insert(Header {
                key: "origin",
                value: Some(&b"smoke"[..]),
            });
        let (partition, _offset) = producer
            .send(
                FutureRecord::to(&topic)
                    .key(&key)
                    .payload(&value)
                    .timestamp(ts)
                    .headers(headers),
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("send failed: {e}"));
        sent.insert(value.clone(), (key, ts, partition, i));
    }

    let consumer = consumer(&servers, &topic, "read_committed");
    let seen = read(&consumer, sent.len(), Duration::from_millis(500)).await;
    assert_eq!(seen.len(), sent.len(), "every record arrives exactly once");

    let mut partitions_per_key: BTreeMap<String, i32> = BTreeMap::new();
    for record in &seen {
        let (key, ts, partition, i) = sent.get(&record.value).expect("an unknown value arrived");
        assert_eq!(&record.key, key);
        assert_eq!(record.timestamp, Timestamp::CreateTime(*ts));
        assert_eq!(record.partition, *partition);
        assert_eq!(
            record.headers,
            vec![
                ("seq".to_string(), i.to_string().into_bytes()),
                ("origin".to_string(), b"smoke".to_vec())
            ]
        );
        let p = *partitions_per_key
            .entry(key.clone())
            .or_insert(record.partition);
        assert_eq!(p, record.partition, "one key always lands on one partition");
    }
    // Within a partition, records arrive in the order they were produced.
    for p in 0..3 {
        let order: Vec<i64> = seen
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| sent[&r.value].3)
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

    let send_all = |label: &'static str| {
        let producer = &producer;
        let topic = &topic;
        async move {
            for i in 0..20 {
                producer
                    .send(
                        FutureRecord::to(topic)
                            .key(&format!("k{i}"))
                            .payload(&format!("{label}-{i}")),
                        timeout,
                    )
                    .await
                    .unwrap_or_else(|(e, _)| panic!("send failed: {e}"));
            }
        }
    };

    producer.begin_transaction().expect("begin");
    send_all("aborted").await;
    producer.abort_transaction(timeout).expect("abort");

    producer.begin_transaction().expect("begin");
    send_all("committed").await;
    producer.commit_transaction(timeout).expect("commit");

    let committed_reader = consumer(&servers, &topic, "read_committed");
    let seen = read(&committed_reader, 20, Duration::from_secs(1)).await;
    let values: Vec<&str> = seen.iter().map(|s| s.value.as_str()).collect();
    assert_eq!(
        seen.len(),
        20,
        "exactly the committed records are visible: {values:?}"
    );
    assert!(
        values.iter().all(|v| v.starts_with("committed-")),
        "{values:?}"
    );

    // The aborted records really were written: an uncommitted reader sees both batches.
    let uncommitted_reader = consumer(&servers, &topic, "read_uncommitted");
    let seen = read(&uncommitted_reader, 40, Duration::from_secs(1)).await;
    assert_eq!(seen.len(), 40);
    assert_eq!(
        seen.iter()
            .filter(|s| s.value.starts_with("aborted-"))
            .count(),
        20
    );
}
