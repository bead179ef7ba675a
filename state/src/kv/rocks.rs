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

    /// Hands the pending writes to RocksDB.
    fn write_out(&self) -> Result<(), StateError> {
        let mut pending = self.pending.borrow_mut();
        if pending.is_empty() {
            return Ok(());
        }
        self.db
            .write_opt(pending.take_batch(), &self.write_opts)
            .map_err(|e| self.err("write", &e))
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
        if let Err(e) = self.write_out() {
            tracing::warn!(store = %self.name, error = %e, "pending writes lost on close");
        }
    }
}
