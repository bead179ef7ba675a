//! [`KafkaStreams`]: a running application instance.
//!
//! ```no_run
//! use streamtime::{KafkaStreams, StreamsBuilder, StreamsConfig, Consumed, Produced};
//! use streamtime::serdes::StringSerde;
//!
//! # async fn run() -> Result<(), streamtime::StreamsError> {
//! let builder = StreamsBuilder::new();
//! builder.stream("in", Consumed::with(StringSerde, StringSerde))
//!     .map_values(|v: String| v.to_uppercase())
//!     .to("out", Produced::default());
//! let mut app = KafkaStreams::new(builder.build()?, StreamsConfig::new("upper", "localhost:9092"))?;
//! app.start()?;
//! // Runs until SIGTERM or ctrl-c, then commits, leaves the group and returns.
//! app.run_until_signal().await
//! # }
//! ```

mod metrics_snapshot;
pub mod query;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::StreamsConfig;
use crate::error::StreamsError;
use crate::lifecycle::{
    State, StateListener, StateRestoreListener, StreamThreadExceptionResponse,
    UncaughtExceptionHandler,
};
use crate::query::{KeyQueryMetadata, ReadOnlyKeyValueStore, ReadOnlyWindowStore};
use crate::runtime::app_shared::{AppHandlers, AppShared};
use crate::runtime::app_state::{AppState, ThreadPhase};
use crate::runtime::global_thread::GlobalThread;
use crate::runtime::internal_topics;
use crate::runtime::stream_thread::StreamThread;
use crate::serdes::Serde;
use crate::task::global_stores::GlobalStores;
use crate::task::state_manager::StoreEnv;
use crate::task::stream_task::TaskConfig;
use crate::topology::Topology;
use streamtime_state::{RocksConfig, RocksResources, StateDirectory};

pub use crate::runtime::app_shared::{PartitionStatus, TaskStatus};
pub use crate::runtime::commit_gate::CommitRequest;
pub use metrics_snapshot::Metric;

/// Reads a running application's task status from anywhere (another thread, a status
/// endpoint), also after the application handle moved into
/// [`KafkaStreams::run_until_signal`].
#[derive(Clone)]
pub struct StatusHandle {
    shared: Arc<AppShared>,
}

impl StatusHandle {
    /// A snapshot of the running tasks, as [`KafkaStreams::task_status`].
    pub fn task_status(&self) -> Vec<TaskStatus> {
        self.shared.status()
    }

    /// The standby tasks of this instance, as [`KafkaStreams::standby_tasks`].
    pub fn standby_tasks(&self) -> std::collections::BTreeSet<crate::task::TaskId> {
        self.shared.standbys()
    }
}

/// Stops a running application from anywhere (another thread, a signal handler).
#[derive(Clone)]
pub struct ShutdownHandle {
    shared: Arc<AppShared>,
}

impl ShutdownHandle {
    /// Asks every stream thread to stop after its current iteration.
    pub fn shutdown(&self) {
        self.shared.request_shutdown();
    }
}

/// A streamtime application instance: joins the consumer group `<application_id>` and runs
/// the tasks of the partitions it is assigned.
pub struct KafkaStreams {
    topology: Option<Topology>,
    config: StreamsConfig,
    shared: Option<Arc<AppShared>>,
    threads: Vec<JoinHandle<Result<(), StreamsError>>>,
    state_listener: Option<Box<StateListener>>,
    exception_handler: Option<Box<UncaughtExceptionHandler>>,
    restore_listener: Option<Arc<dyn StateRestoreListener>>,
    /// Follows the global tables' topics (none without global tables).
    global_thread: Option<GlobalThread>,
}

impl KafkaStreams {
    /// An application for `topology`; fails on invalid configuration.
    pub fn new(mut topology: Topology, config: StreamsConfig) -> Result<Self, StreamsError> {
        config.validate()?;
        if config.merges_repartition_topics() {
            topology.merge_repartition_topics();
        }
        Ok(KafkaStreams {
            topology: Some(topology),
            config,
            shared: None,
            threads: Vec::new(),
            global_thread: None,
            state_listener: None,
            exception_handler: None,
            restore_listener: None,
        })
    }

    /// Calls `listener(new, old)` at every change of [`state`](Self::state). Set it before
    /// [`start`](Self::start).
    pub fn set_state_listener(
        &mut self,
        listener: impl Fn(State, State) + Send + Sync + 'static,
    ) -> Result<(), StreamsError> {
        self.before_start("set_state_listener")?;
        self.state_listener = Some(Box::new(listener));
        Ok(())
    }

    /// Decides what a failed stream thread leads to (by default
    /// [`StreamThreadExceptionResponse::ShutdownClient`]). Set it before
    /// [`start`](Self::start).
    pub fn set_uncaught_exception_handler(
        &mut self,
        handler: impl Fn(&StreamsError) -> StreamThreadExceptionResponse + Send + Sync + 'static,
    ) -> Result<(), StreamsError> {
        self.before_start("set_uncaught_exception_handler")?;
        self.exception_handler = Some(Box::new(handler));
        Ok(())
    }

    /// Tells `listener` of every restore of an active task's stores from their changelogs.
    /// Set it before [`start`](Self::start).
    pub fn set_global_state_restore_listener(
        &mut self,
        listener: impl StateRestoreListener + 'static,
    ) -> Result<(), StreamsError> {
        self.before_start("set_global_state_restore_listener")?;
        self.restore_listener = Some(Arc::new(listener));
        Ok(())
    }

    fn before_start(&self, what: &str) -> Result<(), StreamsError> {
        if self.topology.is_none() {
            return Err(StreamsError::Config(format!(
                "{what} must be called before start"
            )));
        }
        Ok(())
    }

    /// The instance's state (see [`crate::lifecycle`]).
    pub fn state(&self) -> State {
        self.shared
            .as_ref()
            .map_or(State::Created, |s| s.state.get())
    }

    /// Checks topics, creates missing internal topics and starts the stream threads. Fails
    /// before processing anything when a topic is missing or co-partitioning is violated.
    pub fn start(&mut self) -> Result<(), StreamsError> {
        let topology = self
            .topology
            .take()
            .ok_or_else(|| StreamsError::Config("the application was already started".into()))?;
        #[cfg(feature = "prometheus")]
        if let Some(addr) = self.config.prometheus_endpoint {
            crate::prometheus::install(addr)?;
        }
        let watermarked = topology.watermarked_topics(&self.config.application_id);
        if !watermarked.is_empty() && self.config.num_standby_replicas > 0 {
            // A standby's window stores expire by the times their changelog holds, which
            // behind a watermark run ahead of the operators': a failover would lose windows.
            return Err(StreamsError::Config(format!(
                "repartition topics with watermarks ({}) do not support standby replicas yet; \
                 set num_standby_replicas to 0",
                watermarked.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
        let partition_counts = internal_topics::prepare(&topology, &self.config)?;
        let store_env = self.store_env(&topology)?;
        // Global stores are full before any task processes.
        let globals = GlobalStores::open(
            &topology,
            store_env.state_dir.as_deref(),
            store_env.rocks.as_ref(),
        )?;
        let restore_listener = self.restore_listener.clone();
        let task_config = TaskConfig {
            globals,
            watermark_topics: Arc::new(topology.watermarked_topics(&self.config.application_id)),
            ..TaskConfig::from_config(&self.config)
        };
        let identity = crate::runtime::identity::instance_identity(&self.config)?;
        let shared = Arc::new(AppShared::new(
            topology,
            self.config.clone(),
            task_config,
            partition_counts,
            store_env,
            identity,
            AppHandlers {
                state: AppState::new(self.config.num_stream_threads, self.state_listener.take()),
                exception_handler: self.exception_handler.take(),
                restore_listener: self.restore_listener.take(),
            },
        ));
        let failing = shared.clone();
        self.global_thread = GlobalThread::start(
            &self.config,
            &shared.task_config.globals,
            restore_listener,
            Arc::new(move |e| failing.fail(e)),
        )?;
        shared.state.transition(State::Rebalancing);
        for index in 0..self.config.num_stream_threads {
            let shared = shared.clone();
            let handle = std::thread::Builder::new()
                .name(format!(
                    "{}-StreamThread-{}",
                    self.config.application_id,
                    index + 1
                ))
                .spawn(move || run_thread(&shared, index))?;
            self.threads.push(handle);
        }
        self.shared = Some(shared);
        Ok(())
    }

    /// The state directory and the RocksDB memory shared by every store of this instance.
    fn store_env(&self, topology: &Topology) -> Result<StoreEnv, StreamsError> {
        let persistent_globals = topology.global_tables.values().any(|g| g.persistent);
        if !topology.stores.values().any(|s| s.is_persistent()) && !persistent_globals {
            return Ok(StoreEnv {
                eos: self.config.is_exactly_once(),
                faults: self.config.faults.clone(),
                reuse_source_topics: self.config.reuses_source_topics(),
                ..StoreEnv::default()
            });
        }
        let dir = StateDirectory::new(&self.config.state_dir, &self.config.application_id)
            .map_err(|e| StreamsError::State(e.to_string()))?;
        let rocks = RocksResources::new(&RocksConfig::with_total_memory(
            self.config.rocksdb_memory_bytes,
        ))
        .map_err(|e| StreamsError::State(e.to_string()))?;
        Ok(StoreEnv {
            state_dir: Some(Arc::new(dir)),
            rocks: Some(rocks),
            eos: self.config.is_exactly_once(),
            cache: None,
            faults: self.config.faults.clone(),
            reuse_source_topics: self.config.reuses_source_topics(),
        })
    }

    fn shared(&self) -> Result<&Arc<AppShared>, StreamsError> {
        self.shared
            .as_ref()
            .ok_or_else(|| StreamsError::Config("the application is not started".into()))
    }

    /// A handle that reads the task status.
    pub fn status_handle(&self) -> Result<StatusHandle, StreamsError> {
        Ok(StatusHandle {
            shared: self.shared()?.clone(),
        })
    }

    /// A handle that stops the application.
    pub fn shutdown_handle(&self) -> Result<ShutdownHandle, StreamsError> {
        Ok(ShutdownHandle {
            shared: self.shared()?.clone(),
        })
    }

    /// Asks for a commit as soon as possible. A request made while a commit runs is folded
    /// into the next commit and reported as [`CommitRequest::AlreadyInProgress`].
    pub fn request_commit(&self) -> Result<CommitRequest, StreamsError> {
        Ok(self.shared()?.commit_gate.request())
    }

    /// Stops waiting for `topic` (one partition, or all with `None`) when choosing records by
    /// timestamp. The partition rejoins when a record arrives on it, or on
    /// [`KafkaStreams::include_in_time_sync`].
    pub fn exclude_from_time_sync(
        &self,
        topic: &str,
        partition: Option<i32>,
    ) -> Result<(), StreamsError> {
        self.shared()?.set_excluded(topic, partition, true);
        Ok(())
    }

    /// Undoes [`KafkaStreams::exclude_from_time_sync`].
    pub fn include_in_time_sync(
        &self,
        topic: &str,
        partition: Option<i32>,
    ) -> Result<(), StreamsError> {
        self.shared()?.set_excluded(topic, partition, false);
        Ok(())
    }

    /// A snapshot of the running tasks (refreshed a few times a second).
    pub fn task_status(&self) -> Vec<TaskStatus> {
        self.shared.as_ref().map(|s| s.status()).unwrap_or_default()
    }

    /// The standby tasks this instance keeps warm for other instances.
    pub fn standby_tasks(&self) -> std::collections::BTreeSet<crate::task::TaskId> {
        self.shared
            .as_ref()
            .map(|s| s.standbys())
            .unwrap_or_default()
    }

    /// The task status as text, one task per line and one partition per indented line.
    pub fn status_report(&self) -> String {
        let mut out = String::new();
        for task in self.task_status() {
            out.push_str(&format!(
                "task {} stream_time={} processed={} dropped={} enforced={} restored={}\n",
                task.id,
                task.stream_time,
                task.processed,
                task.dropped,
                task.enforced_processing,
                task.restored_records
            ));
            for p in &task.partitions {
                out.push_str(&format!(
                    "  {} buffered={} partition_time={}{}{}{}\n",
                    p.partition,
                    p.buffered,
                    p.partition_time,
                    if p.excluded { " EXCLUDED" } else { "" },
                    if p.paused { " PAUSED" } else { "" },
                    match p.blocked_by_open_transaction {
                        Some(d) => format!(" BLOCKED by an open transaction for {}s", d.as_secs()),
                        None => String::new(),
                    }
                ));
            }
        }
        out
    }

    /// A read-only view of key-value store `name` over this instance's tasks (interactive
    /// queries; see [`crate::query`]).
    pub fn key_value_store<K: 'static, V: 'static>(
        &self,
        name: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> Result<ReadOnlyKeyValueStore<K, V>, StreamsError> {
        ReadOnlyKeyValueStore::new(self.shared()?, name, key_serde, value_serde)
    }

    /// A read-only view of window store `name` over this instance's tasks (interactive
    /// queries; see [`crate::query`]).
    pub fn window_store<K: 'static, V: 'static>(
        &self,
        name: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> Result<ReadOnlyWindowStore<K, V>, StreamsError> {
        ReadOnlyWindowStore::new(self.shared()?, name, key_serde, value_serde)
    }

    /// Which partition and task hold `key` of `store`, whether that task runs here, and the
    /// `application_server` of the instance running it. The key is serialized with
    /// `serializer` and partitioned like a sink without a partitioner does. Asks the broker
    /// for the group's members when the task is not local.
    pub fn query_metadata_for_key<K: 'static>(
        &self,
        store: &str,
        key: &K,
        serializer: &dyn Serde<K>,
    ) -> Result<KeyQueryMetadata, StreamsError> {
        crate::query::metadata_for_key(self.shared()?, store, key, serializer)
    }

    /// True while started and no thread has failed or been told to stop.
    pub fn is_running(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| !s.is_shutting_down())
    }

    /// The first fatal error of a stream thread, if any.
    pub fn error(&self) -> Option<StreamsError> {
        self.shared.as_ref().and_then(|s| s.first_error())
    }

    /// Stops the threads (each commits, closes its tasks and leaves the group) and waits for
    /// them. Returns the first thread error.
    pub fn close(&mut self) -> Result<(), StreamsError> {
        if let Some(shared) = &self.shared {
            shared.request_shutdown();
        }
        let mut first = None;
        for handle in self.threads.drain(..) {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first.get_or_insert(e);
                }
                Err(_) => {
                    first.get_or_insert(StreamsError::Processing {
                        context: "stream thread".into(),
                        message: "panicked".into(),
                    });
                }
            }
        }
        if let Some(mut global) = self.global_thread.take() {
            global.stop();
        }
        if let Some(shared) = &self.shared {
            match shared.state.get() {
                State::PendingError => shared.state.transition(State::Error),
                _ => shared.state.transition(State::NotRunning),
            };
        }
        first.map_or(Ok(()), Err)
    }

    /// Runs until SIGTERM, SIGINT (ctrl-c) or a thread failure, then closes.
    pub async fn run_until_signal(mut self) -> Result<(), StreamsError> {
        let shared = self.shared()?.clone();
        #[cfg(unix)]
        let mut sigterm =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            #[cfg(unix)]
            let term = sigterm.recv();
            #[cfg(not(unix))]
            let term = std::future::pending::<Option<()>>();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => { tracing::info!("interrupted; shutting down"); break; }
                _ = term => { tracing::info!("SIGTERM; shutting down"); break; }
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    if shared.is_shutting_down() { break; }
                }
            }
        }
        tokio::task::spawn_blocking(move || self.close())
            .await
            .map_err(|e| StreamsError::Processing {
                context: "shutdown".into(),
                message: e.to_string(),
            })?
    }
}

/// Runs stream thread `index` until it stops; a failed thread is handled as the uncaught
/// exception handler says (by default the instance shuts down).
fn run_thread(shared: &Arc<AppShared>, index: usize) -> Result<(), StreamsError> {
    loop {
        let result = StreamThread::new(shared.clone(), index).run();
        shared.state.set_thread(index, ThreadPhase::Dead);
        let Err(error) = result else {
            return Ok(());
        };
        if shared.is_shutting_down() {
            shared.fail(error.clone());
            return Err(error);
        }
        let response = shared
            .exception_handler
            .as_ref()
            .map_or(StreamThreadExceptionResponse::ShutdownClient, |handler| {
                handler(&error)
            });
        tracing::error!(thread = index + 1, %error, ?response, "stream thread failed");
        match response {
            StreamThreadExceptionResponse::ReplaceThread => {
                metrics::counter!("streamtime_replaced_threads_total").increment(1);
                shared.state.set_thread(index, ThreadPhase::Rebalancing);
            }
            StreamThreadExceptionResponse::ShutdownClient => {
                shared.fail(error.clone());
                return Err(error);
            }
            StreamThreadExceptionResponse::ShutdownApplication => {
                shared.fail(error.clone());
                crate::runtime::shutdown_request::request_application_shutdown(shared);
                return Err(error);
            }
        }
    }
}

impl Drop for KafkaStreams {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            let _ = self.close();
        }
    }
}
