//! streamtime on a secured cluster: a broker with a `SASL_SSL` listener (SCRAM-SHA-512,
//! TLS with a CA generated when it starts) and the standard authorizer. An exactly-once
//! application with a repartition topic and a changelogged store runs, restores and is reset
//! under a principal holding only the ACLs the README documents; a wrong password and a
//! missing ACL each end the application with an error that says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use streamtime::tools::{reset, ResetOptions};
use streamtime::StreamsConfig;
use streamtime_integration_tests::app_process::{AppConnection, AppProcess};
use streamtime_integration_tests::records::{self, TestRecord};
use streamtime_integration_tests::secure::SecureBroker;
use streamtime_integration_tests::wait::{eventually, WAIT};
use streamtime_integration_tests::{kafka, topics};

const PARTITIONS: i32 = 3;
/// How long a misconfigured application may take to give up.
const FAIL_FAST: Duration = Duration::from_secs(60);

/// The principal that holds exactly the documented ACLs.
const USER: (&str, &str) = ("streams", "streams-secret");
/// A principal missing one of them: Create on the internal topics.
const PARTIAL_USER: (&str, &str) = ("partial", "partial-secret");

/// One secured broker for every test of this file; its container goes with the process.
fn broker() -> &'static SecureBroker {
    static BROKER: OnceLock<SecureBroker> = OnceLock::new();
    BROKER.get_or_init(|| SecureBroker::start(&[USER, PARTIAL_USER]))
}

/// The least-privilege ACLs of an application, as the README lists them, minus those in
/// `withheld`: `<resource>:<operation>` with the resource `internal`, `group`, `txn`, `input`
/// or `output`, and `*` for every operation.
fn grant_application_acls(
    principal: &str,
    app: &str,
    input: &str,
    output: &str,
    withheld: &[&str],
) {
    let broker = broker();
    let principal = format!("User:{principal}");
    let with_ops = |resource: &str, ops: &[&str], rest: &[&str]| {
        let granted: Vec<&&str> = ops
            .iter()
            .filter(|op| {
                !withheld.contains(&format!("{resource}:{op}").as_str())
                    && !withheld.contains(&format!("{resource}:*").as_str())
            })
            .collect();
        if granted.is_empty() {
            return;
        }
        let mut args = vec!["--allow-principal", principal.as_str()];
        for op in granted {
            args.extend(["--operation", op]);
        }
        args.extend_from_slice(rest);
        broker.grant(&args);
    };
    let internal_prefix = format!("{app}-");
    with_ops(
        "internal",
        &["Create", "Read", "Write", "Delete", "Describe"],
        &[
            "--topic",
            &internal_prefix,
            "--resource-pattern-type",
            "prefixed",
        ],
    );
    with_ops(
        "group",
        &["Read", "Describe"],
        &["--group", app, "--resource-pattern-type", "prefixed"],
    );
    with_ops(
        "txn",
        &["Write", "Describe"],
        &[
            "--transactional-id",
            app,
            "--resource-pattern-type",
            "prefixed",
        ],
    );
    with_ops("input", &["Read", "Describe"], &["--topic", input]);
    with_ops("output", &["Write", "Describe"], &["--topic", output]);
}

/// An application under test: its topics (created by the admin), state and properties file.
struct SecureApp {
    servers: String,
    app_id: String,
    input: String,
    output: String,
    state_dir: PathBuf,
    properties: PathBuf,
}

impl SecureApp {
    async fn new(user: (&str, &str)) -> Self {
        let servers = broker().bootstrap_servers.clone();
        let app_id = topics::unique_name("secure-app");
        let input = topics::unique_name("secure-in");
        let output = topics::unique_name("secure-out");
        topics::create(&servers, &input, PARTITIONS).await;
        topics::create(&servers, &output, PARTITIONS).await;
        let state_dir = std::env::temp_dir().join(topics::unique_name("secure-state"));
        let properties = std::env::temp_dir().join(format!("{app_id}.properties"));
        let app = SecureApp {
            servers,
            app_id,
            input,
            output,
            state_dir,
            properties,
        };
        app.write_properties(user.0, user.1);
        app
    }

    /// The properties file a user would deploy with: Kafka Streams keys, the JAAS login line
    /// and librdkafka's TLS key for the CA.
    fn write_properties(&self, user: &str, password: &str) {
        let text = format!(
            "application.id={app}\n\
             bootstrap.servers={servers}\n\
             processing.guarantee=exactly_once_v2\n\
             state.dir={state}\n\
             security.protocol=SASL_SSL\n\
             sasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n  \
             username=\"{user}\" password=\"{password}\";\n\
             ssl.ca.location={ca}\n",
            app = self.app_id,
            servers = self.servers,
            state = self.state_dir.display(),
            ca = broker().ca_file().display(),
        );
        std::fs::write(&self.properties, text).expect("the properties file can be written");
    }

    fn start(&self, log: &Path) -> AppProcess {
        let connection = AppConnection {
            bootstrap_servers: self.servers.clone(),
            application_id: self.app_id.clone(),
            input: self.input.clone(),
            output: self.output.clone(),
        };
        let properties = self.properties.to_string_lossy().into_owned();
        let mut args = vec![
            "--topology",
            "rekey-count",
            "--exactly-once",
            "--config-file",
            &properties,
        ];
        args.extend(connection.args());
        AppProcess::start_logging_to(env!("CARGO_BIN_EXE_streamtime-test-app"), &args, &[], log)
    }

    fn internal_topics(&self) -> Vec<String> {
        vec![
            format!("{}-by-initial-repartition", self.app_id),
            format!("{}-counts-changelog", self.app_id),
        ]
    }

    /// `n` records from `first` on, values starting with one of five letters (the app
    /// re-keys by the letter and counts).
    async fn produce(&self, first: usize, n: usize) {
        let input = (first..first + n)
            .map(|i| {
                let mut r = TestRecord::new(
                    &format!("k{i}"),
                    format!("{}{i}", ["a", "b", "c", "d", "e"][i % 5]).into_bytes(),
                    1_000 + i as i64,
                );
                r.partition = Some(i as i32 % PARTITIONS);
                r
            })
            .collect();
        records::produce(&self.servers, &self.input, input).await;
    }

    fn log(&self, what: &str) -> PathBuf {
        std::env::temp_dir().join(format!("{}-{what}.log", self.app_id))
    }
}

impl Drop for SecureApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.state_dir);
        let _ = std::fs::remove_file(&self.properties);
    }
}

/// Per initial, the counts on the output in offset order.
fn counts(out: &[TestRecord]) -> BTreeMap<String, Vec<i64>> {
    let mut sorted: Vec<&TestRecord> = out.iter().collect();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    let mut per_key: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in sorted {
        let n = i64::from_be_bytes(r.value.as_deref().unwrap().try_into().unwrap());
        per_key.entry(r.key_str()).or_default().push(n);
    }
    per_key
}

fn topic_exists(servers: &str, topic: &str) -> bool {
    let consumer: BaseConsumer = kafka::client_config(servers).create().unwrap();
    consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata")
        .topics()
        .iter()
        .any(|t| t.name() == topic && t.error().is_none())
}

fn wait_until_group_empty(servers: &str, group: &str) {
    let consumer: BaseConsumer = kafka::client_config(servers).create().unwrap();
    let what = format!("group {group} to become empty");
    eventually(Duration::from_secs(30), &what, || {
        let groups = consumer
            .fetch_group_list(Some(group), Duration::from_secs(10))
            .expect("group list");
        if groups.groups().iter().all(|g| g.members().is_empty()) {
            Ok(())
        } else {
            let members: usize = groups.groups().iter().map(|g| g.members().len()).sum();
            Err(format!("{members} members"))
        }
    })
}

async fn stop(app: &SecureApp, process: AppProcess) {
    process.terminate();
    let (servers, group) = (app.servers.clone(), app.app_id.clone());
    tokio::task::spawn_blocking(move || wait_until_group_empty(&servers, &group))
        .await
        .unwrap();
}

/// Waits until `process` exits; returns how long that took and the log it wrote.
fn wait_for_failure(process: &AppProcess, log: &Path) -> (Duration, String) {
    let started = Instant::now();
    let status = process.wait_for_exit(FAIL_FAST);
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let status = status.unwrap_or_else(|| {
        panic!("the application still runs {FAIL_FAST:?} after it started; its log:\n{text}")
    });
    assert!(
        !status.success(),
        "it exits with an error: {status}\n{text}"
    );
    (started.elapsed(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exactly_once_app_runs_restores_and_resets_with_only_the_documented_acls() {
    let app = SecureApp::new(USER).await;
    grant_application_acls(USER.0, &app.app_id, &app.input, &app.output, &[]);
    const N: usize = 100;
    app.produce(0, N).await;
    let log = app.log("run");
    let process = app.start(&log);
    let first = records::consume(&app.servers, &app.output, N, WAIT).await;
    assert_eq!(first.len(), N, "one count per input record");
    stop(&app, process).await;

    // Without local state the second run restores the counts from the changelog, so each
    // initial's counts go on where they stopped.
    std::fs::remove_dir_all(&app.state_dir).expect("the first run kept local state");
    app.produce(N, N).await;
    let process = app.start(&log);
    let all = records::consume(&app.servers, &app.output, 2 * N, WAIT).await;
    stop(&app, process).await;
    let per_initial = counts(&all);
    assert_eq!(per_initial.len(), 5);
    for (initial, seen) in &per_initial {
        let expected: Vec<i64> = (1..=(2 * N / 5) as i64).collect();
        assert_eq!(seen, &expected, "counts of {initial} across the restart");
    }
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !log_text.contains("streams-secret"),
        "the password is never logged"
    );

    // The reset, connecting with the same properties file as the same principal.
    let config = StreamsConfig::from_properties(&app.properties).unwrap();
    let options = ResetOptions::from_config(&config)
        .input_topics([app.input.clone()])
        .timeout(Duration::from_secs(30));
    let report = tokio::task::spawn_blocking(move || reset(&options))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("the reset fails under the documented ACLs: {e}"));
    let mut deleted = report.deleted_topics.clone();
    deleted.sort();
    assert_eq!(deleted, app.internal_topics(), "{report}");
    for topic in app.internal_topics() {
        assert!(!topic_exists(&app.servers, &topic), "{topic} deleted");
    }
    assert!(report.offsets.iter().all(|o| o.after == 0), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_ends_the_app_quickly_with_an_authentication_error() {
    let app = SecureApp::new(USER).await;
    grant_application_acls(USER.0, &app.app_id, &app.input, &app.output, &[]);
    app.write_properties(USER.0, "not-the-password");
    let log = app.log("wrong-password");
    let process = app.start(&log);
    let (took, text) = wait_for_failure(&process, &log);
    // librdkafka logs every failed login; the application's own error must say it too
    // (before, it waited for the metadata request to time out and said only that).
    let error = text
        .lines()
        .find(|l| l.starts_with("Error:"))
        .unwrap_or_else(|| panic!("the application reports its error:\n{text}"));
    assert!(
        error.contains("authentication failed") && error.contains("SCRAM-SHA-512"),
        "the error says authentication failed: {error}"
    );
    assert!(
        !text.contains("not-the-password"),
        "the password is never logged"
    );
    eprintln!("a wrong password ended the application after {took:?}");
}

/// Runs a new application as [`PARTIAL_USER`] with the documented ACLs minus `withheld`,
/// waits until it fails, and returns it with its log.
async fn fail_without(withheld: &str) -> (SecureApp, String) {
    let app = SecureApp::new(PARTIAL_USER).await;
    grant_application_acls(
        PARTIAL_USER.0,
        &app.app_id,
        &app.input,
        &app.output,
        &[withheld],
    );
    let log = app.log(&withheld.replace([':', '*'], "-"));
    let process = app.start(&log);
    let (took, text) = wait_for_failure(&process, &log);
    eprintln!("without {withheld} the application ended after {took:?}");
    (app, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_acl_ends_the_app_with_an_error_naming_the_resource() {
    // No Create on the internal topics: the first one it creates is named.
    let (app, text) = fail_without("internal:Create").await;
    let repartition = format!("{}-by-initial-repartition", app.app_id);
    assert!(
        text.contains(&format!("cannot create internal topic {repartition}"))
            && text.to_lowercase().contains("authorization"),
        "the error names the topic it may not create:\n{text}"
    );

    // No ACL on the input topic: the broker hides it, and the error says why instead of
    // claiming it does not exist.
    let (app, text) = fail_without("input:*").await;
    let denied = format!("topic authorization failed for source topic {}", app.input);
    assert!(
        text.contains(&denied),
        "the error names the input topic:\n{text}"
    );
}

#[test]
fn the_secured_broker_publishes_only_its_sasl_ssl_port_on_the_loopback_interface() {
    let addresses = kafka::published_addresses(broker().container_id());
    assert_eq!(addresses, vec!["127.0.0.1".to_string()]);
}
