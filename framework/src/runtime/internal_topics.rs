//! Checks the topics an application needs and creates its missing internal topics.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;

use crate::client_config::ClientRole;
use crate::config::StreamsConfig;
use crate::error::StreamsError;
use crate::topology::{TopicName, Topology};

const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// An internal topic to create: name, partitions, topic configs.
type InternalTopic = (String, i32, Vec<(&'static str, String)>);

/// Partition counts of every topic on the cluster (name → count).
fn cluster_topics(config: &StreamsConfig) -> Result<BTreeMap<String, i32>, StreamsError> {
    let consumer: BaseConsumer = config
        .with_client_properties(
            ClientRole::Consumer,
            ClientConfig::new().set("bootstrap.servers", &config.bootstrap_servers),
        )
        .create()?;
    live_partition_counts(&consumer)
}

/// Partition counts of every topic on the cluster, read now through `consumer`.
pub(crate) fn live_partition_counts<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
) -> Result<BTreeMap<String, i32>, StreamsError> {
    let metadata = consumer
        .fetch_metadata(None, METADATA_TIMEOUT)
        .map_err(|e| StreamsError::Kafka(format!("cannot read cluster metadata: {e}")))?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name().to_string(), t.partitions().len() as i32))
        .collect())
}

/// Verifies source and sink topics, sizes and creates repartition topics, and returns the
/// partition count of every source topic (resolved names).
pub(crate) fn prepare(
    topology: &Topology,
    config: &StreamsConfig,
) -> Result<BTreeMap<String, i32>, StreamsError> {
    let app = &config.application_id;
    let existing = cluster_topics(config)?;
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
                ("cleanup.policy", "delete".into()),
                // The app deletes consumed records itself, so the broker must not.
                ("retention.ms", "-1".into()),
                ("message.timestamp.type", "CreateTime".into()),
            ],
        ));
    }
    // A changelog has one partition per task of the sub-topology owning the store.
    for sub in topology.subtopologies() {
        let tasks = sub.task_count(&counts);
        for store in &sub.stores {
            if let Some(spec) = topology.stores.get(store).filter(|s| s.is_logged()) {
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
