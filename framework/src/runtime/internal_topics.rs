//! Checks the topics an application needs and creates its missing internal topics.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;

use super::client_health::WatchedClient;
use crate::client_config::ClientRole;
use crate::config::StreamsConfig;
use crate::error::StreamsError;
use crate::topology::{TopicName, Topology};

const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// An internal topic to create: name, partitions, topic configs.
type InternalTopic = (String, i32, Vec<(String, String)>);

/// Partition counts of every topic on the cluster (name → count).
fn cluster_topics(config: &StreamsConfig) -> Result<BTreeMap<String, i32>, StreamsError> {
    let consumer: BaseConsumer<WatchedClient> = config
        .with_client_properties(
            ClientRole::Consumer,
            ClientConfig::new().set("bootstrap.servers", &config.bootstrap_servers),
        )
        .create_with_context(WatchedClient::default())?;
    watched_partition_counts(&consumer)
}

/// Partition counts of every topic on the cluster, like [`live_partition_counts`], asked in
/// one-second slices: with a wrong password librdkafka retries the login forever and a
/// request only times out, so between slices the client's events are served and a failed
/// authentication ends the wait within a slice or two (measured: the application ended 2 s
/// after its first failed login, where it used to wait out the 30 s timeout).
pub(crate) fn watched_partition_counts(
    consumer: &BaseConsumer<WatchedClient>,
) -> Result<BTreeMap<String, i32>, StreamsError> {
    let deadline = Instant::now() + METADATA_TIMEOUT;
    loop {
        match consumer.fetch_metadata(None, Duration::from_secs(1)) {
            Ok(metadata) => return Ok(partition_counts(&metadata)),
            Err(e) => {
                // Serves the error events, which reach the context only through a poll.
                let _ = consumer.poll(Duration::ZERO);
                if let Some(error) = consumer.context().ending_error() {
                    return Err(error);
                }
                if Instant::now() >= deadline {
                    return Err(StreamsError::Kafka(format!(
                        "cannot read cluster metadata: {e}"
                    )));
                }
            }
        }
    }
}

fn partition_counts(metadata: &rdkafka::metadata::Metadata) -> BTreeMap<String, i32> {
    metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name().to_string(), t.partitions().len() as i32))
        .collect()
}

/// A topic missing from the cluster's metadata may exist and be hidden from a principal
/// without Describe on it: asked for by name, the broker says which. Then the error names
/// the ACL to grant instead of claiming the topic does not exist.
fn refuse_if_unauthorized(
    config: &StreamsConfig,
    topic: &str,
    role: &str,
    operation: &str,
) -> Result<(), StreamsError> {
    let consumer: BaseConsumer = config
        .with_client_properties(
            ClientRole::Consumer,
            ClientConfig::new()
                .set("bootstrap.servers", &config.bootstrap_servers)
                .set("allow.auto.create.topics", "false"),
        )
        .create()?;
    let metadata = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .map_err(|e| StreamsError::Kafka(format!("cannot read the metadata of {topic}: {e}")))?;
    let denied = metadata.topics().iter().any(|t| {
        t.error().is_some_and(|e| {
            RDKafkaErrorCode::from(e) == RDKafkaErrorCode::TopicAuthorizationFailed
        })
    });
    if denied {
        return Err(StreamsError::Kafka(format!(
            "topic authorization failed for {role} topic {topic}: grant the application's \
             principal Describe and {operation} on it"
        )));
    }
    Ok(())
}

/// Partition counts of every topic on the cluster, read now through `consumer`.
pub(crate) fn live_partition_counts<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
) -> Result<BTreeMap<String, i32>, StreamsError> {
    let metadata = consumer
        .fetch_metadata(None, METADATA_TIMEOUT)
        .map_err(|e| StreamsError::Kafka(format!("cannot read cluster metadata: {e}")))?;
    Ok(partition_counts(&metadata))
}

/// Verifies source and sink topics, sizes and creates repartition topics, and returns the
/// partition count of every source topic (resolved names).
pub(crate) fn prepare(
    topology: &Topology,
    config: &StreamsConfig,
) -> Result<BTreeMap<String, i32>, StreamsError> {
    let app = &config.application_id;
    let existing = cluster_topics(config)?;
    for topic in topology.all_source_topics() {
        if let TopicName::External(name) = topic {
            if !existing.contains_key(&**name) {
                refuse_if_unauthorized(config, name, "source", "Read")?;
            }
        }
    }
    let counts = topology.resolve_partition_counts(&|t| existing.get(t).copied())?;
    let outputs = topology
        .all_sink_topics()
        .filter_map(|t| match t {
            TopicName::External(name) => Some(&**name),
            TopicName::Internal(_) => None,
        })
        .chain(topology.side_output_topics.iter().map(String::as_str))
        .chain(match &config.deserialization_error_policy {
            crate::error_policy::DeserializationErrorPolicy::DeadLetter { topic } => {
                Some(topic.as_str())
            }
            _ => None,
        });
    for name in outputs {
        if !existing.contains_key(name) {
            refuse_if_unauthorized(config, name, "output", "Write")?;
            return Err(StreamsError::MissingTopic(format!(
                "output topic {name} does not exist; create it before starting the app"
            )));
        }
    }
    let mut wanted_topics: Vec<InternalTopic> = Vec::new();
    for topic in topology.repartition_topics.keys() {
        wanted_topics.push((
            topic.resolve(app),
            counts[topic],
            vec![
                ("cleanup.policy".into(), "delete".into()),
                // The app deletes consumed records itself, so the broker must not.
                ("retention.ms".into(), "-1".into()),
                ("message.timestamp.type".into(), "CreateTime".into()),
            ],
        ));
    }
    // A changelog has one partition per task of the sub-topology owning the store.
    for sub in topology.subtopologies() {
        let tasks = sub.task_count(&counts);
        for store in &sub.stores {
            let reuse = config.reuses_source_topics();
            if let Some(spec) = topology
                .stores
                .get(store)
                .filter(|s| s.has_own_changelog(reuse))
            {
                wanted_topics.push((
                    Topology::changelog_topic(store).resolve(app),
                    tasks,
                    spec.changelog_configs(),
                ));
            }
        }
    }
    let mut to_create = Vec::new();
    for (name, wanted, configs) in wanted_topics {
        match existing.get(&name) {
            Some(&n) if n == wanted => {}
            Some(&n) => {
                return Err(StreamsError::Topology(format!(
                    "internal topic {name} has {n} partitions but the topology needs {wanted}; \
                     reset the application to recreate it"
                )))
            }
            None => to_create.push((name, wanted, configs)),
        }
    }
    if !to_create.is_empty() {
        create_internal_topics(config, &to_create)?;
    }
    Ok(counts
        .into_iter()
        .map(|(topic, n)| (topic.resolve(app), n))
        .collect())
}

fn create_internal_topics(
    config: &StreamsConfig,
    topics: &[InternalTopic],
) -> Result<(), StreamsError> {
    let admin: AdminClient<DefaultClientContext> = config
        .with_client_properties(
            ClientRole::Admin,
            ClientConfig::new().set("bootstrap.servers", &config.bootstrap_servers),
        )
        .create()?;
    // -1 lets the broker apply its default replication factor.
    let replication = config.replication_factor;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(name, n, configs)| {
            configs.iter().fold(
                NewTopic::new(name, *n, TopicReplication::Fixed(replication)),
                |topic, (k, v)| topic.set(k, v),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
    let results = futures::executor::block_on(admin.create_topics(new_topics.iter(), &options))?;
    for result in results {
        match result {
            Ok(name) => tracing::info!(topic = %name, "created internal topic"),
            // Another instance of the app created it first.
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(StreamsError::Kafka(format!(
                    "cannot create internal topic {name}: {code}"
                )))
            }
        }
    }
    // Wait until the new topics are visible, so the consumer's subscription sees them.
    let deadline = std::time::Instant::now() + METADATA_TIMEOUT;
    loop {
        let existing = cluster_topics(config)?;
        if topics
            .iter()
            .all(|(name, n, _)| existing.get(name) == Some(n))
        {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(StreamsError::Kafka(
                "internal topics did not appear in the metadata within 30 s".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
