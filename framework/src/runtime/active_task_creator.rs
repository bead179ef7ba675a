//! [`ActiveTaskCreator`]: turns assigned partitions into running tasks in two steps — opens
//! their stores and registers them with the thread's [`StoreChangelogReader`] as
//! [`RestoringTask`]s, then, once their stores are up to date, builds the tasks and resumes
//! them from their committed offsets and metadata.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use super::app_shared::AppShared;
use super::changelog_reader::{Kind, Registration, RestoreStats, StoreChangelogReader};
use super::commit_metadata;
use super::kafka_collector::{KafkaChangelogWriter, KafkaRecordCollector, PartitionCache};
use super::streams_producer::StreamsProducer;
use super::tasks::Tasks;
use crate::error::StreamsError;
use crate::record::RawRecord;
use crate::task::state_manager::{StateManager, StoreEnv};
use crate::task::stream_task::StreamTask;
use crate::task::{TaskId, TopicPartition};
use crate::topology::Topology;
use streamtime_state::{CacheBudget, ChangelogWriter};

const COMMITTED_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a task waits for its state directory while another thread of this instance
/// still holds it as a standby it is about to give up.
const DIRECTORY_WAIT: Duration = Duration::from_secs(30);

/// A task whose stores are open and being restored; it processes nothing yet, and its input
/// partitions stay paused.
pub(crate) struct RestoringTask {
    pub id: TaskId,
    pub partitions: Vec<TopicPartition>,
    pub state: StateManager,
    /// Per input partition: the committed offset (`None`: from the beginning) and the stream
    /// time and processor metadata committed with it.
    committed: Vec<(
        TopicPartition,
        Option<i64>,
        Option<commit_metadata::Decoded>,
    )>,
    /// Set when its stores are up to date.
    pub restored: Option<RestoreStats>,
    /// Input records fetched while the task restores, per partition in offset order, at
    /// most a buffer's worth before the partition is paused: the task gets them when it
    /// starts.
    pub held: BTreeMap<TopicPartition, Vec<RawRecord>>,
    /// Partitions paused because their held records filled a buffer.
    pub paused: std::collections::BTreeSet<TopicPartition>,
}

impl RestoringTask {
    /// Its input partitions.
    pub(crate) fn partition_list(&self) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for tp in &self.partitions {
            tpl.add_partition(&tp.topic, tp.partition);
        }
        tpl
    }
}

pub(crate) struct ActiveTaskCreator {
    shared: Arc<AppShared>,
    producer: Arc<StreamsProducer>,
    partition_cache: PartitionCache,
    /// The instance's store environment with this thread's share of the record cache.
    store_env: StoreEnv,
}

impl ActiveTaskCreator {
    pub(crate) fn new(
        shared: Arc<AppShared>,
        producer: Arc<StreamsProducer>,
        partition_cache: PartitionCache,
    ) -> Self {
        // Kafka Streams splits statestore.cache.max.bytes evenly over the stream threads;
        // every task of a thread draws on its share.
        let threads = shared.config.num_stream_threads.max(1);
        let store_env = StoreEnv {
            cache: Some(CacheBudget::new(shared.config.cache_max_bytes / threads)),
            ..shared.store_env.clone()
        };
        ActiveTaskCreator {
            shared,
            producer,
            partition_cache,
            store_env,
        }
    }

    /// What the record caches of this thread's tasks hold, bytes.
    pub(crate) fn cached_bytes(&self) -> usize {
        self.store_env.cache.as_ref().map_or(0, |c| c.used_bytes())
    }

    /// Sends of tasks created from now on go through `producer` (after a task migration).
    pub(crate) fn set_producer(&mut self, producer: Arc<StreamsProducer>) {
        self.producer = producer;
    }

    /// Opens the stores of the tasks of `tpl` and registers them with `reader`, into
    /// `restoring`; `false` when it must be tried again later (nothing was opened).
    pub(crate) fn open<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
        restoring: &mut BTreeMap<TaskId, RestoringTask>,
        reader: &mut StoreChangelogReader,
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
                // unstable until it ends): nothing is opened yet, so try again shortly.
                tracing::warn!(error = %e, "cannot read the committed offsets; retrying the assignment");
                return Ok(false);
            }
        };
        let mut opened: Vec<RestoringTask> = Vec::with_capacity(grouped.len());
        for (id, partitions) in grouped {
            let result = self.open_one(id, partitions, &counts, &committed, reader);
            let Ok(Some(task)) = result else {
                // Nothing of this assignment stays open: it is tried again, or the thread
                // fails.
                for mut task in opened {
                    reader.unregister(task.id, Kind::Active);
                    task.state.close();
                }
                return result.map(|_| false);
            };
            opened.push(task);
        }
        for task in opened {
            restoring.insert(task.id, task);
        }
        Ok(true)
    }

    /// Opens the stores of task `id` and registers them with `reader`; `None` when the broker
    /// did not say where the changelogs end (nothing is registered; try again later).
    fn open_one(
        &self,
        id: TaskId,
        partitions: Vec<TopicPartition>,
        counts: &BTreeMap<String, i32>,
        committed: &TopicPartitionList,
        reader: &mut StoreChangelogReader,
    ) -> Result<Option<RestoringTask>, StreamsError> {
        let shared = &self.shared;
        let app = &shared.config.application_id;
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
                changelog: TopicPartition::new(topic, partition),
                sent,
            })
        };
        let committed: Vec<_> = partitions
            .iter()
            .map(
                |tp| match committed.find_partition(&tp.topic, tp.partition) {
                    Some(elem) => {
                        let offset = match elem.offset() {
                            Offset::Offset(o) => Some(o),
                            _ => None,
                        };
                        (tp.clone(), offset, commit_metadata::decode(elem.metadata()))
                    }
                    None => (tp.clone(), None, None),
                },
            )
            .collect();
        // The task's stream time as committed; nothing committed: no time at all, so the
        // stores expire nothing their changelogs restore until processing moves on.
        let committed_stream_time = committed
            .iter()
            .filter_map(|(_, _, metadata)| metadata.as_ref().map(|(pt, _)| *pt))
            .max()
            .unwrap_or(i64::MIN);
        // Behind a watermark the partitions' times run ahead of the operators' (the fastest
        // writer's): the restored stores expire nothing until the operators cap them.
        let watermarked = partitions
            .iter()
            .any(|tp| shared.task_config.watermark_topics.contains(&*tp.topic));
        let committed_stream_time = match watermarked {
            true => i64::MIN,
            false => committed_stream_time,
        };
        let open = || {
            let state = StateManager::open(
                id,
                &shared.topology,
                &sub.stores,
                app,
                &self.store_env,
                &writer,
            )?;
            state.limit_expiry(committed_stream_time);
            Ok(state)
        };
        let mut state = retry_while_locked(id, &open)?;
        let listener = shared.restore_listener.as_deref();
        let committed_offset = |tp: &TopicPartition| {
            committed
                .iter()
                .find(|(c, _, _)| c == tp)
                .and_then(|(_, offset, _)| *offset)
        };
        let registered = match reader.register_active(id, &state, listener, &committed_offset) {
            Ok(Registration::StaleCheckpoint) => {
                // Reopened without a checkpoint, the task's stores start empty and are
                // restored from the start of their changelogs.
                state.discard()?;
                state = retry_while_locked(id, &open)?;
                reader.register_active(id, &state, listener, &committed_offset)
            }
            other => other,
        };
        let restored = match registered {
            Ok(Registration::Restoring) => None,
            Ok(_) => Some(RestoreStats::default()),
            Err(e) => {
                tracing::warn!(task = %id, error = %e, "cannot start the restore; retrying the assignment");
                state.close();
                return Ok(None);
            }
        };
        Ok(Some(RestoringTask {
            id,
            partitions,
            state,
            committed,
            restored,
            held: BTreeMap::new(),
            paused: Default::default(),
        }))
    }

    /// Builds the task whose stores `restoring` restored, into `tasks`.
    pub(crate) fn finish(
        &mut self,
        restoring: RestoringTask,
        tasks: &mut Tasks,
    ) -> Result<(), StreamsError> {
        let shared = &self.shared;
        let RestoringTask {
            id,
            partitions,
            state,
            committed,
            restored,
            held,
            ..
        } = restoring;
        // Processors may forward from init.
        self.producer.begin_transaction()?;
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
        for (tp, offset, metadata) in &committed {
            if let Some(o) = offset {
                positions.push((tp.clone(), *o));
                task.restore_position(tp, *o);
            }
            if let Some((pt, processor)) = metadata {
                task.restore_partition_time(tp, *pt);
                task.restore_processor_metadata(processor);
            }
        }
        task.init()?;
        tracing::info!(task = %id, stream_time = task.stream_time(), "task created");
        tasks.insert(task, positions, restored.unwrap_or_default().records);
        for records in held.into_values() {
            tasks.add_records(records)?;
        }
        Ok(())
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
