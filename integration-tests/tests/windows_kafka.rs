//! Windowed aggregation on a real broker: a hopping-window count with grace over 200 000
//! out-of-order records gives exactly the per-window results computed independently here,
//! with final results only, under exactly-once, across SIGKILLs of the app — every window is
//! emitted exactly once.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use streamtime::partitioner::partition_for_key;
use streamtime_integration_tests::app_process::AppProcess;
use streamtime_integration_tests::records::{self, TestRecord};
use streamtime_integration_tests::{bootstrap_servers, topics};

const PARTITIONS: i32 = 3;
const KEYS: usize = 200;
const RECORDS: usize = 200_000;
const ROUNDS: usize = 4;
const SIZE: i64 = 10_000;
const ADVANCE: i64 = 5_000;
const GRACE: i64 = 2_000;
const WAIT: Duration = Duration::from_secs(400);

/// A small deterministic generator, so the input is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// The input: event time advances 5 ms per record from `t0`; most records are up to 3 s out of
/// order, one in a hundred is 30 s late (beyond grace for the windows stream time has passed).
/// `t0` must be recent: the broker deletes records older than its retention (7 days).
fn input(t0: i64) -> Vec<TestRecord> {
    let mut rng = Lcg(42);
    (0..RECORDS)
        .map(|i| {
            let key = format!("sensor-{}", rng.next(KEYS as u64));
            let mut ts = t0 + 5 * i as i64 - rng.next(3_000) as i64;
            if rng.next(100) == 0 {
                ts -= 30_000;
            }
            TestRecord::new(&key, format!("r{i}").into_bytes(), ts)
        })
        .collect()
}

fn windows_for(ts: i64) -> impl Iterator<Item = i64> {
    let first = (ts - SIZE + ADVANCE).max(0) / ADVANCE * ADVANCE;
    (0..)
        .map(move |i| first + i * ADVANCE)
        .take_while(move |s| *s <= ts)
}

/// The final count of every (key, window start), computed the way SPEC §7 defines it: each
/// task (one per input partition) sees its partition in offset order, and a record counts in
/// a window unless the window's end is at or before the task's observed stream time − grace.
fn expected(records: &[TestRecord]) -> BTreeMap<(String, i64), i64> {
    let mut observed = [i64::MIN; PARTITIONS as usize];
    let mut counts = BTreeMap::new();
    for r in records {
        let p = partition_for_key(r.key.as_deref().unwrap(), PARTITIONS) as usize;
        observed[p] = observed[p].max(r.timestamp);
        for start in windows_for(r.timestamp) {
            if start + SIZE > observed[p] - GRACE {
                *counts.entry((r.key_str(), start)).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// One record per partition far ahead in event time, so every window of the input closes.
fn closers(last_ts: i64) -> Vec<TestRecord> {
    (0..PARTITIONS)
        .map(|p| {
            let key = (0..)
                .map(|j| format!("zz-closer-{j}"))
                .find(|k| partition_for_key(k.as_bytes(), PARTITIONS) == p)
                .unwrap();
            TestRecord::new(&key, b"close".to_vec(), last_ts + 3_600_000)
        })
        .collect()
}

/// Decodes a windowed key (`key ++ start ++ end`, big-endian) and an i64 count.
fn decode(r: &TestRecord) -> ((String, i64), i64, i64) {
    let key = r.key.as_deref().unwrap();
    let (k, window) = key.split_at(key.len() - 16);
    let start = i64::from_be_bytes(window[..8].try_into().unwrap());
    let end = i64::from_be_bytes(window[8..].try_into().unwrap());
    let count = i64::from_be_bytes(r.value.as_deref().unwrap().try_into().unwrap());
    ((String::from_utf8(k.to_vec()).unwrap(), start), end, count)
}

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
    let records = input(now - 2 * 3_600_000);
    let want = expected(&records);
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
    records::produce(&servers, &input_topic, closers(last_ts)).await;

    let deadline = Instant::now() + WAIT;
    let out = records::consume_until(&servers, &output_topic, WAIT, "read_committed", |seen| {
        seen.len() >= want.len() || Instant::now() > deadline
    })
    .await;
    process.terminate();
    let _ = std::fs::remove_dir_all(&state);

    let mut got: BTreeMap<(String, i64), i64> = BTreeMap::new();
    let mut duplicates = Vec::new();
    for r in &out {
        let (window, end, count) = decode(r);
        assert_eq!(end, window.1 + SIZE, "window end of {window:?}");
        if got.insert(window.clone(), count).is_some() {
            duplicates.push(window);
        }
    }
    assert!(
        duplicates.is_empty(),
        "{} windows emitted more than once, e.g. {:?}",
        duplicates.len(),
        &duplicates[..duplicates.len().min(5)]
    );
    let missing: Vec<_> = want
        .keys()
        .filter(|k| !got.contains_key(*k))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} windows missing, e.g. {missing:?}",
        want.len() - got.len().min(want.len()),
        want.len()
    );
    let wrong: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .take(5)
        .map(|(k, v)| (k.clone(), *v, got.get(k).copied()))
        .collect();
    assert!(
        wrong.is_empty(),
        "wrong counts (window, want, got): {wrong:?}"
    );
    assert_eq!(got.len(), want.len(), "no windows beyond the expected ones");
}
