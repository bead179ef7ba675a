//! The layers over byte stores: change logging and the write-back cache.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod cache;
mod changelog;
mod window_cache;
