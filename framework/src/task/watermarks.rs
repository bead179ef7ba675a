//! Watermarks through repartition topics (`Repartitioned::with_watermarks`): every task
//! writing such a topic puts its progress (its stream time) into each of the topic's
//! partitions at every commit, as a control record; a task reading the topic keeps, per
//! partition, the latest progress of every writer, and its windowed operators advance their
//! stream time only to the smallest progress of the writers still reporting. A record is then
//! late only if it is behind every writer, not merely behind the most advanced one.
//!
//! A control record is a record of the topic with the header [`WATERMARK_HEADER`] (the
//! progress, 8 bytes big-endian), keyed by the writer's task id, stamped with the progress.
//! It goes through the writer's record collector like any record, so under exactly-once it
//! commits with the data before it, and it is read back in partition order, after the data
//! its writer sent before it. Control records never reach a processor.

use std::collections::BTreeMap;

use super::record_collector::{OutgoingRecord, RecordCollector};
use crate::error::StreamsError;
use crate::record::{Headers, RawRecord};

/// The header that makes a record of a watermarked topic a control record.
pub(crate) const WATERMARK_HEADER: &str = "streamtime.watermark";

/// The writer side: what a task last reported to the watermarked topics it writes.
pub(crate) struct WatermarkWriter {
    /// Resolved names of the watermarked topics the task's sinks write.
    topics: Vec<String>,
    /// The writer's id (its task id), the key of its control records.
    writer: Vec<u8>,
    /// The progress last written (`i64::MIN`: none yet).
    written: i64,
}

impl WatermarkWriter {
    pub(crate) fn new(writer: &str, topics: Vec<String>) -> Option<Self> {
        (!topics.is_empty()).then(|| WatermarkWriter {
            topics,
            writer: writer.as_bytes().to_vec(),
            written: i64::MIN,
        })
    }

    /// Writes `progress` to every partition of every watermarked topic, unless it did not
    /// advance since the last time (a writer whose input is idle reports nothing, and its
    /// readers stop waiting for it after their writer timeout).
    pub(crate) fn report(
        &mut self,
        progress: i64,
        collector: &mut dyn RecordCollector,
    ) -> Result<(), StreamsError> {
        if progress <= self.written || progress < 0 {
            return Ok(());
        }
        let headers = Headers::new().with(WATERMARK_HEADER, progress.to_be_bytes().to_vec());
        for topic in &self.topics {
            for partition in 0..collector.partitions(topic)? {
                collector.send(OutgoingRecord {
                    topic,
                    partition,
                    key: Some(&self.writer),
                    value: None,
                    headers: &headers,
                    timestamp: progress,
                })?;
            }
        }
        self.written = progress;
        Ok(())
    }
}

/// One writer's latest report on one partition.
#[derive(Debug, Clone, Copy)]
struct Report {
    progress: i64,
    /// Wall-clock time the report was read (ms).
    heard_at: i64,
}

/// The reader side: the writers' progress per watermarked input partition of a task.
pub(crate) struct WatermarkReader {
    /// Per queue of the task: `Some` for watermarked partitions, with their writers.
    partitions: Vec<Option<BTreeMap<Vec<u8>, Report>>>,
    /// A writer silent for this long (wall clock) no longer holds the watermark back.
    timeout_ms: i64,
}

impl WatermarkReader {
    /// `watermarked[i]`: whether queue `i` of the task reads a watermarked topic. `None`
    /// when none does.
    pub(crate) fn new(watermarked: &[bool], timeout_ms: i64) -> Option<Self> {
        watermarked.iter().any(|w| *w).then(|| WatermarkReader {
            partitions: watermarked.iter().map(|w| w.then(BTreeMap::new)).collect(),
            timeout_ms,
        })
    }

    /// If `record` of queue `queue` is a control record, takes its report and returns true.
    pub(crate) fn take(&mut self, queue: usize, record: &RawRecord, wall_clock_ms: i64) -> bool {
        let Some(writers) = self.partitions.get_mut(queue).and_then(Option::as_mut) else {
            return false;
        };
        let Some(progress) = record.headers.last(WATERMARK_HEADER) else {
            return false;
        };
        let progress = match <[u8; 8]>::try_from(progress) {
            Ok(bytes) => i64::from_be_bytes(bytes),
            Err(_) => {
                tracing::warn!(topic = %record.topic, partition = record.partition,
                    offset = record.offset, "skipping a watermark whose progress is not 8 bytes");
                return true;
            }
        };
        let writer = record.key.clone().unwrap_or_default();
        let report = writers.entry(writer).or_insert(Report {
            progress,
            heard_at: wall_clock_ms,
        });
        report.progress = report.progress.max(progress);
        report.heard_at = wall_clock_ms;
        true
    }

    /// The task's watermark: the smallest progress of the writers heard within the timeout,
    /// over every watermarked partition. With no such writer, `i64::MIN`: nothing may be
    /// judged late or closed by the records of one writer alone.
    pub(crate) fn watermark(&self, wall_clock_ms: i64) -> i64 {
        self.partitions
            .iter()
            .flatten()
            .flat_map(|writers| writers.values())
            .filter(|r| wall_clock_ms.saturating_sub(r.heard_at) < self.timeout_ms)
            .map(|r| r.progress)
            .min()
            .unwrap_or(i64::MIN)
    }

    /// The writers known over every watermarked partition (a writer counts once per
    /// partition), and how many of them are active now.
    pub(crate) fn writers(&self, wall_clock_ms: i64) -> (usize, usize) {
        let all = self.partitions.iter().flatten().flat_map(|w| w.values());
        let active = all
            .clone()
            .filter(|r| wall_clock_ms.saturating_sub(r.heard_at) < self.timeout_ms)
            .count();
        (all.count(), active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::TimestampType;

    fn control(writer: &str, progress: i64) -> RawRecord {
        RawRecord {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            timestamp: progress,
            timestamp_type: TimestampType::CreateTime,
            key: Some(writer.as_bytes().to_vec()),
            value: None,
            headers: Headers::new().with(WATERMARK_HEADER, progress.to_be_bytes().to_vec()),
        }
    }

    #[test]
    fn the_watermark_is_the_slowest_active_writer_and_a_silent_one_stops_counting() {
        let mut reader = WatermarkReader::new(&[true, false], 1_000).unwrap();
        assert_eq!(reader.watermark(0), i64::MIN, "no writer heard yet");
        assert!(reader.take(0, &control("0_0", 500), 0));
        assert!(reader.take(0, &control("0_1", 100), 0));
        assert_eq!(reader.watermark(10), 100);
        assert!(
            !reader.take(1, &control("0_0", 900), 10),
            "not a watermarked partition"
        );
        // 0_1 stays silent: after the timeout the watermark is the other writer's.
        assert!(reader.take(0, &control("0_0", 800), 900));
        assert_eq!(reader.watermark(999), 100);
        assert_eq!(reader.watermark(1_000), 800);
        assert_eq!(reader.writers(1_000), (2, 1));
        // It rejoins when it reports again.
        assert!(reader.take(0, &control("0_1", 300), 1_100));
        assert_eq!(reader.watermark(1_100), 300);
    }

    #[test]
    fn a_data_record_of_a_watermarked_partition_is_no_control_record() {
        let mut reader = WatermarkReader::new(&[true], 1_000).unwrap();
        let mut data = control("0_0", 5);
        data.headers = Headers::new();
        assert!(!reader.take(0, &data, 0));
        assert_eq!(reader.watermark(0), i64::MIN);
    }
}
