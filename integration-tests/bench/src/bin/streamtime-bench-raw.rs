//! The raw-loop contender of `streamtime-bench`: the pass-through workload (filter + map values)
//! as a plain rdkafka consume → produce loop with no framework, the floor streamtime is measured
//! against.
//!
//! At-least-once: the producer is flushed and the consumer's position committed every commit
//! interval (30 s) and at the end. Exactly-once: a transactional producer commits the output
//! together with the consumer's position every 100 ms.
//!
//! It speaks the same stdout protocol as `streamtime-bench-app` (`bench-app: begin` at the
//! first record, `bench-app: end` after the final commit).

use std::time::{Duration, Instant};

use clap::Parser;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use streamtime::partitioner::partition_for_key;
use streamtime_integration_tests::app_process::AppConnection;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    app: AppConnection,
    /// `at-least-once` or `exactly-once`.
    #[arg(long, default_value = "at-least-once")]
    guarantee: String,
    /// Input records to process before stopping.
    #[arg(long)]
    records: u64,
    /// Output partitions (records go where Kafka's default partitioner would put them).
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Default: 30 s at-least-once, 100 ms exactly-once.
    #[arg(long)]
    commit_interval_ms: Option<u64>,
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
}

const TIMEOUT: Duration = Duration::from_secs(30);

fn announce(what: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "bench-app: {what}");
    let _ = out.flush();
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let eos = match args.guarantee.as_str() {
        "at-least-once" => false,
        "exactly-once" => true,
        other => return Err(format!("unknown guarantee {other}").into()),
    };
    let commit_interval =
        Duration::from_millis(
            args.commit_interval_ms
                .unwrap_or(if eos { 100 } else { 30_000 }),
        );

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.app.bootstrap_servers)
        .set("group.id", &args.app.application_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set(
            "isolation.level",
            if eos {
                "read_committed"
            } else {
                "read_uncommitted"
            },
        )
        .create()?;
    consumer.subscribe(&[&args.app.input])?;
    let mut producer_config = ClientConfig::new();
    producer_config
        .set("bootstrap.servers", &args.app.bootstrap_servers)
        .set("linger.ms", args.linger_ms.to_string());
    if eos {
        producer_config.set(
            "transactional.id",
            format!("{}-raw", args.app.application_id),
        );
    }
    let producer: BaseProducer = producer_config.create()?;
    if eos {
        producer.init_transactions(TIMEOUT)?;
        producer.begin_transaction()?;
    }

    let commit = |producer: &BaseProducer,
                  consumer: &BaseConsumer|
     -> Result<(), Box<dyn std::error::Error>> {
        let position = consumer.position()?;
        if eos {
            let group = consumer
                .group_metadata()
                .ok_or("the consumer has no group metadata")?;
            producer.send_offsets_to_transaction(&position, &group, TIMEOUT)?;
            producer.commit_transaction(TIMEOUT)?;
            producer.begin_transaction()?;
        } else {
            producer.flush(TIMEOUT)?;
            consumer.commit(&position, CommitMode::Sync)?;
        }
        Ok(())
    };

    let mut seen = 0u64;
    let mut value = Vec::new();
    let mut last_commit = Instant::now();
    while seen < args.records {
        if let Some(message) = consumer.poll(Duration::from_millis(50)) {
            let message = message?;
            seen += 1;
            if seen == 1 {
                announce("begin");
            }
            let payload = message.payload().unwrap_or_default();
            if payload.first().is_some_and(|b| *b != b'j') {
                // librdkafka owns the consumed bytes: one copy into a reused buffer is the
                // least a mapping loop can do.
                value.clear();
                value.extend(payload.iter().map(u8::to_ascii_uppercase));
                let key = message.key().unwrap_or_default();
                let mut record = BaseRecord::<[u8], [u8]>::to(&args.app.output)
                    .key(key)
                    .payload(&value)
                    .partition(partition_for_key(key, args.partitions));
                if let Some(ts) = message.timestamp().to_millis() {
                    record = record.timestamp(ts);
                }
                loop {
                    match producer.send(record) {
                        Ok(()) => break,
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                            producer.poll(Duration::from_millis(5));
                            record = r;
                        }
                        Err((e, _)) => return Err(e.into()),
                    }
                }
            }
        }
        producer.poll(Duration::ZERO);
        // Before the first record there is no position to commit (librdkafka: "no offset").
        if seen > 0 && last_commit.elapsed() >= commit_interval {
            commit(&producer, &consumer)?;
            last_commit = Instant::now();
        }
    }
    commit(&producer, &consumer)?;
    if eos {
        producer.abort_transaction(TIMEOUT)?;
    }
    consumer.unsubscribe();
    announce(&format!("end processed={seen}"));
    Ok(())
}
