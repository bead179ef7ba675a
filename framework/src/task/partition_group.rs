//! [`PartitionGroup`]: a task's record queues and the rules for choosing the next record.
//!
//! * The next record is the head with the smallest timestamp among non-empty queues; ties go
//!   to the lowest topic-partition, so the choice never depends on arrival order.
//! * Before choosing, an empty partition makes the task wait while its lag is unknown or
//!   positive (its data is on the broker), and for `max_task_idle` of wall-clock time once its
//!   lag is 0; after that the task processes without it ("enforced processing").
//! * A partition excluded from time synchronisation is never waited for.

use std::collections::HashMap;

use super::record_queue::RecordQueue;
use super::TopicPartition;
use crate::error::StreamsError;
use crate::record::RawRecord;
use crate::timestamp::InvalidTimestampPolicy;

/// Why the task is not ready to process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotReady {
    /// Every queue is empty.
    NoData,
    /// Waiting for an empty partition whose lag is unknown.
    LagUnknown(TopicPartition),
    /// Waiting for an empty partition with data still on the broker.
    Fetching(TopicPartition),
    /// Waiting for an empty, caught-up partition until the idle deadline (wall clock, ms).
    Idling(TopicPartition, i64),
}

pub(crate) struct PartitionGroup {
    /// Sorted by topic-partition: the tie-break order.
    queues: Vec<RecordQueue>,
    index: HashMap<TopicPartition, usize>,
    /// `None`: never wait for empty partitions.
    max_task_idle_ms: Option<i64>,
    /// Per queue: when an empty, caught-up partition stops being waited for.
    idle_deadlines: Vec<Option<i64>>,
    policy: InvalidTimestampPolicy,
    stream_time: i64,
    buffered: usize,
    pub enforced_processing: u64,
    /// Excluded partitions a record arrived on since the last `take_rejoined`.
    rejoined: Vec<TopicPartition>,
}

impl PartitionGroup {
    pub(crate) fn new(
        mut queues: Vec<RecordQueue>,
        max_task_idle_ms: Option<i64>,
        policy: InvalidTimestampPolicy,
    ) -> Self {
        queues.sort_by(|a, b| a.tp.cmp(&b.tp));
        let index = queues
            .iter()
            .enumerate()
            .map(|(i, q)| (q.tp.clone(), i))
            .collect();
        PartitionGroup {
            idle_deadlines: vec![None; queues.len()],
            queues,
            index,
            max_task_idle_ms,
            policy,
            stream_time: -1,
            buffered: 0,
            enforced_processing: 0,
            rejoined: Vec::new(),
        }
    }

    pub(crate) fn partitions(&self) -> impl Iterator<Item = &TopicPartition> {
        self.queues.iter().map(|q| &q.tp)
    }

    pub(crate) fn queues(&self) -> &[RecordQueue] {
        &self.queues
    }

    pub(crate) fn stream_time(&self) -> i64 {
        self.stream_time
    }

    /// Total records buffered over all partitions.
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> usize {
        self.buffered
    }

    pub(crate) fn buffered_in(&self, tp: &TopicPartition) -> usize {
        self.index.get(tp).map_or(0, |&i| self.queues[i].len())
    }

    /// Appends fetched records (in offset order) to a partition's queue. A record arriving on
    /// an excluded partition brings it back into time synchronisation.
    pub(crate) fn add_records(
        &mut self,
        tp: &TopicPartition,
        records: impl IntoIterator<Item = RawRecord>,
    ) -> Result<(), StreamsError> {
        let &i = self.index.get(tp).ok_or_else(|| {
            StreamsError::Topology(format!("partition {tp} does not belong to this task"))
        })?;
        let queue = &mut self.queues[i];
        let before = queue.len();
        for record in records {
            queue.push(record);
        }
        let added = queue.len() - before;
        if added > 0 {
            if queue.excluded {
                tracing::info!(partition = %tp, "record arrived on excluded partition: it rejoins time synchronisation");
                queue.excluded = false;
                self.rejoined.push(tp.clone());
            }
            self.buffered += added;
            queue.update_head(self.policy)?;
            self.buffered -= before + added - queue.len();
        }
        Ok(())
    }

    /// The excluded partitions that rejoined on data since the last call.
    pub(crate) fn take_rejoined(&mut self) -> Vec<TopicPartition> {
        std::mem::take(&mut self.rejoined)
    }

    /// Sets or clears the exclusion of a partition from time synchronisation.
    pub(crate) fn set_excluded(&mut self, tp: &TopicPartition, excluded: bool) -> bool {
        match self.index.get(tp) {
            Some(&i) => {
                self.queues[i].excluded = excluded;
                true
            }
            None => false,
        }
    }

    /// Whether the next record may be chosen now. `lag` reports, for an empty partition, how
    /// many records the broker holds beyond what was fetched (`None`: unknown).
    pub(crate) fn ready_to_process(
        &mut self,
        wall_clock_ms: i64,
        lag: &dyn Fn(&TopicPartition) -> Option<i64>,
    ) -> Result<(), NotReady> {
        if self.buffered == 0 {
            return Err(NotReady::NoData);
        }
        let Some(max_idle) = self.max_task_idle_ms else {
            return Ok(());
        };
        let mut enforced = false;
        for (i, queue) in self.queues.iter().enumerate() {
            if !queue.is_empty() || queue.excluded {
                self.idle_deadlines[i] = None;
                continue;
            }
            match lag(&queue.tp) {
                None => {
                    self.idle_deadlines[i] = None;
                    return Err(NotReady::LagUnknown(queue.tp.clone()));
                }
                Some(l) if l > 0 => {
                    self.idle_deadlines[i] = None;
                    return Err(NotReady::Fetching(queue.tp.clone()));
                }
                Some(_) => {
                    let deadline = *self.idle_deadlines[i]
                        .get_or_insert(wall_clock_ms.saturating_add(max_idle));
                    if wall_clock_ms < deadline {
                        return Err(NotReady::Idling(queue.tp.clone(), deadline));
                    }
                    enforced = true;
                }
            }
        }
        if enforced {
            // Counted per task by `TaskMetrics`, which knows the task id.
            self.enforced_processing += 1;
        }
        Ok(())
    }

    /// Takes the next record: the smallest head timestamp, ties to the lowest partition.
    /// Returns the queue index, the record and its extracted timestamp.
    pub(crate) fn next_record(&mut self) -> Result<Option<(usize, RawRecord, i64)>, StreamsError> {
        let mut best: Option<(usize, i64)> = None;
        for (i, queue) in self.queues.iter().enumerate() {
            if let Some(ts) = queue.head_timestamp() {
                if best.is_none_or(|(_, b)| ts < b) {
                    best = Some((i, ts));
                }
            }
        }
        let Some((i, _)) = best else {
            return Ok(None);
        };
        let queue = &mut self.queues[i];
        let (record, timestamp) = queue
            .pop()
            .expect("a queue with a head timestamp has a record");
        let before = queue.len();
        queue.update_head(self.policy)?;
        self.buffered -= 1 + before - queue.len();
        self.stream_time = self.stream_time.max(timestamp);
        Ok(Some((i, record, timestamp)))
    }

    /// Restores a partition's time (from commit metadata) so stream time survives a move.
    pub(crate) fn restore_partition_time(&mut self, tp: &TopicPartition, partition_time: i64) {
        if let Some(&i) = self.index.get(tp) {
            let queue = &mut self.queues[i];
            queue.partition_time = queue.partition_time.max(partition_time);
            self.stream_time = self.stream_time.max(partition_time);
        }
    }

    /// Records dropped for invalid timestamps, over all partitions.
    pub(crate) fn dropped(&self) -> u64 {
        self.queues.iter().map(|q| q.dropped).sum()
    }

    pub(crate) fn clear(&mut self) {
        for q in &mut self.queues {
            q.clear();
        }
        self.buffered = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::record::{Headers, TimestampType};
    use crate::timestamp::RecordTimestamp;

    fn tp(topic: &str, p: i32) -> TopicPartition {
        TopicPartition::new(topic, p)
    }

    fn raw(tp: &TopicPartition, offset: i64, ts: i64) -> RawRecord {
        RawRecord {
            topic: tp.topic.clone(),
            partition: tp.partition,
            offset,
            timestamp: ts,
            timestamp_type: TimestampType::CreateTime,
            key: None,
            value: None,
            headers: Headers::new(),
        }
    }

    fn group(
        tps: &[TopicPartition],
        idle: Option<i64>,
        policy: InvalidTimestampPolicy,
    ) -> PartitionGroup {
        let queues = tps
            .iter()
            .enumerate()
            .map(|(i, tp)| RecordQueue::new(tp.clone(), i, Arc::new(RecordTimestamp)))
            .collect();
        PartitionGroup::new(queues, idle, policy)
    }

    fn drain(g: &mut PartitionGroup) -> Vec<(String, i64, i64)> {
        let mut out = Vec::new();
        while let Some((i, r, ts)) = g.next_record().unwrap() {
            out.push((g.queues()[i].tp.to_string(), r.offset, ts));
        }
        out
    }

    #[test]
    fn chooses_smallest_head_timestamp_with_deterministic_ties() {
        let (a, b, c) = (tp("a", 0), tp("a", 1), tp("b", 0));
        // Added in reverse order: the tie-break must not depend on it.
        let mut g = group(
            &[c.clone(), b.clone(), a.clone()],
            Some(0),
            InvalidTimestampPolicy::Fail,
        );
        g.add_records(&c, [raw(&c, 0, 5), raw(&c, 1, 20)]).unwrap();
        g.add_records(&b, [raw(&b, 0, 5), raw(&b, 1, 7)]).unwrap();
        g.add_records(&a, [raw(&a, 0, 10), raw(&a, 1, 5)]).unwrap();
        assert_eq!(
            drain(&mut g),
            vec![
                // ts 5 on a-1 and b-0: a-1 wins the tie (lower topic-partition).
                ("a-1".into(), 0, 5),
                ("b-0".into(), 0, 5),
                ("a-1".into(), 1, 7),
                // Offset order inside a partition even though ts 5 < 10.
                ("a-0".into(), 0, 10),
                ("a-0".into(), 1, 5),
                ("b-0".into(), 1, 20),
            ]
        );
    }

    #[test]
    fn stream_time_never_decreases_and_lateness_follows() {
        let a = tp("a", 0);
        let mut g = group(
            std::slice::from_ref(&a),
            Some(0),
            InvalidTimestampPolicy::Fail,
        );
        g.add_records(
            &a,
            [
                raw(&a, 0, 100),
                raw(&a, 1, 40),
                raw(&a, 2, 150),
                raw(&a, 3, 120),
            ],
        )
        .unwrap();
        let mut seen = Vec::new();
        while let Some((_, _, ts)) = g.next_record().unwrap() {
            let stream_time = g.stream_time();
            seen.push((ts, stream_time, stream_time - ts));
        }
        assert_eq!(
            seen,
            vec![(100, 100, 0), (40, 100, 60), (150, 150, 0), (120, 150, 30)]
        );
    }

    #[test]
    fn idle_rules_wait_for_unknown_or_positive_lag_and_then_for_the_deadline() {
        let (a, b) = (tp("a", 0), tp("b", 0));
        let mut g = group(
            &[a.clone(), b.clone()],
            Some(100),
            InvalidTimestampPolicy::Fail,
        );
        assert_eq!(g.ready_to_process(0, &|_| Some(0)), Err(NotReady::NoData));
        g.add_records(&a, [raw(&a, 0, 1)]).unwrap();
        assert_eq!(
            g.ready_to_process(0, &|_| None),
            Err(NotReady::LagUnknown(b.clone()))
        );
        assert_eq!(
            g.ready_to_process(0, &|_| Some(3)),
            Err(NotReady::Fetching(b.clone()))
        );
        // Caught up: wait max_task_idle from when it was first seen empty.
        assert_eq!(
            g.ready_to_process(1_000, &|_| Some(0)),
            Err(NotReady::Idling(b.clone(), 1_100))
        );
        assert_eq!(
            g.ready_to_process(1_099, &|_| Some(0)),
            Err(NotReady::Idling(b.clone(), 1_100))
        );
        assert_eq!(g.ready_to_process(1_100, &|_| Some(0)), Ok(()));
        assert_eq!(g.enforced_processing, 1);
        // Data arriving on b resets its deadline; once empty again the wait starts over.
        g.add_records(&b, [raw(&b, 0, 2)]).unwrap();
        assert_eq!(g.ready_to_process(1_200, &|_| Some(0)), Ok(()));
        drain(&mut g);
        g.add_records(&a, [raw(&a, 1, 3)]).unwrap();
        assert_eq!(
            g.ready_to_process(1_300, &|_| Some(0)),
            Err(NotReady::Idling(b.clone(), 1_400))
        );
    }

    #[test]
    fn zero_idle_processes_at_once_when_caught_up_and_none_never_waits() {
        let (a, b) = (tp("a", 0), tp("b", 0));
        let mut g = group(
            &[a.clone(), b.clone()],
            Some(0),
            InvalidTimestampPolicy::Fail,
        );
        g.add_records(&a, [raw(&a, 0, 1)]).unwrap();
        assert_eq!(g.ready_to_process(5, &|_| Some(0)), Ok(()));
        assert!(g.ready_to_process(5, &|_| Some(1)).is_err());
        let mut never = group(&[a.clone(), b.clone()], None, InvalidTimestampPolicy::Fail);
        never.add_records(&a, [raw(&a, 0, 1)]).unwrap();
        assert_eq!(never.ready_to_process(0, &|_| None), Ok(()));
        assert_eq!(never.enforced_processing, 0);
    }

    #[test]
    fn excluded_partitions_are_not_waited_for_and_rejoin_on_data() {
        let (a, b) = (tp("a", 0), tp("b", 0));
        let mut g = group(
            &[a.clone(), b.clone()],
            Some(1_000),
            InvalidTimestampPolicy::Fail,
        );
        g.add_records(&a, [raw(&a, 0, 1)]).unwrap();
        assert!(g.ready_to_process(0, &|_| None).is_err());
        assert!(g.set_excluded(&b, true));
        assert_eq!(g.ready_to_process(0, &|_| None), Ok(()));
        assert_eq!(
            g.enforced_processing, 0,
            "exclusion is not enforced processing"
        );
        drain(&mut g);
        // A record on b brings it back: once empty again, it is waited for.
        g.add_records(&b, [raw(&b, 0, 2)]).unwrap();
        assert!(!g.queues()[1].excluded);
        drain(&mut g);
        g.add_records(&a, [raw(&a, 1, 3)]).unwrap();
        assert_eq!(
            g.ready_to_process(0, &|_| None),
            Err(NotReady::LagUnknown(b.clone()))
        );
    }

    #[test]
    fn invalid_timestamps_follow_the_policy() {
        let a = tp("a", 0);
        let mut fail = group(
            std::slice::from_ref(&a),
            Some(0),
            InvalidTimestampPolicy::Fail,
        );
        assert!(matches!(
            fail.add_records(&a, [raw(&a, 0, -5)]),
            Err(StreamsError::InvalidTimestamp { timestamp: -5, .. })
        ));

        let mut skip = group(
            std::slice::from_ref(&a),
            Some(0),
            InvalidTimestampPolicy::LogAndSkip,
        );
        skip.add_records(&a, [raw(&a, 0, 10), raw(&a, 1, -1), raw(&a, 2, 12)])
            .unwrap();
        assert_eq!(
            drain(&mut skip),
            vec![("a-0".into(), 0, 10), ("a-0".into(), 2, 12)]
        );
        assert_eq!(skip.dropped(), 1);
        assert_eq!(skip.buffered(), 0);

        let mut use_pt = group(
            std::slice::from_ref(&a),
            Some(0),
            InvalidTimestampPolicy::UsePartitionTime,
        );
        use_pt
            .add_records(&a, [raw(&a, 0, -1), raw(&a, 1, 10), raw(&a, 2, -1)])
            .unwrap();
        // No partition time yet for the first: dropped; the last takes the partition time.
        assert_eq!(
            drain(&mut use_pt),
            vec![("a-0".into(), 1, 10), ("a-0".into(), 2, 10)]
        );
    }

    #[test]
    fn restored_partition_time_seeds_stream_time() {
        let a = tp("a", 0);
        let mut g = group(
            std::slice::from_ref(&a),
            Some(0),
            InvalidTimestampPolicy::Fail,
        );
        g.restore_partition_time(&a, 500);
        assert_eq!(g.stream_time(), 500);
        g.add_records(&a, [raw(&a, 7, 300)]).unwrap();
        drain(&mut g);
        assert_eq!(g.stream_time(), 500);
    }
}
