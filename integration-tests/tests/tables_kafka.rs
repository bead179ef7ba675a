//! Table operators on a real broker, under exactly-once with the app SIGKILLed mid-stream and
//! restarted: a `KGroupedTable` count whose rows keep changing group (and are deleted) gives
//! every move's update exactly once and ends at the true counts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use streamtime_integration_tests::app_process::{read_status, AppConnection, AppProcess};
use streamtime_integration_tests::records::{self, TestRecord};
use streamtime_integration_tests::wait::eventually_async;
use streamtime_integration_tests::{bootstrap_servers, topics};

const USERS: usize = 400;
const REGIONS: usize = 7;
const ROUNDS: usize = 6;
const WAIT: Duration = Duration::from_secs(180);

/// Round `round`'s value for `user`: a region, or `None` (the user is deleted) for about one
/// user in eleven.
fn region_of(user: usize, round: usize) -> Option<String> {
    if (user + 3 * round).is_multiple_of(11) {
        return None;
    }
    Some(format!(
        "region-{}",
        (user * 31 + round * round * 17 + round) % REGIONS
    ))
}

/// What the rounds do to the regions: the number of aggregate updates they cause (one per
/// move, a row staying in its region moving once) and each region's final count.
fn ground_truth(rounds: usize) -> (usize, BTreeMap<String, i64>) {
    let mut current: Vec<Option<String>> = vec![None; USERS];
    let mut updates = 0;
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for round in 0..rounds {
        for (user, slot) in current.iter_mut().enumerate() {
            let next = region_of(user, round);
            updates += match (&*slot, &next) {
                (Some(a), Some(b)) if a == b => 1,
                (Some(_), Some(_)) => 2,
                (None, None) => 0,
                _ => 1,
            };
            if let Some(old) = slot.as_ref() {
                *counts.get_mut(old).expect("counted") -= 1;
            }
            if let Some(new) = &next {
                *counts.entry(new.clone()).or_default() += 1;
            }
            *slot = next;
        }
    }
    (updates, counts)
}

struct TableApp {
    connection: AppConnection,
    state_dir: PathBuf,
    status: PathBuf,
    instance: String,
}

impl TableApp {
    async fn new(prefix: &str) -> Self {
        let servers = bootstrap_servers();
        let input = topics::unique_name(&format!("{prefix}-in"));
        let output = topics::unique_name(&format!("{prefix}-out"));
        topics::create(&servers, &input, 3).await;
        topics::create(&servers, &output, 3).await;
        TableApp {
            connection: AppConnection {
                bootstrap_servers: servers,
                application_id: topics::unique_name(&format!("{prefix}-app")),
                input,
                output,
            },
            state_dir: std::env::temp_dir().join(topics::unique_name(&format!("{prefix}-state"))),
            status: std::env::temp_dir().join(topics::unique_name(&format!("{prefix}-status"))),
            instance: topics::unique_name(prefix),
        }
    }

    fn start(&self, topology: &str) -> AppProcess {
        let _ = std::fs::remove_file(&self.status);
        let state_dir = self.state_dir.to_string_lossy().into_owned();
        let status = self.status.to_string_lossy().into_owned();
        let mut args = vec![
            "--topology",
            topology,
            "--exactly-once",
            "--instance-id",
            &self.instance,
            "--commit-interval-ms",
            "100",
            "--state-dir",
            &state_dir,
            "--status-file",
            &status,
        ];
        args.extend(self.connection.args());
        AppProcess::start(env!("CARGO_BIN_EXE_streamtime-test-app"), &args)
    }

    async fn produce_round(&self, round: usize) {
        let records = (0..USERS)
            .map(|user| TestRecord {
                value: region_of(user, round).map(String::into_bytes),
                ..TestRecord::new(
                    &format!("user-{user}"),
                    Vec::new(),
                    1_000 + (round * USERS + user) as i64,
                )
            })
            .collect();
        records::produce(
            &self.connection.bootstrap_servers,
            &self.connection.input,
            records,
        )
        .await;
    }

    /// Waits until the running app reports at least `n` records processed (over both of its
    /// sub-topologies).
    async fn processed_at_least(&self, n: u64) {
        let status = &self.status;
        eventually_async(
            WAIT,
            &format!("the app to process {n} records"),
            move || async move {
                let processed: u64 = read_status(status)
                    .iter()
                    .filter(|t| t.role == "active")
                    .map(|t| t.processed)
                    .sum();
                if processed >= n {
                    Ok(())
                } else {
                    Err(format!("{processed} records processed"))
                }
            },
        )
        .await;
    }
}

impl Drop for TableApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.state_dir);
        let _ = std::fs::remove_file(&self.status);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grouped_table_count_whose_rows_change_group_is_exact_under_exactly_once_across_kills() {
    let app = TableApp::new("table-group").await;
    let (updates, truth) = ground_truth(ROUNDS);

    // Two rounds, killed after a few hundred records; two more, killed again; the last two.
    for round in 0..2 {
        app.produce_round(round).await;
    }
    let process = app.start("table-group");
    app.processed_at_least(300).await;
    process.kill();
    for round in 2..4 {
        app.produce_round(round).await;
    }
    let process = app.start("table-group");
    app.processed_at_least(500).await;
    process.kill();
    for round in 4..ROUNDS {
        app.produce_round(round).await;
    }
    let process = app.start("table-group");

    let out = records::consume(
        &app.connection.bootstrap_servers,
        &app.connection.output,
        updates,
        WAIT,
    )
    .await;
    process.terminate();

    let mut per_region: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in &out {
        let count = i64::from_be_bytes(r.value.as_deref().unwrap().try_into().unwrap());
        per_region.entry(r.key_str()).or_default().push(count);
    }
    assert_eq!(
        out.len(),
        updates,
        "one committed update per move, none lost or repeated across two kills"
    );
    for (region, counts) in &per_region {
        assert!(
            counts.iter().all(|n| *n >= 0),
            "{region}: a count never goes below zero: {counts:?}"
        );
        // Each update moves one user in or out (or keeps one): consecutive counts differ by
        // at most one.
        assert!(
            counts.windows(2).all(|w| (w[0] - w[1]).abs() <= 1),
            "{region}: counts move by one user at a time: {counts:?}"
        );
    }
    let last: BTreeMap<String, i64> = per_region
        .iter()
        .map(|(region, counts)| (region.clone(), *counts.last().unwrap()))
        .collect();
    assert_eq!(last, truth, "every region ends at its true number of users");
}
