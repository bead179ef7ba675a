//! The layers over byte stores: change logging and the write-back caches.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod cache;
mod changelog;
mod session_cache;
mod window_cache;
