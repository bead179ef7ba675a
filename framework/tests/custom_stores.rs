//! Custom key-value stores on the test driver: a store a `KeyValueStoreSupplier` opens backs
//! a DSL aggregation or a Processor API store in every task that uses it, under the record
//! cache (it sees the folded writes), and a supplier where a key-value store cannot be (a
//! windowed count) or a persistence it cannot give fails the build naming the store.

use std::sync::{Arc, Mutex};

use streamtime::dsl::TimeWindows;
use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::stores::{
    InMemoryKeyValueStore, KeyValueIter, KeyValueStore, KeyValueStoreSupplier, StateError,
    StateStore, StoreLocation, Stores,
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

#[test]
fn a_supplier_behind_a_windowed_count_fails_the_build_naming_the_store() {
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
        message.contains("windowed") && message.contains("cannot back a window store"),
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
