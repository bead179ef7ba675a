//! Window definitions over event time, windowed keys and their serde, and when windowed
//! results are emitted.
//!
//! ```
//! use std::time::Duration;
//! use streamtime::dsl::{TimeWindows, Window};
//!
//! // Windows of 60 s every 10 s: a record at 65 s is in the six windows starting 10 s..60 s.
//! let hopping = TimeWindows::of_size_and_grace(Duration::from_secs(60), Duration::from_secs(5))
//!     .advance_by(Duration::from_secs(10));
//! let starts: Vec<i64> = hopping.windows_for(65_000).map(|w| w.start).collect();
//! assert_eq!(starts, vec![10_000, 20_000, 30_000, 40_000, 50_000, 60_000]);
//! assert_eq!(hopping.windows_for(65_000).next(), Some(Window::new(10_000, 70_000)));
//! ```

use std::fmt;
use std::time::Duration;

use crate::serdes::{Serde, SerdeError};

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A window of event time. Time windows are `[start, end)`; sliding windows `[start, end]`
/// with `end − start` the time difference; session windows `[start, end]` (a session's end
/// is its last record's timestamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    /// First millisecond of the window.
    pub start: i64,
    /// End of the window (exclusive for time windows, inclusive for sliding windows and
    /// sessions).
    pub end: i64,
}

impl Window {
    /// A window from `start` to `end`.
    pub fn new(start: i64, end: i64) -> Self {
        Window { start, end }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {}]", self.start, self.end)
    }
}

/// A key and the window its value belongs to: the key type of windowed tables.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Windowed<K> {
    /// The record key.
    pub key: K,
    /// The window.
    pub window: Window,
}

impl<K> Windowed<K> {
    /// `key` in `window`.
    pub fn new(key: K, window: Window) -> Self {
        Windowed { key, window }
    }
}

/// Serde of [`Windowed`] keys: the inner key's bytes, then window start and end as 8-byte
/// big-endian integers, so a reader needs no window size to decode a key.
///
/// ```
/// use streamtime::dsl::{Window, Windowed, WindowedSerde};
/// use streamtime::serdes::{Serde, StringSerde};
/// let serde = WindowedSerde::new(StringSerde);
/// let mut bytes = Vec::new();
/// serde.serialize(&Windowed::new("k".to_string(), Window::new(0, 60_000)), &mut bytes).unwrap();
/// assert_eq!(bytes.len(), 1 + 16);
/// assert_eq!(serde.deserialize(&bytes).unwrap().window, Window::new(0, 60_000));
/// ```
pub struct WindowedSerde<S>(S);

impl<S> WindowedSerde<S> {
    /// Wraps the serde of the inner key.
    pub fn new(key_serde: S) -> Self {
        WindowedSerde(key_serde)
    }
}

impl<K: 'static, S: Serde<K>> Serde<Windowed<K>> for WindowedSerde<S> {
    fn serialize(&self, value: &Windowed<K>, out: &mut Vec<u8>) -> Result<(), SerdeError> {
        self.0.serialize(&value.key, out)?;
        out.extend_from_slice(&value.window.start.to_be_bytes());
        out.extend_from_slice(&value.window.end.to_be_bytes());
        Ok(())
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<Windowed<K>, SerdeError> {
        let Some(split) = bytes.len().checked_sub(16) else {
            return Err(SerdeError::new(format!(
                "windowed key of {} bytes is shorter than its 16-byte window",
                bytes.len()
            )));
        };
        let (key, window) = bytes.split_at(split);
        let start = i64::from_be_bytes(window[..8].try_into().expect("8 bytes"));
        let end = i64::from_be_bytes(window[8..].try_into().expect("8 bytes"));
        Ok(Windowed::new(
            self.0.deserialize(key)?,
            Window::new(start, end),
        ))
    }
}

/// Fixed-size windows `[start, start + size)` every `advance` (tumbling when `advance ==
/// size`, hopping when smaller), aligned to the epoch, with a grace period for late records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    pub(crate) size_ms: i64,
    pub(crate) advance_ms: i64,
    pub(crate) grace_ms: i64,
}

impl TimeWindows {
    /// Tumbling windows of `size`; a record is late once stream time passes its window's end.
    pub fn of_size_with_no_grace(size: Duration) -> Self {
        Self::of_size_and_grace(size, Duration::ZERO)
    }

    /// Tumbling windows of `size` that still accept records `grace` after their end.
    pub fn of_size_and_grace(size: Duration, grace: Duration) -> Self {
        TimeWindows {
            size_ms: ms(size),
            advance_ms: ms(size),
            grace_ms: ms(grace),
        }
    }

    /// Makes the windows hop by `advance` (at most the size).
    pub fn advance_by(mut self, advance: Duration) -> Self {
        self.advance_ms = ms(advance);
        self
    }

    /// Window size in milliseconds.
    pub fn size_ms(&self) -> i64 {
        self.size_ms
    }

    /// Grace period in milliseconds.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }

    /// Advance in milliseconds.
    pub fn advance_ms(&self) -> i64 {
        self.advance_ms
    }

    /// The windows containing `timestamp`, by ascending start: the first starts at
    /// `max(0, ts − size + advance) / advance * advance`, the others every `advance` up to ts.
    pub fn windows_for(&self, timestamp: i64) -> impl Iterator<Item = Window> + '_ {
        let first =
            (timestamp - self.size_ms + self.advance_ms).max(0) / self.advance_ms * self.advance_ms;
        (0..)
            .map(move |i| first + i * self.advance_ms)
            .take_while(move |start| *start <= timestamp)
            .map(move |start| Window::new(start, start + self.size_ms))
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.size_ms <= 0 {
            return Err(format!(
                "window size must be positive, got {} ms",
                self.size_ms
            ));
        }
        if self.advance_ms <= 0 || self.advance_ms > self.size_ms {
            return Err(format!(
                "window advance must be in (0, size = {} ms], got {} ms",
                self.size_ms, self.advance_ms
            ));
        }
        if self.grace_ms < 0 {
            return Err("grace must not be negative".into());
        }
        Ok(())
    }
}

/// Sliding windows: every distinct set of records no more than `time_difference` apart, as
/// windows `[t − d, t]` (both ends inclusive), with a grace period for late records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindows {
    pub(crate) time_difference_ms: i64,
    pub(crate) grace_ms: i64,
}

impl SlidingWindows {
    /// Windows of records at most `time_difference` apart, accepting records `grace` late.
    pub fn of_time_difference_and_grace(time_difference: Duration, grace: Duration) -> Self {
        SlidingWindows {
            time_difference_ms: ms(time_difference),
            grace_ms: ms(grace),
        }
    }

    /// Windows of records at most `time_difference` apart, without grace.
    pub fn of_time_difference_with_no_grace(time_difference: Duration) -> Self {
        Self::of_time_difference_and_grace(time_difference, Duration::ZERO)
    }

    /// The time difference in milliseconds.
    pub fn time_difference_ms(&self) -> i64 {
        self.time_difference_ms
    }

    /// Grace period in milliseconds.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }
}

/// Session windows: a key's records closer than `inactivity_gap` form one session
/// `[first, last]`; a record between two sessions merges them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows {
    pub(crate) gap_ms: i64,
    pub(crate) grace_ms: i64,
}

impl SessionWindows {
    /// Sessions closed by `gap` of inactivity, accepting records `grace` late.
    pub fn of_inactivity_gap_and_grace(gap: Duration, grace: Duration) -> Self {
        SessionWindows {
            gap_ms: ms(gap),
            grace_ms: ms(grace),
        }
    }

    /// Sessions closed by `gap` of inactivity, without grace.
    pub fn of_inactivity_gap_with_no_grace(gap: Duration) -> Self {
        Self::of_inactivity_gap_and_grace(gap, Duration::ZERO)
    }

    /// The inactivity gap in milliseconds.
    pub fn gap_ms(&self) -> i64 {
        self.gap_ms
    }

    /// Grace period in milliseconds.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }
}

/// The kinds of windows a grouped stream can be cut into (see
/// [`crate::KGroupedStream::windowed_by`]).
pub trait WindowKind: sealed::Sealed + Copy + 'static {}

mod sealed {
    pub trait Sealed {
        /// How long after a window's end it closes: the grace period, plus the inactivity
        /// gap for sessions (a later record can still extend a session until then).
        fn close_after_end_ms(&self) -> i64;
    }
    impl Sealed for super::TimeWindows {
        fn close_after_end_ms(&self) -> i64 {
            self.grace_ms
        }
    }
    impl Sealed for super::SlidingWindows {
        fn close_after_end_ms(&self) -> i64 {
            self.grace_ms
        }
    }
    impl Sealed for super::SessionWindows {
        fn close_after_end_ms(&self) -> i64 {
            self.gap_ms + self.grace_ms
        }
    }
}

/// How long after a window's end `windows` close it (see `sealed::Sealed`).
pub(crate) fn close_after_end_ms<W: WindowKind>(windows: &W) -> i64 {
    windows.close_after_end_ms()
}

impl WindowKind for TimeWindows {}
impl WindowKind for SlidingWindows {}
impl WindowKind for SessionWindows {}

/// When a windowed operation forwards its results.
///
/// Every policy uses one rule: a window's result is *due* once the operator's observed stream
/// time reaches the window's end plus a delay. Due results are forwarded when they become due
/// (in window order), and any later change of a due window is forwarded at once.
///
/// * [`EmitStrategy::OnWindowUpdate`]: delay −∞, every change is forwarded immediately (Kafka
///   Streams' default). With grace, a late record within grace re-emits the corrected result.
/// * [`EmitStrategy::OnWindowClose`]: delay = grace, the window's one final result is forwarded
///   when it closes; nothing changes a closed window, so nothing follows it ("wait").
/// * [`EmitStrategy::AfterWindowEnd`]: a custom delay. A delay shorter than grace gives an early
///   result followed by corrections for late records within grace; a longer one waits longer
///   than grace (the store keeps windows `size + max(grace, delay)`).
/// * [`EmitStrategy::OnWindowCloseOrIdle`]: as `OnWindowClose`, and windows also close on a
///   quiet stream (beyond Kafka Streams; results then depend on the wall clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmitStrategy {
    /// Forward every change.
    #[default]
    OnWindowUpdate,
    /// Forward each window's final result once, when it closes.
    OnWindowClose,
    /// Forward a window's result once stream time passes its end by the delay, then every
    /// change of it.
    AfterWindowEnd(Duration),
    /// [`EmitStrategy::OnWindowClose`], and when no record has advanced the operator's stream
    /// time for `idle` of wall-clock time, its stream time moves on to wall clock minus
    /// `allowed_lateness`: windows whose end plus grace is behind that close and are emitted
    /// once, and records for them arriving later are late. The clock is committed with the
    /// task's offsets, so a restart neither re-emits nor loses a result.
    ///
    /// This trades determinism for timeliness: the last window of a batch, or of a partition
    /// quiet at night, is emitted within about `idle` (plus up to a second) after it is due
    /// by the wall clock, instead of never; which records count as late then depends on when
    /// they arrive, so a replay of the same input can give other results. Set
    /// `allowed_lateness` above the largest delay between an event and its arrival.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streamtime::dsl::EmitStrategy;
    /// let emit = EmitStrategy::OnWindowCloseOrIdle {
    ///     idle: Duration::from_secs(30),
    ///     allowed_lateness: Duration::from_secs(60),
    /// };
    /// # let _ = emit;
    /// ```
    OnWindowCloseOrIdle {
        /// Wall-clock time without stream-time progress after which windows close by the
        /// wall clock.
        idle: Duration,
        /// How far behind the wall clock event time is assumed to be at most.
        allowed_lateness: Duration,
    },
}

/// Closing windows on a quiet stream ([`EmitStrategy::OnWindowCloseOrIdle`]), in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdleClose {
    pub idle_ms: i64,
    pub lateness_ms: i64,
}

impl EmitStrategy {
    /// The delay after a window's end at which its result becomes due; `None` = at once.
    pub(crate) fn delay_ms(&self, grace_ms: i64) -> Option<i64> {
        match self {
            EmitStrategy::OnWindowUpdate => None,
            EmitStrategy::OnWindowClose | EmitStrategy::OnWindowCloseOrIdle { .. } => {
                Some(grace_ms)
            }
            EmitStrategy::AfterWindowEnd(d) => Some(ms(*d)),
        }
    }

    /// Whether and how windows close on a quiet stream.
    pub(crate) fn idle_close(&self) -> Option<IdleClose> {
        match self {
            EmitStrategy::OnWindowCloseOrIdle {
                idle,
                allowed_lateness,
            } => Some(IdleClose {
                idle_ms: ms(*idle).max(1),
                lateness_ms: ms(*allowed_lateness),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(w: &TimeWindows, ts: i64) -> Vec<i64> {
        w.windows_for(ts).map(|w| w.start).collect()
    }

    #[test]
    fn tumbling_windows_at_boundaries() {
        let w = TimeWindows::of_size_with_no_grace(Duration::from_millis(10));
        assert_eq!(starts(&w, 0), vec![0]);
        assert_eq!(starts(&w, 9), vec![0]);
        assert_eq!(starts(&w, 10), vec![10]);
        assert_eq!(w.windows_for(10).next(), Some(Window::new(10, 20)));
    }

    #[test]
    fn hopping_windows_near_zero_do_not_go_negative() {
        let w = TimeWindows::of_size_with_no_grace(Duration::from_millis(10))
            .advance_by(Duration::from_millis(3));
        assert_eq!(starts(&w, 0), vec![0]);
        assert_eq!(starts(&w, 4), vec![0, 3]);
        assert_eq!(starts(&w, 10), vec![3, 6, 9]);
        assert_eq!(starts(&w, 12), vec![3, 6, 9, 12]);
        // Every window returned contains the timestamp, and no containing window is missed.
        for ts in 0..100 {
            let got = starts(&w, ts);
            let want: Vec<i64> = (0..=ts).filter(|s| s % 3 == 0 && ts < s + 10).collect();
            assert_eq!(got, want, "ts {ts}");
        }
    }

    #[test]
    fn invalid_windows_are_rejected() {
        let w = TimeWindows::of_size_with_no_grace(Duration::from_millis(10));
        assert!(w.validate().is_ok());
        assert!(w.advance_by(Duration::from_millis(11)).validate().is_err());
        assert!(w.advance_by(Duration::ZERO).validate().is_err());
        assert!(TimeWindows::of_size_with_no_grace(Duration::ZERO)
            .validate()
            .is_err());
    }

    #[test]
    fn windowed_serde_rejects_short_input() {
        let serde = WindowedSerde::new(crate::serdes::StringSerde);
        assert!(serde.deserialize(&[0; 15]).is_err());
    }
}
