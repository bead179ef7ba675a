//! The layers over byte stores: change logging, the write-back cache and typed views.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod cache;
mod changelog;
mod typed;
