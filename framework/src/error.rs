//! The error type of streamtime.

use std::fmt;

/// Everything that can go wrong in streamtime, with enough context to act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamsError {
    /// Invalid configuration; nothing was started.
    Config(String),
    /// The topology cannot be built or run as described (type mismatch, missing serde,
    /// co-partitioning violation, unknown node...).
    Topology(String),
    /// A topic the topology needs is missing or unusable.
    MissingTopic(String),
    /// A key or value could not be (de)serialized.
    Serde {
        /// Where: topic/partition/offset or node name.
        context: String,
        /// What the serde said.
        message: String,
    },
    /// A source record's key or value could not be deserialized (see
    /// [`crate::error_policy::DeserializationErrorPolicy`]).
    Deserialization {
        /// Topic-partition@offset and the source node.
        context: String,
        /// What the serde said.
        message: String,
    },
    /// A processor failed.
    Processing {
        /// Where: task, node and input record coordinates.
        context: String,
        /// What went wrong.
        message: String,
    },
    /// The Kafka client reported an error.
    Kafka(String),
    /// A record has an invalid (negative) timestamp and the policy is to fail.
    InvalidTimestamp {
        /// Topic/partition/offset.
        context: String,
        /// The extracted timestamp.
        timestamp: i64,
    },
    /// Local I/O failed.
    Io(String),
    /// A state store failed (open, read, write, restore, checkpoint).
    State(String),
}

impl StreamsError {
    /// A processing error with a message, for use in user processors; the runtime adds where
    /// it happened.
    pub fn processing(message: impl Into<String>) -> Self {
        StreamsError::Processing {
            context: String::new(),
            message: message.into(),
        }
    }
}

/// A processing error for a panic caught at `context` (task, node, record coordinates),
/// with the panic's message when it has one.
pub(crate) fn panic_error(context: String, panic: &(dyn std::any::Any + Send)) -> StreamsError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string());
    StreamsError::Processing {
        context,
        message: format!("panicked: {message}"),
    }
}

impl fmt::Display for StreamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamsError::Config(m) => write!(f, "invalid configuration: {m}"),
            StreamsError::Topology(m) => write!(f, "invalid topology: {m}"),
            StreamsError::MissingTopic(m) => write!(f, "missing topic: {m}"),
            StreamsError::Serde { context, message } => {
                write!(f, "serialization failed at {context}: {message}")
            }
            StreamsError::Deserialization { context, message } => {
                write!(f, "deserialization failed at {context}: {message}")
            }
            StreamsError::Processing { context, message } if context.is_empty() => {
                write!(f, "processing failed: {message}")
            }
            StreamsError::Processing { context, message } => {
                write!(f, "processing failed at {context}: {message}")
            }
            StreamsError::Kafka(m) => write!(f, "Kafka error: {m}"),
            StreamsError::InvalidTimestamp { context, timestamp } => write!(
                f,
                "invalid timestamp {timestamp} at {context} (the invalid-timestamp policy is 'fail')"
            ),
            StreamsError::Io(m) => write!(f, "I/O error: {m}"),
            StreamsError::State(m) => write!(f, "state store error: {m}"),
        }
    }
}

impl std::error::Error for StreamsError {}

impl From<rdkafka::error::KafkaError> for StreamsError {
    fn from(e: rdkafka::error::KafkaError) -> Self {
        StreamsError::Kafka(e.to_string())
    }
}

impl From<std::io::Error> for StreamsError {
    fn from(e: std::io::Error) -> Self {
        StreamsError::Io(e.to_string())
    }
}

/// Result of processing or forwarding one record.
pub type ProcessResult = Result<(), StreamsError>;
