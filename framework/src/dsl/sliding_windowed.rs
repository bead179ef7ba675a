//! Sliding-window aggregation, with Kafka Streams' semantics
//! (`KStreamSlidingWindowAggregate`).
//!
//! A sliding window `[start, end]` includes both ends and spans the time difference `d`
//! (`end − start = d`). Only windows that hold a distinct set of records exist:
//!
//! * every record at `t` has its *left window* `[t − d, t]`, ending at the record (a record
//!   earlier than `d` has the window `[0, d]` instead, as windows never start before 0);
//! * every record at `t` has its *right window* `[t + 1, t + 1 + d]` as soon as a record
//!   falls into it;
//! * a record also updates every existing window that contains it.
//!
//! New windows are built from the stored ones, never by replaying records: a left window
//! starts from the aggregate of the window that ended just before it (when its records are
//! all within `d`), a right window takes the aggregate of the latest window containing the
//! record (which then holds only later records). A window's result carries the largest
//! timestamp of its records.
//!
//! ```
//! use std::time::Duration;
//! use streamtime::{StreamsBuilder, StreamsConfig, Consumed, Grouped, Materialized, Produced, TopologyTestDriver};
//! use streamtime::dsl::{SlidingWindows, Window, WindowedSerde};
//! use streamtime::serdes::{I64Serde, StringSerde};
//!
//! let builder = StreamsBuilder::new();
//! builder.stream("clicks", Consumed::with(StringSerde, StringSerde))
//!     .group_by_key()
//!     .windowed_by(SlidingWindows::of_time_difference_with_no_grace(Duration::from_millis(10)))
//!     .count(Materialized::as_("clicks-within-10ms"))
//!     .to_stream()
//!     .to("counts", Produced::with(WindowedSerde::new(StringSerde), I64Serde));
//! let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("s", "unused")).unwrap();
//! let clicks = driver.input_topic("clicks", StringSerde, StringSerde);
//! clicks.pipe("ann".into(), "a".into(), 20).unwrap();
//! clicks.pipe("ann".into(), "b".into(), 25).unwrap();
//! let out: Vec<(Window, i64)> = driver.output_topic("counts", WindowedSerde::new(StringSerde), I64Serde)
//!     .read_key_values().into_iter().map(|(k, n)| (k.window, n)).collect();
//! assert_eq!(out, vec![
//!     (Window::new(10, 20), 1), // left window of 20
//!     (Window::new(21, 31), 1), // right window of 20: 25 fell into it
//!     (Window::new(15, 25), 2), // left window of 25
//! ]);
//! ```

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;

use super::cached_forwarder::CachedForwarder;
use super::emit::EmitClock;
use super::grouped::{steps, KGroupedStream, Step};
use super::late::LateSerdes;
use super::late::{LatePolicy, LateRecordHandler};
use super::options::Materialized;
use super::pending_windows::PendingWindows;
use super::table::KTable;
use super::windowed::{WindowForwarder, WindowedKStream};
use super::windows::{IdleClose, SlidingWindows, Window, Windowed};
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serdes::TimestampedSerde;
use crate::serdes::{I64Serde, Serde};
use crate::stores::{Stores, WindowStoreHandle};
use crate::ProcessResult;

/// A stream grouped into sliding windows `[start, end]` (both ends included) spanning the
/// time difference. Only windows holding a distinct set of records exist: each record's
/// left window `[t − d, t]`, its right window `[t + 1, t + 1 + d]` once a record falls in
/// it, and the existing windows that contain it (Kafka Streams' semantics).
pub type SlidingWindowedKStream<K, V> = WindowedKStream<K, V, SlidingWindows>;

impl<K: Clone + 'static, V: Clone + 'static> SlidingWindowedKStream<K, V> {
    /// Counts records per key and sliding window.
    pub fn count(self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        let materialized =
            KGroupedStream::<K, V>::with_default_serde(materialized, Some(Arc::new(I64Serde)));
        self.fold(materialized, steps::count())
    }

    /// Combines the values of each key and sliding window with `reducer(aggregate, value)`;
    /// a new window's first value starts it.
    pub fn reduce(
        self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<Windowed<K>, V> {
        let default = self.grouped.stream().value_serde();
        let materialized = KGroupedStream::<K, V>::with_default_serde(materialized, default);
        self.fold(materialized, steps::reduce(reducer))
    }

    /// Folds the values of each key and sliding window into an aggregate starting from
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
        let delay = self.emit.delay_ms(windows.grace_ms);
        let idle = self.emit.idle_close();
        let needed = needed_retention_ms(windows, delay);
        self.build(
            materialized,
            needed,
            |name, retention| Stores::window(name, retention, false).with_timestamped_values(),
            move |p, late, late_serdes| SlidingWindowAggregate {
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
                pending: None,
                clock: None,
            },
            |agg| agg,
        )
    }
}

/// The retention the window store needs, given that it keeps a window while its start is
/// more than `retention − 1` after the largest start written, which is at most the observed
/// stream time (a right window `[t + 1, …]` is only written once a later record exists).
///
/// * Until its result is emitted or it closes, a window must be readable: its close point
///   `start + d + 1` is then above `observed − max(grace, delay)`, so `d + max(grace, delay)
///   + 1` keeps it.
/// * Building windows for a record at `t` reads the window that ended just before `t`'s left
///   window: for a record that is not dropped and whose windows are open, that window can
///   start as early as `observed − grace − 2d − 1` (Kafka Streams asks for `2d + grace` with a
///   store that counts retention one millisecond differently).
pub(super) fn needed_retention_ms(windows: SlidingWindows, delay: Option<i64>) -> i64 {
    let d = windows.time_difference_ms;
    let grace = windows.grace_ms;
    let emission = d
        .saturating_add(EmitClock::retention_beyond_end(delay, grace))
        .saturating_add(1);
    let algorithm = d.saturating_mul(2).saturating_add(grace).saturating_add(2);
    emission.max(algorithm)
}

/// Sliding-window aggregation: creates and updates windows per record as Kafka Streams does,
/// and forwards results as the [`super::EmitStrategy`] says.
pub(super) struct SlidingWindowAggregate<K, V, A> {
    store_name: String,
    key_serde: Arc<dyn Serde<K>>,
    agg_serde: Arc<dyn Serde<A>>,
    windows: SlidingWindows,
    delay: Option<i64>,
    /// Closing windows on a quiet stream (`EmitStrategy::OnWindowCloseOrIdle`).
    idle: Option<IdleClose>,
    step: Step<K, V, A>,
    late: Option<(LatePolicy<K, V>, LateSerdes<K, V>)>,
    handler: Option<LateRecordHandler<K, V>>,
    /// Per key and window start: the aggregate and the largest timestamp of its records.
    store: Option<WindowStoreHandle<K, (A, i64)>>,
    /// Emitting every update: the updates the store's cache folds between commits.
    forwarder: Option<WindowForwarder<K, A>>,
    /// Emitting final results: the windows not yet emitted, by close point.
    pending: Option<RefCell<PendingWindows<K>>>,
    clock: Option<EmitClock>,
}

/// What became of one record's windows: the closed ones it missed, and whether any open one
/// took it.
#[derive(Default)]
struct Reach {
    closed: Vec<Window>,
    taken: bool,
}

/// A stored window: its start, aggregate and largest record timestamp.
type Stored<A> = (i64, (A, i64));

impl<K, V, A> SlidingWindowAggregate<K, V, A>
where
    K: Clone + 'static,
    V: Clone + 'static,
    A: Clone + 'static,
{
    /// Every update of every window forwarded, late records dropped and counted (the
    /// inputs of a sliding-windowed cogroup, which has no emit strategy of its own).
    pub(super) fn on_update(
        (store_name, key_serde, agg_serde): (String, Arc<dyn Serde<K>>, Arc<dyn Serde<A>>),
        windows: SlidingWindows,
        step: Step<K, V, A>,
    ) -> Self {
        SlidingWindowAggregate {
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
            pending: None,
            clock: None,
        }
    }

    fn d(&self) -> i64 {
        self.windows.time_difference_ms
    }

    fn window(&self, start: i64) -> Window {
        Window::new(start, start.saturating_add(self.d()))
    }

    /// The close point of a window (see [`EmitClock`]): its end is inclusive, so it stops
    /// accepting records once `observed − grace` passes the end, i.e. reaches `end + 1`
    /// (Kafka Streams: a window is open while `end >= observed − grace`).
    fn close_point(window: Window) -> i64 {
        window.end.saturating_add(1)
    }

    fn store(&self) -> &WindowStoreHandle<K, (A, i64)> {
        self.store.as_ref().expect("init ran")
    }

    fn clock(&self) -> &EmitClock {
        self.clock.as_ref().expect("init ran")
    }

    /// Forwards the stored results of windows whose close point is in `(from, to]`: those
    /// the index holds up to `to` (it holds only windows not yet due), by start, then key.
    fn emit_due(
        &self,
        ctx: &mut ProcessorContext<Windowed<K>, A>,
        (_from, to): (i64, i64),
    ) -> ProcessResult {
        let Some(pending) = &self.pending else {
            return Ok(());
        };
        let due = pending.borrow_mut().take_due(to);
        for (key, window) in due {
            // Expired windows (the store's retention covers the emit delay) read as none.
            if let Some((agg, ts)) = self.store().get(&key, window.start)? {
                ctx.forward(Record::new(Windowed::new(key, window), agg, ts))?;
            }
        }
        Ok(())
    }

    /// Notes a window just created, to be emitted when it closes (emitting final results).
    fn note_created(&self, key: &K, window: Window) -> ProcessResult {
        let close_point = Self::close_point(window);
        match &self.pending {
            Some(pending) if !self.clock().is_due(close_point) => {
                pending.borrow_mut().insert(close_point, key, window)
            }
            _ => Ok(()),
        }
    }

    fn forward_if_due(
        &self,
        ctx: &mut ProcessorContext<Windowed<K>, A>,
        record: &Record<K, V>,
        window: Window,
        value: A,
        timestamp: i64,
    ) -> ProcessResult {
        if self.clock().is_due(Self::close_point(window)) {
            let update = Record {
                key: Windowed::new(record.key.clone(), window),
                value,
                timestamp,
                headers: record.headers.clone(),
            };
            match &self.forwarder {
                Some(forwarder) => forwarder.written(ctx, update, |a| a)?,
                None => ctx.forward(update)?,
            }
        }
        Ok(())
    }

    /// Adds `record` to `window`, whose aggregate so far is `old` (`None`: a new window
    /// holding only this record), unless the window is closed: then it is noted in `reach`
    /// as a window the record missed.
    fn update(
        &self,
        ctx: &mut ProcessorContext<Windowed<K>, A>,
        record: &Record<K, V>,
        window: Window,
        old: Option<(A, i64)>,
        reach: &mut Reach,
    ) -> ProcessResult {
        if self.clock().is_closed(Self::close_point(window)) {
            reach.closed.push(window);
            return Ok(());
        }
        reach.taken = true;
        let (old, timestamp) = match old {
            Some((agg, ts)) => (Some(agg), ts.max(record.timestamp)),
            None => {
                self.note_created(&record.key, window)?;
                (None, record.timestamp)
            }
        };
        let new = (self.step)(&record.key, record.value.clone(), old);
        self.store()
            .put(&record.key, window.start, &(new.clone(), timestamp))?;
        self.forward_if_due(ctx, record, window, new, timestamp)
    }

    /// Creates the right window `[t + 1, t + 1 + d]` of `record` with `agg`, the aggregate of
    /// the records after it. It is never closed: the record was not dropped, so
    /// `t + d >= observed − grace`.
    fn create_right_window(
        &self,
        ctx: &mut ProcessorContext<Windowed<K>, A>,
        record: &Record<K, V>,
        (agg, ts): (A, i64),
    ) -> ProcessResult {
        let window = self.window(record.timestamp + 1);
        self.note_created(&record.key, window)?;
        self.store()
            .put(&record.key, window.start, &(agg.clone(), ts))?;
        self.forward_if_due(ctx, record, window, agg, ts)
    }

    /// A record at `t >= d`. Reads the key's windows starting in `[t − 2d, t + 1]`, latest
    /// first (Kafka Streams' reverse scan): windows containing `t` are updated, the first one
    /// seen (latest start) also gives the aggregate of `t`'s right window; the first window
    /// ending before `t` gives the previous record and the aggregate `t`'s left window starts
    /// from.
    fn process_regular(
        &self,
        ctx: &mut ProcessorContext<Windowed<K>, A>,
        record: &Record<K, V>,
        reach: &mut Reach,
    ) -> ProcessResult {
        let ts = record.timestamp;
        let d = self.d();
        let found: Vec<Stored<A>> = self.store().fetch(
            &record.key,
            ts.saturating_sub(d.saturating_mul(2)).max(0),
            ts + 1,
        )?;
        let starts: HashSet<i64> = found.iter().map(|(start, _)| *start).collect();
        let mut left_agg = None;
        let mut right_agg: Option<(A, i64)> = None;
        let mut left_exists = false;
        let mut right_exists = false;
        let mut previous = None;
        for (start, (agg, max_ts)) in found.into_iter().rev() {
            let window = self.window(start);
            if start == ts + 1 {
                right_exists = true;
            } else if window.end > ts {
                if right_agg.is_none() {
                    right_agg = Some((agg.clone(), max_ts));
                }
                self.update(ctx, record, window, Some((agg, max_ts)), reach)?;
            } else if window.end == ts {
                left_exists = true;
                self.update(ctx, record, window, Some((agg, max_ts)), reach)?;
                if max_ts >= ts {
                    // An earlier record at `t` already created every window `t` needs.
                    return Ok(());
                }
                previous = Some(max_ts);
            } else {
                left_agg = Some(agg);
                previous = Some(max_ts);
                break;
            }
        }
        if let Some(p) = previous {
            // The previous record's right window, unless it exists or `t` is not in it. When
            // it is `t`'s left window (`p + 1 == t − d`), creating the left window below
            // gives the same window, so it is created once (Kafka Streams forwards it twice).
            let start = p + 1;
            if !starts.contains(&start) && start + d >= ts && start != ts - d {
                self.update(ctx, record, self.window(start), None, reach)?;
            }
        }
        if !left_exists {
            // The window before holds exactly the left window's earlier records when the
            // previous record is within `d`; else the left window holds `t` alone.
            let old = match (previous, left_agg) {
                (Some(p), Some(agg)) if p >= ts - d => Some((agg, ts)),
                _ => None,
            };
            let window = Window::new(ts - d, ts);
            if old.is_some() && !self.clock().is_closed(Self::close_point(window)) {
                // A new window starting from the aggregate of the one before.
                self.note_created(&record.key, window)?;
            }
            self.update(ctx, record, window, old, reach)?;
        }
        if !right_exists {
            if let Some((agg, max_ts)) = right_agg.filter(|(_, max_ts)| *max_ts > ts) {
                self.create_right_window(ctx, record, (agg, max_ts))?;
            }
        }
        Ok(())
    }

    /// A record at `0 <= t < d`: its left window would start before 0, so all such records
    /// share the window `[0, d]`; their right windows are created as for later records.
    fn process_early(
        &self,
        ctx: &mut ProcessorContext<Windowed<K>, A>,
        record: &Record<K, V>,
        reach: &mut Reach,
    ) -> ProcessResult {
        let ts = record.timestamp;
        let found: Vec<Stored<A>> = self.store().fetch(&record.key, 0, ts + 1)?;
        let starts: HashSet<i64> = found.iter().map(|(start, _)| *start).collect();
        let mut combined: Option<(A, i64)> = None;
        let mut right_agg: Option<(A, i64)> = None;
        let mut right_exists = false;
        let mut previous = None;
        for (start, (agg, max_ts)) in found {
            if start == 0 {
                // Records after `t` in it are all in `t`'s right window; records before it
                // make `previous` (the latest), whose right window `t` falls into.
                if max_ts < ts {
                    previous = Some(max_ts);
                }
                combined = Some((agg, max_ts));
            } else if start <= ts {
                right_agg = Some((agg.clone(), max_ts));
                self.update(ctx, record, self.window(start), Some((agg, max_ts)), reach)?;
            } else {
                right_exists = true;
            }
        }
        // Without a right window of an earlier record containing `t`, no record precedes
        // `t` that is not also in `[0, d]`, so the records after `t` in `[0, d]` are exactly
        // those of `t`'s right window.
        if right_agg.is_none() {
            right_agg = combined.clone();
        }
        if !right_exists {
            if let Some((agg, max_ts)) = right_agg.filter(|(_, max_ts)| *max_ts > ts) {
                self.create_right_window(ctx, record, (agg, max_ts))?;
            }
        }
        if let Some(p) = previous {
            if !starts.contains(&(p + 1)) {
                self.update(ctx, record, self.window(p + 1), None, reach)?;
            }
        }
        self.update(ctx, record, self.window(0), combined, reach)
    }
}

impl<K, V, A> Processor<K, V, Windowed<K>, A> for SlidingWindowAggregate<K, V, A>
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
        let clock = EmitClock::load(ctx, self.delay, self.windows.grace_ms);
        if self.delay.is_none() {
            // As for time windows: only updates emitted as they happen are folded by the
            // cache.
            let d = self.windows.time_difference_ms;
            self.forwarder = Some(CachedForwarder::windowed(store.clone(), d));
        } else {
            // The windows a restored store holds that are not yet emitted: close point
            // `start + d + 1` after the emitted horizon. One scan, at start-up.
            let mut pending = PendingWindows::new(self.key_serde.clone());
            let from = clock.emitted_to().saturating_sub(self.d()).max(0);
            for (key, start, _) in store.fetch_all(from, i64::MAX)? {
                let window = self.window(start);
                pending.insert(Self::close_point(window), &key, window)?;
            }
            tracing::debug!(node = %ctx.node_name(), windows = pending.len(),
                "sliding windows pending emission");
            self.pending = Some(RefCell::new(pending));
        }
        self.store = Some(store);
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
        let ts = record.timestamp;
        let d = self.d();
        if ts < 0 {
            // No window starts before 0 (sources already drop or fail negative timestamps;
            // this only sees one made by a processor upstream).
            tracing::warn!(node = %ctx.node_name(), timestamp = ts,
                "sliding window aggregate skips a record with a negative timestamp");
            return Ok(());
        }
        let clock = self.clock.as_mut().expect("init ran");
        let due = clock.observe(ctx, ts);
        if ctx.watermark().is_some() {
            // Behind a watermark the store sees windows ahead of the operator's time.
            let observed = clock.observed();
            self.store().cap_expiry(Some(observed));
        }
        if let Some(due) = due {
            self.emit_due(ctx, due)?;
        }
        let own_window = if ts < d {
            self.window(0)
        } else {
            Window::new(ts - d, ts)
        };
        // The latest window that can contain `t` is `[t, t + d]`: once that is closed, no
        // window can take the record (Kafka Streams: dropped when `t + d < observed − grace`).
        let mut reach = Reach::default();
        if self
            .clock()
            .is_closed(Self::close_point(Window::new(ts, ts.saturating_add(d))))
        {
            reach.closed.push(own_window);
        } else if ts < d {
            self.process_early(ctx, &record, &mut reach)?;
        } else {
            self.process_regular(ctx, &record, &mut reach)?;
        }
        // Dropped only when no window took it (a right window built from later records does
        // not hold it); else only the windows it missed are counted.
        reach.closed.sort_by_key(|w| w.start);
        reach.closed.dedup();
        let observed = self.clock().observed();
        let handler = self.handler.as_mut().expect("init ran");
        match (reach.taken, reach.closed.is_empty()) {
            (false, false) => handler.drop_late(ctx, &record, &reach.closed, observed)?,
            (true, false) => handler.missed_windows(reach.closed.len()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(d: u64, grace: u64) -> SlidingWindows {
        SlidingWindows::of_time_difference_and_grace(
            std::time::Duration::from_millis(d),
            std::time::Duration::from_millis(grace),
        )
    }

    #[test]
    fn retention_covers_the_reads_of_the_algorithm_and_the_emit_delay() {
        // 2d + grace + 2 for the window read before a left window.
        assert_eq!(needed_retention_ms(windows(10, 5), None), 27);
        assert_eq!(needed_retention_ms(windows(10, 5), Some(5)), 27);
        // A long emit delay: d + delay + 1.
        assert_eq!(needed_retention_ms(windows(10, 5), Some(100)), 111);
        assert_eq!(needed_retention_ms(windows(0, 0), None), 2);
    }
}
