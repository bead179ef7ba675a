//! [`KStream`]: a typed record stream in the DSL.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use super::options::{Consumed, Produced, Repartitioned};
use super::{BuilderState, FnProcessor};
use crate::error::StreamsError;
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serdes::Serde;
use crate::timestamp::RecordTimestamp;
use crate::topology::{RepartitionTopic, TopicName};
use crate::ProcessResult;

/// A stream of key-value records. Each operation adds a node to the topology and returns the
/// stream of that node's output.
///
/// Operations that may change the key (`map`, `flat_map`, `select_key`, `process`) mark the
/// stream as needing repartitioning; a later key-based operation (aggregation, join) first
/// routes it through a repartition topic so that equal keys meet in one task.
pub struct KStream<K, V> {
    state: Rc<RefCell<BuilderState>>,
    node: Option<usize>,
    key_serde: Option<Arc<dyn Serde<K>>>,
    value_serde: Option<Arc<dyn Serde<V>>>,
    repartition_required: bool,
}

impl<K, V> Clone for KStream<K, V> {
    fn clone(&self) -> Self {
        KStream {
            state: self.state.clone(),
            node: self.node,
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            repartition_required: self.repartition_required,
        }
    }
}

/// The serde of `A` as a serde of `B` when they are the same type: a type-changing operation
/// that happens to keep the type keeps the serde.
pub(super) fn carry<A: 'static, B: 'static>(
    serde: &Option<Arc<dyn Serde<A>>>,
) -> Option<Arc<dyn Serde<B>>> {
    let boxed: Box<dyn std::any::Any> = Box::new(serde.clone());
    boxed
        .downcast::<Option<Arc<dyn Serde<B>>>>()
        .ok()
        .and_then(|s| *s)
}

/// A branch predicate of [`KStream::branch`].
pub(super) type Predicate<K, V> = Box<dyn Fn(&K, &V) -> bool + Send + Sync>;

type SerdePair<K, V> = (Arc<dyn Serde<K>>, Arc<dyn Serde<V>>);

type Step<KIn, VIn, KOut, VOut> =
    dyn Fn(&mut ProcessorContext<KOut, VOut>, Record<KIn, VIn>) -> ProcessResult + Send + Sync;

impl<K: Clone + 'static, V: Clone + 'static> KStream<K, V> {
    pub(crate) fn source(
        state: Rc<RefCell<BuilderState>>,
        topics: &[&str],
        consumed: Consumed<K, V>,
    ) -> Self {
        let node = {
            let mut s = state.borrow_mut();
            let name = consumed
                .name
                .clone()
                .unwrap_or_else(|| s.next_name("KSTREAM-SOURCE"));
            let topics = topics
                .iter()
                .map(|t| TopicName::External(Arc::from(*t)))
                .collect();
            let result = s.topology.add_source_node(
                &name,
                topics,
                consumed.key_serde.clone(),
                consumed.value_serde.clone(),
                consumed.extractor.clone(),
            );
            match result {
                Ok(i) => Some(i),
                Err(e) => {
                    s.record_error(e);
                    None
                }
            }
        };
        KStream {
            state,
            node,
            key_serde: Some(consumed.key_serde),
            value_serde: Some(consumed.value_serde),
            repartition_required: false,
        }
    }

    pub(crate) fn derive<K2, V2>(
        &self,
        node: Option<usize>,
        key_serde: Option<Arc<dyn Serde<K2>>>,
        value_serde: Option<Arc<dyn Serde<V2>>>,
        repartition_required: bool,
    ) -> KStream<K2, V2> {
        KStream {
            state: self.state.clone(),
            node,
            key_serde,
            value_serde,
            repartition_required,
        }
    }

    /// The stream of `node`, an operation that may change keys: marked for repartitioning,
    /// and the node marked as the place merged repartition topics are written after.
    pub(crate) fn rekeyed<K2, V2>(
        &self,
        node: Option<usize>,
        key_serde: Option<Arc<dyn Serde<K2>>>,
        value_serde: Option<Arc<dyn Serde<V2>>>,
    ) -> KStream<K2, V2> {
        if let Some(i) = node {
            self.state.borrow_mut().topology.mark_key_changing(i);
        }
        self.derive(node, key_serde, value_serde, true)
    }

    /// Adds a processor node fed by this stream (and `extra_parents`) running `step`.
    pub(super) fn add_step<K2: Clone + 'static, V2: Clone + 'static>(
        &self,
        prefix: &str,
        extra_parents: &[Option<usize>],
        step: Arc<Step<K, V, K2, V2>>,
    ) -> Option<usize> {
        self.add_processor(prefix, extra_parents, Vec::new(), move || {
            let step = step.clone();
            FnProcessor(move |ctx: &mut ProcessorContext<K2, V2>, r: Record<K, V>| step(ctx, r))
        })
    }

    pub(crate) fn add_processor<K2, V2, P>(
        &self,
        prefix: &str,
        extra_parents: &[Option<usize>],
        stores: Vec<String>,
        supplier: impl Fn() -> P + Send + Sync + 'static,
    ) -> Option<usize>
    where
        K2: Clone + 'static,
        V2: Clone + 'static,
        P: Processor<K, V, K2, V2>,
    {
        let parents: Option<Vec<usize>> = std::iter::once(self.node)
            .chain(extra_parents.iter().copied())
            .collect();
        // A failed upstream step already recorded its error; nothing more to add.
        let parents = parents?;
        let mut s = self.state.borrow_mut();
        let name = s.next_name(prefix);
        match s
            .topology
            .add_processor_node(&name, parents, stores, supplier)
        {
            Ok(i) => Some(i),
            Err(e) => {
                s.record_error(e);
                None
            }
        }
    }

    /// Keeps the records for which `predicate` holds.
    pub fn filter(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Self {
        let node = self.add_step::<K, V>(
            "KSTREAM-FILTER",
            &[],
            Arc::new(move |ctx, r| {
                if predicate(&r.key, &r.value) {
                    ctx.forward(r)
                } else {
                    Ok(())
                }
            }),
        );
        self.derive(
            node,
            self.key_serde.clone(),
            self.value_serde.clone(),
            self.repartition_required,
        )
    }

    /// Drops the records for which `predicate` holds.
    pub fn filter_not(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Self {
        self.filter(move |k, v| !predicate(k, v))
    }

    /// Replaces key and value (and their types). Marks the stream for repartitioning.
    pub fn map<K2: Clone + 'static, V2: Clone + 'static>(
        &self,
        mapper: impl Fn(K, V) -> (K2, V2) + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        let node = self.add_step(
            "KSTREAM-MAP",
            &[],
            Arc::new(move |ctx, r: Record<K, V>| {
                let Record {
                    key,
                    value,
                    timestamp,
                    headers,
                } = r;
                let (key, value) = mapper(key, value);
                ctx.forward(Record {
                    key,
                    value,
                    timestamp,
                    headers,
                })
            }),
        );
        self.rekeyed(node, carry(&self.key_serde), carry(&self.value_serde))
    }

    /// Replaces the value (and its type); the key and partitioning are kept.
    pub fn map_values<V2: Clone + 'static>(
        &self,
        mapper: impl Fn(V) -> V2 + Send + Sync + 'static,
    ) -> KStream<K, V2> {
        let node = self.add_step(
            "KSTREAM-MAPVALUES",
            &[],
            Arc::new(move |ctx, r: Record<K, V>| {
                let value = mapper(r.value);
                ctx.forward(Record {
                    key: r.key,
                    value,
                    timestamp: r.timestamp,
                    headers: r.headers,
                })
            }),
        );
        self.derive(
            node,
            self.key_serde.clone(),
            carry(&self.value_serde),
            self.repartition_required,
        )
    }

    /// Replaces each record by zero or more records. Marks the stream for repartitioning.
    pub fn flat_map<K2, V2, I>(
        &self,
        mapper: impl Fn(K, V) -> I + Send + Sync + 'static,
    ) -> KStream<K2, V2>
    where
        K2: Clone + 'static,
        V2: Clone + 'static,
        I: IntoIterator<Item = (K2, V2)>,
    {
        let node = self.add_step(
            "KSTREAM-FLATMAP",
            &[],
            Arc::new(move |ctx, r: Record<K, V>| {
                for (key, value) in mapper(r.key, r.value) {
                    ctx.forward(Record {
                        key,
                        value,
                        timestamp: r.timestamp,
                        headers: r.headers.clone(),
                    })?;
                }
                Ok(())
            }),
        );
        self.rekeyed(node, carry(&self.key_serde), carry(&self.value_serde))
    }

    /// Replaces each value by zero or more values, keeping the key.
    pub fn flat_map_values<V2, I>(
        &self,
        mapper: impl Fn(V) -> I + Send + Sync + 'static,
    ) -> KStream<K, V2>
    where
        V2: Clone + 'static,
        I: IntoIterator<Item = V2>,
    {
        let node = self.add_step(
            "KSTREAM-FLATMAPVALUES",
            &[],
            Arc::new(move |ctx, r: Record<K, V>| {
                for value in mapper(r.value) {
                    ctx.forward(Record {
                        key: r.key.clone(),
                        value,
                        timestamp: r.timestamp,
                        headers: r.headers.clone(),
                    })?;
                }
                Ok(())
            }),
        );
        self.derive(
            node,
            self.key_serde.clone(),
            carry(&self.value_serde),
            self.repartition_required,
        )
    }

    /// Calls `action` on each record and passes it on unchanged.
    pub fn peek(&self, action: impl Fn(&K, &V) + Send + Sync + 'static) -> Self {
        let node = self.add_step::<K, V>(
            "KSTREAM-PEEK",
            &[],
            Arc::new(move |ctx, r| {
                action(&r.key, &r.value);
                ctx.forward(r)
            }),
        );
        self.derive(
            node,
            self.key_serde.clone(),
            self.value_serde.clone(),
            self.repartition_required,
        )
    }

    /// Calls `action` on each record; a terminal operation: nothing is forwarded.
    pub fn foreach(&self, action: impl Fn(&K, &V) + Send + Sync + 'static) {
        self.add_step::<K, V>(
            "KSTREAM-FOREACH",
            &[],
            Arc::new(move |_ctx, r| {
                action(&r.key, &r.value);
                Ok(())
            }),
        );
    }

    /// Prints each record to standard output as `[label]: key, value` (in `Debug` form), as
    /// Kafka Streams' `print(Printed.toSysOut().withLabel(label))` does; for debugging.
    pub fn print(&self, label: &str)
    where
        K: std::fmt::Debug,
        V: std::fmt::Debug,
    {
        let label = label.to_string();
        self.foreach(move |k, v| println!("[{label}]: {k:?}, {v:?}"));
    }

    /// Sets a new key computed from key and value. Marks the stream for repartitioning.
    pub fn select_key<K2: Clone + 'static>(
        &self,
        selector: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
    ) -> KStream<K2, V> {
        let node = self.add_step(
            "KSTREAM-KEY-SELECT",
            &[],
            Arc::new(move |ctx, r: Record<K, V>| {
                let key = selector(&r.key, &r.value);
                ctx.forward(r.with_key(key))
            }),
        );
        self.rekeyed(node, carry(&self.key_serde), self.value_serde.clone())
    }

    /// Splits the stream: each record goes to the first branch whose predicate holds, or
    /// nowhere. Add `|_, _| true` last for a default branch.
    pub fn branch(&self, predicates: Vec<Predicate<K, V>>) -> Vec<Self> {
        let predicates: Arc<Vec<Predicate<K, V>>> = Arc::new(predicates);
        let count = predicates.len();
        let preds = predicates.clone();
        let splitter = self.add_step::<K, V>(
            "KSTREAM-BRANCH",
            &[],
            Arc::new(
                move |ctx, r| match preds.iter().position(|p| p(&r.key, &r.value)) {
                    Some(i) => ctx.forward_to_index(i, r),
                    None => Ok(()),
                },
            ),
        );
        let parent = self.derive::<K, V>(
            splitter,
            self.key_serde.clone(),
            self.value_serde.clone(),
            self.repartition_required,
        );
        (0..count)
            .map(|_| {
                let node = parent.add_step::<K, V>(
                    "KSTREAM-BRANCHCHILD",
                    &[],
                    Arc::new(|ctx, r| ctx.forward(r)),
                );
                parent.derive(
                    node,
                    self.key_serde.clone(),
                    self.value_serde.clone(),
                    self.repartition_required,
                )
            })
            .collect()
    }

    /// One stream with the records of both. Within a task, records still come in timestamp
    /// order across the inputs.
    pub fn merge(&self, other: &KStream<K, V>) -> Self {
        let node = self.add_step::<K, V>(
            "KSTREAM-MERGE",
            &[other.node],
            Arc::new(|ctx, r| ctx.forward(r)),
        );
        let key_serde = self.key_serde.clone().or_else(|| other.key_serde.clone());
        let value_serde = self
            .value_serde
            .clone()
            .or_else(|| other.value_serde.clone());
        self.derive(
            node,
            key_serde,
            value_serde,
            self.repartition_required || other.repartition_required,
        )
    }

    /// Sets the serdes the stream's records are written with by later sinks and repartitions.
    pub fn with_serdes(&self, key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> Self {
        let mut s = self.clone();
        s.key_serde = Some(Arc::new(key_serde));
        s.value_serde = Some(Arc::new(value_serde));
        s
    }

    pub(crate) fn serdes_for(
        &self,
        what: &str,
        key: Option<Arc<dyn Serde<K>>>,
        value: Option<Arc<dyn Serde<V>>>,
    ) -> Result<SerdePair<K, V>, StreamsError> {
        let key = key.or_else(|| self.key_serde.clone());
        let value = value.or_else(|| self.value_serde.clone());
        match (key, value) {
            (Some(k), Some(v)) => Ok((k, v)),
            (k, _) => Err(StreamsError::Topology(format!(
                "{what}: the stream's {} serde is unknown after a type-changing operation; \
                 pass serdes explicitly (Produced::with / Repartitioned::with_serdes) or call \
                 with_serdes first",
                if k.is_none() { "key" } else { "value" }
            ))),
        }
    }

    /// Writes the stream to `topic`. Records keep their timestamp (as CreateTime) and headers.
    pub fn to(&self, topic: &str, produced: Produced<K, V>) {
        let Some(parent) = self.node else { return };
        let result = self
            .serdes_for(
                &format!("to({topic})"),
                produced.key_serde,
                produced.value_serde,
            )
            .and_then(|(k, v)| {
                let mut s = self.state.borrow_mut();
                let name = produced.name.unwrap_or_else(|| s.next_name("KSTREAM-SINK"));
                s.topology.add_sink_node(
                    &name,
                    TopicName::External(Arc::from(topic)),
                    k,
                    v,
                    produced.partitioner,
                    vec![parent],
                )
            });
        if let Err(e) = result {
            self.state.borrow_mut().record_error(e);
        }
    }

    /// Routes the stream through the internal topic `<app>-<name>-repartition`, so that
    /// records are partitioned by their current key. Event timestamps and headers survive.
    pub fn repartition(&self, options: Repartitioned<K, V>) -> Self {
        let failed = self.derive(
            None,
            self.key_serde.clone(),
            self.value_serde.clone(),
            false,
        );
        let Some(parent) = self.node else {
            return failed;
        };
        let (key_serde, value_serde) =
            match self.serdes_for("repartition", options.key_serde, options.value_serde) {
                Ok(serdes) => serdes,
                Err(e) => {
                    self.state.borrow_mut().record_error(e);
                    return failed;
                }
            };
        let mut s = self.state.borrow_mut();
        let base = options
            .name
            .unwrap_or_else(|| s.next_name("KSTREAM-REPARTITION"));
        let topic = TopicName::Internal(Arc::from(format!("{base}-repartition")));
        let sink_name = format!("{base}-repartition-sink");
        let source_name = format!("{base}-repartition-source");
        s.topology.add_repartition_topic(
            topic.clone(),
            RepartitionTopic {
                partitions: options.partitions,
                watermarks: options.watermarks,
                optimizable: options.optimizable,
            },
        );
        let result = s
            .topology
            .add_sink_node(
                &sink_name,
                topic.clone(),
                key_serde.clone(),
                value_serde.clone(),
                None,
                vec![parent],
            )
            .and_then(|_| {
                // Sinks write event time as CreateTime, so the internal source reads it back
                // from the metadata whatever the app's default extractor is.
                s.topology.add_source_node(
                    &source_name,
                    vec![topic],
                    key_serde.clone(),
                    value_serde.clone(),
                    Some(Arc::new(RecordTimestamp)),
                )
            });
        let node = match result {
            Ok(i) => Some(i),
            Err(e) => {
                s.record_error(e);
                None
            }
        };
        drop(s);
        self.derive(node, Some(key_serde), Some(value_serde), false)
    }

    /// This stream, repartitioned first if a key-changing operation came before: what a
    /// key-based operation calls.
    pub fn repartition_if_required(&self, name: Option<&str>) -> Self {
        if !self.repartition_required {
            return self.clone();
        }
        let options = match name {
            Some(n) => Repartitioned::implicit(n, None, None),
            None => Repartitioned {
                optimizable: true,
                ..Repartitioned::default()
            },
        };
        self.repartition(options)
    }

    pub(crate) fn state(&self) -> &Rc<RefCell<BuilderState>> {
        &self.state
    }

    pub(crate) fn key_serde(&self) -> Option<Arc<dyn Serde<K>>> {
        self.key_serde.clone()
    }

    pub(crate) fn value_serde(&self) -> Option<Arc<dyn Serde<V>>> {
        self.value_serde.clone()
    }

    /// Index of the node producing this stream; `None` after a failed step.
    pub(crate) fn node(&self) -> Option<usize> {
        self.node
    }

    /// Whether a key-changing operation happened since the last repartition.
    pub fn is_repartition_required(&self) -> bool {
        self.repartition_required
    }

    /// Name of the node producing this stream (for the Processor API and tests).
    pub fn node_name(&self) -> Option<String> {
        let s = self.state.borrow();
        self.node.map(|i| s.topology.nodes[i].name.to_string())
    }
}
