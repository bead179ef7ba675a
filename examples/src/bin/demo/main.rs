//! End-to-end demo: one of the examples against a real broker.
//!
//! Uses `KAFKA_BOOTSTRAP_SERVERS` when set; otherwise starts the local Kafka container (the
//! same image as the tests). Produces the example's sample data, runs its topology, prints
//! what it computed and checks it against a direct computation of the same result.
//!
//! ```sh
//! cargo run -p streamtime-examples --bin demo               # bank (default)
//! cargo run -p streamtime-examples --bin demo -- sensors
//! cargo run -p streamtime-examples --bin demo -- wordcount
//! cargo run -p streamtime-examples --bin demo -- clickstream
//! ```

mod bank;
mod clickstream;
mod sensors;
mod wordcount;

use clap::{Parser, ValueEnum};
use streamtime_integration_tests::bootstrap_servers;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Example {
    /// Deposits and withdrawals in event-time order, with overdraft fees.
    Bank,
    /// Per-sensor averages per minute of event time, final results only.
    Sensors,
    /// Running word counts.
    Wordcount,
    /// Per-user sessions of clicks.
    Clickstream,
}

#[derive(Parser)]
#[command(about = "Runs one of the streamtime examples end to end against Kafka")]
struct Args {
    /// The example to run.
    #[arg(value_enum, default_value_t = Example::Bank)]
    example: Example,
    /// Bank: accounts to simulate.
    #[arg(long, default_value_t = 6)]
    accounts: usize,
    /// Bank: transactions per account.
    #[arg(long, default_value_t = 8)]
    transactions: usize,
}

/// Result of a demo: `Err` when the example's output differs from what it should be.
type DemoResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> DemoResult {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,streamtime=info".into()),
        )
        .init();
    let args = Args::parse();
    let servers = bootstrap_servers();
    println!("demo: using Kafka at {servers}");
    match args.example {
        Example::Bank => bank::run(&servers, args.accounts, args.transactions).await,
        Example::Sensors => sensors::run(&servers).await,
        Example::Wordcount => wordcount::run(&servers).await,
        Example::Clickstream => clickstream::run(&servers).await,
    }
}
