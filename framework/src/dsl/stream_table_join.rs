//! Stream–table joins ([`KStream::join_table`], [`KStream::left_join_table`] and their
//! `_with` forms taking [`Joined`]): each stream record is joined with its key's value in the
//! table.
//!
//! With a plain table that is the table's current value. With a versioned table
//! ([`crate::Materialized::as_versioned`]) it is the value the key had at the stream record's
//! timestamp (Kafka Streams' KIP-914), so replaying, or a table update that arrives after
//! the stream record it should apply to, gives the same join. A grace period
//! ([`Joined::with_grace_period`], KIP-923) holds each stream record back until stream time
//! is that far past it, so table updates written up to the grace period late still apply;
//! held records wait in a changelogged store and are joined in timestamp order.
//!
//! ```
//! use std::time::Duration;
//! use streamtime::{Consumed, Joined, Materialized, Produced, StreamsBuilder, StreamsConfig, TopologyTestDriver};
//! use streamtime::serdes::{I64Serde, StringSerde};
//!
//! let builder = StreamsBuilder::new();
//! let prices = builder.table("prices", Consumed::with(StringSerde, I64Serde),
//!     Materialized::as_versioned("prices", Duration::from_secs(3600)));
//! builder.stream("orders", Consumed::with(StringSerde, I64Serde))
//!     .join_table_with(&prices, |quantity: &i64, price: &i64| quantity * price,
//!         Joined::with_grace_period(Duration::from_millis(100)))
//!     .to("totals", Produced::with(StringSerde, I64Serde));
//! let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("t", "unused")).unwrap();
//! let (orders, prices) = (driver.input_topic("orders", StringSerde, I64Serde), driver.input_topic("prices", StringSerde, I64Serde));
//! prices.pipe("pen".into(), 2, 0).unwrap();
//! orders.pipe("pen".into(), 10, 50).unwrap(); // held back for the grace period
//! prices.pipe("pen".into(), 3, 40).unwrap(); // a late price: it was valid when the order came
//! orders.pipe("pen".into(), 1, 200).unwrap(); // stream time 200 releases the order at 50
//! let out = driver.output_topic("totals", StringSerde, I64Serde).read_values();
//! assert_eq!(out, vec![30]);
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::join::require_copartitioned;
use super::stream::KStream;
use super::table::KTable;
use crate::error::StreamsError;
use crate::processor::{Processor, ProcessorContext};
use crate::record::{Headers, Record};
use crate::serdes::{BytesSerde, Serde, TimestampedSerde};
use crate::stores::{KeyValueStoreHandle, StoreKind, Stores, VersionedStoreHandle};
use crate::ProcessResult;
use streamtime_state::time_key;

/// A stream–table join reduced to one function: `None` when the stream record gives no
/// result (inner join, key missing from the table).
type StreamTableJoiner<V, VT, VR> = Arc<dyn Fn(&V, Option<&VT>) -> Option<VR> + Send + Sync>;

/// Options of a stream–table join (Kafka Streams' `Joined`): a grace period for the stream
/// side, the stream's serdes (needed to hold records back when the stream changed type) and
/// a name for the join's processor and store.
///
/// ```
/// use std::time::Duration;
/// use streamtime::Joined;
/// use streamtime::serdes::{I64Serde, StringSerde};
/// let joined = Joined::with_grace_period(Duration::from_secs(5))
///     .with_serdes(StringSerde, I64Serde)
///     .with_name("price-orders");
/// # let _: Joined<String, i64> = joined;
/// ```
pub struct Joined<K, V> {
    grace: Option<Duration>,
    key_serde: Option<Arc<dyn Serde<K>>>,
    value_serde: Option<Arc<dyn Serde<V>>>,
    name: Option<String>,
}

impl<K, V> Default for Joined<K, V> {
    fn default() -> Self {
        Joined {
            grace: None,
            key_serde: None,
            value_serde: None,
            name: None,
        }
    }
}

impl<K, V> Joined<K, V> {
    /// Holds each stream record back until stream time is `grace` past its timestamp, then
    /// joins it with the table as of that timestamp. The table must be versioned, with a
    /// history retention of at least `grace`; otherwise the build fails.
    pub fn with_grace_period(grace: Duration) -> Self {
        Joined {
            grace: Some(grace),
            ..Default::default()
        }
    }

    /// Serdes of the stream's keys and values, for the store that holds records back
    /// (defaults to the stream's own).
    pub fn with_serdes(mut self, key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> Self {
        self.key_serde = Some(Arc::new(key_serde));
        self.value_serde = Some(Arc::new(value_serde));
        self
    }

    /// Names the join: its processor is `name` and the store holding records back
    /// `<name>-buffer` (changelog `<app>-<name>-buffer-changelog`).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl<K: Clone + 'static, V: Clone + 'static> KStream<K, V> {
    /// Joins each record with its key's value in `table`: `joiner(value, table_value)`,
    /// stamped with the stream record's timestamp. Records whose key the table lacks give
    /// nothing; table updates give nothing either (they only change what later stream
    /// records see). A versioned table is looked up as of the record's timestamp. The stream
    /// is repartitioned first if its key changed; stream and table must be co-partitioned.
    pub fn join_table<VT, VR>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, &VT) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR>
    where
        VT: Clone + 'static,
        VR: Clone + 'static,
    {
        self.join_table_with(table, joiner, Joined::default())
    }

    /// Like [`KStream::join_table`], but a record whose key the table lacks gives
    /// `joiner(value, None)`.
    pub fn left_join_table<VT, VR>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, Option<&VT>) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR>
    where
        VT: Clone + 'static,
        VR: Clone + 'static,
    {
        self.left_join_table_with(table, joiner, Joined::default())
    }

    /// [`KStream::join_table`] with options: a grace period for a versioned table, a name.
    pub fn join_table_with<VT, VR>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, &VT) -> VR + Send + Sync + 'static,
        joined: Joined<K, V>,
    ) -> KStream<K, VR>
    where
        VT: Clone + 'static,
        VR: Clone + 'static,
    {
        self.stream_table_join(
            table,
            Arc::new(move |v: &V, t: Option<&VT>| t.map(|t| joiner(v, t))),
            joined,
        )
    }

    /// [`KStream::left_join_table`] with options: a grace period for a versioned table, a
    /// name.
    pub fn left_join_table_with<VT, VR>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, Option<&VT>) -> VR + Send + Sync + 'static,
        joined: Joined<K, V>,
    ) -> KStream<K, VR>
    where
        VT: Clone + 'static,
        VR: Clone + 'static,
    {
        self.stream_table_join(
            table,
            Arc::new(move |v: &V, t: Option<&VT>| Some(joiner(v, t))),
            joined,
        )
    }

    fn stream_table_join<VT, VR>(
        &self,
        table: &KTable<K, VT>,
        joiner: StreamTableJoiner<V, VT, VR>,
        joined: Joined<K, V>,
    ) -> KStream<K, VR>
    where
        VT: Clone + 'static,
        VR: Clone + 'static,
    {
        let state = self.state().clone();
        let failed = |e: StreamsError| {
            state.borrow_mut().record_error(e);
            self.derive::<K, VR>(None, None, None, false)
        };
        let what = format!("stream-table join with {}", table.store);
        if let Err(e) = table.check_lookup(&what) {
            return failed(e);
        }
        let (table_keys, table_values) = match table.serdes(&what) {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        let history = match state
            .borrow()
            .topology
            .stores
            .get(&table.store)
            .map(|s| s.kind())
        {
            Some(StoreKind::Versioned {
                history_retention_ms,
            }) => Some(history_retention_ms),
            _ => None,
        };
        let grace_ms = joined.grace.map(|g| g.as_millis() as i64);
        match (grace_ms, history) {
            (Some(_), None) => {
                return failed(StreamsError::Topology(format!(
                    "{what}: a grace period needs a versioned table (Materialized::as_versioned)"
                )))
            }
            (Some(grace), Some(history)) if grace > history => {
                return failed(StreamsError::Topology(format!(
                    "{what}: the grace period ({grace} ms) exceeds the table's history \
                     retention ({history} ms), so held records would find no version"
                )))
            }
            _ => {}
        }
        let input = if self.is_repartition_required() {
            match self.serdes_for(&what, joined.key_serde.clone(), joined.value_serde.clone()) {
                Ok((k, v)) => {
                    let name = state.borrow_mut().next_name("KSTREAM-JOIN");
                    self.repartition(super::Repartitioned::implicit(
                        format!("{name}-left"),
                        Some(k),
                        Some(v),
                    ))
                }
                Err(e) => return failed(e),
            }
        } else {
            self.clone()
        };
        let (Some(stream_node), Some(table_node)) = (input.node(), table.stream.node()) else {
            return self.derive(None, None, None, false);
        };
        require_copartitioned(&state, stream_node, table_node);
        let key_serde = input.key_serde().unwrap_or_else(|| table_keys.clone());
        let mut stores = vec![table.store.clone()];
        let buffer = match grace_ms {
            None => None,
            Some(grace_ms) => {
                let serdes = input.serdes_for(&what, joined.key_serde, joined.value_serde);
                let (keys, values) = match serdes {
                    Ok(s) => s,
                    Err(e) => return failed(e),
                };
                let name = joined
                    .name
                    .clone()
                    .unwrap_or_else(|| state.borrow_mut().next_name("KSTREAM-JOIN"));
                let store = format!("{name}-buffer");
                let registered = state
                    .borrow_mut()
                    .topology
                    .register_store(Stores::key_value(&store).with_caching(false));
                if let Err(e) = registered {
                    return failed(e);
                }
                stores.push(store.clone());
                Some(BufferSpec {
                    store,
                    grace_ms,
                    keys,
                    values,
                })
            }
        };
        let store_name = table.store.clone();
        let versioned = history.is_some();
        let node = input.add_processor("KSTREAM-JOIN", &[], stores, move || StreamTableJoin {
            store_name: store_name.clone(),
            key_serde: table_keys.clone(),
            value_serde: table_values.clone(),
            joiner: joiner.clone(),
            versioned,
            table: None,
            buffer: buffer.clone().map(HeldRecords::new),
        });
        input.derive(node, Some(key_serde), None, false)
    }
}

/// Where and how a join holds stream records back.
struct BufferSpec<K, V> {
    store: String,
    grace_ms: i64,
    keys: Arc<dyn Serde<K>>,
    values: Arc<dyn Serde<V>>,
}

impl<K, V> Clone for BufferSpec<K, V> {
    fn clone(&self) -> Self {
        BufferSpec {
            store: self.store.clone(),
            grace_ms: self.grace_ms,
            keys: self.keys.clone(),
            values: self.values.clone(),
        }
    }
}

/// The join's view of the table.
enum TableLookup<K, VT> {
    Latest(KeyValueStoreHandle<K, (VT, i64)>),
    AsOf(VersionedStoreHandle<K, VT>),
}

/// Stream records held back for the grace period, in a key-value store keyed by
/// `timestamp (8, sign flipped) ++ sequence (8)`, which sorts them by timestamp, ties in
/// arrival order. The keys are also indexed in memory (rebuilt from the store when the task
/// starts), so finding the due records costs no scan of the store.
struct HeldRecords<K, V> {
    spec: BufferSpec<K, V>,
    store: Option<KeyValueStoreHandle<Vec<u8>, Vec<u8>>>,
    /// The highest stream timestamp seen, saved with each commit.
    observed: i64,
    index: BTreeSet<[u8; 16]>,
    next_seq: u64,
}

/// Commit-metadata name of the join's observed stream time.
const OBSERVED: &str = "observed";

/// The timestamp a held record's buffer key opens with.
fn held_time(key: &[u8]) -> i64 {
    time_key::decode(key).expect("held keys are 16 bytes")
}

impl<K: 'static, V: 'static> HeldRecords<K, V> {
    fn new(spec: BufferSpec<K, V>) -> Self {
        HeldRecords {
            spec,
            store: None,
            observed: i64::MIN,
            index: BTreeSet::new(),
            next_seq: 0,
        }
    }

    fn corrupt(&self, what: &str) -> StreamsError {
        StreamsError::State(format!("store {}: {what}", self.spec.store))
    }

    fn serde_error(&self, what: &str, e: crate::serdes::SerdeError) -> StreamsError {
        StreamsError::Serde {
            context: format!("{what} held in store {}", self.spec.store),
            message: e.0,
        }
    }

    fn init<KO, VO>(&mut self, ctx: &mut ProcessorContext<KO, VO>) -> ProcessResult {
        let store = ctx.key_value_store(&self.spec.store, BytesSerde, BytesSerde)?;
        self.observed = ctx.committed_metadata(OBSERVED).unwrap_or(i64::MIN);
        self.index.clear();
        for (key, _) in store.all()? {
            let key: [u8; 16] = key
                .try_into()
                .map_err(|_| self.corrupt("a held record's key is not 16 bytes"))?;
            let seq = u64::from_be_bytes(key[8..].try_into().expect("8 bytes"));
            self.next_seq = self.next_seq.max(seq + 1);
            self.index.insert(key);
        }
        self.store = Some(store);
        Ok(())
    }

    /// Holds `record` unless it is already older than the grace period (then it is handed
    /// back to be joined at once, as Kafka Streams does).
    fn hold<KO, VO>(
        &mut self,
        ctx: &mut ProcessorContext<KO, VO>,
        record: Record<K, V>,
    ) -> Result<Option<Record<K, V>>, StreamsError> {
        if record.timestamp > self.observed {
            self.observed = record.timestamp;
            ctx.set_committed_metadata(OBSERVED, self.observed);
        }
        if record.timestamp < self.cutoff() {
            return Ok(Some(record));
        }
        let mut key = [0; 16];
        key[..8].copy_from_slice(&time_key::encode(record.timestamp));
        key[8..].copy_from_slice(&self.next_seq.to_be_bytes());
        self.next_seq += 1;
        let mut value = Vec::new();
        let mut k = Vec::new();
        self.spec
            .keys
            .serialize(&record.key, &mut k)
            .map_err(|e| self.serde_error("key", e))?;
        value.extend_from_slice(&(k.len() as u32).to_be_bytes());
        value.extend_from_slice(&k);
        record.headers.encode(&mut value);
        self.spec
            .values
            .serialize(&record.value, &mut value)
            .map_err(|e| self.serde_error("value", e))?;
        self.store
            .as_ref()
            .expect("init ran")
            .put(&key.to_vec(), &value)?;
        self.index.insert(key);
        Ok(None)
    }

    /// Records held at or before this time are due.
    fn cutoff(&self) -> i64 {
        self.observed.saturating_sub(self.spec.grace_ms)
    }

    /// Removes and returns the held records that are due, oldest first.
    fn release(&mut self) -> Result<Vec<Record<K, V>>, StreamsError> {
        let cutoff = self.cutoff();
        let store = self.store.as_ref().expect("init ran");
        let mut records = Vec::new();
        while let Some(key) = self.index.first().copied() {
            if held_time(&key) > cutoff {
                break;
            }
            let key = key.to_vec();
            let value = store
                .get(&key)?
                .ok_or_else(|| self.corrupt("a held record is missing from the store"))?;
            records.push(self.decode(&key, &value)?);
            store.delete(&key)?;
            self.index.pop_first();
        }
        Ok(records)
    }

    fn decode(&self, key: &[u8], value: &[u8]) -> Result<Record<K, V>, StreamsError> {
        let corrupt = || self.corrupt("a held record is not in the buffer's layout");
        if key.len() != 16 || value.len() < 4 {
            return Err(corrupt());
        }
        let n = u32::from_be_bytes(value[..4].try_into().expect("4 bytes")) as usize;
        let k = value.get(4..4 + n).ok_or_else(corrupt)?;
        let (headers, v) = Headers::decode(&value[4 + n..]).ok_or_else(corrupt)?;
        Ok(Record {
            key: self
                .spec
                .keys
                .deserialize(k)
                .map_err(|e| self.serde_error("key", e))?,
            value: self
                .spec
                .values
                .deserialize(v)
                .map_err(|e| self.serde_error("value", e))?,
            timestamp: held_time(key),
            headers,
        })
    }
}

/// Looks each stream record's key up in the table's store, after holding it back for the
/// grace period when there is one.
struct StreamTableJoin<K, V, VT, VR> {
    store_name: String,
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<VT>>,
    joiner: StreamTableJoiner<V, VT, VR>,
    versioned: bool,
    table: Option<TableLookup<K, VT>>,
    buffer: Option<HeldRecords<K, V>>,
}

impl<K, V, VT, VR> StreamTableJoin<K, V, VT, VR>
where
    K: Clone + 'static,
    V: 'static,
    VT: 'static,
    VR: Clone + 'static,
{
    fn join(&self, ctx: &mut ProcessorContext<K, VR>, record: Record<K, V>) -> ProcessResult {
        let current = match self.table.as_ref().expect("init ran") {
            TableLookup::Latest(store) => store.get(&record.key)?.map(|(v, _)| v),
            TableLookup::AsOf(store) => store
                .get_as_of(&record.key, record.timestamp)?
                .map(|v| v.value),
        };
        match (self.joiner)(&record.value, current.as_ref()) {
            Some(value) => ctx.forward(Record {
                key: record.key,
                value,
                timestamp: record.timestamp,
                headers: record.headers,
            }),
            None => Ok(()),
        }
    }
}

impl<K, V, VT, VR> Processor<K, V, K, VR> for StreamTableJoin<K, V, VT, VR>
where
    K: Clone + 'static,
    V: 'static,
    VT: 'static,
    VR: Clone + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, VR>) -> ProcessResult {
        let (name, keys, values) = (
            &self.store_name,
            self.key_serde.clone(),
            self.value_serde.clone(),
        );
        self.table = Some(if self.versioned {
            TableLookup::AsOf(ctx.versioned_store(name, keys, values)?)
        } else {
            TableLookup::Latest(ctx.key_value_store(name, keys, TimestampedSerde(values))?)
        });
        if let Some(buffer) = &mut self.buffer {
            buffer.init(ctx)?;
        }
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<K, VR>,
        record: Record<K, V>,
    ) -> ProcessResult {
        let Some(buffer) = &mut self.buffer else {
            return self.join(ctx, record);
        };
        let now = buffer.hold(ctx, record)?;
        let due = buffer.release()?;
        if let Some(record) = now {
            self.join(ctx, record)?;
        }
        for record in due {
            self.join(ctx, record)?;
        }
        Ok(())
    }
}
