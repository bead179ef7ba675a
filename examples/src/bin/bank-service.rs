//! The bank example as a long-running service: the topology of
//! [`streamtime_examples::bank`] on a cluster until SIGTERM (or SIGKILL: its Kafka test kills
//! it mid-stream and checks that the restarted service changes no statement).
//!
//! ```text
//! bank-service --bootstrap-servers localhost:9092 --application-id bank \
//!     --deposits deposits --withdrawals withdrawals --statements statements --exactly-once
//! ```

use std::time::Duration;

use clap::Parser;
use streamtime::{KafkaStreams, ProcessingGuarantee, StreamsConfig};
use streamtime_examples::bank::{self, Topics};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    bootstrap_servers: String,
    #[arg(long)]
    application_id: String,
    #[arg(long)]
    deposits: String,
    #[arg(long)]
    withdrawals: String,
    #[arg(long)]
    statements: String,
    /// Process exactly once (transactions) instead of at least once.
    #[arg(long)]
    exactly_once: bool,
    /// Stable instance id (static membership, stable transactional id).
    #[arg(long)]
    instance_id: Option<String>,
    /// State directory.
    #[arg(long)]
    state_dir: Option<String>,
    #[arg(long, default_value_t = 200)]
    commit_interval_ms: u64,
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
    let topics = Topics::new(&args.deposits, &args.withdrawals, &args.statements);
    let mut config = StreamsConfig::new(args.application_id, args.bootstrap_servers)
        .commit_interval(Duration::from_millis(args.commit_interval_ms));
    if args.exactly_once {
        config = config.processing_guarantee(ProcessingGuarantee::ExactlyOnce);
    }
    if let Some(id) = args.instance_id {
        config = config.instance_id(id);
    }
    if let Some(dir) = args.state_dir {
        config = config.state_dir(dir);
    }
    let mut app = KafkaStreams::new(bank::topology(&topics)?, config)?;
    app.start()?;
    app.run_until_signal().await?;
    Ok(())
}
