//! Failure paths on a real broker. Error exits commit nothing: a delivery the broker refuses
//! stops an at-least-once app without committing past the lost output; a record that fails or
//! panics after sending stops an exactly-once app with none of its output committed; a static
//! member fenced by a newer instance with its id stops with the error instead of living on.
//! Local state is not trusted past a changelog that was deleted and created again, and an
//! input partition that another producer's open transaction blocks is reported by name.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use streamtime::lifecycle::{State, StreamThreadExceptionResponse};
use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::{
    Consumed, KafkaStreams, Materialized, ProcessResult, ProcessingGuarantee, Processor,
    ProcessorContext, Produced, Record, StreamsBuilder, StreamsConfig, StreamsError,
};
use streamtime_integration_tests::records::{self, TestRecord};
use streamtime_integration_tests::wait::{eventually_async, WAIT};
use streamtime_integration_tests::{bootstrap_servers, topics};

/// Waits until the app stops running by itself (a thread failed); panics after [`WAIT`].
async fn wait_until_stopped(app: &KafkaStreams, what: &str) {
    let awaited = format!("the app to stop after {what}");
    eventually_async(WAIT, &awaited, move || async move {
        if app.is_running() {
            Err(format!(
                "the app still runs; status:\n{}",
                app.status_report()
            ))
        } else {
            Ok(())
        }
    })
    .await;
}

/// Waits until the app runs at least one task.
async fn wait_for_tasks(app: &KafkaStreams) {
    eventually_async(WAIT, "the app to get a task", move || async move {
        if !app.task_status().is_empty() {
            Ok(())
        } else {
            assert!(app.is_running(), "the app stopped: {:?}", app.error());
            Err(format!("no tasks; state {:?}", app.state()))
        }
    })
    .await;
}

fn value_index(r: &TestRecord) -> usize {
    let v = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
    v.strip_prefix('v')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output value {v:?}"))
}

#[tokio::test]
async fn at_least_once_never_commits_past_output_the_broker_refused() {
    const RECORDS: usize = 2_000;
    const TOO_BIG: usize = 1_000;
    let servers = bootstrap_servers();
    let input = topics::unique_name("refused-in");
    let output = topics::unique_name("refused-out");
    topics::create(&servers, &input, 1).await;
    // The broker refuses batches over 500 kB on the output topic; the client allows 1 MB, so
    // the big record is sent and refused asynchronously, as a failed delivery.
    topics::create_with_config(&servers, &output, 1, &[("max.message.bytes", "500000")]).await;
    let big = "x".repeat(800_000);
    let input_records = (0..RECORDS)
        .map(|i| {
            let value = if i == TOO_BIG {
                big.clone()
            } else {
                format!("v{i}")
            };
            TestRecord::new(&format!("k{}", i % 7), value.into_bytes(), 1_000 + i as i64)
        })
        .collect();
    records::produce(&servers, &input, input_records).await;

    let app_id = topics::unique_name("refused-app");
    let builder = StreamsBuilder::new();
    builder
        .stream(&input, Consumed::with(StringSerde, StringSerde))
        .to(&output, Produced::with(StringSerde, StringSerde));
    let config = StreamsConfig::new(&app_id, &servers).commit_interval(Duration::from_millis(100));
    let mut app = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
    app.start().unwrap();
    wait_until_stopped(&app, "a refused delivery").await;
    let error = app.error().expect("the app stopped with an error");
    assert!(
        matches!(&error, StreamsError::Kafka(m) if m.contains("delivery to")),
        "{error}"
    );
    assert!(app.close().is_err(), "close reports the thread's error");

    let written = records::consume_until(
        &servers,
        &output,
        Duration::from_secs(10),
        "read_uncommitted",
        |_| false,
    )
    .await;
    let written: BTreeSet<usize> = written.iter().map(value_index).collect();
    let first_lost = (0..RECORDS)
        .find(|i| !written.contains(i))
        .expect("the big record's output is missing");
    assert!(
        first_lost <= TOO_BIG,
        "output {first_lost} lost, but not the big record's?"
    );
    let committed = topics::committed_offsets(&servers, &app_id, &input).await[0];
    assert!(
        committed.unwrap_or(0) <= first_lost as i64,
        "committed input offset {committed:?} is past the first input whose output was lost ({first_lost})"
    );
}

/// Forwards every record, then fails on "poison" — after its output was sent.
struct ForwardThenFail {
    panic: bool,
}

impl Processor<String, String, String, String> for ForwardThenFail {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<String, String>,
        r: Record<String, String>,
    ) -> ProcessResult {
        let poison = r.value == "poison";
        ctx.forward(r)?;
        if poison && self.panic {
            panic!("cannot digest poison");
        }
        if poison {
            return Err(StreamsError::processing("cannot digest poison"));
        }
        Ok(())
    }
}

/// Runs an exactly-once app over 300 records whose 151st fails after forwarding; returns the
/// app's error and the committed output.
async fn exactly_once_with_a_failing_record(panic: bool) -> (StreamsError, Vec<TestRecord>) {
    let servers = bootstrap_servers();
    let input = topics::unique_name("failing-in");
    let output = topics::unique_name("failing-out");
    topics::create(&servers, &input, 1).await;
    topics::create(&servers, &output, 1).await;
    let input_records = (0..300)
        .map(|i| {
            let value = if i == 150 {
                "poison".to_string()
            } else {
                format!("v{i}")
            };
            TestRecord::new("k", value.into_bytes(), 1_000 + i as i64)
        })
        .collect();
    records::produce(&servers, &input, input_records).await;

    let builder = StreamsBuilder::new();
    builder
        .stream(&input, Consumed::with(StringSerde, StringSerde))
        .process(move || ForwardThenFail { panic })
        .to(&output, Produced::with(StringSerde, StringSerde));
    let config = StreamsConfig::new(topics::unique_name("failing-app"), &servers)
        .processing_guarantee(ProcessingGuarantee::ExactlyOnce);
    let mut app = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
    app.start().unwrap();
    wait_until_stopped(&app, "a failing record").await;
    let error = app.error().expect("the app stopped with an error");
    let _ = app.close();
    assert_eq!(app.state(), State::Error);
    let committed = records::consume_until(
        &servers,
        &output,
        Duration::from_secs(10),
        "read_committed",
        |_| false,
    )
    .await;
    (error, committed)
}

fn assert_no_output_of_the_failing_record(committed: &[TestRecord]) {
    let values: Vec<String> = committed
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect();
    assert!(
        !values.iter().any(|v| v == "poison"),
        "the failing record's output was committed: {} committed records end with {:?}",
        values.len(),
        values.iter().rev().take(3).collect::<Vec<_>>()
    );
    let indices: Vec<usize> = committed.iter().map(value_index).collect();
    let expected: Vec<usize> = (0..indices.len()).collect();
    assert_eq!(
        indices, expected,
        "committed output is a prefix of the input, once each"
    );
}

#[tokio::test]
async fn exactly_once_commits_none_of_the_output_of_a_record_that_fails() {
    let (error, committed) = exactly_once_with_a_failing_record(false).await;
    assert!(
        matches!(&error, StreamsError::Processing { message, .. } if message.contains("poison")),
        "{error}"
    );
    assert_no_output_of_the_failing_record(&committed);
}

#[tokio::test]
async fn a_panicking_processor_stops_the_app_and_commits_none_of_its_output() {
    let (error, committed) = exactly_once_with_a_failing_record(true).await;
    let StreamsError::Processing { context, message } = &error else {
        panic!("expected a processing error, got {error}");
    };
    assert!(
        message.contains("panicked: cannot digest poison"),
        "{message}"
    );
    assert!(context.contains("@150"), "names the record: {context}");
    assert!(
        context.contains("KSTREAM-PROCESSOR"),
        "names the node: {context}"
    );
    assert_no_output_of_the_failing_record(&committed);
}

#[tokio::test]
async fn a_static_member_fenced_by_a_newer_instance_stops_with_the_error() {
    let servers = bootstrap_servers();
    let input = topics::unique_name("fenced-in");
    let output = topics::unique_name("fenced-out");
    topics::create(&servers, &input, 2).await;
    topics::create(&servers, &output, 2).await;
    let app_id = topics::unique_name("fenced-app");
    let start = |dir: &str| {
        let builder = StreamsBuilder::new();
        builder
            .stream(&input, Consumed::with(StringSerde, StringSerde))
            .to(&output, Produced::with(StringSerde, StringSerde));
        let config = StreamsConfig::new(&app_id, &servers)
            .instance_id("one-and-only")
            .state_dir(std::env::temp_dir().join(topics::unique_name(dir)));
        let mut app = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
        app.start().unwrap();
        app
    };
    let mut first = start("fenced-first");
    wait_for_tasks(&first).await;
    let mut second = start("fenced-second");
    wait_until_stopped(&first, "a newer instance took its group.instance.id").await;
    let error = first
        .error()
        .expect("the fenced instance stopped with an error");
    assert!(
        error.to_string().to_lowercase().contains("fenced"),
        "the error says the instance was fenced: {error}"
    );
    let _ = first.close();
    wait_for_tasks(&second).await;
    assert!(
        second.is_running(),
        "the newer instance runs on: {:?}",
        second.error()
    );
    second.close().unwrap();
}

/// A keyed count of `input` into `output`, its store logged to `<app>-counts-changelog`.
fn counting_topology(input: &str, output: &str) -> streamtime::Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(output, Produced::with(StringSerde, I64Serde));
    builder.build().unwrap()
}

fn counting_app(
    servers: &str,
    app_id: &str,
    input: &str,
    output: &str,
    state_dir: &std::path::Path,
) -> KafkaStreams {
    // No record cache: every count goes downstream, so the test can check each one.
    let config = StreamsConfig::new(app_id, servers)
        .commit_interval(Duration::from_millis(100))
        .cache_max_bytes(0)
        .state_dir(state_dir);
    let mut app = KafkaStreams::new(counting_topology(input, output), config).unwrap();
    app.start().unwrap();
    app
}

/// The count values of `output` once one equals `last`.
async fn counts_until(servers: &str, output: &str, last: i64) -> Vec<i64> {
    let out = records::consume_until(servers, output, WAIT, "read_committed", |seen| {
        seen.last().and_then(|r| r.value.as_deref()) == Some(&last.to_be_bytes()[..])
    })
    .await;
    out.iter()
        .map(|r| i64::from_be_bytes(r.value.as_deref().unwrap().try_into().unwrap()))
        .collect()
}

#[tokio::test]
async fn a_checkpoint_beyond_the_end_of_a_recreated_changelog_is_not_trusted() {
    let servers = bootstrap_servers();
    let input = topics::unique_name("recreated-in");
    let output = topics::unique_name("recreated-out");
    topics::create(&servers, &input, 1).await;
    topics::create(&servers, &output, 1).await;
    let app_id = topics::unique_name("recreated-app");
    let state_dir = std::env::temp_dir().join(topics::unique_name("recreated-state"));
    let record = |i: i64| TestRecord::new("k", b"x".to_vec(), 1_000 + i);
    records::produce(&servers, &input, (0..50).map(record).collect()).await;
    let mut app = counting_app(&servers, &app_id, &input, &output, &state_dir);
    let counts = counts_until(&servers, &output, 50).await;
    assert_eq!(counts.last(), Some(&50));
    // A clean close checkpoints the store at the changelog's offset 49.
    app.close().unwrap();

    // The changelog is deleted and created again, empty; local state and offsets stay.
    let changelog = format!("{app_id}-counts-changelog");
    topics::delete(&servers, &[&changelog]).await;
    {
        let (servers, changelog) = (&servers, &changelog);
        let awaited = format!("{changelog} to be created again");
        eventually_async(WAIT, &awaited, move || async move {
            let admin = topics::admin(servers);
            let topic = rdkafka::admin::NewTopic::new(
                changelog,
                1,
                rdkafka::admin::TopicReplication::Fixed(1),
            )
            .set("cleanup.policy", "compact");
            let result = admin
                .create_topics([&topic], &rdkafka::admin::AdminOptions::new())
                .await
                .expect("create_topics");
            match &result[0] {
                Ok(_) => Ok(()),
                Err(e) => Err(format!("cannot recreate {changelog}: {e:?}")),
            }
        })
        .await;
    }

    records::produce(&servers, &input, vec![record(50)]).await;
    let mut app = counting_app(&servers, &app_id, &input, &output, &state_dir);
    // The first run's count 1 must not end the wait: read until the 51st output.
    let out = records::consume_until(&servers, &output, WAIT, "read_committed", |seen| {
        seen.len() > 50
    })
    .await;
    let counts: Vec<i64> = out
        .iter()
        .map(|r| i64::from_be_bytes(r.value.as_deref().unwrap().try_into().unwrap()))
        .collect();
    app.close().unwrap();
    assert_eq!(
        counts[50..],
        [1],
        "after the changelog was recreated, the count starts again from what it holds"
    );
}

/// Fails on "poison" while `fail` is set, forwarding everything else.
struct FailOnPoison {
    fail: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Processor<String, String, String, String> for FailOnPoison {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<String, String>,
        r: Record<String, String>,
    ) -> ProcessResult {
        if r.value == "poison" && self.fail.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(StreamsError::processing("poison, once"));
        }
        ctx.forward(r)
    }
}

fn poison_app(
    servers: &str,
    app_id: &str,
    input: &str,
    output: &str,
    fail: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> KafkaStreams {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(StringSerde, StringSerde))
        .process(move || FailOnPoison { fail: fail.clone() })
        .to(output, Produced::with(StringSerde, StringSerde));
    let config = StreamsConfig::new(app_id, servers)
        .commit_interval(Duration::from_millis(100))
        .state_dir(std::env::temp_dir().join(topics::unique_name("poison-state")));
    KafkaStreams::new(builder.build().unwrap(), config).unwrap()
}

#[tokio::test]
async fn a_failed_thread_is_replaced_when_the_handler_says_so_and_states_follow() {
    let servers = bootstrap_servers();
    let input = topics::unique_name("replace-in");
    let output = topics::unique_name("replace-out");
    topics::create(&servers, &input, 1).await;
    topics::create(&servers, &output, 1).await;
    let fail = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut app = poison_app(
        &servers,
        &topics::unique_name("replace-app"),
        &input,
        &output,
        fail.clone(),
    );
    let changes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = changes.clone();
    app.set_state_listener(move |new, old| log.lock().unwrap().push((old, new)))
        .unwrap();
    app.set_uncaught_exception_handler(|_| StreamThreadExceptionResponse::ReplaceThread)
        .unwrap();
    assert_eq!(app.state(), State::Created);
    app.start().unwrap();
    let values = |i: usize| {
        if i == 50 {
            "poison".to_string()
        } else {
            format!("v{i}")
        }
    };
    records::produce(
        &servers,
        &input,
        (0..100)
            .map(|i| TestRecord::new("k", values(i).into_bytes(), 1_000 + i as i64))
            .collect(),
    )
    .await;
    let out = records::consume_until(&servers, &output, WAIT, "read_uncommitted", |seen| {
        let seen: BTreeSet<Vec<u8>> = seen.iter().filter_map(|r| r.value.clone()).collect();
        (0..100).all(|i| seen.contains(values(i).as_bytes()))
    })
    .await;
    let seen: BTreeSet<Vec<u8>> = out.iter().filter_map(|r| r.value.clone()).collect();
    assert!(
        (0..100).all(|i| seen.contains(values(i).as_bytes())),
        "every record came out after the thread was replaced; {} distinct of 100",
        seen.len()
    );
    assert!(
        !fail.load(std::sync::atomic::Ordering::SeqCst),
        "the processor failed once"
    );
    {
        let app = &app;
        eventually_async(WAIT, "the app to run again", move || async move {
            match app.state() {
                State::Running => Ok(()),
                state => Err(format!("state {state:?}")),
            }
        })
        .await;
    }
    assert!(app.error().is_none(), "{:?}", app.error());
    app.close().unwrap();
    assert_eq!(app.state(), State::NotRunning);
    let changes = changes.lock().unwrap().clone();
    use State::*;
    assert_eq!(
        changes.first(),
        Some(&(Created, Rebalancing)),
        "{changes:?}"
    );
    assert!(changes.contains(&(Rebalancing, Running)), "{changes:?}");
    assert!(
        changes.ends_with(&[(Running, PendingShutdown), (PendingShutdown, NotRunning)]),
        "{changes:?}"
    );
    assert!(
        changes
            .iter()
            .filter(|c| **c == (Rebalancing, Running))
            .count()
            >= 2,
        "the replaced thread rebalanced and ran again: {changes:?}"
    );
}

#[tokio::test]
async fn shutdown_application_stops_every_instance() {
    let servers = bootstrap_servers();
    let input = topics::unique_name("stopall-in");
    let output = topics::unique_name("stopall-out");
    topics::create(&servers, &input, 2).await;
    topics::create(&servers, &output, 2).await;
    let app_id = topics::unique_name("stopall-app");
    // One flag for both: the poison fails once, in whichever instance takes it first; the
    // other can then only stop because it was asked to.
    let fail = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut apps: Vec<KafkaStreams> = (0..2)
        .map(|_| {
            let mut app = poison_app(&servers, &app_id, &input, &output, fail.clone());
            app.set_uncaught_exception_handler(|_| {
                StreamThreadExceptionResponse::ShutdownApplication
            })
            .unwrap();
            app.start().unwrap();
            app
        })
        .collect();
    {
        let apps = &apps;
        eventually_async(WAIT, "both instances to run tasks", move || async move {
            if apps
                .iter()
                .all(|a| a.state() == State::Running && !a.task_status().is_empty())
            {
                Ok(())
            } else {
                Err(format!(
                    "states {:?}",
                    apps.iter().map(|a| a.state()).collect::<Vec<_>>()
                ))
            }
        })
        .await;
    }
    // One poison record, on partition 0: only its owner fails.
    let mut poison = TestRecord::new("k", b"poison".to_vec(), 1_000);
    poison.partition = Some(0);
    records::produce(&servers, &input, vec![poison]).await;
    for app in &apps {
        wait_until_stopped(app, "the application was asked to shut down").await;
    }
    for app in &mut apps {
        let _ = app.close();
        assert_eq!(app.state(), State::Error);
        assert!(app.error().is_some());
    }
    let errors: Vec<String> = apps
        .iter()
        .map(|a| a.error().unwrap().to_string())
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("poison, once"))
            && errors
                .iter()
                .any(|e| e.contains("asked every instance to shut down")),
        "one failed, the other was asked to stop: {errors:?}"
    );
}

/// Forwards every record; on "slow" it first stalls the thread once, for longer than the
/// transaction timeout.
struct StallOnce {
    stall: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Processor<String, String, String, String> for StallOnce {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<String, String>,
        r: Record<String, String>,
    ) -> ProcessResult {
        if r.value == "v100" && self.stall.swap(false, std::sync::atomic::Ordering::SeqCst) {
            // The broker aborts a transaction open longer than `transaction.timeout.ms`
            // (10 s here), checking every 10 s: 25 s is past both.
            std::thread::sleep(Duration::from_secs(25));
        }
        ctx.forward(r)
    }
}

#[tokio::test]
async fn a_producer_fenced_after_its_transaction_timed_out_migrates_its_tasks_and_output_stays_exact(
) {
    const RECORDS: usize = 300;
    let servers = bootstrap_servers();
    let input = topics::unique_name("fencedtx-in");
    let output = topics::unique_name("fencedtx-out");
    topics::create(&servers, &input, 1).await;
    topics::create(&servers, &output, 1).await;
    records::produce(
        &servers,
        &input,
        (0..RECORDS)
            .map(|i| TestRecord::new("k", format!("v{i}").into_bytes(), 1_000 + i as i64))
            .collect(),
    )
    .await;
    let stall = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let processor_stall = stall.clone();
    let builder = StreamsBuilder::new();
    builder
        .stream(&input, Consumed::with(StringSerde, StringSerde))
        .process(move || StallOnce {
            stall: processor_stall.clone(),
        })
        .to(&output, Produced::with(StringSerde, StringSerde));
    let config = StreamsConfig::new(topics::unique_name("fencedtx-app"), &servers)
        .processing_guarantee(ProcessingGuarantee::ExactlyOnce)
        // The thread stalls for 25 s; the consumer must stay in the group meanwhile.
        .consumer_config("max.poll.interval.ms", "120000");
    let mut app = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
    app.start().unwrap();
    let out = records::consume_until(
        &servers,
        &output,
        Duration::from_secs(240),
        "read_committed",
        |seen| seen.len() >= RECORDS,
    )
    .await;
    assert!(
        !stall.load(std::sync::atomic::Ordering::SeqCst),
        "the thread stalled once"
    );
    assert!(
        app.is_running(),
        "the app survived the fencing: {:?}",
        app.error()
    );
    app.close().unwrap();
    let indices: Vec<usize> = out.iter().map(value_index).collect();
    assert_eq!(
        indices,
        (0..RECORDS).collect::<Vec<_>>(),
        "every record committed exactly once, in order"
    );
}

/// A restore event: kind, store, an offset (-1: none) and a count or end offset.
type RestoreEvent = (&'static str, String, i64, u64);

/// The restore events heard so far.
#[derive(Default, Clone)]
struct RecordedRestores(std::sync::Arc<std::sync::Mutex<Vec<RestoreEvent>>>);

impl RecordedRestores {
    /// Waits until an event of `kind` (`start`, `batch` or `end`) was heard.
    async fn wait_for(&self, kind: &'static str, what: &str) {
        let events = &self.0;
        eventually_async(WAIT, what, move || async move {
            let heard = events.lock().unwrap();
            if heard.iter().any(|e| e.0 == kind) {
                Ok(())
            } else {
                Err(format!(
                    "{} events, the last {:?}",
                    heard.len(),
                    heard.last()
                ))
            }
        })
        .await
    }
}

impl streamtime::lifecycle::StateRestoreListener for RecordedRestores {
    fn on_restore_start(&self, _: &streamtime::TopicPartition, store: &str, start: i64, end: i64) {
        self.0
            .lock()
            .unwrap()
            .push(("start", store.to_string(), start, end as u64));
    }
    fn on_batch_restored(&self, _: &streamtime::TopicPartition, store: &str, end: i64, n: u64) {
        self.0
            .lock()
            .unwrap()
            .push(("batch", store.to_string(), end, n));
    }
    fn on_restore_end(&self, _: &streamtime::TopicPartition, store: &str, total: u64) {
        self.0
            .lock()
            .unwrap()
            .push(("end", store.to_string(), -1, total));
    }
}

#[tokio::test]
async fn a_restore_listener_hears_the_start_batches_and_end_of_a_restore() {
    let servers = bootstrap_servers();
    let input = topics::unique_name("listened-in");
    let output = topics::unique_name("listened-out");
    topics::create(&servers, &input, 1).await;
    topics::create(&servers, &output, 1).await;
    let app_id = topics::unique_name("listened-app");
    let first_dir = std::env::temp_dir().join(topics::unique_name("listened-state"));
    records::produce(
        &servers,
        &input,
        (0..40)
            .map(|i| TestRecord::new(&format!("k{i}"), b"x".to_vec(), 1_000 + i))
            .collect(),
    )
    .await;
    let mut app = counting_app(&servers, &app_id, &input, &output, &first_dir);
    records::consume(&servers, &output, 40, WAIT).await;
    app.close().unwrap();

    // A new state directory: the 40 changelog records are restored.
    let config = StreamsConfig::new(&app_id, &servers)
        .state_dir(std::env::temp_dir().join(topics::unique_name("listened-state")));
    let mut app = KafkaStreams::new(counting_topology(&input, &output), config).unwrap();
    let events = RecordedRestores::default();
    app.set_global_state_restore_listener(events.clone())
        .unwrap();
    app.start().unwrap();
    events.wait_for("end", "the restore to end").await;
    app.close().unwrap();
    let events = events.0.lock().unwrap().clone();
    assert_eq!(
        events.first(),
        Some(&("start", "counts".to_string(), 0, 40)),
        "{events:?}"
    );
    let batched: u64 = events.iter().filter(|e| e.0 == "batch").map(|e| e.3).sum();
    assert_eq!(batched, 40, "{events:?}");
    assert_eq!(
        events.last(),
        Some(&("end", "counts".to_string(), -1, 40)),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_restore_under_exactly_once_waits_for_an_open_transaction_and_misses_nothing_after_it() {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let servers = bootstrap_servers();
    let input = topics::unique_name("opentx-in");
    let output = topics::unique_name("opentx-out");
    topics::create(&servers, &input, 1).await;
    topics::create(&servers, &output, 1).await;
    let app_id = topics::unique_name("opentx-app");
    let start = || {
        let config = StreamsConfig::new(&app_id, &servers)
            .processing_guarantee(ProcessingGuarantee::ExactlyOnce)
            .state_dir(std::env::temp_dir().join(topics::unique_name("opentx-state")));
        let mut app = KafkaStreams::new(counting_topology(&input, &output), config).unwrap();
        app.start().unwrap();
        app
    };
    let record = |i: i64| TestRecord::new("k", b"x".to_vec(), 1_000 + i);
    let mut app = start();
    records::produce(&servers, &input, (0..10).map(record).collect()).await;
    counts_until(&servers, &output, 10).await;

    // A crashed owner's transaction stays open on the changelog (until the broker aborts it
    // after 30 s) while the running app commits more changes after it.
    let crashed: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .set("transactional.id", topics::unique_name("crashed-owner"))
        .set("transaction.timeout.ms", "30000")
        .create()
        .unwrap();
    crashed.init_transactions(Duration::from_secs(30)).unwrap();
    crashed.begin_transaction().unwrap();
    let changelog = format!("{app_id}-counts-changelog");
    crashed
        .send(
            BaseRecord::<str, [u8]>::to(&changelog)
                .partition(0)
                .key("junk")
                .payload(&b"junk"[..]),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    crashed.flush(Duration::from_secs(30)).unwrap();
    records::produce(&servers, &input, (10..15).map(record).collect()).await;
    counts_until(&servers, &output, 15).await;
    app.close().unwrap();

    // A new instance with empty local state restores the whole changelog: the changes
    // committed after the open transaction began are in it once the transaction is aborted.
    let mut app = start();
    records::produce(&servers, &input, vec![record(15)]).await;
    let counts = counts_until(&servers, &output, 16).await;
    app.close().unwrap();
    drop(crashed);
    assert_eq!(
        counts.last(),
        Some(&16),
        "the restored count went on from 15: {counts:?}"
    );
}

#[tokio::test]
async fn shutdown_during_a_restore_stops_it_and_the_next_start_goes_on_from_what_was_restored() {
    const CHANGELOG_RECORDS: usize = 1_000_000;
    let servers = bootstrap_servers();
    let input = topics::unique_name("midrestore-in");
    let output = topics::unique_name("midrestore-out");
    topics::create(&servers, &input, 1).await;
    topics::create(&servers, &output, 1).await;
    let app_id = topics::unique_name("midrestore-app");
    write_counts_changelog(&servers, &app_id, 1, CHANGELOG_RECORDS).await;

    let state_dir = std::env::temp_dir().join(topics::unique_name("midrestore-state"));
    let start = |events: &RecordedRestores| {
        let config = StreamsConfig::new(&app_id, &servers).state_dir(&state_dir);
        let mut app = KafkaStreams::new(counting_topology(&input, &output), config).unwrap();
        app.set_global_state_restore_listener(events.clone())
            .unwrap();
        app.start().unwrap();
        app
    };
    let first = RecordedRestores::default();
    let mut app = start(&first);
    first.wait_for("batch", "the restore to start").await;
    // Shut down mid-restore, at a point the listener verified.
    app.close().unwrap();
    let heard = first.0.lock().unwrap().clone();
    let restored: u64 = heard.iter().filter(|e| e.0 == "batch").map(|e| e.3).sum();
    assert!(
        !heard.iter().any(|e| e.0 == "end"),
        "close stopped the restore before its end ({restored} of {CHANGELOG_RECORDS} restored)"
    );

    let second = RecordedRestores::default();
    let mut app = start(&second);
    second.wait_for("end", "the second restore to end").await;
    app.close().unwrap();
    let heard = second.0.lock().unwrap().clone();
    let resumed_at = heard.iter().find(|e| e.0 == "start").map(|e| e.2);
    assert_eq!(
        resumed_at,
        Some(restored as i64),
        "the second start restores from where the first stopped"
    );
    let total: u64 = heard.iter().filter(|e| e.0 == "batch").map(|e| e.3).sum();
    assert_eq!(
        total + restored,
        CHANGELOG_RECORDS as u64,
        "nothing read twice, nothing missed"
    );
}

#[tokio::test]
async fn an_input_partition_blocked_by_an_open_transaction_is_reported_and_resumes_when_it_ends() {
    use rdkafka::producer::{BaseRecord, Producer};
    let servers = bootstrap_servers();
    let input = topics::unique_name("hanging-in");
    let output = topics::unique_name("hanging-out");
    topics::create(&servers, &input, 1).await;
    topics::create(&servers, &output, 1).await;
    let builder = StreamsBuilder::new();
    builder
        .stream(&input, Consumed::with(StringSerde, StringSerde))
        .to(&output, Produced::with(StringSerde, StringSerde));
    let config = StreamsConfig::new(topics::unique_name("hanging-app"), &servers)
        .processing_guarantee(ProcessingGuarantee::ExactlyOnce)
        .stall_warning_after(Some(Duration::from_secs(2)))
        .state_dir(std::env::temp_dir().join(topics::unique_name("hanging-state")));
    let mut app = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
    app.start().unwrap();
    let record = |i: usize| TestRecord::new("k", format!("v{i}").into_bytes(), 1_000 + i as i64);
    records::produce(&servers, &input, (0..10).map(record).collect()).await;
    records::consume(&servers, &output, 10, WAIT).await;

    // Another producer's transaction stays open on the input, with records after it.
    let hanging: rdkafka::producer::BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .set("transactional.id", topics::unique_name("hanging-producer"))
        .set("transaction.timeout.ms", "300000")
        .create()
        .unwrap();
    hanging.init_transactions(Duration::from_secs(30)).unwrap();
    hanging.begin_transaction().unwrap();
    hanging
        .send(
            BaseRecord::to(&input)
                .key("k")
                .payload("in the open transaction"),
        )
        .unwrap();
    hanging.flush(Duration::from_secs(30)).unwrap();
    records::produce(&servers, &input, (10..20).map(record).collect()).await;

    let partition = format!("{input}-0");
    let blocked = {
        let (app, partition) = (&app, &partition);
        let awaited = format!("{partition} to be reported blocked");
        eventually_async(WAIT, &awaited, move || async move {
            let blocked = app
                .task_status()
                .iter()
                .flat_map(|t| t.partitions.clone())
                .find(|p| p.partition.to_string() == *partition)
                .and_then(|p| p.blocked_by_open_transaction);
            blocked.ok_or_else(|| format!("not reported; status:\n{}", app.status_report()))
        })
        .await
    };
    assert!(blocked >= Duration::from_secs(2), "{blocked:?}");
    assert!(
        app.status_report()
            .contains("BLOCKED by an open transaction"),
        "{}",
        app.status_report()
    );

    hanging.abort_transaction(Duration::from_secs(30)).unwrap();
    let out = records::consume(&servers, &output, 20, WAIT).await;
    let values: Vec<usize> = out.iter().map(value_index).collect();
    assert_eq!(
        values,
        (0..20).collect::<Vec<_>>(),
        "everything but the aborted record, in order"
    );
    {
        let app = &app;
        eventually_async(WAIT, "no partition reported blocked", move || async move {
            let blocked = app
                .task_status()
                .iter()
                .flat_map(|t| t.partitions.clone())
                .any(|p| p.blocked_by_open_transaction.is_some());
            if blocked {
                Err(format!("still reported; status:\n{}", app.status_report()))
            } else {
                Ok(())
            }
        })
        .await;
    }
    app.close().unwrap();
}

/// Writes `records` entries (`key-<i>` → i) straight into partition 0 of the `counts`
/// changelog of `app_id` (with `partitions` partitions): a long restore for task 0_0 of the
/// counting topology.
async fn write_counts_changelog(servers: &str, app_id: &str, partitions: i32, records: usize) {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let changelog = format!("{app_id}-counts-changelog");
    topics::create_with_config(
        servers,
        &changelog,
        partitions,
        &[("cleanup.policy", "compact")],
    )
    .await;
    let producer: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    for i in 0..records {
        let key = format!("key-{i}");
        let value = (i as i64).to_be_bytes();
        let mut record = BaseRecord::<str, [u8]>::to(&changelog)
            .partition(0)
            .key(key.as_str())
            .payload(&value[..]);
        while let Err((_, back)) = producer.send(record) {
            record = back;
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
}

/// Records restore events, sleeping 100 ms on each batch: a restore slower than the
/// consumer's `max.poll.interval.ms`.
#[derive(Clone, Default)]
struct SlowRestores(RecordedRestores);

impl streamtime::lifecycle::StateRestoreListener for SlowRestores {
    fn on_restore_start(&self, tp: &streamtime::TopicPartition, store: &str, start: i64, end: i64) {
        self.0.on_restore_start(tp, store, start, end);
    }
    fn on_batch_restored(&self, tp: &streamtime::TopicPartition, store: &str, end: i64, n: u64) {
        std::thread::sleep(Duration::from_millis(100));
        self.0.on_batch_restored(tp, store, end, n);
    }
    fn on_restore_end(&self, tp: &streamtime::TopicPartition, store: &str, total: u64) {
        self.0.on_restore_end(tp, store, total);
    }
}

#[tokio::test]
async fn a_restore_longer_than_the_poll_interval_keeps_the_member_in_its_group() {
    const CHANGELOG_RECORDS: usize = 200_000;
    let servers = bootstrap_servers();
    let input = topics::unique_name("longrestore-in");
    let output = topics::unique_name("longrestore-out");
    topics::create(&servers, &input, 1).await;
    topics::create(&servers, &output, 1).await;
    let app_id = topics::unique_name("longrestore-app");
    write_counts_changelog(&servers, &app_id, 1, CHANGELOG_RECORDS).await;
    let config = StreamsConfig::new(&app_id, &servers)
        .state_dir(std::env::temp_dir().join(topics::unique_name("longrestore-state")))
        .commit_interval(Duration::from_millis(100))
        // The broker's smallest session timeout; a member that does not poll for this long
        // leaves its group.
        .consumer_config("session.timeout.ms", "6000")
        .consumer_config("max.poll.interval.ms", "6000");
    let mut app = KafkaStreams::new(counting_topology(&input, &output), config).unwrap();
    let events = SlowRestores::default();
    app.set_global_state_restore_listener(events.clone())
        .unwrap();
    let changes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = changes.clone();
    app.set_state_listener(move |new, old| log.lock().unwrap().push((old, new)))
        .unwrap();
    let started = Instant::now();
    app.start().unwrap();
    {
        let app = &app;
        eventually_async(WAIT, "the app to run", move || async move {
            match app.state() {
                State::Running => Ok(()),
                state => {
                    assert!(app.error().is_none(), "{:?}", app.error());
                    Err(format!("not running: {state:?}"))
                }
            }
        })
        .await;
    }
    let restoring = started.elapsed();
    records::produce(
        &servers,
        &input,
        vec![TestRecord::new("fresh", b"x".to_vec(), 1_000)],
    )
    .await;
    let counts = counts_until(&servers, &output, 1).await;
    app.close().unwrap();
    assert_eq!(counts, [1], "the app processes after the restore");
    assert!(
        restoring > Duration::from_secs(8),
        "the restore outlasted max.poll.interval.ms: {restoring:?}"
    );
    let heard = events.0 .0.lock().unwrap().clone();
    let starts = heard.iter().filter(|e| e.0 == "start").count();
    assert_eq!(
        starts, 1,
        "restored once, not again after losing the partitions"
    );
    let changes = changes.lock().unwrap().clone();
    use State::*;
    assert_eq!(
        changes
            .iter()
            .filter(|c| **c == (Running, Rebalancing))
            .count(),
        0,
        "no rebalance after the restore: {changes:?}"
    );
}

#[tokio::test]
async fn a_rebalance_during_a_restore_stops_it_within_a_batch_and_the_restore_goes_on_from_there() {
    const CHANGELOG_RECORDS: usize = 100_000;
    let servers = bootstrap_servers();
    let input = topics::unique_name("rebalrestore-in");
    let output = topics::unique_name("rebalrestore-out");
    topics::create(&servers, &input, 2).await;
    topics::create(&servers, &output, 2).await;
    let app_id = topics::unique_name("rebalrestore-app");
    // Task 0_0 has a long changelog (partition 0), task 0_1 an empty one.
    write_counts_changelog(&servers, &app_id, 2, CHANGELOG_RECORDS).await;
    let start = |name: &str, events: &SlowRestores| {
        let state_dir = std::env::temp_dir().join(topics::unique_name(name));
        let config = StreamsConfig::new(&app_id, &servers)
            .state_dir(state_dir)
            .consumer_config("session.timeout.ms", "6000")
            .consumer_config("max.poll.interval.ms", "6000");
        let mut app = KafkaStreams::new(counting_topology(&input, &output), config).unwrap();
        app.set_global_state_restore_listener(events.clone())
            .unwrap();
        app.start().unwrap();
        app
    };
    let first = SlowRestores::default();
    let mut a = start("rebalrestore-a", &first);
    first.0.wait_for("batch", "a's restore to start").await;
    // A second instance joins while the first restores: the group rebalances.
    let second = SlowRestores::default();
    let mut b = start("rebalrestore-b", &second);
    let ended = |events: &SlowRestores| events.0 .0.lock().unwrap().iter().any(|e| e.0 == "end");
    {
        let (first, second) = (&first, &second);
        eventually_async(WAIT, "a restore to end", move || async move {
            if ended(first) || ended(second) {
                Ok(())
            } else {
                let heard = |events: &SlowRestores| events.0 .0.lock().unwrap().len();
                Err(format!(
                    "no restore end; a heard {} events, b {}",
                    heard(first),
                    heard(second)
                ))
            }
        })
        .await;
    }
    a.close().unwrap();
    b.close().unwrap();
    let a_heard = first.0 .0.lock().unwrap().clone();
    let position = |what: &str, nth: usize| {
        a_heard
            .iter()
            .enumerate()
            .filter(|(_, e)| e.0 == what)
            .nth(nth)
            .map(|(i, _)| i)
    };
    let stopped = match (position("end", 0), position("start", 1)) {
        (None, _) => true,
        (Some(end), Some(restart)) => restart < end,
        (Some(_), None) => false,
    };
    assert!(
        stopped,
        "the rebalance stopped a's restore before its end: {:?}",
        a_heard
            .iter()
            .filter(|e| e.0 != "batch")
            .collect::<Vec<_>>()
    );
    if let Some(restart) = position("start", 1) {
        let before: u64 = a_heard[..restart]
            .iter()
            .filter(|e| e.0 == "batch")
            .map(|e| e.3)
            .sum();
        assert_eq!(
            a_heard[restart].2, before as i64,
            "a's restore went on from what it had restored"
        );
    }
    // The instance that finished restored the rest, nothing twice.
    let finisher = if ended(&first) { &first } else { &second };
    let heard = finisher.0 .0.lock().unwrap().clone();
    let last_start = heard
        .iter()
        .rev()
        .find(|e| e.0 == "start")
        .map(|e| e.2)
        .unwrap();
    let after: u64 = heard
        .iter()
        .skip_while(|e| !(e.0 == "start" && e.2 == last_start))
        .filter(|e| e.0 == "batch")
        .map(|e| e.3)
        .sum();
    assert_eq!(
        last_start as u64 + after,
        CHANGELOG_RECORDS as u64,
        "the last restore read the rest of the changelog, nothing twice"
    );
}
