//! [`AppShared`]: what the application handle and its stream threads share.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::app_state::AppState;
use super::commit_gate::CommitGate;
use crate::config::StreamsConfig;
use crate::error::StreamsError;
use crate::lifecycle::{State, StateRestoreListener, UncaughtExceptionHandler};
use crate::task::stream_task::TaskConfig;
use crate::task::{TaskId, TopicPartition};
use crate::topology::{SubTopology, Topology};

/// State of one input partition of a running task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStatus {
    /// The partition.
    pub partition: TopicPartition,
    /// Records fetched but not yet processed.
    pub buffered: usize,
    /// Largest timestamp seen at the head of its queue (-1: none).
    pub partition_time: i64,
    /// Excluded from time synchronisation.
    pub excluded: bool,
    /// Fetching is paused because the buffer is full.
    pub paused: bool,
    /// Exactly-once: nothing was fetched for this long although the broker holds records
    /// past the position — an open (possibly hanging) transaction blocks the partition.
    /// Reported once it lasts `StreamsConfig::stall_warning_after`.
    pub blocked_by_open_transaction: Option<std::time::Duration>,
}

/// State of one running task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStatus {
    /// Task id.
    pub id: TaskId,
    /// Stream time (-1: none yet).
    pub stream_time: i64,
    /// Records processed since the task was created.
    pub processed: u64,
    /// Records dropped (invalid timestamps, skipped by an error policy).
    pub dropped: u64,
    /// Times the task processed without waiting for an empty partition.
    pub enforced_processing: u64,
    /// Its input partitions.
    pub partitions: Vec<PartitionStatus>,
    /// Changelog records restored when the task was created (0 with up-to-date local state);
    /// while it restores, so far.
    pub restored_records: u64,
    /// Still restoring its stores from their changelogs: it processes nothing until they are
    /// up to date.
    pub restoring: bool,
}

/// What the user handed the application for its life: the state (with its listener), the
/// uncaught-error handler and the restore listener.
pub(crate) struct AppHandlers {
    pub state: AppState,
    pub exception_handler: Option<Box<UncaughtExceptionHandler>>,
    pub restore_listener: Option<Arc<dyn StateRestoreListener>>,
}

/// The partitions the app excluded from time synchronisation.
#[derive(Default)]
struct Exclusions {
    /// As the app named them: a partition, or a whole topic (`None`).
    excluded: BTreeSet<(String, Option<i32>)>,
    /// Partitions of an excluded topic that rejoined on data since.
    rejoined: BTreeSet<(String, i32)>,
}

pub(crate) struct AppShared {
    pub topology: Topology,
    pub config: StreamsConfig,
    pub subs: Vec<SubTopology>,
    pub task_config: TaskConfig,
    /// Partition counts of every source topic (resolved names).
    pub partition_counts: BTreeMap<String, i32>,
    /// Resolved names of the repartition topics, whose consumed records the app deletes.
    pub repartition_topics: BTreeSet<String>,
    /// Where task stores live.
    pub store_env: crate::task::state_manager::StoreEnv,
    pub shutdown: Arc<AtomicBool>,
    pub commit_gate: CommitGate,
    /// This instance's identity in task assignment.
    pub identity: String,
    /// Interactive queries on the stream threads' stores.
    pub queries: super::queries::QueryRouter,
    exclusions: Mutex<Exclusions>,
    exclusions_version: AtomicU64,
    status: Mutex<BTreeMap<TaskId, TaskStatus>>,
    standbys: Mutex<BTreeMap<usize, BTreeSet<TaskId>>>,
    errors: Mutex<Vec<StreamsError>>,
    /// The instance's state and its listener.
    pub state: AppState,
    /// What a thread failure does; `None`: shut this instance down.
    pub exception_handler: Option<Box<UncaughtExceptionHandler>>,
    /// Told of every active task's restore progress.
    pub restore_listener: Option<Arc<dyn StateRestoreListener>>,
}

impl AppShared {
    pub(crate) fn new(
        topology: Topology,
        config: StreamsConfig,
        task_config: TaskConfig,
        partition_counts: BTreeMap<String, i32>,
        store_env: crate::task::state_manager::StoreEnv,
        identity: String,
        handlers: AppHandlers,
    ) -> Self {
        let subs = topology.subtopologies();
        let threads = config.num_stream_threads;
        let repartition_topics = topology
            .repartition_topics
            .keys()
            .map(|t| t.resolve(&config.application_id))
            .collect();
        AppShared {
            repartition_topics,
            store_env,
            topology,
            config,
            subs,
            task_config,
            partition_counts,
            shutdown: Arc::new(AtomicBool::new(false)),
            commit_gate: CommitGate::default(),
            identity,
            queries: super::queries::QueryRouter::new(threads),
            exclusions: Mutex::new(Exclusions::default()),
            exclusions_version: AtomicU64::new(0),
            status: Mutex::new(BTreeMap::new()),
            standbys: Mutex::new(BTreeMap::new()),
            errors: Mutex::new(Vec::new()),
            state: handlers.state,
            exception_handler: handlers.exception_handler,
            restore_listener: handlers.restore_listener,
        }
    }

    /// The app excludes `topic` (one partition, or all with `None`) from time
    /// synchronisation, or includes it again. Either way the partitions it names forget
    /// having rejoined on data.
    pub(crate) fn set_excluded(&self, topic: &str, partition: Option<i32>, excluded: bool) {
        let mut ex = self.exclusions.lock().unwrap_or_else(|e| e.into_inner());
        ex.rejoined
            .retain(|(t, p)| !(t == topic && partition.is_none_or(|q| q == *p)));
        let key = (topic.to_string(), partition);
        if excluded {
            ex.excluded.insert(key);
        } else {
            ex.excluded.remove(&key);
            if partition.is_none() {
                ex.excluded.retain(|(t, _)| t != topic);
            }
        }
        self.exclusions_version.fetch_add(1, Ordering::SeqCst);
    }

    /// A record arrived on excluded partition `tp`, which rejoined time synchronisation: it
    /// stays in until the app excludes it again, also when the exclusions are applied anew
    /// (a rebalance, another exclusion changing).
    pub(crate) fn rejoined(&self, tp: &TopicPartition) {
        let mut ex = self.exclusions.lock().unwrap_or_else(|e| e.into_inner());
        let topic = tp.topic.to_string();
        ex.excluded.remove(&(topic.clone(), Some(tp.partition)));
        if ex.excluded.contains(&(topic.clone(), None)) {
            ex.rejoined.insert((topic, tp.partition));
        }
    }

    /// Whether the app has `tp` excluded from time synchronisation.
    pub(crate) fn is_excluded(&self, tp: &TopicPartition) -> bool {
        let ex = self.exclusions.lock().unwrap_or_else(|e| e.into_inner());
        let topic = tp.topic.to_string();
        let named = ex.excluded.contains(&(topic.clone(), Some(tp.partition)))
            || ex.excluded.contains(&(topic.clone(), None));
        named && !ex.rejoined.contains(&(topic, tp.partition))
    }

    pub(crate) fn exclusions_version(&self) -> u64 {
        self.exclusions_version.load(Ordering::SeqCst)
    }

    pub(crate) fn publish_status(&self, statuses: Vec<TaskStatus>) {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        for s in statuses {
            status.insert(s.id, s);
        }
    }

    pub(crate) fn clear_status(&self) {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    pub(crate) fn status(&self) -> Vec<TaskStatus> {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Replaces the standby tasks of stream thread `thread`.
    pub(crate) fn publish_standbys(&self, thread: usize, tasks: BTreeSet<TaskId>) {
        self.standbys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(thread, tasks);
    }

    /// The standby tasks of every thread of this instance.
    pub(crate) fn standbys(&self) -> BTreeSet<TaskId> {
        self.standbys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .flatten()
            .copied()
            .collect()
    }

    /// Records a thread's fatal error and stops the instance (state `PendingError`).
    pub(crate) fn fail(&self, error: StreamsError) {
        tracing::error!(error = %error, "a thread of the instance failed; shutting the instance down");
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(error);
        self.state.transition(State::PendingError);
        self.shutdown.store(true, Ordering::SeqCst);
    }

    /// Stops the instance on request (state `PendingShutdown`).
    pub(crate) fn request_shutdown(&self) {
        self.state.transition(State::PendingShutdown);
        self.shutdown.store(true, Ordering::SeqCst);
    }

    pub(crate) fn first_error(&self) -> Option<StreamsError> {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .first()
            .cloned()
    }

    /// The flag that says the application shuts down, for loops that wait on a client.
    pub(crate) fn shutdown_flag(&self) -> Arc<AtomicBool> {
        self.shutdown.clone()
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }
}
