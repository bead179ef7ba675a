//! Custom stores on the test driver: a store a supplier opens (key-value, window or
//! session) backs a DSL aggregation or a Processor API store in every task that uses it,
//! under the record cache (it sees the folded writes), and a supplier of the wrong kind of
//! store (a key-value supplier behind a windowed count) or a persistence it cannot give
//! fails the build naming the store.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use streamtime::dsl::{EmitStrategy, SessionWindows, SlidingWindows, TimeWindows, WindowedSerde};
use streamtime::serdes::{I64Serde, OptionSerde, StringSerde};
use streamtime::stores::{
    InMemoryKeyValueStore, InMemorySessionStore, InMemoryWindowStore, KeyValueIter, KeyValueStore,
    KeyValueStoreSupplier, SessionIter, SessionStore, SessionStoreSupplier, StateError, StateStore,
    StoreLocation, Stores, WindowIter, WindowStore, WindowStoreConfig, WindowStoreSupplier,
    WriteOutcome,
};
use streamtime::{
    Consumed, Materialized, ProcessResult, Processor, ProcessorContext, Produced, Record,
    StreamsBuilder, StreamsConfig, Topology, TopologyTestDriver,
};

/// What the supplier and its stores saw.
#[derive(Default)]
struct Seen {
    /// (store, task, had a directory) per store opened.
    opened: Vec<(String, String, bool)>,
    /// (store, key) per put that reached a store.
    puts: Vec<(String, Vec<u8>)>,
    /// (store, retention in ms) per window or session store opened.
    retentions: Vec<(String, i64)>,
    /// (store, key, window start or session start, session end or window start) per put
    /// that reached a window or session store.
    timed_puts: Vec<(String, Vec<u8>, i64, i64)>,
    /// Reads of every key's windows or sessions in a time range (counted without the lock:
    /// a test may hold it while the driver reads a store).
    time_scans: Arc<AtomicUsize>,
}

type Shared = Arc<Mutex<Seen>>;

/// Opens in-memory stores that report what reaches them.
struct Recording(Shared);

impl KeyValueStoreSupplier for Recording {
    fn open(&self, at: &StoreLocation<'_>) -> Result<Box<dyn KeyValueStore>, StateError> {
        self.0.lock().unwrap().opened.push((
            at.name.to_string(),
            at.task.to_string(),
            at.directory.is_some(),
        ));
        Ok(Box::new(RecordingStore {
            inner: InMemoryKeyValueStore::new(at.name),
            seen: self.0.clone(),
        }))
    }
}

struct RecordingStore {
    inner: InMemoryKeyValueStore,
    seen: Shared,
}

impl StateStore for RecordingStore {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn persistent(&self) -> bool {
        false
    }
    fn flush(&mut self) -> Result<(), StateError> {
        self.inner.flush()
    }
    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StateError> {
        self.inner.restore(key, value)
    }
}

impl KeyValueStore for RecordingStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.inner.get(key)
    }
    fn put(&mut self, key: &[u8], value: &[u8], timestamp: i64) -> Result<(), StateError> {
        let name = self.inner.name().to_string();
        self.seen.lock().unwrap().puts.push((name, key.to_vec()));
        self.inner.put(key, value, timestamp)
    }
    fn delete(&mut self, key: &[u8], timestamp: i64) -> Result<(), StateError> {
        self.inner.delete(key, timestamp)
    }
    fn range(&self, from: &[u8], to: &[u8]) -> KeyValueIter<'_> {
        self.inner.range(from, to)
    }
    fn all(&self) -> KeyValueIter<'_> {
        self.inner.all()
    }
    fn approximate_num_entries(&self) -> Result<u64, StateError> {
        self.inner.approximate_num_entries()
    }
}

impl Recording {
    fn opened(&self, at: &StoreLocation<'_>, retention_ms: i64) {
        let mut seen = self.0.lock().unwrap();
        seen.opened.push((
            at.name.to_string(),
            at.task.to_string(),
            at.directory.is_some(),
        ));
        seen.retentions.push((at.name.to_string(), retention_ms));
    }

    fn put(&self, store: &str, key: &[u8], from: i64, to: i64) {
        self.0
            .lock()
            .unwrap()
            .timed_puts
            .push((store.to_string(), key.to_vec(), from, to));
    }
}

impl WindowStoreSupplier for Recording {
    fn open(
        &self,
        at: &StoreLocation<'_>,
        config: WindowStoreConfig,
    ) -> Result<Box<dyn WindowStore>, StateError> {
        self.opened(at, config.retention_ms);
        Ok(Box::new(RecordingWindows {
            inner: InMemoryWindowStore::new(at.name, config)?,
            seen: Recording(self.0.clone()),
            time_scans: self.0.lock().unwrap().time_scans.clone(),
        }))
    }
}

impl SessionStoreSupplier for Recording {
    fn open(
        &self,
        at: &StoreLocation<'_>,
        retention_ms: i64,
    ) -> Result<Box<dyn SessionStore>, StateError> {
        self.opened(at, retention_ms);
        Ok(Box::new(RecordingSessions {
            inner: InMemorySessionStore::new(at.name, retention_ms)?,
            seen: Recording(self.0.clone()),
            time_scans: self.0.lock().unwrap().time_scans.clone(),
        }))
    }
}

/// Forwards the state-store methods of a recording store to its `inner` store.
macro_rules! state_store_of_inner {
    ($t:ty) => {
        impl StateStore for $t {
            fn name(&self) -> &str {
                self.inner.name()
            }
            fn persistent(&self) -> bool {
                false
            }
            fn flush(&mut self) -> Result<(), StateError> {
                self.inner.flush()
            }
            fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StateError> {
                self.inner.restore(key, value)
            }
        }
    };
}

struct RecordingWindows {
    inner: InMemoryWindowStore,
    seen: Recording,
    time_scans: Arc<AtomicUsize>,
}

state_store_of_inner!(RecordingWindows);

impl WindowStore for RecordingWindows {
    fn retention_ms(&self) -> i64 {
        self.inner.retention_ms()
    }
    fn segment_interval_ms(&self) -> i64 {
        self.inner.segment_interval_ms()
    }
    fn retains_duplicates(&self) -> bool {
        self.inner.retains_duplicates()
    }
    fn observed_stream_time(&self) -> Option<i64> {
        self.inner.observed_stream_time()
    }
    fn expired_puts(&self) -> u64 {
        self.inner.expired_puts()
    }
    fn put(
        &mut self,
        key: &[u8],
        start: i64,
        value: &[u8],
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        self.seen.put(self.inner.name(), key, start, start);
        self.inner.put(key, start, value, timestamp)
    }
    fn delete(
        &mut self,
        key: &[u8],
        start: i64,
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        self.inner.delete(key, start, timestamp)
    }
    fn get(&self, key: &[u8], start: i64) -> Result<Option<Vec<u8>>, StateError> {
        self.inner.get(key, start)
    }
    fn fetch(&self, key: &[u8], from: i64, to: i64) -> WindowIter<'_> {
        self.inner.fetch(key, from, to)
    }
    fn fetch_all(&self, from: i64, to: i64) -> WindowIter<'_> {
        self.time_scans.fetch_add(1, Ordering::Relaxed);
        self.inner.fetch_all(from, to)
    }
    fn fetch_key_range(&self, k0: &[u8], k1: &[u8], from: i64, to: i64) -> WindowIter<'_> {
        self.inner.fetch_key_range(k0, k1, from, to)
    }
}

struct RecordingSessions {
    inner: InMemorySessionStore,
    seen: Recording,
    time_scans: Arc<AtomicUsize>,
}

state_store_of_inner!(RecordingSessions);

impl SessionStore for RecordingSessions {
    fn retention_ms(&self) -> i64 {
        self.inner.retention_ms()
    }
    fn segment_interval_ms(&self) -> i64 {
        self.inner.segment_interval_ms()
    }
    fn observed_stream_time(&self) -> Option<i64> {
        self.inner.observed_stream_time()
    }
    fn expired_puts(&self) -> u64 {
        self.inner.expired_puts()
    }
    fn put(
        &mut self,
        key: &[u8],
        start: i64,
        end: i64,
        value: &[u8],
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        self.seen.put(self.inner.name(), key, start, end);
        self.inner.put(key, start, end, value, timestamp)
    }
    fn remove(
        &mut self,
        key: &[u8],
        start: i64,
        end: i64,
        timestamp: i64,
    ) -> Result<WriteOutcome, StateError> {
        self.inner.remove(key, start, end, timestamp)
    }
    fn fetch_session(
        &self,
        key: &[u8],
        start: i64,
        end: i64,
    ) -> Result<Option<Vec<u8>>, StateError> {
        self.inner.fetch_session(key, start, end)
    }
    fn find_sessions(&self, key: &[u8], earliest_end: i64, latest_start: i64) -> SessionIter<'_> {
        self.inner.find_sessions(key, earliest_end, latest_start)
    }
    fn fetch_ending_between(&self, earliest_end: i64, latest_end: i64) -> SessionIter<'_> {
        self.time_scans.fetch_add(1, Ordering::Relaxed);
        self.inner.fetch_ending_between(earliest_end, latest_end)
    }
}

#[test]
fn a_count_kept_in_a_supplied_store_is_exact_and_the_store_sees_one_write_per_key_per_commit() {
    let seen = Shared::default();
    let builder = StreamsBuilder::new();
    builder
        .stream("words", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .count(Materialized::as_("counts").with_store_supplier(Recording(seen.clone())))
        .to_stream()
        .to("counts", Produced::with(StringSerde, I64Serde));
    let driver = TopologyTestDriver::new(
        builder.build().unwrap(),
        StreamsConfig::new("custom", "unused"),
    )
    .unwrap();
    let input = driver.input_topic("words", StringSerde, StringSerde);
    driver.hold();
    for (i, w) in ["a", "b", "a", "a"].iter().enumerate() {
        input.pipe(w.to_string(), String::new(), i as i64).unwrap();
    }
    driver.release().unwrap();
    let out = driver
        .output_topic("counts", StringSerde, I64Serde)
        .read_key_values();
    assert_eq!(out, [("b".to_string(), 1), ("a".to_string(), 3)]);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.opened, [("counts".into(), "0_0".into(), false)]);
    let puts: Vec<&[u8]> = seen.puts.iter().map(|(_, k)| k.as_slice()).collect();
    assert_eq!(
        puts,
        [&b"b"[..], &b"a"[..]],
        "four updates, two folded writes"
    );
    let stored = driver
        .timestamped_key_value_store("counts", StringSerde, I64Serde)
        .unwrap();
    assert_eq!(
        stored.len(),
        2,
        "the driver reads the supplied store: {stored:?}"
    );
}

/// Stores each record's value under its key in the store `last`.
struct KeepLast;

impl Processor<String, String, String, String> for KeepLast {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<String, String>,
        r: Record<String, String>,
    ) -> ProcessResult {
        let store = ctx.key_value_store("last", StringSerde, StringSerde)?;
        store.put(&r.key, &r.value)?;
        ctx.forward(r)
    }
}

#[test]
fn a_processor_api_store_from_a_supplier_is_opened_in_every_task_of_its_processor() {
    let seen = Shared::default();
    let mut topology = Topology::new();
    topology
        .add_source("in", &["events"], StringSerde, StringSerde)
        .unwrap();
    topology
        .add_processor("keep", || KeepLast, &["in"])
        .unwrap();
    topology
        .add_state_store(
            Stores::key_value_from("last", Recording(seen.clone())),
            &["keep"],
        )
        .unwrap();
    let driver = TopologyTestDriver::with_partitions(
        topology,
        StreamsConfig::new("custom", "unused"),
        &[("events", 2)],
    )
    .unwrap();
    let input = driver.input_topic("events", StringSerde, StringSerde);
    for k in ["x", "y", "z", "w"] {
        input.pipe(k.to_string(), format!("{k}!"), 0).unwrap();
    }
    let seen = seen.lock().unwrap();
    let mut tasks: Vec<&str> = seen.opened.iter().map(|(_, t, _)| t.as_str()).collect();
    tasks.sort();
    assert_eq!(tasks, ["0_0", "0_1"]);
    assert!(seen
        .opened
        .iter()
        .all(|(name, _, dir)| name == "last" && !dir));
    assert_eq!(seen.puts.len(), 4, "every key reached a supplied store");
}

/// Pipes `(key, time)` clicks while the driver holds them, then processes them all before
/// one commit.
fn clicks_between_commits(driver: &TopologyTestDriver, clicks: &[(&str, i64)]) {
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    driver.hold();
    for (key, time) in clicks {
        input.pipe(key.to_string(), String::new(), *time).unwrap();
    }
    driver.release().unwrap();
}

#[test]
fn a_windowed_count_kept_in_a_supplied_window_store_is_exact_and_its_store_sees_folded_writes() {
    let seen = Shared::default();
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_secs(10),
            Duration::from_secs(5),
        ))
        .count(Materialized::as_("per-10s").with_window_store_supplier(Recording(seen.clone())))
        .to_stream()
        .to(
            "counts",
            Produced::with(WindowedSerde::new(StringSerde), I64Serde),
        );
    let driver = TopologyTestDriver::new(
        builder.build().unwrap(),
        StreamsConfig::new("custom", "unused"),
    )
    .unwrap();
    clicks_between_commits(
        &driver,
        &[("a", 1_000), ("b", 2_000), ("a", 3_000), ("a", 12_000)],
    );
    let out: Vec<(String, i64, i64)> = driver
        .output_topic("counts", WindowedSerde::new(StringSerde), I64Serde)
        .read_records()
        .into_iter()
        .map(|r| (r.key.key, r.key.window.start, r.value))
        .collect();
    assert_eq!(
        out,
        [
            ("b".into(), 0, 1),
            ("a".into(), 0, 2),
            ("a".into(), 10_000, 1)
        ]
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.opened, [("per-10s".into(), "0_0".into(), false)]);
    assert_eq!(
        seen.retentions,
        [("per-10s".into(), 15_000)],
        "opened keeping size + grace"
    );
    let puts: Vec<(&[u8], i64)> = seen
        .timed_puts
        .iter()
        .map(|(_, k, start, _)| (k.as_slice(), *start))
        .collect();
    assert_eq!(
        puts,
        [(&b"b"[..], 0), (&b"a"[..], 0), (&b"a"[..], 10_000)],
        "four updates, three folded writes"
    );
    let stored = driver
        .timestamped_window_store("per-10s", StringSerde, I64Serde)
        .unwrap();
    assert_eq!(
        stored.len(),
        3,
        "the driver reads the supplied store: {stored:?}"
    );
}

#[test]
fn a_session_count_kept_in_a_supplied_session_store_is_exact_and_merges_in_it() {
    let seen = Shared::default();
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .windowed_by(SessionWindows::of_inactivity_gap_and_grace(
            Duration::from_secs(20),
            Duration::from_secs(60),
        ))
        .count(
            Materialized::as_("visits")
                .with_session_store_supplier(Recording(seen.clone()))
                .with_caching(false),
        )
        .to_stream()
        .to(
            "visits",
            Produced::with(WindowedSerde::new(StringSerde), OptionSerde(I64Serde)),
        );
    let driver = TopologyTestDriver::new(
        builder.build().unwrap(),
        StreamsConfig::new("custom", "unused"),
    )
    .unwrap();
    // Two sessions of `u`, then a click that bridges them into one.
    clicks_between_commits(&driver, &[("u", 0), ("u", 30_000), ("u", 15_000)]);
    let out: Vec<(i64, i64, Option<i64>)> = driver
        .output_topic(
            "visits",
            WindowedSerde::new(StringSerde),
            OptionSerde(I64Serde),
        )
        .read_records()
        .into_iter()
        .map(|r| (r.key.window.start, r.key.window.end, r.value))
        .collect();
    assert_eq!(
        out,
        [
            (0, 0, Some(1)),
            (30_000, 30_000, Some(1)),
            (0, 0, None),
            (30_000, 30_000, None),
            (0, 30_000, Some(3)),
        ],
        "the bridging click retracts both sessions and sends the merged one"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.retentions,
        [("visits".into(), 80_001)],
        "gap + grace, and the millisecond of a gap reaching its bound"
    );
    let puts: Vec<(i64, i64)> = seen
        .timed_puts
        .iter()
        .map(|(_, _, s, e)| (*s, *e))
        .collect();
    assert_eq!(puts, [(0, 0), (30_000, 30_000), (0, 30_000)]);
    let stored = driver
        .session_store_entries("visits", StringSerde, I64Serde)
        .unwrap();
    assert_eq!(stored, [("u".to_string(), 0, 30_000, 3)]);
}

#[test]
fn a_processor_api_window_store_from_a_supplier_backs_its_processor() {
    /// Keeps each record's value in the window of its timestamp, rounded down to seconds.
    struct PerSecond;
    impl Processor<String, String, String, String> for PerSecond {
        fn process(
            &mut self,
            ctx: &mut ProcessorContext<String, String>,
            r: Record<String, String>,
        ) -> ProcessResult {
            let store = ctx.window_store("per-second", StringSerde, StringSerde)?;
            store.put(&r.key, r.timestamp - r.timestamp % 1_000, &r.value)?;
            ctx.forward(r)
        }
    }
    let seen = Shared::default();
    let mut topology = Topology::new();
    topology
        .add_source("in", &["events"], StringSerde, StringSerde)
        .unwrap();
    topology
        .add_processor("keep", || PerSecond, &["in"])
        .unwrap();
    topology
        .add_state_store(
            Stores::window_from(
                "per-second",
                Duration::from_secs(60),
                false,
                Recording(seen.clone()),
            )
            .with_caching(false),
            &["keep"],
        )
        .unwrap();
    let driver = TopologyTestDriver::new(topology, StreamsConfig::new("custom", "unused")).unwrap();
    let input = driver.input_topic("events", StringSerde, StringSerde);
    input.pipe("k".to_string(), "x".to_string(), 1_500).unwrap();
    input.pipe("k".to_string(), "y".to_string(), 2_500).unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.retentions, [("per-second".into(), 60_000)]);
    let starts: Vec<i64> = seen.timed_puts.iter().map(|(_, _, s, _)| *s).collect();
    assert_eq!(starts, [1_000, 2_000]);
    let stored = driver
        .window_store_entries("per-second", StringSerde, StringSerde)
        .unwrap();
    assert_eq!(
        stored,
        [
            ("k".to_string(), 1_000, "x".to_string()),
            ("k".to_string(), 2_000, "y".to_string())
        ]
    );
}

#[test]
fn a_window_store_supplier_behind_a_key_value_count_fails_the_build_naming_the_store() {
    let builder = StreamsBuilder::new();
    builder
        .stream("words", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .count(Materialized::as_("plain").with_window_store_supplier(Recording(Shared::default())));
    let message = builder.build().expect_err("a key-value store").to_string();
    assert!(
        message.contains("plain")
            && message.contains("a window store supplier cannot back a key-value store"),
        "{message}"
    );
}

#[test]
fn a_key_value_supplier_behind_a_windowed_count_fails_the_build_naming_the_store() {
    let builder = StreamsBuilder::new();
    builder
        .stream("words", Consumed::with(StringSerde, StringSerde))
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(
            std::time::Duration::from_secs(10),
        ))
        .count(Materialized::as_("windowed").with_store_supplier(Recording(Shared::default())));
    let err = builder
        .build()
        .expect_err("a window store cannot be supplied");
    let message = err.to_string();
    assert!(
        message.contains("windowed")
            && message.contains("a key-value store supplier cannot back a window store"),
        "{message}"
    );
}

#[test]
fn a_supplied_store_asked_to_be_persistent_fails_when_its_supplier_cannot_persist() {
    let mut topology = Topology::new();
    topology
        .add_source("in", &["events"], StringSerde, StringSerde)
        .unwrap();
    topology
        .add_processor("keep", || KeepLast, &["in"])
        .unwrap();
    let err = topology
        .add_state_store(
            Stores::key_value_from("last", Recording(Shared::default())).persistent(),
            &["keep"],
        )
        .expect_err("the supplier's stores live in memory");
    assert!(err.to_string().contains("not persistent"), "{err}");
}

/// Clicks of three keys, 3 ms apart, every fourth one 6 ms behind (out of order, within
/// the grace of 5 ms for sliding windows and 20 ms for sessions or late for some windows).
fn uneven_clicks() -> Vec<(String, i64)> {
    (0..300_i64)
        .map(|i| {
            let key = ["a", "b", "c"][(i * 7 % 3) as usize].to_string();
            let ts = i * 3 - if i % 4 == 3 { 6 } else { 0 };
            (key, ts.max(0))
        })
        .collect()
}

/// One window's result: key, start, end, value.
type Result4 = (String, i64, i64, Option<i64>);

/// Runs `topology` over [`uneven_clicks`], one commit per record, and reads `"out"`.
fn results_of(topology: Topology) -> Vec<Result4> {
    let driver = TopologyTestDriver::new(topology, StreamsConfig::new("final", "unused")).unwrap();
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    for (key, ts) in uneven_clicks() {
        input.pipe(key, String::new(), ts).unwrap();
    }
    driver
        .output_topic(
            "out",
            WindowedSerde::new(StringSerde),
            OptionSerde(I64Serde),
        )
        .read_records()
        .into_iter()
        .map(|r| (r.key.key, r.key.window.start, r.key.window.end, r.value))
        .collect()
}

/// The last update of every window (a retraction removes it) whose close point (`end` plus
/// `after_end`) is at most the final stream time minus `grace`, by close point, then key:
/// what emit-final must give.
fn finals_from_updates(updates: Vec<Result4>, after_end: i64, grace: i64) -> Vec<Result4> {
    let observed = uneven_clicks().iter().map(|(_, ts)| *ts).max().unwrap();
    let mut last = std::collections::BTreeMap::new();
    for (key, start, end, value) in updates {
        last.insert((end + after_end, key, start, end), value);
    }
    last.into_iter()
        .filter(|((close, ..), value)| *close <= observed - grace && value.is_some())
        .map(|((_, key, start, end), value)| (key, start, end, value))
        .collect()
}

#[test]
fn emit_final_sliding_windows_give_each_last_update_without_reading_the_store_by_time() {
    let (d, grace) = (Duration::from_millis(10), Duration::from_millis(5));
    let topology = |emit: EmitStrategy, store: Materialized<String, i64>| {
        let builder = StreamsBuilder::new();
        builder
            .stream("clicks", Consumed::with(StringSerde, StringSerde))
            .group_by_key()
            .windowed_by(SlidingWindows::of_time_difference_and_grace(d, grace))
            .emit(emit)
            .count(store.with_caching(false))
            .to_stream()
            .map_values(Some)
            .to(
                "out",
                Produced::with(WindowedSerde::new(StringSerde), OptionSerde(I64Serde)),
            );
        builder.build().unwrap()
    };
    let updates = results_of(topology(
        EmitStrategy::OnWindowUpdate,
        Materialized::as_("w"),
    ));
    let seen = Shared::default();
    let finals = results_of(topology(
        EmitStrategy::OnWindowClose,
        Materialized::as_("w").with_window_store_supplier(Recording(seen.clone())),
    ));
    // A sliding window closes one past its end.
    let want = finals_from_updates(updates, 1, 5);
    assert!(want.len() > 100, "{} windows closed", want.len());
    assert_eq!(finals, want);
    // One read by time when the task starts (windows a restored store holds), none per
    // record: before the index of pending windows every record that moved stream time past
    // a window's close read them all.
    assert_eq!(seen.lock().unwrap().time_scans.load(Ordering::Relaxed), 1);
}

#[test]
fn emit_final_sessions_give_each_surviving_session_without_reading_the_store_by_time() {
    let (gap, grace) = (Duration::from_millis(4), Duration::from_millis(20));
    let topology = |emit: EmitStrategy, store: Materialized<String, i64>| {
        let builder = StreamsBuilder::new();
        builder
            .stream("clicks", Consumed::with(StringSerde, StringSerde))
            .group_by_key()
            .windowed_by(SessionWindows::of_inactivity_gap_and_grace(gap, grace))
            .emit(emit)
            .count(store.with_caching(false))
            .to_stream()
            .to(
                "out",
                Produced::with(WindowedSerde::new(StringSerde), OptionSerde(I64Serde)),
            );
        builder.build().unwrap()
    };
    let updates = results_of(topology(
        EmitStrategy::OnWindowUpdate,
        Materialized::as_("s"),
    ));
    assert!(
        updates.iter().any(|u| u.3.is_none()),
        "out-of-order clicks merge sessions"
    );
    let seen = Shared::default();
    let finals = results_of(topology(
        EmitStrategy::OnWindowClose,
        Materialized::as_("s").with_session_store_supplier(Recording(seen.clone())),
    ));
    // A session closes `gap + 1` past its end; merged-away sessions are never emitted.
    let want = finals_from_updates(updates, 5, 20);
    assert!(want.len() > 20, "{} sessions closed", want.len());
    assert_eq!(finals, want);
    assert_eq!(seen.lock().unwrap().time_scans.load(Ordering::Relaxed), 1);
}
