//! Windowed aggregation on a real broker: a hopping-window count with grace over 200 000
//! out-of-order records gives exactly the per-window results computed independently here,
//! with final results only (emit on window close, or every update suppressed until the
//! window closes), under exactly-once, across SIGKILLs of the app — every window is
//! emitted exactly once; and under at-least-once, a changelog holding writes from past the
//! last commit neither expires the windows the records processed again still emit nor hides
//! the join partners they still meet; and a stream that stops gets its final windows by the
//! wall clock with idle close (none without it, as in Kafka Streams), emitted once across
//! restarts; and emit-final sessions, whose open sessions a restarted task finds again in its
//! restored store, are each emitted once with their exact count across SIGKILLs.

use std::path::Path;
use std::time::Duration;

use streamtime_integration_tests::app_process::AppProcess;
use streamtime_integration_tests::hopping::{self, closers, expected};
use streamtime_integration_tests::records;
use streamtime_integration_tests::wait::eventually_async;
use streamtime_integration_tests::{bootstrap_servers, topics};

const PARTITIONS: i32 = 3;
const KEYS: usize = 200;
const RECORDS: usize = 200_000;
const ROUNDS: usize = 4;
const WAIT: Duration = Duration::from_secs(600);

#[allow(clippy::too_many_arguments)]
fn start_with_guarantee(
    servers: &str,
    app_id: &str,
    input: &str,
    output: &str,
    state: &Path,
    instance: &str,
    exactly_once: bool,
    emit: &str,
) -> AppProcess {
    let mut extra = vec!["--emit", emit, "--instance-id", instance];
    if exactly_once {
        extra.push("--exactly-once");
    }
    start_test_app("hopping", servers, app_id, (input, output), state, &extra)
}

/// The test app with `topology`, reading `input` and writing `output`, plus `extra` options.
fn start_test_app(
    topology: &str,
    servers: &str,
    app_id: &str,
    (input, output): (&str, &str),
    state: &Path,
    extra: &[&str],
) -> AppProcess {
    let state = state.to_string_lossy().into_owned();
    let mut args = vec![
        "--topology",
        topology,
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
    ];
    args.extend_from_slice(extra);
    AppProcess::start(env!("CARGO_BIN_EXE_streamtime-test-app"), &args)
}

/// Writes one record to partition 0 of `topic`, as a crashed run would have left it.
async fn write_partition_zero(servers: &str, topic: &str, key: Vec<u8>, value: Vec<u8>, ts: i64) {
    let record = records::TestRecord {
        partition: Some(0),
        key: Some(key),
        value: Some(value),
        timestamp: ts,
        headers: Vec::new(),
        offset: -1,
    };
    records::produce(servers, topic, vec![record]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hopping_count_with_grace_is_exact_and_emitted_once_across_sigkills_under_eos() {
    final_windows_across_sigkills("final").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hopping_count_suppressed_until_its_windows_close_is_exact_and_emitted_once_across_sigkills_under_eos(
) {
    // Every update goes to suppress, whose changelogged buffer holds it until the window
    // closes: what a kill loses of the buffer its changelog restores.
    final_windows_across_sigkills("suppress").await;
}

/// The hopping workload with `emit` (`final` or `suppress`) under exactly-once and a record
/// cache (the window store's updates fold between commits), the app SIGKILLed after each of
/// the first rounds: every window's final count, each exactly once.
async fn final_windows_across_sigkills(emit: &str) {
    let servers = bootstrap_servers();
    let input_topic = topics::unique_name("hop-in");
    let output_topic = topics::unique_name("hop-out");
    topics::create(&servers, &input_topic, PARTITIONS).await;
    topics::create(&servers, &output_topic, PARTITIONS).await;
    let app_id = topics::unique_name("hop-app");
    let instance = topics::unique_name("hop-instance");
    let state = std::env::temp_dir().join(topics::unique_name("hop-state"));
    let topics = (input_topic.as_str(), output_topic.as_str());

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

    let options = [
        "--emit",
        emit,
        "--instance-id",
        &instance,
        "--exactly-once",
        "--cache-bytes",
        "1048576",
    ];
    let start = || start_test_app("hopping", &servers, &app_id, topics, &state, &options);
    let out = killed_rounds(&servers, topics, &records, start, &want).await;
    let _ = std::fs::remove_dir_all(&state);

    let got = hopping::final_counts(&out);
    hopping::assert_same_windows("the output", &got, &want);
}

/// Produces `input` to `input_topic` in [`ROUNDS`] rounds, the app `start` gives SIGKILLed
/// and started again after each but the last, then the closers; reads `output_topic`
/// (`read_committed`) until it holds every window of `want`, and stops the app.
async fn killed_rounds(
    servers: &str,
    (input_topic, output_topic): (&str, &str),
    input: &[records::TestRecord],
    start: impl Fn() -> AppProcess,
    want: &std::collections::BTreeMap<(String, i64), i64>,
) -> Vec<records::TestRecord> {
    let last_ts = input.iter().map(|r| r.timestamp).max().expect("some input");
    let mut process = start();
    let per_round = input.len() / ROUNDS;
    for (round, chunk) in input.chunks(per_round).enumerate() {
        records::produce(servers, input_topic, chunk.to_vec()).await;
        tokio::time::sleep(Duration::from_millis(1_500 + 500 * round as u64)).await;
        if round + 1 < ROUNDS {
            // What was open at the kill lives on only in the stores (and their changelogs).
            process.kill();
            process = start();
        }
    }
    records::produce(servers, input_topic, closers(last_ts, PARTITIONS)).await;
    let out = records::consume_until(
        servers,
        output_topic,
        WAIT,
        "read_committed",
        hopping::has_windows(want),
    )
    .await;
    process.terminate();
    out
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Output read so far (read_committed), without waiting for anything.
async fn output_now(servers: &str, topic: &str) -> Vec<records::TestRecord> {
    records::consume_until(
        servers,
        topic,
        Duration::from_secs(3),
        "read_committed",
        |_| false,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_stops_gets_its_final_windows_by_idle_close_once_across_restarts() {
    let servers = bootstrap_servers();
    let input = topics::unique_name("idle-in");
    let (idle_out, plain_out) = (
        topics::unique_name("idle-out"),
        topics::unique_name("plain-out"),
    );
    for topic in [&input, &idle_out, &plain_out] {
        topics::create(&servers, topic, PARTITIONS).await;
    }
    let state = std::env::temp_dir().join(topics::unique_name("idle-state"));
    let plain_state = std::env::temp_dir().join(topics::unique_name("plain-state"));
    let (idle_app, plain_app) = (
        topics::unique_name("idle-app"),
        topics::unique_name("plain-app"),
    );
    let idle_options = [
        "--exactly-once",
        "--emit",
        "final",
        "--idle-close-ms",
        "2000",
        "--allowed-lateness-ms",
        "1000",
    ];
    let start_idle = || {
        start_test_app(
            "hopping",
            &servers,
            &idle_app,
            (&input, &idle_out),
            &state,
            &idle_options,
        )
    };
    let plain_options = ["--exactly-once", "--emit", "final"];
    let plain_topics = (input.as_str(), plain_out.as_str());
    let plain = start_test_app(
        "hopping",
        &servers,
        &plain_app,
        plain_topics,
        &plain_state,
        &plain_options,
    );

    // A burst of 300 records over 20 keys in the first second after a window boundary, then
    // nothing: stream time (grace 2 s) closes none of their windows, the first of which is due
    // by the wall clock (end + grace + lateness) about 8 s after the burst.
    let t0 = (wall_clock_ms() / 5_000 + 1) * 5_000 + 100;
    let burst: Vec<records::TestRecord> = (0..300)
        .map(|i| records::TestRecord::new(&format!("k{}", i % 20), b"x".to_vec(), t0 + i * 3))
        .collect();
    let want = expected(&burst, PARTITIONS);
    // The first run processes and commits the burst and stops before any window is due; the
    // second, with no new input, closes them by the wall clock.
    let first = start_idle();
    records::produce(&servers, &input, burst.clone()).await;
    let (servers_ref, group, topic) = (&servers, &idle_app, &input);
    eventually_async(WAIT, "the burst to be committed", || async move {
        let committed: i64 = topics::committed_offsets(servers_ref, group, topic)
            .await
            .into_iter()
            .map(|o| o.unwrap_or(0))
            .sum();
        match committed >= 300 {
            true => Ok(()),
            false => Err(format!("{committed} of 300 committed")),
        }
    })
    .await;
    first.terminate();
    let before = output_now(&servers, &idle_out).await.len();
    eprintln!("{before} windows emitted before the first stop");
    let second = start_idle();
    let out = records::consume_until(
        &servers,
        &idle_out,
        WAIT,
        "read_committed",
        hopping::has_windows(&want),
    )
    .await;
    let closed_at = wall_clock_ms();
    second.terminate();
    hopping::assert_same_windows("idle close", &hopping::final_counts(&out), &want);
    let due_at = t0 + 3 * 300 + 10_000 + 2_000 + 1_000;
    eprintln!(
        "every window emitted {} ms after it was due by the wall clock",
        closed_at - due_at
    );
    let plain_out_now = output_now(&servers, &plain_out).await;
    assert_eq!(
        plain_out_now.len(),
        0,
        "without idle close no window of a stopped stream closes"
    );

    // A third run: records a minute ahead (one per partition), then two minutes ahead, close
    // the first ones' windows by stream time; the windows idle close emitted are not emitted
    // again. (`closers(t)` writes at t + 1 h; the broker refuses timestamps over an hour
    // ahead.)
    let third = start_idle();
    let ahead = |ms: i64| closers(wall_clock_ms() + ms - 3_600_000, PARTITIONS);
    let first_ahead = ahead(60_000);
    records::produce(&servers, &input, first_ahead.clone()).await;
    records::produce(&servers, &input, ahead(120_000)).await;
    let mut all = want.clone();
    for r in first_ahead {
        for start in hopping::windows_for(r.timestamp) {
            all.insert((r.key_str(), start), 1);
        }
    }
    let out = records::consume_until(
        &servers,
        &idle_out,
        WAIT,
        "read_committed",
        hopping::has_windows(&all),
    )
    .await;
    third.terminate();
    plain.terminate();
    hopping::assert_same_windows("after the restart", &hopping::final_counts(&out), &all);
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_dir_all(&plain_state);
}

/// Four input partitions: three fast (a record a second of event time each) and one slow
/// (a record every 250 ms, so ever further behind), each record's value one of 5 pages.
fn uneven_writers(t0: i64) -> Vec<records::TestRecord> {
    let mut out = Vec::new();
    for i in 0..1_000_i64 {
        let page = format!("page-{}", i % 5);
        for (partition, step) in [(0, 1_000), (1, 1_000), (2, 1_000), (3, 250)] {
            let mut r = records::TestRecord::new("user", page.clone().into_bytes(), t0 + i * step);
            r.partition = Some(partition);
            out.push(r);
        }
    }
    out
}

/// The count of every (page, window start) with every record counted.
fn page_truth(records: &[records::TestRecord]) -> std::collections::BTreeMap<(String, i64), i64> {
    let mut counts = std::collections::BTreeMap::new();
    for r in records {
        let page = String::from_utf8(r.value.clone().unwrap()).unwrap();
        for start in hopping::windows_for(r.timestamp) {
            *counts.entry((page.clone(), start)).or_insert(0) += 1;
        }
    }
    counts
}

/// What a run over [`uneven_writers`] gave: the last count of every window, the counts the
/// input should give, and the records dropped as late.
struct UnevenRun {
    counts: std::collections::BTreeMap<(String, i64), i64>,
    truth: std::collections::BTreeMap<(String, i64), i64>,
    dropped: usize,
}

/// The `rekey-hopping` topology under exactly-once over [`uneven_writers`], SIGKILLed once
/// midway when `kill`.
async fn uneven_writers_run(watermarks: bool, kill: bool) -> UnevenRun {
    let servers = bootstrap_servers();
    let input = topics::unique_name("uneven-in");
    let output = topics::unique_name("uneven-out");
    let late = topics::unique_name("uneven-late");
    topics::create(&servers, &input, 4).await;
    topics::create(&servers, &output, 4).await;
    topics::create(&servers, &late, 1).await;
    let app_id = topics::unique_name("uneven-app");
    let state = std::env::temp_dir().join(topics::unique_name("uneven-state"));
    let mut options = vec!["--exactly-once", "--late-output", &late];
    if watermarks {
        options.push("--watermarks");
    }
    let start = || {
        start_test_app(
            "rekey-hopping",
            &servers,
            &app_id,
            (&input, &output),
            &state,
            &options,
        )
    };
    let records = uneven_writers(wall_clock_ms() - 3 * 3_600_000);
    let truth = page_truth(&records);
    let total = records.len() as i64;
    let mut process = start();
    records::produce(&servers, &input, records.clone()).await;
    let committed_input = |at_least: i64| {
        let (servers, group, topic) = (&servers, &app_id, &input);
        async move {
            eventually_async(
                WAIT,
                &format!("{at_least} input records committed"),
                || async move {
                    let n: i64 = topics::committed_offsets(servers, group, topic)
                        .await
                        .into_iter()
                        .map(|o| o.unwrap_or(0))
                        .sum();
                    match n >= at_least {
                        true => Ok(()),
                        false => Err(format!("{n} committed")),
                    }
                },
            )
            .await
        }
    };
    if kill {
        committed_input(total / 2).await;
        process.kill();
        process = start();
    }
    committed_input(total).await;
    // Then everything the upstream tasks wrote to the repartition topic is consumed: up to
    // the marker that ends its last transaction.
    let repartition = format!("{app_id}-by-page-repartition");
    let (servers_ref, group, topic) = (&servers, &app_id, &repartition);
    eventually_async(WAIT, "the repartition topic consumed", || async move {
        let marks = topics::watermarks(servers_ref, topic).await;
        let committed = topics::committed_offsets(servers_ref, group, topic).await;
        let behind: Vec<_> = marks
            .iter()
            .zip(&committed)
            .filter(|((_, high), c)| c.unwrap_or(0) < *high - 1)
            .collect();
        match behind.is_empty() {
            true => Ok(()),
            false => Err(format!("behind: {behind:?}")),
        }
    })
    .await;
    let out = output_now(&servers, &output).await;
    let dropped = output_now(&servers, &late).await.len();
    process.terminate();
    let _ = std::fs::remove_dir_all(&state);
    let mut counts = std::collections::BTreeMap::new();
    for r in &out {
        let (window, _, count) = hopping::decode(r);
        counts.insert(window, count);
    }
    UnevenRun {
        counts,
        truth,
        dropped,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_repartition_a_slow_writers_records_are_dropped_as_late_without_watermarks() {
    let run = uneven_writers_run(false, false).await;
    eprintln!(
        "without watermarks: {} of 4000 records dropped as late",
        run.dropped
    );
    assert!(run.dropped > 100, "only {} dropped", run.dropped);
    assert_ne!(run.counts, run.truth);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_watermarks_no_record_is_late_and_every_window_is_exact_across_a_sigkill() {
    let run = uneven_writers_run(true, true).await;
    eprintln!(
        "with watermarks: {} of 4000 records dropped as late",
        run.dropped
    );
    assert_eq!(run.dropped, 0);
    hopping::assert_same_windows("with watermarks", &run.counts, &run.truth);
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
            "final",
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
    write_partition_zero(
        &servers,
        &format!("{app_id}-hop-counts-changelog"),
        store_key,
        value,
        ghost_start,
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

/// The chaos topology (a windowed count and a join of `L…` with `R…` records within 1.5 s)
/// under at-least-once.
fn start_join_app(
    servers: &str,
    app_id: &str,
    input: &str,
    output: &str,
    joins: &str,
    state: &Path,
) -> AppProcess {
    let extra = ["--join-output", joins];
    start_test_app("chaos", servers, app_id, (input, output), state, &extra)
}

/// Left records at whole seconds from `t0 + from` s, right ones half a second later.
fn left_and_right(t0: i64, from: i64, to: i64) -> Vec<records::TestRecord> {
    (from..to)
        .flat_map(|i| {
            let ts = t0 + i * 1_000;
            [
                records::TestRecord::new("k", format!("L{i}").into_bytes(), ts),
                records::TestRecord::new("k", format!("R{i}").into_bytes(), ts + 500),
            ]
        })
        .collect()
}

/// Every `L+R` result of an inner join within 1.5 s, computed from the input.
fn join_results(input: &[records::TestRecord]) -> std::collections::BTreeSet<String> {
    let value = |r: &records::TestRecord| String::from_utf8(r.value.clone().unwrap()).unwrap();
    let mut out = std::collections::BTreeSet::new();
    for l in input.iter().filter(|r| value(r).starts_with('L')) {
        for r in input.iter().filter(|r| value(r).starts_with('R')) {
            if (l.timestamp - r.timestamp).abs() <= 1_500 {
                out.insert(format!("{}+{}", value(l), value(r)));
            }
        }
    }
    out
}

/// As for the windowed count above: a join-buffer write half an hour ahead, left in the
/// changelog as by a crashed run, used to hide every buffered partner of the records
/// processed next (expired by the buffer's restored time) and to make them late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_restore_of_join_buffers_past_the_last_commit_still_joins_every_pair() {
    let servers = bootstrap_servers();
    let input = topics::unique_name("join-alos-in");
    let output = topics::unique_name("join-alos-out");
    let joins = topics::unique_name("join-alos-joins");
    for topic in [&input, &output, &joins] {
        topics::create(&servers, topic, 1).await;
    }
    let app_id = topics::unique_name("join-alos-app");
    let state = std::env::temp_dir().join(topics::unique_name("join-alos-state"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t0 = (now - 2 * 3_600_000) / 60_000 * 60_000;
    let start = || start_join_app(&servers, &app_id, &input, &output, &joins, &state);
    let read = |want: std::collections::BTreeSet<String>, wait: Duration| {
        let joins = joins.clone();
        let servers = servers.clone();
        async move {
            let out = records::consume_until(&servers, &joins, wait, "read_uncommitted", |seen| {
                let got: std::collections::BTreeSet<String> = seen
                    .iter()
                    .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
                    .collect();
                want.is_subset(&got)
            })
            .await;
            let got: Vec<String> = out
                .iter()
                .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
                .collect();
            (want, got)
        }
    };

    let first = left_and_right(t0, 0, 10);
    let process = start();
    records::produce(&servers, &input, first.clone()).await;
    let (want, got) = read(join_results(&first), WAIT).await;
    assert_eq!(
        got.len(),
        want.len(),
        "the first run joins every pair once: {got:?}"
    );
    process.terminate();

    let ghost_ts = t0 + 1_800_000;
    let mut store_key = b"ghost".to_vec();
    store_key.extend_from_slice(&ghost_ts.to_be_bytes());
    store_key.extend_from_slice(&0u32.to_be_bytes());
    write_partition_zero(
        &servers,
        &format!("{app_id}-chaos-join-this-join-store-changelog"),
        store_key,
        b"Lghost".to_vec(),
        ghost_ts,
    )
    .await;

    let all = left_and_right(t0, 0, 20);
    records::produce(&servers, &input, left_and_right(t0, 10, 20)).await;
    let process = start();
    let (want, got) = read(join_results(&all), Duration::from_secs(60)).await;
    process.terminate();
    let _ = std::fs::remove_dir_all(&state);
    let got: std::collections::BTreeSet<String> = got.into_iter().collect();
    let missing: Vec<&String> = want.difference(&got).collect();
    assert!(
        missing.is_empty(),
        "{} of {} join results missing after the restore: {missing:?}",
        missing.len(),
        want.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_final_session_is_emitted_once_with_its_count_across_sigkills_under_eos() {
    const BURSTS: i64 = 40;
    const SESSION_KEYS: i64 = 50;
    let servers = bootstrap_servers();
    let input_topic = topics::unique_name("sessions-in");
    let output_topic = topics::unique_name("sessions-out");
    topics::create(&servers, &input_topic, PARTITIONS).await;
    topics::create(&servers, &output_topic, PARTITIONS).await;
    let app_id = topics::unique_name("sessions-app");
    let instance = topics::unique_name("sessions-instance");
    let state = std::env::temp_dir().join(topics::unique_name("sessions-state"));

    // Every key clicks in bursts of 5 clicks 100 ms apart, a burst every 10 s: with a gap
    // of 1 s each burst is one session of 5, [start, start + 400 ms].
    let t0 = wall_clock_ms() - 3_600_000;
    let mut input = Vec::new();
    let mut want = std::collections::BTreeMap::new();
    for burst in 0..BURSTS {
        for key in 0..SESSION_KEYS {
            let start = t0 + burst * 10_000 + key * 7;
            let name = format!("user-{key:02}");
            want.insert((name.clone(), start), 5_i64);
            for click in 0..5 {
                input.push(records::TestRecord::new(
                    &name,
                    b"click".to_vec(),
                    start + click * 100,
                ));
            }
        }
    }
    input.sort_by_key(|r| r.timestamp);

    let options = ["--instance-id", &instance, "--exactly-once"];
    let topics = (input_topic.as_str(), output_topic.as_str());
    let start = || {
        start_test_app(
            "sessions-final",
            &servers,
            &app_id,
            topics,
            &state,
            &options,
        )
    };
    let out = killed_rounds(&servers, topics, &input, start, &want).await;
    let _ = std::fs::remove_dir_all(&state);

    let mut got = std::collections::BTreeMap::new();
    for r in &out {
        let (session, end, count) = hopping::decode(r);
        assert_eq!(end, session.1 + 400, "end of session {session:?}");
        assert!(
            got.insert(session.clone(), count).is_none(),
            "session {session:?} emitted twice"
        );
    }
    hopping::assert_same_windows("the final sessions", &got, &want);
}
