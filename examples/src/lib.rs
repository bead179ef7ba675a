//! Example topologies for streamtime, each usable from a binary, a test or your own code.
//!
//! * [`bank`]: deposits and withdrawals applied in timestamp order, with an overdraft fee.

pub mod bank;
