//! [`OpenTransactionWatch`]: under exactly-once, reports an input partition whose fetch
//! position has not moved for a long time although the broker holds records past it. A
//! `read_committed` consumer cannot fetch past a transaction that is still open, so a
//! producer that hangs mid-transaction — or a transaction the broker failed to abort, a
//! "hanging transaction" — stops the task for good while everything looks idle. The report
//! names the partition, the stuck position and the high watermark, so an operator can find the
//! transaction (`kafka-transactions.sh find-hanging`) and abort it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::task::TopicPartition;

/// One partition's fetch progress, as the registry sees it.
pub(crate) struct FetchProgress {
    pub partition: TopicPartition,
    /// The next offset the consumer fetches.
    pub position: i64,
    /// The broker's high watermark (cached from the last fetch response).
    pub high_watermark: i64,
    /// Paused for back-pressure: not fetching by choice.
    pub paused: bool,
}

struct Stuck {
    position: i64,
    since: Instant,
    reported: bool,
}

/// Tracks, per input partition, since when its position has been stuck behind records.
pub(crate) struct OpenTransactionWatch {
    /// How long a partition may be stuck before it is reported.
    threshold: Duration,
    stuck: HashMap<TopicPartition, Stuck>,
}

impl OpenTransactionWatch {
    pub(crate) fn new(threshold: Duration) -> Self {
        OpenTransactionWatch {
            threshold,
            stuck: HashMap::new(),
        }
    }

    /// Observes every partition's progress now; returns, for each partition stuck for at
    /// least the threshold, how long it has been. Reports each such partition once when it
    /// crosses the threshold and again when it moves.
    pub(crate) fn observe(
        &mut self,
        progress: impl IntoIterator<Item = FetchProgress>,
    ) -> HashMap<TopicPartition, Duration> {
        let mut blocked = HashMap::new();
        let mut seen = Vec::new();
        for p in progress {
            let behind = !p.paused && p.high_watermark > p.position;
            let moved = self
                .stuck
                .get(&p.partition)
                .is_some_and(|s| s.position != p.position);
            if !behind || moved {
                self.clear(&p.partition);
            }
            if !behind {
                continue;
            }
            seen.push(p.partition.clone());
            let stuck = self.stuck.entry(p.partition.clone()).or_insert(Stuck {
                position: p.position,
                since: Instant::now(),
                reported: false,
            });
            let stuck_for = stuck.since.elapsed();
            if stuck_for < self.threshold {
                continue;
            }
            if !stuck.reported {
                stuck.reported = true;
                tracing::warn!(partition = %p.partition, position = p.position,
                    high_watermark = p.high_watermark, stuck = ?stuck_for,
                    "the partition has records past its position but nothing was fetched: an open transaction blocks it (a producer that hangs, or a transaction the broker kept open); find it with `kafka-transactions.sh --bootstrap-server <broker> find-hanging --broker-id <leader>` and abort it");
                metrics::gauge!("streamtime_blocked_by_open_transaction", "partition" => p.partition.to_string())
                    .set(1.0);
            }
            blocked.insert(p.partition, stuck_for);
        }
        let gone: Vec<TopicPartition> = self
            .stuck
            .keys()
            .filter(|tp| !seen.contains(tp))
            .cloned()
            .collect();
        for tp in gone {
            self.clear(&tp);
        }
        blocked
    }

    fn clear(&mut self, partition: &TopicPartition) {
        if let Some(stuck) = self.stuck.remove(partition) {
            if stuck.reported {
                tracing::info!(%partition, stuck = ?stuck.since.elapsed(),
                    "the partition is fetched again: the open transaction ended");
                metrics::gauge!("streamtime_blocked_by_open_transaction", "partition" => partition.to_string())
                    .set(0.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(position: i64, high_watermark: i64, paused: bool) -> Vec<FetchProgress> {
        vec![FetchProgress {
            partition: TopicPartition::new("in", 0),
            position,
            high_watermark,
            paused,
        }]
    }

    #[test]
    fn a_partition_stuck_behind_records_is_blocked_after_the_threshold() {
        let mut watch = OpenTransactionWatch::new(Duration::ZERO);
        let blocked = watch.observe(at(5, 9, false));
        assert_eq!(blocked.len(), 1);
        assert!(watch
            .observe(at(5, 9, false))
            .contains_key(&TopicPartition::new("in", 0)));
    }

    #[test]
    fn a_partition_that_moves_is_caught_up_or_paused_is_not_blocked() {
        let mut watch = OpenTransactionWatch::new(Duration::from_secs(3600));
        assert!(
            watch.observe(at(5, 9, false)).is_empty(),
            "not stuck long enough"
        );
        let mut watch = OpenTransactionWatch::new(Duration::ZERO);
        assert!(watch.observe(at(9, 9, false)).is_empty(), "caught up");
        assert!(watch.observe(at(5, 9, true)).is_empty(), "paused by choice");
        watch.observe(at(5, 9, false));
        assert!(watch.stuck.contains_key(&TopicPartition::new("in", 0)));
        watch.observe(at(6, 9, false));
        assert_eq!(
            watch.stuck[&TopicPartition::new("in", 0)].position,
            6,
            "moved: the clock restarts"
        );
    }
}
