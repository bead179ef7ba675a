//! Store contract tests: every case runs against the in-memory and the RocksDB store.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod kv;
mod session;
mod versioned;
mod window;
