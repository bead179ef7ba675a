//! [`AppState`]: the instance's [`State`], derived from what its stream threads report, and
//! the listener told of every change.

use std::sync::Mutex;

use crate::lifecycle::{State, StateListener};

/// Where one stream thread is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ThreadPhase {
    /// Joining the group, waiting for its assignment, or creating and restoring its tasks.
    Rebalancing,
    /// Processing its tasks.
    Running,
    /// Stopped (after a failure, before a replacement starts, or at shutdown).
    Dead,
}

pub(crate) struct AppState {
    inner: Mutex<Inner>,
    listener: Option<Box<StateListener>>,
}

struct Inner {
    state: State,
    threads: Vec<ThreadPhase>,
}

impl AppState {
    pub(crate) fn new(threads: usize, listener: Option<Box<StateListener>>) -> Self {
        AppState {
            inner: Mutex::new(Inner {
                state: State::Created,
                threads: vec![ThreadPhase::Rebalancing; threads],
            }),
            listener,
        }
    }

    pub(crate) fn get(&self) -> State {
        self.lock().state
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves to `next` when Kafka Streams allows it from the current state; returns whether
    /// it moved. The listener runs outside the lock, so it may read the state.
    pub(crate) fn transition(&self, next: State) -> bool {
        let old = {
            let mut inner = self.lock();
            let old = inner.state;
            if !old.can_become(next) {
                if old != next {
                    tracing::debug!(?old, ?next, "state change not allowed; ignored");
                }
                return false;
            }
            inner.state = next;
            old
        };
        tracing::info!(?old, new = ?next, "application state changed");
        if let Some(listener) = &self.listener {
            listener(next, old);
        }
        true
    }

    /// Records where thread `index` is; the instance is `Running` once every live thread is,
    /// `Rebalancing` while any is not.
    pub(crate) fn set_thread(&self, index: usize, phase: ThreadPhase) {
        let next = {
            let mut inner = self.lock();
            if inner.threads.get(index) == Some(&phase) {
                return;
            }
            if let Some(slot) = inner.threads.get_mut(index) {
                *slot = phase;
            }
            let live: Vec<ThreadPhase> = inner
                .threads
                .iter()
                .copied()
                .filter(|p| *p != ThreadPhase::Dead)
                .collect();
            match inner.state {
                State::Rebalancing | State::Running => {
                    if !live.is_empty() && live.iter().all(|p| *p == ThreadPhase::Running) {
                        State::Running
                    } else {
                        State::Rebalancing
                    }
                }
                other => other,
            }
        };
        if next != self.get() {
            self.transition(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex as StdMutex};

    #[test]
    fn the_instance_runs_once_every_thread_does_and_the_listener_hears_each_change() {
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let log = seen.clone();
        let state = AppState::new(
            2,
            Some(Box::new(move |new, old| {
                log.lock().unwrap().push((old, new));
            })),
        );
        assert_eq!(state.get(), State::Created);
        assert!(state.transition(State::Rebalancing));
        state.set_thread(0, ThreadPhase::Running);
        assert_eq!(
            state.get(),
            State::Rebalancing,
            "thread 2 is not running yet"
        );
        state.set_thread(1, ThreadPhase::Running);
        assert_eq!(state.get(), State::Running);
        state.set_thread(1, ThreadPhase::Rebalancing);
        assert_eq!(state.get(), State::Rebalancing);
        state.set_thread(1, ThreadPhase::Dead);
        assert_eq!(
            state.get(),
            State::Running,
            "a dead thread does not hold the others up"
        );
        assert!(state.transition(State::PendingShutdown));
        state.set_thread(0, ThreadPhase::Dead);
        assert!(state.transition(State::NotRunning));
        assert!(!state.transition(State::Running));
        use State::*;
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                (Created, Rebalancing),
                (Rebalancing, Running),
                (Running, Rebalancing),
                (Rebalancing, Running),
                (Running, PendingShutdown),
                (PendingShutdown, NotRunning),
            ]
        );
    }
}
