//! The streamtime contender of `streamtime-bench`: one benchmark workload as a process of its
//! own, so the runner can read its CPU time from the OS.
//!
//! Workloads (`--workload`):
//! * `pass`: filter + map_values to `--output`;
//! * `count`: keyed count in the RocksDB store `counts`, changelogged;
//! * `hopping`: count in hopping windows of 60 s, advance 10 s, grace 5 s, every update
//!   emitted; `hopping-final`: the same, each window emitted once when it closes;
//! * `rekey-hopping`: `hopping` behind a repartition topic (the key is selected again, so
//!   every record crosses the broker once more); `rekey-hopping-watermarks`: the same with
//!   watermarks through the repartition topic;
//! * `session`: count in session windows (inactivity gap 60 s, grace 5 s), every update
//!   emitted; `session-final`: each session emitted once when it closes (the runner's keys
//!   recur every 100 s, so each record starts a session of its own);
//! * `stream-stream-join`: inner join of `--input` and `--other-input` within 60 s (grace
//!   5 s) on the key;
//! * `stream-table-join`: `--input` joined with the table read from `--other-input`;
//! * `table-group-by`: `--input` read as a table (uncached, so every update goes on), its rows
//!   regrouped by their value's second byte (a row changes group with most updates) and
//!   counted per group with an adder and a subtractor;
//! * `fk-join`: `--input` read as a table (uncached; the runner writes each row once) joined
//!   by a foreign key (`key-000000d`, `d` from the value's first byte) with the table read
//!   from `--other-input`;
//! * `restore`: the `count` topology started on a fresh state dir; it stops once every task
//!   has restored `counts` from its changelog.
//!
//! It talks to the runner through stdout: `bench-app: ready` once every thread processes
//! (the instance is running), `bench-app: begin` when the measured phase starts (the first
//! input record; for `restore`, just before start) and `bench-app: end` when it is over
//! (processing: after `--records` records reached the aggregation, both sides of a join, or
//! the adder or joiner of the table workloads, and the closing commit; restore: when every
//! task runs).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use streamtime::dsl::{
    EmitStrategy, JoinWindows, Repartitioned, SessionWindows, StreamJoined, TimeWindows,
    WindowedSerde,
};
use streamtime::lifecycle::State;
use streamtime::serdes::{BytesSerde, I64Serde, OptionSerde, StringSerde};
use streamtime::{
    Consumed, Grouped, KafkaStreams, Materialized, ProcessingGuarantee, Produced, StreamsBuilder,
    StreamsConfig,
};
use streamtime_integration_tests::app_process::AppConnection;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    app: AppConnection,
    #[arg(long)]
    workload: String,
    /// `at-least-once` or `exactly-once`.
    #[arg(long, default_value = "at-least-once")]
    guarantee: String,
    /// The second input of the join workloads (the right stream, or the table's topic).
    #[arg(long)]
    other_input: Option<String>,
    /// Records to process before stopping (processing workloads): inputs counted where they
    /// reach the aggregation (behind a repartition topic too), both sides of a join.
    #[arg(long, default_value_t = 0)]
    records: u64,
    /// Input partitions, i.e. tasks (restore: how many tasks must be running).
    #[arg(long, default_value_t = 4)]
    partitions: usize,
    #[arg(long)]
    state_dir: String,
    /// Default: the guarantee's (30 s at-least-once, 100 ms exactly-once).
    #[arg(long)]
    commit_interval_ms: Option<u64>,
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// Record cache of the whole instance, bytes (`statestore.cache.max.bytes`), shared by
    /// its stores as in Kafka Streams.
    #[arg(long, default_value_t = 0)]
    cache_bytes: usize,
    /// Extra consumer settings, `name=value`, for tuning experiments.
    #[arg(long)]
    consumer_config: Vec<String>,
    /// Stream threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// The foreign key of an `fk-join` row: one of ten rows of the other table, named as the
/// runner names table keys.
fn foreign_key(value: &[u8]) -> String {
    format!(
        "key-{:07}",
        value.first().map_or(0, |b| b.wrapping_sub(b'a') % 10)
    )
}

fn announce(what: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "bench-app: {what}");
    let _ = out.flush();
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let seen = Arc::new(AtomicU64::new(0));
    let started = Arc::new(AtomicU64::new(0));
    let builder = StreamsBuilder::new();
    // `begin` at the first record read from any input.
    let source = |topic: &str| {
        let started = started.clone();
        builder
            .stream(topic, Consumed::with(StringSerde, BytesSerde))
            .peek(move |_k, _v| {
                if started.fetch_add(1, Ordering::Relaxed) == 0 {
                    announce("begin");
                }
            })
    };
    // Counts the records that reached the workload's measured stage.
    let counted = |stream: &streamtime::KStream<String, Vec<u8>>| {
        let seen = seen.clone();
        stream.peek(move |_k, _v| {
            seen.fetch_add(1, Ordering::Relaxed);
        })
    };
    let other_input = || {
        args.other_input
            .clone()
            .ok_or_else(|| format!("workload {} needs --other-input", args.workload))
    };
    let hopping = || {
        TimeWindows::of_size_and_grace(Duration::from_secs(60), Duration::from_secs(5))
            .advance_by(Duration::from_secs(10))
    };
    let windowed_output = || Produced::with(WindowedSerde::new(StringSerde), I64Serde);
    let workload = args.workload.as_str();
    match workload {
        "pass" => counted(&source(&args.app.input))
            .filter(|_k, v: &Vec<u8>| v.first().is_some_and(|b| *b != b'j'))
            .map_values(|mut v: Vec<u8>| {
                v.make_ascii_uppercase();
                v
            })
            .to(&args.app.output, Produced::with(StringSerde, BytesSerde)),
        "count" | "restore" => counted(&source(&args.app.input))
            .group_by_key()
            .count(Materialized::as_("counts"))
            .to_stream()
            .to(&args.app.output, Produced::with(StringSerde, I64Serde)),
        "hopping" | "hopping-final" => counted(&source(&args.app.input))
            .group_by_key()
            .windowed_by(hopping())
            .emit(match workload {
                "hopping" => EmitStrategy::OnWindowUpdate,
                _ => EmitStrategy::OnWindowClose,
            })
            .count(Materialized::as_("hop-counts"))
            .to_stream()
            .to(&args.app.output, windowed_output()),
        "rekey-hopping" | "rekey-hopping-watermarks" => {
            let mut rekeyed = Repartitioned::as_("rekeyed");
            if workload == "rekey-hopping-watermarks" {
                rekeyed = rekeyed.with_watermarks();
            }
            let behind = source(&args.app.input)
                .select_key(|k: &String, _v| k.clone())
                .repartition(rekeyed);
            counted(&behind)
                .group_by_key()
                .windowed_by(hopping())
                .count(Materialized::as_("hop-counts"))
                .to_stream()
                .to(&args.app.output, windowed_output())
        }
        "session" | "session-final" => counted(&source(&args.app.input))
            .group_by_key()
            .windowed_by(SessionWindows::of_inactivity_gap_and_grace(
                Duration::from_secs(60),
                Duration::from_secs(5),
            ))
            .emit(match workload {
                "session" => EmitStrategy::OnWindowUpdate,
                _ => EmitStrategy::OnWindowClose,
            })
            .count(Materialized::as_("session-counts"))
            .to_stream()
            .to(
                &args.app.output,
                Produced::with(WindowedSerde::new(StringSerde), OptionSerde(I64Serde)),
            ),
        "stream-stream-join" => {
            let left = counted(&source(&args.app.input));
            let right = counted(&source(&other_input()?));
            left.join(
                &right,
                |l: &Vec<u8>, r: &Vec<u8>| (l.len() + r.len()) as i64,
                JoinWindows::of_time_difference_and_grace(
                    Duration::from_secs(60),
                    Duration::from_secs(5),
                ),
                StreamJoined::with_serdes(StringSerde, BytesSerde, BytesSerde).named("joined"),
            )
            .to(&args.app.output, Produced::with(StringSerde, I64Serde))
        }
        "stream-table-join" => {
            let table = counted(&source(&other_input()?)).to_table(Materialized::as_("rows"));
            counted(&source(&args.app.input))
                .join_table(&table, |v: &Vec<u8>, t: &Vec<u8>| {
                    (v.len() + t.len()) as i64
                })
                .to(&args.app.output, Produced::with(StringSerde, I64Serde))
        }
        "table-group-by" => {
            let seen = seen.clone();
            source(&args.app.input)
                .to_table(Materialized::as_("rows").with_caching(false))
                .group_by(
                    |_k: &String, v: &Vec<u8>| (v.get(1).map_or(0, |b| *b).to_string(), v.clone()),
                    Grouped::with_serdes(StringSerde, BytesSerde),
                )
                .aggregate(
                    || 0_i64,
                    move |_g: &String, _v: Vec<u8>, n: i64| {
                        seen.fetch_add(1, Ordering::Relaxed);
                        n + 1
                    },
                    |_g: &String, _v: Vec<u8>, n: i64| n - 1,
                    Materialized::as_("group-counts").with_value_serde(I64Serde),
                )
                .to_stream()
                .to(&args.app.output, Produced::with(StringSerde, I64Serde))
        }
        "fk-join" => {
            let seen = seen.clone();
            let other = source(&other_input()?).to_table(Materialized::as_("other-rows"));
            source(&args.app.input)
                .to_table(Materialized::as_("rows").with_caching(false))
                .join_foreign_key(
                    &other,
                    |v: &Vec<u8>| foreign_key(v),
                    move |v: &Vec<u8>, o: &Vec<u8>| {
                        seen.fetch_add(1, Ordering::Relaxed);
                        (v.len() + o.len()) as i64
                    },
                    Materialized::as_("fk-joined").with_value_serde(I64Serde),
                )
                .to_stream()
                .to(&args.app.output, Produced::with(StringSerde, I64Serde))
        }
        other => return Err(format!("unknown workload {other}").into()),
    }
    let mut config = StreamsConfig::new(&args.app.application_id, &args.app.bootstrap_servers)
        .state_dir(&args.state_dir)
        .producer_config("linger.ms", args.linger_ms.to_string())
        .num_stream_threads(args.threads)
        .cache_max_bytes(args.cache_bytes);
    config = match args.guarantee.as_str() {
        "at-least-once" => config.processing_guarantee(ProcessingGuarantee::AtLeastOnce),
        "exactly-once" => config.processing_guarantee(ProcessingGuarantee::ExactlyOnce),
        other => return Err(format!("unknown guarantee {other}").into()),
    };
    for setting in &args.consumer_config {
        let (name, value) = setting
            .split_once('=')
            .ok_or_else(|| format!("--consumer-config {setting}: expected name=value"))?;
        config = config.consumer_config(name, value);
    }
    if let Some(ms) = args.commit_interval_ms {
        config = config.commit_interval(Duration::from_millis(ms));
    }
    let mut app = KafkaStreams::new(builder.build()?, config)?;
    app.set_state_listener(|now, _before| {
        if now == State::Running {
            announce("ready");
        }
    })?;

    if args.workload == "restore" {
        announce("begin");
        app.start()?;
        // A task reports status only once its stores are restored.
        while app.task_status().len() < args.partitions {
            if let Some(e) = app.error() {
                return Err(e.into());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        announce("end");
        app.close()?;
        return Ok(());
    }

    app.start()?;
    while seen.load(Ordering::Relaxed) < args.records {
        if let Some(e) = app.error() {
            return Err(e.into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    app.close()?;
    announce(&format!("end processed={}", seen.load(Ordering::Relaxed)));
    Ok(())
}
