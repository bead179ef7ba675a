//! [`StateManager`]: the stores of one task — opening them in the task directory, deciding
//! what local state can be trusted, restoring from changelogs and writing checkpoints.
//!
//! Local state is trusted only with a checkpoint: without one (first start, crash under
//! exactly-once, a corrupt file) the task's store files are wiped and rebuilt from the
//! changelog, so stale data is never served. Under exactly-once the checkpoint is removed while
//! the task runs and written again only on a clean close.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use streamtime_state::{
    CacheBudget, CachingKeyValueStore, CachingSessionStore, CachingWindowStore, ChangelogWriter,
    CheckpointFile, CheckpointOffsets, InMemoryKeyValueStore, InMemorySessionStore,
    InMemoryVersionedStore, InMemoryWindowStore, KeyValueStore, LoggedKeyValueStore,
    LoggedSessionStore, LoggedVersionedStore, LoggedWindowStore, RocksKeyValueStore,
    RocksResources, RocksSessionStore, RocksVersionedStore, RocksWindowStore, SessionStore,
    StateDirectory, StateError, StateStore, TaskDirectory, TopicPartition, VersionedKeyValueStore,
    WindowStore, WindowStoreConfig,
};

use super::TaskId;
use crate::error::StreamsError;
use crate::stores::{state_error, SourceChangelog, StoreKind, StoreLocation, StoreSpec};
use crate::stores::{Supplied, TaskStore};
use crate::topology::Topology;

/// Where and how a task's stores live.
#[derive(Clone, Default)]
pub(crate) struct StoreEnv {
    /// `None`: every store is in memory (the test driver).
    pub state_dir: Option<Arc<StateDirectory>>,
    pub rocks: Option<RocksResources>,
    pub eos: bool,
    /// The record-cache budget the task's key-value stores share (one per stream thread);
    /// `None` or a budget of 0 bytes: no caching.
    pub cache: Option<Arc<CacheBudget>>,
    pub faults: crate::faults::Faults,
    /// `TopologyOptimization::ReuseSourceTopics`: tables read from a topic restore from it.
    pub reuse_source_topics: bool,
}

/// Creates the changelog writer of one store: (topic, partition, sent-records counter).
pub(crate) type WriterFactory<'a> =
    &'a dyn Fn(&str, i32, Arc<AtomicU64>) -> Box<dyn ChangelogWriter>;

/// A changelog partition a task must restore before processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Changelog {
    pub store: usize,
    pub store_name: String,
    pub tp: TopicPartition,
    /// First offset to read; `None` from the beginning.
    pub from: Option<i64>,
    /// The partition is the table's source topic: it is restored only up to the offset the
    /// application committed on it, and standbys do not follow it.
    pub source: bool,
}

struct ManagedStore {
    name: String,
    store: TaskStore,
    changelog: Option<TopicPartition>,
    /// The changelog is the table's source topic: rows are checked and stamped with their
    /// record's timestamp when restored, and checkpointed at the offset processed.
    source: Option<SourceChangelog>,
    persistent: bool,
}

pub(crate) struct StateManager {
    task: TaskId,
    task_dir: Option<TaskDirectory>,
    checkpoint: Option<CheckpointFile>,
    stores: Vec<ManagedStore>,
    /// Last changelog offset each store is known to contain.
    offsets: CheckpointOffsets,
    restore_from: BTreeMap<TopicPartition, i64>,
    sent_since_checkpoint: Arc<AtomicU64>,
    eos: bool,
    faults: crate::faults::Faults,
}

impl StateManager {
    pub(crate) fn open(
        task: TaskId,
        topology: &Topology,
        store_names: &[String],
        application_id: &str,
        env: &StoreEnv,
        writer: WriterFactory<'_>,
    ) -> Result<Self, StreamsError> {
        let specs: Vec<&StoreSpec> = store_names
            .iter()
            .map(|n| {
                topology.stores.get(n).ok_or_else(|| {
                    StreamsError::Topology(format!("store {n} is used but never added"))
                })
            })
            .collect::<Result<_, _>>()?;
        let needs_dir = specs.iter().any(|s| s.persistent) && env.state_dir.is_some();
        let task_dir = match (&env.state_dir, needs_dir) {
            (Some(dir), true) => Some(
                dir.lock_task(&task.to_string())
                    .map_err(|e| StreamsError::State(format!("task {task}: {e}")))?,
            ),
            _ => None,
        };
        let checkpoint = task_dir
            .as_ref()
            .map(|d| CheckpointFile::new(d.checkpoint_path()));
        let offsets = checkpoint.as_ref().and_then(|c| c.read());
        if let Some(dir) = &task_dir {
            if offsets.is_none() {
                tracing::info!(%task, "no trustworthy checkpoint: wiping local state to restore it from the changelogs");
                dir.wipe()
                    .map_err(|e| StreamsError::State(format!("task {task}: {e}")))?;
            }
        }
        if env.eos {
            if let Some(c) = &checkpoint {
                // A crash from here on must not leave a checkpoint that claims state the
                // aborted transactions never committed.
                c.delete()
                    .map_err(|e| StreamsError::State(format!("task {task}: {e}")))?;
            }
        }
        let offsets = offsets.unwrap_or_default();
        let sent = Arc::new(AtomicU64::new(0));
        let mut stores = Vec::new();
        let mut restore_from = BTreeMap::new();
        for spec in specs {
            let disk = match (&task_dir, spec.persistent) {
                (Some(dir), true) => Some((
                    dir,
                    env.rocks.as_ref().ok_or_else(|| {
                        StreamsError::State("RocksDB resources are missing".into())
                    })?,
                )),
                _ => None,
            };
            let persistent = disk.is_some();
            let source = spec
                .source_changelog
                .clone()
                .filter(|_| spec.logging && env.reuse_source_topics);
            let changelog = spec.logging.then(|| match &source {
                Some(s) => TopicPartition::new(s.topic.as_str(), task.partition),
                None => {
                    let topic = Topology::changelog_topic(&spec.name).resolve(application_id);
                    TopicPartition::new(topic, task.partition)
                }
            });
            if let (Some(tp), true) = (&changelog, persistent) {
                if let Some(&o) = offsets.get(tp) {
                    restore_from.insert(tp.clone(), o + 1);
                }
            }
            // A store restoring from its source topic writes no changelog of its own.
            let writer = changelog
                .as_ref()
                .filter(|_| source.is_none())
                .map(|tp| writer(&tp.topic, tp.partition, sent.clone()));
            let store = open_store(task, spec, disk, writer, env.cache.as_ref())
                .map_err(|e| state_error(&spec.name, e))?;
            stores.push(ManagedStore {
                name: spec.name.clone(),
                store,
                changelog,
                source,
                persistent,
            });
        }
        Ok(StateManager {
            task,
            task_dir,
            checkpoint,
            stores,
            offsets,
            restore_from,
            sent_since_checkpoint: sent,
            eos: env.eos,
            faults: env.faults.clone(),
        })
    }

    pub(crate) fn stores(&self) -> BTreeMap<String, TaskStore> {
        self.stores
            .iter()
            .map(|s| (s.name.clone(), s.store.clone()))
            .collect()
    }

    /// The changelog partitions to restore, with where to start.
    pub(crate) fn changelogs(&self) -> Vec<Changelog> {
        self.stores
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.changelog.as_ref().map(|tp| Changelog {
                    store: i,
                    store_name: s.name.clone(),
                    tp: tp.clone(),
                    from: self.restore_from.get(tp).copied(),
                    source: s.source.is_some(),
                })
            })
            .collect()
    }

    /// Applies restored changelog records (in order) to store `store`, `timestamps` giving
    /// each record's timestamp; `last_offset` is the offset of the last of them. Records of
    /// a source topic become rows stamped with their timestamp, as the table's processor
    /// writes them; a row the table's serdes cannot read is skipped and counted.
    pub(crate) fn restore(
        &mut self,
        store: usize,
        records: &[(&[u8], Option<&[u8]>)],
        timestamps: &[i64],
        last_offset: i64,
    ) -> Result<(), StreamsError> {
        let s = &self.stores[store];
        let result = match &s.source {
            None => s.store.with_state(|st| st.restore_batch(records)),
            Some(source) => {
                let rows = source_rows(&self.task, &s.name, source, records, timestamps);
                let rows: Vec<(&[u8], Option<&[u8]>)> =
                    rows.iter().map(|(k, v)| (*k, v.as_deref())).collect();
                s.store.with_state(|st| st.restore_batch(&rows))
            }
        };
        result.map_err(|e| state_error(&s.name, e))?;
        if let Some(tp) = &s.changelog {
            self.offsets.insert(tp.clone(), last_offset);
        }
        Ok(())
    }

    /// Before the restore of an active task: its time-segmented stores expire nothing by a
    /// time later than `committed_stream_time`, the stream time of its last commit, until
    /// processing passes it (see `StateStore::limit_expiry`). Under at-least-once the
    /// changelogs hold writes from past that commit; the chaos runner lost emit-final window
    /// counts when the restored writes expired the windows that the records processed again
    /// still had to emit.
    pub(crate) fn limit_expiry(&self, committed_stream_time: i64) {
        for s in &self.stores {
            s.store
                .with_state(|st| st.limit_expiry(committed_stream_time));
        }
    }

    /// After a commit at `stream_time`: the stores keep on disk what a restart from it reads
    /// (see `StateStore::keep_since_commit`).
    pub(crate) fn committed_at(&self, stream_time: i64) {
        for s in &self.stores {
            s.store.with_state(|st| st.keep_since_commit(stream_time));
        }
    }

    /// Commit step 1: write out cached updates.
    pub(crate) fn flush_caches(&mut self) -> Result<(), StreamsError> {
        self.injected_write_error()?;
        self.each_store(|st| st.flush_cache())
    }

    /// Runs `op` on every store; an error names the store.
    fn each_store(
        &self,
        op: impl Fn(&mut dyn StateStore) -> Result<(), StateError>,
    ) -> Result<(), StreamsError> {
        for s in &self.stores {
            s.store
                .with_state(|st| op(st))
                .map_err(|e| state_error(&s.name, e))?;
        }
        Ok(())
    }

    /// Writes every store's buffered data out (RocksDB: its memtables to files). After a
    /// restore this hands the store's share of the shared write-buffer budget back, so the
    /// next store restores without stalling on memory another, idle store still holds.
    pub(crate) fn flush_stores(&mut self) -> Result<(), StreamsError> {
        self.injected_write_error()?;
        self.each_store(|st| st.flush())
    }

    /// A store write-out failing by injection (see [`crate::faults`]).
    fn injected_write_error(&self) -> Result<(), StreamsError> {
        use crate::faults::{injected, FaultPoint};
        if self.faults.fail_at(FaultPoint::StoreFlush) {
            let injected = injected(FaultPoint::StoreFlush);
            return Err(StreamsError::State(format!(
                "task {}: {injected}",
                self.task
            )));
        }
        Ok(())
    }

    /// Changelog records sent since the last checkpoint.
    pub(crate) fn sent_since_checkpoint(&self) -> u64 {
        self.sent_since_checkpoint.load(Ordering::Relaxed)
    }

    /// Commit step 4: flush the stores, then record the changelog offsets they contain.
    /// `delivered` gives the last acknowledged offset of a changelog partition; stores
    /// restoring from a source topic keep the offset they were restored to.
    pub(crate) fn checkpoint(
        &mut self,
        delivered: &dyn Fn(&TopicPartition) -> Option<i64>,
    ) -> Result<(), StreamsError> {
        self.checkpoint_with(delivered, &|_| None)
    }

    /// [`checkpoint`](Self::checkpoint) of an active task: `processed` gives the offset of
    /// the last record processed from an input partition, which stores restoring from that
    /// topic hold.
    pub(crate) fn checkpoint_with(
        &mut self,
        delivered: &dyn Fn(&TopicPartition) -> Option<i64>,
        processed: &dyn Fn(&TopicPartition) -> Option<i64>,
    ) -> Result<(), StreamsError> {
        self.flush_stores()?;
        for s in &self.stores {
            if let (Some(tp), true) = (&s.changelog, s.persistent) {
                let offset = match s.source {
                    Some(_) => processed(tp),
                    None => delivered(tp),
                };
                if let Some(o) = offset {
                    self.offsets.insert(tp.clone(), o);
                }
            }
        }
        if let Some(file) = &self.checkpoint {
            file.write(&self.offsets)
                .map_err(|e| StreamsError::State(format!("task {}: checkpoint: {e}", self.task)))?;
        }
        self.sent_since_checkpoint.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Whether checkpoints are written while running (at-least-once) or only on close.
    pub(crate) fn checkpoints_while_running(&self) -> bool {
        !self.eos
    }

    /// Gives up the local state for good: removes the checkpoint, so the next
    /// [`open`](Self::open) of the task wipes its files and restores from the changelogs,
    /// then closes like [`close`](Self::close).
    pub(crate) fn discard(mut self) -> Result<(), StreamsError> {
        if let Some(file) = &self.checkpoint {
            file.delete()
                .map_err(|e| StreamsError::State(format!("task {}: {e}", self.task)))?;
        }
        self.close();
        Ok(())
    }

    /// Drops the stores (closing RocksDB) and the directory lock.
    pub(crate) fn close(&mut self) {
        self.stores.clear();
        self.task_dir = None;
    }
}

/// Opens one store of a spec: on disk or in memory, wrapped in its change-logging layer when
/// it has a changelog writer.
fn open_store(
    task: TaskId,
    spec: &StoreSpec,
    disk: Option<(&TaskDirectory, &RocksResources)>,
    writer: Option<Box<dyn ChangelogWriter>>,
    cache: Option<&Arc<CacheBudget>>,
) -> Result<TaskStore, streamtime_state::StateError> {
    fn shared<S: ?Sized>(store: Box<S>) -> crate::stores::Shared<S> {
        Rc::new(RefCell::new(store))
    }
    let name = spec.name.as_str();
    Ok(match spec.kind {
        StoreKind::KeyValue => {
            let base: Box<dyn KeyValueStore> = match (&spec.supplier, disk) {
                (Some(Supplied::KeyValue(supplier)), disk) => {
                    with_location(task, name, disk, |at| supplier.open(at))?
                }
                (Some(other), _) => return Err(mismatched(name, other)),
                (None, Some((dir, rocks))) => Box::new(RocksKeyValueStore::open(dir, name, rocks)?),
                (None, None) => Box::new(InMemoryKeyValueStore::new(name)),
            };
            let logged: Box<dyn KeyValueStore> = match writer {
                Some(w) => Box::new(LoggedKeyValueStore::new(base, w)),
                None => base,
            };
            // Above the logging layer, so a folded update costs neither a RocksDB write nor
            // a changelog record.
            TaskStore::KeyValue(shared(match cache {
                Some(budget) if budget.max_bytes() > 0 && spec.caching => {
                    Box::new(CachingKeyValueStore::with_budget(logged, budget.clone()))
                }
                _ => logged,
            }))
        }
        // Not cached: a cache would fold the versions a late update is to be kept among.
        StoreKind::Versioned {
            history_retention_ms,
        } => {
            let base: Box<dyn VersionedKeyValueStore> = match disk {
                Some((dir, rocks)) => Box::new(RocksVersionedStore::open(
                    dir,
                    name,
                    history_retention_ms,
                    rocks,
                )?),
                None => Box::new(InMemoryVersionedStore::new(name, history_retention_ms)),
            };
            TaskStore::KeyValue(shared(match writer {
                Some(w) => Box::new(LoggedVersionedStore::new(base, w)),
                None => base,
            }))
        }
        StoreKind::Window {
            retention_ms,
            retain_duplicates,
        } => {
            let config = WindowStoreConfig::new(retention_ms).retain_duplicates(retain_duplicates);
            let base: Box<dyn WindowStore> = match (&spec.supplier, disk) {
                (Some(Supplied::Window(supplier)), disk) => {
                    with_location(task, name, disk, |at| supplier.open(at, config))?
                }
                (Some(other), _) => return Err(mismatched(name, other)),
                (None, Some((dir, rocks))) => {
                    Box::new(RocksWindowStore::open(dir, name, config, rocks)?)
                }
                (None, None) => Box::new(InMemoryWindowStore::new(name, config)?),
            };
            let logged: Box<dyn WindowStore> = match writer {
                Some(w) => Box::new(LoggedWindowStore::new(base, w)),
                None => base,
            };
            // A join's window store keeps every record: nothing to fold.
            TaskStore::Window(shared(match cache {
                Some(budget) if budget.max_bytes() > 0 && spec.caching && !retain_duplicates => {
                    Box::new(CachingWindowStore::with_budget(logged, budget.clone()))
                }
                _ => logged,
            }))
        }
        StoreKind::Session { retention_ms } => {
            let base: Box<dyn SessionStore> = match (&spec.supplier, disk) {
                (Some(Supplied::Session(supplier)), disk) => {
                    with_location(task, name, disk, |at| supplier.open(at, retention_ms))?
                }
                (Some(other), _) => return Err(mismatched(name, other)),
                (None, Some((dir, rocks))) => {
                    Box::new(RocksSessionStore::open(dir, name, retention_ms, rocks)?)
                }
                (None, None) => Box::new(InMemorySessionStore::new(name, retention_ms)?),
            };
            let logged: Box<dyn SessionStore> = match writer {
                Some(w) => Box::new(LoggedSessionStore::new(base, w)),
                None => base,
            };
            TaskStore::Session(shared(match cache {
                Some(budget) if budget.max_bytes() > 0 && spec.caching => {
                    Box::new(CachingSessionStore::with_budget(logged, budget.clone()))
                }
                _ => logged,
            }))
        }
    })
}

/// Calls a supplier with the location of one task's store: its own directory under the
/// task's when the store is on disk.
fn with_location<T>(
    task: TaskId,
    name: &str,
    disk: Option<(&TaskDirectory, &RocksResources)>,
    open: impl FnOnce(&StoreLocation<'_>) -> Result<T, streamtime_state::StateError>,
) -> Result<T, streamtime_state::StateError> {
    let directory = disk.map(|(dir, _)| dir.store_path(name)).transpose()?;
    open(&StoreLocation {
        name,
        task,
        directory: directory.as_deref(),
    })
}

/// A supplier of another kind than its store: registration rejects these, so this is a
/// spec built around the checks.
fn mismatched(name: &str, supplied: &Supplied) -> streamtime_state::StateError {
    streamtime_state::StateError::InvalidArgument(format!(
        "store {name}: opened by a {} store supplier",
        supplied.kind()
    ))
}

/// The rows restored from a table's source topic: each value stamped with its record's
/// timestamp (8 bytes, big-endian, first), as the table's processor stores it; a record
/// whose key or value the table cannot read is left out, with a warning and a count.
fn source_rows<'a>(
    task: &TaskId,
    store: &str,
    source: &SourceChangelog,
    records: &[(&'a [u8], Option<&[u8]>)],
    timestamps: &[i64],
) -> Vec<(&'a [u8], Option<Vec<u8>>)> {
    let mut rows = Vec::with_capacity(records.len());
    for (&(key, value), &ts) in records.iter().zip(timestamps) {
        if !(source.readable)(key, value) {
            tracing::warn!(%task, store, topic = %source.topic,
                "skipping a source record the table cannot read while restoring the table from its topic");
            metrics::counter!("streamtime_dropped_records_total", "reason" => "deserialization_error",
                "task" => task.to_string())
            .increment(1);
            continue;
        }
        rows.push((
            key,
            value.map(|v| {
                let mut row = Vec::with_capacity(8 + v.len());
                row.extend_from_slice(&ts.to_be_bytes());
                row.extend_from_slice(v);
                row
            }),
        ));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_restored_from_a_source_topic_carry_their_timestamps_and_skip_what_is_unreadable() {
        let source = SourceChangelog {
            topic: "prices".into(),
            // Values must be 8 bytes (an i64), keys anything.
            readable: Arc::new(|_k: &[u8], v: Option<&[u8]>| v.is_none_or(|v| v.len() == 8)),
        };
        let price = 400i64.to_be_bytes();
        let records: Vec<(&[u8], Option<&[u8]>)> = vec![
            (b"tv", Some(&price[..])),
            (b"radio", Some(b"oops")),
            (b"lamp", None),
        ];
        let task = TaskId {
            subtopology: 0,
            partition: 0,
        };
        let rows = source_rows(&task, "prices", &source, &records, &[7, 8, 9]);
        let mut tv = 7i64.to_be_bytes().to_vec();
        tv.extend_from_slice(&price);
        assert_eq!(rows, [(&b"tv"[..], Some(tv)), (&b"lamp"[..], None)]);
    }
}
