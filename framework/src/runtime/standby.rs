//! [`StandbyTasks`]: the standby replicas one stream thread keeps: a copy of each assigned
//! task's persistent stores, kept current by the thread's [`StoreChangelogReader`] between
//! rounds of processing.
//!
//! A standby never processes input and never writes a changelog. It checkpoints what it has
//! applied, so when its task becomes active here the task's restore starts after the
//! checkpoint and reads only the changelog's tail. Under exactly-once the reader reads
//! `read_committed`, so everything a standby applies was committed and its checkpoint can be
//! trusted like one written at an at-least-once commit.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::app_shared::AppShared;
use super::changelog_reader::{Kind, StoreChangelogReader};
use crate::error::StreamsError;
use crate::task::state_manager::{StateManager, StoreEnv};
use crate::task::TaskId;
use streamtime_state::ChangelogWriter;

const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);
const CHECKPOINT_AFTER: u64 = 10_000;

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
    tasks: BTreeMap<TaskId, StateManager>,
    applied_since_checkpoint: u64,
    last_checkpoint: Instant,
}

impl StandbyTasks {
    pub(crate) fn new(shared: Arc<AppShared>, thread: usize) -> Self {
        StandbyTasks {
            shared,
            thread,
            tasks: BTreeMap::new(),
            applied_since_checkpoint: 0,
            last_checkpoint: Instant::now(),
        }
    }

    /// Keeps exactly the standbys in `wanted`: closes (and checkpoints) the others, opens the
    /// new ones from their local checkpoint.
    pub(crate) fn update(
        &mut self,
        wanted: &BTreeSet<TaskId>,
        reader: &mut StoreChangelogReader,
    ) -> Result<(), StreamsError> {
        let gone: Vec<TaskId> = self
            .tasks
            .keys()
            .filter(|id| !wanted.contains(id))
            .copied()
            .collect();
        for id in gone {
            self.close(id, reader);
        }
        for &id in wanted {
            if !self.tasks.contains_key(&id) {
                self.open(id, reader)?;
            }
        }
        self.shared
            .publish_standbys(self.thread, self.tasks.keys().copied().collect());
        Ok(())
    }

    /// Closes every standby (shutdown).
    pub(crate) fn close_all(&mut self, reader: &mut StoreChangelogReader) {
        let ids: Vec<TaskId> = self.tasks.keys().copied().collect();
        for id in ids {
            self.close(id, reader);
        }
        self.shared.publish_standbys(self.thread, BTreeSet::new());
    }

    fn open(&mut self, id: TaskId, reader: &mut StoreChangelogReader) -> Result<(), StreamsError> {
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
        reader.register_standby(id, &state);
        tracing::info!(task = %id, "standby task created");
        self.tasks.insert(id, state);
        Ok(())
    }

    fn close(&mut self, id: TaskId, reader: &mut StoreChangelogReader) {
        let Some(mut state) = self.tasks.remove(&id) else {
            return;
        };
        reader.unregister(id, Kind::Standby);
        if let Err(e) = state.checkpoint(&|_| None) {
            tracing::warn!(task = %id, error = %e, "cannot checkpoint a standby on close");
        }
        state.close();
        tracing::info!(task = %id, "standby task closed");
    }

    /// The state of standby `id`, for the reader to apply records to.
    pub(crate) fn state(&mut self, id: TaskId) -> Option<&mut StateManager> {
        self.tasks.get_mut(&id)
    }

    /// After the reader applied `applied` records to the standbys: checkpoints them every
    /// [`CHECKPOINT_AFTER`] records or [`CHECKPOINT_EVERY`], so a standby that becomes active
    /// restores only what followed.
    pub(crate) fn applied(&mut self, applied: usize) {
        self.applied_since_checkpoint += applied as u64;
        if self.applied_since_checkpoint > 0
            && (self.applied_since_checkpoint >= CHECKPOINT_AFTER
                || self.last_checkpoint.elapsed() >= CHECKPOINT_EVERY)
        {
            for (id, state) in &mut self.tasks {
                if let Err(e) = state.checkpoint(&|_| None) {
                    tracing::warn!(task = %id, error = %e, "cannot checkpoint a standby");
                }
            }
            self.applied_since_checkpoint = 0;
            self.last_checkpoint = Instant::now();
        }
    }
}
