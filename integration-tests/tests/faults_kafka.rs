//! Injected faults on a real broker (`streamtime::faults`): a send the producer refuses, a
//! send refused because the transaction failed, a store that cannot write out, a processor that panics at a chosen record, a transaction
//! commit that fails and whose abort fails too. Under exactly-once the failing thread
//! commits nothing and its replacement gives every count exactly once; a flush that times
//! out under at-least-once only postpones the commit.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use streamtime::faults::{FaultAction, FaultPlan, FaultPoint};
use streamtime::lifecycle::StreamThreadExceptionResponse;
use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::{
    Consumed, KafkaStreams, Materialized, ProcessingGuarantee, Produced, StreamsBuilder,
    StreamsConfig,
};
use streamtime_integration_tests::records::{self, TestRecord};
use streamtime_integration_tests::wait::{eventually_async, WAIT};
use streamtime_integration_tests::{bootstrap_servers, topics};

const KEYS: usize = 20;
const ROUNDS: usize = 4;
const PER_ROUND: usize = 25;
const PER_KEY: usize = ROUNDS * PER_ROUND;

/// What a run of the counting app with faults gave.
struct Run {
    /// Count values per key, in output order (read_committed).
    counts: BTreeMap<String, Vec<i64>>,
    /// The errors the uncaught-error handler saw.
    errors: Vec<String>,
}

/// Counts 2 000 records over 20 keys (2 partitions), in 4 rounds, with `plan` injected; a
/// thread that fails is replaced.
async fn count_with(prefix: &str, guarantee: ProcessingGuarantee, plan: FaultPlan) -> Run {
    let servers = bootstrap_servers();
    let input = topics::unique_name(&format!("{prefix}-in"));
    let output = topics::unique_name(&format!("{prefix}-out"));
    topics::create(&servers, &input, 2).await;
    topics::create(&servers, &output, 2).await;
    let builder = StreamsBuilder::new();
    builder
        .stream(&input, Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(&output, Produced::with(StringSerde, I64Serde));
    let state_dir = std::env::temp_dir().join(topics::unique_name(&format!("{prefix}-state")));
    let app_id = topics::unique_name(&format!("{prefix}-app"));
    // No record cache: every count goes downstream, so the test can check each one.
    let config = StreamsConfig::new(&app_id, &servers)
        .processing_guarantee(guarantee)
        .commit_interval(Duration::from_millis(100))
        .cache_max_bytes(0)
        .state_dir(&state_dir)
        .fault_injection(plan);
    let mut app = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    app.set_uncaught_exception_handler(move |e| {
        seen.lock().unwrap().push(e.to_string());
        StreamThreadExceptionResponse::ReplaceThread
    })
    .unwrap();
    app.start().unwrap();
    // Rounds, each committed before the next is produced: every run has at least one
    // commit with progress per round, so a fault at the n-th commit (n ≤ ROUNDS) fires.
    let group = app_id.clone();
    for round in 0..ROUNDS {
        let records: Vec<TestRecord> = (0..KEYS * PER_ROUND)
            .map(|i| {
                let seq = round * KEYS * PER_ROUND + i;
                TestRecord::new(&format!("k{}", i % KEYS), b"x".to_vec(), 1_000 + seq as i64)
            })
            .collect();
        records::produce(&servers, &input, records).await;
        let consumed = ((round + 1) * KEYS * PER_ROUND) as i64;
        let (servers, group, input, errors) = (&servers, &group, &input, &errors);
        eventually_async(
            WAIT,
            &format!("round {round}: {consumed} input records committed"),
            move || async move {
                let committed: i64 = topics::committed_offsets(servers, group, input)
                    .await
                    .into_iter()
                    .map(|o| o.unwrap_or(0))
                    .sum();
                if committed >= consumed {
                    Ok(())
                } else {
                    Err(format!(
                        "{committed} of {consumed} input records committed; errors: {:?}",
                        errors.lock().unwrap()
                    ))
                }
            },
        )
        .await;
    }
    let done = |out: &[TestRecord]| {
        let last = (PER_KEY as i64).to_be_bytes();
        let finished: std::collections::BTreeSet<String> = out
            .iter()
            .filter(|r| r.value.as_deref() == Some(&last[..]))
            .map(TestRecord::key_str)
            .collect();
        finished.len() == KEYS
    };
    let out = records::consume_until(&servers, &output, WAIT, "read_committed", done).await;
    app.close().unwrap();
    let _ = std::fs::remove_dir_all(&state_dir);
    let mut counts: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in &out {
        let n = i64::from_be_bytes(r.value.as_deref().unwrap().try_into().unwrap());
        counts.entry(r.key_str()).or_default().push(n);
    }
    let errors = errors.lock().unwrap().clone();
    Run { counts, errors }
}

/// Every key counted 1, 2, … 100 exactly once, in order.
fn assert_exact(run: &Run) {
    assert_eq!(run.counts.len(), KEYS, "every key has counts");
    let expected: Vec<i64> = (1..=PER_KEY as i64).collect();
    for (key, counts) in &run.counts {
        assert_eq!(
            counts, &expected,
            "{key}: every count exactly once, in order"
        );
    }
}

/// The handler saw exactly one error, and it says `what`.
fn assert_one_error(run: &Run, what: &str) {
    assert_eq!(run.errors.len(), 1, "one thread failed: {:?}", run.errors);
    assert!(
        run.errors[0].contains(what),
        "the error says {what:?}: {}",
        run.errors[0]
    );
}

#[tokio::test]
async fn under_exactly_once_a_send_the_producer_refuses_commits_nothing_and_the_replacement_counts_exactly(
) {
    let plan = FaultPlan::new().at(FaultPoint::Send, 700, FaultAction::Fail);
    let run = count_with("fault-send", ProcessingGuarantee::ExactlyOnce, plan).await;
    assert_one_error(&run, "injected fault at Send");
    assert_exact(&run);
}

#[tokio::test]
async fn under_exactly_once_a_send_refused_by_a_failed_transaction_aborts_it_and_counts_exactly() {
    // Before: the thread ended with "Erroneous state" (seen after broker outages longer than
    // the transaction timeout). Now the transaction is aborted, the tasks go on from the last
    // commit, and no thread fails.
    let plan = FaultPlan::new().at(FaultPoint::SendInFailedTransaction, 700, FaultAction::Fail);
    let run = count_with("fault-txn-send", ProcessingGuarantee::ExactlyOnce, plan).await;
    assert!(run.errors.is_empty(), "no thread failed: {:?}", run.errors);
    assert_exact(&run);
}

#[tokio::test]
async fn under_exactly_once_a_store_that_cannot_write_out_commits_nothing_and_the_replacement_counts_exactly(
) {
    let plan = FaultPlan::new().at(FaultPoint::StoreFlush, 3, FaultAction::Fail);
    let run = count_with("fault-store", ProcessingGuarantee::ExactlyOnce, plan).await;
    assert_one_error(&run, "injected fault at StoreFlush");
    assert_exact(&run);
}

#[tokio::test]
async fn under_exactly_once_a_panic_at_a_chosen_record_commits_nothing_and_the_replacement_counts_exactly(
) {
    let plan = FaultPlan::new().at(FaultPoint::Process, 900, FaultAction::Panic);
    let run = count_with("fault-panic", ProcessingGuarantee::ExactlyOnce, plan).await;
    assert_one_error(&run, "injected panic at Process, pass 900");
    assert_exact(&run);
}

#[tokio::test]
async fn a_transaction_commit_that_fails_with_an_abort_that_fails_too_leaves_nothing_visible() {
    let plan = FaultPlan::new()
        .at(FaultPoint::CommitTransaction, 3, FaultAction::Fail)
        .at(FaultPoint::AbortTransaction, 1, FaultAction::Fail);
    let run = count_with("fault-txn", ProcessingGuarantee::ExactlyOnce, plan).await;
    assert_one_error(&run, "transaction failed");
    assert_exact(&run);
}

#[tokio::test]
async fn under_at_least_once_a_flush_that_times_out_postpones_the_commit_and_loses_nothing() {
    let plan = FaultPlan::new()
        .at(FaultPoint::Flush, 2, FaultAction::Fail)
        .at(FaultPoint::CommitOffsets, 4, FaultAction::Fail);
    let run = count_with("fault-flush", ProcessingGuarantee::AtLeastOnce, plan).await;
    assert!(
        run.errors.is_empty(),
        "a postponed commit fails no thread: {:?}",
        run.errors
    );
    // Nothing was processed twice: no thread failed, so no input was replayed.
    assert_exact(&run);
}

#[tokio::test]
async fn a_global_store_that_cannot_be_written_stops_the_instance_with_the_error() {
    let servers = bootstrap_servers();
    let countries = topics::unique_name("fault-global-countries");
    let logins = topics::unique_name("fault-global-logins");
    topics::create(&servers, &countries, 2).await;
    topics::create(&servers, &logins, 2).await;
    let row = |i: usize| TestRecord::new(&format!("c{i}"), format!("country {i}").into_bytes(), 1);
    records::produce(&servers, &countries, (0..10).map(row).collect()).await;
    let builder = StreamsBuilder::new();
    let table = builder.global_table(
        &countries,
        Consumed::with(StringSerde, StringSerde),
        Materialized::as_("countries"),
    );
    builder
        .stream(&logins, Consumed::with(StringSerde, StringSerde))
        .join_global(
            &table,
            |_k, v: &String| v.clone(),
            |l: &String, c: &String| format!("{l} from {c}"),
        )
        .to(&logins, Produced::with(StringSerde, StringSerde));
    let state_dir = std::env::temp_dir().join(topics::unique_name("fault-global-state"));
    // The fill applies its 10 rows unchecked; the 3rd row the global thread follows fails.
    let plan = FaultPlan::new().at(FaultPoint::GlobalApply, 3, FaultAction::Fail);
    let config = StreamsConfig::new(topics::unique_name("fault-global-app"), &servers)
        .state_dir(&state_dir)
        .fault_injection(plan);
    let mut app = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
    app.start().unwrap();
    records::produce(&servers, &countries, (10..20).map(row).collect()).await;
    let app_ref = &app;
    eventually_async(
        WAIT,
        "the instance to stop on the global error",
        || async move {
            match app_ref.state() {
                streamtime::lifecycle::State::PendingError
                | streamtime::lifecycle::State::Error => Ok(()),
                other => Err(format!("state {other:?}")),
            }
        },
    )
    .await;
    let error = app
        .error()
        .expect("the instance names its error")
        .to_string();
    assert!(
        error.contains("injected fault at GlobalApply") && error.contains(&countries),
        "{error}"
    );
    let _ = app.close();
    assert_eq!(app.state(), streamtime::lifecycle::State::Error);
    let _ = std::fs::remove_dir_all(&state_dir);
}
