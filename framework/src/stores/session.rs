//! [`SessionStoreHandle`]: a typed view of a task's session store.

use std::rc::Rc;
use std::sync::Arc;

use super::flushed::FlushedCodec;
use super::{FlushedUpdates, HandleBase, Shared, TaskStore};
use crate::error::StreamsError;
use crate::serdes::Serde;
use crate::task::task_context::TaskContext;
use streamtime_state::session::{session_key, split_session_key};
use streamtime_state::{FlushedEntry, SessionStore, StateError, WriteOutcome};

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

    /// Hands the updates the store's cache writes out to the returned collector from now on,
    /// keyed by `to_key(key, start, end)` (`from_key` undoes it), each value with its
    /// session's end, the time a session's update (or removal) goes downstream with; `None`
    /// when the store has no cache.
    pub(crate) fn collect_flushed<KO: 'static>(
        &self,
        to_key: impl Fn(K, i64, i64) -> KO + 'static,
        from_key: fn(&KO) -> (&K, i64, i64),
    ) -> Option<FlushedUpdates<KO, (V, i64)>> {
        let pending = super::flushed::collector(&self.base, |listener| {
            self.store.borrow_mut().set_flush_listener(listener)
        })?;
        let codec = SessionCodec {
            base: self.base.clone(),
            to_key: Box::new(to_key),
            from_key,
        };
        Some(FlushedUpdates::new(pending, codec))
    }

    /// Expires nothing by a time later than `cap` (see `StateStore::cap_expiry`).
    pub(crate) fn cap_expiry(&self, cap: Option<i64>) {
        self.store.borrow_mut().cap_expiry(cap);
    }

    /// Writes the store's cached updates out now.
    pub(crate) fn flush_cache(&self) -> Result<(), StreamsError> {
        self.store
            .borrow_mut()
            .flush_cache()
            .map_err(|e| self.base.state_error(e))
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

/// A session store's flushed entries (`key ++ end ++ start`) as the keys its operator
/// forwards, stamped with the session's end.
struct SessionCodec<K, V, KO> {
    base: HandleBase<K, V>,
    to_key: Box<dyn Fn(K, i64, i64) -> KO>,
    from_key: fn(&KO) -> (&K, i64, i64),
}

impl<K: 'static, V: 'static, KO: 'static> FlushedCodec<KO, (V, i64)> for SessionCodec<K, V, KO> {
    fn key_bytes(&self, key: &KO) -> Result<Vec<u8>, StreamsError> {
        let (key, start, end) = (self.from_key)(key);
        Ok(session_key(&self.base.key_bytes(key)?, start, end))
    }

    fn decode(&self, e: &FlushedEntry) -> Result<(KO, Option<(V, i64)>, i64), StreamsError> {
        let (key, start, end) = split_session_key(&e.key).ok_or_else(|| {
            self.base.state_error(StateError::corrupt(
                format!("session store {}", self.base.name),
                format!("flushed key of {} bytes is too short", e.key.len()),
            ))
        })?;
        let value = e
            .new_value
            .as_deref()
            .map(|v| self.base.value(v))
            .transpose()?;
        let key = (self.to_key)(self.base.key(key)?, start, end);
        Ok((key, value.map(|v| (v, end)), end))
    }
}
