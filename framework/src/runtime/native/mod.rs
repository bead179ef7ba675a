//! Every librdkafka call the safe rust-rdkafka API lacks, in one place: each native handle
//! is owned by one type that frees it, and nothing outside this module is `unsafe`.

pub(crate) mod client;
pub(crate) mod queue;
