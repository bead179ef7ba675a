//! The chaos runner, run by hand: the test app's windowed count and join under SIGKILLs
//! (while processing, mid-restore, inside a commit) and broker restarts, compared with an
//! uninterrupted run of the same app (see `streamtime_integration_tests::chaos`).
//!
//! ```text
//! cargo build -p streamtime-integration-tests --bins
//! target/debug/streamtime-chaos                     # the issue's figures, exactly-once
//! target/debug/streamtime-chaos --at-least-once --records 200000 --outages 10
//! ```
//!
//! It needs Docker and the local broker image (`bash .ci/setup`), prints what happens as it
//! happens and a summary at the end, and exits 1 when the result is not what the guarantee
//! promises. Kills inside a commit need the framework's `fault-injection` feature; without
//! it they become kills while processing, and the summary says so.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use streamtime_integration_tests::chaos::{self, ChaosConfig};

#[derive(Parser)]
#[command(
    about = "Kills and broker restarts against a windowed count and a join, compared \
                   with an uninterrupted run"
)]
struct Args {
    /// Input records.
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    /// Distinct keys.
    #[arg(long, default_value_t = 300)]
    keys: usize,
    /// Partitions of the input and output topics.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// App instances of the chaos run.
    #[arg(long, default_value_t = 2)]
    instances: usize,
    /// Kills in all, mid-restore and inside-a-commit ones included.
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// Of the kills, how many land in the middle of a restore.
    #[arg(long, default_value_t = 5)]
    restore_kills: usize,
    /// Of the kills, how many land inside a commit (needs the framework's `fault-injection`
    /// feature; without it they become kills while processing).
    #[arg(long, default_value_t = 3)]
    commit_kills: usize,
    /// Broker restarts: how long the broker stays down each time, seconds, comma-separated
    /// (`--outages` with no value: none).
    #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "30,30,180")]
    outages: Vec<f64>,
    /// At-least-once instead of exactly-once (then only nothing may be missing).
    #[arg(long)]
    at_least_once: bool,
    /// Seed of the input and the schedule.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The app's commit interval, ms.
    #[arg(long, default_value_t = 200)]
    commit_interval_ms: u64,
    /// How long a step may wait for its condition, seconds.
    #[arg(long, default_value_t = 600)]
    step_timeout_secs: u64,
    /// How long each run may take to finish after all input is produced, seconds.
    #[arg(long, default_value_t = 1_800)]
    finish_timeout_secs: u64,
    /// The `streamtime-test-app` binary (default: next to this one).
    #[arg(long)]
    app_binary: Option<PathBuf>,
    /// Where logs, status files and state go (default: a new temporary directory).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Only the summary, not every step as it happens.
    #[arg(long)]
    quiet: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let app_binary = args.app_binary.unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("streamtime-test-app")))
            .expect("the runner's own directory")
    });
    if !app_binary.exists() {
        eprintln!(
            "streamtime-chaos: no app binary at {} (build it with cargo build -p \
             streamtime-integration-tests --bins, or pass --app-binary)",
            app_binary.display()
        );
        return ExitCode::from(2);
    }
    let config = ChaosConfig {
        app_binary,
        records: args.records,
        keys: args.keys,
        partitions: args.partitions,
        instances: args.instances,
        kills: args.kills,
        restore_kills: args.restore_kills,
        commit_kills: args.commit_kills,
        outages: args
            .outages
            .iter()
            .map(|&s| Duration::from_secs_f64(s))
            .collect(),
        exactly_once: !args.at_least_once,
        seed: args.seed,
        commit_interval_ms: args.commit_interval_ms,
        step_timeout: Duration::from_secs(args.step_timeout_secs),
        finish_timeout: Duration::from_secs(args.finish_timeout_secs),
        work_dir: args.work_dir,
        verbose: !args.quiet,
    };
    if let Err(e) = config.check() {
        eprintln!("streamtime-chaos: {e}");
        return ExitCode::from(2);
    }
    let report = chaos::run(&config).await;
    println!("{report}");
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
