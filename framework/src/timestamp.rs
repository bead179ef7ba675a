//! Timestamp extraction: how a record's event time is read, and what happens when it is
//! invalid.
//!
//! ```
//! use streamtime::timestamp::{TimestampExtractor, RecordTimestamp};
//! use streamtime::{RawRecord, TimestampType, Headers};
//! let raw = RawRecord { topic: "t".into(), partition: 0, offset: 0, timestamp: 42,
//!     timestamp_type: TimestampType::CreateTime, key: None, value: None, headers: Headers::new() };
//! assert_eq!(RecordTimestamp.extract(&raw, -1), 42);
//! // Any closure over the raw record and the partition time is an extractor too.
//! let from_value = |r: &RawRecord, _partition_time: i64| r.value.as_ref().map_or(-1, |v| v.len() as i64);
//! assert_eq!(from_value.extract(&raw, -1), -1);
//! ```

use crate::record::RawRecord;

/// Reads the event time (ms) of a raw record. `partition_time` is the largest timestamp seen
/// so far on the record's partition (-1 before the first).
pub trait TimestampExtractor: Send + Sync + 'static {
    /// The record's event time; negative means invalid.
    fn extract(&self, record: &RawRecord, partition_time: i64) -> i64;
}

impl<F> TimestampExtractor for F
where
    F: Fn(&RawRecord, i64) -> i64 + Send + Sync + 'static,
{
    fn extract(&self, record: &RawRecord, partition_time: i64) -> i64 {
        self(record, partition_time)
    }
}

/// The record's metadata timestamp (CreateTime or LogAppendTime). The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordTimestamp;

impl TimestampExtractor for RecordTimestamp {
    fn extract(&self, record: &RawRecord, _partition_time: i64) -> i64 {
        record.timestamp
    }
}

/// The wall-clock time at extraction (processing-time semantics).
#[derive(Debug, Clone, Copy, Default)]
pub struct WallClockTimestamp;

impl TimestampExtractor for WallClockTimestamp {
    fn extract(&self, _record: &RawRecord, _partition_time: i64) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// What to do with a record whose extracted timestamp is negative.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InvalidTimestampPolicy {
    /// Stop processing with an error naming the record (default).
    #[default]
    Fail,
    /// Drop the record, log it, and count it as dropped.
    LogAndSkip,
    /// Use the partition's current time instead (drop if there is none yet).
    UsePartitionTime,
}
