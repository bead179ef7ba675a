//! Stateful processing that survives crashes, on a real broker: a keyed aggregation over
//! 100 000 records with the app killed at verified points — after N records, inside a
//! commit, during a restore — (exact under exactly-once; under at-least-once every input is
//! applied, checked input by input), and restores from the changelog when the local state is
//! deleted or its checkpoint is corrupt.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use streamtime_integration_tests::app_process::{read_status, AppConnection, AppProcess};
use streamtime_integration_tests::records::{self, TestRecord};
use streamtime_integration_tests::wait::eventually_async;
use streamtime_integration_tests::{bootstrap_servers, topics};

const KEYS: usize = 1_000;
const WAIT: Duration = Duration::from_secs(180);

/// Tests that run apps as processes and kill them take turns (see engine_kafka.rs).
static PROCESS_TESTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct CountApp {
    servers: String,
    app_id: String,
    input: String,
    output: String,
    state_dir: PathBuf,
    status: PathBuf,
    topology: String,
    extra: Vec<String>,
}

impl CountApp {
    async fn new(prefix: &str, topology: &str, extra: &[&str]) -> Self {
        let servers = bootstrap_servers();
        let input = topics::unique_name(&format!("{prefix}-in"));
        let output = topics::unique_name(&format!("{prefix}-out"));
        topics::create(&servers, &input, 3).await;
        topics::create(&servers, &output, 3).await;
        let state_dir = std::env::temp_dir().join(topics::unique_name(&format!("{prefix}-state")));
        let status = std::env::temp_dir().join(topics::unique_name(&format!("{prefix}-status")));
        CountApp {
            servers,
            app_id: topics::unique_name(&format!("{prefix}-app")),
            input,
            output,
            state_dir,
            status,
            topology: topology.to_string(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn connection(&self) -> AppConnection {
        AppConnection {
            bootstrap_servers: self.servers.clone(),
            application_id: self.app_id.clone(),
            input: self.input.clone(),
            output: self.output.clone(),
        }
    }

    fn start(&self) -> AppProcess {
        self.start_with_env(&[])
    }

    fn start_with_env(&self, env: &[(&str, &str)]) -> AppProcess {
        let _ = std::fs::remove_file(&self.status);
        let state_dir = self.state_dir.to_string_lossy().into_owned();
        let status = self.status.to_string_lossy().into_owned();
        let connection = self.connection();
        let mut args = vec![
            "--topology",
            &self.topology,
            "--state-dir",
            &state_dir,
            "--status-file",
            &status,
        ];
        args.extend(connection.args());
        args.extend(self.extra.iter().map(String::as_str));
        AppProcess::start_with_env(env!("CARGO_BIN_EXE_streamtime-test-app"), &args, env)
    }

    /// `per_key` records for each of the keys, interleaved; each value is the record's
    /// sequence number within its key (round `round` of equal rounds).
    async fn produce(&self, round: usize, per_key: usize) {
        let records: Vec<TestRecord> = (0..per_key * KEYS)
            .map(|i| {
                TestRecord::new(
                    &format!("key-{}", i % KEYS),
                    (round * per_key + i / KEYS).to_string().into_bytes(),
                    1_000 + (round * per_key * KEYS + i) as i64,
                )
            })
            .collect();
        records::produce(&self.servers, &self.input, records).await;
    }

    /// Waits until the running app reports at least `n` records processed.
    async fn processed_at_least(&self, n: u64) {
        let status = &self.status;
        let what = format!("the app to process {n} records");
        eventually_async(WAIT, &what, move || async move {
            let processed: u64 = read_status(status)
                .iter()
                .filter(|t| t.role == "active")
                .map(|t| t.processed)
                .sum();
            if processed >= n {
                Ok(())
            } else {
                Err(format!("the app processed {processed} records, not {n}"))
            }
        })
        .await;
    }

    /// Output read until `done` holds for the values per key (in output order).
    async fn outputs(
        &self,
        what: &str,
        done: impl Fn(&BTreeMap<String, Vec<Vec<u8>>>) -> bool,
    ) -> BTreeMap<String, Vec<Vec<u8>>> {
        let (servers, output, done) = (&self.servers, &self.output, &done);
        eventually_async(WAIT, what, move || async move {
            let out = records::consume(servers, output, 0, Duration::from_secs(1)).await;
            let mut per_key: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
            for r in &out {
                per_key
                    .entry(r.key_str())
                    .or_default()
                    .push(r.value.clone().unwrap_or_default());
            }
            if per_key.len() == KEYS && done(&per_key) {
                return Ok(per_key);
            }
            eprintln!("waiting for {what}");
            // Each poll reads the whole output topic again: a second's pause between reads.
            tokio::time::sleep(Duration::from_secs(1)).await;
            Err(format!(
                "{} records read, for {} of {KEYS} keys",
                out.len(),
                per_key.len()
            ))
        })
        .await
    }

    /// Counts per key in output order, once every key's last count reached `expected`.
    async fn counts(&self, expected: i64) -> BTreeMap<String, Vec<i64>> {
        let count = |v: &Vec<u8>| i64::from_be_bytes(v.as_slice().try_into().unwrap());
        let per_key = self
            .outputs(&format!("every count at {expected}"), |per_key| {
                per_key
                    .values()
                    .all(|v| v.last().map(count) >= Some(expected))
            })
            .await;
        assert_eq!(per_key.len(), KEYS, "every key has a count");
        per_key
            .into_iter()
            .map(|(k, v)| (k, v.iter().map(count).collect()))
            .collect()
    }
}

/// A `seen` aggregate: how many records were applied, and the set of sequence numbers.
fn decode_seen(value: &[u8]) -> (i64, BTreeSet<usize>) {
    let applied = i64::from_be_bytes(value[..8].try_into().unwrap());
    let seqs = value[8..]
        .iter()
        .enumerate()
        .flat_map(|(byte, bits)| {
            (0..8)
                .filter(move |b| bits & (1 << b) != 0)
                .map(move |b| byte * 8 + b)
        })
        .collect();
    (applied, seqs)
}

impl Drop for CountApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.state_dir);
        let _ = std::fs::remove_file(&self.status);
    }
}

/// Produces 100 000 records in four rounds; the app is stopped at a verified point in each
/// of the first three:
/// 1. SIGKILLed once it processed 10 000 records;
/// 2. aborted inside a commit (`commit_fault`: after the producer's flush, before the
///    offsets or the transaction commit);
/// 3. its local state deleted, aborted while restoring it from the changelog (third batch).
///
/// The fourth run processes everything.
async fn run_with_kills(app: &CountApp, commit_fault: &str) -> AppProcess {
    app.produce(0, 25).await;
    let process = app.start();
    app.processed_at_least(10_000).await;
    process.kill();

    app.produce(1, 25).await;
    let process = app.start_with_env(&[("STREAMTIME_FAULTS", commit_fault)]);
    expect_abort(&process, "inside a commit");

    app.produce(2, 25).await;
    match std::fs::remove_dir_all(&app.state_dir) {
        // An app whose stores are all in memory keeps no local state.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        other => other.expect("delete the local state"),
    }
    let process = app.start_with_env(&[("STREAMTIME_FAULTS", "restore=abort@3")]);
    expect_abort(&process, "during the restore");

    app.produce(3, 25).await;
    app.start()
}

/// The app must abort itself at its injected fault.
fn expect_abort(process: &AppProcess, what: &str) {
    use std::os::unix::process::ExitStatusExt;
    let status = process
        .wait_for_exit(WAIT)
        .unwrap_or_else(|| panic!("the app was not aborted {what} within {WAIT:?}"));
    assert_eq!(
        status.signal(),
        Some(libc::SIGABRT),
        "the app ends {what} by its injected abort, not {status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_count_is_exact_under_exactly_once_across_kills_mid_stream_mid_commit_and_mid_restore(
) {
    exact_count_across_kills("count-eos", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_in_a_supplied_store_is_exact_under_exactly_once_across_kills_and_restores() {
    let log = std::env::temp_dir().join(topics::unique_name("supplied-eos-restores"));
    let log_arg = log.to_string_lossy().into_owned();
    exact_count_across_kills(
        "supplied-eos",
        &["--supplied-store", "--restore-log", &log_arg],
    )
    .await;
    // The count above would be as exact in the built-in store: what proves the supplier
    // backs `counts` in every task is the app's own note of each store it opened.
    let lines = std::fs::read_to_string(&log).unwrap_or_default();
    let opened: BTreeSet<&str> = lines
        .lines()
        .filter_map(|l| l.strip_prefix("supplied counts "))
        .collect();
    assert_eq!(
        opened,
        BTreeSet::from(["0_0", "0_1", "0_2"]),
        "the supplier opened the store of every task:\n{lines}"
    );
    let _ = std::fs::remove_file(&log);
}

/// The `count` topology (with `extra` options) under exactly-once through
/// [`run_with_kills`]: every key counted 1, 2, … 100 exactly once, in order.
async fn exact_count_across_kills(prefix: &str, extra: &[&str]) {
    let instance = topics::unique_name(prefix);
    let mut options = vec!["--exactly-once", "--instance-id", &instance];
    options.extend_from_slice(extra);
    let app = CountApp::new(prefix, "count", &options).await;
    let _turn = PROCESS_TESTS.lock().await;
    let process = run_with_kills(&app, "commit.transaction=abort@3").await;
    let counts = app.counts(100).await;
    process.terminate();
    for (key, seen) in &counts {
        let expected: Vec<i64> = (1..=100).collect();
        assert_eq!(seen, &expected, "{key}: every count exactly once, in order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_at_least_once_every_input_is_counted_across_kills_mid_stream_mid_commit_and_mid_restore(
) {
    let app = CountApp::new("seen-alos", "seen", &["--commit-interval-ms", "1000"]).await;
    let _turn = PROCESS_TESTS.lock().await;
    let process = run_with_kills(&app, "commit.offsets=abort@1").await;
    let all: BTreeSet<usize> = (0..100).collect();
    let per_key = app
        .outputs("every key to have seen all 100 inputs", |per_key| {
            per_key
                .values()
                .all(|v| v.last().is_some_and(|last| decode_seen(last).1 == all))
        })
        .await;
    process.terminate();
    assert_eq!(per_key.len(), KEYS, "every key has an aggregate");
    let mut duplicates = 0;
    for (key, values) in &per_key {
        let (applied, seqs) = decode_seen(values.last().unwrap());
        let missing: Vec<usize> = all.difference(&seqs).copied().collect();
        assert!(
            missing.is_empty(),
            "{key}: inputs {missing:?} were never applied"
        );
        duplicates += applied - 100;
    }
    eprintln!(
        "at-least-once: every one of {} inputs applied; {duplicates} applied twice after 3 kills",
        100 * KEYS
    );
}

fn checkpoint_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains("checkpoint"))
            {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_state_and_corrupt_checkpoints_are_restored_from_the_changelog() {
    let _turn = PROCESS_TESTS.lock().await;
    let app = CountApp::new("restore", "count", &[]).await;
    let process = app.start();
    app.produce(0, 30).await;
    app.counts(30).await;
    process.terminate();
    assert!(
        !checkpoint_files(&app.state_dir).is_empty(),
        "a clean stop writes checkpoints"
    );

    // Lose the local state entirely: the next run rebuilds it from the changelog.
    std::fs::remove_dir_all(&app.state_dir).unwrap();
    let process = app.start();
    app.produce(1, 30).await;
    let counts = app.counts(60).await;
    process.terminate();
    assert!(
        counts.values().all(|v| v.last() == Some(&60)),
        "restored counts continue exactly"
    );

    // Corrupt every checkpoint: the state is distrusted, wiped and restored, with a warning.
    let files = checkpoint_files(&app.state_dir);
    assert!(!files.is_empty());
    for f in &files {
        std::fs::write(f, b"garbage \x00\x01 not a checkpoint").unwrap();
    }
    let process = app.start();
    app.produce(2, 30).await;
    let counts = app.counts(90).await;
    process.terminate();
    assert!(
        counts.values().all(|v| v.last() == Some(&90)),
        "counts survive a corrupt checkpoint"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_cache_folds_changelog_writes_and_its_changelog_restores_exactly() {
    let _turn = PROCESS_TESTS.lock().await;
    // A commit interval longer than the test: only the closing commit flushes the cache.
    let app = CountApp::new(
        "cache",
        "count",
        &[
            "--cache-bytes",
            "10000000",
            "--commit-interval-ms",
            "600000",
        ],
    )
    .await;
    let process = app.start();
    app.produce(0, 30).await;
    app.processed_at_least(30 * KEYS as u64).await;
    // Nothing is committed yet; the closing commit sends each key's count once.
    process.terminate();
    let counts = app.counts(30).await;
    for (key, seen) in &counts {
        assert_eq!(seen, &[30], "{key}: 30 updates fold into one downstream");
    }
    let changelog = topics::watermarks(&app.servers, &format!("{}-counts-changelog", app.app_id))
        .await
        .iter()
        .map(|(low, high)| high - low)
        .sum::<i64>();
    assert_eq!(
        changelog, KEYS as i64,
        "30 updates of each key fold into one changelog record"
    );

    // The folded changelog alone rebuilds the store.
    std::fs::remove_dir_all(&app.state_dir).unwrap();
    let process = app.start();
    app.produce(1, 30).await;
    app.processed_at_least(30 * KEYS as u64).await;
    process.terminate();
    let counts = app.counts(60).await;
    assert!(
        counts.values().all(|v| v.last() == Some(&60)),
        "counts restored from the folded changelog continue exactly"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_materialized_without_caching_writes_every_update_and_its_changelog_configs() {
    let _turn = PROCESS_TESTS.lock().await;
    // The application has a cache; the store opts out and sets a changelog config.
    let app = CountApp::new(
        "uncached",
        "count",
        &[
            "--cache-bytes",
            "10000000",
            "--commit-interval-ms",
            "600000",
            "--store-caching",
            "false",
            "--changelog-config",
            "segment.ms=3600000",
        ],
    )
    .await;
    let process = app.start();
    app.produce(0, 30).await;
    app.counts(30).await;
    process.terminate();
    let changelog = format!("{}-counts-changelog", app.app_id);
    let written = topics::watermarks(&app.servers, &changelog)
        .await
        .iter()
        .map(|(low, high)| high - low)
        .sum::<i64>();
    assert_eq!(
        written,
        30 * KEYS as i64,
        "every update of the uncached store reaches its changelog"
    );
    let config = topics::config(&app.servers, &changelog).await;
    assert_eq!(
        config.get("segment.ms").map(String::as_str),
        Some("3600000")
    );
    assert_eq!(
        config.get("cleanup.policy").map(String::as_str),
        Some("compact"),
        "streamtime's own configs stay"
    );
}
