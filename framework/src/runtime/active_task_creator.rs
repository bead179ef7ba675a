//! [`ActiveTaskCreator`]: turns assigned partitions into running tasks — opens their stores,
//! restores them from their changelogs (all partitions at once, with one kept consumer),
//! builds the tasks and resumes them from their committed offsets and metadata.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use super::app_shared::AppShared;
use super::changelog_reader::{self, Restore, RestoreClients};
use super::commit_metadata;
use super::kafka_collector::{KafkaChangelogWriter, KafkaRecordCollector, PartitionCache};
use super::streams_producer::StreamsProducer;
use super::tasks::Tasks;
use crate::error::StreamsError;
use crate::task::state_manager::StateManager;
use crate::task::stream_task::StreamTask;
use crate::task::{TaskId, TopicPartition};
use crate::topology::Topology;
use streamtime_state::ChangelogWriter;

const COMMITTED_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a task waits for its state directory while another thread of this instance
/// still holds it as a standby it is about to give up.
const DIRECTORY_WAIT: Duration = Duration::from_secs(30);

pub(crate) struct ActiveTaskCreator {
    shared: Arc<AppShared>,
    producer: Arc<StreamsProducer>,
    partition_cache: PartitionCache,
    /// Read changelogs into new tasks' stores.
    restore_clients: RestoreClients,
}

impl ActiveTaskCreator {
    pub fn new(
        shared: Arc<AppShared>,
        producer: Arc<StreamsProducer>,
        partition_cache: PartitionCache,
    ) -> Self {
        ActiveTaskCreator {
            restore_clients: RestoreClients::new(shared.shutdown_flag()),
            shared,
            producer,
            partition_cache,
        }
    }

    /// Sends of tasks created from now on go through `producer` (after a task migration).
    pub fn set_producer(&mut self, producer: Arc<StreamsProducer>) {
        self.producer = producer;
    }

    /// Creates the tasks of `tpl` into `tasks`; `false` when it must be tried again later
    /// (nothing was created).
    pub fn create<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
        tasks: &mut Tasks,
    ) -> Result<bool, StreamsError> {
        let shared = self.shared.clone();
        let app = &shared.config.application_id;
        let mut grouped: BTreeMap<TaskId, Vec<TopicPartition>> = BTreeMap::new();
        for elem in tpl.elements() {
            let Some(sub) = Topology::subtopology_reading(&shared.subs, app, elem.topic()) else {
                tracing::warn!(
                    topic = elem.topic(),
                    "assigned a topic no source reads; ignoring it"
                );
                continue;
            };
            grouped
                .entry(TaskId {
                    subtopology: sub,
                    partition: elem.partition(),
                })
                .or_default()
                .push(TopicPartition::new(elem.topic(), elem.partition()));
        }
        // Partition counts as they are now: source topics may have grown since the start.
        let counts = super::internal_topics::live_partition_counts(consumer)?;
        check_copartitioning(&shared.topology, app, &counts)?;
        let committed = match consumer.committed_offsets(tpl.clone(), COMMITTED_TIMEOUT) {
            Ok(committed) => committed,
            Err(e) => {
                // E.g. the previous owner's transaction is still open (its offsets are
                // unstable until it ends): nothing is created yet, so try again shortly.
                tracing::warn!(error = %e, "cannot read the committed offsets; retrying the assignment");
                return Ok(false);
            }
        };
        // Stores first, all restored together by one consumer, then the tasks.
        let mut opened = Vec::with_capacity(grouped.len());
        for (id, partitions) in grouped {
            let sub = &shared.subs[id.subtopology as usize];
            let expected = sub
                .source_topics
                .iter()
                .filter(|t| {
                    counts
                        .get(&t.resolve(app))
                        .is_some_and(|&n| id.partition < n)
                })
                .count();
            if partitions.len() != expected {
                tracing::warn!(task = %id, got = partitions.len(), expected,
                    "task got only some of its source partitions; the others are on another instance");
            }
            let producer = self.producer.clone();
            let writer = move |topic: &str, partition: i32, sent| -> Box<dyn ChangelogWriter> {
                Box::new(KafkaChangelogWriter {
                    producer: producer.clone(),
                    topic: topic.to_string(),
                    partition,
                    sent,
                })
            };
            let shared = &shared;
            let open = move || {
                StateManager::open(
                    id,
                    &shared.topology,
                    &sub.stores,
                    app,
                    &shared.store_env,
                    &writer,
                )
            };
            let state = retry_while_locked(id, &open)?;
            let open: Box<dyn Fn() -> Result<StateManager, StreamsError> + '_> = Box::new(open);
            opened.push((id, partitions, state, open));
        }
        let restored = loop {
            let mut restoring: Vec<_> = opened
                .iter_mut()
                .map(|(id, _, state, _)| (*id, state))
                .collect();
            let restore = changelog_reader::restore(
                &shared.config,
                &mut self.restore_clients,
                &mut restoring,
                shared.restore_listener.as_deref(),
            )?;
            match restore {
                Restore::Done(stats) => break stats,
                // Nothing is created; the thread stops.
                Restore::Interrupted => return Ok(false),
                Restore::StaleCheckpoints(mut stale) => {
                    // Reopened without a checkpoint, a task's stores start empty, and the
                    // next round restores them from the start of their changelogs.
                    stale.sort_unstable_by(|a, b| b.cmp(a));
                    for i in stale {
                        let (id, partitions, state, open) = opened.swap_remove(i);
                        state.discard()?;
                        let state = retry_while_locked(id, &open)?;
                        opened.push((id, partitions, state, open));
                    }
                }
            }
        };
        // Processors may forward from init.
        self.producer.begin_transaction()?;
        for ((id, partitions, state, _), restored) in opened.into_iter().zip(restored) {
            let sub = &shared.subs[id.subtopology as usize];
            let collector = Box::new(KafkaRecordCollector {
                producer: self.producer.clone(),
                partitions: self.partition_cache.clone(),
                max_age: shared.config.metadata_refresh_interval,
            });
            let mut task = StreamTask::new(
                id,
                &shared.topology,
                sub,
                &partitions,
                (collector, state),
                &shared.task_config,
                super::wall_clock_ms(),
            )?;
            let mut positions = Vec::new();
            for tp in &partitions {
                if let Some(elem) = committed.find_partition(&tp.topic, tp.partition) {
                    if let Offset::Offset(o) = elem.offset() {
                        positions.push((tp.clone(), o));
                    }
                    if let Some((pt, processor)) = commit_metadata::decode(elem.metadata()) {
                        task.restore_partition_time(tp, pt);
                        task.restore_processor_metadata(&processor);
                    }
                }
            }
            task.init()?;
            tracing::info!(task = %id, stream_time = task.stream_time(), "task created");
            tasks.insert(task, positions, restored.records);
        }
        Ok(true)
    }
}

/// Fails when topics that must be co-partitioned (join inputs) no longer have equal partition
/// counts, e.g. after partitions were added to only one of them: joining them would silently
/// miss matches.
fn check_copartitioning(
    topology: &Topology,
    app: &str,
    counts: &BTreeMap<String, i32>,
) -> Result<(), StreamsError> {
    let live = topology
        .copartition_groups
        .iter()
        .flatten()
        .filter_map(|t| counts.get(&t.resolve(app)).map(|&n| (t.clone(), n)))
        .collect();
    topology.check_copartitioning(&live).map_err(|e| {
        StreamsError::Topology(format!(
            "{e}; the topics' partition counts changed while the app runs"
        ))
    })
}

/// Opens a task's state, waiting while another thread of this instance still holds the
/// task's directory (a standby it gives up in its own rebalance callback).
fn retry_while_locked(
    task: TaskId,
    open: &dyn Fn() -> Result<StateManager, StreamsError>,
) -> Result<StateManager, StreamsError> {
    let deadline = std::time::Instant::now() + DIRECTORY_WAIT;
    loop {
        match open() {
            Err(StreamsError::State(msg))
                if msg.contains("is locked") && std::time::Instant::now() < deadline =>
            {
                tracing::debug!(%task, "state directory still locked; waiting");
                std::thread::sleep(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}
