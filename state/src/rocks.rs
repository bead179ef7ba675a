//! RocksDB resources shared by every store of an application: one block cache and one
//! write-buffer manager, so total RocksDB memory is bounded per process rather than per store.

use rocksdb::{
    BlockBasedOptions, Cache, DBCompressionType, Options, WriteBufferManager, WriteOptions,
};

use crate::StateError;

/// How much memory all RocksDB stores of one application may use together.
///
/// ```
/// use streamtime_state::RocksConfig;
/// let config = RocksConfig::with_total_memory(256 << 20);
/// assert_eq!(config.write_buffer_bytes, 64 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RocksConfig {
    /// Block cache capacity, which memtables are charged against as well, so this bounds
    /// blocks, index/filter blocks and memtables of all stores together.
    pub total_memory_bytes: usize,
    /// The part of `total_memory_bytes` memtables may take before RocksDB forces flushes.
    pub write_buffer_bytes: usize,
}

impl RocksConfig {
    /// `total` bytes for everything, a quarter of it for memtables.
    pub fn with_total_memory(total: usize) -> Self {
        RocksConfig {
            total_memory_bytes: total,
            write_buffer_bytes: total / 4,
        }
    }
}

impl Default for RocksConfig {
    /// 256 MiB in total, 64 MiB of it for memtables (the framework's default too).
    fn default() -> Self {
        RocksConfig::with_total_memory(256 << 20)
    }
}

/// The block cache and write-buffer manager built once per application from a
/// [`RocksConfig`] and handed to every RocksDB store. Cloning shares them.
///
/// ```
/// use streamtime_state::{RocksConfig, RocksResources};
/// let resources = RocksResources::new(&RocksConfig::default())?;
/// let for_another_store = resources.clone(); // same cache, same memory budget
/// # drop(for_another_store);
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
#[derive(Clone)]
pub struct RocksResources {
    config: RocksConfig,
    cache: Cache,
    write_buffers: WriteBufferManager,
}

impl std::fmt::Debug for RocksResources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksResources")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RocksResources {
    /// Builds the shared cache and write-buffer manager.
    pub fn new(config: &RocksConfig) -> Result<Self, StateError> {
        if config.total_memory_bytes == 0 {
            return Err(StateError::invalid_argument(
                "RocksDB total_memory_bytes must be greater than 0",
            ));
        }
        if config.write_buffer_bytes == 0 || config.write_buffer_bytes > config.total_memory_bytes {
            return Err(StateError::invalid_argument(format!(
                "RocksDB write_buffer_bytes must be in 1..={} (total_memory_bytes), got {}",
                config.total_memory_bytes, config.write_buffer_bytes
            )));
        }
        let cache = Cache::new_lru_cache(config.total_memory_bytes);
        // Charging memtables to the block cache is what makes total_memory_bytes a real
        // bound; allow_stall keeps writers from overrunning it while flushes catch up.
        let write_buffers = WriteBufferManager::new_write_buffer_manager_with_cache(
            config.write_buffer_bytes,
            true,
            cache.clone(),
        );
        Ok(RocksResources {
            config: config.clone(),
            cache,
            write_buffers,
        })
    }

    /// The configuration these resources were built from.
    pub fn config(&self) -> &RocksConfig {
        &self.config
    }

    /// Options for opening one store's database with the shared resources.
    pub(crate) fn db_options(&self) -> Options {
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&self.cache);
        // Index and filter blocks otherwise live outside the cache and escape the bound.
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        table.set_bloom_filter(10.0, false);

        let mut opts = Options::default();
        opts.create_if_missing(true);
        // Uncompressed, as Kafka Streams' stores: store data is short-lived and rebuilt from
        // the changelog, and compressing every flush cost a visible share of restore CPU.
        opts.set_compression_type(DBCompressionType::None);
        // Aggregations read before nearly every write, and most reads of a new window or key
        // miss: a bloom filter over the memtable's keys answers those without walking its
        // skip list (as the table filter does for files).
        opts.set_memtable_prefix_bloom_ratio(0.1);
        opts.set_memtable_whole_key_filtering(true);
        opts.set_block_based_table_factory(&table);
        opts.set_write_buffer_manager(&self.write_buffers);
        // Many small stores share the budget; a 64 MiB default memtable each would only be
        // cut short by the manager anyway.
        opts.set_write_buffer_size((self.config.write_buffer_bytes / 2).clamp(1 << 20, 16 << 20));
        opts
    }

    /// Write options for every store write: the changelog topic is the write-ahead log, so
    /// RocksDB's own WAL is pure overhead.
    pub(crate) fn write_options() -> WriteOptions {
        let mut opts = WriteOptions::default();
        opts.disable_wal(true);
        opts
    }
}
