//! Stream–stream windowed joins: [`KStream::join`], [`KStream::left_join`] and
//! [`KStream::outer_join`] with [`JoinWindows`] and [`StreamJoined`].
//!
//! A left record at `ts` joins every right record of the same key with a timestamp in
//! `[ts − before, ts + after]` (and a right record at `ts'` every left record in
//! `[ts' − after, ts' + before]`). Results carry the larger of the two timestamps.
//!
//! ```
//! use std::time::Duration;
//! use streamtime::{StreamsBuilder, StreamsConfig, Consumed, Produced, TopologyTestDriver};
//! use streamtime::dsl::{JoinWindows, StreamJoined};
//! use streamtime::serdes::StringSerde;
//!
//! let builder = StreamsBuilder::new();
//! let views = builder.stream("views", Consumed::with(StringSerde, StringSerde));
//! let clicks = builder.stream("clicks", Consumed::with(StringSerde, StringSerde));
//! views
//!     .join(
//!         &clicks,
//!         |view: &String, click: &String| format!("{view}+{click}"),
//!         JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(10)),
//!         StreamJoined::as_("view-clicks"),
//!     )
//!     .to("joined", Produced::with(StringSerde, StringSerde));
//! let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("j", "unused")).unwrap();
//! driver.input_topic("views", StringSerde, StringSerde).pipe("ann".into(), "v1".into(), 100).unwrap();
//! driver.input_topic("clicks", StringSerde, StringSerde).pipe("ann".into(), "c1".into(), 105).unwrap();
//! let out = driver.output_topic("joined", StringSerde, StringSerde).read_records();
//! assert_eq!((out[0].value.as_str(), out[0].timestamp), ("v1+c1", 105));
//! ```
//!
//! Left and outer joins emit a record without a partner (`None` for the missing side) only
//! once its window has closed — when the shared stream time passes `ts + after + grace` for a
//! left record, `ts + before + grace` for a right one — so a partner arriving later in the
//! window never follows a premature `None` result. Until then such records wait, ordered by
//! timestamp, in a key-value store shared by both sides. A record emitted alone is not paired
//! afterwards either: with asymmetric windows a partner can still be accepted after the
//! record's own window closed, and that pair would contradict the `None` result already out.
//!
//! Both sides share one stream time, the larger of the two buffers' own (so it is restored
//! with them from their changelogs). A record whose own window has already closed (`ts +
//! after + grace` for a left record, `ts + before + grace` for a right one, below stream
//! time) is dropped, counted in `streamtime_dropped_records_total{reason="late"}` and logged.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::late::{LatePolicy, LateRecordHandler};
use super::options::Repartitioned;
use super::stream::KStream;
use super::windows::Window;
use super::BuilderState;
use crate::error::StreamsError;
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serdes::{BytesSerde, Serde, SerdeError};
use crate::stores::{KeyValueStoreHandle, Stores, WindowStoreHandle};
use crate::topology::{NodeKind, TopicName, Topology};
use crate::ProcessResult;
use streamtime_state::time_key;

/// Which records of a stream–stream join meet: a left record at `ts` and right records at
/// `ts' ∈ [ts − before, ts + after]`, and how long (`grace`) out-of-order records are still
/// accepted after that window ends.
///
/// ```
/// use std::time::Duration;
/// use streamtime::dsl::JoinWindows;
/// // Right records up to 5 s before and 1 s after each left record; 2 s of grace.
/// let w = JoinWindows::of_time_difference_and_grace(Duration::from_secs(1), Duration::from_secs(2))
///     .before(Duration::from_secs(5));
/// assert_eq!((w.before_ms(), w.after_ms(), w.grace_ms()), (5_000, 1_000, 2_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindows {
    before_ms: i64,
    after_ms: i64,
    grace_ms: i64,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl JoinWindows {
    /// Records join when their timestamps differ by at most `difference`; records up to
    /// `grace` after a window's end are still accepted.
    pub fn of_time_difference_and_grace(difference: Duration, grace: Duration) -> Self {
        let d = millis(difference);
        JoinWindows {
            before_ms: d,
            after_ms: d,
            grace_ms: millis(grace),
        }
    }

    /// Like [`JoinWindows::of_time_difference_and_grace`] with no grace: a record is dropped
    /// as soon as stream time has passed the end of its window.
    pub fn of_time_difference_with_no_grace(difference: Duration) -> Self {
        Self::of_time_difference_and_grace(difference, Duration::ZERO)
    }

    /// How far before a left record right records still join it.
    pub fn before(mut self, before: Duration) -> Self {
        self.before_ms = millis(before);
        self
    }

    /// How far after a left record right records still join it.
    pub fn after(mut self, after: Duration) -> Self {
        self.after_ms = millis(after);
        self
    }

    /// `before` in ms.
    pub fn before_ms(&self) -> i64 {
        self.before_ms
    }

    /// `after` in ms.
    pub fn after_ms(&self) -> i64 {
        self.after_ms
    }

    /// `grace` in ms.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }

    /// How long each side's buffer keeps a record: `before + after + grace`.
    pub fn retention_ms(&self) -> i64 {
        self.before_ms
            .saturating_add(self.after_ms)
            .saturating_add(self.grace_ms)
    }
}

/// Options of a stream–stream join: the name its stores are derived from, serdes (default:
/// the streams' own) and how the buffers are kept.
///
/// Stores: `<name>-this-join-store` and `<name>-other-join-store` (window stores keeping
/// every record of the left and right side for `before + after + grace`), plus
/// `<name>-outer-shared-join-store` for left and outer joins. Repartition topics, when a
/// side changed its key: `<name>-left-repartition` and `<name>-right-repartition`.
pub struct StreamJoined<K, V1, V2> {
    pub(crate) name: Option<String>,
    pub(crate) key_serde: Option<Arc<dyn Serde<K>>>,
    pub(crate) value_serde: Option<Arc<dyn Serde<V1>>>,
    pub(crate) other_value_serde: Option<Arc<dyn Serde<V2>>>,
    pub(crate) in_memory: bool,
    pub(crate) logging: bool,
}

impl<K, V1, V2> Default for StreamJoined<K, V1, V2> {
    fn default() -> Self {
        StreamJoined {
            name: None,
            key_serde: None,
            value_serde: None,
            other_value_serde: None,
            in_memory: false,
            logging: true,
        }
    }
}

impl<K, V1, V2> StreamJoined<K, V1, V2> {
    /// Names the join's stores and repartition topics after `name`.
    pub fn as_(name: impl Into<String>) -> Self {
        StreamJoined {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    /// Serdes of the key and of both sides' values.
    pub fn with_serdes(
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V1>,
        other_value_serde: impl Serde<V2>,
    ) -> Self {
        StreamJoined {
            key_serde: Some(Arc::new(key_serde)),
            value_serde: Some(Arc::new(value_serde)),
            other_value_serde: Some(Arc::new(other_value_serde)),
            ..Default::default()
        }
    }

    /// Names the stores and topics too.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Keep the buffers in memory instead of RocksDB.
    pub fn in_memory(mut self) -> Self {
        self.in_memory = true;
        self
    }

    /// Turn the buffers' changelogs off (they are then lost with the instance).
    pub fn with_logging(mut self, logging: bool) -> Self {
        self.logging = logging;
        self
    }
}

/// Which sides' records without a partner produce a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JoinKind {
    Inner,
    Left,
    Outer,
}

impl JoinKind {
    fn tracks(self, left: bool) -> bool {
        match self {
            JoinKind::Inner => false,
            JoinKind::Left => left,
            JoinKind::Outer => true,
        }
    }
}

/// The general joiner every join kind is reduced to: `None` stands for the missing side.
type Joiner<V1, V2, VR> = Arc<dyn Fn(Option<&V1>, Option<&V2>) -> VR + Send + Sync>;

/// Every source topic the node `node` reads from, through its ancestors (a sub-topology is
/// cut at repartition topics, so the walk ends at the nearest sources).
pub(crate) fn upstream_source_topics(topology: &Topology, node: usize) -> BTreeSet<TopicName> {
    let mut topics = BTreeSet::new();
    let mut stack = vec![node];
    let mut seen = BTreeSet::new();
    while let Some(i) = stack.pop() {
        if !seen.insert(i) {
            continue;
        }
        let def = &topology.nodes[i];
        if let NodeKind::Source { topics: t, .. } = &def.kind {
            topics.extend(t.iter().cloned());
        }
        stack.extend(def.parents.iter().copied());
    }
    topics
}

/// Requires the inputs of a join (nodes `a` and `b`) to be co-partitioned: their source
/// topics must have equal partition counts, which building the application checks before
/// anything is processed. Repartition topics among them are sized to match.
pub(crate) fn require_copartitioned(state: &Rc<RefCell<BuilderState>>, a: usize, b: usize) {
    let mut s = state.borrow_mut();
    let mut group = upstream_source_topics(&s.topology, a);
    group.extend(upstream_source_topics(&s.topology, b));
    if group.len() > 1 && !s.topology.copartition_groups.contains(&group) {
        s.topology.copartition_groups.push(group);
    }
}

/// The stream repartitioned through `<base>-<side>-repartition` when a key-changing
/// operation came before, so equal keys of both sides meet in one task.
fn repartitioned_for_join<K: Clone + 'static, V: Clone + 'static>(
    stream: &KStream<K, V>,
    base: &str,
    side: &str,
    key_serde: &Arc<dyn Serde<K>>,
    value_serde: &Arc<dyn Serde<V>>,
) -> KStream<K, V> {
    if !stream.is_repartition_required() {
        return stream.clone();
    }
    stream.repartition(Repartitioned::implicit(
        format!("{base}-{side}"),
        Some(key_serde.clone()),
        Some(value_serde.clone()),
    ))
}

impl<K: Clone + 'static, V1: Clone + 'static> KStream<K, V1> {
    /// Inner windowed join with `other` on the key: every pair of a left and a right record
    /// within `windows` gives `joiner(left, right)`, stamped with the later of the two
    /// timestamps. Records later than their window's close are dropped (counted in
    /// `streamtime_dropped_records_total{reason="late"}`). Both inputs must be
    /// co-partitioned; one whose key changed is repartitioned first.
    ///
    /// The result's value serde is unknown: give one with `with_serdes` or `Produced::with`.
    pub fn join<V2, VR>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(&V1, &V2) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V1, V2>,
    ) -> KStream<K, VR>
    where
        V2: Clone + 'static,
        VR: Clone + 'static,
    {
        let joiner: Joiner<V1, V2, VR> =
            Arc::new(move |a: Option<&V1>, b: Option<&V2>| match (a, b) {
                (Some(a), Some(b)) => joiner(a, b),
                _ => unreachable!("an inner join only pairs two present values"),
            });
        self.stream_join(other, joiner, windows, joined, JoinKind::Inner)
    }

    /// Left windowed join: like [`KStream::join`], and a left record that found no right
    /// record by the time its window closed (stream time past `ts + after + grace`) gives
    /// `joiner(left, None)`, stamped with its own timestamp.
    pub fn left_join<V2, VR>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(&V1, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V1, V2>,
    ) -> KStream<K, VR>
    where
        V2: Clone + 'static,
        VR: Clone + 'static,
    {
        let joiner: Joiner<V1, V2, VR> = Arc::new(move |a: Option<&V1>, b: Option<&V2>| match a {
            Some(a) => joiner(a, b),
            None => unreachable!("a left join never emits a right record alone"),
        });
        self.stream_join(other, joiner, windows, joined, JoinKind::Left)
    }

    /// Outer windowed join: like [`KStream::left_join`] for both sides; a right record left
    /// alone gives `joiner(None, Some(right))` once stream time passes `ts + before + grace`.
    pub fn outer_join<V2, VR>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(Option<&V1>, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V1, V2>,
    ) -> KStream<K, VR>
    where
        V2: Clone + 'static,
        VR: Clone + 'static,
    {
        self.stream_join(other, Arc::new(joiner), windows, joined, JoinKind::Outer)
    }

    fn stream_join<V2, VR>(
        &self,
        other: &KStream<K, V2>,
        joiner: Joiner<V1, V2, VR>,
        windows: JoinWindows,
        joined: StreamJoined<K, V1, V2>,
        kind: JoinKind,
    ) -> KStream<K, VR>
    where
        V2: Clone + 'static,
        VR: Clone + 'static,
    {
        let state = self.state().clone();
        let failed = self.derive::<K, VR>(None, None, None, false);
        let base = joined
            .name
            .clone()
            .unwrap_or_else(|| state.borrow_mut().next_name("KSTREAM-JOIN"));
        let key_serde = joined
            .key_serde
            .clone()
            .or_else(|| self.key_serde())
            .or_else(|| other.key_serde());
        let v1_serde = joined.value_serde.clone().or_else(|| self.value_serde());
        let v2_serde = joined
            .other_value_serde
            .clone()
            .or_else(|| other.value_serde());
        let (Some(key_serde), Some(v1_serde), Some(v2_serde)) = (key_serde, v1_serde, v2_serde)
        else {
            state
                .borrow_mut()
                .record_error(StreamsError::Topology(format!(
                    "join {base}: the key or a value serde is unknown after a type-changing \
                 operation; pass them with StreamJoined::with_serdes"
                )));
            return failed;
        };
        let left = repartitioned_for_join(self, &base, "left", &key_serde, &v1_serde);
        let right = repartitioned_for_join(other, &base, "right", &key_serde, &v2_serde);
        let (Some(left_node), Some(right_node)) = (left.node(), right.node()) else {
            return failed;
        };
        require_copartitioned(&state, left_node, right_node);

        let this_store = format!("{base}-this-join-store");
        let other_store = format!("{base}-other-join-store");
        let outer_store =
            (kind != JoinKind::Inner).then(|| format!("{base}-outer-shared-join-store"));
        let retention = Duration::from_millis(windows.retention_ms().max(1) as u64);
        let mut specs = vec![
            Stores::window(&this_store, retention, true),
            Stores::window(&other_store, retention, true),
        ];
        if let Some(name) = &outer_store {
            specs.push(Stores::key_value(name));
        }
        let mut store_names = Vec::new();
        for spec in specs {
            let mut spec = spec.with_logging(joined.logging);
            if joined.in_memory {
                spec = spec.in_memory();
            }
            store_names.push(spec.name().to_string());
            // Bound first: a borrow in the condition would last into the block, which borrows again.
            let registered = state.borrow_mut().topology.register_store(spec);
            if let Err(e) = registered {
                state.borrow_mut().record_error(e);
                return failed;
            }
        }

        let shared = Arc::new(Shared {
            key_serde: key_serde.clone(),
            v1_serde: v1_serde.clone(),
            v2_serde: v2_serde.clone(),
            joiner: joiner.clone(),
            windows,
            kind,
            outer_store,
        });
        let left_side = {
            let shared = shared.clone();
            let (this, other) = (this_store.clone(), other_store.clone());
            let (s1, s2) = (v1_serde.clone(), v2_serde.clone());
            let j = joiner.clone();
            move || {
                let j = j.clone();
                JoinSide::<K, V1, V2, V1, V2, VR> {
                    shared: shared.clone(),
                    is_left: true,
                    this_store_name: this.clone(),
                    other_store_name: other.clone(),
                    this_serde: s1.clone(),
                    other_serde: s2.clone(),
                    pair: Arc::new(move |a: &V1, b: &V2| j(Some(a), Some(b))),
                    runtime: None,
                }
            }
        };
        let right_side = {
            let shared = shared.clone();
            let (this, other) = (other_store.clone(), this_store.clone());
            let (s1, s2) = (v1_serde.clone(), v2_serde.clone());
            let j = joiner;
            move || {
                let j = j.clone();
                JoinSide::<K, V2, V1, V1, V2, VR> {
                    shared: shared.clone(),
                    is_left: false,
                    this_store_name: this.clone(),
                    other_store_name: other.clone(),
                    this_serde: s2.clone(),
                    other_serde: s1.clone(),
                    pair: Arc::new(move |b: &V2, a: &V1| j(Some(a), Some(b))),
                    runtime: None,
                }
            }
        };
        let left_out = left.add_processor("KSTREAM-JOINTHIS", &[], store_names.clone(), left_side);
        let right_out = right.add_processor("KSTREAM-JOINOTHER", &[], store_names, right_side);
        let left_out = left.derive::<K, VR>(left_out, Some(key_serde.clone()), None, false);
        let right_out = right.derive::<K, VR>(right_out, Some(key_serde), None, false);
        left_out.merge(&right_out)
    }
}

/// What both sides of one join share, in every task.
struct Shared<K, V1, V2, VR> {
    key_serde: Arc<dyn Serde<K>>,
    v1_serde: Arc<dyn Serde<V1>>,
    v2_serde: Arc<dyn Serde<V2>>,
    joiner: Joiner<V1, V2, VR>,
    windows: JoinWindows,
    kind: JoinKind,
    outer_store: Option<String>,
}

impl<K, V1, V2, VR> Shared<K, V1, V2, VR> {
    /// How far after its own timestamp a record of this side joins the other side: `after`
    /// for the left side, `before` for the right one. Its window closes at
    /// `ts + this + grace`.
    fn ahead_ms(&self, left: bool) -> i64 {
        if left {
            self.windows.after_ms
        } else {
            self.windows.before_ms
        }
    }

    fn behind_ms(&self, left: bool) -> i64 {
        self.ahead_ms(!left)
    }

    /// Whether the window of a record of side `left` at `ts` has closed at `stream_time`.
    fn closed(&self, left: bool, ts: i64, stream_time: i64) -> bool {
        ts.saturating_add(self.ahead_ms(left))
            .saturating_add(self.windows.grace_ms)
            < stream_time
    }

    /// Whether no record that could still join one of side `left` at `ts` can arrive any
    /// more: every partner (at most `ts + ahead`) would itself be late.
    fn settled(&self, ts: i64, stream_time: i64) -> bool {
        ts.saturating_add(self.windows.retention_ms()) < stream_time
    }
}

/// Key of the outer store: the timestamp first, so unmatched records are found in time
/// order by a range scan ([`time_key`] bytes), then the side
/// (left `0` before right `1`), then the record key's bytes.
fn outer_key(ts: i64, left: bool, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + key.len());
    out.extend_from_slice(&time_key::encode(ts));
    out.push(if left { 0 } else { 1 });
    out.extend_from_slice(key);
    out
}

fn split_outer_key(bytes: &[u8]) -> Option<(i64, bool, &[u8])> {
    if bytes.len() < 9 {
        return None;
    }
    let ts = time_key::decode(bytes)?;
    Some((ts, bytes[8] == 0, &bytes[9..]))
}

/// The values waiting in the outer store under one (timestamp, side, key): a 4-byte
/// big-endian count, then each value serialized with that side's serde behind a 4-byte
/// big-endian length. An empty list marks records
/// already emitted without a partner, so that they do not join a partner that is accepted
/// afterwards (which would contradict the emitted result).
struct ByteListSerde;

impl Serde<Vec<Vec<u8>>> for ByteListSerde {
    fn serialize(&self, value: &Vec<Vec<u8>>, out: &mut Vec<u8>) -> Result<(), SerdeError> {
        // A leading count keeps the empty marker non-empty bytes, never mistaken for a delete.
        let count = u32::try_from(value.len())
            .map_err(|_| SerdeError::new("too many buffered join values"))?;
        out.extend_from_slice(&count.to_be_bytes());
        for item in value {
            let len = u32::try_from(item.len())
                .map_err(|_| SerdeError::new("join buffer value longer than 4 GiB"))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(item);
        }
        Ok(())
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, SerdeError> {
        if bytes.len() < 4 {
            return Err(SerdeError::new("truncated join buffer value count"));
        }
        let count = u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes")) as usize;
        let mut bytes = &bytes[4..];
        let mut items = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            if bytes.len() < 4 {
                return Err(SerdeError::new("truncated join buffer value length"));
            }
            let len = u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes")) as usize;
            bytes = &bytes[4..];
            if bytes.len() < len {
                return Err(SerdeError::new("truncated join buffer value"));
            }
            items.push(bytes[..len].to_vec());
            bytes = &bytes[len..];
        }
        Ok(items)
    }
}

struct Runtime<K, VThis, VOther> {
    this_store: WindowStoreHandle<K, VThis>,
    other_store: WindowStoreHandle<K, VOther>,
    outer: Option<KeyValueStoreHandle<Vec<u8>, Vec<Vec<u8>>>>,
    late: LateRecordHandler<K, VThis>,
}

/// The joiner seen from one side: `(this side's value, the other side's value)`.
type Pair<VThis, VOther, VR> = Arc<dyn Fn(&VThis, &VOther) -> VR + Send + Sync>;

/// One side of a stream–stream join (the left side has `VThis = V1`): buffers its records,
/// joins them with the other side's buffer, and emits the unmatched records of both sides
/// whose window closed when its record moves the shared stream time on.
struct JoinSide<K, VThis, VOther, V1, V2, VR> {
    shared: Arc<Shared<K, V1, V2, VR>>,
    is_left: bool,
    this_store_name: String,
    other_store_name: String,
    this_serde: Arc<dyn Serde<VThis>>,
    other_serde: Arc<dyn Serde<VOther>>,
    pair: Pair<VThis, VOther, VR>,
    runtime: Option<Runtime<K, VThis, VOther>>,
}

fn serde_error(what: &str, e: SerdeError) -> StreamsError {
    StreamsError::Serde {
        context: format!("stream-stream join {what}"),
        message: e.0,
    }
}

fn value_bytes<T: 'static>(serde: &dyn Serde<T>, value: &T) -> Result<Vec<u8>, SerdeError> {
    let mut out = Vec::new();
    serde.serialize(value, &mut out)?;
    Ok(out)
}

impl<K, VThis, VOther, V1, V2, VR> JoinSide<K, VThis, VOther, V1, V2, VR>
where
    K: Clone + 'static,
    VThis: Clone + 'static,
    VOther: Clone + 'static,
    V1: 'static,
    V2: 'static,
    VR: Clone + 'static,
{
    /// The shared stream time before this record: the larger of the two buffers' own.
    fn shared_stream_time(&self) -> Option<i64> {
        let rt = self.runtime.as_ref().expect("init ran");
        match (
            rt.this_store.observed_stream_time(),
            rt.other_store.observed_stream_time(),
        ) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Emits, in timestamp order, the waiting records of both sides whose window closed by
    /// `stream_time`, and forgets the markers of emitted records no partner can reach any
    /// more.
    fn emit_closed(&self, ctx: &mut ProcessorContext<K, VR>, stream_time: i64) -> ProcessResult {
        let rt = self.runtime.as_ref().expect("init ran");
        let Some(outer) = &rt.outer else {
            return Ok(());
        };
        let sh = &self.shared;
        let earliest_close = sh
            .windows
            .before_ms
            .min(sh.windows.after_ms)
            .saturating_add(sh.windows.grace_ms);
        // Keys are longer than the 8-byte timestamp prefix, so this bound excludes every
        // record at `stream_time - earliest_close`, whose window is still open.
        let to = outer_key(stream_time.saturating_sub(earliest_close), true, &[])[..8].to_vec();
        let from = vec![0u8; 8];
        for (raw_key, values) in outer.range(&from, &to)? {
            let Some((ts, left, key_bytes)) = split_outer_key(&raw_key) else {
                continue;
            };
            if !sh.closed(left, ts, stream_time) {
                continue;
            }
            if values.is_empty() {
                if sh.settled(ts, stream_time) {
                    outer.delete(&raw_key)?;
                }
                continue;
            }
            let key = sh
                .key_serde
                .deserialize(key_bytes)
                .map_err(|e| serde_error("buffered key", e))?;
            for bytes in &values {
                let value = if left {
                    let v = sh
                        .v1_serde
                        .deserialize(bytes)
                        .map_err(|e| serde_error("buffered value", e))?;
                    (sh.joiner)(Some(&v), None)
                } else {
                    let v = sh
                        .v2_serde
                        .deserialize(bytes)
                        .map_err(|e| serde_error("buffered value", e))?;
                    (sh.joiner)(None, Some(&v))
                };
                ctx.forward(Record::new(key.clone(), value, ts))?;
            }
            if sh.settled(ts, stream_time) {
                outer.delete(&raw_key)?;
            } else {
                outer.put(&raw_key, &Vec::new())?;
            }
        }
        Ok(())
    }
}

impl<K, VThis, VOther, V1, V2, VR> Processor<K, VThis, K, VR>
    for JoinSide<K, VThis, VOther, V1, V2, VR>
where
    K: Clone + 'static,
    VThis: Clone + 'static,
    VOther: Clone + 'static,
    V1: 'static,
    V2: 'static,
    VR: Clone + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, VR>) -> ProcessResult {
        let keys = self.shared.key_serde.clone();
        let outer = match &self.shared.outer_store {
            Some(name) => Some(ctx.key_value_store(name, BytesSerde, ByteListSerde)?),
            None => None,
        };
        self.runtime = Some(Runtime {
            this_store: ctx.window_store(
                &self.this_store_name,
                keys.clone(),
                self.this_serde.clone(),
            )?,
            other_store: ctx.window_store(
                &self.other_store_name,
                keys,
                self.other_serde.clone(),
            )?,
            outer,
            late: LateRecordHandler::for_node(ctx, LatePolicy::default(), None),
        });
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<K, VR>,
        record: Record<K, VThis>,
    ) -> ProcessResult {
        let left = self.is_left;
        let ts = record.timestamp;
        // The buffers' own stream time, capped by the task's. Restored from a changelog
        // under at-least-once, the buffers hold records past the last commit; their records
        // are processed again, and measured against the buffers' time they would be dropped
        // as late (the chaos runner lost join results that way). The task's stream time is
        // restored from the commit, and is never behind the buffers' otherwise.
        let previous = self
            .shared_stream_time()
            .map(|p| p.min(ctx.stream_time().max(ts)));
        let stream_time = previous.map_or(ts, |p| p.max(ts));
        let sh = self.shared.clone();
        if sh.closed(left, ts, stream_time) {
            let window = Window::new(
                ts.saturating_sub(sh.behind_ms(left)),
                ts.saturating_add(sh.ahead_ms(left)),
            );
            let rt = self.runtime.as_mut().expect("init ran");
            return rt.late.drop_late(ctx, &record, &[window], stream_time);
        }
        if previous.is_none_or(|p| stream_time > p) {
            self.emit_closed(ctx, stream_time)?;
        }
        let rt = self.runtime.as_ref().expect("init ran");
        rt.this_store.put(&record.key, ts, &record.value)?;
        let key_bytes =
            value_bytes(&*sh.key_serde, &record.key).map_err(|e| serde_error("key", e))?;
        let other_tracked = sh.kind.tracks(!left);
        let from = ts.saturating_sub(sh.behind_ms(left)).max(0);
        let to = ts.saturating_add(sh.ahead_ms(left)).max(0);
        let mut matched = false;
        for (other_ts, other_value) in rt.other_store.fetch(&record.key, from, to)? {
            if let (true, Some(outer)) = (other_tracked, &rt.outer) {
                let waiting_key = outer_key(other_ts, !left, &key_bytes);
                match outer.get(&waiting_key)? {
                    // Already emitted without a partner: joining now would contradict it.
                    Some(values) if values.is_empty() => continue,
                    Some(_) => outer.delete(&waiting_key)?,
                    None => {}
                }
            }
            matched = true;
            ctx.forward(Record {
                key: record.key.clone(),
                value: (self.pair)(&record.value, &other_value),
                timestamp: ts.max(other_ts),
                headers: record.headers.clone(),
            })?;
        }
        if !matched && sh.kind.tracks(left) {
            let outer = rt
                .outer
                .as_ref()
                .expect("joins that track unmatched records have an outer store");
            let waiting_key = outer_key(ts, left, &key_bytes);
            let mut values = outer.get(&waiting_key)?.unwrap_or_default();
            values.push(
                value_bytes(&*self.this_serde, &record.value)
                    .map_err(|e| serde_error("value", e))?,
            );
            outer.put(&waiting_key, &values)?;
        }
        Ok(())
    }
}
