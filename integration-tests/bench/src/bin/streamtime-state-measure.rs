//! Measures, in one run against one broker, the keyed-count throughput under at-least-once and
//! exactly-once and the changelog restore rate, and prints them with their ratio.
//!
//! `cargo run -p streamtime-bench --bin streamtime-state-measure -- --records 200000`

use std::time::{Duration, Instant};

use clap::Parser;
use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::{
    Consumed, KafkaStreams, Materialized, ProcessingGuarantee, Produced, StreamsBuilder,
    StreamsConfig,
};
use streamtime_integration_tests::records::{self, TestRecord};
use streamtime_integration_tests::{bootstrap_servers, topics};

#[derive(Parser)]
struct Args {
    /// Input records.
    #[arg(long, default_value_t = 200_000)]
    records: usize,
    /// Distinct keys.
    #[arg(long, default_value_t = 10_000)]
    keys: usize,
}

fn topology(input: &str, output: &str) -> streamtime::Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(output, Produced::with(StringSerde, I64Serde));
    builder.build().expect("valid topology")
}

/// Runs the count until `expected` outputs are readable; returns the wall time.
async fn run(config: StreamsConfig, input: &str, output: &str, expected: usize) -> Duration {
    let started = Instant::now();
    let mut app = KafkaStreams::new(topology(input, output), config).expect("valid config");
    app.start().expect("app starts");
    records::consume(
        &bootstrap_servers(),
        output,
        expected,
        Duration::from_secs(600),
    )
    .await;
    let elapsed = started.elapsed();
    app.close().expect("clean close");
    elapsed
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Args::parse();
    let servers = bootstrap_servers();
    let input = topics::unique_name("measure-in");
    topics::create(&servers, &input, 4).await;
    let data: Vec<TestRecord> = (0..args.records)
        .map(|i| TestRecord::new(&format!("key-{}", i % args.keys), vec![b'x'; 100], i as i64))
        .collect();
    records::produce(&servers, &input, data).await;
    println!(
        "measure: {} records, {} keys, 4 partitions",
        args.records, args.keys
    );

    let state_dir = std::env::temp_dir().join(topics::unique_name("measure-state"));
    let mut results = Vec::new();
    for (label, guarantee) in [
        ("at-least-once", ProcessingGuarantee::AtLeastOnce),
        ("exactly-once", ProcessingGuarantee::ExactlyOnce),
    ] {
        let output = topics::unique_name("measure-out");
        topics::create(&servers, &output, 4).await;
        let app_id = topics::unique_name("measure-app");
        let config = StreamsConfig::new(&app_id, &servers)
            .processing_guarantee(guarantee)
            .state_dir(&state_dir);
        let took = run(config, &input, &output, args.records).await;
        let rate = args.records as f64 / took.as_secs_f64();
        println!("measure: {label}: {took:.2?} → {rate:.0} records/s");
        results.push((app_id, rate));
    }
    println!(
        "measure: exactly-once / at-least-once throughput = {:.2}",
        results[1].1 / results[0].1
    );

    // Restore: the at-least-once app's state is deleted and rebuilt from its changelog.
    let (app_id, _) = &results[0];
    std::fs::remove_dir_all(state_dir.join(app_id)).expect("state dir exists");
    let output = topics::unique_name("measure-restore-out");
    topics::create(&servers, &output, 4).await;
    let config = StreamsConfig::new(app_id, &servers).state_dir(&state_dir);
    let started = Instant::now();
    let mut app = KafkaStreams::new(topology(&input, &output), config).expect("valid config");
    app.start().expect("app starts");
    // Restore happens before a task reports status; the first status marks its end.
    while app.task_status().len() < 4 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    app.close().expect("clean close");
    let changelog = topics::watermarks(&servers, &format!("{app_id}-counts-changelog")).await;
    let entries: i64 = changelog.iter().map(|(l, h)| h - l).sum();
    println!(
        "measure: restore of {entries} changelog records (incl. start-up and rebalance): {took:.2?} → {:.0} records/s",
        entries as f64 / took.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&state_dir);
}
