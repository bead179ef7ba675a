//! [`StallDetector`]: notices a task that holds buffered records but processes none, which
//! a healthy task never does for long. Typical causes: waiting for a partition whose data the
//! broker cannot serve, a processor blocking, or a time-synchronisation setting
//! (`max_task_idle`) that never lets the task proceed.

/// What one observation concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StallState {
    /// Processing, or nothing to process.
    Healthy,
    /// Buffered records but no progress, for less than the threshold so far.
    Waiting,
    /// Stalled for at least the threshold; `first` is true on the observation that crossed
    /// it (the one to warn on).
    Stalled { since_ms: i64, first: bool },
    /// Progress again after a stall that lasted `stalled_ms`.
    Recovered { stalled_ms: i64 },
}

/// Tracks one task's progress against the wall clock.
#[derive(Debug, Clone)]
pub(crate) struct StallDetector {
    threshold_ms: Option<i64>,
    /// Processed count at the last observation.
    processed: u64,
    /// Since when the task has had buffered records without progress.
    since_ms: Option<i64>,
    warned: bool,
}

impl StallDetector {
    /// `threshold_ms`: how long without progress counts as stalled (`None`: never).
    pub(crate) fn new(threshold_ms: Option<i64>) -> Self {
        StallDetector {
            threshold_ms,
            processed: 0,
            since_ms: None,
            warned: false,
        }
    }

    /// Observes the task at wall-clock `now_ms` with `buffered` records and `processed`
    /// records so far.
    pub(crate) fn observe(&mut self, now_ms: i64, buffered: usize, processed: u64) -> StallState {
        let progressed = processed != self.processed;
        self.processed = processed;
        if progressed || buffered == 0 {
            let was = self.since_ms.take();
            let warned = std::mem::take(&mut self.warned);
            return match was {
                Some(since) if warned => StallState::Recovered {
                    stalled_ms: now_ms - since,
                },
                _ => StallState::Healthy,
            };
        }
        let since = *self.since_ms.get_or_insert(now_ms);
        match self.threshold_ms {
            Some(threshold) if now_ms - since >= threshold => {
                let first = !self.warned;
                self.warned = true;
                StallState::Stalled {
                    since_ms: since,
                    first,
                }
            }
            _ => StallState::Waiting,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffered_records_without_progress_stall_after_the_threshold_once() {
        let mut d = StallDetector::new(Some(1_000));
        assert_eq!(d.observe(0, 5, 0), StallState::Waiting);
        assert_eq!(d.observe(999, 5, 0), StallState::Waiting);
        assert_eq!(
            d.observe(1_000, 5, 0),
            StallState::Stalled {
                since_ms: 0,
                first: true
            }
        );
        // Still stalled, but warned already.
        assert_eq!(
            d.observe(5_000, 7, 0),
            StallState::Stalled {
                since_ms: 0,
                first: false
            }
        );
        // One record processed: recovered, and the clock starts over.
        assert_eq!(
            d.observe(6_000, 6, 1),
            StallState::Recovered { stalled_ms: 6_000 }
        );
        assert_eq!(d.observe(6_500, 6, 1), StallState::Waiting);
        assert_eq!(
            d.observe(7_500, 6, 1),
            StallState::Stalled {
                since_ms: 6_500,
                first: true
            }
        );
    }

    #[test]
    fn progress_or_an_empty_buffer_is_healthy() {
        let mut d = StallDetector::new(Some(1_000));
        for t in 0..10 {
            // Processing steadily with records buffered.
            assert_eq!(d.observe(t * 1_000, 100, t as u64 + 1), StallState::Healthy);
        }
        // Nothing buffered, nothing processed: idle, not stalled.
        for t in 10..20 {
            assert_eq!(d.observe(t * 1_000, 0, 10), StallState::Healthy);
        }
        // A short wait that ends before the threshold is never reported.
        assert_eq!(d.observe(20_000, 3, 10), StallState::Waiting);
        assert_eq!(d.observe(20_500, 3, 11), StallState::Healthy);
    }

    #[test]
    fn without_a_threshold_nothing_stalls() {
        let mut d = StallDetector::new(None);
        assert_eq!(d.observe(0, 5, 0), StallState::Waiting);
        assert_eq!(d.observe(i64::MAX / 2, 5, 0), StallState::Waiting);
    }
}
