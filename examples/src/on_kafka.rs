//! Running the examples against a real broker: create topics, produce sample input, run the
//! topology until its output is complete, and decode what it wrote. The `demo` binary prints
//! the results; the Kafka tests assert on them.

use std::collections::BTreeMap;
use std::time::Duration;

use streamtime::dsl::Windowed;
use streamtime::serdes::{I64Serde, Serde, StringSerde};
use streamtime::{KafkaStreams, StreamsConfig, StreamsError, Topology};
use streamtime_integration_tests::records::{self, TestRecord};
use streamtime_integration_tests::topics;

use crate::{clickstream, sensors, wordcount};

/// How long a run waits for its output before reporting what it has.
pub const WAIT: Duration = Duration::from_secs(60);

/// Creates `names` with `partitions` partitions each (topics that exist are kept).
pub async fn create_topics(servers: &str, names: &[&str], partitions: i32) {
    for name in names {
        topics::create(servers, name, partitions).await;
    }
}

/// Starts `topology` as application `config`, reads `output` from the start until `done`
/// holds for what was read (or [`WAIT`] passed), closes the app and returns the records.
pub async fn run_until(
    topology: Topology,
    config: StreamsConfig,
    output: &str,
    done: impl Fn(&[TestRecord]) -> bool,
) -> Result<Vec<TestRecord>, StreamsError> {
    let servers = config.bootstrap_servers().to_string();
    let mut app = KafkaStreams::new(topology, config)?;
    app.start()?;
    let out = records::consume_until(&servers, output, WAIT, "read_committed", |seen| {
        done(seen) || !app.is_running()
    })
    .await;
    if let Some(e) = app.error() {
        return Err(e);
    }
    app.close()?;
    Ok(out)
}

/// A config for a demo or test run: commits every 200 ms so results show up quickly.
pub fn config(app_id: &str, servers: &str) -> StreamsConfig {
    StreamsConfig::new(app_id, servers).commit_interval(Duration::from_millis(200))
}

fn decode<T>(serde: &impl Serde<T>, bytes: Option<&[u8]>) -> T {
    match bytes {
        Some(b) => serde.deserialize(b),
        None => serde.null_value(),
    }
    .expect("output written by the example's own serde")
}

/// Word count: produces `lines` (`(key, line, timestamp)`), runs the topology and returns
/// the last count written per word, once every word of `expected` reached its count.
pub async fn wordcount(
    servers: &str,
    app_id: &str,
    topics: &wordcount::Topics,
    lines: &[(String, String, i64)],
    expected: &BTreeMap<String, i64>,
) -> Result<BTreeMap<String, i64>, StreamsError> {
    let input = lines
        .iter()
        .map(|(k, line, ts)| TestRecord::new(k, line.as_bytes().to_vec(), *ts))
        .collect();
    records::produce(servers, &topics.lines, input).await;
    let last = |out: &[TestRecord]| -> BTreeMap<String, i64> {
        out.iter()
            .map(|r| {
                (
                    decode(&StringSerde, r.key.as_deref()),
                    decode(&I64Serde, r.value.as_deref()),
                )
            })
            .collect()
    };
    let out = run_until(
        wordcount::topology(topics)?,
        config(app_id, servers),
        &topics.counts,
        |seen| last(seen) == *expected,
    )
    .await?;
    Ok(last(&out))
}

/// What the sensors example wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SensorResults {
    /// Final averages per `(sensor, minute start)` as `(sum, count)`, with how many times
    /// each was emitted (1 when results are final).
    pub averages: BTreeMap<(String, i64), ((f64, u64), usize)>,
    /// Readings set aside as too late, as `(sensor, temperature, timestamp)`.
    pub late: Vec<(String, f64, i64)>,
}

/// Sensors: produces `readings`, runs the topology until `expected_windows` final averages
/// arrived, and returns them together with the dead-letter topic's records.
pub async fn sensors(
    servers: &str,
    app_id: &str,
    topics: &sensors::Topics,
    readings: &[(String, f64, i64)],
    expected_windows: usize,
    expected_late: usize,
) -> Result<SensorResults, StreamsError> {
    let input = readings
        .iter()
        .map(|(s, t, ts)| TestRecord::new(s, t.to_be_bytes().to_vec(), *ts))
        .collect();
    records::produce(servers, &topics.readings, input).await;
    let out = run_until(
        sensors::topology(topics)?,
        config(app_id, servers),
        &topics.averages,
        |seen| seen.len() >= expected_windows,
    )
    .await?;
    let mut results = SensorResults::default();
    let (key_serde, value_serde) = (sensors::average_key_serde(), sensors::average_serde());
    for r in &out {
        let key: Windowed<String> = decode(&key_serde, r.key.as_deref());
        let avg: sensors::Average = decode(&value_serde, r.value.as_deref());
        let slot = results
            .averages
            .entry((key.key, key.window.start))
            .or_default();
        *slot = ((avg.sum, avg.count), slot.1 + 1);
    }
    let late = records::consume_until(servers, &topics.late, WAIT, "read_committed", |seen| {
        seen.len() >= expected_late
    })
    .await;
    results.late = late
        .iter()
        .map(|r| {
            let temp = decode(&streamtime::serdes::F64Serde, r.value.as_deref());
            (r.key_str(), temp, r.timestamp)
        })
        .collect();
    Ok(results)
}

/// Sessions per `(user, start, end)` with how many times each was emitted.
pub type SessionResults = BTreeMap<(String, i64, i64), (Option<clickstream::Session>, usize)>;

/// Clickstream: produces `clicks`, runs the topology until `expected_sessions` sessions
/// arrived and returns them.
pub async fn clickstream(
    servers: &str,
    app_id: &str,
    topics: &clickstream::Topics,
    clicks: &[(String, String, i64)],
    expected_sessions: usize,
) -> Result<SessionResults, StreamsError> {
    let input = clicks
        .iter()
        .map(|(user, page, ts)| TestRecord::new(user, page.as_bytes().to_vec(), *ts))
        .collect();
    records::produce(servers, &topics.clicks, input).await;
    let out = run_until(
        clickstream::topology(topics)?,
        config(app_id, servers),
        &topics.sessions,
        |seen| seen.len() >= expected_sessions,
    )
    .await?;
    let (key_serde, value_serde) = (
        clickstream::session_key_serde(),
        clickstream::session_serde(),
    );
    let mut results = SessionResults::new();
    for r in &out {
        let key: Windowed<String> = decode(&key_serde, r.key.as_deref());
        let session = decode(&value_serde, r.value.as_deref());
        let slot = results
            .entry((key.key, key.window.start, key.window.end))
            .or_insert((None, 0));
        *slot = (session, slot.1 + 1);
    }
    Ok(results)
}
