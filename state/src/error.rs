//! The crate's error type.

use std::fmt;
use std::path::PathBuf;

/// Everything a state store can fail with.
///
/// Errors carry messages rather than source error values so that the type stays `Clone` and
/// `PartialEq`: the runtime stores errors in task state and compares them in tests.
///
/// ```
/// use streamtime_state::StateError;
/// let e = StateError::invalid_argument("window start must not be negative, got -1");
/// assert_eq!(e.to_string(), "invalid argument: window start must not be negative, got -1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateError {
    /// Local file or directory I/O failed.
    Io {
        /// What was being done, including the path.
        context: String,
        /// What the OS said.
        message: String,
    },
    /// RocksDB reported an error.
    RocksDb {
        /// Store name and operation.
        context: String,
        /// What RocksDB said.
        message: String,
    },
    /// A key or value could not be converted to or from bytes.
    Serde {
        /// What was being converted.
        context: String,
        /// What the serde said.
        message: String,
    },
    /// Another instance (or another task handle in this process) holds the task directory.
    DirectoryLocked {
        /// The locked task directory.
        path: PathBuf,
    },
    /// A caller passed a value the store cannot accept.
    InvalidArgument(String),
    /// Stored or restored bytes do not have the layout the store expects.
    Corrupt {
        /// Store name and what was being decoded.
        context: String,
        /// What is wrong with the bytes.
        message: String,
    },
}

impl StateError {
    /// An [`StateError::InvalidArgument`] with a message.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        StateError::InvalidArgument(message.into())
    }

    /// An [`StateError::Io`] for `context` (which should name the path involved).
    pub fn io(context: impl Into<String>, err: &std::io::Error) -> Self {
        StateError::Io {
            context: context.into(),
            message: err.to_string(),
        }
    }

    /// A [`StateError::RocksDb`] for `context` (which should name the store).
    pub fn rocks(context: impl Into<String>, err: &rocksdb::Error) -> Self {
        StateError::RocksDb {
            context: context.into(),
            message: err.to_string(),
        }
    }

    /// A [`StateError::Serde`] for `context`.
    pub fn serde(context: impl Into<String>, message: impl fmt::Display) -> Self {
        StateError::Serde {
            context: context.into(),
            message: message.to_string(),
        }
    }

    /// A [`StateError::Corrupt`] for `context`.
    pub fn corrupt(context: impl Into<String>, message: impl Into<String>) -> Self {
        StateError::Corrupt {
            context: context.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Io { context, message } => {
                write!(f, "I/O error while {context}: {message}")
            }
            StateError::RocksDb { context, message } => {
                write!(f, "RocksDB error in {context}: {message}")
            }
            StateError::Serde { context, message } => {
                write!(f, "serialization failed for {context}: {message}")
            }
            StateError::DirectoryLocked { path } => write!(
                f,
                "state directory {} is locked by another instance or task; two instances must \
                 not share a state directory (give each its own state_dir)",
                path.display()
            ),
            StateError::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            StateError::Corrupt { context, message } => {
                write!(f, "corrupt data in {context}: {message}")
            }
        }
    }
}

impl std::error::Error for StateError {}
