//! Unique topic names and topic administration for tests.
//!
//! Tests share one broker, so every topic name carries the process id, a clock reading and a
//! counter.
//!
//! ```no_run
//! # async fn demo() {
//! use streamtime_integration_tests::{bootstrap_servers, topics};
//! let servers = bootstrap_servers();
//! let topic = topics::unique_name("orders");
//! topics::create(&servers, &topic, 4).await;
//! # }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;

/// A topic name no other test of any run on this broker uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{:x}-{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// An admin client for `servers`.
pub fn admin(servers: &str) -> AdminClient<DefaultClientContext> {
    crate::kafka::client_config(servers)
        .create()
        .expect("admin client config is valid")
}

/// Creates `topic` with `partitions` partitions (replication 1) and waits until its metadata
/// shows every partition. Panics on failure.
///
/// Time-based retention is off: tests use event times far in the past (1970 or a fixed
/// date), which the broker's default 7-day retention would delete as soon as its periodic
/// check runs, possibly before the app has read them.
pub async fn create(servers: &str, topic: &str, partitions: i32) {
    create_with_config(servers, topic, partitions, &[("retention.ms", "-1")]).await
}

/// Like [`create`], with topic configs such as `("cleanup.policy", "compact")`.
pub async fn create_with_config(
    servers: &str,
    topic: &str,
    partitions: i32,
    config: &[(&str, &str)],
) {
    let admin = admin(servers);
    let mut new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (k, v) in config {
        new_topic = new_topic.set(k, v);
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics([&new_topic], &options)
        .await
        .unwrap_or_else(|e| panic!("create_topics({topic}) failed: {e}"));
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => panic!("cannot create topic {name}: {code}"),
        }
    }
    wait_for_partitions(servers, topic, partitions).await;
}

/// Grows `topic` to `total` partitions and waits until the metadata shows them.
pub async fn add_partitions(servers: &str, topic: &str, total: usize) {
    let admin = admin(servers);
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_partitions([&NewPartitions::new(topic, total)], &options)
        .await
        .unwrap_or_else(|e| panic!("create_partitions({topic}) failed: {e}"));
    for result in results {
        if let Err((name, code)) = result {
            panic!("cannot add partitions to {name}: {code}");
        }
    }
    wait_for_partitions(servers, topic, total as i32).await;
}

/// Waits until the broker's metadata lists `partitions` partitions of `topic`.
pub async fn wait_for_partitions(servers: &str, topic: &str, partitions: i32) {
    let servers = servers.to_string();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = crate::kafka::client_config(&servers)
            .create()
            .expect("metadata consumer config is valid");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let seen = consumer
                .fetch_metadata(Some(&topic), Duration::from_secs(5))
                .ok()
                .and_then(|m| {
                    m.topics()
                        .iter()
                        .find(|t| t.name() == topic && t.error().is_none())
                        .map(|t| t.partitions().len() as i32)
                })
                .unwrap_or(0);
            if seen >= partitions {
                return;
            }
            if std::time::Instant::now() > deadline {
                panic!("topic {topic} still has {seen}/{partitions} partitions after 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .expect("metadata wait panicked");
}

/// Deletes consumer group `group` (the app must be stopped): the next run starts from the
/// earliest offsets, as after an application reset.
pub async fn delete_group(servers: &str, group: &str) {
    let admin = admin(servers);
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .delete_groups(&[group], &options)
        .await
        .unwrap_or_else(|e| panic!("delete_groups({group}) failed: {e}"));
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::GroupIdNotFound)) => {}
            Err((name, code)) => panic!("cannot delete group {name}: {code}"),
        }
    }
}

/// Deletes topics (missing ones are fine).
pub async fn delete(servers: &str, names: &[&str]) {
    let admin = admin(servers);
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .delete_topics(names, &options)
        .await
        .unwrap_or_else(|e| panic!("delete_topics failed: {e}"));
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((name, code)) => panic!("cannot delete topic {name}: {code}"),
        }
    }
}

/// The configuration entries of `topic` as (name, value).
pub async fn config(servers: &str, topic: &str) -> std::collections::BTreeMap<String, String> {
    use rdkafka::admin::ResourceSpecifier;
    let admin = admin(servers);
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &options)
        .await
        .unwrap_or_else(|e| panic!("describe_configs({topic}) failed: {e}"));
    let resource = results
        .into_iter()
        .next()
        .expect("one result")
        .unwrap_or_else(|e| panic!("describe_configs({topic}): {e}"));
    resource
        .entries
        .into_iter()
        .filter_map(|e| e.value.map(|v| (e.name, v)))
        .collect()
}

/// (low, high) watermark offsets of every partition of `topic`, by partition.
pub async fn watermarks(servers: &str, topic: &str) -> Vec<(i64, i64)> {
    let servers = servers.to_string();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = crate::kafka::client_config(&servers)
            .create()
            .expect("consumer config is valid");
        let partitions = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .expect("metadata")
            .topics()
            .first()
            .map(|t| t.partitions().len() as i32)
            .unwrap_or(0);
        (0..partitions)
            .map(|p| {
                consumer
                    .fetch_watermarks(&topic, p, Duration::from_secs(10))
                    .unwrap_or_else(|e| panic!("watermarks of {topic}-{p}: {e}"))
            })
            .collect()
    })
    .await
    .expect("watermark task")
}

/// The names of every topic on the cluster.
pub async fn names(servers: &str) -> Vec<String> {
    let servers = servers.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = crate::kafka::client_config(&servers)
            .create()
            .expect("consumer config is valid");
        let metadata = consumer
            .fetch_metadata(None, Duration::from_secs(10))
            .expect("metadata");
        metadata
            .topics()
            .iter()
            .map(|t| t.name().to_string())
            .collect()
    })
    .await
    .expect("metadata task")
}

/// The committed offset of `group` for each of `topic`'s partitions, in partition order
/// (`None`: nothing committed).
pub async fn committed_offsets(servers: &str, group: &str, topic: &str) -> Vec<Option<i64>> {
    let partitions = partition_count(servers, topic).await;
    let consumer: BaseConsumer = crate::kafka::client_config(servers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer config is valid");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    // A group the broker has only just seen may not have its coordinator loaded yet
    // (`NotCoordinator`, `CoordinatorLoadInProgress`): ask again for a while.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let committed = loop {
        match consumer.committed_offsets(tpl.clone(), Duration::from_secs(30)) {
            Ok(c) => break c,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("reading the committed offsets of {group}: {e}; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("cannot read the committed offsets of {group}: {e}"),
        }
    };
    (0..partitions)
        .map(
            |p| match committed.find_partition(topic, p).map(|e| e.offset()) {
                Some(rdkafka::Offset::Offset(o)) => Some(o),
                _ => None,
            },
        )
        .collect()
}

/// The partition count of `topic`.
pub(crate) async fn partition_count(servers: &str, topic: &str) -> i32 {
    let consumer: rdkafka::consumer::BaseConsumer = crate::kafka::client_config(servers)
        .create()
        .expect("consumer config is valid");
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let md = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("metadata of {topic}: {e}"));
        md.topics()
            .first()
            .map(|t| t.partitions().len() as i32)
            .filter(|&n| n > 0)
            .unwrap_or_else(|| panic!("topic {topic} does not exist"))
    })
    .await
    .expect("metadata task")
}
