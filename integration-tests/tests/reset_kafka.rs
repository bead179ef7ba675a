//! The application reset on a real broker: an app that re-keys (repartition topic) and counts
//! (changelogged RocksDB store) is run, reset and run again, and produces the same output;
//! the reset refuses while the app runs (also when an instance starts while the reset
//! prepares), a dry run changes nothing, a reset to a time picks the first offset at or after
//! it, and a reset next to an application whose id extends this one's leaves that
//! application's topics alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use streamtime::tools::{reset, ResetOptions, ResetReport, ResetTarget};
use streamtime::StreamsError;
use streamtime_integration_tests::app_process::{AppConnection, AppProcess};
use streamtime_integration_tests::records::{self, TestRecord};
use streamtime_integration_tests::wait::{eventually, WAIT};
use streamtime_integration_tests::{bootstrap_servers, topics};

const PARTITIONS: i32 = 3;
const RECORDS: usize = 600;

struct App {
    servers: String,
    app_id: String,
    input: String,
    output: String,
    state_dir: PathBuf,
}

impl App {
    async fn new() -> Self {
        Self::named(topics::unique_name("reset-app")).await
    }

    /// An application with the id `app_id` and input and output topics of its own.
    async fn named(app_id: String) -> Self {
        let servers = bootstrap_servers();
        let input = topics::unique_name("reset-in");
        let output = topics::unique_name("reset-out");
        topics::create(&servers, &input, PARTITIONS).await;
        topics::create(&servers, &output, PARTITIONS).await;
        App {
            state_dir: std::env::temp_dir().join(topics::unique_name("reset-state")),
            app_id,
            servers,
            input,
            output,
        }
    }

    /// Produces `n` records whose values start with one of five letters (the app re-keys by
    /// that letter and counts); input `i` goes to partition `i % 3` at time `1000 + i`.
    async fn produce_input(&self, n: usize) {
        let input: Vec<TestRecord> = (0..n)
            .map(|i| {
                let mut r = TestRecord::new(
                    &format!("k{}", i % 17),
                    format!("{}{i}", ["a", "b", "c", "d", "e"][(i * 7) % 5]).into_bytes(),
                    1_000 + i as i64,
                );
                r.partition = Some(i as i32 % PARTITIONS);
                r
            })
            .collect();
        records::produce(&self.servers, &self.input, input).await;
    }

    /// Stops `process` and waits until the group has no members.
    async fn stop(&self, process: AppProcess) {
        process.terminate();
        let servers = self.servers.clone();
        let group = self.app_id.clone();
        tokio::task::spawn_blocking(move || wait_until_group_empty(&servers, &group))
            .await
            .unwrap();
    }

    fn start(&self) -> AppProcess {
        start_app(&self.args())
    }

    /// The test app's arguments for this application.
    fn args(&self) -> Vec<String> {
        let state_dir = self.state_dir.to_string_lossy().into_owned();
        let connection = AppConnection {
            bootstrap_servers: self.servers.clone(),
            application_id: self.app_id.clone(),
            input: self.input.clone(),
            output: self.output.clone(),
        };
        let mut args = vec!["--topology", "rekey-count", "--state-dir", &state_dir];
        args.extend(connection.args());
        args.into_iter().map(String::from).collect()
    }

    fn options(&self) -> ResetOptions {
        ResetOptions::new(&self.app_id, &self.servers)
            .input_topics([self.input.clone()])
            .state_dir(&self.state_dir)
            .timeout(Duration::from_secs(30))
    }

    fn internal_topics(&self) -> Vec<String> {
        vec![
            format!("{}-by-initial-repartition", self.app_id),
            format!("{}-counts-changelog", self.app_id),
        ]
    }

    /// Per key, the counts of `out` in processing order.
    fn counts(out: &[TestRecord]) -> BTreeMap<String, Vec<i64>> {
        let mut per_key: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        // Within a key (one partition), offset order is processing order.
        let mut sorted: Vec<&TestRecord> = out.iter().collect();
        sorted.sort_by_key(|r| (r.partition, r.offset));
        for r in sorted {
            let n = i64::from_be_bytes(r.value.as_deref().unwrap().try_into().unwrap());
            per_key.entry(r.key_str()).or_default().push(n);
        }
        per_key
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

fn start_app(args: &[String]) -> AppProcess {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    AppProcess::start(env!("CARGO_BIN_EXE_streamtime-test-app"), &args)
}

async fn run_reset(options: ResetOptions) -> Result<ResetReport, StreamsError> {
    tokio::task::spawn_blocking(move || reset(&options))
        .await
        .expect("reset task")
}

/// Blocking look-ups on the cluster, for assertions.
fn consumer(servers: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", group)
        .create()
        .expect("consumer config is valid")
}

fn topic_exists(servers: &str, topic: &str) -> bool {
    consumer(servers, "unused")
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata")
        .topics()
        .iter()
        .any(|t| t.name() == topic && t.error().is_none())
}

/// The group's committed offset per input partition (`None`: none).
fn committed(servers: &str, group: &str, topic: &str) -> Vec<Option<i64>> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(topic, p);
    }
    let committed = consumer(servers, group)
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    (0..PARTITIONS)
        .map(
            |p| match committed.find_partition(topic, p).unwrap().offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            },
        )
        .collect()
}

/// Waits until the group has no members (a stopped instance has left it).
fn wait_until_group_empty(servers: &str, group: &str) {
    wait_for_members(servers, group, false)
}

/// Waits until the group has members (`true`) or none (`false`).
fn wait_for_members(servers: &str, group: &str, wanted: bool) {
    let wanted_state = if wanted { "a member" } else { "no members" };
    let what = format!("group {group} to have {wanted_state}");
    eventually(Duration::from_secs(60), &what, || {
        let groups = consumer(servers, "unused")
            .fetch_group_list(Some(group), Duration::from_secs(10))
            .expect("group list");
        let has_members = groups.groups().iter().any(|g| !g.members().is_empty());
        if has_members == wanted {
            Ok(())
        } else {
            let members: usize = groups.groups().iter().map(|g| g.members().len()).sum();
            Err(format!("{members} members"))
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_app_reprocesses_to_identical_output() {
    let app = App::new().await;
    app.produce_input(RECORDS).await;

    // First run.
    let process = app.start();
    let first = records::consume(&app.servers, &app.output, RECORDS, WAIT).await;
    assert_eq!(first.len(), RECORDS, "one count per input record");

    // While it runs, the reset is refused and changes nothing.
    let refused = run_reset(app.options()).await.unwrap_err().to_string();
    assert!(
        refused.contains("active member") && refused.contains(&app.app_id),
        "{refused}"
    );
    for topic in app.internal_topics() {
        assert!(topic_exists(&app.servers, &topic), "{topic} kept");
    }
    app.stop(process).await;
    let committed_before = committed(&app.servers, &app.app_id, &app.input);
    assert_eq!(
        committed_before.iter().map(|o| o.unwrap()).sum::<i64>(),
        RECORDS as i64,
        "the first run committed all of its input"
    );
    let app_dir = app.state_dir.join(&app.app_id);
    assert!(app_dir.exists(), "the first run kept local state");

    // A dry run reports everything and changes nothing.
    let dry = run_reset(app.options().dry_run(true)).await.unwrap();
    assert!(dry.dry_run);
    let mut deleted = dry.deleted_topics.clone();
    deleted.sort();
    assert_eq!(deleted, app.internal_topics());
    assert_eq!(dry.wiped_state.as_deref(), Some(app_dir.as_path()));
    assert!(dry.offsets.iter().all(|o| o.after == 0));
    let text = dry.to_string();
    assert!(
        text.contains("dry run") && text.contains("would delete"),
        "{text}"
    );
    for topic in app.internal_topics() {
        assert!(topic_exists(&app.servers, &topic), "dry run kept {topic}");
    }
    assert!(app_dir.exists(), "dry run kept local state");
    assert_eq!(
        committed(&app.servers, &app.app_id, &app.input),
        committed_before
    );

    // A dry run to a time: the first offset at or after it. Input i went to partition i % 3
    // at 1000 + i, so 1150 is offset 50 on every partition.
    let by_time = run_reset(
        app.options()
            .dry_run(true)
            .target(ResetTarget::Timestamp(1_150)),
    )
    .await
    .unwrap();
    assert_eq!(
        by_time.offsets.iter().map(|o| o.after).collect::<Vec<_>>(),
        vec![50, 50, 50]
    );
    assert_eq!(
        by_time.offsets.iter().map(|o| o.before).collect::<Vec<_>>(),
        committed_before
    );

    // The reset.
    let report = run_reset(app.options()).await.unwrap();
    assert!(!report.dry_run);
    assert_eq!(report.deleted_topics.len(), 2, "{report}");
    for topic in app.internal_topics() {
        assert!(!topic_exists(&app.servers, &topic), "{topic} deleted");
    }
    assert!(!app_dir.exists(), "local state deleted");
    assert_eq!(
        committed(&app.servers, &app.app_id, &app.input),
        vec![Some(0); PARTITIONS as usize]
    );

    // The second run reprocesses everything and counts exactly as the first did.
    let process = app.start();
    let all = records::consume(&app.servers, &app.output, 2 * RECORDS, WAIT).await;
    process.terminate();
    assert_eq!(
        all.len(),
        2 * RECORDS,
        "the rerun produced one count per input"
    );
    let (run1, run2): (Vec<TestRecord>, Vec<TestRecord>) = {
        // Each run's output is a prefix/suffix of every output partition.
        let mut per_partition: BTreeMap<i32, Vec<TestRecord>> = BTreeMap::new();
        for r in all {
            per_partition
                .entry(r.partition.unwrap())
                .or_default()
                .push(r);
        }
        let mut run1 = Vec::new();
        let mut run2 = Vec::new();
        for (_, mut records) in per_partition {
            records.sort_by_key(|r| r.offset);
            let half = records.len() / 2;
            run2.extend(records.split_off(half));
            run1.extend(records);
        }
        (run1, run2)
    };
    let (counts1, counts2) = (App::counts(&run1), App::counts(&run2));
    assert_eq!(counts1, App::counts(&first));
    assert_eq!(counts1.len(), 5, "five initials");
    assert_eq!(counts1, counts2, "identical output after the reset");
    for (key, counts) in &counts2 {
        assert_eq!(
            counts,
            &(1..=counts.len() as i64).collect::<Vec<_>>(),
            "{key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_refuses_missing_input_topics_and_bad_options() {
    let servers = bootstrap_servers();
    let app_id = topics::unique_name("reset-bad");
    let missing = run_reset(
        ResetOptions::new(&app_id, &servers)
            .input_topics([topics::unique_name("no-such-topic")])
            .state_dir(Path::new("/nonexistent")),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&missing, StreamsError::MissingTopic(m) if m.contains("no-such-topic")),
        "{missing}"
    );
    let none = run_reset(ResetOptions::new(&app_id, &servers))
        .await
        .unwrap_err();
    assert!(none.to_string().contains("no input topics"), "{none}");
    let bad_id = run_reset(ResetOptions::new("bad id!", &servers).input_topics(["x"]))
        .await
        .unwrap_err();
    assert!(matches!(bad_id, StreamsError::Config(_)), "{bad_id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_next_to_a_running_application_whose_id_extends_it_deletes_none_of_its_topics() {
    let orders = App::new().await;
    let eu = App::named(format!("{}-eu", orders.app_id)).await;
    const N: usize = 60;
    orders.produce_input(N).await;
    eu.produce_input(N).await;
    let process = orders.start();
    records::consume(&orders.servers, &orders.output, N, WAIT).await;
    orders.stop(process).await;
    let running = eu.start();
    records::consume(&eu.servers, &eu.output, N, WAIT).await;
    let every_topic: Vec<String> = orders
        .internal_topics()
        .into_iter()
        .chain(eu.internal_topics())
        .collect();

    // Found by name, orders' topics include orders-eu's: the reset refuses and names them.
    let refused = run_reset(orders.options()).await.unwrap_err().to_string();
    assert!(
        refused.contains(&format!(
            "{}-counts-changelog (group {})",
            eu.app_id, eu.app_id
        )),
        "{refused}"
    );
    for topic in &every_topic {
        assert!(topic_exists(&orders.servers, topic), "{topic} kept");
    }

    // Named, only orders' own topics go.
    let report = run_reset(orders.options().internal_topics(orders.internal_topics()))
        .await
        .unwrap();
    let mut deleted = report.deleted_topics.clone();
    deleted.sort();
    assert_eq!(deleted, orders.internal_topics(), "{report}");
    for topic in orders.internal_topics() {
        assert!(!topic_exists(&orders.servers, &topic), "{topic} deleted");
    }
    for topic in eu.internal_topics() {
        assert!(
            topic_exists(&eu.servers, &topic),
            "{topic} of the other app kept"
        );
    }
    assert!(running.exit_status().is_none(), "the other app runs on");
    eu.stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_started_while_the_reset_prepares_stops_it_before_anything_is_deleted() {
    let app = App::new().await;
    const N: usize = 60;
    app.produce_input(N).await;
    let process = app.start();
    records::consume(&app.servers, &app.output, N, WAIT).await;
    app.stop(process).await;
    let committed_before = committed(&app.servers, &app.app_id, &app.input);

    // The first membership check passes; an instance joins before the deletion.
    let started: Arc<Mutex<Option<AppProcess>>> = Arc::default();
    let (slot, args, servers, group) = (
        started.clone(),
        app.args(),
        app.servers.clone(),
        app.app_id.clone(),
    );
    let options = app.options().before_deletion(move || {
        *slot.lock().unwrap() = Some(start_app(&args));
        wait_for_members(&servers, &group, true);
    });
    let refused = run_reset(options).await.unwrap_err().to_string();
    assert!(refused.contains("active member"), "{refused}");
    for topic in app.internal_topics() {
        assert!(topic_exists(&app.servers, &topic), "{topic} kept");
    }
    let process = started
        .lock()
        .unwrap()
        .take()
        .expect("the hook started an instance");
    app.stop(process).await;
    assert_eq!(
        committed(&app.servers, &app.app_id, &app.input),
        committed_before,
        "no offset was moved"
    );
}
