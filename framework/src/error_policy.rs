//! What the app does with a record it cannot handle: one it cannot deserialize, one a
//! processor fails on, or output the broker rejects.
//!
//! Under the `Fail` policies (the defaults) the app stops, and the error names the record's
//! topic, partition and offset. Under the others the record is skipped: its offset is committed
//! like any processed record's, so a poison record never causes a crash loop; every skip is
//! counted in `streamtime_dropped_records_total{reason=...}` and logged with the record's
//! coordinates.
//!
//! ```
//! use streamtime::StreamsConfig;
//! use streamtime::error_policy::{DeserializationErrorPolicy, ProcessingErrorPolicy};
//!
//! let config = StreamsConfig::new("orders-app", "localhost:9092")
//!     .deserialization_error_policy(DeserializationErrorPolicy::DeadLetter {
//!         topic: "orders-dead-letters".into(),
//!     })
//!     .processing_error_policy(ProcessingErrorPolicy::Continue);
//! ```

/// A source record whose key or value its serde rejects.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DeserializationErrorPolicy {
    /// Stop the app with [`crate::StreamsError::Deserialization`].
    #[default]
    Fail,
    /// Skip the record (counted as `reason="deserialization_error"`).
    LogAndContinue,
    /// Skip the record and write it, bytes unchanged, to `topic`, with headers
    /// `streamtime.error`, `streamtime.topic`, `streamtime.partition` and `streamtime.offset`
    /// saying why and where it came from. The topic must exist when the app starts.
    DeadLetter {
        /// The dead-letter topic.
        topic: String,
    },
}

/// A processor (or a serde inside the topology) fails on a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcessingErrorPolicy {
    /// Stop the app with the error.
    #[default]
    Fail,
    /// Skip the rest of the record's trip through the topology (counted as
    /// `reason="processing_error"`). What it forwarded before failing stays forwarded.
    Continue,
}

/// The broker rejects an output record (too large, topic deleted, not authorized...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProductionErrorPolicy {
    /// Fail the next commit, so input offsets never move past lost output, and stop.
    #[default]
    Fail,
    /// Count (`streamtime_production_errors_total`) and log the lost record and go on.
    /// Changelog records are never skipped: losing one would corrupt state. Under exactly-once
    /// a failed send aborts the transaction whatever the policy.
    Continue,
}

/// Header names on dead-letter records.
pub mod headers {
    /// The error message.
    pub const ERROR: &str = "streamtime.error";
    /// The source topic.
    pub const TOPIC: &str = "streamtime.topic";
    /// The source partition (decimal).
    pub const PARTITION: &str = "streamtime.partition";
    /// The source offset (decimal).
    pub const OFFSET: &str = "streamtime.offset";
}
