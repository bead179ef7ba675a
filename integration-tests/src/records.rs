//! Producing test input and reading output back, with the partitioning streamtime uses.
//!
//! ```no_run
//! # async fn demo() {
//! use streamtime_integration_tests::{bootstrap_servers, records, topics};
//! let servers = bootstrap_servers();
//! let topic = topics::unique_name("in");
//! topics::create(&servers, &topic, 2).await;
//! records::produce(&servers, &topic, vec![records::TestRecord::new("k", b"v".to_vec(), 1_000)]).await;
//! let seen = records::consume(&servers, &topic, 1, std::time::Duration::from_secs(30)).await;
//! assert_eq!(seen[0].key.as_deref(), Some(&b"k"[..]));
//! # }
//! ```

use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers as _, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use streamtime::partitioner::partition_for_key;

use crate::topics;

/// A record to produce or a record consumed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TestRecord {
    /// Partition (set on consumed records; on produce `None` means "by key").
    pub partition: Option<i32>,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Option<Vec<u8>>,
    /// CreateTime timestamp.
    pub timestamp: i64,
    /// Headers as (name, value).
    pub headers: Vec<(String, Vec<u8>)>,
    /// Offset (consumed records only).
    pub offset: i64,
}

impl TestRecord {
    /// A keyed record with a value and timestamp.
    pub fn new(key: &str, value: Vec<u8>, timestamp: i64) -> Self {
        TestRecord {
            partition: None,
            key: Some(key.as_bytes().to_vec()),
            value: Some(value),
            timestamp,
            headers: Vec::new(),
            offset: -1,
        }
    }

    /// The same record with a header.
    pub fn with_header(mut self, name: &str, value: &[u8]) -> Self {
        self.headers.push((name.to_string(), value.to_vec()));
        self
    }

    /// The key as UTF-8 (lossy), for assertions.
    pub fn key_str(&self) -> String {
        String::from_utf8_lossy(self.key.as_deref().unwrap_or_default()).into_owned()
    }
}

/// Produces `records` in order (idempotent producer, acks=all), keyed records to the
/// partition Kafka's default partitioner picks. Panics on failure.
pub async fn produce(servers: &str, topic: &str, records: Vec<TestRecord>) {
    let partitions = topics::partition_count(servers, topic).await;
    let producer: FutureProducer = crate::kafka::client_config(servers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("producer config is valid");
    let mut pending = Vec::with_capacity(records.len());
    for r in &records {
        let partition = r.partition.unwrap_or_else(|| match &r.key {
            Some(k) => partition_for_key(k, partitions),
            None => 0,
        });
        let mut headers = OwnedHeaders::new();
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
            .partition(partition)
            .timestamp(r.timestamp)
            .headers(headers);
        if let Some(k) = &r.key {
            record = record.key(k);
        }
        if let Some(v) = &r.value {
            record = record.payload(v);
        }
        pending.push(
            producer
                .send_result(record)
                .expect("local queue accepts the record"),
        );
    }
    for delivery in pending {
        delivery
            .await
            .expect("delivery future completes")
            .unwrap_or_else(|(e, _)| panic!("produce to {topic} failed: {e}"));
    }
}

/// Reads `topic` from the start (read_committed) until `expected` records arrived, then for
/// one more second to catch extras. Panics if fewer arrive within `timeout`.
pub async fn consume(
    servers: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<TestRecord> {
    consume_with(servers, topic, expected, timeout, "read_committed").await
}

/// Like [`consume`] with a given `isolation.level`.
pub async fn consume_with(
    servers: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
    isolation: &str,
) -> Vec<TestRecord> {
    let seen = consume_until(servers, topic, timeout, isolation, |seen| {
        seen.len() >= expected
    })
    .await;
    assert!(
        seen.len() >= expected,
        "only {} of {expected} records arrived on {topic} within {timeout:?}",
        seen.len()
    );
    seen
}

/// Reads `topic` from the start until `done` holds for everything read so far (then reads
/// one more second to catch extras), or until `timeout`; returns what was read either way.
pub async fn consume_until(
    servers: &str,
    topic: &str,
    timeout: Duration,
    isolation: &str,
    done: impl Fn(&[TestRecord]) -> bool,
) -> Vec<TestRecord> {
    // Assigned, not subscribed: reading back must not depend on a consumer group forming.
    let consumer: StreamConsumer = crate::kafka::client_config(servers)
        .set("group.id", topics::unique_name("reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer config is valid");
    let partitions = topics::partition_count(servers, topic).await;
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .expect("valid offset");
    }
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut finished = done(&seen);
    loop {
        let wait = if finished {
            Duration::from_secs(1)
        } else {
            deadline.saturating_duration_since(Instant::now())
        };
        match tokio::time::timeout(wait, consumer.recv()).await {
            Ok(Ok(m)) => {
                seen.push(TestRecord {
                    partition: Some(m.partition()),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    timestamp: m.timestamp().to_millis().unwrap_or(-1),
                    headers: m
                        .headers()
                        .map(|hs| {
                            hs.iter()
                                .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                                .collect()
                        })
                        .unwrap_or_default(),
                    offset: m.offset(),
                });
                finished = finished || done(&seen);
            }
            Ok(Err(e)) => panic!("consuming {topic} failed: {e}"),
            Err(_) => return seen,
        }
    }
}
