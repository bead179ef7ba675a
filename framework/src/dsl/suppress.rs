//! [`KTable::suppress`]: holding a table's changes back and forwarding only the latest per
//! key, either once its window closes ([`Suppressed::until_window_closes`], final results
//! of a windowed aggregation) or once stream time passed its first held change by a time
//! limit ([`Suppressed::until_time_limit`], rate limiting), as Kafka Streams' `suppress`.
//!
//! The held changes are kept in a changelogged key-value store (`<name>-buffer`), so a
//! restart, a rebalance or a crash neither loses nor repeats one under exactly-once; an
//! index in memory, rebuilt from the store when the task starts, finds the oldest. A buffer
//! bounded by [`BufferConfig`] either emits its oldest changes early when full or stops the
//! application with an error.
//!
//! ```
//! use std::time::Duration;
//! use streamtime::{Consumed, Materialized, Produced, StreamsBuilder, StreamsConfig, TopologyTestDriver};
//! use streamtime::dsl::{BufferConfig, Suppressed, TimeWindows, WindowedSerde};
//! use streamtime::serdes::{I64Serde, StringSerde};
//!
//! let builder = StreamsBuilder::new();
//! builder.stream("clicks", Consumed::with(StringSerde, StringSerde))
//!     .group_by_key()
//!     .windowed_by(TimeWindows::of_size_and_grace(Duration::from_millis(10), Duration::from_millis(5)))
//!     .count(Materialized::as_("clicks-per-10ms"))
//!     .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()))
//!     .to_stream()
//!     .to("final-counts", Produced::with(WindowedSerde::new(StringSerde), I64Serde));
//! let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("t", "unused")).unwrap();
//! let clicks = driver.input_topic("clicks", StringSerde, StringSerde);
//! for ts in [1, 4, 12, 16] { clicks.pipe("ann".into(), "/".into(), ts).unwrap(); }
//! // Stream time 16 closed [0, 10) (end 10 + grace 5 <= 16); [10, 20) is still open.
//! let out = driver.output_topic("final-counts", WindowedSerde::new(StringSerde), I64Serde).read_key_values();
//! assert_eq!(out.len(), 1);
//! assert_eq!((out[0].0.window.start, out[0].1), (0, 2));
//! ```

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use super::table::{updates_of, KTable};
use super::windows::Windowed;
use crate::error::StreamsError;
use crate::processor::{Processor, ProcessorContext};
use crate::record::{Headers, Record};
use crate::serdes::{BytesSerde, Serde};
use crate::stores::{KeyValueStoreHandle, Stores};
use crate::ProcessResult;

/// What happens when a bounded suppression buffer is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WhenFull {
    /// Forward the oldest held changes early until the buffer fits.
    EmitEarly,
    /// Stop the application with an error.
    ShutDown,
}

/// The bounds of a suppression buffer: held records, held bytes (keys and values as
/// serialized, plus 17 bytes each), and what happens when a change does not fit.
///
/// ```
/// use streamtime::dsl::BufferConfig;
/// let rate_limit = BufferConfig::max_records(10_000).with_max_bytes(1 << 20).emit_early_when_full();
/// let strict = BufferConfig::max_bytes(64 << 20).shut_down_when_full();
/// # let _ = (rate_limit, strict);
/// ```
#[derive(Clone, Debug)]
pub struct BufferConfig {
    max_records: Option<usize>,
    max_bytes: Option<usize>,
    when_full: WhenFull,
}

impl BufferConfig {
    /// No bound: the buffer holds everything until it is due (memory grows with the number
    /// of keys held).
    pub fn unbounded() -> Self {
        BufferConfig {
            max_records: None,
            max_bytes: None,
            when_full: WhenFull::ShutDown,
        }
    }

    /// At most `n` held changes; full, it emits early (see
    /// [`BufferConfig::shut_down_when_full`]).
    pub fn max_records(n: usize) -> Self {
        BufferConfig {
            max_records: Some(n),
            max_bytes: None,
            when_full: WhenFull::EmitEarly,
        }
    }

    /// At most `bytes` held; full, it emits early.
    pub fn max_bytes(bytes: usize) -> Self {
        BufferConfig {
            max_records: None,
            max_bytes: Some(bytes),
            when_full: WhenFull::EmitEarly,
        }
    }

    /// Adds a bound on held changes.
    pub fn with_max_records(mut self, n: usize) -> Self {
        self.max_records = Some(n);
        self
    }

    /// Adds a bound on held bytes.
    pub fn with_max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// When full, forward the oldest held changes before they are due.
    pub fn emit_early_when_full(mut self) -> Self {
        self.when_full = WhenFull::EmitEarly;
        self
    }

    /// When full, stop the application with an error (a change is never forwarded early).
    pub fn shut_down_when_full(mut self) -> Self {
        self.when_full = WhenFull::ShutDown;
        self
    }

    fn is_bounded(&self) -> bool {
        self.max_records.is_some() || self.max_bytes.is_some()
    }
}

/// The time a held change of key `K` is due from: its window's end, or the timestamp of the
/// first change held for the key (`None`).
type KeyTime<K> = Arc<dyn Fn(&K) -> i64 + Send + Sync>;

/// How [`KTable::suppress`] holds changes back.
pub struct Suppressed<K> {
    /// Window end of a key, for `until_window_closes`.
    key_time: Option<KeyTime<K>>,
    /// For `until_time_limit`: how long after its first held change a key is forwarded.
    limit_ms: i64,
    buffer: BufferConfig,
    name: Option<String>,
}

impl<K: 'static> Suppressed<Windowed<K>> {
    /// Only the final result of each window, once stream time reaches the window's end plus
    /// the aggregation's grace period. The buffer must never emit early (an unbounded one,
    /// or one that shuts down when full), or the build fails.
    pub fn until_window_closes(buffer: BufferConfig) -> Self {
        Suppressed {
            key_time: Some(Arc::new(|k: &Windowed<K>| k.window.end)),
            limit_ms: 0,
            buffer,
            name: None,
        }
    }
}

impl<K> Suppressed<K> {
    /// Each key's latest change once stream time is `limit` past the first change held for
    /// it: at most one change per key per `limit` of event time.
    pub fn until_time_limit(limit: Duration, buffer: BufferConfig) -> Self {
        Suppressed {
            key_time: None,
            limit_ms: i64::try_from(limit.as_millis()).unwrap_or(i64::MAX),
            buffer,
            name: None,
        }
    }

    /// Names the suppression: its buffer store is `<name>-buffer`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl<K: Clone + 'static, V: Clone + 'static> KTable<K, V> {
    /// This table's changes held back as `suppressed` says. The result has no store of its
    /// own (joins and queries use the table before suppression); its changes are the ones
    /// forwarded.
    pub fn suppress(&self, suppressed: Suppressed<K>) -> KTable<K, V> {
        let state = self.stream.state().clone();
        let name = suppressed
            .name
            .clone()
            .unwrap_or_else(|| state.borrow_mut().next_name("KTABLE-SUPPRESS"));
        let failed = |e: StreamsError| {
            state.borrow_mut().record_error(e);
            KTable {
                stream: self.stream.derive(None, None, None, false),
                store: name.clone(),
            }
        };
        let what = format!("suppression {name}");
        let (key_serde, value_serde) = match self.serdes(&what) {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        // Due at `time` when stream time reaches `time + after`.
        let after = match &suppressed.key_time {
            Some(_) => {
                if suppressed.buffer.is_bounded()
                    && suppressed.buffer.when_full == WhenFull::EmitEarly
                {
                    return failed(StreamsError::Topology(format!(
                        "{what}: until_window_closes forwards final results only, so its buffer \
                         must not emit early; use BufferConfig::unbounded() or shut_down_when_full()"
                    )));
                }
                match state.borrow().window_close_after.get(&self.store) {
                    Some(&grace) => grace,
                    None => {
                        return failed(StreamsError::Topology(format!(
                            "{what}: until_window_closes needs the table of a windowed \
                             aggregation; {} is not one",
                            self.store
                        )))
                    }
                }
            }
            None => suppressed.limit_ms,
        };
        let buffer_store = format!("{name}-buffer");
        let registered = state
            .borrow_mut()
            .topology
            .register_store(Stores::key_value(&buffer_store));
        if let Err(e) = registered {
            return failed(e);
        }
        let changes = self.to_change_stream();
        let node = {
            let (store, ks, vs) = (buffer_store.clone(), key_serde.clone(), value_serde.clone());
            let (key_time, buffer) = (suppressed.key_time.clone(), suppressed.buffer.clone());
            let name = name.clone();
            changes.add_processor("KTABLE-SUPPRESS", &[], vec![buffer_store], move || {
                Suppress {
                    name: name.clone(),
                    store_name: store.clone(),
                    key_serde: ks.clone(),
                    value_serde: vs.clone(),
                    key_time: key_time.clone(),
                    after,
                    buffer: buffer.clone(),
                    held: None,
                }
            })
        };
        let stream = updates_of(&changes, node, &name, key_serde, value_serde);
        KTable {
            stream,
            store: name,
        }
    }
}

/// The store key of a held change: [`HELD`] then the key's bytes; [`STREAM_TIME`] alone
/// keeps the processor's stream time.
const HELD: u8 = 1;
const STREAM_TIME: u8 = 0;

/// One held change as stored: the time it is due from, its record's timestamp (8 bytes
/// big-endian each), then the change: 0 for a deletion, or 1 and the value's bytes.
struct HeldChange {
    due_from: i64,
    timestamp: i64,
    change: Vec<u8>,
}

impl HeldChange {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.change.len());
        out.extend_from_slice(&self.due_from.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.change);
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < 16 {
            return None;
        }
        Some(HeldChange {
            due_from: i64::from_be_bytes(bytes[..8].try_into().ok()?),
            timestamp: i64::from_be_bytes(bytes[8..16].try_into().ok()?),
            change: bytes[16..].to_vec(),
        })
    }
}

/// The index of held changes: by due time (then key bytes), and each key's due time and size.
#[derive(Default)]
struct Held {
    by_time: BTreeSet<(i64, Vec<u8>)>,
    keys: HashMap<Vec<u8>, (i64, usize)>,
    bytes: usize,
    stream_time: i64,
}

/// What a held change counts against a byte bound: its key, its change and 17 bytes.
fn held_size(key: &[u8], change: &[u8]) -> usize {
    key.len() + change.len() + 17
}

/// The buffer's store: store keys (see [`HELD`]) to [`HeldChange`] bytes.
type BufferStore = KeyValueStoreHandle<Vec<u8>, Vec<u8>>;

/// Holds a table's changes back and forwards them when due (or early, when full).
struct Suppress<K, V> {
    name: String,
    store_name: String,
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<V>>,
    key_time: Option<KeyTime<K>>,
    after: i64,
    buffer: BufferConfig,
    held: Option<(BufferStore, Held)>,
}

impl<K: Clone + 'static, V: Clone + 'static> Suppress<K, V> {
    fn serde_error(&self, e: crate::serdes::SerdeError) -> StreamsError {
        StreamsError::Serde {
            context: format!("suppression buffer {}", self.store_name),
            message: e.0,
        }
    }

    fn corrupt(&self) -> StreamsError {
        StreamsError::State(format!(
            "suppression buffer {}: a held change is malformed",
            self.store_name
        ))
    }

    /// Forwards and removes the held change of `key`.
    fn emit(&mut self, ctx: &mut ProcessorContext<K, Option<V>>, key: Vec<u8>) -> ProcessResult {
        let (store, held) = self.held.as_mut().expect("init ran");
        let Some((due_from, size)) = held.keys.remove(&key) else {
            return Ok(());
        };
        held.by_time.remove(&(due_from, key.clone()));
        held.bytes -= size;
        let mut stored = vec![HELD];
        stored.extend_from_slice(&key);
        let bytes = store.get(&stored)?;
        store.delete(&stored)?;
        let Some(change) = bytes.as_deref().and_then(HeldChange::decode) else {
            return Err(self.corrupt());
        };
        let record = Record {
            key: self
                .key_serde
                .deserialize(&key)
                .map_err(|e| self.serde_error(e))?,
            value: match change.change.split_first() {
                Some((1, v)) => Some(
                    self.value_serde
                        .deserialize(v)
                        .map_err(|e| self.serde_error(e))?,
                ),
                Some((0, _)) => None,
                _ => return Err(self.corrupt()),
            },
            timestamp: change.timestamp,
            headers: Headers::new(),
        };
        ctx.forward(record)
    }

    /// Whether the buffer is over one of its bounds.
    fn over_bounds(&self) -> bool {
        let (_, held) = self.held.as_ref().expect("init ran");
        self.buffer.max_records.is_some_and(|n| held.keys.len() > n)
            || self.buffer.max_bytes.is_some_and(|b| held.bytes > b)
    }
}

impl<K: Clone + 'static, V: Clone + 'static> Processor<K, Option<V>, K, Option<V>>
    for Suppress<K, V>
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, Option<V>>) -> ProcessResult {
        let store = ctx.key_value_store(&self.store_name, BytesSerde, BytesSerde)?;
        let mut held = Held {
            stream_time: i64::MIN,
            ..Held::default()
        };
        for (key, value) in store.all()? {
            match key.split_first() {
                Some((&HELD, k)) => {
                    let change = HeldChange::decode(&value).ok_or_else(|| self.corrupt())?;
                    let size = held_size(k, &change.change);
                    held.by_time.insert((change.due_from, k.to_vec()));
                    held.keys.insert(k.to_vec(), (change.due_from, size));
                    held.bytes += size;
                }
                Some((&STREAM_TIME, t)) if t.len() == 8 => {
                    held.stream_time = i64::from_be_bytes(t.try_into().expect("8 bytes"));
                }
                _ => {}
            }
        }
        tracing::debug!(buffer = %self.store_name, held = held.keys.len(), "suppression buffer loaded");
        self.held = Some((store, held));
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<K, Option<V>>,
        record: Record<K, Option<V>>,
    ) -> ProcessResult {
        let key = bytes_of(&*self.key_serde, &record.key).map_err(|e| self.serde_error(e))?;
        let change = match &record.value {
            Some(v) => {
                let mut out = vec![1];
                self.value_serde
                    .serialize(v, &mut out)
                    .map_err(|e| self.serde_error(e))?;
                out
            }
            None => vec![0],
        };
        let (store, held) = self.held.as_mut().expect("init ran");
        if record.timestamp > held.stream_time {
            held.stream_time = record.timestamp;
            store.put(&vec![STREAM_TIME], &record.timestamp.to_be_bytes().to_vec())?;
        }
        // A key keeps the due time of its first held change (a time limit counts from the
        // first change held back, not the latest).
        let due_from = match (&self.key_time, held.keys.get(&key)) {
            (Some(window_end), _) => window_end(&record.key),
            (None, Some(&(due, _))) => due,
            (None, None) => record.timestamp,
        };
        let size = held_size(&key, &change);
        if let Some((old_due, old_size)) = held.keys.insert(key.clone(), (due_from, size)) {
            held.by_time.remove(&(old_due, key.clone()));
            held.bytes -= old_size;
        }
        held.by_time.insert((due_from, key.clone()));
        held.bytes += size;
        let mut stored = vec![HELD];
        stored.extend_from_slice(&key);
        let value = HeldChange {
            due_from,
            timestamp: record.timestamp,
            change,
        };
        store.put(&stored, &value.encode())?;

        // Forward what is due, then make room.
        let expiry = held.stream_time.saturating_sub(self.after);
        loop {
            let (_, held) = self.held.as_ref().expect("init ran");
            let Some((due, key)) = held.by_time.first().cloned() else {
                break;
            };
            if due > expiry {
                break;
            }
            self.emit(ctx, key)?;
        }
        while self.over_bounds() {
            if self.buffer.when_full == WhenFull::ShutDown {
                let (_, held) = self.held.as_ref().expect("init ran");
                return Err(StreamsError::State(format!(
                    "suppression {} is full ({} changes, {} bytes held) and shuts down when \
                     full; give it a larger buffer or emit early when full",
                    self.name,
                    held.keys.len(),
                    held.bytes
                )));
            }
            let (_, held) = self.held.as_ref().expect("init ran");
            let Some((_, key)) = held.by_time.first().cloned() else {
                break;
            };
            metrics::counter!("streamtime_suppression_emitted_early_total", "suppression" => self.name.clone())
                .increment(1);
            self.emit(ctx, key)?;
        }
        Ok(())
    }
}

fn bytes_of<T: 'static>(
    serde: &dyn Serde<T>,
    value: &T,
) -> Result<Vec<u8>, crate::serdes::SerdeError> {
    let mut out = Vec::new();
    serde.serialize(value, &mut out)?;
    Ok(out)
}
