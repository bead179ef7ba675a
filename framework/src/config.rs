//! [`StreamsConfig`]: how an application runs.
//!
//! ```
//! use std::time::Duration;
//! use streamtime::StreamsConfig;
//! let config = StreamsConfig::new("orders-app", "localhost:9092")
//!     .commit_interval(Duration::from_secs(5))
//!     .max_task_idle(Some(Duration::from_millis(100)));
//! assert!(config.validate().is_ok());
//! assert!(StreamsConfig::new("bad id!", "localhost:9092").validate().is_err());
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod properties;

use crate::client_config::{ClientProperties, ClientRole};
use crate::error::StreamsError;
use crate::error_policy::{
    DeserializationErrorPolicy, ProcessingErrorPolicy, ProductionErrorPolicy,
};
use crate::timestamp::{InvalidTimestampPolicy, RecordTimestamp, TimestampExtractor};

/// Processing guarantee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcessingGuarantee {
    /// At-least-once: offsets are committed after output is flushed; a crash may replay.
    #[default]
    AtLeastOnce,
    /// Exactly-once (v2): one transactional producer per stream thread; output, changelog
    /// writes and input offsets commit atomically; consumers read committed data only.
    ExactlyOnce,
}

/// Rewrites of the topology that save topics and work (Kafka Streams'
/// `topology.optimization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TopologyOptimization {
    /// Run the topology as written (the default, as in Kafka Streams).
    #[default]
    None,
    /// A table read from a topic (`StreamsBuilder::table`) restores from that topic instead
    /// of writing a changelog of its own (Kafka Streams' `reuse.ktable.source.topics`).
    ReuseSourceTopics,
    /// The repartition topics that key-based operations add after one key change share one
    /// topic (Kafka Streams' `merge.repartition.topics`).
    MergeRepartitionTopics,
    /// Both rewrites (Kafka Streams' `all`).
    All,
}

/// The default record cache of an instance (`statestore.cache.max.bytes`), as in Kafka
/// Streams.
const DEFAULT_CACHE_MAX_BYTES: usize = 10 << 20;

/// Configuration of a streamtime application.
#[derive(Clone)]
pub struct StreamsConfig {
    pub(crate) application_id: String,
    pub(crate) bootstrap_servers: String,
    pub(crate) num_stream_threads: usize,
    /// `None`: the guarantee's default (30 s at-least-once, 100 ms exactly-once).
    pub(crate) commit_interval: Option<Duration>,
    pub(crate) max_task_idle: Option<Duration>,
    pub(crate) buffered_records_per_partition: usize,
    pub(crate) poll_timeout: Duration,
    pub(crate) processing_guarantee: ProcessingGuarantee,
    pub(crate) state_dir: PathBuf,
    pub(crate) replication_factor: i32,
    pub(crate) default_extractor: Arc<dyn TimestampExtractor>,
    pub(crate) invalid_timestamp_policy: InvalidTimestampPolicy,
    pub(crate) client_properties: ClientProperties,
    pub(crate) instance_id: Option<String>,
    pub(crate) repartition_purge_interval: std::time::Duration,
    pub(crate) rocksdb_memory_bytes: usize,
    pub(crate) cache_max_bytes: usize,
    pub(crate) optimization: TopologyOptimization,
    pub(crate) watermark_writer_timeout: Duration,
    pub(crate) deserialization_error_policy: DeserializationErrorPolicy,
    pub(crate) processing_error_policy: ProcessingErrorPolicy,
    pub(crate) production_error_policy: ProductionErrorPolicy,
    pub(crate) metadata_refresh_interval: Duration,
    pub(crate) num_standby_replicas: usize,
    pub(crate) stall_warning_after: Option<Duration>,
    #[cfg(feature = "prometheus")]
    pub(crate) prometheus_endpoint: Option<std::net::SocketAddr>,
    pub(crate) catching_up_lag_threshold: i64,
    pub(crate) application_server: Option<String>,
    pub(crate) faults: crate::faults::Faults,
}

impl StreamsConfig {
    /// A configuration with defaults for everything but the application id (which names the
    /// consumer group and prefixes internal topics) and the brokers.
    pub fn new(application_id: impl Into<String>, bootstrap_servers: impl Into<String>) -> Self {
        StreamsConfig {
            application_id: application_id.into(),
            bootstrap_servers: bootstrap_servers.into(),
            num_stream_threads: 1,
            commit_interval: None,
            max_task_idle: Some(Duration::ZERO),
            buffered_records_per_partition: 1000,
            poll_timeout: Duration::from_millis(100),
            processing_guarantee: ProcessingGuarantee::AtLeastOnce,
            state_dir: Self::default_state_dir(),
            replication_factor: -1,
            default_extractor: Arc::new(RecordTimestamp),
            invalid_timestamp_policy: InvalidTimestampPolicy::Fail,
            client_properties: ClientProperties::default(),
            instance_id: None,
            repartition_purge_interval: Duration::from_secs(30),
            rocksdb_memory_bytes: 256 << 20,
            cache_max_bytes: DEFAULT_CACHE_MAX_BYTES,
            optimization: TopologyOptimization::None,
            watermark_writer_timeout: Duration::from_secs(60),
            deserialization_error_policy: DeserializationErrorPolicy::Fail,
            processing_error_policy: ProcessingErrorPolicy::Fail,
            production_error_policy: ProductionErrorPolicy::Fail,
            metadata_refresh_interval: Duration::from_secs(30),
            num_standby_replicas: 0,
            stall_warning_after: Some(Duration::from_secs(60)),
            #[cfg(feature = "prometheus")]
            prometheus_endpoint: None,
            catching_up_lag_threshold: 10_000,
            application_server: None,
            faults: Default::default(),
        }
    }

    /// Reads a configuration from a Java-style `.properties` file with Kafka Streams' keys,
    /// the way Kafka applications are deployed: `application.id` and `bootstrap.servers`
    /// (required), `processing.guarantee` (`at_least_once`, `exactly_once_v2`),
    /// `num.stream.threads`, `commit.interval.ms`, `state.dir`, `num.standby.replicas`,
    /// `replication.factor`, `statestore.cache.max.bytes`, `poll.ms`, `max.task.idle.ms`,
    /// `application.server`. Every other key is a client property (see
    /// [`client_property`](Self::client_property); a Java `sasl.jaas.config` for the PLAIN or
    /// SCRAM login module becomes `sasl.username` and `sasl.password`). Then environment
    /// variables override the file: `STREAMTIME_` and the key in upper case with `_` for `.`
    /// (`STREAMTIME_SASL_PASSWORD` sets `sasl.password`), so secrets need not be in the file.
    /// A key neither streamtime nor librdkafka knows is an error that names it, with the
    /// closest Kafka Streams key when there is one.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("orders.properties");
    /// std::fs::write(&path, "application.id=orders\nbootstrap.servers=broker:9093\n\
    ///     processing.guarantee=exactly_once_v2\nsecurity.protocol=SASL_PLAINTEXT\n")?;
    /// let config = streamtime::StreamsConfig::from_properties(&path)?;
    /// assert!(config.is_exactly_once());
    /// std::fs::write(&path, "application.id=orders\nbootstrap.servers=b:9093\nnum.stream.thread=2\n")?;
    /// let err = streamtime::StreamsConfig::from_properties(&path).unwrap_err();
    /// assert!(err.to_string().contains("did you mean num.stream.threads?"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_properties(path: impl AsRef<std::path::Path>) -> Result<Self, StreamsError> {
        properties::from_file(path.as_ref(), std::env::vars())
    }

    /// Warn when a task has records buffered but processed none for this long (default
    /// 60 s; `None`: never). The warning names the task, its buffered records per partition
    /// and its stream time; `streamtime_task_stalled{task}` is 1 while it lasts.
    pub fn stall_warning_after(mut self, after: Option<Duration>) -> Self {
        self.stall_warning_after = after;
        self
    }

    /// Serve every metric in Prometheus' text format on `addr` once the app starts (feature
    /// `prometheus`; one endpoint per process). See [`crate::prometheus`].
    #[cfg(feature = "prometheus")]
    pub fn prometheus_endpoint(mut self, addr: std::net::SocketAddr) -> Self {
        self.prometheus_endpoint = Some(addr);
        self
    }

    /// Faults to inject (feature `fault-injection`, for tests only): see [`crate::faults`].
    ///
    /// ```
    /// use streamtime::faults::{FaultAction, FaultPlan, FaultPoint};
    /// let config = streamtime::StreamsConfig::new("app", "localhost:9092")
    ///     .fault_injection(FaultPlan::new().at(FaultPoint::Flush, 1, FaultAction::Fail));
    /// # let _ = config;
    /// ```
    #[cfg(feature = "fault-injection")]
    pub fn fault_injection(mut self, plan: crate::faults::FaultPlan) -> Self {
        self.faults = crate::faults::Faults::new(plan);
        self
    }

    /// A task is *catching up* ([`crate::ProcessorContext::is_catching_up`]) while one of
    /// its source partitions has more than this many records left to process (default
    /// 10 000), e.g. after a reset or a long outage, so side-effecting processors can skip
    /// effects that only matter for fresh records.
    pub fn catching_up_lag_threshold(mut self, records: i64) -> Self {
        self.catching_up_lag_threshold = records;
        self
    }

    /// The `host:port` where this instance answers interactive queries (its own endpoint,
    /// not Kafka's). Other instances learn it through the consumer group, so
    /// [`crate::KafkaStreams::query_metadata_for_key`] can name the instance that hosts a
    /// key. Like Kafka Streams' `application.server`.
    pub fn application_server(mut self, host_port: impl Into<String>) -> Self {
        self.application_server = Some(host_port.into());
        self
    }

    /// The state directory used when none is configured: the system temp dir + `streamtime`.
    pub fn default_state_dir() -> PathBuf {
        std::env::temp_dir().join("streamtime")
    }

    /// How often topic metadata is refreshed (default 30 s): partitions added to a source
    /// topic get tasks, and sinks route to partitions added to their topics, within about
    /// this long.
    pub fn metadata_refresh_interval(mut self, interval: Duration) -> Self {
        self.metadata_refresh_interval = interval;
        self
    }

    /// What to do with a source record that cannot be deserialized (default: fail). See
    /// [`crate::error_policy`].
    pub fn deserialization_error_policy(mut self, policy: DeserializationErrorPolicy) -> Self {
        self.deserialization_error_policy = policy;
        self
    }

    /// What to do when processing a record fails (default: fail).
    pub fn processing_error_policy(mut self, policy: ProcessingErrorPolicy) -> Self {
        self.processing_error_policy = policy;
        self
    }

    /// What to do when the broker rejects an output record (default: fail).
    pub fn production_error_policy(mut self, policy: ProductionErrorPolicy) -> Self {
        self.production_error_policy = policy;
        self
    }

    /// Processing threads, each with its own consumer and tasks (default 1).
    pub fn num_stream_threads(mut self, n: usize) -> Self {
        self.num_stream_threads = n;
        self
    }

    /// How often offsets are committed (default 30 s at-least-once, 100 ms exactly-once).
    pub fn commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = Some(interval);
        self
    }

    /// The commit interval in force.
    pub fn effective_commit_interval(&self) -> Duration {
        self.commit_interval
            .unwrap_or(match self.processing_guarantee {
                ProcessingGuarantee::AtLeastOnce => Duration::from_secs(30),
                ProcessingGuarantee::ExactlyOnce => Duration::from_millis(100),
            })
    }

    /// True under exactly-once.
    pub fn is_exactly_once(&self) -> bool {
        self.processing_guarantee == ProcessingGuarantee::ExactlyOnce
    }

    /// How long a task waits for an empty, caught-up partition before processing without it
    /// (default 0). `None` never waits, not even for partitions with unfetched data.
    pub fn max_task_idle(mut self, idle: Option<Duration>) -> Self {
        self.max_task_idle = idle;
        self
    }

    /// Records buffered per partition before fetching from it pauses (default 1000).
    pub fn buffered_records_per_partition(mut self, n: usize) -> Self {
        self.buffered_records_per_partition = n;
        self
    }

    /// Longest a thread blocks in poll when it has nothing to process (default 100 ms).
    pub fn poll_timeout(mut self, timeout: Duration) -> Self {
        self.poll_timeout = timeout;
        self
    }

    /// Directory for local state (default: the system temp dir + `streamtime`).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = dir.into();
        self
    }

    /// Replication factor of internal topics (default -1: the broker's default).
    pub fn replication_factor(mut self, rf: i32) -> Self {
        self.replication_factor = rf;
        self
    }

    /// Timestamp extractor for sources that set none (default: record metadata).
    pub fn default_timestamp_extractor(mut self, extractor: impl TimestampExtractor) -> Self {
        self.default_extractor = Arc::new(extractor);
        self
    }

    /// What to do with records whose timestamp is invalid (default: fail).
    pub fn invalid_timestamp_policy(mut self, policy: InvalidTimestampPolicy) -> Self {
        self.invalid_timestamp_policy = policy;
        self
    }

    /// Processing guarantee (default at-least-once).
    pub fn processing_guarantee(mut self, guarantee: ProcessingGuarantee) -> Self {
        self.processing_guarantee = guarantee;
        self
    }

    /// A librdkafka property for the application's clients, applied after streamtime's own.
    /// Without a prefix it reaches every client the application creates (consumers,
    /// producers, the admin client), as security settings must; Kafka Streams' prefixes
    /// narrow it to one kind: `consumer.` (every consumer), `main.consumer.` (the stream
    /// threads' group consumers), `restore.consumer.` (restores and standbys), `producer.`
    /// and `admin.`. The most specific prefix wins. Keys streamtime owns (`group.id`,
    /// `client.id`, `enable.auto.commit`, `transactional.id`, … ) are refused by
    /// [`validate`](Self::validate), which says why. Secret values (passwords, JAAS
    /// configurations, tokens) never appear in logs or `Debug` output.
    ///
    /// ```
    /// use streamtime::StreamsConfig;
    /// let config = StreamsConfig::new("orders", "broker:9093")
    ///     .client_property("security.protocol", "SASL_PLAINTEXT")
    ///     .client_property("sasl.mechanism", "PLAIN")
    ///     .client_property("sasl.username", "orders")
    ///     .client_property("sasl.password", "secret")
    ///     .client_property("producer.linger.ms", "20");
    /// assert!(config.validate().is_ok());
    /// assert!(!format!("{config:?}").contains("secret"));
    /// let refused = StreamsConfig::new("orders", "broker:9093").client_property("group.id", "x");
    /// assert!(refused.validate().unwrap_err().to_string().contains("group.id"));
    /// ```
    pub fn client_property(mut self, key: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        self.client_properties.set(key.as_ref(), value.as_ref());
        self
    }

    /// A librdkafka property of every consumer: `client_property("consumer." + key, value)`.
    pub fn consumer_config(self, key: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        let key = format!("consumer.{}", key.as_ref());
        self.client_property(key, value)
    }

    /// A librdkafka producer property: `client_property("producer." + key, value)`.
    pub fn producer_config(self, key: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        let key = format!("producer.{}", key.as_ref());
        self.client_property(key, value)
    }

    /// Applies the user's client properties for `role` to `config`, after streamtime's own.
    pub(crate) fn with_client_properties<'a>(
        &self,
        role: ClientRole,
        config: &'a mut rdkafka::ClientConfig,
    ) -> &'a mut rdkafka::ClientConfig {
        self.client_properties.apply(role, config);
        config
    }

    /// How often consumed records are deleted from repartition topics (default 30 s).
    pub fn repartition_purge_interval(mut self, interval: Duration) -> Self {
        self.repartition_purge_interval = interval;
        self
    }

    /// Memory for all RocksDB stores of this instance together: block cache and memtables
    /// (default 256 MiB, a quarter of it for memtables). Kafka Streams' defaults give each
    /// store about 100 MiB with no bound over all stores; with 64 MiB here, a hopping-window
    /// count over four tasks spent a fifth more CPU on memtable flushes and the lookups the
    /// extra table files cost.
    pub fn rocksdb_memory_bytes(mut self, bytes: usize) -> Self {
        self.rocksdb_memory_bytes = bytes;
        self
    }

    /// Standby replicas per stateful task (default 0): copies of its stores on other instances,
    /// kept current from the changelogs, where the task moves when its instance fails, so
    /// that only the changelog tail is restored.
    ///
    /// ```
    /// let config = streamtime::StreamsConfig::new("app", "localhost:9092").num_standby_replicas(1);
    /// # let _ = config;
    /// ```
    pub fn num_standby_replicas(mut self, n: usize) -> Self {
        self.num_standby_replicas = n;
        self
    }

    /// The record cache of the whole instance, in bytes (`statestore.cache.max.bytes`;
    /// default 10 MiB, as in Kafka Streams), split evenly over its stream threads; each
    /// thread's share is used by the key-value stores of all its tasks (a store opts out with
    /// `Materialized::with_caching(false)`). Repeated updates of a key between commits fold
    /// into one RocksDB write, one changelog record and, for aggregations and tables, one
    /// update downstream, sent at the next commit or when the cache overflows. 0 turns
    /// caching off: every update goes downstream as it happens.
    ///
    /// ```
    /// // Every update of every count downstream, as a test reading each one wants.
    /// let config = streamtime::StreamsConfig::new("app", "localhost:9092").cache_max_bytes(0);
    /// # let _ = config;
    /// ```
    pub fn cache_max_bytes(mut self, bytes: usize) -> Self {
        self.cache_max_bytes = bytes;
        self
    }

    /// Rewrites the topology to save topics (`topology.optimization`; default none).
    ///
    /// With [`TopologyOptimization::ReuseSourceTopics`], a table read from a topic keeps no
    /// changelog: its store restores from the topic itself, up to the offset the application
    /// committed on it (what processing had reached), and a clean stop checkpoints that
    /// offset. This saves a topic and a copy of every row. It applies where the topic holds
    /// exactly what the store keeps: the table's `Materialized` sets no serdes or versioning
    /// of its own, its `Consumed` no timestamp extractor, and the table is logged. A restored
    /// row whose key or value the table's serdes cannot read is skipped with a warning, as a
    /// processing run that skips bad records would have. A standby keeps no warm copy of such
    /// a table (it would run ahead of the committed offset); taking over restores it from the
    /// topic. Switching the optimization on for an application that ran without it leaves
    /// its old changelog unused.
    ///
    /// With [`TopologyOptimization::MergeRepartitionTopics`], the key-based operations fed
    /// by one key-changing operation (`map`, `select_key`, `flat_map`, `process`) read one
    /// repartition topic, written right after the key change, instead of one topic each:
    /// a re-keyed stream counted and joined is written to Kafka once, not twice. The topic
    /// keeps the name of the first of them, and its serdes. Stateless steps between the key
    /// change and an operation (`filter`, `peek`, `map_values` that keeps the value type)
    /// move behind the topic. An operation is left with its own topic when a step on the way
    /// changes the value type, keeps a store, merges streams or feeds other operations too,
    /// and so is an explicit `KStream::repartition`. Unlike Kafka Streams, a key change that
    /// feeds a single operation keeps its topic where it is, so a filter still runs before the
    /// write. The rewrite changes the topics and the numbering of the sub-topologies: switch
    /// it on only with a new `application.id` or after a reset.
    ///
    /// [`TopologyOptimization::All`] applies both.
    ///
    /// ```
    /// use streamtime::config::TopologyOptimization;
    /// let config = streamtime::StreamsConfig::new("app", "localhost:9092")
    ///     .topology_optimization(TopologyOptimization::All);
    /// # let _ = config;
    /// ```
    pub fn topology_optimization(mut self, optimization: TopologyOptimization) -> Self {
        self.optimization = optimization;
        self
    }

    /// How long a writer of a watermarked repartition topic (`Repartitioned::with_watermarks`)
    /// may stay silent before its readers stop waiting for it (default 60 s of wall clock).
    /// A writer reports at each of its commits when its stream time advanced, so a writer
    /// whose input went quiet, moved away or vanished with a partition-count change is left
    /// out after this long; it counts again when it reports again.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = streamtime::StreamsConfig::new("app", "localhost:9092")
    ///     .watermark_writer_timeout(Duration::from_secs(120));
    /// # let _ = config;
    /// ```
    pub fn watermark_writer_timeout(mut self, timeout: Duration) -> Self {
        self.watermark_writer_timeout = timeout;
        self
    }

    /// Whether tables read from a topic restore from it (see
    /// [`StreamsConfig::topology_optimization`]).
    pub(crate) fn reuses_source_topics(&self) -> bool {
        matches!(
            self.optimization,
            TopologyOptimization::ReuseSourceTopics | TopologyOptimization::All
        )
    }

    /// Whether the repartition topics after one key change are merged (see
    /// [`StreamsConfig::topology_optimization`]).
    pub(crate) fn merges_repartition_topics(&self) -> bool {
        matches!(
            self.optimization,
            TopologyOptimization::MergeRepartitionTopics | TopologyOptimization::All
        )
    }

    /// Static group membership: a stable id for this instance (`group.instance.id`). It is
    /// also the instance's identity in task assignment; without it, an id kept in the state
    /// directory is used, so a restarted instance gets its tasks (and warm state) back.
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = Some(id.into());
        self
    }

    /// The application id.
    pub fn application_id(&self) -> &str {
        &self.application_id
    }

    /// The bootstrap servers.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// Checks the configuration, naming the first problem.
    pub fn validate(&self) -> Result<(), StreamsError> {
        let id = &self.application_id;
        if id.is_empty() {
            return Err(StreamsError::Config(
                "application_id must not be empty".into(),
            ));
        }
        // Internal topic names are built from the id, so it must be a legal topic name part.
        if let Some(c) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(StreamsError::Config(format!(
                "application_id {id:?} contains {c:?}; use only ASCII letters, digits, '.', '_' and '-'"
            )));
        }
        // `.` and `..` are legal topic name characters but not a directory of their own: the
        // state directory `<state_dir>/<application_id>` (which a reset deletes) must lie
        // inside `state_dir`.
        if id == "." || id == ".." {
            return Err(StreamsError::Config(format!(
                "application_id {id:?} is not allowed: it names no directory of its own inside \
                 the state directory"
            )));
        }
        if id.len() > 200 {
            return Err(StreamsError::Config(
                "application_id is longer than 200 characters".into(),
            ));
        }
        if self.bootstrap_servers.trim().is_empty() {
            return Err(StreamsError::Config(
                "bootstrap_servers must not be empty".into(),
            ));
        }
        if self.num_stream_threads == 0 {
            return Err(StreamsError::Config(
                "num_stream_threads must be at least 1".into(),
            ));
        }
        if self.commit_interval.is_some_and(|d| d.is_zero()) {
            return Err(StreamsError::Config(
                "commit_interval must be positive".into(),
            ));
        }
        if self.metadata_refresh_interval.is_zero() {
            return Err(StreamsError::Config(
                "metadata_refresh_interval must be positive".into(),
            ));
        }
        if self.buffered_records_per_partition == 0 {
            return Err(StreamsError::Config(
                "buffered_records_per_partition must be at least 1".into(),
            ));
        }
        if let DeserializationErrorPolicy::DeadLetter { topic } = &self.deserialization_error_policy
        {
            if topic.trim().is_empty() {
                return Err(StreamsError::Config(
                    "the dead-letter topic of the deserialization error policy is empty".into(),
                ));
            }
        }
        if let Some(server) = &self.application_server {
            let valid = server.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty()
                    && port.parse::<u16>().is_ok()
                    && !server.contains(|c: char| c.is_whitespace() || c == '@')
            });
            if !valid {
                return Err(StreamsError::Config(format!(
                    "application_server {server:?} is not host:port"
                )));
            }
        }
        if self.catching_up_lag_threshold < 0 {
            return Err(StreamsError::Config(
                "catching_up_lag_threshold must not be negative".into(),
            ));
        }
        self.client_properties.check(self.is_exactly_once())?;
        if self.replication_factor == 0 || self.replication_factor < -1 {
            return Err(StreamsError::Config(
                "replication_factor must be -1 (broker default) or at least 1".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn max_task_idle_ms(&self) -> Option<i64> {
        self.max_task_idle.map(|d| d.as_millis() as i64)
    }
}

impl std::fmt::Debug for StreamsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamsConfig")
            .field("application_id", &self.application_id)
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("num_stream_threads", &self.num_stream_threads)
            .field("commit_interval", &self.commit_interval)
            .field("max_task_idle", &self.max_task_idle)
            .field(
                "buffered_records_per_partition",
                &self.buffered_records_per_partition,
            )
            .field("processing_guarantee", &self.processing_guarantee)
            .field("state_dir", &self.state_dir)
            .field("client_properties", &self.client_properties)
            .finish_non_exhaustive()
    }
}
