//! A broker outage mid-run: the broker container is stopped and started again while the app
//! is busy; the app keeps retrying its sends and commits, never dies, and once the broker is
//! back every input record, before and after the outage, reaches the output — under
//! exactly-once, exactly once.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use streamtime::serdes::StringSerde;
use streamtime::{
    Consumed, KafkaStreams, ProcessingGuarantee, Produced, StreamsBuilder, StreamsConfig,
};
use streamtime_integration_tests::records::{self, TestRecord};
use streamtime_integration_tests::stoppable::StoppableBroker;
use streamtime_integration_tests::topics;

const PER_BATCH: usize = 20_000;
const WAIT: Duration = Duration::from_secs(240);

fn batch(name: &str) -> Vec<TestRecord> {
    (0..PER_BATCH)
        .map(|i| {
            TestRecord::new(
                &format!("k{}", i % 50),
                format!("{name}-{i}").into_bytes(),
                i as i64,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_resumes_after_the_broker_restarts_and_nothing_is_lost() {
    outage(ProcessingGuarantee::AtLeastOnce, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_exactly_once_an_outage_loses_nothing_and_duplicates_nothing() {
    outage(ProcessingGuarantee::ExactlyOnce, Duration::from_secs(5)).await;
}

/// Killed and down longer than the transaction timeout (10 s), the broker aborts the open
/// transaction once it is back; librdkafka then refuses the app's sends until it aborts too.
/// The app ended with "Erroneous state" there; it aborts, goes on from the last commit, and
/// the output is still exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_exactly_once_a_killed_broker_down_past_the_transaction_timeout_is_survived_exactly()
{
    outage_with(
        ProcessingGuarantee::ExactlyOnce,
        Duration::from_secs(25),
        true,
    )
    .await;
}

async fn outage(guarantee: ProcessingGuarantee, down: Duration) {
    outage_with(guarantee, down, false).await;
}

async fn outage_with(guarantee: ProcessingGuarantee, down: Duration, kill: bool) {
    let eos = guarantee == ProcessingGuarantee::ExactlyOnce;
    // The app's warnings (failed commits and polls during the outage) go to the test output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn,streamtime=info")
        .with_test_writer()
        .try_init();
    let mut broker = tokio::task::spawn_blocking(StoppableBroker::start)
        .await
        .unwrap();
    let servers = broker.bootstrap_servers.clone();
    let (input, output) = (
        topics::unique_name("outage-in"),
        topics::unique_name("outage-out"),
    );
    topics::create(&servers, &input, 2).await;
    topics::create(&servers, &output, 2).await;

    let builder = StreamsBuilder::new();
    builder
        .stream(&input, Consumed::with(StringSerde, StringSerde))
        .map_values(|v: String| v.to_uppercase())
        .to(&output, Produced::default());
    let config = StreamsConfig::new(topics::unique_name("outage-app"), &servers)
        .commit_interval(Duration::from_millis(200))
        .processing_guarantee(guarantee);
    let mut app = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
    app.start().unwrap();

    // The broker goes down while the app is still working through the first batch, so sends
    // and commits are in flight when it does.
    records::produce(&servers, &input, batch("before")).await;
    records::consume(&servers, &output, PER_BATCH / 10, WAIT).await;

    broker = tokio::task::spawn_blocking(move || {
        if kill {
            broker.kill();
        } else {
            broker.stop();
        }
        // Down long enough for commits, polls and heartbeats to fail.
        std::thread::sleep(down);
        broker.start_again();
        broker
    })
    .await
    .unwrap();
    assert!(
        app.error().is_none(),
        "the app died during the outage: {:?}",
        app.error()
    );

    records::produce(&servers, &input, batch("after")).await;
    let want: BTreeSet<String> = ["before", "after"]
        .iter()
        .flat_map(|name| (0..PER_BATCH).map(move |i| format!("{name}-{i}").to_uppercase()))
        .collect();
    let deadline = Instant::now() + WAIT;
    let isolation = if eos {
        "read_committed"
    } else {
        "read_uncommitted"
    };
    let out = records::consume_until(&servers, &output, WAIT, isolation, |seen| {
        // Cheap check first: this runs for every record read.
        if seen.len() < want.len() && Instant::now() < deadline {
            return false;
        }
        let values: BTreeSet<String> = seen
            .iter()
            .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
            .collect();
        values.len() >= want.len() || Instant::now() > deadline
    })
    .await;
    let error = app.error();
    app.close()
        .expect("the app closes cleanly after the outage");
    drop(broker);
    assert!(error.is_none(), "the app failed: {error:?}");
    let got: BTreeSet<String> = out
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    let missing: Vec<&String> = want.difference(&got).take(5).collect();
    assert!(
        missing.is_empty(),
        "{} of {} inputs never reached the output, e.g. {missing:?}",
        want.difference(&got).count(),
        want.len()
    );
    if eos {
        assert_eq!(
            out.len(),
            want.len(),
            "under exactly-once every input appears once in the committed output"
        );
    }
}
