//! Windowed aggregation on a real broker: a hopping-window count with grace over 200 000
//! out-of-order records gives exactly the per-window results computed independently here,
//! with final results only, under exactly-once, across SIGKILLs of the app — every window is
//! emitted exactly once; and under at-least-once, a changelog holding writes from past the
//! last commit does not expire the windows the records processed again still emit.

use std::path::Path;
use std::time::Duration;

use streamtime_integration_tests::app_process::AppProcess;
use streamtime_integration_tests::hopping::{self, closers, expected};
use streamtime_integration_tests::records;
use streamtime_integration_tests::{bootstrap_servers, topics};

const PARTITIONS: i32 = 3;
const KEYS: usize = 200;
const RECORDS: usize = 200_000;
const ROUNDS: usize = 4;
const WAIT: Duration = Duration::from_secs(600);

fn start_app(
    servers: &str,
    app_id: &str,
    input: &str,
    output: &str,
    state: &Path,
    instance: &str,
) -> AppProcess {
    start_with_guarantee(servers, app_id, input, output, state, instance, true)
}

fn start_with_guarantee(
    servers: &str,
    app_id: &str,
    input: &str,
    output: &str,
    state: &Path,
    instance: &str,
    exactly_once: bool,
) -> AppProcess {
    let state = state.to_string_lossy().into_owned();
    let mut args = vec![
        "--topology",
        "hopping",
        "--emit",
        "final",
        "--bootstrap-servers",
        servers,
        "--application-id",
        app_id,
        "--input",
        input,
        "--output",
        output,
        "--state-dir",
        &state,
        "--instance-id",
        instance,
    ];
    if exactly_once {
        args.push("--exactly-once");
    }
    AppProcess::start(env!("CARGO_BIN_EXE_streamtime-test-app"), &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hopping_count_with_grace_is_exact_and_emitted_once_across_sigkills_under_eos() {
    let servers = bootstrap_servers();
    let input_topic = topics::unique_name("hop-in");
    let output_topic = topics::unique_name("hop-out");
    topics::create(&servers, &input_topic, PARTITIONS).await;
    topics::create(&servers, &output_topic, PARTITIONS).await;
    let app_id = topics::unique_name("hop-app");
    let instance = topics::unique_name("hop-instance");
    let state = std::env::temp_dir().join(topics::unique_name("hop-state"));

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let records = hopping::input(now - 2 * 3_600_000, RECORDS, KEYS);
    let want = expected(&records, PARTITIONS);
    let late = records.len() * 2 - want.values().sum::<i64>() as usize;
    eprintln!(
        "{} records, {} windows expected, {late} window updates too late",
        records.len(),
        want.len()
    );
    assert!(late > 0, "the input must contain records beyond grace");
    let last_ts = records.iter().map(|r| r.timestamp).max().unwrap();

    let mut process = start_app(
        &servers,
        &app_id,
        &input_topic,
        &output_topic,
        &state,
        &instance,
    );
    let per_round = records.len() / ROUNDS;
    for (round, chunk) in records.chunks(per_round).enumerate() {
        records::produce(&servers, &input_topic, chunk.to_vec()).await;
        tokio::time::sleep(Duration::from_millis(1_500 + 500 * round as u64)).await;
        if round + 1 < ROUNDS {
            process.kill();
            process = start_app(
                &servers,
                &app_id,
                &input_topic,
                &output_topic,
                &state,
                &instance,
            );
        }
    }
    records::produce(&servers, &input_topic, closers(last_ts, PARTITIONS)).await;

    let out = records::consume_until(
        &servers,
        &output_topic,
        WAIT,
        "read_committed",
        hopping::has_windows(&want),
    )
    .await;
    process.terminate();
    let _ = std::fs::remove_dir_all(&state);

    let got = hopping::final_counts(&out);
    hopping::assert_same_windows("the output", &got, &want);
}

/// `count` records of `key`, one a second from `from`, in order.
fn every_second(key: &str, from: i64, count: i64) -> Vec<records::TestRecord> {
    (0..count)
        .map(|i| records::TestRecord::new(key, format!("r{i}").into_bytes(), from + i * 1_000))
        .collect()
}

/// A crash under at-least-once leaves the changelog ahead of the committed offsets: the
/// changelog holds the window writes of records processed after the last commit. Here that
/// is made certain by writing such a record by hand — a window half an hour ahead — while the
/// app is stopped; restored, it moved the store's stream time so far ahead that every window
/// of the records processed next counted as expired: their writes were dropped and their final
/// results never came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_restore_of_writes_past_the_last_commit_still_emits_every_final_window() {
    let servers = bootstrap_servers();
    let input_topic = topics::unique_name("hop-alos-in");
    let output_topic = topics::unique_name("hop-alos-out");
    topics::create(&servers, &input_topic, 1).await;
    topics::create(&servers, &output_topic, 1).await;
    let app_id = topics::unique_name("hop-alos-app");
    let instance = topics::unique_name("hop-alos-instance");
    let state = std::env::temp_dir().join(topics::unique_name("hop-alos-state"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t0 = (now - 2 * 3_600_000) / 60_000 * 60_000;
    let start = |servers: &str| {
        start_with_guarantee(
            servers,
            &app_id,
            &input_topic,
            &output_topic,
            &state,
            &instance,
            false,
        )
    };

    // First run: 30 s of input; the windows it closes are emitted, then a clean stop commits.
    let first = every_second("k", t0, 30);
    let first_closed: std::collections::BTreeMap<_, _> = expected(&first, 1)
        .into_iter()
        .filter(|((_, s), _)| s + hopping::SIZE <= t0 + 29_000 - hopping::GRACE)
        .collect();
    assert!(first_closed.len() >= 4);
    let process = start(&servers);
    records::produce(&servers, &input_topic, first.clone()).await;
    let out = records::consume_until(
        &servers,
        &output_topic,
        WAIT,
        "read_uncommitted",
        hopping::has_windows(&first_closed),
    )
    .await;
    hopping::assert_same_windows("the first run", &hopping::final_counts(&out), &first_closed);
    process.terminate();

    // What a crashed run leaves behind: a window write half an hour ahead, never committed.
    let ghost_start = t0 + 1_800_000;
    let mut store_key = b"ghost".to_vec();
    store_key.extend_from_slice(&ghost_start.to_be_bytes());
    let mut value = ghost_start.to_be_bytes().to_vec();
    value.extend_from_slice(&1i64.to_be_bytes());
    records::produce(
        &servers,
        &format!("{app_id}-hop-counts-changelog"),
        vec![records::TestRecord {
            partition: Some(0),
            key: Some(store_key),
            value: Some(value),
            timestamp: ghost_start,
            headers: Vec::new(),
            offset: -1,
        }],
    )
    .await;

    // Second run: 30 s more input, then a closer; every window of the input is final.
    let second = every_second("k", t0 + 30_000, 30);
    let all: Vec<_> = first.iter().chain(&second).cloned().collect();
    let want = expected(&all, 1);
    let mut tail = second;
    tail.extend(closers(t0 + 59_000, 1));
    records::produce(&servers, &input_topic, tail).await;
    let process = start(&servers);
    let out = records::consume_until(
        &servers,
        &output_topic,
        Duration::from_secs(120),
        "read_uncommitted",
        hopping::has_windows(&want),
    )
    .await;
    process.terminate();
    let _ = std::fs::remove_dir_all(&state);
    let got: std::collections::BTreeMap<_, _> = hopping::final_counts(&out)
        .into_iter()
        .filter(|((key, _), _)| key == "k")
        .collect();
    hopping::assert_same_windows("after the restore", &got, &want);
}
