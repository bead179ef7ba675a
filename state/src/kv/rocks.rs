//! The RocksDB key-value store.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use rocksdb::{IteratorMode, ReadOptions, WriteBatch, WriteOptions, DB};

use super::write_buffer::WriteBuffer;
use super::{successor, KeyValueBackend, KeyValueIter, KeyValueStore};
use crate::{RocksResources, StateError, StateStore, TaskDirectory};

/// A [`KeyValueStore`] in its own RocksDB database, using the application's shared
/// [`RocksResources`]. Writes skip RocksDB's write-ahead log (the changelog plays that role),
/// so call [`StateStore::flush`] before writing a checkpoint. Writes reach RocksDB in batches;
/// reads see them at once.
///
/// ```
/// use streamtime_state::{KeyValueStore, RocksConfig, RocksKeyValueStore, RocksResources, StateDirectory};
/// let tmp = tempfile::tempdir().unwrap();
/// let resources = RocksResources::new(&RocksConfig::default())?;
/// let task = StateDirectory::new(tmp.path(), "app")?.lock_task("0_0")?;
/// let mut store = RocksKeyValueStore::open(&task, "counts", &resources)?;
/// store.put(b"k", b"v", 0)?;
/// assert_eq!(store.get(b"k")?, Some(b"v".to_vec()));
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
pub struct RocksKeyValueStore {
    name: String,
    path: PathBuf,
    write_opts: WriteOptions,
    // Behind a RefCell because scans (`&self`) must write it out first to see it.
    pending: RefCell<WriteBuffer>,
    // Declared before the lock so the database closes before the task directory unlocks.
    db: DB,
    _task_dir: Option<TaskDirectory>,
}

impl std::fmt::Debug for RocksKeyValueStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksKeyValueStore")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RocksKeyValueStore {
    /// Opens (creating if needed) the store `name` at `<task dir>/<name>`. The store keeps a
    /// handle on the task directory, so its lock outlives neither the store nor the caller's
    /// handle.
    pub fn open(
        task_dir: &TaskDirectory,
        name: &str,
        resources: &RocksResources,
    ) -> Result<Self, StateError> {
        let path = task_dir.store_path(name)?;
        let mut store = Self::open_at(&path, name, resources)?;
        store._task_dir = Some(task_dir.clone());
        Ok(store)
    }

    /// Opens (creating if needed) a store at an explicit path. The caller is responsible for
    /// keeping other instances out; prefer [`RocksKeyValueStore::open`].
    pub fn open_at(
        path: impl AsRef<Path>,
        name: &str,
        resources: &RocksResources,
    ) -> Result<Self, StateError> {
        let path = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&path)
            .map_err(|e| StateError::io(format!("creating {}", path.display()), &e))?;
        let db = DB::open(&resources.db_options(), &path).map_err(|e| {
            StateError::rocks(format!("opening store {name} at {}", path.display()), &e)
        })?;
        Ok(RocksKeyValueStore {
            name: name.to_owned(),
            path,
            write_opts: RocksResources::write_options(),
            pending: RefCell::default(),
            db,
            _task_dir: None,
        })
    }

    /// Where the store's files are.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, op: &str, e: &rocksdb::Error) -> StateError {
        StateError::rocks(format!("store {} ({op})", self.name), e)
    }

    /// Hands the pending writes to RocksDB. They stay pending (readable, and retried by the
    /// next write-out) unless RocksDB accepts them.
    fn write_out(&self) -> Result<(), StateError> {
        let mut pending = self.pending.borrow_mut();
        if pending.is_empty() {
            return Ok(());
        }
        pending.write_out(|batch| {
            self.db
                .write_opt(batch, &self.write_opts)
                .map_err(|e| self.err("write", &e))
        })
    }

    fn buffer(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StateError> {
        if self.pending.get_mut().insert(key, value) {
            self.write_out()?;
        }
        Ok(())
    }

    fn scan(&self, lower: Option<&[u8]>, upper_exclusive: Option<Vec<u8>>) -> KeyValueIter<'_> {
        if let Err(e) = self.write_out() {
            return Box::new(std::iter::once(Err(e)));
        }
        let mut opts = ReadOptions::default();
        if let Some(lower) = lower {
            opts.set_iterate_lower_bound(lower.to_vec());
        }
        if let Some(upper) = upper_exclusive {
            opts.set_iterate_upper_bound(upper);
        }
        let name = self.name.clone();
        Box::new(
            self.db
                .iterator_opt(IteratorMode::Start, opts)
                .map(move |item| match item {
                    Ok((k, v)) => Ok((k.into_vec(), v.into_vec())),
                    Err(e) => Err(StateError::rocks(format!("store {name} (scan)"), &e)),
                }),
        )
    }
}

impl StateStore for RocksKeyValueStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn persistent(&self) -> bool {
        true
    }

    fn flush(&mut self) -> Result<(), StateError> {
        self.write_out()?;
        self.db.flush().map_err(|e| self.err("flush", &e))
    }

    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StateError> {
        match value {
            Some(v) => self.put(key, v, 0),
            None => self.delete(key, 0),
        }
    }

    fn restore_batch(&mut self, records: &[(&[u8], Option<&[u8]>)]) -> Result<(), StateError> {
        // One write batch per restore batch: restore throughput is what bounds failover time.
        self.write_out()?;
        let mut batch = WriteBatch::default();
        for (key, value) in records {
            match value {
                Some(v) => batch.put(key, v),
                None => batch.delete(key),
            }
        }
        self.db
            .write_opt(batch, &self.write_opts)
            .map_err(|e| self.err("restore", &e))
    }
}

impl KeyValueStore for RocksKeyValueStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        if let Some(pending) = self.pending.borrow().get(key) {
            return Ok(pending.map(<[u8]>::to_vec));
        }
        self.db
            .get_pinned(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| self.err("get", &e))
    }

    fn put(&mut self, key: &[u8], value: &[u8], _timestamp: i64) -> Result<(), StateError> {
        self.buffer(key, Some(value))
    }

    fn delete(&mut self, key: &[u8], _timestamp: i64) -> Result<(), StateError> {
        self.buffer(key, None)
    }

    fn range(&self, from: &[u8], to: &[u8]) -> KeyValueIter<'_> {
        if from > to {
            return Box::new(std::iter::empty());
        }
        self.scan(Some(from), Some(successor(to)))
    }

    fn all(&self) -> KeyValueIter<'_> {
        self.scan(None, None)
    }

    fn approximate_num_entries(&self) -> Result<u64, StateError> {
        self.write_out()?;
        self.db
            .property_int_value("rocksdb.estimate-num-keys")
            .map(|n| n.unwrap_or(0))
            .map_err(|e| self.err("estimate-num-keys", &e))
    }
}

impl KeyValueBackend for RocksKeyValueStore {
    fn delete_range(&mut self, from: &[u8], to: &[u8]) -> Result<(), StateError> {
        if from >= to {
            return Ok(());
        }
        // Whole SST files inside the range go first (no I/O beyond unlinking them); the range
        // tombstone then hides what is left in memtables and straddling files until
        // compaction reclaims it. RocksDB's file deletion includes the end key, so a value
        // stored exactly at `to` is read first and written back.
        self.write_out()?;
        let keep = self.get(to)?;
        self.db
            .delete_file_in_range(from, to)
            .map_err(|e| self.err("delete files in range", &e))?;
        let mut batch = WriteBatch::default();
        batch.delete_range(from, to);
        if let Some(v) = keep {
            batch.put(to, v);
        }
        self.db
            .write_opt(batch, &self.write_opts)
            .map_err(|e| self.err("delete range", &e))
    }
}

impl Drop for RocksKeyValueStore {
    fn drop(&mut self) {
        // RocksDB writes its memtables out on close; pending writes are treated the same.
        // Writes are pending here only when a task closes without a successful flush (a dirty
        // close, or a clean one whose checkpoint failed): a clean close flushes every store
        // when it checkpoints, before dropping it. No checkpoint covers these writes, so the
        // changelog is their source of truth and the next owner restores them from it; a
        // failure here loses nothing the changelog cannot rebuild, but it still gets an error.
        if let Err(e) = self.write_out() {
            let lost = self.pending.get_mut().len();
            tracing::error!(store = %self.name, lost, error = %e, "pending writes lost on close");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::{KeyValue, RocksConfig};

    fn resources() -> RocksResources {
        RocksResources::new(&RocksConfig::with_total_memory(8 << 20)).unwrap()
    }

    /// Makes RocksDB itself reject the store's writes: a synchronous write needs the
    /// write-ahead log, which store writes skip, so `DB::write` fails with "Sync writes has to
    /// enable WAL". A real RocksDB error on the real write path, so no test-only branch in it.
    fn refuse_writes(store: &mut RocksKeyValueStore) {
        store.write_opts.set_sync(true);
    }

    fn accept_writes(store: &mut RocksKeyValueStore) {
        store.write_opts = RocksResources::write_options();
    }

    fn key(i: usize) -> Vec<u8> {
        format!("key-{i:05}").into_bytes()
    }

    fn contents(store: &RocksKeyValueStore) -> Vec<KeyValue> {
        store.all().collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn a_failed_write_out_keeps_every_buffered_key_and_reports_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let resources = resources();
        let mut store = RocksKeyValueStore::open_at(dir.path(), "counts", &resources).unwrap();
        store.put(b"gone", b"old", 0).unwrap();
        store.flush().unwrap();
        store.put(b"a", b"1", 0).unwrap();
        store.put(b"b", b"2", 0).unwrap();
        store.delete(b"gone", 0).unwrap();
        refuse_writes(&mut store);

        let err = store.flush().expect_err("RocksDB refused the write");
        assert!(err.to_string().contains("counts"), "{err}");
        assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.get(b"b").unwrap(), Some(b"2".to_vec()));
        assert_eq!(
            store.get(b"gone").unwrap(),
            None,
            "the pending delete still hides it"
        );
        assert!(
            store.all().next().unwrap().is_err(),
            "a scan writes out first"
        );
    }

    #[test]
    fn write_outs_keep_failing_until_rocksdb_accepts_them_and_then_every_key_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let resources = resources();
        let mut store = RocksKeyValueStore::open_at(dir.path(), "counts", &resources).unwrap();
        store.put(b"a", b"1", 0).unwrap();
        store.put(b"b", b"2", 0).unwrap();
        refuse_writes(&mut store);
        assert!(store.flush().is_err());
        assert!(store.flush().is_err(), "the retry fails too");

        accept_writes(&mut store);
        store.flush().unwrap();
        drop(store);
        let store = RocksKeyValueStore::open_at(dir.path(), "counts", &resources).unwrap();
        assert_eq!(
            contents(&store),
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"2".to_vec())
            ]
        );
    }

    #[test]
    fn a_put_that_fills_the_buffer_reports_the_failed_write_out_and_keeps_every_key() {
        let dir = tempfile::tempdir().unwrap();
        let resources = resources();
        let mut store = RocksKeyValueStore::open_at(dir.path(), "counts", &resources).unwrap();
        refuse_writes(&mut store);
        let last = WriteBuffer::MAX_ENTRIES - 1;
        for i in 0..last {
            store.put(&key(i), b"v", 0).unwrap();
        }
        assert!(
            store.put(&key(last), b"v", 0).is_err(),
            "the put fills the buffer"
        );
        assert!(store.put(&key(last + 1), b"v", 0).is_err(), "still full");
        for i in 0..=last + 1 {
            assert_eq!(store.get(&key(i)).unwrap(), Some(b"v".to_vec()), "key {i}");
        }

        accept_writes(&mut store);
        store.put(&key(last + 2), b"v", 0).unwrap();
        assert!(store.pending.get_mut().is_empty(), "written out");
        drop(store);
        let store = RocksKeyValueStore::open_at(dir.path(), "counts", &resources).unwrap();
        assert_eq!(contents(&store).len(), last + 3);
    }

    #[test]
    fn dropping_a_store_writes_its_pending_writes_out() {
        let dir = tempfile::tempdir().unwrap();
        let resources = resources();
        let mut store = RocksKeyValueStore::open_at(dir.path(), "counts", &resources).unwrap();
        store.put(b"a", b"1", 0).unwrap();
        drop(store);
        let store = RocksKeyValueStore::open_at(dir.path(), "counts", &resources).unwrap();
        assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn dropping_a_store_whose_writes_rocksdb_refuses_logs_an_error_naming_the_store_and_the_lost_entries(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let resources = resources();
        let mut store = RocksKeyValueStore::open_at(dir.path(), "counts", &resources).unwrap();
        store.put(b"a", b"1", 0).unwrap();
        store.put(b"b", b"2", 0).unwrap();
        store.put(b"a", b"3", 0).unwrap();
        refuse_writes(&mut store);

        let events = Events::default();
        tracing::subscriber::with_default(events.clone(), || drop(store));
        let events = events.0.lock().unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        let (level, fields) = &events[0];
        assert_eq!(*level, tracing::Level::ERROR, "{fields}");
        assert!(fields.contains("store=counts "), "{fields}");
        assert!(fields.contains("lost=2 "), "{fields}");
    }

    /// Keeps every event logged while it is the default subscriber, as its level and its
    /// fields (`name=value `, values in `Debug` form).
    #[derive(Clone, Default)]
    struct Events(Arc<Mutex<Vec<(tracing::Level, String)>>>);

    impl tracing::Subscriber for Events {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut fields = String::new();
            event.record(
                &mut |field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
                    let _ = write!(fields, "{}={value:?} ", field.name());
                },
            );
            let level = *event.metadata().level();
            self.0.lock().unwrap().push((level, fields));
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }
}
