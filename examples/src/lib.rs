//! Example topologies for streamtime, each usable from a binary, a test or your own code.
//! Copy one to start your own.
//!
//! * [`bank`]: deposits and withdrawals applied in timestamp order, with an overdraft fee
//!   (Processor API, two topics merged).
//! * [`sensors`]: per-sensor averages over one-minute windows of event time, final results
//!   only, late readings to a dead-letter topic (tumbling windows with grace).
//! * [`wordcount`]: running counts per word (re-keying, repartition topic, changelogged
//!   count).
//! * [`clickstream`]: per-user sessions with click counts and pages, reported once each
//!   session ends (session windows, final results).
//!
//! Each has a deterministic sample-data generator and a direct computation of the expected
//! result; [`on_kafka`] runs them against a broker. `cargo run -p streamtime-examples --bin
//! demo -- <example>` runs one end to end and prints what it computed.

/// Where the sample data's event time starts: 2023-11-14 22:13:00 UTC, a whole minute so
/// windows line up with it. Kafka producers take a timestamp of 0 to mean "now", so sample
/// data on a broker must not start at the epoch.
pub const SAMPLE_START_MS: i64 = 1_699_999_980_000;

pub mod bank;
pub mod clickstream;
pub mod on_kafka;
pub mod sensors;
pub mod wordcount;
