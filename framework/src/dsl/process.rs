//! Processor API processors in a DSL topology: [`KStream::process`] (any key, so the result
//! is repartitioned before a key-based operation) and [`KStream::process_values`] (the key
//! stays, so it is not), each optionally connected to state stores added with
//! [`StreamsBuilder::add_state_store`].
//!
//! ```
//! use streamtime::{Consumed, Processor, ProcessorContext, ProcessResult, Produced, Record, StreamsBuilder, StreamsConfig, TopologyTestDriver};
//! use streamtime::serdes::{I64Serde, StringSerde};
//! use streamtime::stores::{KeyValueStoreHandle, Stores};
//!
//! /// Numbers each key's records: 1, 2, 3...
//! #[derive(Default)]
//! struct Sequence(Option<KeyValueStoreHandle<String, i64>>);
//!
//! impl Processor<String, String, String, i64> for Sequence {
//!     fn init(&mut self, ctx: &mut ProcessorContext<String, i64>) -> ProcessResult {
//!         self.0 = Some(ctx.key_value_store("sequences", StringSerde, I64Serde)?);
//!         Ok(())
//!     }
//!     fn process(&mut self, ctx: &mut ProcessorContext<String, i64>, r: Record<String, String>) -> ProcessResult {
//!         let store = self.0.as_ref().unwrap();
//!         let n = store.get(&r.key)?.unwrap_or(0) + 1;
//!         store.put(&r.key, &n)?;
//!         ctx.forward(r.with_value(n))
//!     }
//! }
//!
//! let builder = StreamsBuilder::new();
//! builder.add_state_store(Stores::key_value("sequences"));
//! builder.stream("events", Consumed::with(StringSerde, StringSerde))
//!     .process_values_with_stores(Sequence::default, &["sequences"])
//!     .to("numbered", Produced::with(StringSerde, I64Serde));
//! let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("t", "unused")).unwrap();
//! let events = driver.input_topic("events", StringSerde, StringSerde);
//! for (i, k) in ["a", "b", "a"].into_iter().enumerate() { events.pipe(k.into(), "x".into(), i as i64).unwrap(); }
//! let out = driver.output_topic("numbered", StringSerde, I64Serde).read_key_values();
//! assert_eq!(out, [("a".into(), 1), ("b".into(), 1), ("a".into(), 2)]);
//! ```

use std::cell::RefCell;
use std::rc::Rc;

use super::stream::{carry, KStream};
use super::StreamsBuilder;
use crate::processor::{Processor, ProcessorContext, Punctuation};
use crate::record::Record;
use crate::stores::StoreSpec;
use crate::ProcessResult;

impl StreamsBuilder {
    /// Adds a state store for the processors of [`KStream::process_with_stores`] and
    /// [`KStream::process_values_with_stores`] that name it (Kafka Streams'
    /// `addStateStore`). A name used twice fails the build.
    pub fn add_state_store(&self, spec: StoreSpec) {
        let registered = self.state.borrow_mut().topology.register_store(spec);
        if let Err(e) = registered {
            self.state.borrow_mut().record_error(e);
        }
    }
}

impl<K: Clone + 'static, V: Clone + 'static> KStream<K, V> {
    /// Runs a Processor API processor (created once per task) on the stream. The output may
    /// have any key, so the stream is marked for repartitioning.
    pub fn process<K2, V2, P>(
        &self,
        supplier: impl Fn() -> P + Send + Sync + 'static,
    ) -> KStream<K2, V2>
    where
        K2: Clone + 'static,
        V2: Clone + 'static,
        P: Processor<K, V, K2, V2>,
    {
        self.process_with_stores(supplier, &[])
    }

    /// [`process`](Self::process) with the state stores called `stores` connected to the
    /// processor (added with [`StreamsBuilder::add_state_store`]).
    pub fn process_with_stores<K2, V2, P>(
        &self,
        supplier: impl Fn() -> P + Send + Sync + 'static,
        stores: &[&str],
    ) -> KStream<K2, V2>
    where
        K2: Clone + 'static,
        V2: Clone + 'static,
        P: Processor<K, V, K2, V2>,
    {
        let stores = stores.iter().map(|s| s.to_string()).collect();
        let node = self.add_processor("KSTREAM-PROCESSOR", &[], stores, supplier);
        self.rekeyed(node, carry(&self.key_serde()), carry(&self.value_serde()))
    }

    /// Runs a processor that keeps each record's key and may change its value (Kafka Streams'
    /// `processValues`): the stream is not marked for repartitioning. A record forwarded from
    /// `process` with another key than the one it was given fails the task with an error
    /// naming the processor (forwards from a punctuation are not checked).
    pub fn process_values<V2, P>(
        &self,
        supplier: impl Fn() -> P + Send + Sync + 'static,
    ) -> KStream<K, V2>
    where
        K: PartialEq,
        V2: Clone + 'static,
        P: Processor<K, V, K, V2>,
    {
        self.process_values_with_stores(supplier, &[])
    }

    /// [`process_values`](Self::process_values) with the state stores called `stores`
    /// connected to the processor.
    pub fn process_values_with_stores<V2, P>(
        &self,
        supplier: impl Fn() -> P + Send + Sync + 'static,
        stores: &[&str],
    ) -> KStream<K, V2>
    where
        K: PartialEq,
        V2: Clone + 'static,
        P: Processor<K, V, K, V2>,
    {
        let stores = stores.iter().map(|s| s.to_string()).collect();
        let node = self.add_processor("KSTREAM-PROCESSVALUES", &[], stores, move || SameKey {
            inner: supplier(),
            current: Rc::new(RefCell::new(None)),
        });
        self.derive(
            node,
            self.key_serde(),
            carry(&self.value_serde()),
            self.is_repartition_required(),
        )
    }
}

/// Runs a processor while its forwards are checked to keep the key of the record it is
/// processing.
struct SameKey<K, P> {
    inner: P,
    current: Rc<RefCell<Option<K>>>,
}

impl<K, V, V2, P> Processor<K, V, K, V2> for SameKey<K, P>
where
    K: Clone + PartialEq + 'static,
    V: 'static,
    V2: Clone + 'static,
    P: Processor<K, V, K, V2>,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, V2>) -> ProcessResult {
        let current = self.current.clone();
        ctx.require_same_key(Rc::new(move |key: &K| {
            current.borrow().as_ref().is_none_or(|k| k == key)
        }));
        self.inner.init(ctx)
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<K, V2>,
        record: Record<K, V>,
    ) -> ProcessResult {
        *self.current.borrow_mut() = Some(record.key.clone());
        let result = self.inner.process(ctx, record);
        *self.current.borrow_mut() = None;
        result
    }

    fn punctuate(
        &mut self,
        ctx: &mut ProcessorContext<K, V2>,
        punctuation: Punctuation,
    ) -> ProcessResult {
        self.inner.punctuate(ctx, punctuation)
    }

    fn close(&mut self) {
        self.inner.close()
    }
}
