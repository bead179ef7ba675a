//! Operational tools that act on an application from outside it.
//!
//! * [`reset`](mod@reset): the application reset for reprocessing (also shipped as the
//!   `streamtime-reset` command).

pub mod reset;

pub use reset::{reset, ResetOptions, ResetReport, ResetTarget};
