//! Error policies on a real broker: 10 000 malformed records mixed into 30 000 valid ones are
//! skipped and counted exactly (log-and-continue), dead-lettered with their original bytes
//! (dead letter), or stop the app at the first one with its coordinates (fail, the default).

use std::collections::BTreeSet;
use std::time::Duration;

use streamtime::error_policy::{headers, DeserializationErrorPolicy};
use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::{Consumed, KafkaStreams, Produced, StreamsBuilder, StreamsConfig, StreamsError};
use streamtime_integration_tests::records::{self, TestRecord};
use streamtime_integration_tests::wait::eventually_async;
use streamtime_integration_tests::{bootstrap_servers, topics};

const VALID: usize = 30_000;
const MALFORMED: usize = 10_000;
const PARTITIONS: i32 = 3;
const WAIT: Duration = Duration::from_secs(180);

/// Every fourth record is malformed: a 3-byte value where an i64 (8 bytes) is expected.
fn mixed_input() -> Vec<TestRecord> {
    (0..VALID + MALFORMED)
        .map(|i| {
            let key = format!("k{}", i % 97);
            if i % 4 == 3 {
                TestRecord::new(&key, vec![0xde, 0xad, i as u8], i as i64)
            } else {
                TestRecord::new(&key, (i as i64).to_be_bytes().to_vec(), i as i64)
            }
        })
        .collect()
}

struct Setup {
    servers: String,
    input: String,
    output: String,
}

async fn setup(prefix: &str) -> Setup {
    let servers = bootstrap_servers();
    let input = topics::unique_name(&format!("{prefix}-in"));
    let output = topics::unique_name(&format!("{prefix}-out"));
    topics::create(&servers, &input, PARTITIONS).await;
    topics::create(&servers, &output, PARTITIONS).await;
    records::produce(&servers, &input, mixed_input()).await;
    Setup {
        servers,
        input,
        output,
    }
}

fn app(s: &Setup, app_id: &str, policy: DeserializationErrorPolicy) -> KafkaStreams {
    let builder = StreamsBuilder::new();
    builder
        .stream(&s.input, Consumed::with(StringSerde, I64Serde))
        .map_values(|n: i64| n + 1)
        .to(&s.output, Produced::with(StringSerde, I64Serde));
    let config = StreamsConfig::new(app_id, &s.servers)
        .commit_interval(Duration::from_millis(200))
        .deserialization_error_policy(policy);
    let mut app = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
    app.start().unwrap();
    app
}

/// Waits until the app's tasks report at least `dropped` skipped records in total; returns
/// how many they report.
async fn wait_for_dropped(app: &KafkaStreams, dropped: u64) -> u64 {
    let awaited = format!("{dropped} dropped records");
    eventually_async(WAIT, &awaited, move || async move {
        let seen: u64 = app.task_status().iter().map(|t| t.dropped).sum();
        if seen >= dropped {
            Ok(seen)
        } else {
            Err(format!("{seen} dropped"))
        }
    })
    .await
}

/// The values read back from the output, checked to be exactly the valid inputs + 1.
fn assert_valid_outputs(out: &[TestRecord]) {
    let values: Vec<i64> = out
        .iter()
        .map(|r| i64::from_be_bytes(r.value.as_deref().unwrap().try_into().unwrap()))
        .collect();
    let distinct: BTreeSet<i64> = values.iter().copied().collect();
    let want: BTreeSet<i64> = (0..(VALID + MALFORMED) as i64)
        .filter(|i| i % 4 != 3)
        .map(|i| i + 1)
        .collect();
    assert_eq!(values.len(), VALID, "one output per valid record");
    assert_eq!(distinct, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_and_continue_skips_exactly_the_malformed_records() {
    let s = setup("skip").await;
    let app = app(
        &s,
        &topics::unique_name("skip-app"),
        DeserializationErrorPolicy::LogAndContinue,
    );
    let out = records::consume(&s.servers, &s.output, VALID, WAIT).await;
    let dropped = wait_for_dropped(&app, MALFORMED as u64).await;
    drop(app);
    assert_valid_outputs(&out);
    assert_eq!(
        dropped, MALFORMED as u64,
        "every malformed record counted once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_gets_every_malformed_record_with_its_origin() {
    let s = setup("dlq").await;
    let dead = topics::unique_name("dlq-dead");
    topics::create(&s.servers, &dead, 1).await;
    let app = app(
        &s,
        &topics::unique_name("dlq-app"),
        DeserializationErrorPolicy::DeadLetter {
            topic: dead.clone(),
        },
    );
    let out = records::consume(&s.servers, &s.output, VALID, WAIT).await;
    let letters = records::consume(&s.servers, &dead, MALFORMED, WAIT).await;
    let dropped = wait_for_dropped(&app, MALFORMED as u64).await;
    drop(app);
    assert_valid_outputs(&out);
    assert_eq!(dropped, MALFORMED as u64);
    assert_eq!(
        letters.len(),
        MALFORMED,
        "each malformed record dead-lettered once"
    );
    let header = |r: &TestRecord, name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
    };
    let mut origins = BTreeSet::new();
    for r in &letters {
        let value = r.value.as_deref().unwrap();
        assert_eq!(&value[..2], &[0xde, 0xad], "original bytes kept");
        assert_eq!(header(r, headers::TOPIC).as_deref(), Some(s.input.as_str()));
        assert!(header(r, headers::ERROR)
            .unwrap()
            .contains("deserialization failed"));
        origins.insert((
            header(r, headers::PARTITION).unwrap(),
            header(r, headers::OFFSET).unwrap(),
        ));
    }
    assert_eq!(origins.len(), MALFORMED, "distinct source coordinates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_stops_the_app_at_a_malformed_record_with_its_coordinates() {
    let s = setup("fail").await;
    let mut app = app(
        &s,
        &topics::unique_name("fail-app"),
        DeserializationErrorPolicy::Fail,
    );
    {
        let app = &app;
        let awaited = "the app to stop on a malformed record";
        eventually_async(WAIT, awaited, move || async move {
            match app.error() {
                Some(_) => Ok(()),
                None => Err(format!("no error; state {:?}", app.state())),
            }
        })
        .await;
    }
    let error = app.close().expect_err("the thread failed");
    let StreamsError::Deserialization { context, .. } = &error else {
        panic!("expected a deserialization error, got {error:?}");
    };
    assert!(context.contains(&s.input), "{context}");
    assert!(context.contains('@'), "{context}");
    assert!(!app.is_running());
}
