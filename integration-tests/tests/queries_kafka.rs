//! Interactive queries and the catching-up flag on a real broker: a running app's key-value
//! and window stores answer for known keys; key metadata names the hosting instance, also
//! when a second instance has taken some of the tasks; a processor sees `is_catching_up`
//! while it works through a backlog and not for fresh records.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use streamtime::dsl::TimeWindows;
use streamtime::partitioner::partition_for_key;
use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::{
    Consumed, KafkaStreams, Materialized, ProcessResult, Processor, ProcessorContext, Produced,
    Record, StreamsBuilder, StreamsConfig, StreamsError,
};
use streamtime_integration_tests::records::{self, TestRecord};
use streamtime_integration_tests::wait::eventually;
use streamtime_integration_tests::{bootstrap_servers, topics};

const PARTITIONS: i32 = 4;
const USERS: usize = 20;
const WAIT: Duration = Duration::from_secs(90);
/// Event time of the first click (a multiple of the 10 s window; not 0, which producers
/// replace with the current time).
const BASE: i64 = 1_700_000_000_000;

/// What the probe saw: (value, catching up).
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

struct Probe {
    seen: Seen,
}

impl Processor<String, String, String, String> for Probe {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<String, String>,
        record: Record<String, String>,
    ) -> ProcessResult {
        self.seen
            .lock()
            .unwrap()
            .push((record.value.clone(), ctx.is_catching_up()));
        Ok(())
    }
}

struct Setup {
    servers: String,
    input: String,
    output: String,
    app_id: String,
    state_dirs: Vec<PathBuf>,
}

impl Setup {
    async fn new(prefix: &str) -> Self {
        let servers = bootstrap_servers();
        let input = topics::unique_name(&format!("{prefix}-in"));
        let output = topics::unique_name(&format!("{prefix}-out"));
        topics::create(&servers, &input, PARTITIONS).await;
        topics::create(&servers, &output, PARTITIONS).await;
        Setup {
            app_id: topics::unique_name(&format!("{prefix}-app")),
            servers,
            input,
            output,
            state_dirs: Vec::new(),
        }
    }

    /// user-i sends i + 1 clicks, one a second from `BASE`.
    async fn produce_clicks(&self) {
        let clicks: Vec<TestRecord> = (0..USERS)
            .flat_map(|i| {
                (0..=i).map(move |j| {
                    TestRecord::new(
                        &format!("user-{i}"),
                        format!("click-{i}-{j}").into_bytes(),
                        BASE + 1000 * j as i64,
                    )
                })
            })
            .collect();
        records::produce(&self.servers, &self.input, clicks).await;
    }

    /// Counts per user (`counts`), per user and 10 s window (`per-10s`), and a probe of the
    /// catching-up flag.
    fn start(&mut self, server: &str, threads: usize, seen: Seen) -> KafkaStreams {
        let builder = StreamsBuilder::new();
        let clicks = builder.stream(&self.input, Consumed::with(StringSerde, StringSerde));
        clicks
            .group_by_key()
            .count(Materialized::as_("counts"))
            .to_stream()
            .to(&self.output, Produced::with(StringSerde, I64Serde));
        clicks
            .group_by_key()
            .windowed_by(TimeWindows::of_size_and_grace(
                Duration::from_secs(10),
                Duration::from_secs(3600),
            ))
            .count(Materialized::as_("per-10s"));
        clicks.process(move || Probe { seen: seen.clone() });
        let state_dir = std::env::temp_dir().join(topics::unique_name("queries-state"));
        self.state_dirs.push(state_dir.clone());
        let config = StreamsConfig::new(&self.app_id, &self.servers)
            .num_stream_threads(threads)
            .commit_interval(Duration::from_millis(200))
            .application_server(server)
            .catching_up_lag_threshold(10)
            .state_dir(state_dir);
        let mut app = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
        app.start().unwrap();
        app
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        for dir in &self.state_dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn user(i: usize) -> String {
    format!("user-{i}")
}

/// A query, retried while it fails: queries fail while the app rebalances, which it may do
/// once more after its tasks caught up.
fn retried<T>(what: &str, query: impl Fn() -> Result<T, StreamsError>) -> T {
    eventually(WAIT, what, || query().map_err(|e| e.to_string()))
}

fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().expect("no panic")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_of_a_running_app_answer_queries() {
    let mut setup = Setup::new("queries").await;
    // A backlog before the app starts: the app is catching up while it works through it.
    setup.produce_clicks().await;
    let seen: Seen = Arc::default();
    let mut app = setup.start("localhost:7070", 2, seen.clone());
    let counts = app
        .key_value_store("counts", StringSerde, I64Serde)
        .unwrap()
        .with_timeout(Duration::from_secs(5));
    let expected: BTreeMap<String, i64> = (0..USERS).map(|i| (user(i), i as i64 + 1)).collect();

    let reader = counts.clone();
    // Queries fail while tasks restore or move (the app may still rebalance once it caught
    // up): they are retried.
    let all = blocking(move || {
        eventually(WAIT, "every count in the store, by scan and by key", || {
            let all = reader.all().map_err(|e| e.to_string())?;
            if all.len() != USERS || all.iter().any(|(k, v)| expected[k] != *v) {
                return Err(format!("{} of {USERS} counts: {all:?}", all.len()));
            }
            for i in 0..USERS {
                let got = reader.get(&user(i)).map_err(|e| e.to_string())?;
                if got != Some(i as i64 + 1) {
                    return Err(format!("{}: {got:?}", user(i)));
                }
            }
            Ok(all)
        })
    });
    let keys: Vec<&String> = all.iter().map(|(k, _)| k).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "all() is in key order");
    assert_eq!(retried("get", || counts.get(&"nobody".to_string())), None);
    let range = retried("range", || counts.range(&user(1), &user(12)));
    assert_eq!(
        range.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        vec!["user-1", "user-10", "user-11", "user-12"]
    );

    // Windows: user-19 clicked at 0..19 s, ten times in each of [0, 10 s) and [10 s, 20 s)
    // (from BASE).
    let windows = app
        .window_store("per-10s", StringSerde, I64Serde)
        .unwrap()
        .with_timeout(Duration::from_secs(5));
    assert_eq!(
        retried("fetch", || windows.fetch(&user(19), BASE, BASE + 60_000)),
        vec![(BASE, 10), (BASE + 10_000, 10)]
    );
    assert_eq!(
        retried("fetch", || windows.fetch(
            &user(3),
            BASE + 10_000,
            BASE + 60_000
        )),
        vec![]
    );
    let first_windows = retried("fetch_all", || windows.fetch_all(BASE, BASE));
    assert_eq!(first_windows.len(), USERS);
    assert!(first_windows
        .iter()
        .all(|(k, start, n)| *start == BASE && *n == expected_first_window(k)));

    // Metadata: one instance hosts everything.
    for i in 0..USERS {
        let key = user(i);
        let meta = app
            .query_metadata_for_key("counts", &key, &StringSerde)
            .unwrap();
        assert_eq!(
            meta.partition,
            partition_for_key(key.as_bytes(), PARTITIONS)
        );
        assert_eq!(meta.task.partition, meta.partition);
        assert!(meta.local, "{key}");
        assert_eq!(meta.host.as_deref(), Some("localhost:7070"));
    }

    // Bad requests are clear errors.
    let wrong_kind = app
        .window_store("counts", StringSerde, I64Serde)
        .err()
        .expect("counts is a key-value store");
    assert!(
        matches!(&wrong_kind, StreamsError::Topology(m) if m.contains("not a window store")),
        "{wrong_kind}"
    );
    let missing = app
        .key_value_store("nope", StringSerde, I64Serde)
        .err()
        .expect("no such store");
    assert!(
        missing.to_string().contains("no store called nope"),
        "{missing}"
    );

    // Catching up: the backlog's first records were processed while catching up; clicks
    // that arrive once the app has caught up are fresh.
    let backlog = USERS * (USERS + 1) / 2;
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), backlog);
        assert!(
            seen[0].1,
            "the first backlog record is processed while catching up"
        );
    }
    let fresh: Vec<TestRecord> = (0..8)
        .map(|i| TestRecord::new(&user(i), format!("fresh-{i}").into_bytes(), BASE + 100_000))
        .collect();
    records::produce(&setup.servers, &setup.input, fresh).await;
    let probe = seen.clone();
    let fresh_seen = blocking(move || {
        eventually(WAIT, "the fresh clicks processed", || {
            let seen = probe.lock().unwrap();
            let fresh: Vec<bool> = seen
                .iter()
                .filter(|(v, _)| v.starts_with("fresh-"))
                .map(|(_, c)| *c)
                .collect();
            if fresh.len() == 8 {
                Ok(fresh)
            } else {
                Err(format!("{} of 8 fresh clicks processed", fresh.len()))
            }
        })
    });
    assert_eq!(
        fresh_seen,
        vec![false; 8],
        "fresh records are not catching up"
    );

    app.close().unwrap();
    let after_close = counts.get(&user(0)).unwrap_err();
    assert!(
        after_close.to_string().contains("not running"),
        "{after_close}"
    );
}

/// user-i's count in window [0, 10 s): its clicks at 0..=i s that fall before 10 s.
fn expected_first_window(key: &str) -> i64 {
    let i: i64 = key.trim_start_matches("user-").parse().unwrap();
    (i + 1).min(10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_metadata_names_the_instance_that_hosts_the_key() {
    let mut setup = Setup::new("queries-two").await;
    setup.produce_clicks().await;
    let first = setup.start("localhost:7071", 1, Arc::default());
    let first_counts = first
        .key_value_store("counts", StringSerde, I64Serde)
        .unwrap();
    let reader = first_counts.clone();
    blocking(move || {
        eventually(WAIT, "all counts on the first instance", || {
            let all = reader.all().map_err(|e| e.to_string())?;
            if all.len() == USERS {
                Ok(())
            } else {
                Err(format!("{} of {USERS} counts", all.len()))
            }
        })
    });

    // A second instance joins: the group splits the four tasks between them.
    let second = setup.start("localhost:7072", 1, Arc::default());
    let second_counts = second
        .key_value_store("counts", StringSerde, I64Serde)
        .unwrap();
    let (mut first, mut second) = blocking(move || {
        eventually(WAIT, "the tasks split between the instances", || {
            let a: Vec<_> = first.task_status().into_iter().map(|t| t.id).collect();
            let b: Vec<_> = second.task_status().into_iter().map(|t| t.id).collect();
            let disjoint = a.iter().all(|t| !b.contains(t));
            if a.len() == 2 && b.len() == 2 && disjoint {
                Ok(())
            } else {
                Err(format!("the first runs {a:?}, the second {b:?}"))
            }
        });
        (first, second)
    });

    for i in 0..USERS {
        let key = user(i);
        let a = first
            .query_metadata_for_key("counts", &key, &StringSerde)
            .unwrap();
        let b = second
            .query_metadata_for_key("counts", &key, &StringSerde)
            .unwrap();
        assert_eq!(a.partition, b.partition);
        assert!(a.local != b.local, "{key}: exactly one instance hosts it");
        let (hosting, other_name) = if a.local {
            (&first_counts, "localhost:7071")
        } else {
            (&second_counts, "localhost:7072")
        };
        // Each instance names the host, its own or the other's.
        assert_eq!(
            a.host.as_deref(),
            Some(other_name),
            "{key} seen from the first"
        );
        assert_eq!(
            b.host.as_deref(),
            Some(other_name),
            "{key} seen from the second"
        );
        let hosting = hosting.clone();
        let k = key.clone();
        let count = blocking(move || {
            eventually(WAIT, "the hosting instance answers", || {
                hosting.get(&k).map_err(|e| e.to_string())
            })
        });
        assert_eq!(count, Some(i as i64 + 1), "{key}");
        let not_hosting = if a.local {
            &second_counts
        } else {
            &first_counts
        };
        let error = not_hosting.get(&key).unwrap_err();
        assert!(error.to_string().contains("not hosted"), "{error}");
    }
    first.close().unwrap();
    second.close().unwrap();
}
