//! A small streamtime application that integration tests run as a separate process, so they
//! can kill it with SIGKILL mid-stream and restart it.
//!
//! Topologies (`--topology`):
//! * `rekey` (default): `input` → upper-case values → re-key by the first character of the
//!   value → repartition (`<app>-by-initial-repartition`) → `output`;
//! * `count`: `input` → count per key in the RocksDB store `counts` (changelogged; with
//!   `--supplied-store`, an in-memory store the app supplies) → `output` (value: the count,
//!   i64 big-endian);
//! * `rekey-count`: `input` → re-key by the first character of the value → repartition
//!   (`<app>-by-initial-repartition`) → count per key in the store `counts`
//!   (`<app>-counts-changelog`) → `output` (value: the count, i64 big-endian);
//! * `hopping`: `input` → count per key in hopping windows (size 10 s, advance 5 s, grace
//!   2 s) in the window store `hop-counts`, final results only (`--emit update` for every
//!   change; `--emit suppress` for every change suppressed until the window closes, in the
//!   buffer `hop-final`) → `output` (key: windowed key, value: the count);
//! * `chaos`: the chaos runner's workload ([`streamtime_integration_tests::chaos`]): `input` →
//!   (a) count per key in tumbling windows (size 10 s, grace 2 s, final results only) in the
//!   window store `chaos-counts` → `output` (key: windowed key, value: the count); (b) the
//!   records whose value starts with `L` joined with those starting with `R` of the same key
//!   within 1.5 s (grace 2 s; stores `chaos-join-this-join-store` and
//!   `chaos-join-other-join-store`) → `--join-output` (value: `<left>+<right>`);
//! * `seen`: `input` (value: a decimal sequence number per key) → per key, which sequence
//!   numbers were applied and how many applications there were, in the RocksDB store `seen`
//!   (changelogged) → `output` (value: `seen_value` — 8 bytes of applications, i64
//!   big-endian, then a bitset of the sequence numbers), so a test can tell a lost input from
//!   one applied twice;
//! * `table-group`: `input` read as a table of user → region (store `users`; a null value
//!   deletes the user) → grouped by region through `<app>-by-region-repartition` (each user's
//!   last region in the store `by-region-rows`) → users per region in the store
//!   `region-counts` → `output` (value: the count, i64 big-endian);
//! * `fk-join`: `input` read as a table of orders (value `<text>|<customer id>`, store
//!   `orders`) joined by foreign key with `--right-input`, a table of customers (store
//!   `customers`), into the table `orders-with-customers` → its changes to `output` (value
//!   `(<order>,<customer>)`, null when an order loses its result);
//! * `global-join`: `input` (order id → customer id) joined with the global table of
//!   `--right-input` (customer id → name, store `customers`) → `output` (value
//!   `<customer id>=<name>`; orders of unknown customers give nothing);
//! * `versioned-join`: `input` (order id → `<product>|<order>`, keyed by product) left-joined
//!   with `--right-input` read as a versioned table of prices (store `prices`, history
//!   retention 1 h) as of each order's timestamp, with a grace period of 5 s for the orders
//!   (held in `prices-join-buffer`) → `output` (value `<order>@<price>`, `none` when the
//!   product had no price at that time);
//! * `rekey-hopping`: `input` (value: a page) re-keyed by page through the repartition
//!   topic `by-page` (with watermarks under `--watermarks`), counted per page in hopping
//!   windows (10 s, advancing 5 s, grace 2 s) on every update → `output`; records dropped as
//!   late go to `--late-output`;
//! * `table-join`: `input` (key: product, value: order) left-joined with `--right-input` read
//!   as a plain table of prices (store `prices`) → `output` (value `<order>@<price>`,
//!   `none` when the product has no price);
//! * `sessions-final`: `input` counted per key in session windows (gap 1 s, grace 500 ms)
//!   in the store `session-counts`, each session emitted once when it closes → `output`
//!   (key: windowed, value: the count, i64 big-endian).
//!
//! With `--restore-log <file>`, every restore from a changelog and every change of the
//! instance's state is appended to the file as it happens, one line per event:
//! `start <topic>:<partition> <store> <from> <to>`,
//! `batch <topic>:<partition> <store> <last offset> <records>`,
//! `end <topic>:<partition> <store> <records>` and `state <new state>` (`state Running`: every
//! restore is done and the tasks process); with `--supplied-store`, also
//! `supplied <store> <task>` for every store the app's supplier opened.
//!
//! With `--config-file <file>`, the configuration starts from a properties file (security
//! settings, for example).
//!
//! `STREAMTIME_FAULTS` (see `streamtime::faults`) injects faults, e.g.
//! `commit.offsets=abort@3` kills the process inside its third offset commit.

use std::io::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use clap::Parser;
use streamtime::config::TopologyOptimization;
use streamtime::dsl::{
    BufferConfig, EmitStrategy, JoinWindows, SessionWindows, StreamJoined, Suppressed, TimeWindows,
    WindowedSerde,
};
use streamtime::faults::FaultPlan;
use streamtime::lifecycle::StateRestoreListener;
use streamtime::serdes::{BytesSerde, I64Serde, OptionSerde, StringSerde, UnitSerde};
use streamtime::stores::{
    InMemoryKeyValueStore, KeyValueStore, KeyValueStoreSupplier, StateError, StoreLocation,
};
use streamtime::{
    Consumed, Grouped, Joined, KafkaStreams, Materialized, ProcessingGuarantee, Produced,
    Repartitioned, StreamsBuilder, StreamsConfig, TopicPartition,
};
use streamtime_integration_tests::app_process::AppConnection;
use streamtime_integration_tests::chaos;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    app: AppConnection,
    #[arg(long, default_value_t = 200)]
    commit_interval_ms: u64,
    /// Run with exactly-once instead of at-least-once.
    #[arg(long)]
    exactly_once: bool,
    /// Stable instance id (static membership, stable transactional id).
    #[arg(long)]
    instance_id: Option<String>,
    /// `rekey`, `count`, `rekey-count`, `hopping`, `chaos`, `seen`, `table-group`, `fk-join`,
    /// `global-join`, `versioned-join` or `table-join` (see the module documentation).
    #[arg(long, default_value = "rekey")]
    topology: String,
    /// State directory.
    #[arg(long)]
    state_dir: Option<String>,
    /// Windowed topologies: `final` (on window close) or `update`.
    #[arg(long, default_value = "final")]
    emit: String,
    /// `hopping` with `--emit final`: also close windows by the wall clock after this long
    /// without stream-time progress (`EmitStrategy::OnWindowCloseOrIdle`), ms.
    #[arg(long)]
    idle_close_ms: Option<u64>,
    /// With `--idle-close-ms`: how far behind the wall clock events may be, ms.
    #[arg(long, default_value_t = 1_000)]
    allowed_lateness_ms: u64,
    /// `rekey-hopping`: the repartition topic carries watermarks.
    #[arg(long)]
    watermarks: bool,
    /// `rekey-hopping`: where records dropped as late go.
    #[arg(long)]
    late_output: Option<String>,
    /// Standby replicas per stateful task.
    #[arg(long, default_value_t = 0)]
    standbys: usize,
    /// Stream threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// A file rewritten a few times a second with this instance's tasks: one line per task,
    /// `active <task> processed=<n> restored=<n>`, `restoring <task> processed=0
    /// restored=<so far>` or `standby <task>`.
    #[arg(long)]
    status_file: Option<String>,
    /// The instance's record cache (`StreamsConfig::cache_max_bytes`), bytes (0: off).
    #[arg(long, default_value_t = 0)]
    cache_bytes: usize,
    /// `count`: whether the store `counts` uses the cache (`Materialized::with_caching`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    store_caching: bool,
    /// `count`: keep `counts` in a store of the app's own, opened by a
    /// `KeyValueStoreSupplier` (in memory, restored from the changelog on every start).
    #[arg(long)]
    supplied_store: bool,
    /// `count`: a config of the changelog of `counts`, `key=value` (repeatable).
    #[arg(long)]
    changelog_config: Vec<String>,
    /// The `chaos` topology's second output: the join results.
    #[arg(long)]
    join_output: Option<String>,
    /// The right table of `fk-join`, `versioned-join` and `table-join`, the global table of
    /// `global-join`.
    #[arg(long)]
    right_input: Option<String>,
    /// A file every restore event is appended to (see the module documentation).
    #[arg(long)]
    restore_log: Option<String>,
    /// Tables read from a topic restore from it instead of a changelog
    /// (`topology.optimization=all`).
    #[arg(long)]
    reuse_source_topics: bool,
    /// A properties file (`StreamsConfig::from_properties`) the configuration starts from;
    /// its application.id and bootstrap.servers must match the flags.
    #[arg(long)]
    config_file: Option<String>,
}

/// Opens plain in-memory stores through the custom-store interface, noting each in the
/// restore log (`supplied <store> <task>`) when there is one.
struct MemoryStores(Option<RestoreLog>);

impl KeyValueStoreSupplier for MemoryStores {
    fn open(&self, at: &StoreLocation<'_>) -> Result<Box<dyn KeyValueStore>, StateError> {
        if let Some(log) = &self.0 {
            log.line(format!("supplied {} {}\n", at.name, at.task));
        }
        Ok(Box::new(InMemoryKeyValueStore::new(at.name)))
    }
}

/// Appends restore events and state changes to a file, each line written as the event
/// happens, so that the file tells how far a restore got even when the process is SIGKILLed in
/// the middle of it.
#[derive(Clone)]
struct RestoreLog(std::sync::Arc<Mutex<std::fs::File>>);

impl RestoreLog {
    fn line(&self, line: String) {
        let mut file = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Best effort: a full disk must not stop the restore it reports on.
        let _ = file.write_all(line.as_bytes());
    }
}

impl StateRestoreListener for RestoreLog {
    fn on_restore_start(&self, changelog: &TopicPartition, store: &str, from: i64, to: i64) {
        self.line(format!(
            "start {}:{} {store} {from} {to}\n",
            changelog.topic, changelog.partition
        ));
    }

    fn on_batch_restored(&self, changelog: &TopicPartition, store: &str, last: i64, n: u64) {
        self.line(format!(
            "batch {}:{} {store} {last} {n}\n",
            changelog.topic, changelog.partition
        ));
    }

    fn on_restore_end(&self, changelog: &TopicPartition, store: &str, total: u64) {
        self.line(format!(
            "end {}:{} {store} {total}\n",
            changelog.topic, changelog.partition
        ));
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,streamtime=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let restore_log = match &args.restore_log {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            Some(RestoreLog(std::sync::Arc::new(Mutex::new(file))))
        }
        None => None,
    };
    let builder = StreamsBuilder::new();
    // Every topology but `table-group` and `fk-join` reads the input as a stream.
    let input = || builder.stream(&args.app.input, Consumed::with(StringSerde, StringSerde));
    match args.topology.as_str() {
        "rekey" => input()
            .map_values(|v: String| v.to_uppercase())
            .select_key(|_k, v: &String| v.chars().next().map(String::from).unwrap_or_default())
            .repartition(Repartitioned::as_("by-initial"))
            .to(&args.app.output, Produced::default()),
        "count" => {
            let mut counts = Materialized::as_("counts").with_caching(args.store_caching);
            if args.supplied_store {
                counts = counts.with_store_supplier(MemoryStores(restore_log.clone()));
            }
            for config in &args.changelog_config {
                let (key, value) = config
                    .split_once('=')
                    .ok_or("--changelog-config takes key=value")?;
                counts = counts.with_changelog_config(key, value);
            }
            input()
                .group_by_key()
                .count(counts)
                .to_stream()
                .to(&args.app.output, Produced::with(StringSerde, I64Serde))
        }
        "rekey-count" => input()
            .select_key(|_k, v: &String| v.chars().next().map(String::from).unwrap_or_default())
            .repartition(Repartitioned::as_("by-initial"))
            .group_by_key()
            .count(Materialized::as_("counts"))
            .to_stream()
            .to(&args.app.output, Produced::with(StringSerde, I64Serde)),
        "hopping" => {
            let counts = input()
                .group_by_key()
                .windowed_by(
                    TimeWindows::of_size_and_grace(Duration::from_secs(10), Duration::from_secs(2))
                        .advance_by(Duration::from_secs(5)),
                )
                .emit(match args.emit.as_str() {
                    "final" => match args.idle_close_ms {
                        Some(idle) => EmitStrategy::OnWindowCloseOrIdle {
                            idle: Duration::from_millis(idle),
                            allowed_lateness: Duration::from_millis(args.allowed_lateness_ms),
                        },
                        None => EmitStrategy::OnWindowClose,
                    },
                    "update" | "suppress" => EmitStrategy::OnWindowUpdate,
                    other => return Err(format!("unknown emit strategy {other}").into()),
                })
                .count(Materialized::as_("hop-counts"));
            let counts = match args.emit.as_str() {
                "suppress" => counts.suppress(
                    Suppressed::until_window_closes(BufferConfig::unbounded())
                        .with_name("hop-final"),
                ),
                _ => counts,
            };
            counts.to_stream().to(
                &args.app.output,
                Produced::with(WindowedSerde::new(StringSerde), I64Serde),
            )
        }
        "rekey-hopping" => {
            let mut by_page = Repartitioned::as_("by-page");
            if args.watermarks {
                by_page = by_page.with_watermarks();
            }
            let windowed = input()
                .select_key(|_k, page: &String| page.clone())
                .repartition(by_page)
                .group_by_key()
                .windowed_by(
                    TimeWindows::of_size_and_grace(Duration::from_secs(10), Duration::from_secs(2))
                        .advance_by(Duration::from_secs(5)),
                );
            let windowed = match &args.late_output {
                Some(topic) => windowed.late_records_to(topic),
                None => windowed,
            };
            windowed
                .count(Materialized::as_("page-counts"))
                .to_stream()
                .to(
                    &args.app.output,
                    Produced::with(WindowedSerde::new(StringSerde), I64Serde),
                )
        }
        "seen" => input()
            .group_by_key()
            .aggregate(
                Vec::new,
                |_k, v: String, seen: Vec<u8>| match v.parse::<usize>() {
                    Ok(seq) => seen_value(seen, seq),
                    Err(_) => seen,
                },
                Materialized::as_("seen").with_value_serde(BytesSerde),
            )
            .to_stream()
            .to(&args.app.output, Produced::with(StringSerde, BytesSerde)),
        "chaos" => {
            let join_output = args
                .join_output
                .as_deref()
                .ok_or("--topology chaos needs --join-output")?;
            let input = input();
            let left = input.filter(|_k, v: &String| v.starts_with(chaos::LEFT));
            let right = input.filter(|_k, v: &String| v.starts_with(chaos::RIGHT));
            left.join(
                &right,
                |l: &String, r: &String| format!("{l}+{r}"),
                JoinWindows::of_time_difference_and_grace(
                    chaos::JOIN_DIFFERENCE,
                    chaos::JOIN_GRACE,
                ),
                StreamJoined::as_("chaos-join"),
            )
            .to(join_output, Produced::with(StringSerde, StringSerde));
            input
                .group_by_key()
                .windowed_by(TimeWindows::of_size_and_grace(
                    chaos::WINDOW_SIZE,
                    chaos::WINDOW_GRACE,
                ))
                .emit(EmitStrategy::OnWindowClose)
                .count(Materialized::as_("chaos-counts"))
                .to_stream()
                .to(
                    &args.app.output,
                    Produced::with(WindowedSerde::new(StringSerde), I64Serde),
                )
        }
        "sessions-final" => input()
            .group_by_key()
            .windowed_by(SessionWindows::of_inactivity_gap_and_grace(
                Duration::from_secs(1),
                Duration::from_millis(500),
            ))
            .emit(EmitStrategy::OnWindowClose)
            .count(Materialized::as_("session-counts"))
            .to_stream()
            .map_values(|count: Option<i64>| count.unwrap_or(0))
            .to(
                &args.app.output,
                Produced::with(WindowedSerde::new(StringSerde), I64Serde),
            ),
        "table-group" => builder
            .table(
                &args.app.input,
                Consumed::with(StringSerde, StringSerde),
                Materialized::as_("users"),
            )
            .group_by(
                |_user, region: &String| (region.clone(), ()),
                Grouped::with_serdes(StringSerde, UnitSerde).named("by-region"),
            )
            .count(Materialized::as_("region-counts"))
            .to_stream()
            .to(&args.app.output, Produced::with(StringSerde, I64Serde)),
        "fk-join" => {
            let right_input = args
                .right_input
                .as_deref()
                .ok_or("--topology fk-join needs --right-input")?;
            let customers = builder.table(
                right_input,
                Consumed::with(StringSerde, StringSerde),
                Materialized::as_("customers"),
            );
            builder
                .table(
                    &args.app.input,
                    Consumed::with(StringSerde, StringSerde),
                    Materialized::as_("orders"),
                )
                .join_foreign_key(
                    &customers,
                    |order: &String| order.split('|').nth(1).unwrap_or_default().to_string(),
                    |order: &String, customer: &String| format!("({order},{customer})"),
                    Materialized::as_("orders-with-customers").with_value_serde(StringSerde),
                )
                .to_change_stream()
                .to(
                    &args.app.output,
                    Produced::with(StringSerde, OptionSerde(StringSerde)),
                )
        }
        "global-join" => {
            let right_input = args
                .right_input
                .as_deref()
                .ok_or("--topology global-join needs --right-input")?;
            let customers = builder.global_table(
                right_input,
                Consumed::with(StringSerde, StringSerde),
                Materialized::as_("customers"),
            );
            input()
                .join_global(
                    &customers,
                    |_order, customer: &String| customer.clone(),
                    |customer: &String, name: &String| format!("{customer}={name}"),
                )
                .to(&args.app.output, Produced::with(StringSerde, StringSerde))
        }
        "versioned-join" => {
            let right_input = args
                .right_input
                .as_deref()
                .ok_or("--topology versioned-join needs --right-input")?;
            let prices = builder.table(
                right_input,
                Consumed::with(StringSerde, StringSerde),
                Materialized::as_versioned("prices", Duration::from_secs(3600)),
            );
            input()
                .left_join_table_with(
                    &prices,
                    |order: &String, price: Option<&String>| {
                        format!("{order}@{}", price.map_or("none", String::as_str))
                    },
                    Joined::with_grace_period(Duration::from_secs(5)).with_name("prices-join"),
                )
                .to(&args.app.output, Produced::with(StringSerde, StringSerde))
        }
        "table-join" => {
            let right_input = args
                .right_input
                .as_deref()
                .ok_or("--topology table-join needs --right-input")?;
            let prices = builder.table(
                right_input,
                Consumed::with(StringSerde, StringSerde),
                Materialized::as_("prices"),
            );
            input()
                .left_join_table(&prices, |order: &String, price: Option<&String>| {
                    format!("{order}@{}", price.map_or("none", String::as_str))
                })
                .to(&args.app.output, Produced::with(StringSerde, StringSerde))
        }
        other => return Err(format!("unknown topology {other}").into()),
    }
    let base = match &args.config_file {
        None => StreamsConfig::new(args.app.application_id, args.app.bootstrap_servers),
        Some(path) => {
            let config = StreamsConfig::from_properties(path)?;
            if config.application_id() != args.app.application_id
                || config.bootstrap_servers() != args.app.bootstrap_servers
            {
                return Err(format!("{path} names another application or cluster").into());
            }
            config
        }
    };
    let mut config = base
        .commit_interval(Duration::from_millis(args.commit_interval_ms))
        .cache_max_bytes(args.cache_bytes);
    if args.reuse_source_topics {
        config = config.topology_optimization(TopologyOptimization::ReuseSourceTopics);
    }
    if args.exactly_once {
        config = config.processing_guarantee(ProcessingGuarantee::ExactlyOnce);
    }
    if let Some(id) = args.instance_id {
        config = config.instance_id(id);
    }
    if let Some(dir) = args.state_dir {
        config = config.state_dir(dir);
    }
    if let Some(plan) = FaultPlan::from_env()? {
        eprintln!("test-app: injecting {plan:?}");
        config = config.fault_injection(plan);
    }
    config = config
        .num_standby_replicas(args.standbys)
        .num_stream_threads(args.threads);
    let mut app = KafkaStreams::new(builder.build()?, config)?;
    if let Some(log) = restore_log {
        app.set_global_state_restore_listener(log.clone())?;
        app.set_state_listener(move |new, _old| log.line(format!("state {new:?}\n")))?;
    }
    app.start()?;
    eprintln!("test-app: started");
    if let Some(path) = args.status_file {
        let status = app.status_handle()?;
        tokio::spawn(async move {
            loop {
                let mut text = String::new();
                for task in status.task_status() {
                    let role = if task.restoring {
                        "restoring"
                    } else {
                        "active"
                    };
                    text.push_str(&format!(
                        "{role} {} processed={} restored={}\n",
                        task.id, task.processed, task.restored_records
                    ));
                }
                for task in status.standby_tasks() {
                    text.push_str(&format!("standby {task}\n"));
                }
                let tmp = format!("{path}.tmp");
                if std::fs::write(&tmp, text).is_ok() {
                    let _ = std::fs::rename(&tmp, &path);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    app.run_until_signal().await?;
    eprintln!("test-app: stopped cleanly");
    Ok(())
}

/// The `seen` aggregate after applying sequence number `seq`: the count of applications
/// (8 bytes, big-endian) followed by a bitset of the sequence numbers applied.
fn seen_value(mut seen: Vec<u8>, seq: usize) -> Vec<u8> {
    if seen.len() < 8 {
        seen = vec![0; 8];
    }
    let applied = i64::from_be_bytes(seen[..8].try_into().expect("8 bytes")) + 1;
    seen[..8].copy_from_slice(&applied.to_be_bytes());
    let byte = 8 + seq / 8;
    if seen.len() <= byte {
        seen.resize(byte + 1, 0);
    }
    seen[byte] |= 1 << (seq % 8);
    seen
}
