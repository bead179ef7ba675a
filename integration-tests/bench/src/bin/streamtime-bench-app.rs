//! The streamtime contender of `streamtime-bench`: one benchmark workload as a process of its
//! own, so the runner can read its CPU time from the OS.
//!
//! Workloads (`--workload`): `pass` (filter + map_values to `--output`), `count` (keyed count
//! in the RocksDB store `counts`, changelogged), `hopping` (count in hopping windows of 60 s,
//! advance 10 s, grace 5 s, every update emitted), `hopping-final` (the same, each window
//! emitted once when it closes), `restore` (the `count` topology started on a fresh state dir; it
//! stops once every task has restored `counts` from its changelog).
//!
//! It talks to the runner through stdout: `bench-app: begin` when the measured phase starts
//! (the first input record; for `restore`, just before start) and `bench-app: end` when it is
//! over (processing: after `--records` inputs and the closing commit; restore: when every task
//! runs).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use streamtime::dsl::{EmitStrategy, TimeWindows, WindowedSerde};
use streamtime::serdes::{BytesSerde, I64Serde, StringSerde};
use streamtime::{
    Consumed, KafkaStreams, Materialized, ProcessingGuarantee, Produced, StreamsBuilder,
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
    /// Input records to process before stopping (processing workloads).
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
    /// Write-back cache of the whole instance, bytes; each task's key-value store gets its
    /// share (Kafka Streams, too, divides one cache among its tasks).
    #[arg(long, default_value_t = 0)]
    cache_bytes: usize,
    /// Extra consumer settings, `name=value`, for tuning experiments.
    #[arg(long)]
    consumer_config: Vec<String>,
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
    let builder = StreamsBuilder::new();
    let counter = seen.clone();
    let input = builder
        .stream(&args.app.input, Consumed::with(StringSerde, BytesSerde))
        .peek(move |_k, _v| {
            if counter.fetch_add(1, Ordering::Relaxed) == 0 {
                announce("begin");
            }
        });
    match args.workload.as_str() {
        "pass" => input
            .filter(|_k, v: &Vec<u8>| v.first().is_some_and(|b| *b != b'j'))
            .map_values(|mut v: Vec<u8>| {
                v.make_ascii_uppercase();
                v
            })
            .to(&args.app.output, Produced::with(StringSerde, BytesSerde)),
        "count" | "restore" => input
            .group_by_key()
            .count(Materialized::as_("counts"))
            .to_stream()
            .to(&args.app.output, Produced::with(StringSerde, I64Serde)),
        "hopping" | "hopping-final" => input
            .group_by_key()
            .windowed_by(
                TimeWindows::of_size_and_grace(Duration::from_secs(60), Duration::from_secs(5))
                    .advance_by(Duration::from_secs(10)),
            )
            .emit(match args.workload.as_str() {
                "hopping" => EmitStrategy::OnWindowUpdate,
                _ => EmitStrategy::OnWindowClose,
            })
            .count(Materialized::as_("hop-counts"))
            .to_stream()
            .to(
                &args.app.output,
                Produced::with(WindowedSerde::new(StringSerde), I64Serde),
            ),
        other => return Err(format!("unknown workload {other}").into()),
    }
    let mut config = StreamsConfig::new(&args.app.application_id, &args.app.bootstrap_servers)
        .state_dir(&args.state_dir)
        .producer_config("linger.ms", args.linger_ms.to_string())
        .cache_max_bytes(args.cache_bytes / args.partitions.max(1));
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
