//! [`SessionStoreHandle`]: a typed view of a task's session store.

use std::rc::Rc;
use std::sync::Arc;

use super::{HandleBase, Shared, TaskStore};
use crate::error::StreamsError;
use crate::serdes::Serde;
use crate::task::task_context::TaskContext;
use streamtime_state::{SessionStore, WriteOutcome};

/// One session of a key: `[start, end]` (both inclusive) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session<V> {
    /// Timestamp of the session's first record.
    pub start: i64,
    /// Timestamp of the session's last record.
    pub end: i64,
    /// The value (usually the aggregate).
    pub value: V,
}

/// A typed view of a session store: values per key and session, expiring with the store's
/// stream time (the largest session end).
pub struct SessionStoreHandle<K, V> {
    base: HandleBase<K, V>,
    store: Shared<dyn SessionStore>,
}

impl<K, V> Clone for SessionStoreHandle<K, V> {
    fn clone(&self) -> Self {
        SessionStoreHandle {
            base: self.base.clone(),
            store: self.store.clone(),
        }
    }
}

impl<K: 'static, V: 'static> SessionStoreHandle<K, V> {
    pub(crate) fn open(
        task: &Rc<TaskContext>,
        node: &str,
        name: &str,
        keys: Arc<dyn Serde<K>>,
        values: Arc<dyn Serde<V>>,
    ) -> Result<Self, StreamsError> {
        let (base, store) = HandleBase::open(task, node, name, (keys, values), |s| match s {
            TaskStore::Session(s) => Some(s.clone()),
            _ => None,
        })?;
        Ok(SessionStoreHandle { base, store })
    }

    /// Stores `value` for `key`'s session `[start, end]`. Returns `false` when the session
    /// had already expired, so the write was dropped.
    pub fn put(&self, key: &K, start: i64, end: i64, value: &V) -> Result<bool, StreamsError> {
        let key = self.base.key_bytes(key)?;
        let timestamp = self.base.timestamp();
        let outcome = match self.base.value_bytes(value)? {
            Some(bytes) => self
                .store
                .borrow_mut()
                .put(&key, start, end, &bytes, timestamp),
            None => self.store.borrow_mut().remove(&key, start, end, timestamp),
        }
        .map_err(|e| self.base.state_error(e))?;
        Ok(matches!(outcome, WriteOutcome::Written { .. }))
    }

    /// Removes `key`'s session `[start, end]` (sessions merged into a larger one).
    pub fn remove(&self, key: &K, start: i64, end: i64) -> Result<(), StreamsError> {
        let key = self.base.key_bytes(key)?;
        let timestamp = self.base.timestamp();
        self.store
            .borrow_mut()
            .remove(&key, start, end, timestamp)
            .map_err(|e| self.base.state_error(e))?;
        Ok(())
    }

    /// `key`'s sessions with `end >= earliest_end` and `start <= latest_start`, ascending by
    /// end, then start. For a record at `t` with gap `g`, `find_sessions(k, t - g, t + g)` are
    /// the sessions it merges with.
    pub fn find_sessions(
        &self,
        key: &K,
        earliest_end: i64,
        latest_start: i64,
    ) -> Result<Vec<Session<V>>, StreamsError> {
        let key = self.base.key_bytes(key)?;
        let store = self.store.borrow();
        let found = store.find_sessions(&key, earliest_end, latest_start);
        found
            .map(|s| {
                let s = s.map_err(|e| self.base.state_error(e))?;
                Ok(Session {
                    start: s.start,
                    end: s.end,
                    value: self.base.value(&s.value)?,
                })
            })
            .collect()
    }

    /// Every key's sessions ending in `[earliest_end, latest_end]`: `(key, session)`, by end,
    /// then serialized key, then start.
    pub fn fetch_ending_between(
        &self,
        earliest_end: i64,
        latest_end: i64,
    ) -> Result<Vec<(K, Session<V>)>, StreamsError> {
        let store = self.store.borrow();
        let mut found: Vec<(Vec<u8>, i64, i64, Vec<u8>)> = store
            .fetch_ending_between(earliest_end, latest_end)
            .map(|s| {
                let s = s.map_err(|e| self.base.state_error(e))?;
                Ok((s.key, s.start, s.end, s.value))
            })
            .collect::<Result<_, StreamsError>>()?;
        // The store orders by segment first; emit in time order whatever the segments.
        found.sort_by(|a, b| (a.2, &a.0, a.1).cmp(&(b.2, &b.0, b.1)));
        found
            .into_iter()
            .map(|(k, start, end, v)| {
                Ok((
                    self.base.key(&k)?,
                    Session {
                        start,
                        end,
                        value: self.base.value(&v)?,
                    },
                ))
            })
            .collect()
    }

    /// The value of exactly the session `[start, end]` of `key`.
    pub fn fetch_session(&self, key: &K, start: i64, end: i64) -> Result<Option<V>, StreamsError> {
        let key = self.base.key_bytes(key)?;
        let bytes = self
            .store
            .borrow()
            .fetch_session(&key, start, end)
            .map_err(|e| self.base.state_error(e))?;
        bytes.map(|b| self.base.value(&b)).transpose()
    }
}
