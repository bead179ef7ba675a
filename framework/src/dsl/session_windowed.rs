//! Session-window aggregation: a key's records closer than the inactivity gap form one
//! session; a record that bridges sessions merges them, and the merged-away sessions are
//! retracted with tombstones (`None`).
//!
//! ```
//! use std::time::Duration;
//! use streamtime::{StreamsBuilder, StreamsConfig, Consumed, Grouped, Materialized, Produced, TopologyTestDriver};
//! use streamtime::dsl::{SessionWindows, Window, WindowedSerde};
//! use streamtime::serdes::{I64Serde, OptionSerde, StringSerde};
//!
//! let builder = StreamsBuilder::new();
//! builder.stream("clicks", Consumed::with(StringSerde, StringSerde))
//!     .group_by_key()
//!     .windowed_by(SessionWindows::of_inactivity_gap_and_grace(Duration::from_secs(30), Duration::from_secs(60)))
//!     .count(Materialized::as_("sessions"))
//!     .to_stream()
//!     .to("session-counts", Produced::with(WindowedSerde::new(StringSerde), OptionSerde(I64Serde)));
//! let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("s", "unused")).unwrap();
//! let clicks = driver.input_topic("clicks", StringSerde, StringSerde);
//! clicks.pipe("ann".into(), "home".into(), 0).unwrap();
//! clicks.pipe("ann".into(), "cart".into(), 60_000).unwrap(); // a new session
//! clicks.pipe("ann".into(), "pay".into(), 30_000).unwrap();  // within grace, bridges both
//! let out: Vec<_> = driver.output_topic("session-counts", WindowedSerde::new(StringSerde), OptionSerde(I64Serde))
//!     .read_key_values().into_iter().map(|(k, v)| (k.window, v)).collect();
//! assert_eq!(out, vec![
//!     (Window::new(0, 0), Some(1)),
//!     (Window::new(60_000, 60_000), Some(1)),
//!     (Window::new(0, 0), None),            // merged away
//!     (Window::new(60_000, 60_000), None),  // merged away
//!     (Window::new(0, 60_000), Some(3)),
//! ]);
//! ```

use std::sync::Arc;

use super::cached_forwarder::CachedForwarder;
use super::emit::EmitClock;
use super::grouped::KGroupedStream;
use super::late::LateSerdes;
use super::late::{LatePolicy, LateRecordHandler};
use super::options::Materialized;
use super::pending_windows::PendingWindows;
use super::table::KTable;
use super::windowed::WindowedKStream;
use super::windows::{IdleClose, SessionWindows, Window, Windowed};
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serdes::{I64Serde, OptionSerde, Serde};
use crate::stores::{SessionStoreHandle, Stores};
use crate::ProcessResult;

/// A stream grouped into session windows.
pub type SessionWindowedKStream<K, V> = WindowedKStream<K, V, SessionWindows>;

type Initializer<A> = Arc<dyn Fn() -> A + Send + Sync>;
type Aggregator<K, V, A> = Arc<dyn Fn(&K, V, A) -> A + Send + Sync>;
type Merger<K, A> = Arc<dyn Fn(&K, A, A) -> A + Send + Sync>;
/// The aggregator with the initial value already folded in (`None` for a reduce).
type Fold<K, V, A> = Arc<dyn Fn(&K, V, Option<A>) -> A + Send + Sync>;

impl<K: Clone + 'static, V: Clone + 'static> SessionWindowedKStream<K, V> {
    /// Counts records per key and session.
    pub fn count(self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, Option<i64>> {
        let materialized =
            KGroupedStream::<K, V>::with_default_serde(materialized, Some(Arc::new(I64Serde)));
        self.aggregate(|| 0, |_k, _v, n| n + 1, |_k, a, b| a + b, materialized)
    }

    /// Combines the values of each key and session with `reducer(aggregate, value)`; merging
    /// sessions combines their aggregates with the same function.
    pub fn reduce(
        self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<Windowed<K>, Option<V>> {
        let default = self.grouped.stream().value_serde();
        let materialized = KGroupedStream::<K, V>::with_default_serde(materialized, default);
        let reducer = Arc::new(reducer);
        let merge = reducer.clone();
        // A reduce has no initial value: the first value of a session starts it.
        self.fold(
            materialized,
            None,
            Arc::new(move |_k: &K, v: V, agg: Option<V>| match agg {
                Some(agg) => reducer(agg, v),
                None => v,
            }),
            Arc::new(move |_k: &K, a: V, b: V| merge(a, b)),
        )
    }

    /// Folds the values of each key and session into an aggregate starting from
    /// `initializer()`; when sessions merge, `merger(key, aggregate, aggregate)` combines
    /// theirs.
    pub fn aggregate<A: Clone + 'static>(
        self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        merger: impl Fn(&K, A, A) -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> KTable<Windowed<K>, Option<A>> {
        let initializer: Initializer<A> = Arc::new(initializer);
        let aggregator: Aggregator<K, V, A> = Arc::new(aggregator);
        let init = initializer.clone();
        self.fold(
            materialized,
            Some(initializer),
            Arc::new(move |k: &K, v: V, agg: Option<A>| {
                aggregator(k, v, agg.unwrap_or_else(|| init()))
            }),
            Arc::new(merger),
        )
    }

    fn fold<A: Clone + 'static>(
        self,
        materialized: Materialized<K, A>,
        initializer: Option<Initializer<A>>,
        aggregator: Fold<K, V, A>,
        merger: Merger<K, A>,
    ) -> KTable<Windowed<K>, Option<A>> {
        let windows = self.windows;
        if windows.gap_ms <= 0 || windows.grace_ms < 0 {
            self.grouped.stream().state().borrow_mut().record_error(
                crate::StreamsError::Topology(format!(
                    "session windows need a positive gap and a grace of at least 0, got gap {} ms, grace {} ms",
                    windows.gap_ms, windows.grace_ms
                )),
            );
        }
        let delay = self.emit.delay_ms(windows.grace_ms);
        let idle = self.emit.idle_close();
        // A session stays open until stream time passes end + gap + grace (Kafka Streams),
        // and is kept until its result has been emitted.
        let needed = windows.gap_ms + EmitClock::retention_beyond_end(delay, windows.grace_ms) + 1;
        self.build(
            materialized,
            needed,
            |name, retention| Stores::session(name, retention),
            move |p, late, late_serdes| SessionWindowAggregate {
                store_name: p.store_name.clone(),
                key_serde: p.key_serde.clone(),
                agg_serde: p.agg_serde.clone(),
                windows,
                delay,
                idle,
                initializer: initializer.clone(),
                aggregator: aggregator.clone(),
                merger: merger.clone(),
                late: Some((late, late_serdes)),
                handler: None,
                store: None,
                forwarder: None,
                pending: None,
                clock: None,
            },
            |agg| -> Arc<dyn Serde<Option<A>>> { Arc::new(OptionSerde(agg)) },
        )
    }
}

pub(super) struct SessionWindowAggregate<K, V, A> {
    store_name: String,
    key_serde: Arc<dyn Serde<K>>,
    agg_serde: Arc<dyn Serde<A>>,
    windows: SessionWindows,
    delay: Option<i64>,
    /// Closing windows on a quiet stream (`EmitStrategy::OnWindowCloseOrIdle`).
    idle: Option<IdleClose>,
    initializer: Option<Initializer<A>>,
    aggregator: Fold<K, V, A>,
    merger: Merger<K, A>,
    late: Option<(LatePolicy<K, V>, LateSerdes<K, V>)>,
    handler: Option<LateRecordHandler<K, V>>,
    store: Option<SessionStoreHandle<K, A>>,
    /// Emitting every update: the updates the store's cache folds between commits.
    forwarder: Option<CachedForwarder<Windowed<K>, A, SessionStoreHandle<K, A>>>,
    /// Emitting final results: the sessions not yet emitted, by close point.
    pending: Option<PendingWindows<K>>,
    clock: Option<EmitClock>,
}

impl<K, V, A> SessionWindowAggregate<K, V, A>
where
    K: Clone + 'static,
    V: Clone + 'static,
    A: Clone + 'static,
{
    /// Every update and retraction forwarded (through the cache when the store has one),
    /// late records dropped and counted (the inputs of a session-windowed cogroup): a record
    /// starts from `initializer()`, merged with the sessions it joins, then folded in by
    /// `step`.
    pub(super) fn on_update(
        (store_name, key_serde, agg_serde): (String, Arc<dyn Serde<K>>, Arc<dyn Serde<A>>),
        windows: SessionWindows,
        initializer: Initializer<A>,
        step: Fold<K, V, A>,
        merger: Merger<K, A>,
    ) -> Self {
        SessionWindowAggregate {
            store_name,
            key_serde,
            agg_serde,
            windows,
            delay: None,
            idle: None,
            initializer: Some(initializer),
            aggregator: step,
            merger,
            late: Some((LatePolicy::default(), None)),
            handler: None,
            store: None,
            forwarder: None,
            pending: None,
            clock: None,
        }
    }

    /// A session's close point: no record can join it once stream time − grace reaches it.
    fn close_point(&self, end: i64) -> i64 {
        end.saturating_add(self.windows.gap_ms).saturating_add(1)
    }

    /// Forwards a session's update or retraction: through the cache when there is one.
    fn forward(
        &self,
        ctx: &mut ProcessorContext<Windowed<K>, Option<A>>,
        record: Record<Windowed<K>, Option<A>>,
    ) -> ProcessResult {
        match &self.forwarder {
            Some(forwarder) => forwarder.written(ctx, record, Some),
            None => ctx.forward(record),
        }
    }

    /// Forwards the stored results of sessions whose close point is in `(from, to]`: those
    /// the index holds up to `to` (it holds only sessions not yet due), by end, then key.
    fn emit_due(
        &mut self,
        ctx: &mut ProcessorContext<Windowed<K>, Option<A>>,
        (_from, to): (i64, i64),
    ) -> ProcessResult {
        let Some(pending) = &mut self.pending else {
            return Ok(());
        };
        let store = self.store.as_ref().expect("init ran");
        for (key, window) in pending.take_due(to) {
            // Expired sessions (the store's retention covers the emit delay) read as none.
            if let Some(value) = store.fetch_session(&key, window.start, window.end)? {
                ctx.forward(Record::new(
                    Windowed::new(key, window),
                    Some(value),
                    window.end,
                ))?;
            }
        }
        Ok(())
    }
}

impl<K, V, A> Processor<K, V, Windowed<K>, Option<A>> for SessionWindowAggregate<K, V, A>
where
    K: Clone + 'static,
    V: Clone + 'static,
    A: Clone + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<Windowed<K>, Option<A>>) -> ProcessResult {
        let store = ctx.session_store(
            &self.store_name,
            self.key_serde.clone(),
            self.agg_serde.clone(),
        )?;
        // Final results come from the store when due; only updates emitted as they happen
        // are folded by the cache on their way downstream.
        if self.delay.is_none() {
            self.forwarder = Some(CachedForwarder::sessions(store.clone()));
        }
        let clock = EmitClock::load(ctx, self.delay, self.windows.grace_ms);
        if self.delay.is_some() {
            // The sessions a restored store holds that are not yet emitted: close point
            // `end + gap + 1` after the emitted horizon. One scan, at start-up.
            let mut pending = PendingWindows::new(self.key_serde.clone());
            let from = clock
                .emitted_to()
                .saturating_sub(self.windows.gap_ms)
                .max(0);
            for (key, s) in store.fetch_ending_between(from, i64::MAX)? {
                pending.insert(self.close_point(s.end), &key, Window::new(s.start, s.end))?;
            }
            tracing::debug!(node = %ctx.node_name(), sessions = pending.len(),
                "sessions pending emission");
            self.pending = Some(pending);
        }
        self.store = Some(store);
        self.clock = Some(clock.with_idle_close(ctx, self.idle));
        self.handler = (self.late.take())
            .map(|(policy, serdes)| LateRecordHandler::for_node(ctx, policy, serdes));
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<Windowed<K>, Option<A>>,
        record: Record<K, V>,
    ) -> ProcessResult {
        let ts = record.timestamp;
        let gap = self.windows.gap_ms;
        let clock = self.clock.as_mut().expect("init ran");
        let due = clock.observe(ctx, ts);
        if ctx.watermark().is_some() {
            // Behind a watermark the store sees sessions ahead of the operator's time.
            let observed = clock.observed();
            self.store
                .as_ref()
                .expect("init ran")
                .cap_expiry(Some(observed));
        }
        if let Some(due) = due {
            self.emit_due(ctx, due)?;
        }
        let store = self.store.as_ref().expect("init ran");
        let overlapping = store.find_sessions(&record.key, ts - gap, ts.saturating_add(gap))?;
        let merged = overlapping.iter().fold(Window::new(ts, ts), |w, s| {
            Window::new(w.start.min(s.start), w.end.max(s.end))
        });
        let clock = self.clock.as_ref().expect("init ran");
        if clock.is_closed(self.close_point(merged.end)) {
            let observed = clock.observed();
            let handler = self.handler.as_mut().expect("init ran");
            return handler.drop_late(ctx, &record, &[merged], observed);
        }
        let mut agg: Option<A> = self.initializer.as_ref().map(|init| init());
        for s in &overlapping {
            agg = Some(match agg {
                Some(a) => (self.merger)(&record.key, a, s.value.clone()),
                None => s.value.clone(),
            });
            if (s.start, s.end) != (merged.start, merged.end) {
                store.remove(&record.key, s.start, s.end)?;
                let close_point = self.close_point(s.end);
                if let Some(pending) = &mut self.pending {
                    pending.remove(close_point, &record.key, Window::new(s.start, s.end))?;
                }
                if clock.is_due(self.close_point(s.end)) {
                    let retraction = Record {
                        key: Windowed::new(record.key.clone(), Window::new(s.start, s.end)),
                        value: None,
                        timestamp: s.end,
                        headers: record.headers.clone(),
                    };
                    self.forward(ctx, retraction)?;
                }
            }
        }
        let agg = (self.aggregator)(&record.key, record.value, agg);
        store.put(&record.key, merged.start, merged.end, &agg)?;
        let close_point = self.close_point(merged.end);
        if let Some(pending) = self.pending.as_mut().filter(|_| !clock.is_due(close_point)) {
            pending.insert(close_point, &record.key, merged)?;
        }
        if clock.is_due(self.close_point(merged.end)) {
            let update = Record {
                key: Windowed::new(record.key, merged),
                value: Some(agg),
                timestamp: merged.end,
                headers: record.headers,
            };
            self.forward(ctx, update)?;
        }
        Ok(())
    }

    /// The one punctuator is the idle check of `EmitStrategy::OnWindowCloseOrIdle`.
    fn punctuate(
        &mut self,
        ctx: &mut ProcessorContext<Windowed<K>, Option<A>>,
        punctuation: crate::processor::Punctuation,
    ) -> ProcessResult {
        let clock = self.clock.as_mut().expect("init ran");
        match clock.idle_advance(ctx, punctuation.timestamp) {
            Some(due) => self.emit_due(ctx, due),
            None => Ok(()),
        }
    }

    fn before_commit(
        &mut self,
        ctx: &mut ProcessorContext<Windowed<K>, Option<A>>,
    ) -> ProcessResult {
        match &self.forwarder {
            Some(forwarder) => forwarder.before_commit(ctx, Some),
            None => Ok(()),
        }
    }
}
