//! Windowed aggregation on a real broker: a hopping-window count with grace over 200 000
//! out-of-order records gives exactly the per-window results computed independently here,
//! with final results only, under exactly-once, across SIGKILLs of the app — every window is
//! emitted exactly once.

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
    let state = state.to_string_lossy().into_owned();
    AppProcess::start(
        env!("CARGO_BIN_EXE_streamtime-test-app"),
        &[
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
            "--exactly-once",
            "--instance-id",
            instance,
        ],
    )
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
