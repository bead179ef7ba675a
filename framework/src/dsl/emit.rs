//! [`EmitClock`]: the observed stream time of a windowed operator and how far its results
//! have been emitted, both kept in the task's committed metadata so that a restarted task
//! neither re-emits final results nor forgets which records are late.

use std::time::Duration;

use super::windows::IdleClose;
use crate::processor::{ProcessorContext, PunctuationType};

const OBSERVED: &str = "o";
const EMITTED: &str = "e";

/// How often a clock closing windows on a quiet stream checks the wall clock, at most.
const IDLE_CHECK_EVERY_MS: i64 = 1_000;

/// One windowed operator's clock. A window is identified here by its *close point*: the
/// smallest observed stream time at which no record can change it any more, minus grace
/// (time windows: their end; sessions: end + gap + 1).
pub(crate) struct EmitClock {
    /// `None`: emit every change at once; else results become due `delay` after the close
    /// point.
    delay: Option<i64>,
    grace: i64,
    observed: i64,
    emitted_to: i64,
    /// Closing windows on a quiet stream, and the wall-clock time a record last advanced
    /// `observed` (or the clock started).
    idle: Option<(IdleClose, i64)>,
}

impl EmitClock {
    /// Loads the clock saved by an earlier run of the task, if any.
    pub(super) fn load<K, V>(ctx: &ProcessorContext<K, V>, delay: Option<i64>, grace: i64) -> Self {
        EmitClock {
            delay,
            grace,
            observed: ctx.committed_metadata(OBSERVED).unwrap_or(-1),
            emitted_to: ctx.committed_metadata(EMITTED).unwrap_or(i64::MIN),
            idle: None,
        }
    }

    /// Also closes windows on a quiet stream (see [`EmitClock::idle_advance`]), checking the
    /// wall clock on a punctuator of the operator's.
    pub(super) fn with_idle_close<K, V>(
        mut self,
        ctx: &mut ProcessorContext<K, V>,
        idle: Option<IdleClose>,
    ) -> Self {
        if let Some(idle) = idle {
            let every = idle.idle_ms.clamp(1, IDLE_CHECK_EVERY_MS);
            ctx.schedule(
                Duration::from_millis(every as u64),
                PunctuationType::WallClockTime,
            );
            self.idle = Some((idle, ctx.wall_clock_ms()));
        }
        self
    }

    /// Close points up to this have had their results emitted.
    pub(super) fn emitted_to(&self) -> i64 {
        self.emitted_to
    }

    /// The operator's observed stream time: the largest timestamp it has seen.
    pub(super) fn observed(&self) -> i64 {
        self.observed
    }

    /// Whether a window with close point `close_point` no longer accepts records.
    pub(super) fn is_closed(&self, close_point: i64) -> bool {
        close_point <= self.observed.saturating_sub(self.grace)
    }

    /// Whether a change to the window with close point `close_point` is forwarded at once.
    pub(super) fn is_due(&self, close_point: i64) -> bool {
        self.delay.is_none() || close_point <= self.emitted_to
    }

    /// Observes a record's timestamp. Returns the close points `(from, to]` whose results have
    /// just become due and must be forwarded now, before the record changes the store (so
    /// nothing due can expire first).
    pub(super) fn observe<K, V>(
        &mut self,
        ctx: &mut ProcessorContext<K, V>,
        ts: i64,
    ) -> Option<(i64, i64)> {
        // Behind a watermarked repartition, stream time goes no further than the slowest
        // writer's progress.
        let ts = ctx.watermark().map_or(ts, |w| ts.min(w));
        if ts > self.observed {
            self.observed = ts;
            ctx.set_committed_metadata(OBSERVED, ts);
            if let Some((_, advanced_at)) = &mut self.idle {
                *advanced_at = ctx.wall_clock_ms();
            }
        }
        self.newly_due(ctx)
    }

    /// At wall-clock time `wall`, on a clock closing windows on a quiet stream: when no
    /// record has advanced the observed stream time for the idle time, it moves on to `wall`
    /// minus the allowed lateness. Returns the close points that became due, as
    /// [`EmitClock::observe`] does.
    pub(super) fn idle_advance<K, V>(
        &mut self,
        ctx: &mut ProcessorContext<K, V>,
        wall: i64,
    ) -> Option<(i64, i64)> {
        let (idle, advanced_at) = self.idle?;
        let assumed = wall.saturating_sub(idle.lateness_ms);
        if wall.saturating_sub(advanced_at) < idle.idle_ms || assumed <= self.observed {
            return None;
        }
        tracing::debug!(node = %ctx.node_name(), observed = self.observed, now = assumed,
            "no record advanced stream time for the idle time: closing windows by the wall clock");
        self.observed = assumed;
        ctx.set_committed_metadata(OBSERVED, assumed);
        self.newly_due(ctx)
    }

    /// Advances the emit horizon to the observed stream time minus the delay; the close
    /// points that became due.
    fn newly_due<K, V>(&mut self, ctx: &mut ProcessorContext<K, V>) -> Option<(i64, i64)> {
        let horizon = self.observed.saturating_sub(self.delay?);
        if horizon <= self.emitted_to {
            return None;
        }
        let from = self.emitted_to;
        self.emitted_to = horizon;
        ctx.set_committed_metadata(EMITTED, horizon);
        Some((from, horizon))
    }

    /// How long the store must keep a window after its close point's window end so that a
    /// due result can still be read: the larger of grace and the emit delay.
    pub(super) fn retention_beyond_end(delay: Option<i64>, grace: i64) -> i64 {
        delay.unwrap_or(0).max(grace)
    }
}
