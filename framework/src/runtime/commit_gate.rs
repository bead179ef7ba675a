//! [`CommitGate`]: serializes commits and folds overlapping commit requests.
//!
//! A commit requested while one is in progress must neither fail nor run concurrently: it is
//! reported as "already in progress" and folded into the next commit, which runs as soon as
//! the current one ends.

use std::sync::atomic::{AtomicBool, Ordering};

/// What became of a commit request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitRequest {
    /// The commit will run at the next opportunity.
    Scheduled,
    /// A commit is running now; this request is folded into the next one.
    AlreadyInProgress,
}

#[derive(Debug, Default)]
pub(crate) struct CommitGate {
    in_progress: AtomicBool,
    pending: AtomicBool,
}

impl CommitGate {
    /// Asks for a commit.
    pub(crate) fn request(&self) -> CommitRequest {
        self.pending.store(true, Ordering::SeqCst);
        if self.in_progress.load(Ordering::SeqCst) {
            tracing::warn!(
                "commit already in progress; the request is folded into the next commit"
            );
            CommitRequest::AlreadyInProgress
        } else {
            CommitRequest::Scheduled
        }
    }

    /// Whether a requested commit is waiting.
    pub(crate) fn is_pending(&self) -> bool {
        self.pending.load(Ordering::SeqCst)
    }

    /// Starts a commit. `false` when one is already running (the request stays pending).
    pub(crate) fn begin(&self) -> bool {
        if self
            .in_progress
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            self.request();
            return false;
        }
        // Requests made from now on are for a later commit.
        self.pending.store(false, Ordering::SeqCst);
        true
    }

    /// Ends a commit. Returns whether another was requested meanwhile.
    pub(crate) fn end(&self) -> bool {
        self.in_progress.store(false, Ordering::SeqCst);
        self.pending.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_requests_are_folded_into_the_next_commit() {
        let gate = CommitGate::default();
        assert_eq!(gate.request(), CommitRequest::Scheduled);
        assert!(gate.begin());
        assert!(
            !gate.is_pending(),
            "the running commit covers the earlier request"
        );
        // Requests while committing neither fail nor start a second commit.
        assert_eq!(gate.request(), CommitRequest::AlreadyInProgress);
        assert_eq!(gate.request(), CommitRequest::AlreadyInProgress);
        assert!(!gate.begin(), "no second commit runs concurrently");
        assert!(gate.end(), "the folded request asks for one more commit");
        assert!(gate.begin());
        assert!(
            !gate.end(),
            "two requests during one commit fold into a single commit"
        );
        assert!(!gate.is_pending());
    }
}
