//! The life of an application instance, as Kafka Streams has it: its [`State`], a listener
//! told of every change, and what happens when a stream thread fails
//! ([`StreamThreadExceptionResponse`]).
//!
//! ```text
//! Created ──start──▶ Rebalancing ⇄ Running
//!                         │           │
//!                close ───┴─────┬─────┘            a thread fails (ShutdownClient)
//!                               ▼                               │
//!                        PendingShutdown ──▶ NotRunning    PendingError ──▶ Error
//! ```
//!
//! ```no_run
//! use streamtime::lifecycle::{State, StreamThreadExceptionResponse};
//! use streamtime::{KafkaStreams, StreamsBuilder, StreamsConfig};
//!
//! # fn demo(mut app: KafkaStreams) -> Result<(), streamtime::StreamsError> {
//! app.set_state_listener(|new, old| println!("{old:?} -> {new:?}"))?;
//! app.set_uncaught_exception_handler(|error| {
//!     eprintln!("stream thread failed: {error}");
//!     StreamThreadExceptionResponse::ReplaceThread
//! })?;
//! app.start()?;
//! assert_ne!(app.state(), State::Created);
//! # Ok(()) }
//! ```

use crate::error::StreamsError;
use crate::task::TopicPartition;

/// The state of an application instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Built, not started.
    Created,
    /// Started; at least one stream thread waits for its assignment or restores its tasks.
    Rebalancing,
    /// Every stream thread processes its tasks.
    Running,
    /// [`crate::KafkaStreams::close`] was called (or a signal arrived); threads are stopping.
    PendingShutdown,
    /// Every thread stopped after a shutdown.
    NotRunning,
    /// A thread failed and the instance stops (the handler said
    /// [`StreamThreadExceptionResponse::ShutdownClient`] or
    /// [`StreamThreadExceptionResponse::ShutdownApplication`]).
    PendingError,
    /// Every thread stopped after a failure; [`crate::KafkaStreams::error`] says which.
    Error,
}

impl State {
    /// Whether the instance runs (or is about to).
    pub fn is_running_or_rebalancing(self) -> bool {
        matches!(self, State::Running | State::Rebalancing)
    }

    /// Whether the instance stopped or is stopping.
    pub fn is_shutting_down(self) -> bool {
        matches!(
            self,
            State::PendingShutdown | State::NotRunning | State::PendingError | State::Error
        )
    }

    /// Whether Kafka Streams allows going from `self` to `next`.
    pub fn can_become(self, next: State) -> bool {
        use State::*;
        matches!(
            (self, next),
            (Created, Rebalancing | PendingShutdown | PendingError)
                | (Rebalancing, Running | PendingShutdown | PendingError)
                | (Running, Rebalancing | PendingShutdown | PendingError)
                | (PendingShutdown, NotRunning)
                | (PendingError, Error)
        )
    }
}

/// What the instance does when a stream thread fails (an error the processing policies did
/// not skip, a panic, a fatal client error). The failed thread has already committed
/// nothing and closed its tasks dirty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamThreadExceptionResponse {
    /// Start a new thread in its place: it rejoins the group and takes tasks again, which
    /// process from the last commit.
    ReplaceThread,
    /// Stop this instance (the default).
    ShutdownClient,
    /// Stop every instance of the application: this one asks the others through the
    /// consumer group, then stops.
    ShutdownApplication,
}

/// Told of every state change, with the new state first.
pub type StateListener = dyn Fn(State, State) + Send + Sync;

/// Decides what a thread failure does.
pub type UncaughtExceptionHandler =
    dyn Fn(&StreamsError) -> StreamThreadExceptionResponse + Send + Sync;

/// Told of the progress of every store restore from its changelog, per changelog partition:
/// for progress in the user's own UI. Kafka Streams' `StateRestoreListener`.
///
/// ```
/// use streamtime::lifecycle::StateRestoreListener;
/// use streamtime::TopicPartition;
///
/// struct Progress;
///
/// impl StateRestoreListener for Progress {
///     fn on_batch_restored(&self, changelog: &TopicPartition, store: &str, batch_end: i64, restored: u64) {
///         println!("{store}: {restored} more from {changelog}, up to offset {batch_end}");
///     }
/// }
/// ```
pub trait StateRestoreListener: Send + Sync {
    /// A restore of `store` from `changelog` starts at `start_offset` and reads up to (not
    /// including) `end_offset`.
    fn on_restore_start(
        &self,
        _changelog: &TopicPartition,
        _store: &str,
        _start_offset: i64,
        _end_offset: i64,
    ) {
    }

    /// `restored` more records were written to `store`, the last at `batch_end_offset`.
    fn on_batch_restored(
        &self,
        _changelog: &TopicPartition,
        _store: &str,
        _batch_end_offset: i64,
        _restored: u64,
    ) {
    }

    /// The restore of `store` from `changelog` is complete, `total_restored` records in all.
    fn on_restore_end(&self, _changelog: &TopicPartition, _store: &str, _total_restored: u64) {}
}

#[cfg(test)]
mod tests {
    use super::State::*;

    #[test]
    fn states_follow_kafka_streams_transitions() {
        assert!(Created.can_become(Rebalancing));
        assert!(Rebalancing.can_become(Running));
        assert!(Running.can_become(Rebalancing));
        assert!(Running.can_become(PendingShutdown));
        assert!(PendingShutdown.can_become(NotRunning));
        assert!(Running.can_become(PendingError));
        assert!(PendingError.can_become(Error));
        assert!(!NotRunning.can_become(Running));
        assert!(!Error.can_become(Running));
        assert!(!Created.can_become(Running));
        assert!(!PendingShutdown.can_become(Running));
        assert!(
            !PendingError.can_become(PendingShutdown),
            "a failed instance ends in Error"
        );
    }
}
