//! What survives a restart: checkpoint files, the task directory lock, RocksDB store contents.

mod checkpoint;
mod directory;
mod reopen;
