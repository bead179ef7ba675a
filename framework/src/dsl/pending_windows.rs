//! [`PendingWindows`]: the windows an emit-final aggregation has yet to emit, ordered by the
//! stream time at which each closes, so finding the windows that just closed is a range split
//! instead of a store scan.
//!
//! Sliding windows can start at any millisecond and sessions end anywhere, so unlike hopping
//! windows there is no grid to tell whether anything closed. The stores order their entries by
//! key first; a search by time reads whole segments. Measured with 300 000 records over 100 000
//! keys, that scan on every record that advances stream time made session emit-final the
//! slowest workload by far (see `docs/benchmarks.md`). Kafka Streams keeps a time-ordered
//! store for emit-final; an index in memory costs one entry per open window (the windows that
//! can still take records, plus those within the emit delay) and no extra store writes, and is
//! rebuilt from the store once, when the task starts.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::windows::Window;
use crate::serdes::Serde;
use crate::StreamsError;

/// Open windows by close point, then key bytes (so the order is the same live, after a
/// restart and on replay), then window.
pub(super) struct PendingWindows<K> {
    by_close: BTreeMap<(i64, Vec<u8>, i64, i64), K>,
    key_serde: Arc<dyn Serde<K>>,
}

impl<K: Clone + 'static> PendingWindows<K> {
    /// An empty index; `key_serde` gives the keys' byte order.
    pub(super) fn new(key_serde: Arc<dyn Serde<K>>) -> Self {
        PendingWindows {
            by_close: BTreeMap::new(),
            key_serde,
        }
    }

    fn entry(
        &self,
        close_point: i64,
        key: &K,
        window: Window,
    ) -> Result<(i64, Vec<u8>, i64, i64), StreamsError> {
        let mut bytes = Vec::new();
        self.key_serde
            .serialize(key, &mut bytes)
            .map_err(|e| StreamsError::Serde {
                context: "window key of the emit-final index".into(),
                message: e.to_string(),
            })?;
        Ok((close_point, bytes, window.start, window.end))
    }

    /// Notes `key`'s `window`, which closes at `close_point` (inserting it again is harmless).
    pub(super) fn insert(
        &mut self,
        close_point: i64,
        key: &K,
        window: Window,
    ) -> Result<(), StreamsError> {
        let entry = self.entry(close_point, key, window)?;
        self.by_close.insert(entry, key.clone());
        Ok(())
    }

    /// Forgets `key`'s `window` (a session merged into another).
    pub(super) fn remove(
        &mut self,
        close_point: i64,
        key: &K,
        window: Window,
    ) -> Result<(), StreamsError> {
        let entry = self.entry(close_point, key, window)?;
        self.by_close.remove(&entry);
        Ok(())
    }

    /// Takes every window whose close point is at most `to`, in index order.
    pub(super) fn take_due(&mut self, to: i64) -> Vec<(K, Window)> {
        let Some(after) = to.checked_add(1) else {
            return std::mem::take(&mut self.by_close)
                .into_iter()
                .map(|((_, _, start, end), key)| (key, Window::new(start, end)))
                .collect();
        };
        let later = self
            .by_close
            .split_off(&(after, Vec::new(), i64::MIN, i64::MIN));
        std::mem::replace(&mut self.by_close, later)
            .into_iter()
            .map(|((_, _, start, end), key)| (key, Window::new(start, end)))
            .collect()
    }

    /// Windows noted and not yet taken.
    pub(super) fn len(&self) -> usize {
        self.by_close.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serdes::StringSerde;

    fn index() -> PendingWindows<String> {
        PendingWindows::new(Arc::new(StringSerde))
    }

    #[test]
    fn due_windows_come_out_by_close_point_then_key() {
        let mut p = index();
        p.insert(30, &"b".to_string(), Window::new(0, 20)).unwrap();
        p.insert(30, &"a".to_string(), Window::new(0, 20)).unwrap();
        p.insert(10, &"c".to_string(), Window::new(0, 5)).unwrap();
        p.insert(31, &"a".to_string(), Window::new(1, 21)).unwrap();
        p.insert(30, &"a".to_string(), Window::new(0, 20)).unwrap();
        assert_eq!(p.len(), 4, "a window noted twice is one entry");
        assert_eq!(p.take_due(9), vec![]);
        let due = p.take_due(30);
        assert_eq!(
            due,
            vec![
                ("c".to_string(), Window::new(0, 5)),
                ("a".to_string(), Window::new(0, 20)),
                ("b".to_string(), Window::new(0, 20)),
            ]
        );
        assert_eq!(p.take_due(30), vec![], "taken windows are gone");
        assert_eq!(p.take_due(i64::MAX), vec![("a".into(), Window::new(1, 21))]);
    }

    #[test]
    fn a_removed_window_is_not_due() {
        let mut p = index();
        p.insert(10, &"a".to_string(), Window::new(0, 5)).unwrap();
        p.insert(12, &"a".to_string(), Window::new(0, 7)).unwrap();
        p.remove(10, &"a".to_string(), Window::new(0, 5)).unwrap();
        assert_eq!(p.take_due(20), vec![("a".into(), Window::new(0, 7))]);
        assert_eq!(p.len(), 0);
    }
}
