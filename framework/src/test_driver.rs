//! [`TopologyTestDriver`]: runs a topology without Kafka, deterministically.
//!
//! Unlike Kafka Streams' driver it keeps a real task per sub-topology and partition, each with
//! its own stream time, and routes repartition records through in-memory topics; so for the
//! same input order it gives the results a cluster gives. Topics have one partition unless
//! configured otherwise.
//!
//! ```
//! use streamtime::{StreamsBuilder, StreamsConfig, Consumed, Produced, TopologyTestDriver};
//! use streamtime::serdes::{StringSerde, I64Serde};
//!
//! let builder = StreamsBuilder::new();
//! builder.stream("in", Consumed::with(StringSerde, I64Serde))
//!     .filter(|_, v| *v % 2 == 0)
//!     .to("out", Produced::default());
//! let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("app", "unused")).unwrap();
//! let input = driver.input_topic("in", StringSerde, I64Serde);
//! let output = driver.output_topic("out", StringSerde, I64Serde);
//! for v in 1..=4 { input.pipe("k".to_string(), v, v * 10).unwrap(); }
//! assert_eq!(output.read_key_values(), vec![("k".to_string(), 2), ("k".to_string(), 4)]);
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::config::StreamsConfig;
use crate::error::{ProcessResult, StreamsError};
use crate::partitioner::partition_for_key;
use crate::record::{Headers, RawRecord, Record, TimestampType};
use crate::serdes::{from_bytes, to_bytes, Serde};
use crate::task::global_stores::GlobalStores;
use crate::task::record_collector::{OutgoingRecord, RecordCollector};
use crate::task::state_manager::{StateManager, StoreEnv};
use crate::task::stream_task::{StreamTask, TaskConfig};
use crate::task::{TaskId, TopicPartition};
use crate::topology::{SubTopology, Topology};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use streamtime_state::{CacheBudget, ChangelogWriter};

#[derive(Default)]
struct InMemoryTopics {
    /// Records per topic and partition, offset = index.
    partitions: BTreeMap<String, Vec<Vec<RawRecord>>>,
    /// Every topic's records in append order, for output reading.
    log: BTreeMap<String, Vec<RawRecord>>,
    /// Appended records not yet handed to a task.
    pending: VecDeque<(String, i32, usize)>,
    counts: BTreeMap<String, i32>,
}

impl InMemoryTopics {
    fn count(&self, topic: &str) -> i32 {
        self.counts.get(topic).copied().unwrap_or(1)
    }

    fn append(&mut self, mut record: RawRecord) {
        let topic = record.topic.to_string();
        let count = self.count(&topic) as usize;
        let partitions = self
            .partitions
            .entry(topic.clone())
            .or_insert_with(|| vec![Vec::new(); count]);
        let p = record.partition as usize;
        record.offset = partitions[p].len() as i64;
        partitions[p].push(record.clone());
        self.pending
            .push_back((topic.clone(), record.partition, record.offset as usize));
        self.log.entry(topic).or_default().push(record);
    }
}

/// Changelog records written by stores, waiting to be appended to the in-memory topics (the
/// state crate wants `Send` writers, and the topics are not).
#[derive(Clone, Default)]
struct Outbox(Arc<Mutex<Vec<RawRecord>>>);

struct OutboxWriter {
    outbox: Outbox,
    topic: Arc<str>,
    partition: i32,
    sent: Arc<AtomicU64>,
}

impl ChangelogWriter for OutboxWriter {
    fn send(&mut self, key: &[u8], value: Option<&[u8]>, timestamp: i64) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.outbox
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(RawRecord {
                topic: self.topic.clone(),
                partition: self.partition,
                offset: 0,
                timestamp,
                timestamp_type: TimestampType::CreateTime,
                key: Some(key.to_vec()),
                value: value.map(<[u8]>::to_vec),
                headers: Headers::new(),
            });
    }
}

struct DriverCollector {
    topics: Rc<RefCell<InMemoryTopics>>,
}

impl RecordCollector for DriverCollector {
    fn partitions(&mut self, topic: &str) -> Result<i32, StreamsError> {
        Ok(self.topics.borrow().count(topic))
    }

    fn send(&mut self, r: OutgoingRecord<'_>) -> ProcessResult {
        self.topics.borrow_mut().append(RawRecord {
            topic: Arc::from(r.topic),
            partition: r.partition,
            offset: 0,
            timestamp: r.timestamp,
            timestamp_type: TimestampType::CreateTime,
            key: r.key.map(<[u8]>::to_vec),
            value: r.value.map(<[u8]>::to_vec),
            headers: r.headers.clone(),
        });
        Ok(())
    }
}

struct DriverState {
    subs: Vec<SubTopology>,
    application_id: String,
    topics: Rc<RefCell<InMemoryTopics>>,
    tasks: BTreeMap<TaskId, StreamTask>,
    wall_clock_ms: i64,
    read_cursors: BTreeMap<String, usize>,
    round_robin: BTreeMap<String, i32>,
    held: bool,
    outbox: Outbox,
    /// Global tables: a record piped to a global table's topic updates its store at once.
    globals: GlobalStores,
}

impl DriverState {
    fn task_for(&self, topic: &str, partition: i32) -> Option<TaskId> {
        Topology::subtopology_reading(&self.subs, &self.application_id, topic).map(|s| TaskId {
            subtopology: s,
            partition,
        })
    }

    /// Hands appended records to their tasks and processes until nothing is left to do.
    fn run(&mut self) -> Result<(), StreamsError> {
        if self.held {
            return Ok(());
        }
        let mut committed = false;
        loop {
            self.deliver()?;
            let mut progressed = false;
            let ids: Vec<TaskId> = self.tasks.keys().copied().collect();
            for id in ids {
                let now = self.wall_clock_ms;
                let task = self.tasks.get_mut(&id).expect("task exists");
                // Everything appended is already delivered, so no partition has lag.
                while task.process(now, &|_| Some(0))? {
                    progressed = true;
                }
            }
            if progressed || !self.topics.borrow().pending.is_empty() {
                committed = false;
                continue;
            }
            if committed {
                return Ok(());
            }
            // Everything is processed: commit, as Kafka Streams' test driver does after each
            // input record. What the caches hold goes downstream now and may feed another
            // round through repartition topics.
            for task in self.tasks.values_mut() {
                task.flush_for_commit()?;
            }
            committed = true;
        }
    }

    fn deliver(&mut self) -> Result<(), StreamsError> {
        let changes = std::mem::take(&mut *self.outbox.0.lock().unwrap_or_else(|e| e.into_inner()));
        for record in changes {
            self.topics.borrow_mut().append(record);
        }
        loop {
            let next = self.topics.borrow_mut().pending.pop_front();
            let Some((topic, partition, offset)) = next else {
                return Ok(());
            };
            let Some(id) = self.task_for(&topic, partition) else {
                continue;
            };
            let record =
                self.topics.borrow().partitions[&topic][partition as usize][offset].clone();
            let task = self.tasks.get_mut(&id).ok_or_else(|| {
                StreamsError::Topology(format!("no task {id} for {topic}-{partition}"))
            })?;
            task.add_records(&TopicPartition::new(topic.as_str(), partition), [record])?;
        }
    }
}

/// Runs a topology in memory. See the module docs.
pub struct TopologyTestDriver {
    state: Rc<RefCell<DriverState>>,
}

impl TopologyTestDriver {
    /// A driver where every topic has one partition.
    pub fn new(topology: Topology, config: StreamsConfig) -> Result<Self, StreamsError> {
        Self::with_partitions(topology, config, &[])
    }

    /// A driver with the given partition counts for external topics (others have one).
    /// Repartition topics are sized as on a cluster.
    pub fn with_partitions(
        mut topology: Topology,
        config: StreamsConfig,
        partitions: &[(&str, i32)],
    ) -> Result<Self, StreamsError> {
        config.validate()?;
        if config.merges_repartition_topics() {
            topology.merge_repartition_topics();
        }
        let application_id = config.application_id.clone();
        let external: BTreeMap<String, i32> = partitions
            .iter()
            .map(|(t, n)| (t.to_string(), *n))
            .collect();
        let resolved =
            topology.resolve_partition_counts(&|t| Some(external.get(t).copied().unwrap_or(1)))?;
        let mut topics = InMemoryTopics {
            counts: external,
            ..Default::default()
        };
        for (topic, n) in &resolved {
            topics.counts.insert(topic.resolve(&application_id), *n);
        }
        for sub in topology.subtopologies() {
            let n = sub.task_count(&resolved);
            for store in &sub.stores {
                let own = topology
                    .stores
                    .get(store)
                    .is_none_or(|s| s.has_own_changelog(config.reuses_source_topics()));
                if own {
                    let changelog = Topology::changelog_topic(store).resolve(&application_id);
                    topics.counts.insert(changelog, n);
                }
            }
        }
        let topics = Rc::new(RefCell::new(topics));
        let subs = topology.subtopologies();
        let globals = GlobalStores::in_memory(&topology);
        let task_config = TaskConfig {
            globals: globals.clone(),
            watermark_topics: Arc::new(topology.watermarked_topics(&application_id)),
            ..TaskConfig::from_config(&config)
        };
        let mut tasks = BTreeMap::new();
        let outbox = Outbox::default();
        // One stream thread, whose record cache is the instance's.
        let env = StoreEnv {
            cache: Some(CacheBudget::new(config.cache_max_bytes)),
            reuse_source_topics: config.reuses_source_topics(),
            ..StoreEnv::default()
        };
        for sub in &subs {
            for p in 0..sub.task_count(&resolved) {
                let tps: Vec<TopicPartition> = sub
                    .source_topics
                    .iter()
                    .filter(|t| p < resolved.get(*t).copied().unwrap_or(1))
                    .map(|t| TopicPartition::new(t.resolve(&application_id), p))
                    .collect();
                let id = TaskId {
                    subtopology: sub.id,
                    partition: p,
                };
                let collector = Box::new(DriverCollector {
                    topics: topics.clone(),
                });
                let writer = |topic: &str,
                              partition: i32,
                              sent: Arc<AtomicU64>|
                 -> Box<dyn ChangelogWriter> {
                    Box::new(OutboxWriter {
                        outbox: outbox.clone(),
                        topic: Arc::from(topic),
                        partition,
                        sent,
                    })
                };
                let state =
                    StateManager::open(id, &topology, &sub.stores, &application_id, &env, &writer)?;
                let mut task = StreamTask::new(
                    id,
                    &topology,
                    sub,
                    &tps,
                    (collector, state),
                    &task_config,
                    0,
                )?;
                task.init()?;
                tasks.insert(id, task);
            }
        }
        let mut state = DriverState {
            subs,
            application_id,
            topics,
            tasks,
            wall_clock_ms: 0,
            read_cursors: BTreeMap::new(),
            round_robin: BTreeMap::new(),
            held: false,
            outbox,
            globals,
        };
        // Processors may forward from init.
        state.run()?;
        Ok(TopologyTestDriver {
            state: Rc::new(RefCell::new(state)),
        })
    }

    /// A handle for piping typed records into `topic`.
    pub fn input_topic<K, V>(
        &self,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> TestInputTopic<K, V> {
        TestInputTopic {
            state: self.state.clone(),
            topic: topic.to_string(),
            key_serde: Box::new(key_serde),
            value_serde: Box::new(value_serde),
        }
    }

    /// A handle for reading typed records written to `topic`.
    pub fn output_topic<K, V>(
        &self,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> TestOutputTopic<K, V> {
        TestOutputTopic {
            state: self.state.clone(),
            topic: topic.to_string(),
            key_serde: Box::new(key_serde),
            value_serde: Box::new(value_serde),
        }
    }

    /// Moves wall-clock time forward, firing wall-clock punctuators and letting idle tasks
    /// process.
    pub fn advance_wall_clock(&self, by: Duration) -> Result<(), StreamsError> {
        let mut state = self.state.borrow_mut();
        state.wall_clock_ms += by.as_millis() as i64;
        let now = state.wall_clock_ms;
        for task in state.tasks.values_mut() {
            task.punctuate_wall_clock(now)?;
        }
        state.run()
    }

    /// Stops processing piped records until [`TopologyTestDriver::release`]: like records
    /// already waiting on a broker when an app starts, they are then chosen by timestamp.
    pub fn hold(&self) {
        self.state.borrow_mut().held = true;
    }

    /// Processes everything piped since [`TopologyTestDriver::hold`].
    pub fn release(&self) -> Result<(), StreamsError> {
        let mut state = self.state.borrow_mut();
        state.held = false;
        state.run()
    }

    /// Current wall-clock time of the driver (ms).
    pub fn wall_clock_ms(&self) -> i64 {
        self.state.borrow().wall_clock_ms
    }

    /// Stream time of a task, if it exists.
    pub fn stream_time(&self, task: TaskId) -> Option<i64> {
        self.state
            .borrow()
            .tasks
            .get(&task)
            .map(|t| t.stream_time())
    }

    /// Ids of the driver's tasks.
    pub fn task_ids(&self) -> Vec<TaskId> {
        self.state.borrow().tasks.keys().copied().collect()
    }

    /// Records dropped by all tasks so far: invalid timestamps, and records skipped by the
    /// deserialization and processing error policies.
    pub fn dropped_records(&self) -> u64 {
        self.state
            .borrow()
            .tasks
            .values()
            .map(|t| t.dropped())
            .sum()
    }

    /// Every raw record written to `topic` so far, in append order (including internal
    /// topics, by their full name).
    pub fn raw_records(&self, topic: &str) -> Vec<RawRecord> {
        self.state
            .borrow()
            .topics
            .borrow()
            .log
            .get(topic)
            .cloned()
            .unwrap_or_default()
    }

    /// Every entry of key-value store `store`, over all tasks, in task order, with the
    /// values as stored (see [`TopologyTestDriver::timestamped_key_value_store`] for the
    /// DSL's tables and aggregations).
    pub fn key_value_store_entries<K: 'static, V: 'static>(
        &self,
        store: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> Result<Vec<(K, V)>, StreamsError> {
        self.store_entries(store, "key-value", |s| match s {
            crate::stores::TaskStore::KeyValue(s) => Some(
                s.borrow()
                    .all()
                    .map(|kv| {
                        let (k, v) = kv.map_err(|e| crate::stores::state_error(store, e))?;
                        Ok((
                            decode(store, &key_serde, &k)?,
                            decode(store, &value_serde, &v)?,
                        ))
                    })
                    .collect(),
            ),
            _ => None,
        })
    }

    /// Every row of the key-value store of a DSL table or aggregation, over all tasks, in
    /// task order: `(key, value, timestamp of the row's last update)`.
    ///
    /// ```
    /// use streamtime::{Consumed, Materialized, StreamsBuilder, StreamsConfig, TopologyTestDriver};
    /// use streamtime::serdes::{I64Serde, StringSerde};
    /// let builder = StreamsBuilder::new();
    /// builder.stream("clicks", Consumed::with(StringSerde, StringSerde))
    ///     .group_by_key()
    ///     .count(Materialized::as_("clicks-per-user"));
    /// let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("t", "unused")).unwrap();
    /// let clicks = driver.input_topic("clicks", StringSerde, StringSerde);
    /// clicks.pipe("ann".into(), "/".into(), 5).unwrap();
    /// clicks.pipe("ann".into(), "/about".into(), 9).unwrap();
    /// let rows = driver.timestamped_key_value_store("clicks-per-user", StringSerde, I64Serde).unwrap();
    /// assert_eq!(rows, [("ann".to_string(), 2, 9)]);
    /// ```
    pub fn timestamped_key_value_store<K: 'static, V: 'static>(
        &self,
        store: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> Result<Vec<(K, V, i64)>, StreamsError> {
        let values = crate::serdes::TimestampedSerde(Arc::new(value_serde));
        let rows = self.key_value_store_entries(store, key_serde, values)?;
        Ok(rows.into_iter().map(|(k, (v, ts))| (k, v, ts)).collect())
    }

    /// The version of `key` valid at `as_of` in the versioned store `store` (a versioned
    /// table's, or one from [`crate::stores::Stores::versioned_key_value`]), looked up in every
    /// task: `(value, valid from, valid to)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streamtime::{Consumed, Materialized, StreamsBuilder, StreamsConfig, TopologyTestDriver};
    /// use streamtime::serdes::{I64Serde, StringSerde};
    /// let builder = StreamsBuilder::new();
    /// builder.table("prices", Consumed::with(StringSerde, I64Serde),
    ///     Materialized::as_versioned("prices", Duration::from_secs(60)));
    /// let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("t", "unused")).unwrap();
    /// let prices = driver.input_topic("prices", StringSerde, I64Serde);
    /// prices.pipe("pen".into(), 2, 10).unwrap();
    /// prices.pipe("pen".into(), 3, 20).unwrap();
    /// let at = |t| driver.versioned_store_as_of("prices", StringSerde, I64Serde, &"pen".to_string(), t).unwrap();
    /// assert_eq!(at(15), Some((2, 10, Some(20))));
    /// assert_eq!(at(25), Some((3, 20, None)));
    /// ```
    pub fn versioned_store_as_of<K: 'static, V: 'static>(
        &self,
        store: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        key: &K,
        as_of: i64,
    ) -> Result<Option<(V, i64, Option<i64>)>, StreamsError> {
        let mut key_bytes = Vec::new();
        key_serde
            .serialize(key, &mut key_bytes)
            .map_err(|e| StreamsError::Serde {
                context: format!("key read from store {store}"),
                message: e.0,
            })?;
        let found = self.store_entries(store, "versioned", |s| match s {
            crate::stores::TaskStore::KeyValue(s) => {
                let s = s.borrow();
                let versioned = s.as_versioned()?;
                Some(
                    versioned
                        .get_as_of(&key_bytes, as_of)
                        .map_err(|e| crate::stores::state_error(store, e))
                        .and_then(|r| {
                            r.map(|r| {
                                Ok((
                                    decode(store, &value_serde, &r.value)?,
                                    r.timestamp,
                                    r.valid_to,
                                ))
                            })
                            .into_iter()
                            .collect()
                        }),
                )
            }
            _ => None,
        })?;
        Ok(found.into_iter().next())
    }

    /// Every window of window store `store`, over all tasks, in task order:
    /// `(key, window start, value as stored)`.
    pub fn window_store_entries<K: 'static, V: 'static>(
        &self,
        store: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> Result<Vec<(K, i64, V)>, StreamsError> {
        self.store_entries(store, "window", |s| match s {
            crate::stores::TaskStore::Window(s) => Some(
                s.borrow()
                    .fetch_all(i64::MIN, i64::MAX)
                    .map(|e| {
                        let e = e.map_err(|e| crate::stores::state_error(store, e))?;
                        Ok((
                            decode(store, &key_serde, &e.key)?,
                            e.window_start,
                            decode(store, &value_serde, &e.value)?,
                        ))
                    })
                    .collect(),
            ),
            _ => None,
        })
    }

    /// Every window of the store of a DSL time or sliding window aggregation, over all
    /// tasks, in task order: `(key, window start, aggregate, timestamp of its last update)`.
    pub fn timestamped_window_store<K: 'static, V: 'static>(
        &self,
        store: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> Result<Vec<(K, i64, V, i64)>, StreamsError> {
        let values = crate::serdes::TimestampedSerde(Arc::new(value_serde));
        let rows = self.window_store_entries(store, key_serde, values)?;
        Ok(rows
            .into_iter()
            .map(|(k, start, (v, ts))| (k, start, v, ts))
            .collect())
    }

    /// Every live session of session store `store` (DSL session aggregations store their
    /// aggregates as they are), over all tasks, in task order: `(key, start, end, value)`.
    pub fn session_store_entries<K: 'static, V: 'static>(
        &self,
        store: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> Result<Vec<(K, i64, i64, V)>, StreamsError> {
        self.store_entries(store, "session", |s| match s {
            crate::stores::TaskStore::Session(s) => Some(
                s.borrow()
                    .fetch_ending_between(i64::MIN, i64::MAX)
                    .map(|e| {
                        let e = e.map_err(|e| crate::stores::state_error(store, e))?;
                        Ok((
                            decode(store, &key_serde, &e.key)?,
                            e.start,
                            e.end,
                            decode(store, &value_serde, &e.value)?,
                        ))
                    })
                    .collect(),
            ),
            _ => None,
        })
    }

    /// The entries `read` gives for each task's store called `store`, in task order; an
    /// error when no task has a store of that name and `kind`.
    fn store_entries<T>(
        &self,
        store: &str,
        kind: &str,
        read: impl Fn(&crate::stores::TaskStore) -> Option<Result<Vec<T>, StreamsError>>,
    ) -> Result<Vec<T>, StreamsError> {
        let state = self.state.borrow();
        let mut out = Vec::new();
        let mut found = false;
        for task in state.tasks.values() {
            if let Some(entries) = task.store(store).and_then(&read) {
                found = true;
                out.extend(entries?);
            }
        }
        if !found {
            return Err(StreamsError::Topology(format!(
                "no task has a {kind} store called {store}"
            )));
        }
        Ok(out)
    }

    /// Makes every task report [`crate::ProcessorContext::is_catching_up`] as `catching_up`
    /// (the runtime derives it from the lag; the driver never lags), to test processors
    /// that skip side effects while reprocessing.
    pub fn set_catching_up(&self, catching_up: bool) {
        for task in self.state.borrow().tasks.values() {
            task.set_catching_up(catching_up);
        }
    }

    /// Excludes (or includes again) a source partition from time synchronisation.
    pub fn set_excluded(
        &self,
        topic: &str,
        partition: i32,
        excluded: bool,
    ) -> Result<(), StreamsError> {
        let mut state = self.state.borrow_mut();
        let id = state
            .task_for(topic, partition)
            .ok_or_else(|| StreamsError::MissingTopic(format!("no source reads {topic}")))?;
        if let Some(task) = state.tasks.get_mut(&id) {
            task.set_excluded(&TopicPartition::new(topic, partition), excluded);
        }
        state.run()
    }
}

impl Drop for TopologyTestDriver {
    fn drop(&mut self) {
        if let Ok(mut state) = self.state.try_borrow_mut() {
            for task in state.tasks.values_mut() {
                task.close();
            }
        }
    }
}

/// Pipes records into one topic of a [`TopologyTestDriver`].
pub struct TestInputTopic<K, V> {
    state: Rc<RefCell<DriverState>>,
    topic: String,
    key_serde: Box<dyn Serde<K>>,
    value_serde: Box<dyn Serde<V>>,
}

impl<K: 'static, V: 'static> TestInputTopic<K, V> {
    /// Pipes one record with this timestamp and processes everything it causes.
    pub fn pipe(&self, key: K, value: V, timestamp: i64) -> Result<(), StreamsError> {
        self.pipe_record(Record::new(key, value, timestamp), None)
    }

    /// Pipes a record (with headers) to a given partition or, with `None`, to the partition
    /// of its key.
    pub fn pipe_record(
        &self,
        record: Record<K, V>,
        partition: Option<i32>,
    ) -> Result<(), StreamsError> {
        let serde_error = |e: crate::serdes::SerdeError| StreamsError::Serde {
            context: format!("test input topic {}", self.topic),
            message: e.0,
        };
        let key = to_bytes(&*self.key_serde, &record.key).map_err(serde_error)?;
        let value = to_bytes(&*self.value_serde, &record.value).map_err(serde_error)?;
        self.pipe_raw(key, value, record.timestamp, record.headers, partition)
    }

    /// Pipes raw bytes, e.g. a malformed record.
    pub fn pipe_raw(
        &self,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        timestamp: i64,
        headers: Headers,
        partition: Option<i32>,
    ) -> Result<(), StreamsError> {
        let mut state = self.state.borrow_mut();
        // A global table's topic feeds its store directly, before anything else happens, as
        // a global thread keeps it current.
        let mut global = false;
        for store in state.globals.of_topic(&self.topic).stores {
            store.apply(key.as_deref(), value.as_deref(), timestamp)?;
            global = true;
        }
        if global {
            return Ok(());
        }
        let count = state.topics.borrow().count(&self.topic);
        let partition = match (partition, &key) {
            (Some(p), _) => p,
            (None, Some(k)) => partition_for_key(k, count),
            (None, None) => {
                let rr = state.round_robin.entry(self.topic.clone()).or_insert(-1);
                *rr = (*rr + 1) % count;
                *rr
            }
        };
        if !(0..count).contains(&partition) {
            return Err(StreamsError::Config(format!(
                "topic {} has {count} partitions; cannot pipe to partition {partition}",
                self.topic
            )));
        }
        state.topics.borrow_mut().append(RawRecord {
            topic: Arc::from(self.topic.as_str()),
            partition,
            offset: 0,
            timestamp,
            timestamp_type: TimestampType::CreateTime,
            key,
            value,
            headers,
        });
        state.run()
    }
}

/// Reads the records written to one topic of a [`TopologyTestDriver`], oldest first. Each
/// record is read once.
pub struct TestOutputTopic<K, V> {
    state: Rc<RefCell<DriverState>>,
    topic: String,
    key_serde: Box<dyn Serde<K>>,
    value_serde: Box<dyn Serde<V>>,
}

impl<K: 'static, V: 'static> TestOutputTopic<K, V> {
    /// The next unread record, if any. Panics on a record the serdes cannot read.
    pub fn read_record(&self) -> Option<Record<K, V>> {
        let mut state = self.state.borrow_mut();
        let cursor = state.read_cursors.get(&self.topic).copied().unwrap_or(0);
        let raw = state
            .topics
            .borrow()
            .log
            .get(&self.topic)
            .and_then(|l| l.get(cursor).cloned())?;
        state.read_cursors.insert(self.topic.clone(), cursor + 1);
        let key = from_bytes(&*self.key_serde, raw.key.as_deref())
            .unwrap_or_else(|e| panic!("cannot read a key of {}: {e}", self.topic));
        let value = from_bytes(&*self.value_serde, raw.value.as_deref())
            .unwrap_or_else(|e| panic!("cannot read a value of {}: {e}", self.topic));
        Some(Record {
            key,
            value,
            timestamp: raw.timestamp,
            headers: raw.headers,
        })
    }

    /// All unread records.
    pub fn read_records(&self) -> Vec<Record<K, V>> {
        std::iter::from_fn(|| self.read_record()).collect()
    }

    /// All unread records as key-value pairs.
    pub fn read_key_values(&self) -> Vec<(K, V)> {
        self.read_records()
            .into_iter()
            .map(|r| (r.key, r.value))
            .collect()
    }

    /// The values of all unread records (Kafka Streams' `readValuesToList`).
    pub fn read_values(&self) -> Vec<V> {
        self.read_records().into_iter().map(|r| r.value).collect()
    }

    /// True when every record has been read.
    pub fn is_empty(&self) -> bool {
        let state = self.state.borrow();
        let cursor = state.read_cursors.get(&self.topic).copied().unwrap_or(0);
        let len = state
            .topics
            .borrow()
            .log
            .get(&self.topic)
            .map_or(0, Vec::len);
        cursor >= len
    }
}

/// `bytes` read with `serde`, or an error naming the store.
fn decode<T>(store: &str, serde: &impl Serde<T>, bytes: &[u8]) -> Result<T, StreamsError> {
    serde.deserialize(bytes).map_err(|e| StreamsError::Serde {
        context: format!("store {store}"),
        message: e.0,
    })
}
