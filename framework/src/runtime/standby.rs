//! [`StandbyTasks`]: the standby replicas one stream thread keeps: a copy of each assigned
//! task's persistent stores, kept current by reading the stores' changelogs with an
//! assign-based consumer between rounds of processing.
//!
//! A standby never processes input and never writes a changelog. It checkpoints what it has
//! applied, so when its task becomes active here the task's restore starts after the
//! checkpoint and reads only the changelog's tail. Under exactly-once the standby reads
//! `read_committed`, so everything it applies was committed and its checkpoint can be trusted
//! like one written at an at-least-once commit.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::app_shared::AppShared;
use super::changelog_reader::{self, RestoreContext};
use crate::error::StreamsError;
use crate::task::state_manager::{StateManager, StoreEnv};
use crate::task::TaskId;
use streamtime_state::ChangelogWriter;

/// Changelog records read per call to [`StandbyTasks::poll`], so processing is not starved.
const POLL_BUDGET: usize = 5_000;
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);
const CHECKPOINT_AFTER: u64 = 10_000;

/// Changelog records read from one partition, and the offset of the last of them.
type ChangelogBatch = (Vec<(Vec<u8>, Option<Vec<u8>>)>, i64);

/// A standby's stores are written only by restoring from the changelog.
struct NoChangelog;

impl ChangelogWriter for NoChangelog {
    fn send(&mut self, _key: &[u8], _value: Option<&[u8]>, _timestamp: i64) {
        debug_assert!(false, "a standby store was written outside restore");
    }
}

/// Whether a task of sub-topology `sub` has state a standby can keep: a persistent store
/// with a changelog.
pub(crate) fn has_standby_state(shared: &AppShared, subtopology: u32) -> bool {
    shared.store_env.state_dir.is_some()
        && shared.subs[subtopology as usize].stores.iter().any(|name| {
            shared
                .topology
                .stores
                .get(name)
                .is_some_and(|s| s.persistent && s.logging)
        })
}

pub(crate) struct StandbyTasks {
    shared: Arc<AppShared>,
    thread: usize,
    consumer: Option<BaseConsumer<RestoreContext>>,
    tasks: BTreeMap<TaskId, StateManager>,
    /// Changelog partition → (task, store index, next offset to read).
    partitions: HashMap<(String, i32), (TaskId, usize, Offset)>,
    applied_since_checkpoint: u64,
    last_checkpoint: Instant,
}

impl StandbyTasks {
    pub fn new(shared: Arc<AppShared>, thread: usize) -> Self {
        StandbyTasks {
            shared,
            thread,
            consumer: None,
            tasks: BTreeMap::new(),
            partitions: HashMap::new(),
            applied_since_checkpoint: 0,
            last_checkpoint: Instant::now(),
        }
    }

    /// Keeps exactly the standbys in `wanted`: closes (and checkpoints) the others, opens the
    /// new ones from their local checkpoint.
    pub fn update(&mut self, wanted: &BTreeSet<TaskId>) -> Result<(), StreamsError> {
        let gone: Vec<TaskId> = self
            .tasks
            .keys()
            .filter(|id| !wanted.contains(id))
            .copied()
            .collect();
        for id in gone {
            self.close(id);
        }
        for &id in wanted {
            if !self.tasks.contains_key(&id) {
                self.open(id)?;
            }
        }
        self.reassign()?;
        self.shared
            .publish_standbys(self.thread, self.tasks.keys().copied().collect());
        Ok(())
    }

    /// Closes every standby (shutdown).
    pub fn close_all(&mut self) {
        let ids: Vec<TaskId> = self.tasks.keys().copied().collect();
        for id in ids {
            self.close(id);
        }
        self.consumer = None;
        self.shared.publish_standbys(self.thread, BTreeSet::new());
    }

    fn open(&mut self, id: TaskId) -> Result<(), StreamsError> {
        let shared = &self.shared;
        let sub = &shared.subs[id.subtopology as usize];
        // A standby checkpoints while it runs, like an at-least-once task: it only ever holds
        // committed changelog records.
        let env = StoreEnv {
            eos: false,
            ..shared.store_env.clone()
        };
        let no_writer = |_: &str, _: i32, _| -> Box<dyn ChangelogWriter> { Box::new(NoChangelog) };
        let state = StateManager::open(
            id,
            &shared.topology,
            &sub.stores,
            &shared.config.application_id,
            &env,
            &no_writer,
        )?;
        for changelog in state.changelogs() {
            let from = changelog.from.map_or(Offset::Beginning, Offset::Offset);
            self.partitions.insert(
                (changelog.topic, changelog.partition),
                (id, changelog.store, from),
            );
        }
        tracing::info!(task = %id, "standby task created");
        self.tasks.insert(id, state);
        Ok(())
    }

    fn close(&mut self, id: TaskId) {
        let Some(mut state) = self.tasks.remove(&id) else {
            return;
        };
        self.partitions.retain(|_, (task, _, _)| *task != id);
        if let Err(e) = state.checkpoint(&|_, _| None) {
            tracing::warn!(task = %id, error = %e, "cannot checkpoint a standby on close");
        }
        state.close();
        tracing::info!(task = %id, "standby task closed");
    }

    /// Points the changelog consumer at every standby partition, each from its next offset.
    fn reassign(&mut self) -> Result<(), StreamsError> {
        if self.partitions.is_empty() {
            self.consumer = None;
            return Ok(());
        }
        if self.consumer.is_none() {
            self.consumer = Some(changelog_reader::consumer(&self.shared.config)?);
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), (_, _, next)) in &self.partitions {
            tpl.add_partition_offset(topic, *partition, *next)?;
        }
        self.consumer
            .as_ref()
            .expect("created above")
            .assign(&tpl)?;
        Ok(())
    }

    /// Applies changelog records that arrived, without waiting; returns how many.
    pub fn poll(&mut self) -> Result<usize, StreamsError> {
        let Some(consumer) = &self.consumer else {
            return Ok(0);
        };
        let mut batches: BTreeMap<(String, i32), ChangelogBatch> = BTreeMap::new();
        let mut read = 0;
        while read < POLL_BUDGET {
            match consumer.poll(Duration::ZERO) {
                None => break,
                Some(Ok(m)) => {
                    read += 1;
                    let batch = batches
                        .entry((m.topic().to_string(), m.partition()))
                        .or_insert_with(|| (Vec::new(), -1));
                    batch.1 = m.offset();
                    if let Some(key) = m.key() {
                        batch
                            .0
                            .push((key.to_vec(), m.payload().map(<[u8]>::to_vec)));
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "standby changelog read error; retrying");
                    break;
                }
            }
        }
        for (key, (records, last)) in batches {
            let Some((task, store, next)) = self.partitions.get_mut(&key) else {
                continue;
            };
            let state = self.tasks.get_mut(task).expect("standby of a partition");
            let view: Vec<(&[u8], Option<&[u8]>)> = records
                .iter()
                .map(|(k, v)| (k.as_slice(), v.as_deref()))
                .collect();
            state.restore(*store, &view, last)?;
            *next = Offset::Offset(last + 1);
            metrics::counter!("streamtime_standby_records_total", "task" => task.to_string())
                .increment(records.len() as u64);
        }
        self.applied_since_checkpoint += read as u64;
        if self.applied_since_checkpoint > 0
            && (self.applied_since_checkpoint >= CHECKPOINT_AFTER
                || self.last_checkpoint.elapsed() >= CHECKPOINT_EVERY)
        {
            for (id, state) in &mut self.tasks {
                if let Err(e) = state.checkpoint(&|_, _| None) {
                    tracing::warn!(task = %id, error = %e, "cannot checkpoint a standby");
                }
            }
            self.applied_since_checkpoint = 0;
            self.last_checkpoint = Instant::now();
        }
        Ok(read)
    }
}
