//! Change logging: wrappers that send every store write to a [`ChangelogWriter`] supplied by
//! the runtime, and restore from changelog records without logging them again.
//!
//! Changelog keys are in the wrapped store's key layout (KV: the key itself; window:
//! [`crate::window::window_key`]; session: [`crate::session::session_key`]), so
//! [`crate::StateStore::restore`] can replay them unchanged.

mod kv;
mod session;
mod versioned;
mod window;

pub use kv::LoggedKeyValueStore;
pub use session::LoggedSessionStore;
pub use versioned::LoggedVersionedStore;
pub use window::LoggedWindowStore;

use std::sync::{Arc, Mutex};

/// Where a logged store sends its changes: the runtime implements this over its producer
/// (topic `<app>-<store>-changelog`, partition = task partition).
///
/// `send` cannot fail: delivery errors surface when the runtime flushes its producer at
/// commit, which is where they can be handled as a whole.
pub trait ChangelogWriter: Send {
    /// Sends one change: `value` `None` is a tombstone; `timestamp` is that of the record
    /// that caused the write.
    fn send(&mut self, key: &[u8], value: Option<&[u8]>, timestamp: i64);
}

impl<W: ChangelogWriter + ?Sized> ChangelogWriter for Box<W> {
    fn send(&mut self, key: &[u8], value: Option<&[u8]>, timestamp: i64) {
        (**self).send(key, value, timestamp)
    }
}

/// One changelog record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogRecord {
    /// Key in the store's layout.
    pub key: Vec<u8>,
    /// New value, `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// Timestamp of the causing record.
    pub timestamp: i64,
}

/// A changelog kept in memory, for tests and the test driver. Clones share the records.
///
/// ```
/// use streamtime_state::{ChangelogWriter, MemoryChangelog};
/// let log = MemoryChangelog::new();
/// let mut writer = log.clone();
/// writer.send(b"k", None, 7);
/// assert_eq!(log.records()[0].value, None);
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryChangelog {
    records: Arc<Mutex<Vec<ChangelogRecord>>>,
}

impl MemoryChangelog {
    /// An empty changelog.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every record sent so far, in order.
    pub fn records(&self) -> Vec<ChangelogRecord> {
        self.lock().clone()
    }

    /// Removes and returns every record sent so far.
    pub fn take(&self) -> Vec<ChangelogRecord> {
        std::mem::take(&mut *self.lock())
    }

    /// How many records were sent.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing was sent.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ChangelogRecord>> {
        // A panic elsewhere while holding the lock leaves a valid Vec; keep going.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ChangelogWriter for MemoryChangelog {
    fn send(&mut self, key: &[u8], value: Option<&[u8]>, timestamp: i64) {
        self.lock().push(ChangelogRecord {
            key: key.to_vec(),
            value: value.map(<[u8]>::to_vec),
            timestamp,
        });
    }
}
