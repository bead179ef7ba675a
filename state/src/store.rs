//! What every store offers the runtime (a name, flushing, restoring) and how a wrapper passes it on.

use crate::StateError;

/// The lifecycle side of a store, common to key-value, window and session stores and to every
/// wrapper layer (changelog, cache), so the runtime can commit and restore a task's stores
/// without knowing their shape.
///
/// ```
/// use streamtime_state::{InMemoryKeyValueStore, KeyValueStore, StateStore};
/// let mut store = InMemoryKeyValueStore::new("counts");
/// // Restoring replays changelog records in the store's own key layout, without logging them.
/// store.restore_batch(&[(b"a".as_slice(), Some(b"1".as_slice())), (b"b", Some(b"2")), (b"a", None)])?;
/// assert_eq!(store.get(b"a")?, None);
/// assert_eq!(store.get(b"b")?, Some(b"2".to_vec()));
/// store.flush()?;
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
pub trait StateStore: Send {
    /// The store name, as used in the changelog topic `<app>-<name>-changelog`.
    fn name(&self) -> &str;

    /// True when the store keeps its data on disk across restarts, so a checkpoint can save a
    /// full restore. In-memory stores always restore from the start of the changelog.
    fn persistent(&self) -> bool;

    /// Writes out cached updates (commit step 1), then makes everything written so far durable
    /// locally. Because the write-ahead log is off, a checkpoint must only be written after this
    /// returns.
    fn flush(&mut self) -> Result<(), StateError>;

    /// Writes out cached updates only (commit step 1), without the cost of persisting them
    /// locally. Stores without a cache do nothing.
    fn flush_cache(&mut self) -> Result<(), StateError> {
        Ok(())
    }

    /// Applies one changelog record (key in this store's key layout, `None` = tombstone)
    /// without sending it to the changelog again.
    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StateError>;

    /// Applies a batch of changelog records in order; see [`StateStore::restore`]. Stores may
    /// override this to write the batch at once.
    fn restore_batch(&mut self, records: &[(&[u8], Option<&[u8]>)]) -> Result<(), StateError> {
        for (key, value) in records {
            self.restore(key, *value)?;
        }
        Ok(())
    }

    /// Tells a time-segmented store the stream time its task last committed, before the
    /// store is restored: until writes other than restored ones pass it, the store expires
    /// nothing by a later time. Under at-least-once a changelog holds writes from past the
    /// last commit, whose input is processed again; expired by the time of those writes, the
    /// windows that input reads and updates would be gone. Other stores ignore it.
    ///
    /// ```
    /// use streamtime_state::{InMemoryWindowStore, StateStore, WindowStore, WindowStoreConfig};
    /// let mut store = InMemoryWindowStore::new("w", WindowStoreConfig::new(60_000))?;
    /// let mut changelog = Vec::new();
    /// for start in [0, 200_000] {
    ///     let mut scratch = InMemoryWindowStore::new("w", WindowStoreConfig::new(60_000))?;
    ///     if let streamtime_state::WriteOutcome::Written { store_key } =
    ///         scratch.put(b"k", start, b"v", start)?
    ///     {
    ///         changelog.push(store_key);
    ///     }
    /// }
    /// store.limit_expiry(1_000); // the commit was at stream time 1 s
    /// for key in &changelog {
    ///     store.restore(key, Some(b"v"))?;
    /// }
    /// assert_eq!(store.get(b"k", 0)?, Some(b"v".to_vec())); // still live at 1 s
    /// store.put(b"k", 200_000, b"w", 200_000)?; // processing passes the restored time
    /// assert_eq!(store.get(b"k", 0)?, None);
    /// # Ok::<(), streamtime_state::StateError>(())
    /// ```
    fn limit_expiry(&mut self, _committed_stream_time: i64) {}

    /// Tells a time-segmented store to expire nothing by a time later than `cap` (`None`:
    /// no cap), whatever the times written: an operator whose stream time is held behind
    /// the records it writes (behind a watermark) keeps the windows it still takes records
    /// for. Each call replaces the last. Other stores ignore it.
    fn cap_expiry(&mut self, _cap: Option<i64>) {}

    /// Tells a time-segmented store the stream time of the commit its task just made: until
    /// the next call it deletes nothing on disk that only a later time expires (reads still
    /// expire by the store's own time). RocksDB may make a delete durable on a flush of its
    /// own, before the next commit; a crash then restarts from this commit, and the input
    /// processed again reads those windows. Other stores ignore it.
    fn keep_since_commit(&mut self, _committed_stream_time: i64) {}
}

/// A store layer around another store (change logging, caching, a `Box`), the counterpart
/// of Kafka Streams' `WrappedStateStore`: a layer implements this trait and gets
/// [`StateStore`] from the blanket impl below, which passes every call to
/// [`wrapped_mut`](Self::wrapped_mut) (or [`wrapped`](Self::wrapped)) after running the
/// layer's hooks. A layer whose lifecycle needs more than the hooks implements [`StateStore`]
/// itself instead.
///
/// Writing to the wrapped store directly bypasses the layer: a logged store's changelog, a
/// cache's pending entries. The accessors exist for forwarding and for the layer's own code.
///
/// ```
/// use streamtime_state::{InMemoryKeyValueStore, KeyValueStore, StateStore, WrappedStateStore};
///
/// /// Counts the changelog records restored through it; every call reaches the store below.
/// struct CountingRestores {
///     inner: InMemoryKeyValueStore,
///     restored: usize,
/// }
///
/// impl WrappedStateStore for CountingRestores {
///     type Inner = InMemoryKeyValueStore;
///     fn wrapped(&self) -> &InMemoryKeyValueStore {
///         &self.inner
///     }
///     fn wrapped_mut(&mut self) -> &mut InMemoryKeyValueStore {
///         &mut self.inner
///     }
///     fn before_restore(&mut self, _key: &[u8]) {
///         self.restored += 1;
///     }
/// }
///
/// let mut store = CountingRestores { inner: InMemoryKeyValueStore::new("counts"), restored: 0 };
/// store.restore_batch(&[(b"a".as_slice(), Some(b"1".as_slice())), (b"b", None)])?;
/// store.flush()?;
/// assert_eq!((store.name(), store.persistent(), store.restored), ("counts", false, 2));
/// assert_eq!(store.wrapped().get(b"a")?, Some(b"1".to_vec()));
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
//
// Why a separate trait with one blanket impl: each layer spelling out its own `StateStore` impl
// (even with shared helper functions to call) repeats the method list, and a layer that misses a
// defaulted method such as `limit_expiry` silently gets the no-op default instead of reaching
// the store below. Rejected alternative: `StateStore` methods defaulting to forwarding through
// an optional `fn inner(&mut self) -> Option<&mut dyn StateStore>`; it turns the methods every
// leaf store must implement into defaults that can only fail at run time when one is missing.
// The hooks have names of their own: hooks named like `StateStore`'s methods would make
// `store.flush()` ambiguous wherever both traits are in scope (`use streamtime_state::*`).
// `Box` is a layer too, not a `StateStore` impl of its own: `Box` is a fundamental type, so
// such an impl would overlap the blanket one (another crate may implement this trait for
// `Box<ItsType>`).
pub trait WrappedStateStore: Send {
    /// The store underneath.
    type Inner: StateStore + ?Sized;

    /// The store underneath, for the calls that only read (`name`, `persistent`).
    fn wrapped(&self) -> &Self::Inner;

    /// The store underneath, which every other [`StateStore`] call is passed to.
    fn wrapped_mut(&mut self) -> &mut Self::Inner;

    /// Writes this layer's own pending updates to the wrapped store (a cache's dirty
    /// entries). [`StateStore::flush`] and [`StateStore::flush_cache`] call it before passing
    /// the flush down. Layers holding nothing back keep the default, which does nothing.
    fn write_pending(&mut self) -> Result<(), StateError> {
        Ok(())
    }

    /// Runs for each restored record's key before the record is passed to the wrapped store,
    /// for layers holding per-key state that restored data supersedes: a cache drops its
    /// entry, pending or not. Only restoring should call it. The default does nothing.
    fn before_restore(&mut self, _key: &[u8]) {}

    /// Runs on [`StateStore::cap_expiry`] before it is passed down, for layers that expire
    /// by time themselves (a segmented cache). The default does nothing.
    fn on_cap_expiry(&mut self, _cap: Option<i64>) {}
}

impl<W: WrappedStateStore> StateStore for W {
    fn name(&self) -> &str {
        self.wrapped().name()
    }
    fn persistent(&self) -> bool {
        self.wrapped().persistent()
    }
    fn flush(&mut self) -> Result<(), StateError> {
        // The wrapped store's `flush` writes out its own cached updates first.
        self.write_pending()?;
        self.wrapped_mut().flush()
    }
    fn flush_cache(&mut self) -> Result<(), StateError> {
        self.write_pending()?;
        self.wrapped_mut().flush_cache()
    }
    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StateError> {
        self.before_restore(key);
        self.wrapped_mut().restore(key, value)
    }
    fn restore_batch(&mut self, records: &[(&[u8], Option<&[u8]>)]) -> Result<(), StateError> {
        for (key, _) in records {
            self.before_restore(key);
        }
        self.wrapped_mut().restore_batch(records)
    }
    fn limit_expiry(&mut self, committed_stream_time: i64) {
        self.wrapped_mut().limit_expiry(committed_stream_time)
    }
    fn cap_expiry(&mut self, cap: Option<i64>) {
        self.on_cap_expiry(cap);
        self.wrapped_mut().cap_expiry(cap)
    }
    fn keep_since_commit(&mut self, committed_stream_time: i64) {
        self.wrapped_mut().keep_since_commit(committed_stream_time)
    }
}

/// A boxed store is a layer that adds nothing.
impl<T: StateStore + ?Sized> WrappedStateStore for Box<T> {
    type Inner = T;
    fn wrapped(&self) -> &T {
        self
    }
    fn wrapped_mut(&mut self) -> &mut T {
        self
    }
}
