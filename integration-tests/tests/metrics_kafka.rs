//! Metrics on a real broker, read the way Prometheus reads them: an app with
//! `prometheus_endpoint` counts its records in a changelogged store; scraping the endpoint
//! over plain HTTP gives per-task series whose values match the input: processed and
//! dropped records, stream time, the exact sum of record lateness, zero consumer lag,
//! commits; `KafkaStreams::metrics()` gives the same values in process. A second instance
//! with empty local state then restores the store, and the restore series match the
//! changelog.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use streamtime::error_policy::DeserializationErrorPolicy;
use streamtime::partitioner::partition_for_key;
use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::{Consumed, KafkaStreams, Materialized, Produced, StreamsBuilder, StreamsConfig};
use streamtime_integration_tests::records::{self, TestRecord};
use streamtime_integration_tests::wait::eventually_async;
use streamtime_integration_tests::{bootstrap_servers, topics};

const PARTITIONS: i32 = 2;
const WAIT: Duration = Duration::from_secs(60);
const BASE_TS: i64 = 1_700_000_000_000;

/// One scrape: series (name and sorted labels) → value.
#[derive(Debug)]
struct Scrape(BTreeMap<(String, BTreeMap<String, String>), f64>);

impl Scrape {
    fn fetch(addr: SocketAddr) -> Scrape {
        let mut stream = TcpStream::connect(addr).expect("the endpoint accepts connections");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        let body = &response[response.find("\r\n\r\n").expect("headers end") + 4..];
        // Prometheus' text format: `name{k="v",...} value` or `name value`, comments `#`.
        // (The response may be chunked; chunk-size lines do not parse as series.)
        let mut series = BTreeMap::new();
        for line in body.lines().filter(|l| !l.starts_with('#')) {
            let Some((head, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match head.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (head, ""),
            };
            let labels = labels
                .split(',')
                .filter(|kv| !kv.is_empty())
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
                .collect();
            series.insert((name.to_string(), labels), value);
        }
        Scrape(series)
    }

    /// The value of `name` for task `task` (plus `extra` labels), if present.
    fn task(&self, name: &str, task: &str, extra: &[(&str, &str)]) -> Option<f64> {
        self.0.iter().find_map(|((n, labels), v)| {
            let matches = n == name
                && labels.get("task").map(String::as_str) == Some(task)
                && extra
                    .iter()
                    .all(|(k, want)| labels.get(*k).map(String::as_str) == Some(*want));
            matches.then_some(*v)
        })
    }
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Per key, values 1..; timestamps mostly rising with some records up to 5 s behind, and
/// one record per partition with a value that is not an i64 (3 bytes).
fn input() -> Vec<TestRecord> {
    let mut out = Vec::new();
    for i in 0..400_i64 {
        let key = format!("k{}", i % 13);
        let late_by = if i % 7 == 3 { 5_000 } else { 0 };
        out.push(TestRecord::new(
            &key,
            i.to_be_bytes().to_vec(),
            BASE_TS + i * 100 - late_by,
        ));
    }
    for p in 0..PARTITIONS {
        let mut bad = TestRecord::new("bad", vec![1, 2, 3], BASE_TS);
        bad.partition = Some(p);
        out.push(bad);
    }
    out
}

fn app(
    servers: &str,
    app_id: &str,
    input: &str,
    output: &str,
    endpoint: SocketAddr,
) -> KafkaStreams {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(StringSerde, I64Serde))
        .group_by_key()
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(output, Produced::with(StringSerde, I64Serde));
    let state_dir = std::env::temp_dir().join(topics::unique_name("metrics-state"));
    // No record cache: one count per input record, which the test reads back.
    let config = StreamsConfig::new(app_id, servers)
        .commit_interval(Duration::from_millis(200))
        .cache_max_bytes(0)
        .state_dir(state_dir)
        .deserialization_error_policy(DeserializationErrorPolicy::LogAndContinue)
        .prometheus_endpoint(endpoint);
    let mut app = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
    app.start().unwrap();
    app
}

/// Scrapes until `done` holds for a scrape (the gauges are published every 200 ms); `what`
/// names what `done` waits for.
async fn scrape_until(endpoint: SocketAddr, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let done = &done;
    eventually_async(WAIT, what, move || async move {
        let scrape = Scrape::fetch(endpoint);
        if done(&scrape) {
            Ok(scrape)
        } else {
            Err(format!("{scrape:?}"))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_endpoint_serves_per_task_series_with_the_inputs_values() {
    let servers = bootstrap_servers();
    let input_topic = topics::unique_name("metrics-in");
    let output_topic = topics::unique_name("metrics-out");
    topics::create(&servers, &input_topic, PARTITIONS).await;
    topics::create(&servers, &output_topic, PARTITIONS).await;
    let records = input();
    records::produce(&servers, &input_topic, records.clone()).await;

    // Independently, per partition in offset order: records taken (the malformed one too:
    // it is processed, then skipped by the error policy), max timestamp, and the sum of
    // lateness (stream time before the record minus its timestamp, from the second record).
    let mut partitions: BTreeMap<i32, Vec<&TestRecord>> = BTreeMap::new();
    for r in &records {
        let p = r
            .partition
            .unwrap_or_else(|| partition_for_key(r.key.as_deref().unwrap_or_default(), PARTITIONS));
        partitions.entry(p).or_default().push(r);
    }
    let mut want = BTreeMap::new();
    for (p, recs) in &partitions {
        let mut stream_time = -1_i64;
        let mut lateness = 0_i64;
        for r in recs {
            if stream_time >= 0 {
                lateness += (stream_time - r.timestamp).max(0);
            }
            stream_time = stream_time.max(r.timestamp);
        }
        want.insert(
            format!("0_{p}"),
            (recs.len() as f64, stream_time as f64, lateness as f64),
        );
    }
    assert!(
        want.values().all(|w| w.2 > 0.0),
        "the input has late records in every partition"
    );

    let endpoint = free_port();
    let app_id = topics::unique_name("metrics-app");
    let mut first = app(&servers, &app_id, &input_topic, &output_topic, endpoint);
    let valid_total = records.len() - PARTITIONS as usize;
    records::consume(&servers, &output_topic, valid_total, WAIT).await;
    let scrape = scrape_until(endpoint, "all records processed, no lag, a commit", |s| {
        want.iter().all(|(task, w)| {
            s.task("streamtime_processed_records_total", task, &[]) == Some(w.0)
                && s.task("streamtime_consumer_lag_records", task, &[]) == Some(0.0)
                && s.task("streamtime_commit_latency_seconds_count", task, &[])
                    .is_some_and(|n| n > 0.0)
        })
    })
    .await;
    for (task, (processed, stream_time, lateness)) in &want {
        let get = |name: &str, extra: &[(&str, &str)]| {
            scrape
                .task(name, task, extra)
                .unwrap_or_else(|| panic!("no {name}{extra:?} for task {task} in {scrape:#?}"))
        };
        assert_eq!(get("streamtime_processed_records_total", &[]), *processed);
        assert_eq!(
            get(
                "streamtime_dropped_records_total",
                &[("reason", "deserialization_error")]
            ),
            1.0
        );
        assert_eq!(get("streamtime_stream_time_ms", &[]), *stream_time);
        assert_eq!(get("streamtime_record_lateness_ms_sum", &[]), *lateness);
        assert_eq!(
            get("streamtime_record_lateness_ms_count", &[]),
            processed - 1.0
        );
        assert_eq!(get("streamtime_consumer_lag_records", &[]), 0.0);
        assert_eq!(get("streamtime_buffered_records", &[]), 0.0);
        assert_eq!(get("streamtime_enforced_processing_total", &[]), 0.0);
        assert_eq!(get("streamtime_task_stalled", &[]), 0.0);
        assert!(get("streamtime_commit_latency_seconds_count", &[]) > 0.0);
        let latency = get("streamtime_commit_latency_seconds_sum", &[]);
        assert!(latency > 0.0 && latency < 60.0, "commit latency {latency}");
    }
    // The in-process snapshot agrees with the scrape (both are refreshed by the threads,
    // so it may take one more refresh).
    let first_ref = &first;
    let want_ref = &want;
    eventually_async(
        WAIT,
        "the metrics() snapshot to match the scrape",
        move || async move {
            let snapshot = first_ref.metrics();
            let value = |name: &str, task: &str| {
                snapshot
                    .iter()
                    .find(|m| m.name == name && m.tag("task") == Some(task))
                    .map(|m| m.value)
            };
            for (task, (processed, stream_time, _)) in want_ref {
                let got = (
                    value("streamtime_processed_records_total", task),
                    value("streamtime_stream_time_ms", task),
                    value("streamtime_dropped_records_total", task),
                );
                if got != (Some(*processed), Some(*stream_time), Some(1.0)) {
                    return Err(format!("task {task}: {got:?} in {snapshot:?}"));
                }
            }
            Ok(())
        },
    )
    .await;
    first.close().unwrap();

    // A second instance without local state restores the store from its changelog.
    let changelog = format!("{app_id}-counts-changelog");
    let written = topics::watermarks(&servers, &changelog).await;
    let mut second = app(&servers, &app_id, &input_topic, &output_topic, endpoint);
    // The counter moves with each restored batch; the remaining gauge drops to zero only
    // when the task's restore is finished (after its stores are flushed), so wait for both.
    let scrape = scrape_until(endpoint, "every changelog restored and finished", |s| {
        (0..PARTITIONS).all(|p| {
            let task = format!("0_{p}");
            s.task("streamtime_restored_records_total", &task, &[])
                == Some(written[p as usize].1 as f64)
                && s.task("streamtime_restore_remaining_records", &task, &[]) == Some(0.0)
        })
    })
    .await;
    second.close().unwrap();
    for (p, (low, high)) in written.iter().enumerate() {
        let task = format!("0_{p}");
        assert!(*high > 0 && *low == 0);
        let get = |name: &str| {
            scrape
                .task(name, &task, &[])
                .unwrap_or_else(|| panic!("no {name} for task {task} in {scrape:#?}"))
        };
        assert_eq!(get("streamtime_restored_records_total"), *high as f64);
        assert_eq!(get("streamtime_restore_total_records"), *high as f64);
        assert_eq!(get("streamtime_restore_remaining_records"), 0.0);
        assert!(get("streamtime_restore_rate_records_per_second") > 0.0);
    }
}
