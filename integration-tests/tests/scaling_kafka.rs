//! Scale-out on a real broker, with app instances as separate processes:
//!
//! * a hopping-window count (exactly-once, final results) over 12 partitions runs on 3
//!   instances; a 4th joins, one is SIGKILLed, one stops cleanly. The output has exactly the
//!   windows a single instance computes from the same input, each once, and every change moves
//!   close to the fewest tasks it must;
//! * with a standby replica, SIGKILLing the active instance moves its tasks to the standby's
//!   instance, which restores only the changelog tail; the time to resume is reported.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use streamtime::partitioner::partition_for_key;
use streamtime_integration_tests::app_process::{AppConnection, AppProcess};
use streamtime_integration_tests::hopping;
use streamtime_integration_tests::records::{self, TestRecord};
use streamtime_integration_tests::wait::{eventually_async, POLL};
use streamtime_integration_tests::{bootstrap_servers, topics};

const WAIT: Duration = Duration::from_secs(240);

/// One app instance (a child process) and the files it keeps.
struct Instance {
    name: String,
    process: Option<AppProcess>,
    status: PathBuf,
    state: PathBuf,
}

/// The tasks an instance reports: active (with restored-record counts) and standby.
#[derive(Debug, Default)]
struct Status {
    active: BTreeMap<String, u64>,
    standby: BTreeSet<String>,
}

impl Instance {
    /// Starts an instance of `app` with the test app's `options`.
    fn start(name: &str, app: &AppConnection, options: &[&str]) -> Instance {
        let status = std::env::temp_dir().join(topics::unique_name(&format!("{name}-status")));
        let state = std::env::temp_dir().join(topics::unique_name(&format!("{name}-state")));
        let (status_arg, state_arg) = (
            status.to_string_lossy().into_owned(),
            state.to_string_lossy().into_owned(),
        );
        let mut args: Vec<&str> = options.to_vec();
        args.extend(app.args());
        args.extend_from_slice(&["--status-file", &status_arg, "--state-dir", &state_arg]);
        let process = AppProcess::start(env!("CARGO_BIN_EXE_streamtime-test-app"), &args);
        Instance {
            name: name.to_string(),
            process: Some(process),
            status,
            state,
        }
    }

    fn status(&self) -> Status {
        let mut status = Status::default();
        let text = std::fs::read_to_string(&self.status).unwrap_or_default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("active"), Some(task)) => {
                    let restored = words
                        .find_map(|w| w.strip_prefix("restored="))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    status.active.insert(task.to_string(), restored);
                }
                (Some("standby"), Some(task)) => {
                    status.standby.insert(task.to_string());
                }
                _ => {}
            }
        }
        status
    }

    fn kill(&mut self) {
        self.process.take().expect("running").kill();
    }

    fn terminate(&mut self) {
        self.process.take().expect("running").terminate();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        drop(self.process.take());
        let _ = std::fs::remove_file(&self.status);
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// Waits until the running `instances` together run each of `tasks` tasks exactly once, each
/// instance runs at least one, and that has held for two seconds; returns task → instance.
async fn settled(instances: &[&Instance], tasks: usize, what: &str) -> BTreeMap<String, String> {
    settled_since(instances, tasks, what).await.0
}

/// [`settled`], and since when the final assignment has been running.
async fn settled_since(
    instances: &[&Instance],
    tasks: usize,
    what: &str,
) -> (BTreeMap<String, String>, Instant) {
    // The complete assignment last seen and since when it has held, kept between polls.
    let last: RefCell<Option<(BTreeMap<String, String>, Instant)>> = RefCell::new(None);
    let last = &last;
    eventually_async(
        WAIT,
        &format!("{what}: the instances to settle on one owner per task"),
        move || async move {
            let mut owners = BTreeMap::new();
            let mut twice = false;
            let mut idle = false;
            let mut report = Vec::new();
            for i in instances {
                let status = i.status();
                report.push(format!(
                    "{}: active {:?} standby {:?}",
                    i.name,
                    status.active.keys(),
                    status.standby
                ));
                idle |= status.active.is_empty();
                for task in status.active.into_keys() {
                    twice |= owners.insert(task, i.name.clone()).is_some();
                }
            }
            let complete = !twice && !idle && owners.len() == tasks;
            let mut last = last.borrow_mut();
            match (&*last, complete) {
                (Some((prev, since)), true) if *prev == owners => {
                    if since.elapsed() >= Duration::from_secs(2) {
                        return Ok((owners, *since));
                    }
                }
                (_, true) => *last = Some((owners, Instant::now())),
                (_, false) => *last = None,
            }
            for i in instances {
                if let Some(status) = i.process.as_ref().and_then(AppProcess::exit_status) {
                    panic!("{what}: instance {} exited ({status})", i.name);
                }
            }
            Err(report.join("; "))
        },
    )
    .await
}

fn moved(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> usize {
    before
        .iter()
        .filter(|(task, owner)| after.get(*task).is_some_and(|o| o != *owner))
        .count()
}

fn tasks_of(owners: &BTreeMap<String, String>, instance: &str) -> usize {
    owners.values().filter(|o| *o == instance).count()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_to_four_to_two_instances_give_single_instance_results_and_move_few_tasks() {
    const PARTITIONS: i32 = 12;
    const RECORDS: usize = 48_000;
    let servers = bootstrap_servers();
    let input = topics::unique_name("scale-in");
    let output = topics::unique_name("scale-out");
    let single_output = topics::unique_name("scale-single-out");
    for t in [&input, &output, &single_output] {
        topics::create(&servers, t, PARTITIONS).await;
    }
    let records = hopping::input(now_ms() - 2 * 3_600_000, RECORDS, 240);
    let want = hopping::expected(&records, PARTITIONS);
    let last_ts = records.iter().map(|r| r.timestamp).max().unwrap();
    let phases: Vec<Vec<TestRecord>> = records.chunks(RECORDS / 4).map(<[_]>::to_vec).collect();

    let app = topics::unique_name("scale-app");
    let options = ["--topology", "hopping", "--emit", "final", "--exactly-once"];
    let app = AppConnection {
        bootstrap_servers: servers.clone(),
        application_id: app.clone(),
        input: input.clone(),
        output: output.clone(),
    };
    // The reference: one instance on the same input, as its own application.
    let single_id = topics::unique_name("scale-single-app");
    let single_app = AppConnection {
        application_id: single_id,
        output: single_output.clone(),
        ..app.clone()
    };
    let mut single = Instance::start("single", &single_app, &options);

    records::produce(&servers, &input, phases[0].clone()).await;
    let (mut a, mut b, mut c) = (
        Instance::start("a", &app, &options),
        Instance::start("b", &app, &options),
        Instance::start("c", &app, &options),
    );
    let three = settled(&[&a, &b, &c], 12, "3 instances").await;
    for i in ["a", "b", "c"] {
        assert_eq!(
            tasks_of(&three, i),
            4,
            "12 tasks over 3 instances: {three:?}"
        );
    }

    records::produce(&servers, &input, phases[1].clone()).await;
    let mut d = Instance::start("d", &app, &options);
    let four = settled(&[&a, &b, &c, &d], 12, "a 4th instance joined").await;
    let join_moves = moved(&three, &four);
    eprintln!("scaling: 3 -> 4 instances moved {join_moves} tasks (minimum 3): {four:?}");

    records::produce(&servers, &input, phases[2].clone()).await;
    let lost = tasks_of(&four, "b");
    b.kill();
    let after_kill = settled(&[&a, &c, &d], 12, "b was SIGKILLed").await;
    let kill_moves = moved(&four, &after_kill);
    eprintln!(
        "scaling: SIGKILL of 1 of 4 moved {kill_moves} tasks (minimum {lost}): {after_kill:?}"
    );

    records::produce(&servers, &input, phases[3].clone()).await;
    let leaving = tasks_of(&after_kill, "c");
    c.terminate();
    let two = settled(&[&a, &d], 12, "c stopped cleanly").await;
    let stop_moves = moved(&after_kill, &two);
    eprintln!(
        "scaling: clean stop of 1 of 3 moved {stop_moves} tasks (minimum {leaving}): {two:?}"
    );

    records::produce(&servers, &input, hopping::closers(last_ts, PARTITIONS)).await;
    let read = |topic: String| {
        let servers = servers.clone();
        let want = &want;
        async move {
            records::consume_until(
                &servers,
                &topic,
                WAIT,
                "read_committed",
                hopping::has_windows(want),
            )
            .await
        }
    };
    let scaled = hopping::final_counts(&read(output.clone()).await);
    let reference = hopping::final_counts(&read(single_output.clone()).await);
    for i in [&mut a, &mut d, &mut single] {
        i.terminate();
    }
    hopping::assert_same_windows("the single-instance reference", &reference, &want);
    hopping::assert_same_windows("the scaled instances", &scaled, &reference);
    assert!(join_moves <= 3 + 3, "joining moved {join_moves} tasks");
    assert!(
        kill_moves <= lost + 3,
        "the SIGKILL moved {kill_moves} tasks"
    );
    assert!(
        stop_moves <= leaving + 3,
        "the clean stop moved {stop_moves} tasks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_a_killed_instance_restoring_only_the_tail() {
    const PARTITIONS: i32 = 4;
    const KEYS: usize = 20_000;
    let servers = bootstrap_servers();
    let input = topics::unique_name("standby-in");
    let output = topics::unique_name("standby-out");
    topics::create(&servers, &input, PARTITIONS).await;
    topics::create(&servers, &output, PARTITIONS).await;
    let app = topics::unique_name("standby-app");
    let options = [
        "--topology",
        "count",
        "--exactly-once",
        "--commit-interval-ms",
        "100",
        "--standbys",
        "1",
    ];
    let app = AppConnection {
        bootstrap_servers: servers.clone(),
        application_id: app.clone(),
        input: input.clone(),
        output: output.clone(),
    };
    let (mut a, mut b) = (
        Instance::start("a", &app, &options),
        Instance::start("b", &app, &options),
    );
    let owners = settled(&[&a, &b], 4, "2 instances").await;

    // Two records per key: 40 000 changelog updates before the failure.
    let key = |i: usize| format!("key-{i}");
    let before: Vec<TestRecord> = (0..2 * KEYS)
        .map(|i| TestRecord::new(&key(i % KEYS), b"x".to_vec(), 1_000 + i as i64))
        .collect();
    records::produce(&servers, &input, before).await;
    let seen =
        records::consume_until(&servers, &output, WAIT, "read_committed", all_at(2, KEYS)).await;
    assert!(
        all_at(2, KEYS)(&seen),
        "every key counted twice before the failure"
    );

    let victim_tasks: BTreeSet<String> = owners
        .iter()
        .filter(|(_, o)| *o == "a")
        .map(|(t, _)| t.clone())
        .collect();
    assert!(!victim_tasks.is_empty(), "a runs some tasks: {owners:?}");
    let standby = b.status().standby;
    assert!(
        victim_tasks.is_subset(&standby),
        "b keeps standbys of a's tasks {victim_tasks:?}: {standby:?}"
    );
    // Let the standbys read the changelogs' last records.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let killed = Instant::now();
    a.kill();
    let victim_partitions: BTreeSet<i32> = victim_tasks
        .iter()
        .map(|t| t.rsplit('_').next().unwrap().parse().unwrap())
        .collect();
    let after: Vec<TestRecord> = (0..KEYS)
        .map(|i| TestRecord::new(&key(i), b"x".to_vec(), 1_000_000 + i as i64))
        .collect();
    let victim_keys = after
        .iter()
        .filter(|r| {
            victim_partitions.contains(&partition_for_key(r.key.as_deref().unwrap(), PARTITIONS))
        })
        .count();
    records::produce(&servers, &input, after).await;

    let (taken, running) = settled_since(&[&b], 4, "a was SIGKILLed").await;
    let resumed = running - killed;
    assert_eq!(taken.len(), 4);
    let status = b.status();
    let restored: u64 = victim_tasks.iter().map(|t| status.active[t]).sum();
    let changelog_records = 2 * KEYS as u64 * victim_partitions.len() as u64 / PARTITIONS as u64;
    eprintln!(
        "failover: SIGKILL to b running a's {} tasks: {:.1} s (session timeout 10 s, status read every {} s); restored {restored} changelog records (about {changelog_records} written for those tasks); {victim_keys} records then arrived for them",
        victim_tasks.len(),
        resumed.as_secs_f64(),
        POLL.as_secs_f64()
    );
    assert!(
        restored * 10 < changelog_records,
        "the new owner restored {restored} records: more than the tail"
    );

    let seen =
        records::consume_until(&servers, &output, WAIT, "read_committed", all_at(3, KEYS)).await;
    assert!(all_at(3, KEYS)(&seen), "every key ends at exactly 3");
    b.terminate();
}

/// Whether the latest count of each of `keys` keys is `n`. Incremental: the reader calls it
/// after every record with everything read so far.
fn all_at(n: i64, keys: usize) -> impl Fn(&[TestRecord]) -> bool {
    // (records seen, latest count per key, keys whose latest count is n)
    let state = RefCell::new((0, BTreeMap::<Vec<u8>, i64>::new(), 0));
    move |seen| {
        let mut guard = state.borrow_mut();
        let (done, latest, at_n) = &mut *guard;
        for r in &seen[*done..] {
            let v = i64::from_be_bytes(r.value.as_deref().unwrap().try_into().unwrap());
            let old = latest.insert(r.key.clone().unwrap(), v);
            *at_n -= usize::from(old == Some(n));
            *at_n += usize::from(v == n);
        }
        *done = seen.len();
        *at_n == keys
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tasks_of_one_thread_work_through_a_backlog_together() {
    const PARTITIONS: i32 = 3;
    let servers = bootstrap_servers();
    let input = topics::unique_name("fair-in");
    let output = topics::unique_name("fair-out");
    topics::create(&servers, &input, PARTITIONS).await;
    topics::create(&servers, &output, PARTITIONS).await;
    let records = hopping::input(now_ms() - 3_600_000, 60_000, 300);
    records::produce(&servers, &input, records).await;
    let id = topics::unique_name("fair-app");
    let app = AppConnection {
        bootstrap_servers: servers.clone(),
        application_id: id.clone(),
        input: input.clone(),
        output: output.clone(),
    };
    let mut a = Instance::start("a", &app, &["--topology", "hopping", "--exactly-once"]);
    let started = Instant::now();
    let (status_file, started) = (&a.status, &started);
    eventually_async(
        WAIT,
        "3 tasks to process more than 6 000 records",
        move || async move {
            let status = std::fs::read_to_string(status_file).unwrap_or_default();
            let processed: Vec<u64> = status
                .lines()
                .filter_map(|l| {
                    l.split_whitespace()
                        .find_map(|w| w.strip_prefix("processed="))
                })
                .filter_map(|n| n.parse().ok())
                .collect();
            eprintln!("{:?}: processed per task {processed:?}", started.elapsed());
            if processed.len() == 3 && processed.iter().sum::<u64>() > 6_000 {
                let (min, max) = (
                    processed.iter().min().unwrap(),
                    processed.iter().max().unwrap(),
                );
                assert!(
                    min * 4 >= *max,
                    "tasks progress unevenly on one thread: {processed:?}"
                );
                Ok(())
            } else {
                Err(format!("no progress: {status}"))
            }
        },
    )
    .await;
    a.terminate();
}
