//! Example topologies for streamtime, each usable from a binary, a test or your own code.
//!
//! * [`bank`]: deposits and withdrawals applied in timestamp order, with an overdraft fee.
//! * [`sensors`]: per-sensor averages over one-minute windows of event time, final results
//!   only, late readings to a dead-letter topic.

pub mod bank;
pub mod sensors;
