//! [`WindowedKStream`]: a grouped stream cut into windows, ready to aggregate; and the
//! time-window (tumbling and hopping) aggregation.
//!
//! ```
//! use std::time::Duration;
//! use streamtime::{StreamsBuilder, StreamsConfig, Consumed, Grouped, Materialized, Produced, TopologyTestDriver};
//! use streamtime::dsl::{EmitStrategy, TimeWindows, Windowed, WindowedSerde};
//! use streamtime::serdes::{StringSerde, I64Serde};
//!
//! let builder = StreamsBuilder::new();
//! builder.stream("clicks", Consumed::with(StringSerde, StringSerde))
//!     .group_by_key()
//!     .windowed_by(TimeWindows::of_size_and_grace(Duration::from_secs(60), Duration::from_secs(10)))
//!     .emit(EmitStrategy::OnWindowClose)
//!     .count(Materialized::as_("clicks-per-minute"))
//!     .to_stream()
//!     .to("click-counts", Produced::with(WindowedSerde::new(StringSerde), I64Serde));
//! let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("clicks", "unused")).unwrap();
//! let clicks = driver.input_topic("clicks", StringSerde, StringSerde);
//! clicks.pipe("ann".into(), "a".into(), 1_000).unwrap();
//! clicks.pipe("ann".into(), "b".into(), 59_000).unwrap();
//! clicks.pipe("bob".into(), "c".into(), 75_000).unwrap(); // the first minute closes at 70 s
//! let out = driver.output_topic("click-counts", WindowedSerde::new(StringSerde), I64Serde).read_key_values();
//! assert_eq!(out.len(), 1);
//! assert_eq!((out[0].0.key.as_str(), out[0].0.window.start, out[0].1), ("ann", 0, 2));
//! ```

use std::sync::Arc;
use std::time::Duration;

use super::cached_forwarder::CachedForwarder;
use super::emit::EmitClock;
use super::grouped::{steps, KGroupedStream, Prepared, Step};
use super::late::{LatePolicy, LateRecord, LateRecordHandler, LateSerdes};
use super::options::Materialized;
use super::table::KTable;
use super::windows::{EmitStrategy, IdleClose, TimeWindows, Window, Windowed, WindowedSerde};
use crate::error::StreamsError;
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serdes::{I64Serde, Serde, TimestampedSerde};
use crate::stores::{Stores, WindowStoreHandle};
use crate::ProcessResult;

/// A grouped stream cut into windows of kind `W` ([`TimeWindows`],
/// [`super::SlidingWindows`], [`super::SessionWindows`]): choose when results are emitted and
/// what happens to late records, then aggregate.
pub struct WindowedKStream<K, V, W> {
    pub(crate) grouped: KGroupedStream<K, V>,
    pub(crate) windows: W,
    pub(crate) emit: EmitStrategy,
    pub(crate) late: LatePolicy<K, V>,
}

/// A stream grouped into tumbling or hopping time windows.
pub type TimeWindowedKStream<K, V> = WindowedKStream<K, V, TimeWindows>;

impl<K: Clone + 'static, V: Clone + 'static, W: super::windows::WindowKind>
    WindowedKStream<K, V, W>
{
    pub(crate) fn new(grouped: KGroupedStream<K, V>, windows: W) -> Self {
        WindowedKStream {
            grouped,
            windows,
            emit: EmitStrategy::default(),
            late: LatePolicy::default(),
        }
    }

    /// When results are forwarded (default: every update).
    pub fn emit(mut self, strategy: EmitStrategy) -> Self {
        self.emit = strategy;
        self
    }

    /// Calls `hook` for each record dropped as too late (after it is counted and logged): a
    /// record no window took. A record late for some of its hopping or sliding windows but
    /// taken by others is not dropped (only `streamtime_late_window_drops_total` counts the
    /// windows it missed).
    pub fn on_late(mut self, hook: impl Fn(&LateRecord<'_, K, V>) + Send + Sync + 'static) -> Self {
        self.late.on_late = Some(Arc::new(hook));
        self
    }

    /// Writes each record dropped as too late (see [`WindowedKStream::on_late`]) to `topic`,
    /// with the stream's serdes and the record's own timestamp and headers, so it can be
    /// inspected or replayed: replaying counts nothing twice.
    pub fn late_records_to(mut self, topic: &str) -> Self {
        self.late.dead_letter_topic = Some(Arc::from(topic));
        self
    }

    /// Builds an aggregation: prepares input and serdes, checks the store's retention, adds
    /// the store and the processor made by `make`, and wraps the result as a windowed table.
    pub(crate) fn build<A, VO, P>(
        self,
        materialized: Materialized<K, A>,
        needed_retention_ms: i64,
        store: impl FnOnce(&str, Duration) -> crate::stores::StoreSpec,
        make: impl Fn(&AggregateParts<K, A>, LatePolicy<K, V>, LateSerdes<K, V>) -> P
            + Send
            + Sync
            + 'static,
        value_serde: impl FnOnce(Arc<dyn Serde<A>>) -> Arc<dyn Serde<VO>>,
    ) -> KTable<Windowed<K>, VO>
    where
        A: Clone + 'static,
        VO: Clone + 'static,
        P: Processor<K, V, Windowed<K>, VO>,
    {
        let state = self.grouped.stream().state().clone();
        let placeholder = |store: String| KTable {
            stream: self.grouped.stream().derive(None, None, None, false),
            store,
        };
        let prepared = match self
            .grouped
            .prepare("KSTREAM-AGGREGATE-STATE-STORE", &materialized)
        {
            Ok(p) => p,
            Err(store) => return placeholder(store),
        };
        let retention_ms = match materialized.retention {
            Some(r) => {
                let r = r.as_millis() as i64;
                if r < needed_retention_ms {
                    state.borrow_mut().record_error(StreamsError::Topology(format!(
                        "windowed store {}: retention {r} ms is shorter than the {needed_retention_ms} ms \
                         its windows need (size + grace, or the emit delay when longer)",
                        prepared.store_name
                    )));
                    return placeholder(prepared.store_name);
                }
                r
            }
            None => needed_retention_ms,
        };
        let late_serdes = match self.late_serdes(&prepared) {
            Ok(s) => s,
            Err(e) => {
                state.borrow_mut().record_error(e);
                return placeholder(prepared.store_name);
            }
        };
        if let Some(topic) = &self.late.dead_letter_topic {
            state
                .borrow_mut()
                .topology
                .side_output_topics
                .insert(topic.to_string());
        }
        let spec = store(
            &prepared.store_name,
            Duration::from_millis(retention_ms.max(0) as u64),
        );
        let late = self.late.clone();
        let Prepared {
            input,
            store_name,
            key_serde,
            agg_serde,
        } = prepared;
        let parts = AggregateParts {
            store_name: store_name.clone(),
            key_serde: key_serde.clone(),
            agg_serde: agg_serde.clone(),
        };
        let out_serde = value_serde(agg_serde);
        let node = self
            .grouped
            .add_aggregate(&input, materialized.configure(spec), move || {
                make(&parts, late.clone(), late_serdes.clone())
            });
        let windowed_serde: Arc<dyn Serde<Windowed<K>>> = Arc::new(WindowedSerde::new(key_serde));
        let close_after = super::windows::close_after_end_ms(&self.windows);
        state
            .borrow_mut()
            .window_close_after
            .insert(store_name.clone(), close_after);
        KTable {
            stream: input.derive(node, Some(windowed_serde), Some(out_serde), false),
            store: store_name,
        }
    }

    /// Serdes of the input records, for the dead-letter topic (only needed when one is set).
    fn late_serdes(
        &self,
        prepared: &Prepared<K, V, impl Sized>,
    ) -> Result<LateSerdes<K, V>, StreamsError> {
        if self.late.dead_letter_topic.is_none() {
            return Ok(None);
        }
        let grouped = self.grouped.grouped();
        let keys = grouped
            .key_serde
            .clone()
            .or_else(|| prepared.input.key_serde());
        let values = grouped
            .value_serde
            .clone()
            .or_else(|| prepared.input.value_serde());
        match (keys, values) {
            (Some(k), Some(v)) => Ok(Some((k, v))),
            _ => Err(StreamsError::Topology(format!(
                "aggregation into {}: late records go to a dead-letter topic but the stream's serdes \
                 are unknown; pass them in Grouped",
                prepared.store_name
            ))),
        }
    }
}

/// What a windowed aggregation processor is made from, in every task.
pub(crate) struct AggregateParts<K, A> {
    pub store_name: String,
    pub key_serde: Arc<dyn Serde<K>>,
    pub agg_serde: Arc<dyn Serde<A>>,
}

impl<K: Clone + 'static, V: Clone + 'static> TimeWindowedKStream<K, V> {
    /// Counts records per key and window.
    pub fn count(self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        let materialized =
            KGroupedStream::<K, V>::with_default_serde(materialized, Some(Arc::new(I64Serde)));
        self.fold(materialized, steps::count())
    }

    /// Combines the values of each key and window with `reducer(aggregate, value)`.
    pub fn reduce(
        self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<Windowed<K>, V> {
        let default = self.grouped.stream().value_serde();
        let materialized = KGroupedStream::<K, V>::with_default_serde(materialized, default);
        self.fold(materialized, steps::reduce(reducer))
    }

    /// Folds the values of each key and window into an aggregate starting from
    /// `initializer()`.
    pub fn aggregate<A: Clone + 'static>(
        self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> KTable<Windowed<K>, A> {
        self.fold(materialized, steps::aggregate(initializer, aggregator))
    }

    fn fold<A: Clone + 'static>(
        self,
        materialized: Materialized<K, A>,
        step: Step<K, V, A>,
    ) -> KTable<Windowed<K>, A> {
        let windows = self.windows;
        if let Err(e) = windows.validate() {
            let state = self.grouped.stream().state().clone();
            state
                .borrow_mut()
                .record_error(StreamsError::Topology(format!("time windows: {e}")));
        }
        let delay = self.emit.delay_ms(windows.grace_ms);
        let idle = self.emit.idle_close();
        let needed = windows.size_ms + EmitClock::retention_beyond_end(delay, windows.grace_ms);
        self.build(
            materialized,
            needed,
            |name, retention| Stores::window(name, retention, false).with_timestamped_values(),
            move |p, late, late_serdes| TimeWindowAggregate {
                store_name: p.store_name.clone(),
                key_serde: p.key_serde.clone(),
                agg_serde: p.agg_serde.clone(),
                windows,
                delay,
                idle,
                step: step.clone(),
                late: Some((late, late_serdes)),
                handler: None,
                store: None,
                forwarder: None,
                clock: None,
            },
            |agg| agg,
        )
    }
}

/// Time-window aggregation: folds each record into every window containing it that is not
/// closed yet, and forwards results as the [`EmitStrategy`] says.
pub(super) struct TimeWindowAggregate<K, V, A> {
    store_name: String,
    key_serde: Arc<dyn Serde<K>>,
    agg_serde: Arc<dyn Serde<A>>,
    windows: TimeWindows,
    delay: Option<i64>,
    /// Closing windows on a quiet stream (`EmitStrategy::OnWindowCloseOrIdle`).
    idle: Option<IdleClose>,
    step: Step<K, V, A>,
    late: Option<(LatePolicy<K, V>, LateSerdes<K, V>)>,
    handler: Option<LateRecordHandler<K, V>>,
    store: Option<WindowStoreHandle<K, (A, i64)>>,
    /// Emitting every update: the updates the store's cache folds between commits.
    forwarder: Option<WindowForwarder<K, A>>,
    clock: Option<EmitClock>,
}

pub(super) type WindowForwarder<K, A> =
    CachedForwarder<Windowed<K>, A, WindowStoreHandle<K, (A, i64)>>;

impl<K, V, A> TimeWindowAggregate<K, V, A>
where
    K: Clone + 'static,
    V: Clone + 'static,
    A: Clone + 'static,
{
    /// Every update of every window forwarded, late records dropped and counted (the
    /// inputs of a windowed cogroup, which has no emit strategy of its own).
    pub(super) fn on_update(
        (store_name, key_serde, agg_serde): (String, Arc<dyn Serde<K>>, Arc<dyn Serde<A>>),
        windows: TimeWindows,
        step: Step<K, V, A>,
    ) -> Self {
        TimeWindowAggregate {
            store_name,
            key_serde,
            agg_serde,
            windows,
            delay: None,
            idle: None,
            step,
            late: Some((LatePolicy::default(), None)),
            handler: None,
            store: None,
            forwarder: None,
            clock: None,
        }
    }

    /// Forwards the stored results of windows whose end is in `(from, to]`.
    fn emit_due(
        &self,
        ctx: &mut ProcessorContext<Windowed<K>, A>,
        (from, to): (i64, i64),
    ) -> ProcessResult {
        let size = self.windows.size_ms;
        let store = self.store.as_ref().expect("init ran");
        // Window starts are multiples of the advance: when no such start lies in the range,
        // no window ends in `(from, to]` and there is nothing to read. A scan by time reads
        // every window of its segments (the store orders by key, then start), so without
        // this check each record that advances stream time cost a segment scan: emit-final
        // hopping windows ran at 3x the CPU of emitting every update.
        let Some((first_start, last_start)) = aligned_starts(
            from.saturating_sub(size).saturating_add(1).max(0),
            to.saturating_sub(size),
            self.windows.advance_ms,
        ) else {
            return Ok(());
        };
        for (key, start, (agg, ts)) in store.fetch_all(first_start, last_start)? {
            ctx.forward(Record::new(
                Windowed::new(key, Window::new(start, start + size)),
                agg,
                ts,
            ))?;
        }
        Ok(())
    }
}

impl<K, V, A> Processor<K, V, Windowed<K>, A> for TimeWindowAggregate<K, V, A>
where
    K: Clone + 'static,
    V: Clone + 'static,
    A: Clone + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<Windowed<K>, A>) -> ProcessResult {
        let store = ctx.window_store(
            &self.store_name,
            self.key_serde.clone(),
            TimestampedSerde(self.agg_serde.clone()),
        )?;
        // Final results come from the store when due; only updates emitted as they happen
        // are folded by the cache on their way downstream.
        if self.delay.is_none() {
            self.forwarder = Some(CachedForwarder::windowed(
                store.clone(),
                self.windows.size_ms,
            ));
        }
        self.store = Some(store);
        let clock = EmitClock::load(ctx, self.delay, self.windows.grace_ms);
        self.clock = Some(clock.with_idle_close(ctx, self.idle));
        self.handler = (self.late.take())
            .map(|(policy, serdes)| LateRecordHandler::for_node(ctx, policy, serdes));
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<Windowed<K>, A>,
        record: Record<K, V>,
    ) -> ProcessResult {
        let clock = self.clock.as_mut().expect("init ran");
        let due = clock.observe(ctx, record.timestamp);
        if ctx.watermark().is_some() {
            // Behind a watermark the store sees windows ahead of the operator's time.
            let observed = clock.observed();
            self.store
                .as_ref()
                .expect("init ran")
                .cap_expiry(Some(observed));
        }
        if let Some(due) = due {
            self.emit_due(ctx, due)?;
        }
        let clock = self.clock.as_ref().expect("init ran");
        let store = self.store.as_ref().expect("init ran");
        let mut closed = Vec::new();
        let mut taken = false;
        for window in self.windows.windows_for(record.timestamp) {
            if clock.is_closed(window.end) {
                closed.push(window);
                continue;
            }
            taken = true;
            let (old, old_ts) = match store.get(&record.key, window.start)? {
                Some((agg, ts)) => (Some(agg), ts),
                None => (None, i64::MIN),
            };
            let timestamp = record.timestamp.max(old_ts);
            let new = (self.step)(&record.key, record.value.clone(), old);
            store.put(&record.key, window.start, &(new.clone(), timestamp))?;
            if clock.is_due(window.end) {
                let update = Record {
                    key: Windowed::new(record.key.clone(), window),
                    value: new,
                    timestamp,
                    headers: record.headers.clone(),
                };
                match &self.forwarder {
                    Some(forwarder) => forwarder.written(ctx, update, |a| a)?,
                    None => ctx.forward(update)?,
                }
            }
        }
        // Dropped only when no window took it; a record late for some of its hopping
        // windows only counts the windows it missed.
        let handler = self.handler.as_mut().expect("init ran");
        match (taken, closed.is_empty()) {
            (false, false) => handler.drop_late(ctx, &record, &closed, clock.observed())?,
            (true, false) => handler.missed_windows(closed.len()),
            (_, true) => {}
        }
        Ok(())
    }

    /// The one punctuator is the idle check of `EmitStrategy::OnWindowCloseOrIdle`.
    fn punctuate(
        &mut self,
        ctx: &mut ProcessorContext<Windowed<K>, A>,
        punctuation: crate::processor::Punctuation,
    ) -> ProcessResult {
        let clock = self.clock.as_mut().expect("init ran");
        match clock.idle_advance(ctx, punctuation.timestamp) {
            Some(due) => self.emit_due(ctx, due),
            None => Ok(()),
        }
    }

    fn before_commit(&mut self, ctx: &mut ProcessorContext<Windowed<K>, A>) -> ProcessResult {
        match &self.forwarder {
            Some(forwarder) => forwarder.before_commit(ctx, |a| a),
            None => Ok(()),
        }
    }
}

/// The first and last multiples of `advance` in `[from, to]`, if any.
fn aligned_starts(from: i64, to: i64, advance: i64) -> Option<(i64, i64)> {
    if to < from || advance <= 0 {
        return None;
    }
    let first = from.div_euclid(advance) * advance
        + if from.rem_euclid(advance) == 0 {
            0
        } else {
            advance
        };
    let last = to.div_euclid(advance) * advance;
    (first <= last).then_some((first, last))
}

#[cfg(test)]
mod tests {
    use super::aligned_starts;

    #[test]
    fn aligned_starts_are_the_multiples_of_the_advance_in_the_range() {
        assert_eq!(aligned_starts(0, 0, 5), Some((0, 0)));
        assert_eq!(aligned_starts(1, 4, 5), None);
        assert_eq!(aligned_starts(1, 5, 5), Some((5, 5)));
        assert_eq!(aligned_starts(3, 17, 5), Some((5, 15)));
        assert_eq!(aligned_starts(10, 9, 5), None);
        assert_eq!(aligned_starts(-7, -1, 5), Some((-5, -5)));
    }
}
