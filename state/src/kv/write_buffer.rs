//! Writes a RocksDB store has accepted but not yet handed to RocksDB.
//!
//! Each `DB::put` pays RocksDB's whole write path (writer queue, sequence numbers, write
//! batch framing, thread-local perf context) for a single entry. A window aggregation writes
//! a new entry for nearly every record and window, and that fixed cost was about a quarter of
//! its RocksDB time. Buffered writes go to RocksDB as one `WriteBatch` per
//! [`WriteBuffer::MAX_ENTRIES`] distinct keys, and a key written again before then is written
//! once. Reads look here first, so callers see their own writes.

use std::collections::HashMap;

use rocksdb::WriteBatch;

/// Pending writes, latest per key (`None` = delete).
#[derive(Debug, Default)]
pub(super) struct WriteBuffer {
    entries: HashMap<Vec<u8>, Option<Vec<u8>>>,
    bytes: usize,
}

impl WriteBuffer {
    /// Enough entries that RocksDB's per-write cost is spread thin, few enough that the map
    /// stays in the CPU's caches.
    pub(super) const MAX_ENTRIES: usize = 1024;
    /// A bound for large values, so a buffer never holds much memory outside RocksDB's budget.
    pub(super) const MAX_BYTES: usize = 1 << 20;

    /// Records a write. Returns true when the buffer should now be written out.
    pub(super) fn insert(&mut self, key: &[u8], value: Option<&[u8]>) -> bool {
        let added = value.map_or(0, <[u8]>::len);
        if let Some(slot) = self.entries.get_mut(key) {
            let old = slot.as_ref().map_or(0, Vec::len);
            match (slot.as_mut(), value) {
                // Reuses the allocation: hot keys are rewritten many times per batch.
                (Some(buf), Some(v)) => {
                    buf.clear();
                    buf.extend_from_slice(v);
                }
                (_, v) => *slot = v.map(<[u8]>::to_vec),
            }
            self.bytes = self.bytes - old + added;
        } else {
            self.bytes += key.len() + added;
            self.entries.insert(key.to_vec(), value.map(<[u8]>::to_vec));
        }
        self.entries.len() >= Self::MAX_ENTRIES || self.bytes >= Self::MAX_BYTES
    }

    /// The pending write of `key`: `Some(None)` when it is a pending delete, `None` when the
    /// buffer knows nothing about `key`.
    pub(super) fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.entries.get(key).map(Option::as_deref)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of distinct keys pending.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Hands every pending write to `write` as one batch in key order, and empties the buffer
    /// only when `write` succeeds. On failure the buffer keeps every entry, so reads still see
    /// them and the next write-out retries them: draining first would lose a whole batch of
    /// other keys to one failed write, which the caller sees only as one error.
    ///
    /// Keys are distinct, so the order does not change what RocksDB ends up holding, but the
    /// memtable's skip list inserts a key next to the previous one far faster than at a random
    /// place (hash order made inserts cost twice as much as unbatched puts). The sort moves
    /// pairs of references (16 bytes) where sorting drained entries moved 48, and clearing the
    /// map afterwards keeps its capacity just as draining it did.
    pub(super) fn write_out<E>(
        &mut self,
        write: impl FnOnce(WriteBatch) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut entries: Vec<_> = self.entries.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut batch = WriteBatch::default();
        for (key, value) in entries {
            match value {
                Some(v) => batch.put(key, v),
                None => batch.delete(key),
            }
        }
        write(batch)?;
        self.entries.clear();
        self.bytes = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_write_per_key_wins_and_reads_see_it() {
        let mut buffer = WriteBuffer::default();
        assert!(!buffer.insert(b"a", Some(b"1")));
        assert!(!buffer.insert(b"a", Some(b"22")));
        assert!(!buffer.insert(b"b", Some(b"3")));
        assert!(!buffer.insert(b"b", None));
        assert_eq!(buffer.get(b"a"), Some(Some(&b"22"[..])));
        assert_eq!(buffer.get(b"b"), Some(None));
        assert_eq!(buffer.get(b"c"), None);
        assert_eq!(buffer.bytes, 2 + 1 + 1);
        buffer
            .write_out(|batch| {
                assert_eq!(batch.len(), 2);
                Ok::<_, ()>(())
            })
            .unwrap();
        assert!(buffer.is_empty());
        assert_eq!(buffer.bytes, 0);
    }

    #[test]
    fn asks_to_be_written_out_when_full() {
        let mut buffer = WriteBuffer::default();
        for i in 0..WriteBuffer::MAX_ENTRIES - 1 {
            assert!(!buffer.insert(&i.to_be_bytes(), Some(b"v")));
        }
        assert!(
            !buffer.insert(&0usize.to_be_bytes(), Some(b"w")),
            "a rewrite adds no entry"
        );
        assert!(buffer.insert(b"last", Some(b"v")));
        let mut big = WriteBuffer::default();
        assert!(big.insert(b"k", Some(&vec![0; WriteBuffer::MAX_BYTES])));
    }

    #[test]
    fn a_failed_write_out_keeps_every_entry_and_a_retry_writes_them_in_key_order() {
        let mut buffer = WriteBuffer::default();
        for key in [&b"c"[..], b"a", b"d", b"b"] {
            buffer.insert(key, Some(key));
        }
        buffer.insert(b"d", None);
        let bytes = buffer.bytes;

        assert_eq!(buffer.write_out(|_| Err("refused")), Err("refused"));
        assert_eq!(buffer.len(), 4);
        assert_eq!(buffer.bytes, bytes);
        assert_eq!(buffer.get(b"a"), Some(Some(&b"a"[..])));
        assert_eq!(buffer.get(b"d"), Some(None));

        let mut written = Vec::new();
        buffer
            .write_out(|batch| {
                batch.iterate(&mut Ops(&mut written));
                Ok::<_, ()>(())
            })
            .unwrap();
        assert_eq!(written, ["put a", "put b", "put c", "delete d"]);
        assert!(buffer.is_empty());
        assert_eq!(buffer.bytes, 0);
    }

    /// Collects a batch's operations as `put <key>` / `delete <key>`.
    struct Ops<'a>(&'a mut Vec<String>);

    impl rocksdb::WriteBatchIterator for Ops<'_> {
        fn put(&mut self, key: &[u8], _value: &[u8]) {
            self.0.push(format!("put {}", String::from_utf8_lossy(key)));
        }
        fn delete(&mut self, key: &[u8]) {
            self.0
                .push(format!("delete {}", String::from_utf8_lossy(key)));
        }
    }
}
