//! [`RestoreProgress`]: how far a task's restore has come, as a log line and as gauges:
//! records done of the total, rate, and the time left at that rate.

use std::fmt;
use std::time::{Duration, Instant};

use metrics::Gauge;

use crate::task::TaskId;

/// Progress of one task's restore over all its changelogs.
pub(crate) struct RestoreProgress {
    task: TaskId,
    total: u64,
    done: u64,
    started: Instant,
    last_report: Instant,
    every: Duration,
    total_gauge: Gauge,
    remaining_gauge: Gauge,
    rate_gauge: Gauge,
}

/// One progress report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Snapshot {
    pub done: u64,
    pub total: u64,
    /// Records per second since the restore started.
    pub rate: f64,
    /// Time left at `rate`; `None` before any record was restored.
    pub eta: Option<Duration>,
}

impl Snapshot {
    fn at(done: u64, total: u64, elapsed: Duration) -> Self {
        let rate = done as f64 / elapsed.as_secs_f64().max(1e-3);
        let left = total.saturating_sub(done);
        let eta = (rate > 0.0).then(|| Duration::from_secs_f64(left as f64 / rate));
        Snapshot {
            done,
            total,
            rate,
            eta,
        }
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let percent = if self.total == 0 {
            100.0
        } else {
            self.done as f64 * 100.0 / self.total as f64
        };
        write!(
            f,
            "{}/{} records ({percent:.1}%), {:.0} records/s, ETA ",
            self.done, self.total, self.rate
        )?;
        match self.eta {
            Some(eta) => write!(f, "{:.0}s", eta.as_secs_f64().ceil()),
            None => f.write_str("unknown"),
        }
    }
}

impl RestoreProgress {
    /// A restore of `total` records, reported at most every `every`.
    pub(crate) fn new(task: TaskId, total: u64, every: Duration) -> Self {
        let label = task.to_string();
        let progress = RestoreProgress {
            task,
            total,
            done: 0,
            started: Instant::now(),
            last_report: Instant::now(),
            every,
            total_gauge: metrics::gauge!("streamtime_restore_total_records", "task" => label.clone()),
            remaining_gauge: metrics::gauge!("streamtime_restore_remaining_records", "task" => label.clone()),
            rate_gauge: metrics::gauge!("streamtime_restore_rate_records_per_second", "task" => label),
        };
        progress.total_gauge.set(total as f64);
        progress.remaining_gauge.set(total as f64);
        progress
    }

    /// Counts `n` more restored records; logs and publishes progress when a report is due.
    pub(crate) fn advance(&mut self, n: u64) {
        self.done += n;
        if self.last_report.elapsed() >= self.every {
            self.last_report = Instant::now();
            let snapshot = self.snapshot();
            self.publish(&snapshot);
            tracing::info!(task = %self.task, done = snapshot.done, total = snapshot.total,
                "restore progress: {snapshot}");
        }
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot::at(self.done, self.total, self.started.elapsed())
    }

    fn publish(&self, snapshot: &Snapshot) {
        self.remaining_gauge
            .set(snapshot.total.saturating_sub(snapshot.done) as f64);
        self.rate_gauge.set(snapshot.rate);
    }

    /// The restore is complete: nothing remains, whatever the estimate said.
    pub(crate) fn finish(&mut self) -> Snapshot {
        let snapshot = self.snapshot();
        self.publish(&snapshot);
        self.remaining_gauge.set(0.0);
        snapshot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reports_done_of_total_rate_and_eta() {
        let s = Snapshot::at(2_500, 10_000, Duration::from_secs(5));
        assert_eq!(s.rate, 500.0);
        assert_eq!(s.eta, Some(Duration::from_secs(15)));
        assert_eq!(
            s.to_string(),
            "2500/10000 records (25.0%), 500 records/s, ETA 15s"
        );
    }

    #[test]
    fn nothing_restored_yet_has_no_eta() {
        let s = Snapshot::at(0, 10, Duration::from_secs(1));
        assert_eq!(s.eta, None);
        assert!(s.to_string().ends_with("ETA unknown"), "{s}");
        assert!(Snapshot::at(0, 0, Duration::ZERO)
            .to_string()
            .starts_with("0/0 records (100.0%)"));
    }

    #[test]
    fn reports_are_due_by_interval() {
        let task = TaskId {
            subtopology: 0,
            partition: 0,
        };
        let mut p = RestoreProgress::new(task, 100, Duration::ZERO);
        p.advance(40);
        assert_eq!((p.snapshot().done, p.snapshot().total), (40, 100));
        p.advance(60);
        let last = p.finish();
        assert_eq!((last.done, last.total), (100, 100));
        assert_eq!(last.eta, Some(Duration::ZERO));
    }
}
