//! Fault injection for tests: makes a chosen point of the runtime fail, panic or abort the
//! process at a chosen pass, so that failure paths can be tested against a real broker.
//!
//! Only with the `fault-injection` cargo feature, which no application should enable: without
//! it the checks the runtime makes compile to nothing and this module is not public.
//!
//! A [`FaultPlan`] is given to an application with
//! [`StreamsConfig::fault_injection`](crate::StreamsConfig::fault_injection), or read from the
//! `STREAMTIME_FAULTS` environment variable by a test program that wants to be steered from
//! outside (a chaos run that aborts an instance inside a commit, say):
//!
//! ```
//! # #[cfg(feature = "fault-injection")] {
//! use streamtime::faults::{FaultAction, FaultPlan, FaultPoint};
//!
//! // The 3rd offset commit aborts the process between the producer's flush and the commit.
//! let plan = FaultPlan::new().at(FaultPoint::CommitOffsets, 3, FaultAction::Abort);
//! assert_eq!(plan, FaultPlan::parse("commit.offsets=abort@3").unwrap());
//! # }
//! ```

#[cfg(feature = "fault-injection")]
mod plan;

#[cfg(feature = "fault-injection")]
pub use plan::{FaultAction, FaultPlan};

/// Where the runtime checks for an injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(not(feature = "fault-injection"), allow(unreachable_pub))]
pub enum FaultPoint {
    /// A record handed to the producer: sink, repartition, dead-letter or changelog.
    Send,
    /// A send under exactly-once, refused the way librdkafka refuses sends once the open
    /// transaction failed and must be aborted (the broker timed it out during an outage,
    /// say). Only the `fail` action makes sense here.
    SendInFailedTransaction,
    /// The producer's flush at an at-least-once commit.
    Flush,
    /// An at-least-once offset commit, after the producer flushed.
    CommitOffsets,
    /// An exactly-once transaction commit, with the input offsets in it.
    CommitTransaction,
    /// An exactly-once transaction abort (after an error, or one the broker requires).
    AbortTransaction,
    /// A task's stores writing their cached and buffered data out: at a commit of a task
    /// with progress, a checkpoint, or a close.
    StoreFlush,
    /// A record about to be processed by its task.
    Process,
    /// A batch of changelog records about to be applied to a restoring task's store.
    Restore,
    /// A record about to be applied to the global stores by the thread following their
    /// topic, once the stores were filled.
    GlobalApply,
}

/// The faults one application was given; what the runtime's checks consult.
#[derive(Clone, Default)]
pub(crate) struct Faults {
    #[cfg(feature = "fault-injection")]
    plan: Option<FaultPlan>,
}

impl Faults {
    #[cfg(feature = "fault-injection")]
    pub(crate) fn new(plan: FaultPlan) -> Self {
        Faults { plan: Some(plan) }
    }

    /// Counts a pass through `point`; when a fault is due there it panics, aborts the
    /// process, or returns `true`: the caller then fails as that step would.
    #[inline]
    pub(crate) fn fail_at(&self, point: FaultPoint) -> bool {
        #[cfg(feature = "fault-injection")]
        if let Some(plan) = &self.plan {
            return plan.pass(point);
        }
        let _ = point;
        false
    }
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        #[cfg(feature = "fault-injection")]
        if let Some(plan) = &self.plan {
            return write!(f, "{plan:?}");
        }
        f.write_str("none")
    }
}

/// The error a failing step returns.
pub(crate) fn injected(point: FaultPoint) -> String {
    format!("injected fault at {point:?}")
}
