//! The stream-time engine against a real broker: repartitioning keeps event time and headers,
//! internal topics get their configs and are purged, missing topics fail clearly, stream time survives a
//! restart, a SIGKILLed app loses no input (at-least-once), and a partition that rejoined time
//! synchronisation on data stays in across exclusion changes and rebalances.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use streamtime::partitioner::partition_for_key;
use streamtime::serdes::StringSerde;
use streamtime::{
    Consumed, KafkaStreams, Produced, Repartitioned, StreamsBuilder, StreamsConfig, StreamsError,
};
use streamtime_integration_tests::app_process::AppProcess;
use streamtime_integration_tests::records::{self, TestRecord};
use streamtime_integration_tests::wait::eventually_async;
use streamtime_integration_tests::{bootstrap_servers, topics};

const WAIT: Duration = Duration::from_secs(180);

/// Tests that run apps as processes and kill them take turns: on two cores, overlapping kill
/// cycles stretch every restart past the timeouts the tests are about.
static PROCESS_TESTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn config(app: &str, servers: &str) -> StreamsConfig {
    StreamsConfig::new(app, servers).commit_interval(Duration::from_millis(200))
}

/// `input` re-keyed by the value's first letter and repartitioned through `by-letter`.
fn rekey_topology(input: &str, output: &str) -> streamtime::Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(StringSerde, StringSerde))
        .select_key(|_k, v: &String| v[..1].to_string())
        .repartition(Repartitioned::as_("by-letter"))
        .to(output, Produced::default());
    builder.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repartitioned_pipeline_preserves_event_time_and_headers() {
    let servers = bootstrap_servers();
    let (input, output) = (topics::unique_name("rp-in"), topics::unique_name("rp-out"));
    topics::create(&servers, &input, 3).await;
    topics::create(&servers, &output, 2).await;
    let sent: Vec<TestRecord> = (0..300_i64)
        .map(|i| {
            let letter = (b'a' + (i % 11) as u8) as char;
            TestRecord::new(
                &format!("k{i}"),
                format!("{letter}-{i}").into_bytes(),
                1_000_000 + (i * 37) % 500,
            )
            .with_header("trace", format!("t{i}").as_bytes())
        })
        .collect();
    records::produce(&servers, &input, sent.clone()).await;

    let app_id = topics::unique_name("rp-app");
    let mut app =
        KafkaStreams::new(rekey_topology(&input, &output), config(&app_id, &servers)).unwrap();
    app.start().unwrap();
    let seen = records::consume(&servers, &output, sent.len(), WAIT).await;
    // Consumed repartition records are deleted after the commit that covers them.
    let repartition = format!("{app_id}-by-letter-repartition");
    {
        let (servers, repartition, sent) = (&servers, &repartition, &sent);
        let awaited = format!("{repartition} to be purged");
        eventually_async(Duration::from_secs(30), &awaited, move || async move {
            let marks = topics::watermarks(servers, repartition).await;
            assert_eq!(
                marks.len(),
                3,
                "sized like the largest input of the sub-topology writing it"
            );
            let (purged, written): (i64, i64) =
                marks.iter().fold((0, 0), |(l, h), m| (l + m.0, h + m.1));
            assert_eq!(written, sent.len() as i64);
            if purged == written {
                Ok(())
            } else {
                Err(format!("repartition topic not purged: {marks:?}"))
            }
        })
        .await;
    }
    app.close().unwrap();

    assert_eq!(seen.len(), sent.len());
    let by_value: BTreeMap<&[u8], &TestRecord> = sent
        .iter()
        .map(|r| (r.value.as_deref().unwrap(), r))
        .collect();
    for r in &seen {
        let original = by_value[r.value.as_deref().unwrap()];
        let new_key = &original.value.as_deref().unwrap()[..1];
        assert_eq!(r.key.as_deref(), Some(new_key));
        assert_eq!(
            r.timestamp, original.timestamp,
            "event time survives the repartition topic"
        );
        assert_eq!(
            r.headers, original.headers,
            "headers survive the repartition topic"
        );
        assert_eq!(r.partition, Some(partition_for_key(new_key, 2)));
    }

    let cfg = topics::config(&servers, &repartition).await;
    assert_eq!(
        cfg.get("cleanup.policy").map(String::as_str),
        Some("delete")
    );
    assert_eq!(cfg.get("retention.ms").map(String::as_str), Some("-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_source_topic_fails_before_processing() {
    let servers = bootstrap_servers();
    let output = topics::unique_name("missing-out");
    topics::create(&servers, &output, 1).await;
    let input = topics::unique_name("never-created");
    let mut app = KafkaStreams::new(
        rekey_topology(&input, &output),
        config(&topics::unique_name("missing"), &servers),
    )
    .unwrap();
    match app.start() {
        Err(StreamsError::MissingTopic(message)) => assert!(message.contains(&input), "{message}"),
        other => panic!("expected a missing-topic error, got {other:?}"),
    }
    let bad = StreamsConfig::new("bad app id", &servers);
    assert!(matches!(
        KafkaStreams::new(rekey_topology("a", "b"), bad),
        Err(StreamsError::Config(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_time_is_restored_from_commit_metadata() {
    let servers = bootstrap_servers();
    let (input, output) = (topics::unique_name("pt-in"), topics::unique_name("pt-out"));
    topics::create(&servers, &input, 1).await;
    topics::create(&servers, &output, 1).await;
    let batch = |from: i64, ts: i64| -> Vec<TestRecord> {
        (from..from + 10)
            .map(|i| TestRecord::new("k", format!("v{i}").into_bytes(), ts + i))
            .collect()
    };
    let topology = || {
        let builder = StreamsBuilder::new();
        builder
            .stream(&input, Consumed::with(StringSerde, StringSerde))
            .to(&output, Produced::default());
        builder.build().unwrap()
    };
    records::produce(&servers, &input, batch(0, 50_000)).await;
    let app_id = topics::unique_name("pt-app");
    let mut app = KafkaStreams::new(topology(), config(&app_id, &servers)).unwrap();
    app.start().unwrap();
    records::consume(&servers, &output, 10, WAIT).await;
    app.close().unwrap();

    // Restarted with nothing new to read, the task starts at the committed partition time.
    let mut app = KafkaStreams::new(topology(), config(&app_id, &servers)).unwrap();
    app.start().unwrap();
    let status = {
        let app = &app;
        let awaited = "the restarted app to report its task";
        eventually_async(WAIT, awaited, move || async move {
            let task = app.task_status().into_iter().next();
            task.ok_or_else(|| format!("no task; state {:?}", app.state()))
        })
        .await
    };
    app.close().unwrap();
    assert_eq!(status.stream_time, 50_009, "{status:?}");
    assert_eq!(status.processed, 0);
}

struct TestApp;

impl TestApp {
    fn start(servers: &str, app_id: &str, input: &str, output: &str, extra: &[&str]) -> AppProcess {
        let mut args = vec![
            "--bootstrap-servers",
            servers,
            "--application-id",
            app_id,
            "--input",
            input,
            "--output",
            output,
        ];
        args.extend_from_slice(extra);
        AppProcess::start(env!("CARGO_BIN_EXE_streamtime-test-app"), &args)
    }
}

/// Runs the test app over 6 000 inputs produced in three rounds, SIGKILLing it after the
/// first two, and returns the inputs and what a read_committed reader sees in the output.
/// The 5 s commit interval makes each kill land on processed but uncommitted work.
async fn run_with_kills(prefix: &str, extra: &[&str]) -> (Vec<String>, Vec<String>, String) {
    let _turn = PROCESS_TESTS.lock().await;
    let servers = bootstrap_servers();
    let (input, output) = (
        topics::unique_name(&format!("{prefix}-in")),
        topics::unique_name(&format!("{prefix}-out")),
    );
    topics::create(&servers, &input, 3).await;
    topics::create(&servers, &output, 3).await;
    let app_id = topics::unique_name(&format!("{prefix}-app"));
    let total = 6_000_usize;
    let all: Vec<TestRecord> = (0..total)
        .map(|i| {
            let letter = (b'a' + (i % 26) as u8) as char;
            TestRecord::new(
                &format!("k{i}"),
                format!("{letter}{i}").into_bytes(),
                1_000 + i as i64,
            )
        })
        .collect();
    let extra: Vec<&str> = ["--commit-interval-ms", "5000"]
        .iter()
        .chain(extra)
        .copied()
        .collect();
    let extra = &extra[..];
    let mut app = TestApp::start(&servers, &app_id, &input, &output, extra);
    for (round, chunk) in all.chunks(total / 3).enumerate() {
        records::produce(&servers, &input, chunk.to_vec()).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        if round < 2 {
            app.kill();
            app = TestApp::start(&servers, &app_id, &input, &output, extra);
        }
    }
    let inputs: Vec<String> = all
        .iter()
        .map(|r| {
            String::from_utf8(r.value.clone().unwrap())
                .unwrap()
                .to_uppercase()
        })
        .collect();
    let wanted: BTreeSet<&[u8]> = inputs.iter().map(|v| v.as_bytes()).collect();
    // Replays can fill the output with duplicates before every input got through: wait for
    // each distinct input, not for a count.
    let seen = records::consume_until(&servers, &output, WAIT, "read_committed", |seen| {
        let got: BTreeSet<&[u8]> = seen.iter().filter_map(|r| r.value.as_deref()).collect();
        wanted.iter().all(|v| got.contains(v))
    })
    .await;
    app.terminate();
    let outputs = seen
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    (inputs, outputs, output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_input() {
    let (inputs, outputs, _) = run_with_kills("kill", &[]).await;
    let seen: BTreeSet<&String> = outputs.iter().collect();
    let missing: Vec<&String> = inputs.iter().filter(|v| !seen.contains(v)).collect();
    assert!(
        missing.is_empty(),
        "{} inputs never reached the output, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    // At-least-once: duplicates are allowed, losses are not.
    assert!(outputs.len() >= inputs.len());
    eprintln!(
        "at-least-once: {} outputs for {} inputs after 2 SIGKILLs (replayed duplicates are allowed)",
        outputs.len(),
        inputs.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_exactly_once_gives_each_output_once() {
    let instance = topics::unique_name("eos-instance");
    let (inputs, outputs, topic) =
        run_with_kills("eos", &["--exactly-once", "--instance-id", &instance]).await;
    if outputs.len() < inputs.len() {
        // Tell a stuck last-stable offset (records written but not readable) from lost output.
        let raw = records::consume_until(
            &bootstrap_servers(),
            &topic,
            Duration::from_secs(10),
            "read_uncommitted",
            |_| false,
        )
        .await;
        panic!(
            "read_committed sees {} of {} outputs; read_uncommitted sees {} records",
            outputs.len(),
            inputs.len(),
            raw.len()
        );
    }
    let mut sorted_in = inputs.clone();
    sorted_in.sort();
    let mut sorted_out = outputs.clone();
    sorted_out.sort();
    let duplicates = outputs.len() as i64 - outputs.iter().collect::<BTreeSet<_>>().len() as i64;
    assert_eq!(
        duplicates, 0,
        "a read_committed reader sees no duplicates under exactly-once"
    );
    assert_eq!(sorted_out, sorted_in, "every input exactly once");
}

/// Whether `app`'s running tasks hold `topic`'s partition 0, and whether it is excluded from
/// time synchronisation.
fn excluded_state(app: &KafkaStreams, topic: &str) -> Option<bool> {
    app.task_status()
        .iter()
        .flat_map(|t| t.partitions.iter())
        .find(|p| &*p.partition.topic == topic && p.partition.partition == 0)
        .map(|p| p.excluded)
}

/// Waits until `app` reports `topic`'s partition 0 with exclusion `excluded`.
async fn until_excluded(app: &KafkaStreams, topic: &str, excluded: bool) {
    let what = format!(
        "{topic}-0 to be {}",
        if excluded { "excluded" } else { "included" }
    );
    eventually_async(WAIT, &what, || async move {
        match excluded_state(app, topic) {
            Some(e) if e == excluded => Ok(()),
            other => Err(format!("excluded: {other:?}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_that_rejoined_on_data_stays_in_across_exclusion_changes_and_rebalances() {
    let servers = bootstrap_servers();
    let (a, b, out) = (
        topics::unique_name("rejoin-a"),
        topics::unique_name("rejoin-b"),
        topics::unique_name("rejoin-out"),
    );
    for topic in [&a, &b, &out] {
        topics::create(&servers, topic, 1).await;
    }
    // One task reads both topics' partition 0.
    let topology = || {
        let builder = StreamsBuilder::new();
        let from_a = builder.stream(&a, Consumed::with(StringSerde, StringSerde));
        let from_b = builder.stream(&b, Consumed::with(StringSerde, StringSerde));
        from_a.merge(&from_b).to(&out, Produced::default());
        builder.build().unwrap()
    };
    let app_id = topics::unique_name("rejoin-app");
    let mut app = KafkaStreams::new(topology(), config(&app_id, &servers)).unwrap();
    let states = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = states.clone();
    app.set_state_listener(move |new, _| seen.lock().unwrap().push(new))
        .unwrap();
    app.start().unwrap();
    let record = |v: &str, ts| vec![TestRecord::new("k", v.as_bytes().to_vec(), ts)];
    records::produce(&servers, &a, record("a1", 1_000)).await;
    records::consume(&servers, &out, 1, WAIT).await;

    app.exclude_from_time_sync(&b, None).unwrap();
    until_excluded(&app, &b, true).await;
    records::produce(&servers, &b, record("b1", 2_000)).await;
    records::consume(&servers, &out, 2, WAIT).await;
    until_excluded(&app, &b, false).await;

    // Another exclusion change makes the thread apply the app's exclusions again.
    app.exclude_from_time_sync(&a, Some(0)).unwrap();
    until_excluded(&app, &a, true).await;
    assert_eq!(
        excluded_state(&app, &b),
        Some(false),
        "{b}-0 rejoined on data and stays in when another exclusion changes"
    );

    // A second instance joins and leaves: once the task is back on the first instance,
    // created anew, the app's exclusions are applied to it afresh ({a}-0 excluded again).
    let mut other = KafkaStreams::new(topology(), config(&app_id, &servers)).unwrap();
    other.start().unwrap();
    let (app_ref, other_ref, a_ref) = (&app, &other, &a);
    eventually_async(WAIT, "the instances to share the group", || async move {
        let running = app_ref.state() == streamtime::lifecycle::State::Running
            && other_ref.state() == streamtime::lifecycle::State::Running;
        let held = excluded_state(app_ref, a_ref).or(excluded_state(other_ref, a_ref));
        match (running, held) {
            (true, Some(_)) => Ok(()),
            state => Err(format!("both running, task held: {state:?}")),
        }
    })
    .await;
    let rebalances = states.lock().unwrap().len();
    other.close().unwrap();
    let states = &states;
    eventually_async(
        WAIT,
        "a rebalance after the second instance left",
        || async move {
            let since: Vec<_> = states.lock().unwrap()[rebalances..].to_vec();
            match since.contains(&streamtime::lifecycle::State::Rebalancing)
                && since.last() == Some(&streamtime::lifecycle::State::Running)
            {
                true => Ok(()),
                false => Err(format!("states since: {since:?}")),
            }
        },
    )
    .await;
    until_excluded(&app, &a, true).await;
    assert_eq!(
        excluded_state(&app, &b),
        Some(false),
        "{b}-0 stays in after the rebalance"
    );
    app.close().unwrap();
}
