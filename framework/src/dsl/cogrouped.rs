//! Cogrouping (Kafka Streams' KIP-150): several grouped streams, of different value types,
//! folded into one aggregate per key in one store ([`KGroupedStream::cogroup`],
//! [`CogroupedKStream::cogroup`], [`CogroupedKStream::aggregate`]).
//!
//! Each input keeps its own aggregator and is repartitioned on its own when its key
//! changed (through `<app>-<name>-repartition`, the input's `Grouped` name, or else
//! `<store>-cogroup-<n>`); all inputs are co-partitioned and update the same aggregate, in
//! timestamp order across the inputs within a task. [`CogroupedKStream::windowed_by`] cuts
//! the cogroup into time, sliding or session windows, each input windowing its records as
//! the windowed aggregation of that kind does.
//!
//! ```
//! use streamtime::{Consumed, Materialized, Produced, StreamsBuilder, StreamsConfig, TopologyTestDriver};
//! use streamtime::serdes::{I64Serde, StringSerde};
//!
//! // customer -> cents spent, from two kinds of events
//! let builder = StreamsBuilder::new();
//! let orders = builder.stream("orders", Consumed::with(StringSerde, I64Serde)).group_by_key();
//! let refunds = builder.stream("refunds", Consumed::with(StringSerde, StringSerde)).group_by_key();
//! orders
//!     .cogroup(|_customer, cents: i64, total: i64| total + cents)
//!     .cogroup(refunds, |_customer, cents: String, total: i64| total - cents.parse::<i64>().unwrap_or(0))
//!     .aggregate(|| 0, Materialized::as_("spent").with_value_serde(I64Serde))
//!     .to_stream()
//!     .to("spent", Produced::with(StringSerde, I64Serde));
//! let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("t", "unused")).unwrap();
//! driver.input_topic("orders", StringSerde, I64Serde).pipe("ann".into(), 500, 1).unwrap();
//! driver.input_topic("refunds", StringSerde, StringSerde).pipe("ann".into(), "200".into(), 2).unwrap();
//! let out = driver.output_topic("spent", StringSerde, I64Serde).read_key_values();
//! assert_eq!(out, [("ann".into(), 500), ("ann".into(), 300)]);
//! ```

use std::sync::Arc;
use std::time::Duration;

use super::emit::EmitClock;
use super::grouped::{steps, AggregateProcessor, KGroupedStream};
use super::join::require_copartitioned;
use super::options::{Materialized, Repartitioned};
use super::session_windowed::SessionWindowAggregate;
use super::sliding_windowed::SlidingWindowAggregate;
use super::stream::KStream;
use super::table::KTable;
use super::windowed::TimeWindowAggregate;
use super::windows::{close_after_end_ms, SessionWindows, SlidingWindows, TimeWindows, WindowKind};
use super::windows::{Windowed, WindowedSerde};
use crate::error::StreamsError;
use crate::serdes::{OptionSerde, Serde};
use crate::stores::{StoreSpec, Stores};

/// Combines two sessions' aggregates when a record bridges them.
type Merger<K, A> = Arc<dyn Fn(&K, A, A) -> A + Send + Sync>;

/// How a windowed cogroup's inputs cut their records into windows.
enum CogroupWindows<K, A> {
    Time(TimeWindows),
    Sliding(SlidingWindows),
    Session(SessionWindows, Merger<K, A>),
}

impl<K, A> Clone for CogroupWindows<K, A> {
    fn clone(&self) -> Self {
        match self {
            CogroupWindows::Time(w) => CogroupWindows::Time(*w),
            CogroupWindows::Sliding(w) => CogroupWindows::Sliding(*w),
            CogroupWindows::Session(w, m) => CogroupWindows::Session(*w, m.clone()),
        }
    }
}

/// Where a cogroup's inputs fold into: the store, its serdes, the shared initializer and,
/// for a windowed cogroup, the windows.
struct Target<K, A> {
    store: String,
    key_serde: Arc<dyn Serde<K>>,
    agg_serde: Arc<dyn Serde<A>>,
    initializer: Arc<dyn Fn() -> A + Send + Sync>,
    windows: Option<CogroupWindows<K, A>>,
}

/// Adds one input's aggregating processor (the input numbered by the `usize`); returns its
/// node, or an error for the build.
type AddInput<K, A> = Box<dyn FnOnce(&Target<K, A>, usize) -> Result<usize, StreamsError>>;

/// Grouped streams being cogrouped into one aggregate; end with
/// [`CogroupedKStream::aggregate`].
#[must_use = "a cogroup builds nothing until aggregate"]
pub struct CogroupedKStream<K, A> {
    /// The first input's stream, with its key serde (the builder, the default key serde).
    first: KStream<K, ()>,
    inputs: Vec<AddInput<K, A>>,
}

impl<K: Clone + 'static, V: Clone + 'static> KGroupedStream<K, V> {
    /// Starts a cogroup with this grouped stream, folded into the aggregate by
    /// `aggregator(key, value, aggregate)`.
    pub fn cogroup<A: Clone + 'static>(
        self,
        aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
    ) -> CogroupedKStream<K, A> {
        // The first input's key serde is the aggregate's unless `Materialized` gives one.
        let key_serde = self
            .grouped()
            .key_serde
            .clone()
            .or_else(|| self.stream().key_serde());
        let first = self
            .stream()
            .derive(self.stream().node(), key_serde, None, false);
        CogroupedKStream {
            first,
            inputs: vec![input(self, aggregator)],
        }
    }
}

impl<K: Clone + 'static, A: Clone + 'static> CogroupedKStream<K, A> {
    /// Adds `grouped`, folded into the same aggregate by `aggregator(key, value, aggregate)`.
    pub fn cogroup<V: Clone + 'static>(
        mut self,
        grouped: KGroupedStream<K, V>,
        aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
    ) -> Self {
        self.inputs.push(input(grouped, aggregator));
        self
    }

    /// The aggregate per key of every input, starting from `initializer()`, kept in the store
    /// `materialized` names (or a generated one), which must give the aggregate's serde.
    pub fn aggregate(
        self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> KTable<K, A> {
        let first = self.first.clone();
        let built = self.build(Arc::new(initializer), &materialized, None, |store| {
            Stores::key_value(store).with_timestamped_values()
        });
        match built {
            Ok((nodes, key_serde, agg_serde, store)) => KTable {
                stream: merged(&first, &nodes, Some(key_serde), agg_serde),
                store,
            },
            Err(store) => KTable {
                stream: first.derive(None, None, None, false),
                store,
            },
        }
    }

    /// Cuts the cogroup into windows (Kafka Streams' `CogroupedKStream.windowedBy`):
    /// [`TimeWindows`] (tumbling, hopping), [`SlidingWindows`] or [`SessionWindows`]. Each
    /// input folds its records into every window that contains them, as the windowed
    /// aggregation of that kind does, and every update of a window is forwarded.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streamtime::dsl::TimeWindows;
    /// use streamtime::{Consumed, Materialized, StreamsBuilder};
    /// use streamtime::serdes::{I64Serde, StringSerde};
    /// let builder = StreamsBuilder::new();
    /// let views = builder.stream("views", Consumed::with(StringSerde, I64Serde)).group_by_key();
    /// let clicks = builder.stream("clicks", Consumed::with(StringSerde, I64Serde)).group_by_key();
    /// let per_minute = views
    ///     .cogroup(|_page, _v: i64, (views, clicks): (i64, i64)| (views + 1, clicks))
    ///     .cogroup(clicks, |_page, _c: i64, (views, clicks): (i64, i64)| (views, clicks + 1))
    ///     .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_secs(60)))
    ///     .aggregate(|| (0, 0), Materialized::as_("engagement")
    ///         .with_value_serde(streamtime::serdes::JsonSerde::<(i64, i64)>::new()));
    /// # let _ = per_minute;
    /// ```
    pub fn windowed_by<W: WindowKind>(self, windows: W) -> WindowedCogroupedKStream<K, A, W> {
        WindowedCogroupedKStream {
            cogroup: self,
            windows,
        }
    }

    /// Registers the store `spec(name)` describes and adds every input's processor: their
    /// nodes and the serdes, or the store name after recording a build error.
    #[allow(clippy::type_complexity)]
    fn build(
        self,
        initializer: Arc<dyn Fn() -> A + Send + Sync>,
        materialized: &Materialized<K, A>,
        windows: Option<CogroupWindows<K, A>>,
        spec: impl FnOnce(&str) -> StoreSpec,
    ) -> Result<(Vec<usize>, Arc<dyn Serde<K>>, Arc<dyn Serde<A>>, String), String> {
        let state = self.first.state().clone();
        let store = materialized.name.clone().unwrap_or_else(|| {
            state
                .borrow_mut()
                .next_name("COGROUPKSTREAM-AGGREGATE-STATE-STORE")
        });
        let failed = |e: StreamsError| {
            state.borrow_mut().record_error(e);
            store.clone()
        };
        let Some(agg_serde) = materialized.value_serde.clone() else {
            return Err(failed(StreamsError::Topology(format!(
                "cogroup into {store}: the aggregate's serde is unknown; pass it in Materialized"
            ))));
        };
        let key_serde = match materialized.key_serde.clone() {
            Some(k) => k,
            None => match self.first.key_serde() {
                Some(k) => k,
                None => {
                    return Err(failed(StreamsError::Topology(format!(
                        "cogroup into {store}: the key serde is unknown; pass it in Grouped or \
                         Materialized"
                    ))))
                }
            },
        };
        let registered = state
            .borrow_mut()
            .topology
            .register_store(materialized.configure(spec(&store)));
        if let Err(e) = registered {
            return Err(failed(e));
        }
        let target = Target {
            store: store.clone(),
            key_serde: key_serde.clone(),
            agg_serde: agg_serde.clone(),
            initializer,
            windows,
        };
        let mut nodes = Vec::new();
        for (n, add) in self.inputs.into_iter().enumerate() {
            match add(&target, n + 1) {
                Ok(node) => nodes.push(node),
                Err(e) => return Err(failed(e)),
            }
        }
        for pair in nodes.windows(2) {
            require_copartitioned(&state, pair[0], pair[1]);
        }
        Ok((nodes, key_serde, agg_serde, store))
    }
}

/// A cogroup cut into windows of kind `W`; end with `aggregate`.
#[must_use = "a cogroup builds nothing until aggregate"]
pub struct WindowedCogroupedKStream<K, A, W> {
    cogroup: CogroupedKStream<K, A>,
    windows: W,
}

/// A cogroup cut into time windows; end with [`WindowedCogroupedKStream::aggregate`].
pub type TimeWindowedCogroupedKStream<K, A> = WindowedCogroupedKStream<K, A, TimeWindows>;

/// A cogroup cut into sliding windows; end with [`WindowedCogroupedKStream::aggregate`].
pub type SlidingWindowedCogroupedKStream<K, A> = WindowedCogroupedKStream<K, A, SlidingWindows>;

/// A cogroup cut into session windows; end with [`WindowedCogroupedKStream::aggregate`] (with
/// a merger).
pub type SessionWindowedCogroupedKStream<K, A> = WindowedCogroupedKStream<K, A, SessionWindows>;

impl<K: Clone + 'static, A: Clone + 'static> TimeWindowedCogroupedKStream<K, A> {
    /// The aggregate per key and window of every input, each window starting from
    /// `initializer()`, kept in the window store `materialized` names (or a generated one),
    /// which must give the aggregate's serde. Records later than the windows' grace are
    /// dropped and counted, as in a windowed aggregation; each input judges lateness by the
    /// stream time of its own records, as each input's processor does in Kafka Streams.
    pub fn aggregate(
        self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> KTable<Windowed<K>, A> {
        let windows = self.windows;
        let problem = windows
            .validate()
            .err()
            .map(|e| format!("time windows: {e}"));
        let needed = windows.size_ms + EmitClock::retention_beyond_end(None, windows.grace_ms);
        windowed_aggregate(
            self.cogroup,
            (CogroupWindows::Time(windows), close_after_end_ms(&windows)),
            problem,
            needed,
            Arc::new(initializer),
            materialized,
            |store, retention| Stores::window(store, retention, false).with_timestamped_values(),
            |agg| agg,
        )
    }
}

impl<K: Clone + 'static, A: Clone + 'static> SlidingWindowedCogroupedKStream<K, A> {
    /// The aggregate per key and sliding window of every input (Kafka Streams'
    /// `SlidingWindowedCogroupedKStream.aggregate`), windows made as a sliding-window
    /// aggregation makes them, each new window starting from `initializer()` or from the
    /// window it is built from; kept in the window store `materialized` names (or a
    /// generated one), which must give the aggregate's serde. Late records are dropped and
    /// counted, each input judging lateness by the stream time of its own records.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streamtime::dsl::{SlidingWindows, Window, WindowedSerde};
    /// use streamtime::serdes::{I64Serde, StringSerde};
    /// use streamtime::{Consumed, Materialized, Produced, StreamsBuilder, StreamsConfig, TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let buys = builder.stream("buys", Consumed::with(StringSerde, I64Serde)).group_by_key();
    /// let sells = builder.stream("sells", Consumed::with(StringSerde, I64Serde)).group_by_key();
    /// buys.cogroup(|_item, n: i64, net: i64| net + n)
    ///     .cogroup(sells, |_item, n: i64, net: i64| net - n)
    ///     .windowed_by(SlidingWindows::of_time_difference_with_no_grace(Duration::from_millis(10)))
    ///     .aggregate(|| 0, Materialized::as_("net-within-10ms").with_value_serde(I64Serde))
    ///     .to_stream()
    ///     .to("net", Produced::with(WindowedSerde::new(StringSerde), I64Serde));
    /// let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("s", "unused")).unwrap();
    /// driver.input_topic("buys", StringSerde, I64Serde).pipe("tea".into(), 5, 20).unwrap();
    /// driver.input_topic("sells", StringSerde, I64Serde).pipe("tea".into(), 2, 25).unwrap();
    /// let out: Vec<(Window, i64)> = driver.output_topic("net", WindowedSerde::new(StringSerde), I64Serde)
    ///     .read_key_values().into_iter().map(|(k, n)| (k.window, n)).collect();
    /// assert_eq!(out, [(Window::new(10, 20), 5), (Window::new(21, 31), -2), (Window::new(15, 25), 3)]);
    /// ```
    pub fn aggregate(
        self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> KTable<Windowed<K>, A> {
        let windows = self.windows;
        let problem = (windows.time_difference_ms < 0 || windows.grace_ms < 0).then(|| {
            format!(
                "sliding windows need a time difference and a grace of at least 0, got {} ms, \
                 grace {} ms",
                windows.time_difference_ms, windows.grace_ms
            )
        });
        windowed_aggregate(
            self.cogroup,
            (
                CogroupWindows::Sliding(windows),
                close_after_end_ms(&windows),
            ),
            problem,
            super::sliding_windowed::needed_retention_ms(windows, None),
            Arc::new(initializer),
            materialized,
            |store, retention| Stores::window(store, retention, false).with_timestamped_values(),
            |agg| agg,
        )
    }
}

impl<K: Clone + 'static, A: Clone + 'static> SessionWindowedCogroupedKStream<K, A> {
    /// The aggregate per key and session of every input (Kafka Streams'
    /// `SessionWindowedCogroupedKStream.aggregate`): a record starts a session from
    /// `initializer()` or joins the sessions within the inactivity gap, which
    /// `merger(key, a, b)` combines when it bridges several. Forwarded as a session
    /// aggregation forwards: each update, and `None` for a session merged away. Kept in the
    /// session store `materialized` names (or a generated one), which must give the
    /// aggregate's serde.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streamtime::dsl::{SessionWindows, Window, WindowedSerde};
    /// use streamtime::serdes::{I64Serde, OptionSerde, StringSerde};
    /// use streamtime::{Consumed, Materialized, Produced, StreamsBuilder, StreamsConfig, TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let views = builder.stream("views", Consumed::with(StringSerde, I64Serde)).group_by_key();
    /// let buys = builder.stream("buys", Consumed::with(StringSerde, I64Serde)).group_by_key();
    /// views.cogroup(|_user, _page: i64, (v, b): (i64, i64)| (v + 1, b))
    ///     .cogroup(buys, |_user, _item: i64, (v, b): (i64, i64)| (v, b + 1))
    ///     .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_millis(10)))
    ///     .aggregate(|| (0, 0), |_user, a: (i64, i64), b: (i64, i64)| (a.0 + b.0, a.1 + b.1),
    ///         Materialized::as_("visits").with_value_serde(streamtime::serdes::JsonSerde::<(i64, i64)>::new()))
    ///     .to_stream()
    ///     .to("visits", Produced::with(WindowedSerde::new(StringSerde),
    ///         OptionSerde(streamtime::serdes::JsonSerde::<(i64, i64)>::new())));
    /// let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("s", "unused")).unwrap();
    /// driver.input_topic("views", StringSerde, I64Serde).pipe("ann".into(), 1, 100).unwrap();
    /// driver.input_topic("buys", StringSerde, I64Serde).pipe("ann".into(), 7, 105).unwrap();
    /// let out: Vec<(Window, Option<(i64, i64)>)> = driver
    ///     .output_topic("visits", WindowedSerde::new(StringSerde), OptionSerde(streamtime::serdes::JsonSerde::<(i64, i64)>::new()))
    ///     .read_key_values().into_iter().map(|(k, v)| (k.window, v)).collect();
    /// assert_eq!(out, [
    ///     (Window::new(100, 100), Some((1, 0))),
    ///     (Window::new(100, 100), None),
    ///     (Window::new(100, 105), Some((1, 1))),
    /// ]);
    /// ```
    pub fn aggregate(
        self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        merger: impl Fn(&K, A, A) -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> KTable<Windowed<K>, Option<A>> {
        let windows = self.windows;
        let problem = (windows.gap_ms <= 0 || windows.grace_ms < 0).then(|| {
            format!(
                "session windows need a positive gap and a grace of at least 0, got gap {} ms, \
                 grace {} ms",
                windows.gap_ms, windows.grace_ms
            )
        });
        let needed = windows.gap_ms + EmitClock::retention_beyond_end(None, windows.grace_ms) + 1;
        windowed_aggregate(
            self.cogroup,
            (
                CogroupWindows::Session(windows, Arc::new(merger)),
                close_after_end_ms(&windows),
            ),
            problem,
            needed,
            Arc::new(initializer),
            materialized,
            |store, retention| Stores::session(store, retention),
            |agg| -> Arc<dyn Serde<Option<A>>> { Arc::new(OptionSerde(agg)) },
        )
    }
}

/// A windowed cogroup's aggregate: validates the windows (`problem`) and the retention
/// (`needed`), registers the store `spec` describes and merges the inputs' outputs, whose
/// values `value_serde` serializes.
#[allow(clippy::too_many_arguments)]
fn windowed_aggregate<K, A, VO>(
    cogroup: CogroupedKStream<K, A>,
    (windows, close_after): (CogroupWindows<K, A>, i64),
    problem: Option<String>,
    needed: i64,
    initializer: Arc<dyn Fn() -> A + Send + Sync>,
    materialized: Materialized<K, A>,
    spec: impl FnOnce(&str, Duration) -> StoreSpec,
    value_serde: impl FnOnce(Arc<dyn Serde<A>>) -> Arc<dyn Serde<VO>>,
) -> KTable<Windowed<K>, VO>
where
    K: Clone + 'static,
    A: Clone + 'static,
    VO: Clone + 'static,
{
    let first = cogroup.first.clone();
    let state = first.state().clone();
    let placeholder = |store: String| KTable {
        stream: first.derive(None, None, None, false),
        store,
    };
    if let Some(problem) = problem {
        state
            .borrow_mut()
            .record_error(StreamsError::Topology(problem));
    }
    let retention_ms = match materialized.retention {
        Some(r) if (r.as_millis() as i64) < needed => {
            let store = materialized.name.clone().unwrap_or_default();
            state
                .borrow_mut()
                .record_error(StreamsError::Topology(format!(
                    "windowed store {store}: retention {} ms is shorter than the {needed} ms its \
                     windows need",
                    r.as_millis()
                )));
            return placeholder(store);
        }
        Some(r) => r.as_millis() as i64,
        None => needed,
    };
    let retention = Duration::from_millis(retention_ms.max(0) as u64);
    let built = cogroup.build(initializer, &materialized, Some(windows), |store| {
        spec(store, retention)
    });
    match built {
        Ok((nodes, key_serde, agg_serde, store)) => {
            state
                .borrow_mut()
                .window_close_after
                .insert(store.clone(), close_after);
            let windowed: Arc<dyn Serde<Windowed<K>>> = Arc::new(WindowedSerde::new(key_serde));
            KTable {
                stream: merged(&first, &nodes, Some(windowed), value_serde(agg_serde)),
                store,
            }
        }
        Err(store) => placeholder(store),
    }
}

/// The outputs of a cogroup's input processors `nodes`, merged into one stream.
fn merged<K: Clone + 'static, KO: Clone + 'static, A: Clone + 'static>(
    first: &KStream<K, ()>,
    nodes: &[usize],
    key_serde: Option<Arc<dyn Serde<KO>>>,
    agg_serde: Arc<dyn Serde<A>>,
) -> KStream<KO, A> {
    let streams: Vec<KStream<KO, A>> = nodes
        .iter()
        .map(|n| first.derive(Some(*n), key_serde.clone(), Some(agg_serde.clone()), false))
        .collect();
    let mut merged = streams[0].clone();
    for other in &streams[1..] {
        merged = merged.merge(other);
    }
    match key_serde {
        Some(keys) => merged.with_serdes(keys, agg_serde),
        None => merged,
    }
}

/// One input of a cogroup: repartitioned if its key changed, then folded into the target.
fn input<K, V, A>(
    grouped: KGroupedStream<K, V>,
    aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
) -> AddInput<K, A>
where
    K: Clone + 'static,
    V: Clone + 'static,
    A: Clone + 'static,
{
    Box::new(move |target: &Target<K, A>, n: usize| {
        let stream = grouped.stream();
        let input = if stream.is_repartition_required() {
            let name = grouped
                .grouped()
                .name
                .clone()
                .unwrap_or_else(|| format!("{}-cogroup-{n}", target.store));
            stream.repartition(Repartitioned::implicit(
                name,
                grouped.grouped().key_serde.clone(),
                grouped.grouped().value_serde.clone(),
            ))
        } else {
            stream.clone()
        };
        let initializer = target.initializer.clone();
        let init = initializer.clone();
        let step = steps::aggregate(move || init(), aggregator);
        let parts = (
            target.store.clone(),
            target.key_serde.clone(),
            target.agg_serde.clone(),
        );
        let stores = vec![target.store.clone()];
        let node = match target.windows.clone() {
            None => input.add_processor("COGROUPKSTREAM-AGGREGATE", &[], stores, move || {
                AggregateProcessor {
                    store_name: parts.0.clone(),
                    key_serde: parts.1.clone(),
                    agg_serde: parts.2.clone(),
                    step: step.clone(),
                    store: None,
                }
            }),
            Some(CogroupWindows::Time(windows)) => input.add_processor(
                "COGROUPKSTREAM-WINDOWED-AGGREGATE",
                &[],
                stores,
                move || TimeWindowAggregate::on_update(parts.clone(), windows, step.clone()),
            ),
            Some(CogroupWindows::Sliding(windows)) => input.add_processor(
                "COGROUPKSTREAM-SLIDING-WINDOWED-AGGREGATE",
                &[],
                stores,
                move || SlidingWindowAggregate::on_update(parts.clone(), windows, step.clone()),
            ),
            Some(CogroupWindows::Session(windows, merger)) => input.add_processor(
                "COGROUPKSTREAM-SESSION-WINDOWED-AGGREGATE",
                &[],
                stores,
                move || {
                    SessionWindowAggregate::on_update(
                        parts.clone(),
                        windows,
                        initializer.clone(),
                        step.clone(),
                        merger.clone(),
                    )
                },
            ),
        };
        node.ok_or_else(|| {
            StreamsError::Topology(format!(
                "cogroup into {}: input {n} failed to build",
                target.store
            ))
        })
    })
}
